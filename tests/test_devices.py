"""Devices (管理中心 → 设备管理): the list, suspend/enable, batch suspend, suspended tab,
expiry maintenance and exports. Each action is tested as a function (the rules) and through
one HTTP post (wiring, roles and scope)."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from actions import NotAllowed
from actions.devices import (
    apply_status_change, change_status, parse_numbers, plan_status_change, set_expiry,
)
from models import AuditEvent, Device, db, utcnow
from tests.conftest import confirm_post, make_company, make_device, post

TODAY = date.today()


def numbers_on(page: str) -> list[str]:
    """The device numbers of a rendered list page, in row order."""
    return re.findall(r'<td class="col-number">\s*(\S+?)\s*</td>', page)


def listed(client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, url
    return numbers_on(response.get_data(as_text=True))


def status_of(number: str) -> str:
    db.session.expire_all()
    return db.session.scalar(select(Device.status).where(Device.number == number))


def events(action: str | None = None, model: str = "device") -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.model == model).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


def action_post(client, endpoint: str, action: str, ids, **kwargs):
    pairs = [("action", action)] + [("rowid", str(i)) for i in ids]
    return confirm_post(client, f"/admin/{endpoint}/action/", pairs, required=False, **kwargs)


@pytest.fixture
def dated(world):
    """Devices of Acme with known expiry dates, types and bindings."""
    rows = {
        "EXP-PAST": make_device("EXP-PAST", world.acme, TODAY - timedelta(days=3), device_type="Camera"),
        "EXP-5": make_device("EXP-5", world.acme, TODAY + timedelta(days=5)),
        "EXP-20": make_device("EXP-20", world.south, TODAY + timedelta(days=20), status="suspended"),
        "EXP-60": make_device("EXP-60", world.fleet, TODAY + timedelta(days=60),
                              package=world.packages["GPS-Y"]),
        "EXP-400": make_device("EXP-400", world.globex, TODAY + timedelta(days=400)),
    }
    db.session.commit()
    return rows


# --- parse_numbers -------------------------------------------------------------------------

def test_parse_numbers_splits_on_commas_newlines_semicolons_and_spaces():
    text = "AC0001,AC0002\nNO0001\r\nNO0002; FL0001，FL0002；SO0001\tSO0002  GX0001"
    assert parse_numbers(text) == ["AC0001", "AC0002", "NO0001", "NO0002", "FL0001", "FL0002",
                                   "SO0001", "SO0002", "GX0001"]


@pytest.mark.parametrize("text", ["", None, " \n,, ;\n\t"])
def test_parse_numbers_of_blank_text_is_empty(text):
    assert parse_numbers(text) == []


def test_parse_numbers_keeps_duplicates_for_the_plan_to_report():
    assert parse_numbers("A1\nA1,A2") == ["A1", "A1", "A2"]


# --- suspend / enable: the rules -----------------------------------------------------------

def test_change_status_suspends_active_devices_and_audits_them(world):
    support = world.users["support"]
    devices = [world.devices["AC0001"], world.devices["GX0001"]]
    result = change_status(db.session, support, devices, "suspend", utcnow())
    db.session.commit()
    assert result.changed == ("AC0001", "GX0001") and result.ok
    assert status_of("AC0001") == status_of("GX0001") == "suspended"
    assert db.session.get(Device, devices[0].id).suspended_at is not None
    (event,) = events("suspend")
    assert event.actor_name == "support"
    assert event.ids == f",{devices[0].id},{devices[1].id},"


def test_change_status_enable_clears_suspended_at(world):
    device = world.devices["AC0001"]
    device.suspend(utcnow())
    db.session.commit()
    result = change_status(db.session, world.users["customer"], [device], "enable", utcnow())
    assert result.changed == ("AC0001",)
    db.session.expire_all()
    assert device.status == "active" and device.suspended_at is None


def test_change_status_refuses_devices_already_in_target_state(world):
    result = change_status(db.session, world.users["support"], [world.devices["AC0001"]], "enable", utcnow())
    assert result.changed == ()
    assert result.refused == (("AC0001", "already active"),)


def test_customer_admin_cannot_suspend_other_companies_devices(world):
    customer = world.users["customer"]
    result = change_status(db.session, customer, [world.devices["GX0001"], world.devices["FL0001"]],
                           "suspend", utcnow())
    db.session.commit()
    assert result.changed == ("FL0001",)
    assert [number for number, _why in result.refused] == ["GX0001"]
    assert status_of("GX0001") == "active"
    assert status_of("FL0001") == "suspended"


def test_subsidiary_admin_reaches_down_but_not_up(world):
    plan = plan_status_change(db.session, world.users["north"], ["FL0001", "NO0001", "AC0001", "SO0001"],
                              "suspend")
    assert plan.numbers == ["FL0001", "NO0001"]
    assert [n for n, _ in plan.refused] == ["AC0001", "SO0001"]


def test_plan_refuses_unknown_duplicate_and_already_suspended_numbers(world):
    world.devices["AC0002"].suspend(utcnow())
    db.session.commit()
    plan = plan_status_change(db.session, world.users["customer"],
                              ["AC0001", "AC0001", "NOPE", "AC0002", "GX0001"], "suspend")
    assert plan.numbers == ["AC0001"]
    assert plan.ids == [world.devices["AC0001"].id]
    reasons = dict(plan.refused)
    assert reasons == {
        "AC0001": "listed twice",
        "NOPE": "unknown device number or not one of your devices",
        "AC0002": "already suspended",
        "GX0001": "unknown device number or not one of your devices",
    }


@pytest.mark.parametrize("role", ["finance", "sales"])
def test_status_change_refused_for_roles_without_devices(world, role):
    with pytest.raises(NotAllowed):
        change_status(db.session, world.users[role], [world.devices["AC0001"]], "suspend", utcnow())
    assert status_of("AC0001") == "active"


def test_apply_reports_devices_changed_meanwhile(world):
    support = world.users["support"]
    plan = plan_status_change(db.session, support, ["AC0001", "AC0002"], "suspend")
    world.devices["AC0002"].suspend(utcnow())  # someone else was faster
    db.session.flush()
    result = apply_status_change(db.session, support, plan, utcnow())
    assert result.refused and "changed state meanwhile" in result.refused[-1][1]


def test_set_expiry_records_old_and_new_date(world):
    device = world.devices["AC0001"]
    old = device.expires_on
    new = date(2031, 1, 31)
    set_expiry(db.session, world.users["support"], device, new)
    db.session.commit()
    assert db.session.get(Device, device.id).expires_on == new
    (event,) = events("set_expiry")
    assert event.summary == f"Expires on: {old} → {new}"
    assert event.ids == f",{device.id},"


@pytest.mark.parametrize("role", ["customer", "finance", "sales"])
def test_set_expiry_is_tech_support_only(world, role):
    with pytest.raises(NotAllowed):
        set_expiry(db.session, world.users[role], world.devices["AC0001"], date(2031, 1, 1))


# --- the device list: filters, search, sort, page size, scope -------------------------------

def test_customer_admin_lists_only_their_company_tree_with_the_right_count(client, login, world):
    login("customer")
    page = client.get("/admin/device/?page_size=100").get_data(as_text=True)
    assert sorted(numbers_on(page)) == sorted(
        ["AC0001", "AC0002", "NO0001", "NO0002", "FL0001", "FL0002", "SO0001", "SO0002"])
    assert "List (8)" in page
    assert "Globex" not in page


def test_subsidiary_admin_lists_only_their_subtree(client, login, world):
    login("north")
    page = client.get("/admin/device/").get_data(as_text=True)
    assert sorted(numbers_on(page)) == ["FL0001", "FL0002", "NO0001", "NO0002"]
    assert "List (4)" in page


def test_customer_admin_cannot_open_other_companies_device_details(client, login, world):
    login("customer")
    response = client.get(f"/admin/device/details/?id={world.devices['GX0001'].id}", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Record does not exist." in page
    assert "GX0001" not in page


def test_company_filter_takes_the_subtree(client, login, world):
    login("support")
    assert sorted(listed(client, f"/admin/device/?flt0_company_in_the_tree_of={world.north.id}")) == [
        "FL0001", "FL0002", "NO0001", "NO0002"]


def test_company_filter_cannot_widen_a_customers_scope(client, login, world):
    login("north")
    assert listed(client, f"/admin/device/?flt0_company_in_the_tree_of={world.globex.id}") == []
    assert listed(client, f"/admin/device/?flt0_company_in_the_tree_of={world.acme.id}") != []
    assert set(listed(client, f"/admin/device/?flt0_company_in_the_tree_of={world.acme.id}")) == {
        "FL0001", "FL0002", "NO0001", "NO0002"}


def test_company_filter_options_are_the_actors_companies(client, login, world):
    login("north")
    page = client.get("/admin/device/").get_data(as_text=True)
    assert "Acme North Fleet" in page
    assert "Globex" not in page and "Acme South" not in page


def test_status_filter(client, login, world, dated):
    login("support")
    assert listed(client, "/admin/device/?flt0_status_equals=suspended") == ["EXP-20"]


def test_device_type_filter(client, login, world, dated):
    login("support")
    assert listed(client, "/admin/device/?flt0_device_type_equals=Camera") == ["EXP-PAST"]


def test_expires_on_filters(client, login, world, dated):
    login("support")
    day = (TODAY + timedelta(days=60)).isoformat()
    assert listed(client, f"/admin/device/?flt0_expires_on_equals={day}") == ["EXP-60"]
    start, end = (TODAY + timedelta(days=15)).isoformat(), (TODAY + timedelta(days=100)).isoformat()
    assert listed(client, f"/admin/device/?flt0_expires_on_between={start}+to+{end}") == ["EXP-20", "EXP-60"]


WITHIN_30_DAYS = ["EXP-5", "AC0001", "AC0002", "NO0001", "NO0002", "FL0001", "FL0002",
                  "SO0001", "SO0002", "GX0001", "GX0002", "EXP-20"]


@pytest.mark.parametrize("window, expected", [
    ("expired", ["EXP-PAST"]),
    ("7", ["EXP-5"]),
    ("30", WITHIN_30_DAYS),
    ("59", WITHIN_30_DAYS),  # a typed number of days works like the offered ones
    ("60", WITHIN_30_DAYS + ["EXP-60"]),
])
def test_expiry_window_filter(client, login, world, dated, window, expected):
    login("support")
    assert sorted(listed(client, f"/admin/device/?flt0_expiry_is={window}&page_size=100")) == sorted(expected)


def test_expiry_window_refuses_nonsense_with_a_message(client, login, world, dated):
    login("support")
    page = client.get("/admin/device/?flt0_expiry_is=soon").get_data(as_text=True)
    assert "Invalid Filter Value: soon" in page


def test_package_bound_filter(client, login, world, dated):
    login("support")
    assert sorted(listed(client, "/admin/device/?flt0_renewal_package_is=no&page_size=100")) == [
        "EXP-20", "EXP-400", "EXP-5", "EXP-PAST"]
    bound = listed(client, "/admin/device/?flt0_renewal_package_is=yes&page_size=100")
    assert "EXP-60" in bound and "EXP-5" not in bound and len(bound) == 11


def test_package_code_filter(client, login, world, dated):
    login("support")
    assert listed(client, "/admin/device/?flt0_package_renewal_package_code_equals=GPS-Y") == ["EXP-60"]


def test_filters_combine(client, login, world, dated):
    login("support")
    url = f"/admin/device/?flt0_company_in_the_tree_of={world.acme.id}&flt1_renewal_package_is=no"
    assert sorted(listed(client, url)) == ["EXP-20", "EXP-5", "EXP-PAST"]


def test_search_finds_a_substring_of_the_number(client, login, world):
    login("support")
    assert sorted(listed(client, "/admin/device/?search=AC00")) == ["AC0001", "AC0002"]
    assert sorted(listed(client, "/admin/device/?search=c0001")) == ["AC0001"]  # substring, any case


def test_search_is_a_prefix_search_on_name(client, login, world):
    login("support")
    assert sorted(listed(client, "/admin/device/?search=Truck+GX")) == ["GX0001", "GX0002"]


def test_search_stays_inside_the_customers_scope(client, login, world):
    login("customer")
    assert listed(client, "/admin/device/?search=GX") == []


def test_sort_by_expiry_both_ways(client, login, world, dated):
    login("support")
    ascending = listed(client, "/admin/device/?sort=5&page_size=100")
    descending = listed(client, "/admin/device/?sort=5&desc=1&page_size=100")
    assert ascending[0] == "EXP-PAST" and ascending[-1] == "EXP-400"
    assert descending[0] == "EXP-400" and descending[-1] == "EXP-PAST"


def test_default_sort_is_soonest_expiry_first(client, login, world, dated):
    login("support")
    assert listed(client, "/admin/device/")[:2] == ["EXP-PAST", "EXP-5"]


def test_page_size_limits_rows_and_keeps_the_count(client, login, world):
    for i in range(25):
        make_device(f"ZZ{i:04d}", world.acme)
    db.session.commit()
    login("support")
    page = client.get("/admin/device/?page_size=20").get_data(as_text=True)
    assert len(numbers_on(page)) == 20
    assert "List (35)" in page
    assert len(listed(client, "/admin/device/?page_size=20&page=1")) == 15


# --- one-click and bulk suspend / enable ----------------------------------------------------

def test_each_row_has_a_one_click_toggle_form(client, login, world):
    world.devices["AC0002"].suspend(utcnow())
    db.session.commit()
    login("customer")
    page = client.get("/admin/device/").get_data(as_text=True)
    forms = re.findall(r'<form method="post" action="/admin/device/action/" class="d-inline rd-row-toggle">'
                       r'.*?name="action" value="(\w+)">.*?name="rowid" value="(\d+)">', page)
    by_id = {int(i): op for op, i in forms}
    assert by_id[world.devices["AC0001"].id] == "suspend"
    assert by_id[world.devices["AC0002"].id] == "enable"
    assert 'name="csrf_token"' in page


def test_one_click_suspend_then_enable_over_http(client, login, world):
    device_id = world.devices["AC0001"].id
    login("customer")
    page = action_post(client, "device", "suspend", [device_id], follow_redirects=True).get_data(as_text=True)
    assert "1 devices suspended." in page
    assert status_of("AC0001") == "suspended"
    page = action_post(client, "device", "enable", [device_id], follow_redirects=True).get_data(as_text=True)
    assert "1 devices enabled." in page
    assert status_of("AC0001") == "active"
    assert [e.action for e in events()] == ["suspend", "enable"]
    assert all(e.actor_name == "customer" and e.ids == f",{device_id}," for e in events())


def test_bulk_suspend_and_enable_over_http(client, login, world):
    ids = [world.devices[n].id for n in ("AC0001", "NO0001", "FL0002")]
    login("support")
    page = action_post(client, "device", "suspend", ids, follow_redirects=True).get_data(as_text=True)
    assert "3 devices suspended." in page
    assert [status_of(n) for n in ("AC0001", "NO0001", "FL0002", "AC0002")] == [
        "suspended", "suspended", "suspended", "active"]
    page = action_post(client, "device", "enable", ids, follow_redirects=True).get_data(as_text=True)
    assert "3 devices enabled." in page
    assert {status_of(n) for n in ("AC0001", "NO0001", "FL0002")} == {"active"}


def test_customer_admin_posting_other_companies_ids_changes_nothing_and_is_told(client, login, world):
    gx1, gx2 = world.devices["GX0001"].id, world.devices["GX0002"].id
    login("customer")
    page = action_post(client, "device", "suspend", [gx1, gx2], follow_redirects=True).get_data(as_text=True)
    assert status_of("GX0001") == status_of("GX0002") == "active"
    assert "Not changed:" in page
    assert f"#{gx1} (not found or outside your companies)" in page
    assert f"#{gx2} (not found or outside your companies)" in page
    assert "devices suspended" not in page


def test_bulk_suspend_with_mixed_ids_changes_only_the_actors_devices(client, login, world):
    own, other = world.devices["SO0001"].id, world.devices["GX0001"].id
    login("customer")
    page = action_post(client, "device", "suspend", [own, other, "x1"], follow_redirects=True).get_data(as_text=True)
    assert status_of("SO0001") == "suspended" and status_of("GX0001") == "active"
    assert "1 devices suspended." in page
    assert f"#{other} (" in page and "#x1 (" in page


def test_bulk_suspend_reports_already_suspended_by_number(client, login, world):
    world.devices["AC0001"].suspend(utcnow())
    db.session.commit()
    login("support")
    page = action_post(client, "device", "suspend", [world.devices["AC0001"].id],
                       follow_redirects=True).get_data(as_text=True)
    assert "AC0001 (already suspended)" in page


@pytest.mark.parametrize("role", ["finance", "sales"])
def test_roles_without_devices_get_403(client, login, world, role):
    login(role)
    for url in ("/admin/device/", "/admin/suspended_device/", "/admin/device_batch/",
                "/admin/device_expiry/", "/admin/device/export/xlsx/"):
        assert client.get(url).status_code == 403, url
    response = action_post(client, "device", "suspend", [world.devices["AC0001"].id])
    assert response.status_code == 403
    assert status_of("AC0001") == "active"


def test_customer_admin_may_not_maintain_expiry(client, login, world):
    login("customer")
    assert client.get("/admin/device_expiry/").status_code == 403
    device = world.devices["AC0001"]
    response = post(client, f"/admin/device_expiry/edit/?id={device.id}", {"expires_on": "2031-01-01"})
    assert response.status_code == 403


def test_anonymous_is_sent_to_login(client, world):
    response = client.get("/admin/device/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_device_list_has_no_create_edit_or_delete(client, login, world):
    login("support")
    device_id = world.devices["AC0001"].id
    assert client.get("/admin/device/new/").status_code == 302
    assert client.get(f"/admin/device/edit/?id={device_id}").status_code == 302
    post(client, "/admin/device/delete/", {"id": device_id})
    assert db.session.get(Device, device_id) is not None


# --- batch suspend page ----------------------------------------------------------------------

def test_batch_preview_lists_every_refusal_and_changes_nothing(client, login, world):
    world.devices["AC0002"].suspend(utcnow())
    db.session.commit()
    login("customer")
    text = "AC0001,NO0001\nAC0002\nGX0001\nNOPE-1\nAC0001"
    page = post(client, "/admin/device_batch/", {"numbers": text, "operation": "suspend"}).get_data(as_text=True)
    refused = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", page))
    assert refused == {
        "AC0002": "already suspended",
        "GX0001": "unknown device number or not one of your devices",
        "NOPE-1": "unknown device number or not one of your devices",
        "AC0001": "listed twice",
    }
    assert "2 devices will change." in page
    assert 'name="confirm" value="1"' in page and "Suspend 2 devices" in page
    assert status_of("AC0001") == status_of("NO0001") == "active"
    assert events() == []


def test_batch_confirm_applies_the_plan(client, login, world):
    login("customer")
    response = confirm_post(client, "/admin/device_batch/",
                            {"numbers": "AC0001,NO0001\nGX0001", "operation": "suspend", "confirm": "1"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 devices suspended." in page
    assert "GX0001 (unknown device number or not one of your devices)" in page
    assert status_of("AC0001") == status_of("NO0001") == "suspended"
    assert status_of("GX0001") == "active"
    (event,) = events("suspend")
    assert event.actor_name == "customer"
    assert event.ids == f",{world.devices['AC0001'].id},{world.devices['NO0001'].id},"


def test_batch_enable(client, login, world):
    for n in ("FL0001", "FL0002"):
        world.devices[n].suspend(utcnow())
    db.session.commit()
    login("support")
    page = post(client, "/admin/device_batch/", {"numbers": "FL0001\r\nFL0002\nFL0001x", "operation": "enable"}
                ).get_data(as_text=True)
    assert "Enable 2 devices" in page
    post(client, "/admin/device_batch/", {"numbers": "FL0001\r\nFL0002", "operation": "enable", "confirm": "1"})
    assert status_of("FL0001") == status_of("FL0002") == "active"


def test_batch_with_nothing_to_change_offers_no_confirm(client, login, world):
    login("customer")
    page = post(client, "/admin/device_batch/", {"numbers": "GX0001", "operation": "suspend"}).get_data(as_text=True)
    assert "0 devices will change." in page
    assert 'name="confirm"' not in page
    page = post(client, "/admin/device_batch/", {"numbers": "GX0001", "operation": "suspend", "confirm": "1"},
                follow_redirects=True).get_data(as_text=True)
    assert "Nothing to change." in page
    assert status_of("GX0001") == "active"


def test_batch_refuses_more_than_the_limit(client, login, world, monkeypatch, web_app):
    monkeypatch.setitem(web_app.config, "BATCH_SUSPEND_MAX_NUMBERS", 3)
    login("support")
    page = post(client, "/admin/device_batch/",
                {"numbers": "AC0001,AC0002,NO0001,NO0002", "operation": "suspend", "confirm": "1"}
                ).get_data(as_text=True)
    assert "At most 3 device numbers at once; you pasted 4." in page
    assert status_of("AC0001") == "active"
    page = post(client, "/admin/device_batch/", {"numbers": "AC0001,AC0002,NO0001", "operation": "suspend"}
                ).get_data(as_text=True)
    assert "3 devices will change." in page


def test_batch_refuses_empty_input(client, login, world):
    login("support")
    page = post(client, "/admin/device_batch/", {"numbers": " \n ", "operation": "suspend"}).get_data(as_text=True)
    assert "Paste at least one device number." in page



def test_batch_page_shows_the_tabs(client, login, world):
    login("customer")
    page = client.get("/admin/device_batch/").get_data(as_text=True)
    for href in ("/admin/device/", "/admin/device_batch/", "/admin/suspended_device/"):
        assert f'href="{href}"' in page


# --- suspended devices tab -------------------------------------------------------------------

def test_suspended_tab_lists_only_suspended_devices_in_scope(client, login, world):
    for n in ("AC0001", "FL0002", "GX0001"):
        world.devices[n].suspend(utcnow())
    db.session.commit()
    login("customer")
    page = client.get("/admin/suspended_device/").get_data(as_text=True)
    assert sorted(numbers_on(page)) == ["AC0001", "FL0002"]
    assert "List (2)" in page


def test_suspended_tab_offers_enable_not_suspend(client, login, world):
    world.devices["AC0001"].suspend(utcnow())
    db.session.commit()
    login("customer")
    page = client.get("/admin/suspended_device/").get_data(as_text=True)
    assert 'name="action" value="enable"' in page
    assert 'name="action" value="suspend"' not in page
    assert "'suspend'" not in page and '"suspend"' not in page


def test_suspended_tab_enable_over_http(client, login, world):
    world.devices["AC0001"].suspend(utcnow())
    db.session.commit()
    login("customer")
    page = action_post(client, "suspended_device", "enable", [world.devices["AC0001"].id],
                       follow_redirects=True).get_data(as_text=True)
    assert "1 devices enabled." in page
    assert status_of("AC0001") == "active"


def test_suspended_tab_refuses_the_suspend_action(client, login, world):
    login("support")
    action_post(client, "suspended_device", "suspend", [world.devices["AC0001"].id])
    assert status_of("AC0001") == "active"


# --- expiry maintenance ------------------------------------------------------------------------

def test_tech_support_edits_expiry_and_the_audit_names_old_and_new(client, login, world):
    device = world.devices["NO0001"]
    old = device.expires_on
    login("support")
    response = post(client, f"/admin/device_expiry/edit/?id={device.id}", {"expires_on": "2031-03-31"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Device, device.id).expires_on == date(2031, 3, 31)
    (event,) = [e for e in events() if e.action in ("edit", "set_expiry")]
    assert event.actor_name == "support"
    assert event.ids == f",{device.id},"
    assert event.summary == f"Expires on: {old} → 2031-03-31"
    page = client.get(f"/admin/device/details/?id={device.id}").get_data(as_text=True)
    history = page[page.index('id="rd-history"'):]
    assert f"Expires on: {old} → 2031-03-31" in history
    assert "support" in history


def test_expiry_edit_refuses_an_empty_date(client, login, world):
    device = world.devices["NO0001"]
    old = device.expires_on
    login("support")
    page = post(client, f"/admin/device_expiry/edit/?id={device.id}", {"expires_on": ""}).get_data(as_text=True)
    assert "This field is required." in page
    db.session.expire_all()
    assert db.session.get(Device, device.id).expires_on == old
    assert events() == []


def test_expiry_edit_form_offers_only_the_date(client, login, world):
    login("support")
    page = client.get(f"/admin/device_expiry/edit/?id={world.devices['NO0001'].id}").get_data(as_text=True)
    assert 'name="expires_on-year"' in page and 'name="expires_on-day"' in page
    assert 'name="number"' not in page and 'name="status"' not in page


def test_expiry_maintenance_filters_by_company(client, login, world):
    login("support")
    page = client.get(f"/admin/device_expiry/?flt0_company_in_the_tree_of={world.south.id}").get_data(as_text=True)
    assert sorted(numbers_on(page)) == ["SO0001", "SO0002"]


def test_expiry_maintenance_starts_with_choosing_a_company(client, login, world):
    """设备到期维护 → 选择某公司下的设备: a company box above the list, as on 客户延期配置, setting the filter."""
    login("support")
    page = client.get("/admin/device_expiry/").get_data(as_text=True)
    picker = page.split('id="rd-company-picker"')[1].split("</form>")[0]
    assert 'name="flt0_company_in_the_tree_of"' in picker
    assert f'<option value="{world.south.id}">' in picker and f'<option value="{world.acme.id}">' in picker
    chosen = client.get(f"/admin/device_expiry/?flt0_company_in_the_tree_of={world.south.id}").get_data(as_text=True)
    assert f'<option value="{world.south.id}" selected>' in chosen


def test_device_details_without_history_says_so(client, login, world):
    login("support")
    page = client.get(f"/admin/device/details/?id={world.devices['AC0001'].id}").get_data(as_text=True)
    assert "No recorded changes." in page


def test_device_details_history_lists_suspend_and_enable(client, login, world):
    device_id = world.devices["AC0001"].id
    login("support")
    action_post(client, "device", "suspend", [device_id])
    action_post(client, "device", "enable", [device_id])
    page = client.get(f"/admin/device/details/?id={device_id}").get_data(as_text=True)
    history = page[page.index('id="rd-history"'):]
    assert "<td>Suspend</td>" in history and "<td>Enable</td>" in history


def test_device_details_history_does_not_list_other_devices(client, login, world):
    login("support")
    action_post(client, "device", "suspend", [world.devices["AC0002"].id])
    page = client.get(f"/admin/device/details/?id={world.devices['AC0001'].id}").get_data(as_text=True)
    assert "No recorded changes." in page


# --- exports ---------------------------------------------------------------------------------

@pytest.fixture
def formula_names(world):
    names = {"AC0001": "=HYPERLINK(\"http://x\")", "AC0002": "+1+1", "NO0001": "-2", "NO0002": "@SUM(A1)"}
    for number, name in names.items():
        world.devices[number].name = name
    db.session.commit()
    return names


def read_xlsx(data: bytes):
    sheet = load_workbook(io.BytesIO(data)).active
    return list(sheet.iter_rows())


def test_xlsx_export_has_only_the_scoped_rows(client, login, world):
    login("north")
    response = client.get("/admin/device/export/xlsx/")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    rows = read_xlsx(response.data)
    assert [c.value for c in rows[0]][:2] == ["Device number", "Device name"]
    assert sorted(r[0].value for r in rows[1:]) == ["FL0001", "FL0002", "NO0001", "NO0002"]


def test_xlsx_export_follows_the_filters(client, login, world):
    world.devices["NO0002"].suspend(utcnow())
    db.session.commit()
    login("support")
    rows = read_xlsx(client.get("/admin/device/export/xlsx/?flt0_status_equals=suspended").data)
    assert [r[0].value for r in rows[1:]] == ["NO0002"]
    assert rows[1][4].value == "Suspended"


def test_xlsx_export_never_writes_formulas(client, login, world, formula_names):
    login("customer")
    rows = read_xlsx(client.get("/admin/device/export/xlsx/").data)
    names = {r[0].value: r[1] for r in rows[1:]}
    for number, name in formula_names.items():
        cell = names[number]
        assert cell.data_type == "s", (number, cell.data_type)
        assert cell.value in (name, "'" + name)


def test_csv_export_prefixes_formula_values_with_a_quote(client, login, world, formula_names):
    login("customer")
    response = client.get("/admin/device/export/csv/")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    names = {r[0]: r[1] for r in rows[1:]}
    for number, name in formula_names.items():
        assert names[number] == "'" + name
    assert "GX0001" not in names
    assert names["FL0001"] == "Truck FL0001"


def test_suspended_tab_export_has_only_suspended_devices(client, login, world):
    world.devices["SO0001"].suspend(utcnow())
    db.session.commit()
    login("customer")
    rows = read_xlsx(client.get("/admin/suspended_device/export/xlsx/").data)
    assert [r[0].value for r in rows[1:]] == ["SO0001"]


def test_other_company_devices_in_scope_of_new_subsidiary(client, login, world):
    """A company added under Acme later is in the customer's scope at once."""
    west = make_company("Acme West", world.acme)
    make_device("WE0001", west)
    db.session.commit()
    login("customer")
    assert "WE0001" in listed(client, "/admin/device/?search=WE")


