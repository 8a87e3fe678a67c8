"""A customer administrator never sees or touches another company's rows: in lists, counts,
detail and edit pages, deletes, exports and every action of every view they may use."""
from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
from flask_login import login_user
from sqlalchemy import inspect, select

from admin_views import registered_views
from actions.wallets import credit, wallet_for
from admin_views.base import ScopedModelView
from conftest import post
from models import Device, db


def _customer_views(app):
    return [v for v in registered_views(app.extensions["admin"][0])
            if isinstance(v, ScopedModelView) and "customer_admin" in v.roles]


def _foreign_row(app, view, world):
    """A row of Globex (another tenant) that this view would show to staff."""
    with app.test_request_context():
        login_user(world.users["admin"])
        column = getattr(view.model, view.scope_column)
        return view.get_query().filter(column == world.globex.id).first()


def _state(row) -> dict:
    db.session.expire_all()
    fresh = db.session.get(type(row), row.id)
    if fresh is None:
        return {}
    return {attr.key: getattr(fresh, attr.key) for attr in inspect(fresh).mapper.column_attrs}


def test_customer_views_exist(app):
    assert _customer_views(app), "no customer views registered"


def add_foreign_ledger_entry(world) -> None:
    """A movement of Globex's balance for the balance history (余额明细). Added here, not in the world:
    other tests count every ledger entry."""
    credit(db.session, wallet_for(db.session, world.globex.id, "CNY"), Decimal("50.00"), "offline_recharge",
           "scope:globex:top-up", memo="Globex top-up 50.00")


def test_customer_admin_gets_no_other_company_rows(app, client, login, world):
    world.devices["GX0002"].status = "suspended"
    add_foreign_ledger_entry(world)
    db.session.commit()
    login("customer")
    for view in _customer_views(app):
        row = _foreign_row(app, view, world)
        assert row is not None, f"give the world fixture a Globex row for {view.endpoint}"
        base = view.url.rstrip("/") + "/"
        before = _state(row)

        listing = client.get(base).get_data(as_text=True)
        assert f'value="{row.id}"' not in listing, (view.endpoint, "list")
        assert str(row) not in listing, (view.endpoint, "list shows the foreign row")

        for page in (f"details/?id={row.id}", f"edit/?id={row.id}"):
            answer = client.get(base + page)
            assert answer.status_code in (302, 403, 404), (view.endpoint, page, answer.status_code)
            assert str(row) not in answer.get_data(as_text=True), (view.endpoint, page)

        post(client, base + "delete/", {"id": str(row.id)})
        for name in view._actions_data:
            answer = post(client, base + "action/", [("action", name), ("rowid", str(row.id))],
                          follow_redirects=True)
            assert answer.status_code in (200, 403), (view.endpoint, name)
        assert _state(row) == before, (view.endpoint, "a foreign row changed")

        if view.can_export:
            answer = client.get(base + "export/xlsx/")
            assert answer.status_code == 200
            book = openpyxl.load_workbook(io.BytesIO(answer.data), read_only=True)
            cells = {c for r in book.active.iter_rows(values_only=True) for c in r}
            assert str(row) not in cells, (view.endpoint, "export")


def test_customer_list_counts_only_their_tree(app, client, login, world):
    login("customer")
    page = client.get("/admin/device/").get_data(as_text=True)
    own = db.session.scalar(select(db.func.count()).select_from(Device).where(
        Device.company_id.in_(world.acme.subtree_ids())))
    assert own == 8
    for number in ("AC0001", "NO0001", "FL0001", "SO0001"):
        assert number in page
    assert "GX0001" not in page


def test_subsidiary_admin_does_not_see_the_parent(app, client, login, world):
    login("north")
    page = client.get("/admin/device/").get_data(as_text=True)
    assert "NO0001" in page and "FL0001" in page
    assert "AC0001" not in page and "SO0001" not in page


def test_filter_options_are_scoped_per_request(app, client, login, world):
    login("customer")
    page = client.get("/admin/device/").get_data(as_text=True)
    assert "Acme North Fleet" in page
    assert "Globex" not in page
