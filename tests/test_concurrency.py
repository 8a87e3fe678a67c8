"""Money under concurrency, proved against the real server: gunicorn with several worker processes
on the test database (SQLite or PostgreSQL), requests released together by a barrier.

- 50 simultaneous renewals of 50 devices on a wallet that pays for 10: exactly 10 paid, the
  balance exactly 0, the ledger equal to the balances, the other 40 refused for the balance.
- 20 simultaneous approvals of one offline recharge: one credit.
- One payment notification replayed 100 times at once: one payment, one ledger entry, all 200.
- 30 orders cancelled at once from the order list (a savepoint each): no 500, all cancelled.

Each test also fails if the server logged a traceback or "database is locked" meanwhile.
"""
from __future__ import annotations

import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from actions.offline_recharge import create_application
from actions.orders import add_months
from actions.payments import provider_for
from actions.wallets import balance_of, credit, ledger_differences, wallet_for
from conftest import make_device, make_user
from live_server import SANDBOX_SECRET, Answer, Browser, flashes, shared_gunicorn
from models import AuditEvent, Device, LedgerEntry, OfflineRecharge, Order, OrderLine, db
from tests.test_renewals import make_order

# One group: with `--dist loadgroup` the gunicorn modules share a pytest worker instead of two
# servers competing for the CPUs (without it the mark is ignored and each worker starts its own).
pytestmark = pytest.mark.xdist_group("gunicorn")

RENEWALS = 50
AFFORDABLE = 10
MONTHS = 6
PRICE = Decimal("60.00")  # GPS-M: 10.00 CNY per month × 6


@pytest.fixture(scope="session")
def server(database_url):
    """gunicorn (4 workers) on this pytest worker's database, shared with the other gunicorn module."""
    with shared_gunicorn(database_url) as live:
        yield live


@pytest.fixture
def server_log(server):
    """Call it at the end of a test: the tracebacks or locked-database lines the test's requests logged."""
    before = len(server.errors())
    return lambda: "\n".join(server.errors()[before:])


def run_together(count: int, prepare, act, timeout: float = 180) -> list:
    """Run `prepare(i)` in `count` threads, then release every `act(i, prepared)` at once.

    A thread that fails breaks the barrier, so nobody waits for it; its exception is returned in
    its place and the caller's assertions show it."""
    barrier = threading.Barrier(count)

    def one(i):
        try:
            prepared = prepare(i)
        except BaseException as exc:
            barrier.abort()
            return exc
        try:
            barrier.wait(timeout=timeout)
            return act(i, prepared, barrier)
        except BaseException as exc:
            barrier.abort()
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def fresh_balance(company, currency="CNY") -> Decimal:
    db.session.expire_all()
    return balance_of(db.session, company.id, currency)


# --- 50 renewals, money for 10 ------------------------------------------------------------------------

def test_fifty_simultaneous_renewals_pay_exactly_what_the_balance_allows(server, server_log, world):
    today = date.today()
    devices = [make_device(f"RACE{i:04d}", world.acme, expires_on=today + timedelta(days=5 + i),
                           package=world.packages["GPS-M"]) for i in range(RENEWALS)]
    wallet = wallet_for(db.session, world.acme.id, "CNY")
    credit(db.session, wallet, PRICE * AFFORDABLE, "offline_recharge", "test:race:fund")
    db.session.commit()
    before = {d.id: d.expires_on for d in devices}
    ids = [d.id for d in devices]
    acme = world.acme.id

    customer = Browser(server.base).login("customer")  # one login, fifty cookie jars holding it

    def prepare(i):
        return customer.clone()

    def renew_then_pay(i, browser, barrier):
        # Every thread creates its order at the same moment, then every thread pays at the same moment.
        created = browser.post("/admin/renewal_center/renew/", [
            ("company_id", str(acme)), ("months", str(MONTHS)), ("custom_months", ""), ("only", str(ids[i]))],
            follow=False)
        number = ""
        if created.status == 302 and "/admin/renewal_center/order/" in created.location:
            number = created.location.rstrip("/").rsplit("/", 1)[-1]
        barrier.wait(timeout=180)
        if not number:
            return created, "", None
        paid = browser.post(f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"})
        return created, number, paid

    results = run_together(RENEWALS, prepare, renew_then_pay)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == [], errors[:3]
    for created, number, paid in results:
        assert created.status == 302 and number, (created.status, created.location, created.body[:300])
        assert isinstance(paid, Answer) and paid.status == 200, (paid.status, paid.body[:300])

    won = [number for _c, number, paid in results if f"Order {number} is paid: CN¥{PRICE} from the balance." in paid.body]
    refused = [number for _c, number, paid in results if "Insufficient CNY balance: CN¥60.00 needed" in paid.body]
    other = [(number, flashes(paid.body)) for _c, number, paid in results if number not in won and number not in refused]
    assert other == []
    assert (len(won), len(refused)) == (AFFORDABLE, RENEWALS - AFFORDABLE)

    db.session.expire_all()
    orders = {o.number: o for o in db.session.scalars(select(Order).where(Order.kind == "renewal"))}
    assert len(orders) == RENEWALS
    assert sorted(n for n, o in orders.items() if o.status == "paid") == sorted(won)
    assert all(orders[n].status == "pending" and orders[n].payment_method is None for n in refused)
    assert fresh_balance(world.acme) == Decimal("0.00")
    payments = list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "payment")))
    assert sorted(e.order_id for e in payments) == sorted(orders[n].id for n in won)
    assert all(e.amount == -PRICE for e in payments)
    assert sorted(e.balance_after for e in payments) == [PRICE * k for k in range(AFFORDABLE)]
    assert ledger_differences(db.session) == []

    # Exactly the paid orders' devices moved, each by six months; the refused ones did not move.
    renewed = set(db.session.scalars(select(OrderLine.device_id).join(Order).where(Order.status == "paid")))
    after = dict(db.session.execute(select(Device.id, Device.expires_on).where(Device.id.in_(ids))).all())
    assert len(renewed) == AFFORDABLE
    assert {i: after[i] for i in renewed} == {i: add_months(before[i], MONTHS) for i in renewed}
    assert {i: after[i] for i in ids if i not in renewed} == {i: before[i] for i in ids if i not in renewed}
    assert server_log() == ""


