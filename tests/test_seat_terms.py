"""Seed 004 §6 (查看订单): seat terms. A seat package priced per term sells seats that last its term from
payment; the seat orders list shows 订单到期时间 and 是否可用 (filters, details, export), marks orders
expiring soon, and `billing expire-seats` takes expired seats back from the quota once.

The rules are tested as functions; HTTP tests prove the columns, filters, scope and export; one CLI
test the command."""
from __future__ import annotations

import html
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import event, select, update
from sqlalchemy.engine import Engine

from actions import DomainError
from actions.orders import approve_refund, pay_with_balance, request_refund
from actions.seats import (
    SeatTerm, create_organizer, create_seat_order, expire_seat_orders, grant_seats, remove_purchased_seats,
    seat_counts, seat_terms, seats_expire_on, usable_clause,
)
from actions.times import zone_for
from actions.wallets import credit, wallet_for
from conftest import make_user
from models import AuditEvent, MemberAccount, Order, OrderLine, Package, PackageCategory, SeatQuota, User, db

SEAT_ORDERS = "/admin/seat_order/"
PAID_ON = date(2024, 5, 15)
TERM_ENDS = date(2025, 5, 15)  # PAID_ON + 12 months


pytestmark = pytest.mark.usefixtures("request_unless_client")  # actions run in a request


@pytest.fixture
def catalog(world):
    """Enterprise seats last 12 months (priced per term); basic seats never expire (priced per year)."""
    category = PackageCategory(code="SEAT", name="Seats", kind="seat")
    db.session.add(category)
    db.session.flush()
    packages = {
        "enterprise": Package(code="SEAT-ENT", name="Enterprise seat, 12 months", category_id=category.id, kind="seat",
                              edition="enterprise", amount=Decimal("300.00"), pricing="per_term", term_months=12,
                              currency="CNY"),
        "basic": Package(code="SEAT-BASIC", name="Basic seat", category_id=category.id, kind="seat", edition="basic",
                         amount=Decimal("100.00"), pricing="per_year", currency="CNY"),
    }
    db.session.add_all(packages.values())
    db.session.commit()
    return packages


def users(world, name) -> User:
    return db.session.get(User, world.users[name].id)


def give_seats(world, company, edition: str, quantity: int, today: date = PAID_ON) -> Order:
    order = grant_seats(db.session, users(world, "sales"), company, edition, quantity, "cash", today)
    db.session.commit()
    return db.session.get(Order, order.id)


def line_of(order: Order) -> OrderLine:
    db.session.expire_all()
    return db.session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))


def quota(company, edition: str) -> tuple[int, int] | None:
    db.session.expire_all()
    row = db.session.scalar(select(SeatQuota).where(SeatQuota.company_id == company.id,
                                                    SeatQuota.edition == edition))
    return None if row is None else (row.purchased, row.used)


def organizer(world, email: str, edition: str = "enterprise", company=None) -> MemberAccount:
    account = create_organizer(db.session, users(world, "customer"), company or world.acme, email, "Wei", "Zhang",
                               edition)
    db.session.commit()
    return account


def active_logins(company, edition: str) -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(select(MemberAccount.login).where(
        MemberAccount.company_id == company.id, MemberAccount.seat_edition == edition,
        MemberAccount.active.is_(True))))


def usable_ids(today: date) -> set[int]:
    return set(db.session.scalars(select(Order.id).where(Order.kind == "seats", usable_clause(today))))


# --- the expiry -------------------------------------------------------------------------------------

