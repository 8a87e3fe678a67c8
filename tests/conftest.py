"""Each test gets the app on a migrated database (SQLite, or PostgreSQL via TEST_DATABASE_URL),
emptied after the test, a `client`, a `login` helper and a small `world` of two tenants."""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from app import create_app
from models import (
    Company, Device, InvoiceRequest, InvoiceTitle, MemberAccount, Order, OrderLine, Package, PackageCategory,
    PackageSubcategory, User, db,
)

FAST_HASH = "scrypt:1024:8:1"
PASSWORD = "correct-horse-42"


def _database_url(worker: str) -> tuple[str, object]:
    """A fresh database for this pytest worker, and a function that drops it."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        folder = tempfile.mkdtemp(prefix="renewdesk-test-")
        return f"sqlite:///{Path(folder) / 'test.db'}", lambda: None
    name = f"renewdesk_test_{worker}_{os.getpid()}"  # unique: parallel runs never drop each other's
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def make_app(url: str, **extra):
    config = {
        "ENV_NAME": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": url,
        "PASSWORD_HASH_METHOD": FAST_HASH,
        "MAIL_SUPPRESS_SEND": True,
    }
    config.update(extra)
    return create_app(config)


@pytest.fixture(scope="session")
def database_url(worker_id="master"):
    url, drop = _database_url(os.environ.get("PYTEST_XDIST_WORKER", "main"))
    app = make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield url
    drop()


@pytest.fixture(scope="session")
def _session_app(database_url):
    return make_app(database_url)


@pytest.fixture
def app(_session_app):
    with _session_app.app_context():
        yield _session_app
        db.session.rollback()
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture(scope="session")
def web_app(database_url):
    """The app that serves the test client's requests.

    A second instance on purpose: the test body keeps `app`'s context pushed, and Flask would
    reuse it (and its `g`, its current user and its SQLAlchemy session) for every request of
    the same app instance. Requests to this one get a fresh context each, as in production.
    """
    return make_app(database_url)


@pytest.fixture
def client(app, web_app):
    return web_app.test_client()


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    if not match:
        page = client.get("/password").get_data(as_text=True)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def post(client, url: str, data: dict | list | None = None, token_from: str = "/password", **kwargs):
    """POST with the session's CSRF token added (lists of pairs allow repeated keys)."""
    token = csrf_token(client, token_from)
    pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
    pairs.append(("csrf_token", token))
    from werkzeug.datastructures import MultiDict

    return client.post(url, data=MultiDict(pairs), **kwargs)


class Login:
    def __init__(self, client):
        self.client = client

    def __call__(self, username: str, password: str = PASSWORD, follow: bool = False):
        token = csrf_token(self.client, "/login")
        return self.client.post("/login", data={"username": username, "password": password,
                                               "csrf_token": token}, follow_redirects=follow)

    def logout(self):
        return post(self.client, "/logout", {})


@pytest.fixture
def login(client):
    return Login(client)


# --- factories: they flush; the test (or `world`) commits ---------------------------------

def make_company(name: str, parent: Company | None = None) -> Company:
    from actions.companies import place

    company = Company(name=name, status="active")
    place(db.session, company, parent)
    return company


def make_user(username: str, role: str, company: Company | None = None, password: str = PASSWORD,
              must_change: bool = False) -> User:
    user = User(username=username, role=role, company=company, must_change_password=must_change,
                session_version=0, email=f"{username}@example.test")
    user.set_password(password, method=FAST_HASH)
    db.session.add(user)
    db.session.flush()
    return user


