"""The package catalog (技术支持 → 套餐大类 / 套餐小类 / 套餐): the rules as functions, then the
create/edit/delete forms, search, filters and access over HTTP."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from actions import DomainError, NotAllowed
from actions.catalog import (
    check_category_deletable, check_code_unique, check_package, check_subcategory_deletable,
    delete_package, package_in_use,
)
from models import (
    AuditEvent, CompanyPackage, Package, PackageCategory, PackageSubcategory, db,
)
from tests.conftest import confirm_post, post


def category(code: str) -> PackageCategory:
    return db.session.scalar(select(PackageCategory).where(PackageCategory.code == code))


def subcategory(code: str) -> PackageSubcategory:
    return db.session.scalar(select(PackageSubcategory).where(PackageSubcategory.code == code))


def package(code: str) -> Package | None:
    db.session.expire_all()
    return db.session.scalar(select(Package).where(Package.code == code))


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def audit(model: str, action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.model == model).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


def codes_on(page: str) -> list[str]:
    return re.findall(r'<td class="col-code">\s*(.*?)\s*</td>', page, re.S)


def new_package(world, **overrides) -> Package:
    ren = category("REN")
    fields = dict(code="NEW-1", name="New", category=ren, category_id=ren.id,
                  subcategory_id=subcategory("REN-GPS").id, kind="renewal", amount=Decimal("12.50"),
                  pricing="per_month", currency="CNY")
    fields.update(overrides)
    return Package(**fields)


def package_form(world, **overrides) -> dict:
    form = {
        "code": "GPS-Q", "name": "GPS quarterly", "category": str(category("REN").id),
        "subcategory_id": str(subcategory("REN-GPS").id), "kind": "renewal", "amount": "27.90",
        "pricing": "per_term", "term_months": "3", "currency": "CNY", "active": "y",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


# --- the rules, called directly ---------------------------------------------------------------

def test_a_valid_package_passes_the_checks(world):
    check_package(db.session, new_package(world))


def test_subcategory_must_belong_to_the_category(world):
    vas = category("VAS")
    with pytest.raises(DomainError, match="Subcategory REN-GPS GPS does not belong to category VAS Value-added"):
        check_package(db.session, new_package(world, category=vas, category_id=vas.id))


def test_subcategory_must_exist(world):
    with pytest.raises(DomainError, match="does not belong"):
        check_package(db.session, new_package(world, subcategory_id=99999))


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-1.00"), None])
def test_amount_must_be_greater_than_zero(world, amount):
    with pytest.raises(DomainError, match="Amount: must be greater than zero"):
        check_package(db.session, new_package(world, amount=amount))


def test_amount_with_two_decimals_is_accepted_on_the_form(client, login, world):
    login("support")
    assert post(client, "/admin/package/new/", package_form(world, amount="0.01")).status_code == 302
    assert package("GPS-Q").amount == Decimal("0.01")


def test_amount_has_at_most_two_decimals(world):
    with pytest.raises(DomainError, match="Amount: at most two decimal places"):
        check_package(db.session, new_package(world, amount=Decimal("9.999")))


def test_trailing_zeros_are_not_extra_decimals(world):
    check_package(db.session, new_package(world, amount=Decimal("9.990")))


def test_amount_must_fit_the_column(world):
    with pytest.raises(DomainError, match="Amount"):
        check_package(db.session, new_package(world, amount=Decimal("1000000000000.00")))


@pytest.mark.parametrize("term", [None, 0, -3])
def test_per_term_pricing_needs_term_months(world, term):
    with pytest.raises(DomainError, match="Term months"):
        check_package(db.session, new_package(world, pricing="per_term", term_months=term))


def test_term_months_are_dropped_for_other_pricing(world):
    pkg = new_package(world, pricing="per_year", term_months=6)
    check_package(db.session, pkg)
    assert pkg.term_months is None


def test_codes_are_unique_per_table(world):
    with pytest.raises(DomainError, match="GPS-M"):
        check_code_unique(db.session, new_package(world, code="GPS-M"))
    with pytest.raises(DomainError, match="REN"):
        check_code_unique(db.session, PackageCategory(code="REN", name="x", kind="renewal"))
    with pytest.raises(DomainError, match="REN-GPS"):
        check_code_unique(db.session, PackageSubcategory(code="REN-GPS", name="x", kind="renewal"))
    check_code_unique(db.session, new_package(world, code="BRAND-NEW"))
    # A row keeps its own code when edited.
    check_code_unique(db.session, world.packages["GPS-M"])


def test_package_bound_to_a_device_is_in_use(world):
    assert package_in_use(db.session, world.packages["GPS-M"])
    assert not package_in_use(db.session, world.packages["GPS-Y"])


def test_deleting_a_bound_package_is_refused_with_its_usage(world):
    gps_m = world.packages["GPS-M"]
    with pytest.raises(DomainError, match="Package GPS-M is bound to 10 devices and offered to 0 companies "
                                          r"\(5 companies in all\): it cannot be deleted. Stop its sales instead"):
        delete_package(db.session, world.users["support"], gps_m)
    db.session.rollback()
    assert package("GPS-M").active is True
    assert audit("package") == []


def test_deleting_a_package_offered_to_a_company_is_refused(world):
    sms = world.packages["VAS-SMS"]
    db.session.add(CompanyPackage(company_id=world.acme.id, package_id=sms.id))
    db.session.flush()
    with pytest.raises(DomainError, match="offered to 1 companies"):
        delete_package(db.session, world.users["support"], sms)


def test_deleting_an_unused_package_deletes_it(world):
    gps_y = world.packages["GPS-Y"]
    gps_y_id = gps_y.id
    assert delete_package(db.session, world.users["support"], gps_y) == "deleted"
    db.session.commit()
    assert package("GPS-Y") is None
    (event,) = audit("package", "delete")
    assert event.ids == f",{gps_y_id},"


@pytest.mark.parametrize("role", ["customer", "finance", "sales"])
def test_only_tech_support_deletes_packages(world, role):
    with pytest.raises(NotAllowed):
        delete_package(db.session, world.users[role], world.packages["GPS-Y"])


def test_category_with_subcategories_is_not_deletable(world):
    with pytest.raises(DomainError, match="Category REN still has subcategories or packages"):
        check_category_deletable(db.session, category("REN"))


def test_category_with_only_packages_is_not_deletable(world):
    with pytest.raises(DomainError, match="Category VAS"):
        check_category_deletable(db.session, category("VAS"))


def test_empty_category_is_deletable(world):
    empty = PackageCategory(code="EMPTY", name="Empty", kind="seat")
    db.session.add(empty)
    db.session.flush()
    check_category_deletable(db.session, empty)


def test_subcategory_used_by_packages_is_not_deletable(world):
    with pytest.raises(DomainError, match="Subcategory REN-GPS is used by packages"):
        check_subcategory_deletable(db.session, subcategory("REN-GPS"))


# --- create forms ---------------------------------------------------------------------------

def test_create_category_subcategory_and_package_through_the_forms(client, login, world):
    login("support")
    response = post(client, "/admin/packagecategory/new/", {"code": "SIM", "name": "SIM cards", "kind": "renewal"})
    assert response.status_code == 302
    sim = category("SIM")
    assert sim.name == "SIM cards" and sim.kind == "renewal"

    response = post(client, "/admin/packagesubcategory/new/",
                    {"code": "SIM-4G", "name": "4G", "kind": "renewal", "category": str(sim.id)})
    assert response.status_code == 302
    sim4g = subcategory("SIM-4G")
    assert sim4g.category_id == sim.id

    response = post(client, "/admin/package/new/", package_form(
        world, code="SIM-4G-Y", name="4G yearly", category=str(sim.id), subcategory_id=str(sim4g.id),
        amount="120.00", pricing="per_year", term_months=""))
    assert response.status_code == 302, response.get_data(as_text=True)
    pkg = package("SIM-4G-Y")
    assert (pkg.category_id, pkg.subcategory_id, pkg.amount, pkg.pricing, pkg.term_months) == (
        sim.id, sim4g.id, Decimal("120.00"), "per_year", None)

    for model, code in (("package_category", "SIM"), ("package_subcategory", "SIM-4G"), ("package", "SIM-4G-Y")):
        (event,) = audit(model, "create")
        assert event.actor_name == "support"
        assert f"Code: — → {code}" in event.summary


def test_package_form_asks_for_the_subcategory_right_after_the_category(client, login, world):
    """套餐管理 → 新增: 套餐代码、套餐名称、归属大类、小类、金额、计价方式、币别, in the guide's order."""
    login("support")
    for url in ("/admin/package/new/", f"/admin/package/edit/?id={package('GPS-M').id}"):
        page = client.get(url).get_data(as_text=True)
        form = re.search(r'<form[^>]*class="admin-form[^"]*"[^>]*>(.*?)</form>', page, re.S).group(1)
        names = [n for n in re.findall(r'<(?:input|select)[^>]*\bname="([a-z_]+)"', form) if n != "csrf_token"]
        assert names[:4] == ["code", "name", "category", "subcategory_id"], (url, names)
        assert names.index("amount") < names.index("pricing") < names.index("currency"), (url, names)
        amount = re.search(r'<input[^>]*\bname="amount"[^>]*>', form).group(0)
        assert " required" in amount, amount  # asked for by the browser: every package has a price
        label = re.search(r'<label[^>]*for="amount"[^>]*>(.*?)</label>', form, re.S).group(1)
        assert "&#42;" in label or "*" in label, label  # and starred like 编码 and 名称


