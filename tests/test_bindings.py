"""客户延期配置 (renewal package ↔ device) and 客户增值配置 (value-added packages offered to a company)."""
from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from markupsafe import escape
from openpyxl import load_workbook
from sqlalchemy import func, insert, select

from actions import DomainError, NotAllowed
from actions.bindings import (
    bind_package, bind_package_to_type, offer_packages, plan_type_binding, unbind, withdraw_offers,
)
from models import AuditEvent, CompanyPackage, Device, Package, db
from tests.conftest import confirm_post, post

DEVICE_LIST = "/admin/device_package/"
OFFER_LIST = "/admin/company_package/"
COMPANY_FILTER = "flt0_company_in_the_tree_of"


@pytest.fixture(autouse=True)
def request_context(app):
    """Refusal reasons are translated when the action runs, so direct calls need a request."""
    with app.test_request_context():
        yield


# --- helpers -------------------------------------------------------------------------------

def add_package(world, code: str, kind: str = "renewal", active: bool = True) -> Package:
    """A package beside the world's catalog (same category as its kind's packages)."""
    sample = world.packages["GPS-M" if kind == "renewal" else "VAS-SMS"]
    package = Package(code=code, name=f"{code} name", category_id=sample.category_id, kind=kind,
                      amount=Decimal("9.00"), pricing="per_month", currency="CNY", active=active)
    db.session.add(package)
    db.session.commit()
    return package


def package_of(number: str) -> str | None:
    return db.session.scalar(
        select(Package.code).join(Device, Device.package_id == Package.id).where(Device.number == number)
    )


def unbind_all(world) -> None:
    db.session.execute(Device.__table__.update().values(package_id=None))
    db.session.commit()


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def offers_of(company) -> list[str]:
    return sorted(db.session.scalars(
        select(Package.code).join(CompanyPackage, CompanyPackage.package_id == Package.id)
        .where(CompanyPackage.company_id == company.id)
    ))


def set_type(numbers, device_type: str) -> None:
    db.session.execute(
        Device.__table__.update().where(Device.number.in_(numbers)).values(device_type=device_type)
    )
    db.session.commit()


def action(client, endpoint: str, name: str, ids, **extra):
    data = [("action", name)] + [("rowid", str(i)) for i in ids] + list(extra.items())
    return confirm_post(client, f"/admin/{endpoint}/action/", data, required=False)


def rows_of(page: str, numbers) -> set[str]:
    return {n for n in numbers if n in page}


def table_of(page: str) -> str:
    """The list table of a page (not its company picker or filter options)."""
    start = page.index("model-list")
    return page[start:page.index("</table>", start)]


ALL_NUMBERS = [f"{p}{i:04d}" for p in ("AC", "NO", "FL", "SO", "GX") for i in (1, 2)]


# --- 7. bind / unbind: the rules, called directly -----------------------------------------------

def test_bind_package_binds_selected_devices_and_writes_one_audit_event(world):
    support, yearly = world.users["support"], world.packages["GPS-Y"]
    devices = [world.devices["AC0001"], world.devices["NO0002"]]

    result = bind_package(db.session, support, devices, yearly)
    db.session.commit()

    assert set(result.changed) == {"AC0001", "NO0002"} and result.ok
    assert package_of("AC0001") == package_of("NO0002") == "GPS-Y"
    assert package_of("AC0002") == "GPS-M"
    [event] = events("bind_package")
    assert event.actor_name == "support" and event.model == "device"
    assert set(event.ids.strip(",").split(",")) == {str(d.id) for d in devices}
    assert "GPS-Y" in event.summary and "GPS-M ×2" in event.summary


def test_bind_package_reports_devices_already_bound_to_it(world):
    result = bind_package(db.session, world.users["support"],
                          [world.devices["AC0001"]], world.packages["GPS-M"])
    assert result.changed == ()
    assert result.refused[0][0] == "AC0001" and "GPS-M" in result.refused[0][1]


def test_bind_package_binds_unbound_devices(world):
    unbind_all(world)
    result = bind_package(db.session, world.users["admin"], [world.devices["GX0001"]], world.packages["GPS-Y"])
    db.session.commit()
    assert result.changed == ("GX0001",)
    assert package_of("GX0001") == "GPS-Y"