def make_catalog() -> dict[str, Package]:
    cat = PackageCategory(code="REN", name="Renewal", kind="renewal")
    vas = PackageCategory(code="VAS", name="Value-added", kind="value_added")
    db.session.add_all([cat, vas])
    db.session.flush()
    sub = PackageSubcategory(code="REN-GPS", name="GPS", kind="renewal", category_id=cat.id)
    db.session.add(sub)
    db.session.flush()
    packages = {
        "GPS-M": Package(code="GPS-M", name="GPS monthly", category_id=cat.id, subcategory_id=sub.id,
                         kind="renewal", amount=Decimal("10.00"), pricing="per_month", currency="CNY"),
        "GPS-Y": Package(code="GPS-Y", name="GPS yearly", category_id=cat.id, subcategory_id=sub.id,
                         kind="renewal", amount=Decimal("100.00"), pricing="per_year", currency="CNY"),
        "VAS-SMS": Package(code="VAS-SMS", name="SMS", category_id=vas.id, kind="value_added",
                           amount=Decimal("5.00"), pricing="per_month", currency="CNY"),
    }
    db.session.add_all(packages.values())
    db.session.flush()
    return packages


def make_device(number: str, company: Company, expires_on: date | None = None, status: str = "active",
                package: Package | None = None, device_type: str = "GPS tracker") -> Device:
    device = Device(number=number, name=f"Truck {number}", device_type=device_type, company=company,
                    status=status, expires_on=expires_on or date.today() + timedelta(days=10),
                    package=package)
    db.session.add(device)
    db.session.flush()
    return device


@dataclass
class World:
    acme: Company
    north: Company
    fleet: Company
    south: Company
    globex: Company
    users: dict[str, User]
    packages: dict[str, Package]
    devices: dict[str, Device]


@pytest.fixture
def world(app) -> World:
    """Acme (→ North → Fleet, → South) and Globex; a user per role; two devices per company."""
    acme = make_company("Acme Logistics")
    north = make_company("Acme North", acme)
    fleet = make_company("Acme North Fleet", north)
    south = make_company("Acme South", acme)
    globex = make_company("Globex <b>Trading</b>")
    users = {
        "admin": make_user("admin", "admin"),
        "support": make_user("support", "tech_support"),
        "finance": make_user("finance", "finance"),
        "sales": make_user("sales", "sales"),
        "customer": make_user("customer", "customer_admin", acme),
        "north": make_user("north", "customer_admin", north),
        "globex": make_user("globex", "customer_admin", globex),
    }
    packages = make_catalog()
    devices = {}
    for prefix, company in (("AC", acme), ("NO", north), ("FL", fleet), ("SO", south), ("GX", globex)):
        for i in (1, 2):
            number = f"{prefix}{i:04d}"
            devices[number] = make_device(number, company, package=packages["GPS-M"])
    # Rows of the other tenant for every customer-facing list (tests/test_scope.py needs one each).
    order = Order(number="RC-GLOBEX-0001", kind="recharge", status="pending", company_id=globex.id,
                  currency="CNY", total=Decimal("50.00"))
    db.session.add(order)
    db.session.flush()
    db.session.add(OrderLine(order_id=order.id, description="Recharge 50.00 CNY", unit_price=Decimal("50.00"),
                             amount=Decimal("50.00")))
    db.session.add(MemberAccount(company_id=globex.id, login="globex-member", vip_level="none"))
    db.session.add(MemberAccount(company_id=globex.id, login="organizer@globex.test", email="organizer@globex.test",
                                 seat_edition="enterprise", invitation_state="sent"))
    seats = Order(number="SE-GLOBEX-0001", kind="seats", status="cancelled", company_id=globex.id,
                  currency="CNY", total=Decimal("300.00"), promotion="Globex deal")
    db.session.add(seats)
    db.session.flush()
    db.session.add(OrderLine(order_id=seats.id, edition="enterprise", quantity=1, unit_price=Decimal("300.00"),
                             amount=Decimal("300.00"), description="SEAT-ENTERPRISE × 1"))
    title = InvoiceTitle(company_id=globex.id, kind="ordinary", title="Globex Invoice Title",
                         tax_id="91310000000000001X")
    db.session.add(title)
    db.session.flush()
    db.session.add(InvoiceRequest(company_id=globex.id, title_id=title.id, invoice_type="electronic_ordinary",
                                  currency="CNY", total=Decimal("300.00"), email="ap@globex.example"))
    from subscription_factories import add_foreign_subscription

    add_foreign_subscription(globex)  # the subscription catalog, and a Globex subscription
    db.session.commit()
    return World(acme, north, fleet, south, globex, users, packages, devices)