# --- 20 approvals of one offline recharge --------------------------------------------------------------

def test_twenty_simultaneous_approvals_on_several_processes_credit_once(server, server_log, world):
    application = create_application(db.session, world.users["sales"], world.acme.id, "Race Payer", "CNY",
                                     "777.77", "RACE-GUNICORN", submit=True)
    reviewers = [make_user(f"finance{i:02d}", "finance").username for i in range(20)]
    db.session.commit()
    app_id = application.id
    url = f"/admin/recharge_review/review/?id={app_id}"

    def prepare(i):
        browser = Browser(server.base).login(reviewers[i])
        page = browser.get(url)
        assert 'name="decision" value="approve"' in page.body, reviewers[i]
        asked = browser.post(url, {"decision": "approve", "comment": ""})  # the confirmation page
        browser.confirm_token = re.search(r'name="confirm_token" value="([^"]+)"', asked.body).group(1)
        return browser

    def approve(i, browser, barrier):
        return browser.post(url, {"decision": "approve", "comment": "", "confirm_token": browser.confirm_token})

    answers = run_together(len(reviewers), prepare, approve)
    assert [a.status if isinstance(a, Answer) else a for a in answers] == [200] * 20
    won = [a for a in answers if f"Application #{app_id} approved: CN¥777.77 credited" in a.body]
    told = [a for a in answers if f"Application #{app_id} was already reviewed: Approved by" in a.body]
    assert (len(won), len(told)) == (1, 19)

    db.session.expire_all()
    assert db.session.get(OfflineRecharge, app_id).status == "approved"
    assert fresh_balance(world.acme) == Decimal("777.77")
    entries = list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.offline_recharge_id == app_id)))
    assert [(e.kind, e.amount) for e in entries] == [("offline_recharge", Decimal("777.77"))]
    assert ledger_differences(db.session) == []
    approvals = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.model == "offline_recharge", AuditEvent.action == "approve"))
    assert approvals == 1
    assert server_log() == ""


# --- simultaneous list actions (savepoints) on SQLite ---------------------------------------------------

def test_simultaneous_cancellations_from_the_order_list_never_answer_500(server, server_log, world):
    """Thirty pending orders cancelled at the same moment through the list action (one savepoint per order).

    On SQLite every write request must start with BEGIN IMMEDIATE (app.WRITE_INTENT); a transaction
    that reads first and writes later cannot wait for the lock and fails with "database is locked"."""
    orders = [make_order(world.acme, "renewal", "pending", "10.00", number=f"RN-CANCEL-{i:03d}") for i in range(30)]
    db.session.commit()
    ids = [o.id for o in orders]
    customer = Browser(server.base).login("customer")

    form = lambda i: [("action", "cancel"), ("rowid", str(ids[i])), ("url", "/admin/order_record/")]  # noqa: E731

    def prepare(i):
        browser = customer.clone()
        asked = browser.post("/admin/order_record/action/", form(i))  # the confirmation page
        browser.confirm_token = re.search(r'name="confirm_token" value="([^"]+)"', asked.body).group(1)
        return browser

    def cancel(i, browser, barrier):
        return browser.post("/admin/order_record/action/", form(i) + [("confirm_token", browser.confirm_token)])

    answers = run_together(len(ids), prepare, cancel)
    assert Counter(a.status if isinstance(a, Answer) else repr(a) for a in answers) == {200: len(ids)}
    assert all("1 orders cancelled." in a.body for a in answers), [flashes(a.body) for a in answers][:3]
    db.session.expire_all()
    statuses = set(db.session.scalars(select(Order.status).where(Order.id.in_(ids))))
    assert statuses == {"cancelled"}
    assert server_log() == ""


# --- one notification, 100 deliveries at once ------------------------------------------------------------

def test_a_notification_replayed_100_times_at_once_pays_once(server, server_log, world):
    order = make_order(world.acme, "recharge", "pending", "88.00", number="RC-RACE-0001")
    db.session.commit()
    payload, signature = provider_for("wechat", SANDBOX_SECRET).notification(order)
    threads, each = 20, 5

    def prepare(i):
        return Browser(server.base)  # a provider: no login, no session, no CSRF token

    def deliver(i, browser, barrier):
        return [browser.post("/payments/callback/wechat", list(payload.items()) + [("signature", signature)])
                for _ in range(each)]

    results = run_together(threads, prepare, deliver)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == [], errors[:3]
    answers = [a for batch in results for a in batch]
    assert len(answers) == threads * each
    assert {(a.status, a.body) for a in answers} == {(200, "OK")}

    db.session.expire_all()
    paid = db.session.get(Order, order.id)
    assert (paid.status, paid.payment_method, paid.provider_ref) == ("paid", "wechat", payload["transaction_id"])
    entries = list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order.id)))
    assert [(e.kind, e.amount, e.idempotency_key) for e in entries] == [
        ("recharge", Decimal("88.00"), f"recharge:order:{order.id}")]
    assert fresh_balance(world.acme) == Decimal("88.00")
    assert ledger_differences(db.session) == []
    pays = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.model == "order", AuditEvent.action == "pay"))
    assert pays == 1
    assert server_log() == ""