def test_bind_package_updates_thousands_of_devices_in_chunks(world):
    db.session.execute(insert(Device), [
        {"number": f"BULK{i:05d}", "name": "", "device_type": "Bulk", "company_id": world.south.id,
         "status": "active", "expires_on": date(2030, 1, 1)} for i in range(2000)
    ])
    db.session.commit()
    devices = list(db.session.scalars(select(Device).where(Device.device_type == "Bulk")))

    result = bind_package(db.session, world.users["support"], devices, world.packages["GPS-Y"])
    db.session.commit()

    assert len(result.changed) == 2000
    assert db.session.scalar(select(func.count()).where(Device.device_type == "Bulk",
                                                        Device.package_id == world.packages["GPS-Y"].id)) == 2000


@pytest.mark.parametrize("kind, active, reason", [
    ("renewal", False, "inactive"),
    ("value_added", True, "not a renewal package"),
])
def test_bind_package_refuses_inactive_or_wrong_kind_package_by_code(world, kind, active, reason):
    package = add_package(world, "ODD-1", kind=kind, active=active)
    with pytest.raises(DomainError, match=f"ODD-1.*{reason}"):
        bind_package(db.session, world.users["support"], [world.devices["AC0001"]], package)
    db.session.rollback()
    assert package_of("AC0001") == "GPS-M"
    assert events("bind_package") == []


def test_unbind_removes_bindings_and_reports_devices_without_one(world):
    support = world.users["support"]
    unbind(db.session, support, [world.devices["AC0002"]])
    db.session.commit()

    result = unbind(db.session, support, [world.devices["AC0001"], world.devices["AC0002"]])
    db.session.commit()

    assert result.changed == ("AC0001",)
    assert result.refused == (("AC0002", "no package bound"),)
    assert package_of("AC0001") is None and package_of("AC0002") is None
    assert package_of("NO0001") == "GPS-M"
    assert "GPS-M ×1" in events("unbind_package")[-1].summary


def test_bind_package_to_type_without_subsidiaries_touches_only_that_company(world):
    set_type(["AC0001", "NO0001", "FL0001", "GX0001"], "OBD")
    support, yearly = world.users["support"], world.packages["GPS-Y"]

    plan = plan_type_binding(db.session, support, world.acme, "OBD", yearly, False)
    assert (plan.matching, plan.to_change) == (1, 1)
    result = bind_package_to_type(db.session, support, world.acme, "OBD", yearly, False)
    db.session.commit()

    assert result.changed == ("AC0001",)
    assert [package_of(n) for n in ("AC0001", "AC0002", "NO0001", "FL0001", "GX0001")] == [
        "GPS-Y", "GPS-M", "GPS-M", "GPS-M", "GPS-M"]
    [event] = events("bind_package_type")
    assert "OBD" in event.summary and "GPS-Y" in event.summary


def test_bind_package_to_type_with_subsidiaries_covers_the_whole_tree(world):
    set_type(["AC0001", "NO0001", "FL0001", "FL0002", "GX0001"], "OBD")
    support, yearly = world.users["support"], world.packages["GPS-Y"]
    bind_package(db.session, support, [world.devices["FL0002"]], yearly)
    db.session.commit()

    plan = plan_type_binding(db.session, support, world.acme, "OBD", yearly, True)
    assert (plan.matching, plan.to_change) == (4, 3)
    result = bind_package_to_type(db.session, support, world.acme, "OBD", yearly, True)
    db.session.commit()

    assert sorted(result.changed) == ["AC0001", "FL0001", "NO0001"]
    assert package_of("GX0001") == "GPS-M"  # another tenant
    assert package_of("SO0001") == "GPS-M"  # another device type


def test_bind_package_to_type_refuses_missing_type_and_wrong_package(world):
    support = world.users["support"]
    with pytest.raises(DomainError, match="device type"):
        bind_package_to_type(db.session, support, world.acme, "  ", world.packages["GPS-Y"], True)
    with pytest.raises(DomainError, match="VAS-SMS"):
        bind_package_to_type(db.session, support, world.acme, "GPS tracker", world.packages["VAS-SMS"], True)
    with pytest.raises(DomainError, match="company"):
        plan_type_binding(db.session, support, None, "GPS tracker", world.packages["GPS-Y"], True)


