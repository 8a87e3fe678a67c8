"""A distributor's home page opens on its card business (seed 002: "登录成功后,系统会显示用户的个人中心页面,包括订单
管理、财务管理、分销管理"): cards in stock, card orders to ship, withdrawals under review, and its commission apart
from its balance (commission is spent only by withdrawals: added to the balance it read as money to renew with)."""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal as D

from actions.card_orders import place_order
from actions.cards import CardInput, add_card, post_stock_document
from actions.distribution import submit_withdrawal
from actions.orders import pay_with_balance
from actions.wallets import credit, wallet_for
from conftest import make_company, make_device, make_user
from models import db
from tests.test_cards import ACCOUNT

pytest_plugins = ("card_fixtures",)


def _cards_on_home(page: str) -> dict[str, str]:
    return dict(re.findall(r'<div class="rd-num" data-card="([a-z_0-9]+)">(\d+)</div>', page))


def test_a_distributor_sees_its_stock_orders_withdrawals_and_commission_apart(cards, vault, client, login):
    s, support = db.session, cards["users"]["support"]
    rows = [add_card(s, support, vault, CardInput(f"8986{n:016d}", f"1370000{n:04d}", f"Q{n:05d}", "SIM-39",
                                                  date.today() + timedelta(days=365)), date.today())
            for n in range(5)]
    post_stock_document(s, support, "transfer", [r.iccid for r in rows[:3]], to_holder=cards["a"].id)
    post_stock_document(s, support, "transfer", [rows[3].iccid], to_holder=cards["b"].id)
    credit(s, wallet_for(s, cards["a"].id, "CNY"), D("100.00"), "recharge", "t:prepaid")
    credit(s, wallet_for(s, cards["a"].id, "CNY", kind="commission"), D("50.00"), "commission", "t:commission")
    users = cards["users"]
    paid = place_order(s, users["a_admin"], seller=cards["a"], package=cards["package"], quantity=1)
    pay_with_balance(s, users["a_admin"], paid.order, date.today())
    place_order(s, users["a_admin"], seller=cards["a"], package=cards["package"], quantity=1)  # unpaid: not to ship
    submit_withdrawal(s, users["a_admin"], vault, cards["a"], amount="11.50", bank_name="ICBC",
                      account_name="Alpha Trading Co", account_number=ACCOUNT)
    s.commit()
    login("a_admin")
    page = client.get("/admin/").get_data(as_text=True)
    found = _cards_on_home(page)
    assert found["cards_in_stock"] == "4"  # its own three and its sub-distributor's one; not the platform's
    assert found["card_orders_to_ship"] == "1" and found["withdrawals"] == "1"
    assert "Cards in stock" in page and "Card orders awaiting shipment" in page
    assert 'href="/admin/simcard/"' in page and 'href="/admin/cardorder/?tab=awaiting"' in page
    balances = dict(re.findall(r'data-balance="([A-Z]+)">([^<]*)<', page))
    assert balances["CNY"] == "CN¥61.00"  # 100 less the paid order's 39; the commission is not balance
    assert dict(re.findall(r'data-commission="([A-Z]+)">([^<]*)<', page)) == {"CNY": "CN¥38.50"}  # 50 − 11.50


def test_a_customer_that_is_no_distributor_sees_no_card_panels(cards, client, login):
    plain = make_company("Plain Customer")
    make_user("plain", "customer_admin", plain)
    credit(db.session, wallet_for(db.session, plain.id, "CNY"), D("5.00"), "recharge", "t:plain")
    db.session.commit()
    login("plain")
    page = client.get("/admin/").get_data(as_text=True)
    assert "cards_in_stock" not in _cards_on_home(page) and 'id="rd-commission"' not in page
    assert dict(re.findall(r'data-balance="([A-Z]+)">([^<]*)<', page))["CNY"] == "CN¥5.00"


DEVICE_CARDS = {"expiring_30", "expired", "suspended"}


def test_a_distributor_without_devices_sees_no_device_panels_until_its_tree_holds_one(cards, client, login):
    """Seed 002's personal centre is the card business: a distributor holding no device saw three device counts at
    0 and an empty "devices expiring" chart after its card panels. Once a device sits in its tree (here at its
    sub-distributor), the device panels are back; a plain customer always has them."""
    login("a_admin")
    page = client.get("/admin/").get_data(as_text=True)
    found = _cards_on_home(page)
    assert "cards_in_stock" in found and not DEVICE_CARDS & set(found), found
    assert 'id="rd-chart-expiring"' not in page and 'id="rd-balances"' in page
    # Its commission to withdraw is on the page before the first sale brought any (README: the home opens on it).
    assert dict(re.findall(r'data-commission="([A-Z]+)">([^<]*)<', page)) == {"CNY": "CN¥0.00"}
    make_device("GPS-B-1", cards["b"], expires_on=date.today() + timedelta(days=5))
    db.session.commit()
    page = client.get("/admin/").get_data(as_text=True)
    found = _cards_on_home(page)
    assert DEVICE_CARDS <= set(found) and found["expiring_30"] == "1", found
    assert 'id="rd-chart-expiring"' in page and "cards_in_stock" in found


def test_a_plain_customer_without_devices_keeps_its_device_panels(cards, client, login):
    plain = make_company("Plain Customer")
    make_user("plain", "customer_admin", plain)
    db.session.commit()
    login("plain")
    page = client.get("/admin/").get_data(as_text=True)
    assert DEVICE_CARDS <= set(_cards_on_home(page)) and 'data-chart-empty="expiring"' in page
