"""Seat quotas out of the box (seed 004): seat packages are catalog packages of type Seat that name their
product edition (no hidden code), visible and editable in the catalog, made by the demo data, and a
missing one is named where seats are bought and granted."""
from __future__ import annotations

import html
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from actions import DomainError
from actions.catalog import check_package
from actions.seats import create_seat_order, grant_seats, seat_package
from models import Package, PackageCategory, SeatQuota, User, db
from tests.conftest import post


@pytest.fixture
def in_request(app):
    with app.test_request_context():
        yield


@pytest.fixture
def seat_category(world) -> PackageCategory:
    category = PackageCategory(code="MEET", name="Meeting seats", kind="seat")
    db.session.add(category)
    db.session.commit()
    return category


def seat(category, code="MEET-ENT", edition="enterprise", amount="300.00", active=True) -> Package:
    package = Package(code=code, name=f"{edition} seat", category_id=category.id, kind="seat", edition=edition,
                      amount=Decimal(amount), pricing="per_year", currency="CNY", active=active)
    db.session.add(package)
    db.session.commit()
    return package


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def form(category, **overrides) -> dict:
    values = {"code": "MEET-STD", "name": "Standard seat", "category": str(category.id), "subcategory_id": "",
              "kind": "seat", "edition": "standard", "amount": "200.00", "pricing": "per_year", "term_months": "",
              "currency": "CNY", "active": "y"}
    values.update(overrides)
    return values


def test_the_seat_package_is_found_by_its_edition_whatever_its_code(in_request, world, seat_category):
    package = seat(seat_category, code="MEET-ENT")
    assert seat_package(db.session, "enterprise") == package
    order = create_seat_order(db.session, world.users["customer"], world.acme, "enterprise", 2)
    assert order.total == Decimal("600.00") and order.lines[0].package_id == package.id


def test_a_missing_seat_package_is_named_with_who_adds_it(in_request, world, seat_category):
    seat(seat_category, edition="basic", code="MEET-BASIC", active=False)
    with pytest.raises(DomainError, match=r"No seat package of edition Basic is on sale: technical support adds one "
                                          r"under Packages \(type Seat, product edition Basic\)"):
        grant_seats(db.session, world.users["sales"], world.acme, "basic", 1, "cash receipt 7", date.today())


def test_a_seat_package_needs_an_edition_and_only_one_is_on_sale_per_edition(in_request, world, seat_category):
    seat(seat_category, code="MEET-ENT", edition="enterprise")
    with pytest.raises(DomainError, match="a seat package needs one"):
        check_package(db.session, Package(code="X", name="x", category_id=seat_category.id, kind="seat", edition="",
                                          amount=Decimal("1.00"), pricing="per_year", currency="CNY", active=True))
    second = Package(code="MEET-ENT-2", name="x", category_id=seat_category.id, kind="seat", edition="enterprise",
                     amount=Decimal("1.00"), pricing="per_year", currency="CNY", active=True)
    with pytest.raises(DomainError, match="seat package MEET-ENT is already on sale for Enterprise"):
        check_package(db.session, second)
    second.active = False  # prepared, not yet sold: allowed
    check_package(db.session, second)
    renewal = Package(code="R", name="r", category_id=seat_category.id, kind="renewal", edition="basic",
                      amount=Decimal("1.00"), pricing="per_year", currency="CNY", active=True)
    check_package(db.session, renewal)
    assert renewal.edition is None  # only seat packages have an edition


def test_the_catalog_shows_and_edits_seat_packages_with_their_edition(client, login, world, seat_category):
    login("support")
    created = post(client, "/admin/package/new/", form(seat_category))
    assert created.status_code == 302, text(created)
    package = db.session.scalar(select(Package).where(Package.code == "MEET-STD"))
    assert (package.kind, package.edition) == ("seat", "standard")
    listing = text(client.get("/admin/package/?search=MEET"))
    assert "Product edition" in listing and "MEET-STD" in listing and "Standard" in listing
    edit = text(client.get(f"/admin/package/edit/?id={package.id}"))
    assert 'name="edition"' in edit
    refused = post(client, "/admin/package/new/", form(seat_category, code="MEET-STD-2"))
    assert "seat package MEET-STD is already on sale for Standard" in text(refused)
    refused = post(client, "/admin/package/new/", form(seat_category, code="MEET-NONE", edition=""))
    assert "Product edition: a seat package needs one" in text(refused)
    assert db.session.scalar(select(db.func.count()).select_from(Package).where(Package.kind == "seat")) == 1


def test_the_grant_page_names_the_editions_without_a_seat_package(client, login, world, seat_category):
    seat(seat_category, code="MEET-ENT", edition="enterprise")
    login("sales")
    page = text(client.get("/admin/seat_grant/"))
    assert "No seat package is on sale for: Standard, Basic." in page


def test_the_demo_data_sells_and_grants_seats_of_every_edition_out_of_the_box(app, client, login):
    from actions.demo import seed_demo

    seed_demo(db.session, devices=5, method="scrypt:1024:8:1")
    db.session.commit()
    on_sale = {p.edition: p for p in db.session.scalars(select(Package).where(Package.kind == "seat",
                                                                              Package.active.is_(True)))}
    assert set(on_sale) == {"enterprise", "standard", "basic"}
    login("sales", "demo-sales")
    page = client.get("/admin/seat_grant/")
    body = text(page)
    assert "No seat package is on sale" not in body
    acme = db.session.scalar(select(User).where(User.username == "customer")).company
    import re

    quote = re.search(r'name="quote_hash" value="([^"]+)"', body).group(1)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', body).group(1)
    done = post(client, "/admin/seat_grant/", {"company_id": str(acme.id), "edition": "enterprise", "quantity": "3",
                                               "note": "paid at the front desk", "quote_hash": quote,
                                               "idempotency_key": key}, follow_redirects=True)
    assert "has the seats now" in text(done)
    db.session.expire_all()
    quota = db.session.scalar(select(SeatQuota).where(SeatQuota.company_id == acme.id,
                                                      SeatQuota.edition == "enterprise"))
    assert (quota.purchased, quota.used) == (3, 0)