@pytest.mark.parametrize("user", ["customer", "finance", "sales"])
def test_binding_actions_refuse_other_roles(world, user):
    actor = world.users[user]
    with pytest.raises(NotAllowed):
        bind_package(db.session, actor, [world.devices["AC0001"]], world.packages["GPS-Y"])
    with pytest.raises(NotAllowed):
        bind_package_to_type(db.session, actor, world.acme, "GPS tracker", world.packages["GPS-Y"], True)
    with pytest.raises(NotAllowed):
        unbind(db.session, actor, [world.devices["AC0001"]])
    with pytest.raises(NotAllowed):
        offer_packages(db.session, actor, world.acme, [world.packages["VAS-SMS"]])
    with pytest.raises(NotAllowed):
        withdraw_offers(db.session, actor, [])


# --- 8. value-added offers: the rules ----------------------------------------------------------

def test_offer_packages_reports_already_offered_ones_without_duplicating(world):
    support = world.users["support"]
    sms, gprs = world.packages["VAS-SMS"], add_package(world, "VAS-GPRS", kind="value_added")
    offer_packages(db.session, support, world.acme, [sms])
    db.session.commit()

    result = offer_packages(db.session, support, world.acme, [sms, gprs, gprs])
    db.session.commit()

    assert result.changed == ("VAS-GPRS",)
    assert result.refused == (("VAS-SMS", "already offered to Acme Logistics"),)
    assert offers_of(world.acme) == ["VAS-GPRS", "VAS-SMS"]
    assert offers_of(world.north) == []
    assert "VAS-GPRS" in events("offer_packages")[-1].summary


@pytest.mark.parametrize("code, kind, active, reason", [
    ("GPS-M", None, True, "not a value-added package"),
    ("VAS-OLD", "value_added", False, "inactive"),
])
def test_offer_packages_refuses_wrong_kind_or_inactive_package_by_code(world, code, kind, active, reason):
    package = world.packages.get(code) or add_package(world, code, kind=kind, active=active)
    with pytest.raises(DomainError, match=f"{code}.*{reason}"):
        offer_packages(db.session, world.users["support"], world.acme, [world.packages["VAS-SMS"], package])
    db.session.rollback()
    assert offers_of(world.acme) == []


def test_offer_packages_needs_a_company_and_a_package(world):
    with pytest.raises(DomainError, match="company"):
        offer_packages(db.session, world.users["support"], None, [world.packages["VAS-SMS"]])
    with pytest.raises(DomainError, match="at least one"):
        offer_packages(db.session, world.users["support"], world.acme, [])


def test_withdraw_offers_deletes_them_and_audits(world):
    support = world.users["support"]
    offer_packages(db.session, support, world.acme, [world.packages["VAS-SMS"]])
    offer_packages(db.session, support, world.north, [world.packages["VAS-SMS"]])
    db.session.commit()
    acme_offer = db.session.scalar(select(CompanyPackage).where(CompanyPackage.company_id == world.acme.id))

    result = withdraw_offers(db.session, support, [acme_offer])
    db.session.commit()

    assert result.changed == ("Acme Logistics: VAS-SMS",)
    assert offers_of(world.acme) == [] and offers_of(world.north) == ["VAS-SMS"]
    assert events("withdraw_offers")[-1].summary == "Acme Logistics: VAS-SMS"


# --- access ------------------------------------------------------------------------------------

PAGES = [DEVICE_LIST, "/admin/device_package/bind-type/", OFFER_LIST, "/admin/company_package/offer/",
         "/admin/device_package/export/xlsx/"]


@pytest.mark.parametrize("user", ["customer", "finance", "sales", "globex"])
@pytest.mark.parametrize("path", PAGES)
def test_pages_answer_403_to_other_roles(world, client, login, user, path):
    login(user)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("user", ["customer", "finance", "sales"])