def test_the_expiry_is_the_paid_day_plus_the_term_a_calendar_date(world, catalog):
    order = give_seats(world, world.acme, "enterprise", 3)
    line = line_of(order)
    assert (line.months, line.new_expires_on, line.seat_state) == (12, TERM_ENDS, "active")
    # Paid from the balance on another day: that day counts, not the day the order was made.
    credit(db.session, wallet_for(db.session, world.acme.id, "CNY"), Decimal("300.00"), "recharge", "test:fund")
    pending = create_seat_order(db.session, users(world, "customer"), world.acme, "enterprise", 1)
    db.session.commit()
    assert line_of(pending).new_expires_on is None  # not paid: no expiry yet
    pay_with_balance(db.session, users(world, "customer"), db.session.get(Order, pending.id), date(2024, 1, 31))
    db.session.commit()
    assert line_of(pending).new_expires_on == date(2025, 1, 31)
    # Calendar months, clamped to the end of a shorter month; never past the last day the system keeps.
    assert seats_expire_on(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert seats_expire_on(date(2024, 5, 15), None) is None
    assert seats_expire_on(date(2199, 6, 1), 12) == date(2199, 12, 31)


def test_seats_of_a_package_without_a_term_never_expire(world, catalog):
    order = give_seats(world, world.acme, "basic", 2)
    line = line_of(order)
    assert (line.months, line.new_expires_on, line.seat_state) == (None, None, "active")
    assert order.id in usable_ids(date(2199, 12, 31))
    assert expire_seat_orders(db.session, date(2199, 12, 31)).expired == []
    assert quota(world.acme, "basic") == (2, 0)


def test_the_buy_and_grant_pages_say_how_long_seats_last(client, login, world, catalog):
    login("customer")
    page = _text(client.get(SEAT_ORDERS + "buy/"))
    options = {line.strip() for line in page.splitlines() if "per account" in line}
    assert any("Enterprise" in o and "300.00 per account (12 months from payment)" in o for o in options), options
    assert any("Basic" in o and "months" not in o for o in options), options
    login.logout()
    login("sales")
    assert "(12 months from payment)" in _text(client.get("/admin/seat_grant/"))


def test_a_term_past_the_last_expiry_day_is_refused_when_the_order_is_made(world, catalog):
    catalog["enterprise"].term_months = 12 * 300
    db.session.commit()
    with pytest.raises(DomainError, match="Seat package SEAT-ENT: a term of 3600 months would end after 2199-12-31"):
        create_seat_order(db.session, users(world, "customer"), world.acme, "enterprise", 1)


def test_usable_means_paid_not_refunded_and_not_past_the_expiry_in_python_and_in_sql(world, catalog):
    paid = give_seats(world, world.acme, "enterprise", 1)
    forever = give_seats(world, world.acme, "basic", 1)
    pending = create_seat_order(db.session, users(world, "customer"), world.acme, "enterprise", 1)
    cancelled = create_seat_order(db.session, users(world, "customer"), world.acme, "basic", 1)
    db.session.execute(update(Order).where(Order.id == cancelled.id).values(status="cancelled"))
    db.session.commit()
    orders = {o.id: o for o in db.session.scalars(select(Order).where(Order.kind == "seats"))}
    terms = seat_terms(db.session, orders)
    for today, usable in ((PAID_ON, {paid.id, forever.id}), (TERM_ENDS, {paid.id, forever.id}),
                          (TERM_ENDS + timedelta(days=1), {forever.id})):
        assert usable_ids(today) == usable
        assert {i for i, o in orders.items() if terms[i].usable(o.status, today)} == usable
    assert not SeatTerm(TERM_ENDS, "active").expiring_soon("paid", TERM_ENDS - timedelta(days=31))
    assert SeatTerm(TERM_ENDS, "active").expiring_soon("paid", TERM_ENDS - timedelta(days=30))
    assert pending.id not in usable_ids(PAID_ON) and cancelled.id not in usable_ids(PAID_ON)


# --- the daily job ----------------------------------------------------------------------------------

def test_the_job_takes_the_seats_back_once_and_exactly(world, catalog):
    expiring = give_seats(world, world.acme, "enterprise", 3)
    give_seats(world, world.acme, "enterprise", 2, today=date(2024, 9, 1))  # ends 2025-09-01
    organizer(world, "a@acme.example")
    assert quota(world.acme, "enterprise") == (5, 1)

    assert expire_seat_orders(db.session, TERM_ENDS).expired == []  # usable on its last day
    report = expire_seat_orders(db.session, TERM_ENDS + timedelta(days=1))
    db.session.commit()
    assert (report.expired, report.deactivated, report.failed) == ([expiring.number], [], [])
    assert quota(world.acme, "enterprise") == (2, 1)
    assert line_of(expiring).seat_state == "expired"
    # Again, and later: nothing more.
    assert expire_seat_orders(db.session, TERM_ENDS + timedelta(days=1)).expired == []
    assert expire_seat_orders(db.session, date(2025, 6, 1)).expired == []
    db.session.commit()
    assert quota(world.acme, "enterprise") == (2, 1)
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "expire_seats")).all()
    assert [(e.ids, e.actor_id) for e in events] == [(f",{expiring.id},", None)]
    assert "3 Enterprise seats of Acme Logistics expired on 2025-05-15" in events[0].summary
    # The quota the organizer page shows ("Enterprise: 1 left") follows.
    counts = seat_counts(db.session, users(world, "customer"))
    assert [(c.edition, c.left) for c in counts] == [("enterprise", 1)]