def test_create_per_term_package(client, login, world):
    login("support")
    response = post(client, "/admin/package/new/", package_form(world))
    assert response.status_code == 302
    pkg = package("GPS-Q")
    assert (pkg.pricing, pkg.term_months, pkg.amount) == ("per_term", 3, Decimal("27.90"))


def test_package_without_subcategory(client, login, world):
    login("support")
    response = post(client, "/admin/package/new/", package_form(
        world, code="VAS-MAP", category=str(category("VAS").id), subcategory_id="", kind="value_added",
        pricing="per_month", term_months=""))
    assert response.status_code == 302
    assert package("VAS-MAP").subcategory_id is None


@pytest.mark.parametrize("url, form, code", [
    ("/admin/packagecategory/new/", {"code": "REN", "name": "Again", "kind": "renewal"}, "REN"),
    ("/admin/packagesubcategory/new/", {"code": "REN-GPS", "name": "Again", "kind": "renewal"}, "REN-GPS"),
])
def test_duplicate_category_codes_get_a_message_naming_the_code(client, login, world, url, form, code):
    if "subcategory" in url:
        form["category"] = str(category("REN").id)
    login("support")
    before = (count(PackageCategory), count(PackageSubcategory))
    response = post(client, url, form)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"Code {code} is already used" in page
    assert "IntegrityError" not in page and "UNIQUE" not in page
    assert (count(PackageCategory), count(PackageSubcategory)) == before