@pytest.mark.parametrize("url, data", [
    ("/admin/device_package/action/", [("action", "bind"), ("rowid", "1")]),
    ("/admin/device_package/action/", [("action", "unbind"), ("rowid", "1")]),
    ("/admin/device_package/bind/", [("rowid", "1"), ("package_id", "1")]),
    ("/admin/device_package/bind-type/", [("company_id", "1"), ("device_type", "GPS tracker"),
                                          ("package_id", "1"), ("confirm", "1")]),
    ("/admin/company_package/offer/", [("company_id", "1"), ("package_id", "3")]),
    ("/admin/company_package/action/", [("action", "delete"), ("rowid", "1")]),
])
def test_posts_answer_403_to_other_roles_and_change_nothing(world, client, login, user, url, data):
    login(user)
    assert post(client, url, data).status_code == 403
    assert package_of("AC0001") == "GPS-M"
    assert db.session.scalar(select(func.count()).select_from(CompanyPackage)) == 0


@pytest.mark.parametrize("user", ["support", "admin"])
@pytest.mark.parametrize("path", PAGES)
def test_pages_open_for_tech_support_and_admin(world, client, login, user, path):
    login(user)
    assert client.get(path).status_code == 200


def test_menu_shows_the_pages_to_tech_support_only(world, client, login):
    login("support")
    page = client.get("/admin/").get_data(as_text=True)
    assert "Customer extension config" in page and "Customer value-added config" in page
    login.logout()
    login("finance")
    page = client.get("/admin/").get_data(as_text=True)
    assert "Customer extension config" not in page and "Customer value-added config" not in page


def test_anonymous_users_go_to_login(world, client):
    response = client.get(DEVICE_LIST)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- 7. the list, its filters and export --------------------------------------------------------

def test_choosing_a_company_lists_its_tree_with_bound_and_unbound_devices(world, client, login):
    unbind(db.session, world.users["support"], [world.devices["NO0001"]])
    db.session.commit()
    login("support")
    page = client.get(f"{DEVICE_LIST}?{COMPANY_FILTER}={world.north.id}").get_data(as_text=True)
    assert rows_of(page, ALL_NUMBERS) == {"NO0001", "NO0002", "FL0001", "FL0002"}
    table = table_of(page)
    assert "not bound" in table and "GPS-M GPS monthly" in table and "Acme South" not in table
    assert 'id="rd-company-picker"' in page
    # Company names are escaped everywhere (the picker and the filter options).
    assert "Globex &lt;b&gt;Trading&lt;/b&gt;" in page and "<b>Trading</b>" not in page


@pytest.mark.parametrize("query, expected", [
    ("flt0_renewal_package_is=no", {"AC0002", "SO0001"}),
    ("flt0_renewal_package_is=yes&flt1_company_in_the_tree_of={south}", {"SO0002"}),
    ("flt0_device_type_equals=OBD", {"AC0002", "GX0001"}),
    ("flt0_package_code_equals=GPS-Y", {"GX0002"}),
    ("flt0_package_name_contains=yearly", {"GX0002"}),
    ("search=FL000", {"FL0001", "FL0002"}),
])
def test_list_filters_and_search_return_the_right_rows(world, client, login, query, expected):
    support = world.users["support"]
    unbind(db.session, support, [world.devices["AC0002"], world.devices["SO0001"]])
    bind_package(db.session, support, [world.devices["GX0002"]], world.packages["GPS-Y"])
    db.session.commit()
    set_type(["AC0002", "GX0001"], "OBD")
    login("support")
    response = client.get(f"{DEVICE_LIST}?{query.format(south=world.south.id)}")
    assert response.status_code == 200
    assert rows_of(response.get_data(as_text=True), ALL_NUMBERS) == expected


def test_list_sorts_by_company_and_package(world, client, login):
    login("support")
    for sort in range(6):
        assert client.get(f"{DEVICE_LIST}?sort={sort}&desc=1").status_code == 200


def test_list_page_queries_do_not_grow_with_rows(world, client, login):
    """Company and package are eager-loaded: no query per row (N+1)."""
    login("support")
    statements = []

    def count(*args):
        statements.append(args[2])

    def queries() -> int:
        statements.clear()
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
        try:
            assert client.get(f"{DEVICE_LIST}?page_size=100").status_code == 200
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
        return len(statements)

    few = queries()
    companies = [world.acme, world.north, world.fleet, world.south, world.globex]
    packages = [world.packages["GPS-M"], world.packages["GPS-Y"]] + [add_package(world, f"R{i}") for i in range(5)]
    db.session.execute(insert(Device), [
        {"number": f"MANY{i:03d}", "name": "", "device_type": "GPS tracker",
         "company_id": companies[i % 5].id, "package_id": packages[i % 7].id,
         "status": "active", "expires_on": date(2030, 1, 1)} for i in range(60)
    ])
    db.session.commit()
    many = queries()
    assert 0 < many <= few


