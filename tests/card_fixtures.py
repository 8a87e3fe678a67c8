"""Fixtures of the card tests (loaded with `pytest_plugins = ("card_fixtures",)`): a verified distributor
A with a verified sub-distributor B, a card package and staff users."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from actions.cards import review_verification, submit_verification
from conftest import make_company, make_user
from models import Package, PackageCategory, db

ID_NUMBER = "110101199003074512"


@pytest.fixture
def vault(app):
    return app.extensions["card_vault"]


@pytest.fixture
def cards(app, vault):
    """Distributor A (verified) with sub-distributor B (verified); a card package; staff users."""
    a = make_company("Distributor A")
    b = make_company("Distributor B", a)
    users = {name: make_user(name, role, company) for name, role, company in (
        ("admin", "admin", None), ("support", "tech_support", None), ("finance", "finance", None),
        ("finance2", "finance", None), ("a_admin", "customer_admin", a), ("b_admin", "customer_admin", b))}
    category = PackageCategory(code="SIM", name="SIM cards", kind="card")
    db.session.add(category)
    db.session.flush()
    package = Package(code="SIM-39", name="39 plan", category_id=category.id, kind="card", amount=D("39.00"),
                      pricing="per_month", currency="CNY")
    db.session.add(package)
    db.session.flush()
    for company, user, name in ((a, users["a_admin"], "Alpha Trading Co"), (b, users["b_admin"], "Beta Zhang")):
        profile = submit_verification(db.session, user, vault, company, legal_name=name, id_type="resident_id",
                                      id_number=ID_NUMBER)
        review_verification(db.session, users["admin"], profile, approve=True)
    db.session.commit()
    return {"a": a, "b": b, "users": users, "package": package}
