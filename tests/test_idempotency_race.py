"""The same form sent many times at the same moment, to several gunicorn worker processes, makes one
order: the unique index (user, key) decides, on SQLite and on PostgreSQL, not a lock in Python."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from actions.idempotency import new_key
from live_server import Browser, shared_gunicorn
from models import IdempotencyKey, Order, db

pytestmark = pytest.mark.xdist_group("gunicorn")
SENDERS = 12


@pytest.fixture(scope="module")
def server(database_url):
    with shared_gunicorn(database_url) as live:
        yield live


def test_a_renew_form_sent_twelve_times_at_once_makes_one_order(server, world):
    key = new_key()
    customer = Browser(server.base).login("customer")
    form = [("company_id", str(world.acme.id)), ("months", "6"), ("custom_months", ""),
            ("rowid", str(world.devices["AC0001"].id)), ("idempotency_key", key)]
    browsers = [customer.clone() for _ in range(SENDERS)]
    barrier = threading.Barrier(SENDERS)

    def send(browser):
        barrier.wait(timeout=120)
        return browser.post("/admin/renewal_center/renew/", form, follow=False)

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        answers = list(pool.map(send, browsers))
    db.session.expire_all()
    orders = list(db.session.scalars(select(Order).where(Order.kind == "renewal")))
    assert len(orders) == 1
    assert [a.status for a in answers] == [302] * SENDERS
    assert {a.location.split("://", 1)[-1].split("/", 1)[-1] for a in answers} == {
        f"admin/renewal_center/order/{orders[0].number}/"}
    assert db.session.scalar(select(IdempotencyKey.result_url).where(IdempotencyKey.key == key)) == \
        f"/admin/renewal_center/order/{orders[0].number}/"