def test_export_xlsx_has_the_filtered_rows_and_no_formulas(world, client, login):
    db.session.execute(Device.__table__.update().where(Device.number == "NO0001")
                       .values(name="=HYPERLINK(\"http://evil.test\",\"x\")"))
    db.session.execute(Device.__table__.update().where(Device.number == "NO0002").values(device_type="+1+1"))
    unbind(db.session, world.users["support"], [world.devices["FL0001"]])
    db.session.commit()
    login("support")

    response = client.get(f"/admin/device_package/export/xlsx/?{COMPANY_FILTER}={world.north.id}")

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Device number", "Device name", "Device type", "Company", "Renewal package", "Expires on")
    by_number = {r[0]: r for r in rows[1:]}
    assert set(by_number) == {"NO0001", "NO0002", "FL0001", "FL0002"}
    assert by_number["FL0002"][3] == "Acme North Fleet" and by_number["FL0002"][4] == "GPS-M GPS monthly"
    assert by_number["FL0001"][4] in ("", None)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", cell.value
    cells = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    name_cell, type_cell = cells["NO0001"][1], cells["NO0002"][2]
    assert name_cell.data_type == "s" and name_cell.value.lstrip("'") == '=HYPERLINK("http://evil.test","x")'
    assert type_cell.data_type == "s" and type_cell.value.lstrip("'") == "+1+1"

    csv_text = client.get(f"/admin/device_package/export/csv/?{COMPANY_FILTER}={world.north.id}").get_data(as_text=True)
    assert "'=HYPERLINK" in csv_text and "'+1+1" in csv_text


# --- 7. bind and unbind through the console ------------------------------------------------------

def test_bind_action_shows_the_devices_and_a_package_choice_then_binds(world, client, login):
    login("support")
    ids = [world.devices["AC0001"].id, world.devices["FL0002"].id]
    inactive = add_package(world, "GPS-OLD", active=False)

    page = action(client, "device_package", "bind", ids, url=f"{DEVICE_LIST}?search=AC").get_data(as_text=True)

    assert rows_of(page, ALL_NUMBERS) == {"AC0001", "FL0002"}
    assert "GPS-Y GPS yearly" in page and "GPS-OLD" not in page and "VAS-SMS" not in page
    assert 'name="csrf_token"' in page and inactive.code not in page
    assert package_of("AC0001") == "GPS-M"  # nothing happens before the confirmation

    response = post(client, "/admin/device_package/bind/",
                    [("rowid", str(i)) for i in ids] + [("package_id", str(world.packages["GPS-Y"].id)),
                                                        ("url", f"{DEVICE_LIST}?search=AC")])
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{DEVICE_LIST}?search=AC")
    assert package_of("AC0001") == package_of("FL0002") == "GPS-Y"
    assert package_of("AC0002") == "GPS-M"
    [event] = events("bind_package")
    assert event.actor_name == "support"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 devices bound to package GPS-Y." in page


def test_bind_confirm_refuses_an_inactive_or_wrong_kind_package_by_code(world, client, login):
    login("support")
    inactive = add_package(world, "GPS-OLD", active=False)
    for package, reason in ((inactive, "GPS-OLD is inactive"), (world.packages["VAS-SMS"], "VAS-SMS is not")):
        page = post(client, "/admin/device_package/bind/",
                    [("rowid", str(world.devices["AC0001"].id)), ("package_id", str(package.id))]
                    ).get_data(as_text=True)
        assert reason in page
        assert "AC0001" in page  # the confirmation page again, with the devices
    assert package_of("AC0001") == "GPS-M"
    assert events("bind_package") == []


