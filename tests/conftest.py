"""Each test gets the app on a migrated database (SQLite, or PostgreSQL via TEST_DATABASE_URL),
emptied after the test, a `client`, a `login` helper and a small `world` of two tenants.

The world is built once per worker: its rows are read back and written into the emptied database
before each test that asks for it, which takes a few inserts instead of a few hundred flushes."""
from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from _pytest.nodeid import NodeId
from flask import session
from flask_migrate import upgrade
from flask_wtf.csrf import generate_csrf
from werkzeug.datastructures import MultiDict

from app import create_app
from models import (
    Company, Device, InvoiceRequest, InvoiceTitle, MemberAccount, Order, OrderLine, Package, PackageCategory,
    PackageSubcategory, User, db,
)

FAST_HASH = "scrypt:1024:8:1"
PASSWORD = "correct-horse-42"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Name each test's `xdist_group` in its node id, so `--dist loadgroup` keeps a group on one worker.

    pytest-xdist 3.8 writes the group into `item._nodeid`, which pytest 9 no longer reads (node ids
    live in `item._id`): without this every worker started its own gunicorn and browser server."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                        for mark in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):  # a later xdist may add it itself
            item._id = NodeId.parse(item.nodeid + suffix)


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_without_fsync(dbapi_connection, _record) -> None:
    """Test databases are thrown away: SQLite skips fsync here, as CI's PostgreSQL runs with fsync=off.

    Only this process's connections: the gunicorn servers of the live tests keep the app's settings."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.execute("PRAGMA synchronous=OFF").close()


def _database_url(worker: str) -> tuple[str, object]:
    """A fresh database for this pytest worker, and a function that drops it."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        folder = tempfile.mkdtemp(prefix="renewdesk-test-")
        return f"sqlite:///{Path(folder) / 'test.db'}", lambda: shutil.rmtree(folder, ignore_errors=True)
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


@contextmanager
def database_at(name: str, revision: str):
    """A fresh database of its own migrated to `revision`, its app's context entered: a migration's data test
    writes the rows of before, then `migrate(app, "head")`. The database is dropped at the end."""
    url, drop = _database_url(name)
    app = make_app(url)
    try:
        with app.app_context():
            upgrade(revision=revision)
            yield app
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()


def migrate(app, revision: str, *, down: bool = False) -> None:
    """Upgrade the app's database with Alembic to `revision` ("head"), or downgrade it to an older one."""
    from alembic import command

    (command.downgrade if down else command.upgrade)(app.extensions["migrate"].migrate.get_config(), revision)


@pytest.fixture(scope="session")
def _session_app():
    """This worker's app, on a database of its own that it migrates first; the database is dropped at the end."""
    url, drop = _database_url(os.environ.get("PYTEST_XDIST_WORKER", "main"))
    app = make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()  # no connection the migration touched is handed to a test
    yield app
    with app.app_context():
        db.engine.dispose()
    drop()


@pytest.fixture(scope="session")
def database_url(_session_app) -> str:
    """The migrated database of this worker (the live servers connect to it too)."""
    return _session_app.config["SQLALCHEMY_DATABASE_URI"]


def empty_database() -> None:
    """Delete every row, children first, and the planner statistics a test's ANALYZE left (the demo
    seeding runs one): SQLite would plan the next tests' queries from another test's rows."""
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())
        analyzed = conn.dialect.name == "sqlite" and conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_stat%'").scalar()
        if analyzed:
            conn.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat1")
            conn.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat4")
    if analyzed:
        db.engine.dispose()  # each connection keeps the statistics it loaded


@pytest.fixture
def app(request, _session_app):
    world_rows = request.getfixturevalue("_world_rows") if "world" in request.fixturenames else None
    with _session_app.app_context():
        if world_rows:  # before any other fixture adds rows, as if the world had always been there
            world_rows.write()
        yield _session_app
        db.session.rollback()
        db.session.remove()
        empty_database()


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


@pytest.fixture
def request_unless_client(request, app):
    """Action tests run in a request (lazy messages need a locale); HTTP tests use the client's. A module
    opts in with `pytestmark = pytest.mark.usefixtures("request_unless_client")`."""
    if "client" in request.fixturenames:
        yield
        return
    with app.test_request_context():
        yield


def race(app, attempts, refusals: dict | None = None) -> tuple[list[str], list[Exception]]:
    """Run each callable of `attempts` in its own thread, app context and database session, all released
    together by a barrier (the way two requests meet), each committing its work: the outcomes ("won", or the
    label `refusals` gives the exception class it raised, rolled back; default DomainError → "refused") in the
    order of `attempts`, and the unexpected exceptions, for the caller to assert."""
    from actions import DomainError
    from app import WRITE_INTENT

    refusals = refusals or {DomainError: "refused"}
    barrier = threading.Barrier(len(attempts))
    outcomes, errors = [None] * len(attempts), []

    def run(index, attempt):
        try:
            with app.app_context(), app.test_request_context():
                WRITE_INTENT.set(True)
                barrier.wait(timeout=10)
                try:
                    attempt()
                    db.session.commit()
                    outcomes[index] = "won"
                except tuple(refusals) as exc:
                    db.session.rollback()
                    outcomes[index] = next(label for kind, label in refusals.items() if isinstance(exc, kind))
                finally:
                    db.session.remove()
        except Exception as exc:  # noqa: BLE001 — reported by the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes, errors


