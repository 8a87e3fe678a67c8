"""Lists at any size: a unique order (id breaks ties), a bounded count shown "10,000+", pages read
by id (the back half read backwards), and the same number of SQL statements at 10 rows as at 200."""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine

from admin_views.base import COUNT_BOUND, BoundedCount, ScopedModelView
from models import (
    AuditEvent, Device, InvoiceRequest, InvoiceTitle, LedgerEntry, MemberAccount, OfflineRecharge, Order, Wallet,
    db,
)
from tests.conftest import PASSWORD, make_user

TODAY = date.today()
SAME_TIME = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)


def listed_numbers(body: str) -> list[str]:
    return re.findall(r'<td class="col-number">\s*([^<\s]+)\s*</td>', body)


def add_devices(company, count: int, start: int = 0, expires_on: date = TODAY) -> None:
    """`count` devices sharing one expiry date (every row ties on the default sort)."""
    db.session.execute(insert(Device), [
        {"number": f"TIE{i:05d}", "name": f"Tie {i}", "device_type": "GPS tracker", "company_id": company.id,
         "status": "active", "expires_on": expires_on, "created_at": SAME_TIME}
        for i in range(start, start + count)
    ])
    db.session.commit()


def test_equal_sort_values_page_in_id_order_without_gaps_or_repeats(world, client, login):
    """45 devices with one expiry: three pages of 20 show each device once, in id order, both directions."""
    add_devices(world.acme, 45)
    login("support")
    wanted = [f"TIE{i:05d}" for i in range(45)]
    expiry = 5  # column index of expires_on in DeviceView.column_list
    for query, order in (("", wanted), (f"sort={expiry}&", wanted), (f"sort={expiry}&desc=1&", wanted[::-1])):
        seen = []
        for page in range(3):
            body = client.get(f"/admin/device/?{query}page_size=20&page={page}&search=TIE").get_data(as_text=True)
            seen += listed_numbers(body)
        assert seen == order, query
    with counted() as statements:
        client.get(f"/admin/device/?sort={expiry}&desc=1")
    assert any(re.search(r"ORDER BY device\.expires_on DESC, device\.id DESC", s) for s in statements)


def test_sort_on_a_unique_column_gets_no_tiebreak(app):
    from flask import current_app

    view = next(v for v in current_app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "device")
    assert [(k[0].key, k[2]) for k in view._sort_keys("number", True)] == [("number", True)]
    assert [(k[0].key, k[2]) for k in view._sort_keys("name", True)] == [("name", True), ("id", True)]
    assert [(k[0].key, k[2]) for k in view._sort_keys(None, False)] == [("expires_on", False), ("id", False)]


def test_counts_beyond_the_bound_show_a_plus_and_the_pager_goes_on(world, client, login, monkeypatch):
    """Bound 25: pages inside it say "25+" and link onwards; a page past it counts exactly and reads backwards."""
    monkeypatch.setattr(ScopedModelView, "count_bound", 25)
    add_devices(world.acme, 45)
    login("support")
    first = client.get("/admin/device/?page_size=20&search=TIE").get_data(as_text=True)
    assert "(25+)" in first
    assert listed_numbers(first) == [f"TIE{i:05d}" for i in range(20)]
    assert re.search(r'href="[^"]*page=1[^"]*"', first), "the pager must offer the next page"
    last = client.get("/admin/device/?page_size=20&page=2&search=TIE").get_data(as_text=True)
    assert "(45)" in last
    assert listed_numbers(last) == [f"TIE{i:05d}" for i in range(40, 45)]
    # The back half, read backwards from the end, still comes out in forward order.
    middle = client.get("/admin/device/?page_size=20&page=1&search=TIE&sort=5&desc=1").get_data(as_text=True)
    assert listed_numbers(middle) == [f"TIE{i:05d}" for i in range(24, 4, -1)]


def test_a_status_filter_sorted_by_expiry_is_read_in_index_order(world, client, login):
    """The page's ids come from ix_device_status_expires in (expiry, id) order, no sort of all the
    matching rows, for staff and for a customer (whose scope is checked from the same index entry)."""
    from sqlalchemy import inspect

    indexes = {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes("device")}
    assert indexes["ix_device_status_expires"] == ["status", "expires_on", "id", "company_id"]
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL plans a table this small with a sequential scan: the index is what counts there
    for username in ("support", "customer"):
        login.logout()
        login(username)
        with counted() as statements:
            assert client.get("/admin/device/?flt0_status_equals=suspended&sort=5").status_code == 200
        page = next(s for s in statements if re.match(r"SELECT device\.id AS device_id\s+FROM device", s)
                    and "ORDER BY device.expires_on, device.id" in s)
        plan = " | ".join(row[3] for row in db.session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + page, _page_parameters(page, username, world)))
        assert "COVERING INDEX ix_device_status_expires (status=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def _page_parameters(statement: str, username: str, world) -> tuple:
    """The page query's parameters in order: the scope's path (a customer), the status, LIMIT, OFFSET."""
    scope = (world.acme.path,) if username == "customer" else ()
    assert statement.count("?") == len(scope) + 3, statement
    return scope + ("suspended", 20, 0)


def test_bounded_count_reads_ten_thousand_plus(app):
    with app.test_request_context():
        count = BoundedCount(COUNT_BOUND)
        assert str(count) == "10,000+"
        assert count > COUNT_BOUND  # the pager's arithmetic sees one row past the bound


# --- statements per page ---------------------------------------------------------------------------