def test_bind_ignores_ids_of_devices_that_do_not_exist(world, client, login):
    login("support")
    real = world.devices["SO0001"].id
    response = post(client, "/admin/device_package/bind/",
                    [("rowid", "999999"), ("rowid", "abc"), ("rowid", str(real)),
                     ("package_id", str(world.packages["GPS-Y"].id))], follow_redirects=True)
    page = response.get_data(as_text=True)
    assert package_of("SO0001") == "GPS-Y"
    assert db.session.scalar(select(func.count()).where(Device.package_id == world.packages["GPS-Y"].id)) == 1
    assert "#999999" in page and "not found" in page
    [event] = events("bind_package")
    assert event.ids == f",{real},"


def test_bind_action_with_only_unknown_ids_shows_no_confirmation(world, client, login):
    login("support")
    response = action(client, "device_package", "bind", [999999])
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Select at least one device." in page and "#999999" in page


def test_unbind_action_removes_the_bindings_of_the_selected_devices(world, client, login):
    login("support")
    ids = [world.devices["GX0001"].id, world.devices["NO0002"].id, 424242]
    response = action(client, "device_package", "unbind", ids)
    assert response.status_code == 302
    assert package_of("GX0001") is None and package_of("NO0002") is None
    assert package_of("GX0002") == "GPS-M"
    [event] = events("unbind_package")
    assert set(event.ids.strip(",").split(",")) == {str(i) for i in ids[:2]}
    page = client.get(DEVICE_LIST).get_data(as_text=True)
    assert "Renewal package removed from 2 devices." in page and "#424242" in page


def test_bind_by_type_checks_the_count_before_applying(world, client, login):
    set_type(["AC0001", "NO0001", "FL0001", "GX0001"], "OBD")
    login("support")
    yearly = world.packages["GPS-Y"]
    form = {"company_id": world.acme.id, "device_type": "OBD", "package_id": yearly.id,
            "include_subsidiaries": "1"}

    page = post(client, "/admin/device_package/bind-type/", form).get_data(as_text=True)
    assert "3 devices will change." in page and 'id="rd-confirm"' in page
    assert package_of("AC0001") == "GPS-M"
    key = json.dumps([world.acme.id, "OBD", True, yearly.id])
    assert f'value="{escape(key)}"' in page

    # Confirming after changing the form only checks again.
    changed = {**form, "include_subsidiaries": "0", "confirm": "1", "checked": key}
    page = post(client, "/admin/device_package/bind-type/", changed).get_data(as_text=True)
    assert "1 devices will change." in page
    assert package_of("AC0001") == "GPS-M"

    response = post(client, "/admin/device_package/bind-type/", {**form, "confirm": "1", "checked": key})
    assert response.status_code == 302
    assert f"{COMPANY_FILTER}={world.acme.id}" in response.headers["Location"]
    assert [package_of(n) for n in ("AC0001", "NO0001", "FL0001", "GX0001", "AC0002")] == [
        "GPS-Y", "GPS-Y", "GPS-Y", "GPS-M", "GPS-M"]
    assert len(events("bind_package_type")) == 1


def test_bind_by_type_without_subsidiaries_and_refusals(world, client, login):
    set_type(["AC0001", "NO0001"], "OBD")
    login("support")
    yearly = world.packages["GPS-Y"]
    key = json.dumps([world.acme.id, "OBD", False, yearly.id])
    post(client, "/admin/device_package/bind-type/",
         {"company_id": world.acme.id, "device_type": "OBD", "package_id": yearly.id,
          "confirm": "1", "checked": key})
    assert package_of("AC0001") == "GPS-Y" and package_of("NO0001") == "GPS-M"

    sms = world.packages["VAS-SMS"]
    page = post(client, "/admin/device_package/bind-type/",
                {"company_id": world.acme.id, "device_type": "OBD", "package_id": sms.id}).get_data(as_text=True)
    assert "VAS-SMS is not a renewal package" in page and 'id="rd-confirm"' not in page


def test_bind_by_type_page_escapes_what_the_user_typed(world, client, login):
    login("support")
    page = post(client, "/admin/device_package/bind-type/",
                {"company_id": world.globex.id, "device_type": "<script>x</script>",
                 "package_id": world.packages["GPS-Y"].id}).get_data(as_text=True)
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "0 devices will change." in page