def test_duplicate_package_code_gets_a_message_naming_the_code(client, login, world):
    login("support")
    response = post(client, "/admin/package/new/", package_form(world, code="GPS-M"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Code GPS-M is already used" in page
    assert count(Package) == 3


def test_editing_to_a_taken_code_is_refused(client, login, world):
    login("support")
    gps_y = world.packages["GPS-Y"]
    response = post(client, f"/admin/package/edit/?id={gps_y.id}", package_form(
        world, code="GPS-M", name="GPS yearly", pricing="per_year", term_months=""))
    assert "Code GPS-M is already used" in response.get_data(as_text=True)
    assert package("GPS-M").name == "GPS monthly"
    assert package("GPS-Y") is not None


def test_editing_a_package_keeps_its_own_code(client, login, world):
    login("support")
    gps_y = world.packages["GPS-Y"]
    response = post(client, f"/admin/package/edit/?id={gps_y.id}", package_form(
        world, code="GPS-Y", name="GPS per year", amount="99.00", pricing="per_year", term_months=""))
    assert response.status_code == 302
    pkg = package("GPS-Y")
    assert (pkg.name, pkg.amount) == ("GPS per year", Decimal("99.00"))
    (event,) = audit("package", "edit")
    assert "Amount: 100.00 → 99.00" in event.summary


def test_subcategory_of_another_category_is_refused(client, login, world):
    login("support")
    response = post(client, "/admin/package/new/", package_form(world, category=str(category("VAS").id)))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Subcategory REN-GPS GPS does not belong to category VAS Value-added." in page
    assert package("GPS-Q") is None


@pytest.mark.parametrize("amount, message", [
    ("0", "Amount: must be greater than zero."),
    ("-5", "Amount: must be greater than zero."),
    ("1.005", "Amount: at most two decimal places."),
    ("1000000000000", "Amount: 1000000000000 is larger than any single payment."),
    ("ten", "Amount: ten is not an amount."),
    ("", "Amount: enter an amount."),
])
def test_amount_rules_on_the_form(client, login, world, amount, message):
    login("support")
    page = post(client, "/admin/package/new/", package_form(world, amount=amount)).get_data(as_text=True)
    assert message in page
    assert "This field is required" not in page  # one message, in our words, also for an empty amount
    assert package("GPS-Q") is None


def test_per_term_without_term_months_is_refused_on_the_form(client, login, world):
    login("support")
    page = post(client, "/admin/package/new/", package_form(world, term_months="")).get_data(as_text=True)
    assert "Term months: required" in page
    assert package("GPS-Q") is None


def test_package_needs_a_category(client, login, world):
    login("support")
    page = post(client, "/admin/package/new/", package_form(world, category="", subcategory_id="")
                ).get_data(as_text=True)
    assert "This field is required." in page
    assert package("GPS-Q") is None


def test_moving_a_used_subcategory_to_another_category_is_refused(client, login, world):
    login("support")
    sub = subcategory("REN-GPS")
    response = post(client, f"/admin/packagesubcategory/edit/?id={sub.id}",
                    {"code": "REN-GPS", "name": "GPS", "kind": "renewal", "category": str(category("VAS").id)})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Subcategory REN-GPS is used by packages" in page
    db.session.expire_all()
    assert subcategory("REN-GPS").category_id == category("REN").id


def test_renaming_a_used_subcategory_is_fine(client, login, world):
    login("support")
    sub = subcategory("REN-GPS")
    response = post(client, f"/admin/packagesubcategory/edit/?id={sub.id}",
                    {"code": "REN-GPS", "name": "GPS trackers", "kind": "renewal",
                     "category": str(category("REN").id)})
    assert response.status_code == 302
    db.session.expire_all()
    assert subcategory("REN-GPS").name == "GPS trackers"


# --- delete through the list pages -----------------------------------------------------------

def test_deleting_a_bound_package_is_refused_and_says_why(client, login, world):
    login("support")
    gps_m = world.packages["GPS-M"]
    page = confirm_post(client, "/admin/package/delete/", {"id": gps_m.id}, follow_redirects=True).get_data(as_text=True)
    assert ("Package GPS-M is bound to 10 devices and offered to 0 companies (5 companies in all): it cannot be "
            "deleted. Stop its sales instead; nothing was changed.") in page
    assert "Record was successfully deleted" not in page
    assert package("GPS-M").active is True


def test_deleting_an_unused_package_over_http(client, login, world):
    login("support")
    page = confirm_post(client, "/admin/package/delete/", {"id": world.packages["GPS-Y"].id},
                follow_redirects=True).get_data(as_text=True)
    assert "Record was successfully deleted." in page
    assert package("GPS-Y") is None
    assert [e.action for e in audit("package")] == ["delete"]


def test_deleting_a_category_with_subcategories_is_refused_with_a_message(client, login, world):
    login("support")
    page = confirm_post(client, "/admin/packagecategory/delete/", {"id": category("REN").id},
                follow_redirects=True).get_data(as_text=True)
    assert "Category REN still has subcategories or packages; remove those first." in page
    assert category("REN") is not None


def test_deleting_a_used_subcategory_is_refused_with_a_message(client, login, world):
    login("support")
    page = confirm_post(client, "/admin/packagesubcategory/delete/", {"id": subcategory("REN-GPS").id},
                follow_redirects=True).get_data(as_text=True)
    assert "Subcategory REN-GPS is used by packages; move or deactivate them first." in page
    assert subcategory("REN-GPS") is not None


def test_deleting_an_empty_category_works_and_is_audited(client, login, world):
    empty = PackageCategory(code="EMPTY", name="Empty", kind="seat")
    db.session.add(empty)
    db.session.commit()
    empty_id = empty.id
    login("support")
    page = confirm_post(client, "/admin/packagecategory/delete/", {"id": empty_id}, follow_redirects=True
                ).get_data(as_text=True)
    assert "Record was successfully deleted." in page
    assert category("EMPTY") is None
    (event,) = audit("package_category", "delete")
    assert event.ids == f",{empty_id}," and event.actor_name == "support"


# --- lists: search and filters ---------------------------------------------------------------

def test_package_search_by_code_and_name(client, login, world):
    login("support")
    assert sorted(codes_on(client.get("/admin/package/?search=GPS").get_data(as_text=True))) == ["GPS-M", "GPS-Y"]
    assert codes_on(client.get("/admin/package/?search=SMS").get_data(as_text=True)) == ["VAS-SMS"]


@pytest.mark.parametrize("query, expected", [
    ("flt0_pricing_method_equals=per_year", ["GPS-Y"]),
    ("flt0_type_equals=value_added", ["OLD", "VAS-SMS"]),
    ("flt0_category_package_category_name_equals=Renewal", ["GPS-M", "GPS-Y"]),
    ("flt0_amount_greater_than=50", ["GPS-Y"]),
    ("flt0_currency_equals=CNY", ["GPS-M", "GPS-Y", "VAS-SMS"]),
    ("flt0_currency_equals=USD", ["OLD"]),
    ("flt0_active_equals=0", ["OLD"]),
    ("flt0_code_contains=-M", ["GPS-M"]),
])
def test_package_filters(client, login, world, query, expected):
    db.session.add(Package(code="OLD", name="Retired", category_id=category("VAS").id, kind="value_added",
                           amount=Decimal("1.00"), pricing="per_month", currency="USD", active=False))
    db.session.commit()
    login("support")
    assert sorted(codes_on(client.get(f"/admin/package/?{query}").get_data(as_text=True))) == expected


def test_category_search_and_filter(client, login, world):
    login("support")
    assert codes_on(client.get("/admin/packagecategory/?search=Value").get_data(as_text=True)) == ["VAS"]
    assert codes_on(client.get("/admin/packagecategory/?flt0_type_equals=renewal").get_data(as_text=True)) == ["REN"]


def test_subcategory_filter_by_category(client, login, world):
    db.session.add(PackageSubcategory(code="VAS-X", name="Extra", kind="value_added",
                                      category_id=category("VAS").id))
    db.session.commit()
    login("support")
    page = client.get("/admin/packagesubcategory/?flt0_category_package_category_code_equals=VAS")
    assert codes_on(page.get_data(as_text=True)) == ["VAS-X"]
    assert codes_on(client.get("/admin/packagesubcategory/?search=GPS").get_data(as_text=True)) == ["REN-GPS"]


def test_package_list_shows_labels_not_codes(client, login, world):
    login("support")
    page = client.get("/admin/package/").get_data(as_text=True)
    assert "Per month" in page and "Per year" in page


# --- access ----------------------------------------------------------------------------------

CATALOG_URLS = ["/admin/packagecategory/", "/admin/packagesubcategory/", "/admin/package/",
                "/admin/packagecategory/new/", "/admin/packagesubcategory/new/", "/admin/package/new/",
                "/admin/package/export/csv/"]


@pytest.mark.parametrize("role", ["customer", "finance", "sales"])
def test_catalog_is_forbidden_to_other_roles(client, login, world, role):
    login(role)
    for url in CATALOG_URLS:
        assert client.get(url).status_code == 403, url
    assert client.get(f"/admin/package/edit/?id={world.packages['GPS-M'].id}").status_code == 403
    response = post(client, "/admin/package/new/", package_form(world))
    assert response.status_code == 403
    response = post(client, "/admin/package/delete/", {"id": world.packages["GPS-Y"].id})
    assert response.status_code == 403
    assert package("GPS-Q") is None and package("GPS-Y") is not None


@pytest.mark.parametrize("role", ["support", "admin"])
def test_catalog_is_open_to_tech_support_and_admin(client, login, world, role):
    login(role)
    for url in CATALOG_URLS:
        assert client.get(url).status_code == 200, url


def test_bulk_delete_deletes_unused_and_refuses_bound_packages(client, login, world):
    gps_m, gps_y = world.packages["GPS-M"].id, world.packages["GPS-Y"].id
    login("support")
    page = confirm_post(client, "/admin/package/action/", [("action", "delete"), ("rowid", gps_m), ("rowid", gps_y)],
                follow_redirects=True).get_data(as_text=True)
    assert "Package GPS-M is bound to 10 devices" in page and "it cannot be deleted" in page
    assert "1 records were successfully deleted." in page or "Record was successfully deleted." in page
    assert package("GPS-Y") is None
    assert package("GPS-M").active is True
    assert sorted(e.action for e in audit("package")) == ["delete"]


def test_bulk_delete_of_categories_refuses_those_in_use(client, login, world):
    empty = PackageCategory(code="EMPTY", name="Empty", kind="seat")
    db.session.add(empty)
    db.session.commit()
    ids = [category("REN").id, empty.id]
    login("support")
    page = confirm_post(client, "/admin/packagecategory/action/", [("action", "delete")] + [("rowid", i) for i in ids],
                follow_redirects=True).get_data(as_text=True)
    assert "Category REN still has subcategories or packages" in page
    assert category("REN") is not None and category("EMPTY") is None


def test_package_form_lists_subcategories(client, login, world):
    login("support")
    page = client.get("/admin/package/new/").get_data(as_text=True)
    assert re.search(r'<option value="\d+">REN-GPS GPS</option>', page)


def test_bulk_delete_names_ids_not_found(client, login, world):
    login("support")
    page = post(client, "/admin/packagesubcategory/action/", [("action", "delete"), ("rowid", "99999")],
                follow_redirects=True).get_data(as_text=True)
    assert "#99999 (not found or outside your companies)" in page
    assert "successfully deleted" not in page