def test_exports_escape_formulas_in_related_names_too(client, login, world):
    world.acme.name = "=cmd|' /C calc'!A0"
    db.session.commit()
    login("customer")
    rows = read_xlsx(client.get("/admin/device/export/xlsx/?search=AC").data)
    assert rows[1][3].value.endswith("=cmd|' /C calc'!A0") and rows[1][3].data_type == "s"
    text = client.get("/admin/device/export/csv/?search=AC").get_data(as_text=True)
    assert "'=cmd|' /C calc'!A0" in text


def test_unknown_page_size_falls_back_to_the_default(client, login, world):
    for i in range(55):
        make_device(f"ZZ{i:04d}", world.acme)
    db.session.commit()
    login("support")
    assert len(listed(client, "/admin/device/?page_size=100000")) == 50
    assert len(listed(client, "/admin/device/?page_size=100")) == 65


def test_package_bound_filter_refuses_other_values(client, login, world):
    login("support")
    page = client.get("/admin/device/?flt0_renewal_package_is=maybe").get_data(as_text=True)
    assert "Invalid Filter Value" in page
    assert len(numbers_on(page)) == 10


def test_one_click_toggle_returns_to_the_same_filtered_page(client, login, world):
    login("customer")
    url = f"/admin/device/?flt0_company_in_the_tree_of={world.south.id}&page_size=20"
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'class="d-inline rd-row-toggle">.*?name="url" value="([^"]+)"', page)
    assert match, "the toggle form carries the list's URL"
    response = confirm_post(client, "/admin/device/action/",
                            {"action": "suspend", "rowid": world.devices["SO0001"].id,
                             "url": match.group(1).replace("&amp;", "&")})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/device/?")
    assert f"flt0_company_in_the_tree_of={world.south.id}" in response.headers["Location"]
    assert status_of("SO0001") == "suspended"