# --- 8. value-added offers through the console --------------------------------------------------

def test_offer_page_lists_only_active_value_added_packages(world, client, login):
    add_package(world, "VAS-OLD", kind="value_added", active=False)
    offer_packages(db.session, world.users["support"], world.acme, [world.packages["VAS-SMS"]])
    db.session.commit()
    login("support")
    page = client.get(f"/admin/company_package/offer/?company_id={world.acme.id}").get_data(as_text=True)
    assert "VAS-SMS" in page and "already offered" in page
    assert "VAS-OLD" not in page and "GPS-M" not in page
    assert 'name="csrf_token"' in page


def test_offer_ticks_two_packages_one_already_offered(world, client, login):
    gprs = add_package(world, "VAS-GPRS", kind="value_added")
    sms = world.packages["VAS-SMS"]
    offer_packages(db.session, world.users["support"], world.south, [sms])
    db.session.commit()
    login("support")

    response = post(client, "/admin/company_package/offer/",
                    [("company_id", str(world.south.id)), ("package_id", str(sms.id)),
                     ("package_id", str(gprs.id))])

    assert response.status_code == 302
    assert offers_of(world.south) == ["VAS-GPRS", "VAS-SMS"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 value-added packages offered to Acme South." in page
    assert "VAS-SMS (already offered to Acme South)" in page
    assert events("offer_packages")[-1].actor_name == "support"


def test_offer_refuses_a_renewal_package_and_changes_nothing(world, client, login):
    login("support")
    page = post(client, "/admin/company_package/offer/",
                [("company_id", str(world.acme.id)), ("package_id", str(world.packages["VAS-SMS"].id)),
                 ("package_id", str(world.packages["GPS-M"].id))]).get_data(as_text=True)
    assert "GPS-M is not a value-added package" in page
    assert offers_of(world.acme) == []


def test_offer_list_filters_by_company_tree_and_package(world, client, login):
    support = world.users["support"]
    gprs = add_package(world, "VAS-GPRS", kind="value_added")
    offer_packages(db.session, support, world.fleet, [world.packages["VAS-SMS"]])
    offer_packages(db.session, support, world.globex, [gprs])
    db.session.commit()
    login("support")

    def listed(query: str) -> str:
        return table_of(client.get(f"{OFFER_LIST}?{query}").get_data(as_text=True))

    table = listed(f"{COMPANY_FILTER}={world.north.id}")
    assert "Acme North Fleet" in table and "VAS-SMS" in table and "VAS-GPRS" not in table
    table = listed("flt0_package_code_equals=VAS-GPRS")
    assert "VAS-GPRS" in table and "Globex &lt;b&gt;Trading&lt;/b&gt;" in table and "Acme North Fleet" not in table
    table = listed("search=SMS")
    assert "Acme North Fleet" in table and "VAS-GPRS" not in table
    table = listed("flt0_active_equals=1")
    assert "VAS-SMS" in table and "VAS-GPRS" in table
    assert "<b>Trading</b>" not in client.get(OFFER_LIST).get_data(as_text=True)


def test_withdraw_offers_through_the_list(world, client, login):
    support = world.users["support"]
    gprs = add_package(world, "VAS-GPRS", kind="value_added")
    offer_packages(db.session, support, world.acme, [world.packages["VAS-SMS"], gprs])
    offer_packages(db.session, support, world.north, [gprs])
    db.session.commit()
    acme_ids = list(db.session.scalars(select(CompanyPackage.id).where(CompanyPackage.company_id == world.acme.id)))
    north_id = db.session.scalar(select(CompanyPackage.id).where(CompanyPackage.company_id == world.north.id))
    login("support")

    response = action(client, "company_package", "delete", acme_ids + [987654])
    assert response.status_code == 302
    assert offers_of(world.acme) == [] and offers_of(world.north) == ["VAS-GPRS"]
    assert "#987654" in client.get(OFFER_LIST).get_data(as_text=True)

    response = confirm_post(client, "/admin/company_package/delete/", {"id": north_id, "url": OFFER_LIST})
    assert response.status_code == 302
    assert offers_of(world.north) == []
    assert [e.actor_name for e in events("withdraw_offers")] == ["support", "support"]