@contextmanager
def counted():
    statements: list[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", on_execute)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)


def _orders(world, start, count):
    db.session.execute(insert(Order), [
        {"number": f"RN-T-{i:05d}", "kind": "renewal", "status": "paid", "company_id": world.acme.id,
         "currency": "CNY", "total_minor": 1000, "payment_method": "balance",
         "created_by_id": world.users["customer"].id, "created_at": SAME_TIME}
        for i in range(start, start + count)])


def _ledger(world, start, count):
    wallet = db.session.query(Wallet).filter_by(company_id=world.acme.id, currency="CNY").one_or_none()
    if wallet is None:
        wallet = Wallet(company_id=world.acme.id, currency="CNY", balance_minor=0)
        db.session.add(wallet)
        db.session.flush()
    db.session.execute(insert(LedgerEntry), [
        {"wallet_id": wallet.id, "currency": "CNY", "kind": "recharge", "amount_minor": 100, "balance_after_minor": i * 100,
         "idempotency_key": f"test:list:{i}", "actor_id": world.users["finance"].id, "created_at": SAME_TIME}
        for i in range(start, start + count)])


def _offline_recharge_orders(world, start, count):
    """Approved offline recharges' paid orders, each with its note (the application, payer and reference)."""
    db.session.execute(insert(Order), [
        {"number": f"RC-T-{i:05d}", "kind": "recharge", "status": "paid", "company_id": world.acme.id,
         "currency": "CNY", "total_minor": 1000, "payment_method": "offline", "note": f"Offline recharge #{i}",
         "note_data": {"key": "ledger.offline_recharge", "params": {"id": i, "payer": f"Payer {i}"}},
         "created_by_id": world.users["finance"].id, "created_at": SAME_TIME, "paid_at": SAME_TIME}
        for i in range(start, start + count)])


def _audit(world, start, count):
    db.session.execute(insert(AuditEvent), [
        {"at": SAME_TIME, "actor_id": world.users["admin"].id, "actor_name": "admin", "action": "edit",
         "model": "device", "ids": str(i), "summary": f"change {i}"} for i in range(start, start + count)])


def _recharges(world, start, count):
    db.session.execute(insert(OfflineRecharge), [
        {"company_id": world.acme.id, "payer": f"Payer {i}", "currency": "CNY", "amount_minor": 10000,
         "reference": f"REF{i}", "status": "submitted", "created_by_id": world.users["sales"].id,
         "created_at": SAME_TIME, "submitted_at": SAME_TIME} for i in range(start, start + count)])


def _members(world, start, count):
    db.session.execute(insert(MemberAccount), [
        {"company_id": world.acme.id, "login": f"member{i:05d}", "vip_level": "vip",
         "vip_expires_on": TODAY, "created_at": SAME_TIME} for i in range(start, start + count)])


def _devices(world, start, count):
    db.session.execute(insert(Device), [
        {"number": f"TIE{i:05d}", "name": f"Tie {i}", "device_type": "GPS tracker", "company_id": world.acme.id,
         "status": "active", "expires_on": TODAY, "package_id": world.packages["GPS-Y"].id}
        for i in range(start, start + count)])


def _invoice_requests(world, start, count):
    """Requests each asked for by a user of its own: the list names requester and reviewer per row."""
    title = db.session.query(InvoiceTitle).filter_by(company_id=world.acme.id).first()
    if title is None:
        title = InvoiceTitle(company_id=world.acme.id, kind="ordinary", title="Acme Logistics Ltd",
                             tax_id="91310000MA1FL4X12Q")
        db.session.add(title)
        db.session.flush()
    requesters = [make_user(f"asker{i:04d}", "customer_admin", world.acme).id for i in range(start, start + count)]
    db.session.execute(insert(InvoiceRequest), [
        {"company_id": world.acme.id, "title_id": title.id, "invoice_type": "electronic_ordinary",
         "currency": "CNY", "total_minor": 10000, "email": "ap@acme.example", "status": "requested",
         "requested_by_id": user_id, "created_at": SAME_TIME} for user_id in requesters])


LISTS = [
    ("support", "/admin/device/", _devices),
    ("customer", "/admin/device/", _devices),
    ("customer", "/admin/device/?flt0_status_equals=active&sort=5", _devices),
    ("finance", "/admin/order_management/", _orders),
    ("customer", "/admin/order_record/", _orders),
    ("finance", "/admin/ledgerentry/", _ledger),
    ("customer", "/admin/balance_history/", _ledger),
    ("customer", "/admin/recharge_record/", _offline_recharge_orders),
    ("admin", "/admin/auditevent/", _audit),
    ("finance", "/admin/recharge_review/", _recharges),
    ("customer", "/admin/memberaccount/", _members),
    ("finance", "/admin/invoice_review/", _invoice_requests),
]


@pytest.mark.parametrize("username, url, add", LISTS, ids=[f"{u}:{p}" for u, p, _a in LISTS])
def test_statements_per_page_do_not_grow_with_rows(world, client, login, username, url, add):
    """The same page with 10 rows and with 200 rows (page size 500) runs the same number of statements."""
    login(username, PASSWORD)
    page = url + ("&" if "?" in url else "?") + "page_size=500"
    counts = []
    for start, count in ((0, 10), (10, 190)):
        add(world, start, count)
        db.session.commit()
        client.get(page)  # warm: the session user, the menu
        with counted() as statements:
            response = client.get(page)
        assert response.status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1], f"{url}: {counts[0]} statements at 10 rows, {counts[1]} at 200"