def test_batch_refuses_an_unknown_operation(client, login, world):
    login("support")
    page = post(client, "/admin/device_batch/", {"numbers": "AC0001", "operation": "delete", "confirm": "1"},
                follow_redirects=True).get_data(as_text=True)
    assert "Choose suspend or enable." in page
    assert status_of("AC0001") == "active"
    assert events() == []


def test_inline_expiry_edit_is_audited(client, login, world):
    device = world.devices["SO0002"]
    old = device.expires_on
    login("support")
    response = post(client, "/admin/device_expiry/ajax/update/",
                    {"list_form_pk": device.id, "expires_on": "2030-02-28"})
    assert response.status_code == 200, response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Device, device.id).expires_on == date(2030, 2, 28)
    (event,) = events("edit")
    assert event.summary == f"Expires on: {old} → 2030-02-28"


def test_inline_expiry_edit_refuses_an_empty_date(client, login, world):
    device = world.devices["SO0002"]
    old = device.expires_on
    login("support")
    response = post(client, "/admin/device_expiry/ajax/update/", {"list_form_pk": device.id, "expires_on": ""})
    assert response.status_code == 500
    db.session.expire_all()
    assert db.session.get(Device, device.id).expires_on == old
    assert events() == []


def test_filter_url_names_the_dashboard_and_operators_rely_on(app):
    """Named filter URLs are part of the contract (bookmarks, dashboard cards): keep them stable."""
    views = {v.endpoint: v for v in app.extensions["admin"][0]._views}
    for endpoint in ("device", "suspended_device", "device_expiry"):
        args = views[endpoint]._filter_args
        for name in ("company_in_the_tree_of", "device_type_equals", "expires_on_between", "expiry_is",
                     "renewal_package_is", "package_renewal_package_code_equals"):
            assert name in args, (endpoint, name)
    assert "status_equals" in views["device"]._filter_args
    assert "status_equals" not in views["suspended_device"]._filter_args