def test_over_quota_the_newest_organizers_of_the_edition_are_deactivated_to_fit(world, catalog):
    """The choice (documented on expire_seat_orders): the CHECK used <= purchased holds; the organizers
    created last are deactivated, just enough, each freeing its seat; the audit names them."""
    expiring = give_seats(world, world.acme, "enterprise", 3)
    give_seats(world, world.acme, "enterprise", 1, today=date(2025, 1, 1))
    give_seats(world, world.acme, "basic", 2)
    logins = [f"o{i}@acme.example" for i in range(4)]
    for i, login in enumerate(logins):
        organizer(world, login)
        db.session.execute(update(MemberAccount).where(MemberAccount.login == login)
                           .values(created_at=datetime(2024, 6, 1 + i, tzinfo=timezone.utc)))
    organizer(world, "b@acme.example", "basic")
    db.session.commit()
    assert quota(world.acme, "enterprise") == (4, 4)

    report = expire_seat_orders(db.session, TERM_ENDS + timedelta(days=1))
    db.session.commit()

    assert report.expired == [expiring.number] and sorted(report.deactivated) == logins[1:]
    assert quota(world.acme, "enterprise") == (1, 1)
    assert active_logins(world.acme, "enterprise") == {logins[0]}  # the oldest keeps working
    assert active_logins(world.acme, "basic") == {"b@acme.example"} and quota(world.acme, "basic") == (2, 1)
    event_ = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "expire_seats"))
    assert "organizers deactivated to fit: " in event_.summary
    assert all(login in event_.summary for login in logins[1:])
    # Again: nothing more is taken, nobody else deactivated.
    assert expire_seat_orders(db.session, TERM_ENDS + timedelta(days=2)).expired == []
    assert quota(world.acme, "enterprise") == (1, 1)


def test_a_refund_and_the_expiry_take_the_seats_back_once_between_them(world, catalog):
    expired = give_seats(world, world.acme, "enterprise", 2)
    expire_seat_orders(db.session, TERM_ENDS + timedelta(days=1))
    db.session.commit()
    assert quota(world.acme, "enterprise") == (0, 0)
    # Refunding the order whose seats expired takes nothing more (the quota would go negative).
    remove_purchased_seats(db.session, db.session.get(Order, expired.id), db.session.get(Order, expired.id).lines)
    db.session.commit()
    assert quota(world.acme, "enterprise") == (0, 0)
    # A refund before the expiry: the job then has nothing to take.
    again = give_seats(world, world.north, "enterprise", 1)
    finance2 = make_user("finance2", "finance")
    db.session.commit()
    refund = request_refund(db.session, users(world, "finance"), db.session.get(Order, again.id))
    db.session.commit()
    approve_refund(db.session, db.session.get(User, finance2.id), refund, PAID_ON)
    db.session.commit()
    assert line_of(again).seat_state == "returned" and quota(world.north, "enterprise") == (0, 0)
    assert expire_seat_orders(db.session, date(2026, 1, 1)).expired == []
    assert quota(world.north, "enterprise") == (0, 0) and again.id not in usable_ids(PAID_ON)


def test_the_command_expires_once_and_says_what_it_did(app, world, catalog):
    order = give_seats(world, world.acme, "enterprise", 2)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["billing", "expire-seats", "--today", "2025-05-16"])
    assert first.exit_code == 0, first.output
    assert "expire-seats 2025-05-16: 1 seat orders expired" in first.output and order.number in first.output
    second = runner.invoke(args=["billing", "expire-seats", "--today", "2025-05-16"])
    assert second.exit_code == 0 and "0 seat orders expired" in second.output
    assert quota(world.acme, "enterprise") == (0, 0)


# --- the list: columns, filters, expiring soon, scope, export ---------------------------------------

def _filter(app, cls_name: str) -> str:
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "seat_order")
    for arg, (_index, flt) in view._filter_args.items():
        if type(flt).__name__ == cls_name:
            return f"flt0_{arg}"
    raise AssertionError(f"no filter {cls_name}")


@pytest.fixture
def seat_orders(world, catalog):
    """Acme: seats ending in 10 days, seats ended long ago (taken back), seats that never end; North: seats
    ending in a year; Globex: seats ending in 10 days (another tenant)."""
    today = datetime.now(timezone.utc).date()
    soon = give_seats(world, world.acme, "enterprise", 2, today=today)
    ended = give_seats(world, world.acme, "enterprise", 1, today=date(2020, 1, 1))
    forever = give_seats(world, world.acme, "basic", 4)
    later = give_seats(world, world.north, "enterprise", 3, today=today)
    foreign = give_seats(world, world.globex, "enterprise", 5, today=today)
    db.session.execute(update(OrderLine).where(OrderLine.order_id.in_([soon.id, foreign.id]))
                       .values(new_expires_on=today + timedelta(days=10)))  # as if paid 12 months ago less 10 days
    expire_seat_orders(db.session, today)
    db.session.commit()
    return {"soon": soon, "ended": ended, "forever": forever, "later": later, "foreign": foreign}


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def _shown(page: str, orders: dict) -> set[str]:
    return {key for key, order in orders.items() if order.number in page}


