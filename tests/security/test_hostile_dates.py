"""Days typed by hand on a form: the cash received for a subscription on a day in the future (a typo of
the year, 2062 for 2026) or in year 1 was recorded as such (finance confirmed "cash received on
9999-12-31"), while an invoice dated in the future was refused. Each is a message naming the field and
nothing is recorded; today and a past day are still taken."""
from __future__ import annotations

import html
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from conftest import post
from db_snapshot import changed_tables, snapshot
from models import CashReceipt, db
from test_subscriptions import checkout


@pytest.fixture
def pending_cash(world):
    subscription = checkout(world.users["sales"], world.acme, pay_method="cash")
    db.session.commit()
    return subscription


@pytest.mark.parametrize("day", [date.today() + timedelta(days=1), date(9999, 12, 31), date(1, 1, 1),
                                 date(1999, 12, 31)])
def test_cash_received_outside_2000_to_today_is_refused(client, login, pending_cash, day):
    login("sales")
    before = snapshot()
    answer = post(client, f"/admin/subscription/view/{pending_cash.id}/cash/",
                  {"received_on": day.isoformat(), "reference": "R-1"}, follow_redirects=True)
    assert answer.status_code == 200
    assert f"Cash received on: a day from 2000-01-01 to today ({day.isoformat()} is not)." in html.unescape(
        answer.get_data(as_text=True))
    assert changed_tables(before) == []


@pytest.mark.parametrize("day", [date.today(), date.today() - timedelta(days=3)])
def test_cash_received_today_or_before_is_entered(client, login, pending_cash, day):
    login("sales")
    post(client, f"/admin/subscription/view/{pending_cash.id}/cash/", {"received_on": day.isoformat()})
    assert db.session.scalar(select(CashReceipt.received_on)) == day
    assert db.session.scalar(select(func.count()).select_from(CashReceipt)) == 1
