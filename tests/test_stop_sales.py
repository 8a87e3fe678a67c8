"""Issue 10 item 6: stopping a package's sales is its own previewed action; its devices can be rebound.

Deleting a package in use is refused (tests/test_catalog.py); stopping its sales shows who is
concerned first; a device whose package is no longer sold moves, from the renewal center, to a
renewal package on sale in the same currency.
"""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from actions import DomainError, NotAllowed
from actions.bindings import rebind_unsold
from actions.catalog import package_usage, stop_sales
from models import AuditEvent, CompanyPackage, Device, Package, db
from tests.conftest import post

STOP_URL = "/admin/package/stop-sales/{}/"
CENTER = "/admin/renewal_center/"


def fresh(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture
def usd_package(world) -> Package:
    gps_y = world.packages["GPS-Y"]
    package = Package(code="GPS-USD", name="GPS yearly USD", category_id=gps_y.category_id,
                      subcategory_id=gps_y.subcategory_id, kind="renewal", amount=Decimal("15.00"),
                      pricing="per_year", currency="USD")
    db.session.add(package)
    db.session.commit()
    return package


# --- the action -----------------------------------------------------------------------------------


def test_usage_counts_devices_and_companies_with_first_rows(app, world):
    gps_m = world.packages["GPS-M"]
    db.session.add(CompanyPackage(company_id=world.acme.id, package_id=gps_m.id))
    db.session.flush()
    usage = package_usage(db.session, gps_m, shown=3)
    assert (usage.devices, usage.offers, usage.companies) == (10, 1, 5)
    assert len(usage.first_devices) == 3 and all(number in world.devices for number, _c, _e in usage.first_devices)
    assert len(usage.first_companies) == 3 and all(count == 2 for _name, count in usage.first_companies)


def test_stop_sales_retires_the_package_and_keeps_its_devices_bound(app, world):
    gps_m = world.packages["GPS-M"]
    usage = stop_sales(db.session, world.users["support"], gps_m, previewed_devices=10)
    db.session.commit()
    assert usage.devices == 10
    assert fresh(Package, gps_m.id).active is False
    assert fresh(Device, world.devices["AC0001"].id).package_id == gps_m.id
    (event,) = events("stop_sales")
    assert event.ids == f",{gps_m.id}," and "10 devices bound" in event.summary
    with pytest.raises(DomainError, match="GPS-M is not sold already"):
        stop_sales(db.session, world.users["support"], fresh(Package, gps_m.id))


def test_stop_sales_refuses_when_the_devices_changed_since_the_preview(app, world):
    gps_m = world.packages["GPS-M"]
    with pytest.raises(DomainError, match="now bound to 10 devices, not 9 as previewed"):
        stop_sales(db.session, world.users["support"], gps_m, previewed_devices=9)
    db.session.rollback()
    assert fresh(Package, gps_m.id).active is True


@pytest.mark.parametrize("role", ["customer", "sales", "finance"])
def test_only_tech_support_stops_sales(app, world, role):
    with pytest.raises(NotAllowed):
        stop_sales(db.session, world.users[role], world.packages["GPS-M"])


# --- over HTTP: preview, then confirm ---------------------------------------------------------------


def test_the_preview_shows_counts_and_first_rows_and_changes_nothing(client, login, world):
    login("support")
    gps_m = world.packages["GPS-M"]
    listing = client.get("/admin/package/").get_data(as_text=True)
    assert STOP_URL.format(gps_m.id) in listing
    page = client.get(STOP_URL.format(gps_m.id)).get_data(as_text=True)
    assert "Bound to 10 devices; offered to 0 companies; 5 companies concerned in all." in page
    assert "AC0001" in page and "Acme North Fleet" in page
    assert 'id="rd-stop-sales"' in page and 'name="devices" value="10"' in page
    assert fresh(Package, gps_m.id).active is True


def test_confirming_stops_sales(client, login, world):
    login("support")
    gps_m = world.packages["GPS-M"]
    page = post(client, STOP_URL.format(gps_m.id), {"devices": "10"}, follow_redirects=True).get_data(as_text=True)
    assert "Sales of package GPS-M are stopped." in page
    assert fresh(Package, gps_m.id).active is False
    assert len(events("stop_sales")) == 1


@pytest.mark.parametrize("role", ["customer", "sales", "finance"])
def test_other_roles_cannot_stop_sales(client, login, world, role):
    login(role)
    gps_m = world.packages["GPS-M"]
    assert client.get(STOP_URL.format(gps_m.id)).status_code == 403
    assert post(client, STOP_URL.format(gps_m.id), {"devices": "10"}).status_code == 403
    assert fresh(Package, gps_m.id).active is True


def test_unknown_package_is_404(client, login, world):
    login("support")
    assert client.get(STOP_URL.format(999999)).status_code == 404


# --- rebinding from the renewal center ------------------------------------------------------------


def retire(world, code="GPS-M"):
    stop_sales(db.session, world.users["support"], world.packages[code])
    db.session.commit()


def test_renewal_center_offers_packages_on_sale_in_the_same_currency(client, login, world, usd_package):
    retire(world)
    login("customer")
    page = client.get(CENTER + "?window=all&months=12").get_data(as_text=True)
    row = re.search(r'<tr class="rd-row" data-number="AC0001">.*?</tr>', page, re.S).group(0)
    assert "Its package is no longer sold." in row
    assert f'name="package_{world.devices["AC0001"].id}"' in row
    options = re.findall(r'<option value="\d+">(\S+) ', row)
    assert options == ["GPS-Y"]  # not the USD package, not the retired one
    assert 'name="rebind"' in row


def test_a_customer_rebinds_a_device_and_can_renew_it(client, login, world):
    retire(world)
    device = world.devices["AC0001"]
    gps_y = world.packages["GPS-Y"]
    login("customer")
    page = post(client, CENTER + "rebind/", [("company_id", str(world.acme.id)), ("window", "all"),
                                            ("months", "12"), ("rebind", str(device.id)),
                                            (f"package_{device.id}", str(gps_y.id))],
                follow_redirects=True).get_data(as_text=True)
    assert "Device AC0001 now renews with package GPS-Y." in page
    assert fresh(Device, device.id).package_id == gps_y.id
    (event,) = events("rebind_package")
    assert event.actor_name == "customer" and "GPS-M (no longer sold) → GPS-Y" in event.summary
    row = re.search(r'<tr class="rd-row" data-number="AC0001">.*?</tr>', page, re.S).group(0)
    assert "100.00" in row and 'name="only"' in row  # priced by GPS-Y, renewable


def test_rebinding_is_refused_for_another_tenants_device(client, login, world):
    retire(world)
    device = world.devices["AC0001"]
    login("globex")
    page = post(client, CENTER + "rebind/", [("company_id", str(world.globex.id)), ("rebind", str(device.id)),
                                            (f"package_{device.id}", str(world.packages["GPS-Y"].id))],
                follow_redirects=True).get_data(as_text=True)
    assert f"Device #{device.id} was not found among your devices." in page
    assert fresh(Device, device.id).package_id == world.packages["GPS-M"].id


def test_rebind_rules(app, world, usd_package):
    customer = world.users["customer"]
    device = world.devices["AC0001"]
    with pytest.raises(DomainError, match="AC0001: its package is still sold"):
        rebind_unsold(db.session, customer, device, world.packages["GPS-Y"])
    retire(world)
    device = fresh(Device, device.id)
    with pytest.raises(DomainError, match="AC0001: choose a package in CNY, the currency of GPS-M"):
        rebind_unsold(db.session, customer, device, fresh(Package, usd_package.id))
    with pytest.raises(DomainError, match="GPS-M is inactive"):
        rebind_unsold(db.session, customer, device, fresh(Package, world.packages["GPS-M"].id))
    with pytest.raises(DomainError, match="VAS-SMS is not a renewal package"):
        rebind_unsold(db.session, customer, device, fresh(Package, world.packages["VAS-SMS"].id))
    with pytest.raises(DomainError, match="not one of your devices"):
        rebind_unsold(db.session, world.users["globex"], device, fresh(Package, world.packages["GPS-Y"].id))
    assert fresh(Device, device.id).package_id == world.packages["GPS-M"].id
    assert events("rebind_package") == []


def test_the_edit_form_cannot_untick_active_around_the_preview(client, login, world):
    login("support")
    gps_m = world.packages["GPS-M"]
    form = {"code": "GPS-M", "name": "GPS monthly", "category": str(gps_m.category_id),
            "subcategory_id": str(gps_m.subcategory_id), "kind": "renewal", "amount": "10.00",
            "pricing": "per_month", "term_months": "", "currency": "CNY"}  # "active" left unticked
    page = post(client, f"/admin/package/edit/?id={gps_m.id}", form).get_data(as_text=True)
    assert "Stop the sales of package GPS-M with its own action" in page
    assert fresh(Package, gps_m.id).active is True
    form["name"] = "GPS per month"
    form["active"] = "y"
    assert post(client, f"/admin/package/edit/?id={gps_m.id}", form).status_code == 302  # other edits pass
    assert fresh(Package, gps_m.id).name == "GPS per month"


def test_a_lock_timeout_on_a_model_page_is_a_busy_message(client, login, world, monkeypatch):
    import sqlite3

    from sqlalchemy.exc import OperationalError

    def locked(*args, **kwargs):
        raise OperationalError("UPDATE package", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr("admin_views.catalog.check_package", locked)
    login("support")
    gps_y = world.packages["GPS-Y"]
    form = {"code": "GPS-Y", "name": "GPS per year", "category": str(gps_y.category_id),
            "subcategory_id": str(gps_y.subcategory_id), "kind": "renewal", "amount": "100.00",
            "pricing": "per_year", "term_months": "", "currency": "CNY", "active": "y"}
    page = post(client, f"/admin/package/edit/?id={gps_y.id}", form, follow_redirects=True).get_data(as_text=True)
    assert "The database is busy with another change; nothing was changed. Try again in a moment." in page
    assert fresh(Package, gps_y.id).name == "GPS yearly"