def csrf_token(client) -> str:
    """The CSRF token the app's forms would carry for the client's session, without fetching a page.

    Flask-WTF keeps the raw token in the session cookie and signs it into each form; the app's own
    `generate_csrf` does the same here from the cookie (a session without one gets one, as the
    first form it is shown would give it). The app checks it as it checks any form's token."""
    with client.session_transaction() as cookie, client.application.test_request_context():
        if "csrf_token" in cookie:
            session["csrf_token"] = cookie["csrf_token"]
        token = generate_csrf()
        if cookie.get("csrf_token") != session["csrf_token"]:
            cookie["csrf_token"] = session["csrf_token"]
    return token


def post(client, url: str, data: dict | list | None = None, **kwargs):
    """POST with the session's CSRF token added (lists of pairs allow repeated keys)."""
    pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
    pairs.append(("csrf_token", csrf_token(client)))
    return client.post(url, data=MultiDict(pairs), **kwargs)


def confirmation_form(response) -> tuple[str, list[tuple[str, str]]] | None:
    """The action URL and fields of the server's confirmation page (renewdesk/confirm.html), or None."""
    text = response.get_data(as_text=True)
    match = re.search(r'<form method="post" action="([^"]*)" id="rd-confirm-form"[^>]*>(.*?)</form>', text, re.S)
    if match is None:
        return None
    fields = [(html.unescape(name), html.unescape(value))
              for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', match.group(2))]
    return html.unescape(match.group(1)), fields


def confirm_post(client, url: str, data: dict | list | None = None, required: bool = True, **kwargs):
    """POST an action that asks for confirmation, then confirm it as the page's 确认 button does.

    The first answer must be the confirmation page (it changed nothing); the answer to the confirmed
    POST is returned. With `required=False`, an answer that is no confirmation page (an action that
    does not ask, or refuses at once) is returned as it is."""
    first = post(client, url, data, **({} if required else kwargs))
    found = confirmation_form(first)
    if found is None and not required:
        return first
    assert found is not None, f"no confirmation page for {url}: {first.status_code} {first.get_data(as_text=True)[:300]}"
    action, fields = found
    return client.post(action, data=MultiDict(fields), **kwargs)


class Login:
    def __init__(self, client):
        self.client = client

    def __call__(self, username: str, password: str = PASSWORD, follow: bool = False):
        return self.client.post("/login", data={"username": username, "password": password,
                                               "csrf_token": csrf_token(self.client)}, follow_redirects=follow)

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


def readers_in(web_app, role: str, locales: dict[str, str]) -> dict:
    """A logged-in client for each of `locales` (username → locale): a new user of `role` reading in it."""
    for username, locale in locales.items():
        make_user(username, role).locale = locale
    db.session.commit()
    clients = {}
    for username in locales:
        clients[username] = web_app.test_client()
        Login(clients[username])(username)
    return clients


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


def build_world() -> World:
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


class WorldRows:
    """The world's rows, built once per worker and written again into each test's emptied database.

    Rows keep their ids; a test's own rows come after them (PostgreSQL's sequences are already past
    them, SQLite takes the largest id + 1). Built again when the day changes: devices expire
    relative to today."""

    def __init__(self, builder=None) -> None:
        self.builder = builder or build_world  # a test module may build a larger world on top of build_world
        self.day: date | None = None
        self.tables: list[tuple[sa.Table, list[dict]]] = []
        self.ids: dict[str, dict[str, int]] = {}

    def build(self) -> None:
        """Build the world in the (empty) database, read its rows back, and empty the database again."""
        world = self.builder()
        self.ids = {
            "companies": {name: getattr(world, name).id for name in ("acme", "north", "fleet", "south", "globex")},
            "users": {key: user.id for key, user in world.users.items()},
            "packages": {code: package.id for code, package in world.packages.items()},
            "devices": {number: device.id for number, device in world.devices.items()},
        }
        db.session.remove()
        with db.engine.connect() as conn:
            read = [(table, [dict(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))
                             .mappings()]) for table in db.metadata.sorted_tables]
        self.tables = [(table, rows) for table, rows in read if rows]
        self.day = date.today()
        empty_database()

    def write(self) -> None:
        """Insert the world's rows into the empty database (parents first, each table in id order)."""
        if self.day != date.today():
            self.build()
        with db.engine.begin() as conn:
            for table, rows in self.tables:
                conn.execute(table.insert(), rows)

    def load(self) -> World:
        """The world's rows as objects of the test's session."""
        ids = self.ids
        companies = {c.id: c for c in db.session.scalars(
            sa.select(Company).where(Company.id.in_(ids["companies"].values())))}
        users = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(ids["users"].values())))}
        packages = {p.id: p for p in db.session.scalars(
            sa.select(Package).where(Package.id.in_(ids["packages"].values())))}
        devices = {d.id: d for d in db.session.scalars(
            sa.select(Device).where(Device.id.in_(ids["devices"].values())))}
        world = World(*(companies[ids["companies"][name]] for name in ("acme", "north", "fleet", "south", "globex")),
                      users={key: users[i] for key, i in ids["users"].items()},
                      packages={code: packages[i] for code, i in ids["packages"].items()},
                      devices={number: devices[i] for number, i in ids["devices"].items()})
        db.session.expire_all()  # as after the commit that built them: each object reads the row when first used
        return world


@pytest.fixture(scope="session")
def _world_rows(_session_app) -> WorldRows:
    rows = WorldRows()
    with _session_app.app_context():
        rows.build()
        db.session.remove()
    return rows


@pytest.fixture
def world(app, _world_rows) -> World:
    """Acme (→ North → Fleet, → South) and Globex; a user per role; two devices per company."""
    if db.session.get(Company, _world_rows.ids["companies"]["acme"]) is None:  # asked for late (getfixturevalue)
        _world_rows.write()
    return _world_rows.load()