def set_locale(world, name: str, locale: str | None) -> None:
    db.session.execute(update(User).where(User.id == world.users[name].id).values(locale=locale))
    db.session.commit()


def test_the_list_shows_the_expiry_and_whether_usable_in_chinese(client, login, world, seat_orders):
    set_locale(world, "customer", "zh_Hans_CN")
    login("customer")
    page = _text(client.get(SEAT_ORDERS))
    for label in ("订单到期时间", "是否可用", "可用", "不可用"):
        assert label in page, label
    assert _shown(page, seat_orders) == {"soon", "ended", "forever", "later"}
    soon = line_of(seat_orders["soon"]).new_expires_on
    # counted from the reader's day (China's, a day ahead of UTC from 16:00 UTC)
    reader_today = datetime.now(zone_for(world.acme.time_zone, "zh_Hans_CN")).date()
    assert soon.isoformat() in page and f"{(soon - reader_today).days} 天后到期" in page  # marked as expiring soon
    assert "1 个席位订单将在 30 天内到期" in page  # and counted above the list
    details = _text(client.get(f"{SEAT_ORDERS}details/?id={seat_orders['forever'].id}"))
    assert "订单到期时间" in details and "可用" in details and "不可用" not in details
    details = _text(client.get(f"{SEAT_ORDERS}details/?id={seat_orders['ended'].id}"))
    assert "不可用" in details and "2021-01-01" in details


def test_the_list_filters_by_usable_and_by_expiry_range_in_sql(app, client, login, world, seat_orders):
    set_locale(world, "customer", "zh_Hans_CN")
    login("customer")
    usable = _filter(app, "UsableIs")
    assert _shown(_text(client.get(f"{SEAT_ORDERS}?{usable}=yes")), seat_orders) == {"soon", "forever", "later"}
    assert _shown(_text(client.get(f"{SEAT_ORDERS}?{usable}=no")), seat_orders) == {"ended"}
    assert _shown(_text(client.get(f"{SEAT_ORDERS}?{usable}=soon")), seat_orders) == {"soon"}
    between = _filter(app, "ExpiresBetween")
    page = _text(client.get(f"{SEAT_ORDERS}?{between}=2020-06-01+to+2021-06-01"))
    assert _shown(page, seat_orders) == {"ended"}
    soon = line_of(seat_orders["soon"]).new_expires_on.isoformat()
    assert _shown(_text(client.get(f"{SEAT_ORDERS}?{between}={soon}+to+{soon}")), seat_orders) == {"soon"}


def test_the_list_runs_as_many_queries_for_many_orders_as_for_one(app, client, login, world, seat_orders):
    usable = _filter(app, "UsableIs")
    login("customer")

    def statements(url: str) -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(Engine, "before_cursor_execute", listener)
        try:
            _text(client.get(url))
        finally:
            event.remove(Engine, "before_cursor_execute", listener)
        return len(seen)

    few = statements(f"{SEAT_ORDERS}?{usable}=yes")
    for _ in range(6):
        give_seats(world, world.acme, "enterprise", 1, today=datetime.now(timezone.utc).date())
    assert statements(f"{SEAT_ORDERS}?{usable}=yes") == few


def test_a_customer_sees_only_its_company_trees_orders_and_counts(client, login, world, seat_orders):
    login("north")
    page = _text(client.get(SEAT_ORDERS))
    assert _shown(page, seat_orders) == {"later"}
    assert "seat order ends within" not in page  # Globex's and Acme's expiring orders are not counted here
    assert client.get(f"{SEAT_ORDERS}details/?id={seat_orders['foreign'].id}").status_code in (302, 404)


def test_the_export_has_the_expiry_and_whether_usable(client, login, world, seat_orders):
    login("customer")
    answer = client.get(SEAT_ORDERS + "export/xlsx/")
    assert answer.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(answer.data)).active.iter_rows(values_only=True))
    header = rows[0]
    assert "Order expires on" in header and "Usable?" in header
    body = {row[header.index("Order number")]: row for row in rows[1:]}
    assert set(body) == {seat_orders[k].number for k in ("soon", "ended", "forever", "later")}
    expiry, usable = header.index("Order expires on"), header.index("Usable?")
    soon = line_of(seat_orders["soon"]).new_expires_on
    assert body[seat_orders["soon"].number][expiry].date() == soon
    assert body[seat_orders["soon"].number][usable] == "Usable"
    assert body[seat_orders["ended"].number][usable] == "Not usable"
    assert body[seat_orders["forever"].number][expiry] is None
