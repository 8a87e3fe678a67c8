"""The home pages' panels and charts: a customer's balances and seats, devices expiring in the next 90
days, finance's queues and income by day; chart data is JSON of integers (minor units for money), the
queries per page do not grow with the rows, and ECharts is served by the app with its licence."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from actions.wallets import credit, debit, wallet_for
from conftest import make_device
from models import BankTransferReceipt, LedgerEntry, Order, OrderRefund, SeatQuota, User, db


def chart_data(page: str, key: str) -> dict:
    match = re.search(rf'<script type="application/json" id="rd-chart-data-{key}">(.*?)</script>', page, re.S)
    assert match, f"no chart {key}"
    return json.loads(match.group(1))


def home(client, login, username: str, locale: str | None = None) -> str:
    login(username)
    if locale:
        user = db.session.scalar(db.select(User).where(User.username == username))
        user.locale = locale
        db.session.commit()
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_customer_sees_balances_per_currency_of_its_tree_only(client, login, world):
    credit(db.session, wallet_for(db.session, world.acme.id, "CNY"), Decimal("12800.00"), "offline_recharge", "t:1")
    credit(db.session, wallet_for(db.session, world.north.id, "CNY"), Decimal("0.50"), "offline_recharge", "t:2")
    credit(db.session, wallet_for(db.session, world.acme.id, "COIN"), Decimal("216000"), "coin_purchase", "t:3")
    credit(db.session, wallet_for(db.session, world.globex.id, "USD"), Decimal("99.00"), "offline_recharge", "t:4")
    db.session.commit()
    page = home(client, login, "customer", "zh_Hans_CN")
    balances = dict(re.findall(r'data-balance="([A-Z]+)">([^<]*)<', page))
    assert balances == {"CNY": "¥12,800.50", "USD": "US$0.00", "COIN": "216,000 奥币"}
    assert "¥12,800.00" in page  # its own company's part, beside the tree's total


def test_customer_sees_its_seat_quotas(client, login, world):
    db.session.add(SeatQuota(company_id=world.acme.id, edition="enterprise", purchased=5, used=2))
    db.session.add(SeatQuota(company_id=world.south.id, edition="enterprise", purchased=1, used=1))
    db.session.add(SeatQuota(company_id=world.globex.id, edition="basic", purchased=9, used=0))
    db.session.commit()
    page = home(client, login, "customer")
    rows = re.findall(r'<tr data-seats="([^"]+)"><td>[^<]*</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td>'
                      r'<td[^>]*>(\d+)</td>', page)
    assert rows == [("Enterprise", "6", "3", "3")]


def test_expiring_chart_counts_the_customers_devices_per_week(client, login, world):
    today = date.today()
    for number in ("AC0001", "AC0002", "NO0001", "NO0002", "FL0001", "FL0002", "SO0001", "SO0002"):
        world.devices[number].expires_on = today + timedelta(days=200)
    world.devices["AC0001"].expires_on = today
    world.devices["NO0001"].expires_on = today + timedelta(days=6)
    world.devices["FL0001"].expires_on = today + timedelta(days=7)
    world.devices["SO0001"].expires_on = today + timedelta(days=89)
    world.devices["SO0002"].expires_on = today + timedelta(days=90)  # beyond the 90 days
    world.devices["GX0001"].expires_on = today + timedelta(days=1)  # another tenant's
    db.session.commit()
    data = chart_data(home(client, login, "customer"), "expiring")
    assert data["kind"] == "count"
    assert len(data["counts"]) == len(data["labels"]) == 13
    assert data["counts"][0] == 2 and data["counts"][1] == 1 and data["counts"][12] == 1
    assert data["total"] == 4 and all(isinstance(c, int) for c in data["counts"])


def test_empty_charts_say_so_instead_of_drawing_an_empty_axis(client, login, world):
    """A customer with no device expiring in the next 90 days and finance with no money in for 30 days got an
    empty grid of bars at 0 and no word why; the card now says there is nothing."""
    for device in world.devices.values():
        device.expires_on = date.today() + timedelta(days=200)
    db.session.execute(db.delete(LedgerEntry))
    db.session.commit()
    page = home(client, login, "customer", "zh_Hans_CN")
    assert 'data-chart-empty="expiring"' in page and 'id="rd-chart-data-expiring"' not in page
    assert "echarts.min.js" not in page  # nothing to draw: the script is not loaded
    login.logout()
    page = home(client, login, "finance", "vi")
    assert 'data-chart-empty="income"' in page and 'id="rd-chart-data-income"' not in page
    world.devices["AC0001"].expires_on = date.today() + timedelta(days=3)
    db.session.commit()
    login.logout()
    page = home(client, login, "customer", "zh_Hans_CN")
    assert chart_data(page, "expiring")["total"] == 1 and 'data-chart-empty' not in page


def test_finance_sees_its_queues(client, login, world):
    order = db.session.scalar(db.select(Order).where(Order.number == "RC-GLOBEX-0001"))
    db.session.add(BankTransferReceipt(order_id=order.id, payer_company="Globex", payer_account="6222",
                                       amount=Decimal("50.00"), file_name="r.png", content_type="image/png",
                                       file_sha256="0" * 64, file_size=10))
    db.session.commit()
    page = home(client, login, "finance")
    cards = dict(re.findall(r'data-card="([a-z_0-9]+)">(\d+)<', page))
    assert cards == {"pending_review": "0", "bank_transfers": "1", "invoice_requests": "1", "refunds": "0",
                     "cash_receipts": "0", "pending_orders": "1"}
    for link in re.findall(r'<a href="([^"]+)" class="stretched-link', page):
        assert client.get(link.replace("&amp;", "&")).status_code == 200, link


def _entry_at(entry: LedgerEntry, at: datetime) -> None:
    entry.created_at = at


def test_income_chart_sums_money_in_per_day_in_minor_units(client, login, world):
    now = datetime.now(timezone.utc)
    cny = wallet_for(db.session, world.acme.id, "CNY")
    vnd = wallet_for(db.session, world.globex.id, "VND")
    _entry_at(credit(db.session, cny, Decimal("0.10"), "offline_recharge", "i:1"), now)
    _entry_at(credit(db.session, cny, Decimal("0.20"), "recharge", "i:2"), now)
    _entry_at(credit(db.session, cny, Decimal("1000.00"), "offline_recharge", "i:3"), now - timedelta(days=2))
    _entry_at(credit(db.session, cny, Decimal("77.00"), "offline_recharge", "i:old"), now - timedelta(days=40))
    _entry_at(debit(db.session, cny, Decimal("5.00"), "payment", "i:4"), now)  # spent, not income
    _entry_at(credit(db.session, cny, Decimal("3.00"), "refund", "i:5"), now)  # given back, not income
    _entry_at(credit(db.session, vnd, Decimal("1200000"), "offline_recharge", "i:6"), now)
    db.session.commit()
    page = home(client, login, "finance", "zh_Hans_CN")
    data = chart_data(page, "income")
    assert data["kind"] == "money" and len(data["labels"]) == 30
    series = {s["currency"]: s for s in data["series"]}
    assert set(series) == {"CNY", "VND"}
    assert series["CNY"]["exponent"] == 2 and series["VND"]["exponent"] == 0
    assert series["CNY"]["minor"][-1] == 30 and series["CNY"]["minor"][-3] == 100000
    assert sum(series["CNY"]["minor"]) == 100030
    assert series["CNY"]["text"][-1] == "¥0.30" and series["CNY"]["total_text"] == "¥1,000.30"
    assert series["VND"]["minor"][-1] == 1200000
    assert all(isinstance(m, int) for s in series.values() for m in s["minor"])
    assert "0.30000000000000004" not in page


def test_income_chart_buckets_by_local_day(app, world):
    """An entry at 23:30 UTC belongs to the next day in Shanghai, to the same day in UTC."""
    from admin_views.dashboard import income_chart

    now = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)
    cny = wallet_for(db.session, world.acme.id, "CNY")
    _entry_at(credit(db.session, cny, Decimal("1.00"), "recharge", "d:1"), datetime(2026, 6, 9, 23, 30, tzinfo=timezone.utc))
    db.session.flush()
    with app.test_request_context():
        utc = income_chart(timezone.utc, now).data["series"][0]
        shanghai = income_chart(ZoneInfo("Asia/Shanghai"), now).data["series"][0]
    assert utc["minor"][-2] == 100 and utc["minor"][-1] == 0
    assert shanghai["minor"][-1] == 100 and shanghai["minor"][-2] == 0


class QueryCounter:
    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args):
        self.count += 1


@pytest.mark.parametrize("username", ["customer", "finance", "admin", "sales", "support"])
def test_queries_per_home_page_do_not_grow_with_rows(client, login, world, web_app, username):
    login(username)
    client.get("/admin/")
    with web_app.app_context():
        engine = db.engine
    with QueryCounter(engine) as before:
        assert client.get("/admin/").status_code == 200
    today = date.today()
    cny = wallet_for(db.session, world.acme.id, "CNY")
    for i in range(40):
        make_device(f"ZZ{i:04d}", world.north, expires_on=today + timedelta(days=i * 2))
        credit(db.session, cny, Decimal("1.00"), "recharge", f"q:{i}")
    db.session.add(SeatQuota(company_id=world.fleet.id, edition="basic", purchased=1, used=0))
    db.session.add(SeatQuota(company_id=world.south.id, edition="standard", purchased=2, used=1))
    db.session.add(OrderRefund(order_id=db.session.scalar(db.select(Order.id).limit(1)), amount_minor=100,
                               reason="x", status="requested", requested_by_id=world.users["finance"].id))
    db.session.commit()
    with QueryCounter(engine) as after:
        assert client.get("/admin/").status_code == 200
    assert after.count == before.count


def test_echarts_is_served_by_the_app_with_its_licence(client, login, world):
    page = home(client, login, "customer")
    script = re.search(r'<script src="([^"]*echarts\.min\.js)"', page)
    assert script and script.group(1).startswith("/static/")
    assert not re.search(r'<script src="(https?:)?//', page)  # nothing from a CDN
    body = client.get(script.group(1))
    assert body.status_code == 200 and b"echarts" in body.data[:2000]
    licence = client.get("/static/vendor/echarts/LICENSE")
    assert licence.status_code == 200 and b"Apache License" in licence.data
    assert client.get("/static/vendor/echarts/NOTICE").status_code == 200
