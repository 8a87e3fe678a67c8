"""Seed 002 step by step: what a user following the guide meets on the card pages (订单号 in 分销订单,
the 分销设置 button and its form, 号卡信息 of an order, 全部 orders, 充值 and 提现 on 财务管理)."""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal as D

from sqlalchemy import select

from actions.cards import CardInput, add_card
from actions.distribution import save_rule
from actions.wallets import credit, wallet_for
from conftest import post
from models import CardOrder, CommissionRule, db

pytest_plugins = ("card_fixtures",)
ORDERS = "/admin/cardorder/"


def _sell(cards, vault, client, login, n=2):
    """B sells `n` cards from the platform warehouse (paid from its balance); returns the card order and cards."""
    s, u, b = db.session, cards["users"], cards["b"]
    rows = [add_card(s, u["support"], vault, CardInput(f"8986{i:016d}", f"1340000{i:04d}", f"T{i:05d}", "SIM-39",
                                                       date.today() + timedelta(days=365)), date.today())
            for i in range(n)]
    credit(s, wallet_for(s, b.id, "CNY"), D("1000.00"), "offline_recharge", "test:fund", u["admin"])
    save_rule(s, u["finance"], b, cards["package"].id, mode="split", kind="percent", level1_percent="8",
              level2_percent="10")
    s.commit()
    login("b_admin")
    post(client, f"{ORDERS}place/", {"seller_id": str(b.id), "package_id": str(cards["package"].id),
                                     "quantity": str(n), "holder": "0", "customer_name": "Zhang San",
                                     "customer_phone": "13900000000", "shipping_address": "Shenzhen"})
    return db.session.scalar(select(CardOrder)), rows


def test_distribution_orders_show_the_order_number(cards, vault, client, login):
    """六.1 分销订单 lists 订单号: the order's number, not its internal id."""
    card_order, _ = _sell(cards, vault, client, login)
    page = client.get("/admin/commissionentry/").get_data(as_text=True)
    cell = re.search(r'<td class="col-order_id">\s*(.*?)\s*</td>', page, re.S)
    assert cell is not None and cell.group(1) == card_order.order.number


def test_commission_settings_are_reached_from_their_list_and_open_a_saved_rule(cards, client, login):
    """六.2 分销设置: the list has the button to set rates; a saved rule opens filled in, and saving it
    changes that rule (no second one); a rule for every plan says so in the list."""
    users = cards["users"]
    save_rule(db.session, users["finance"], cards["b"], None, mode="override", kind="percent",
              level1_percent="12.5", level2_percent="2", hold_days=10)
    users["finance"].locale = "vi"
    db.session.commit()
    login("finance")
    listing = client.get("/admin/commissionrule/").get_data(as_text=True)
    assert 'href="/admin/commissionrule/set/"' in listing
    assert "Mọi gói" in listing  # the rule for every plan (its plan cell was empty)
    edit = re.search(r'href="(/admin/commissionrule/set/\?company_id=\d+)"', listing)
    assert edit is not None
    form = client.get(edit.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert 'name="level1" value="12,5"' in form and 'name="hold_days" value="10"' in form
    assert re.search(rf'<option value="{cards["b"].id}" selected>', form)
    post(client, "/admin/commissionrule/set/", {"company_id": str(cards["b"].id), "package_id": "",
                                                "mode": "override", "kind": "percent", "level1": "9,5",
                                                "level2": "2", "hold_days": "10"})
    rules = db.session.scalars(select(CommissionRule)).all()
    assert [(r.package_id, r.level1_rate_bp) for r in rules] == [(None, 950)]


def test_a_refused_rule_form_keeps_what_was_typed(cards, client, login):
    login("finance")
    page = post(client, "/admin/commissionrule/set/", {"company_id": str(cards["b"].id), "package_id": "",
                                                       "mode": "split", "kind": "percent", "level1": "12",
                                                       "level2": "10", "hold_days": "5"}).get_data(as_text=True)
    assert 'name="level1" value="12"' in page and 'name="hold_days" value="5"' in page
    assert db.session.scalar(select(CommissionRule)) is None


def test_the_orders_page_opens_on_every_order_and_a_shipped_order_names_its_cards(cards, vault, client, login):
    """四.1 订单管理: the page shows all orders (every status, in one list) and an order's details carry
    号卡信息: the carrier, the tracking number and the cards shipped."""
    card_order, rows = _sell(cards, vault, client, login)
    number = card_order.order.number
    assert number in client.get(ORDERS).get_data(as_text=True)
    details = client.get(f"{ORDERS}details/?id={card_order.id}").get_data(as_text=True)
    assert 'id="rd-order-shipment"' in details and "SF1234567890" not in details
    login.logout()
    login("support")
    post(client, f"{ORDERS}ship/", {"id": str(card_order.id), "numbers": "\n".join(r.iccid for r in rows),
                                    "carrier": "SF Express", "tracking_number": "SF1234567890"})
    login.logout()
    login("b_admin")
    listing = client.get(ORDERS).get_data(as_text=True)
    assert number in listing and number not in client.get(f"{ORDERS}?tab=awaiting").get_data(as_text=True)
    details = client.get(f"{ORDERS}details/?id={card_order.id}").get_data(as_text=True)
    shipment = details[details.index('id="rd-order-shipment"'):]
    assert "SF Express" in shipment and "SF1234567890" in shipment
    assert all(r.iccid in shipment and r.phone in shipment for r in rows)


def test_income_and_expenses_offer_recharge_and_withdrawal(cards, client, login):
    """五.2/五.3 财务管理: the distributor's 提现 and 充值 buttons are on the page, and lead to working forms."""
    login("b_admin")
    page = client.get("/admin/card_finance/").get_data(as_text=True)
    recharge = re.search(r'id="rd-finance-recharge" href="([^"]+)"', page)
    withdraw = re.search(r'id="rd-finance-withdraw" href="([^"]+)"', page)
    assert recharge and withdraw
    assert client.get(recharge.group(1)).status_code == 200 and client.get(withdraw.group(1)).status_code == 200
    login.logout()
    login("finance")
    assert 'id="rd-finance-recharge"' not in client.get("/admin/card_finance/").get_data(as_text=True)


def test_customers_are_classed_by_customer_type_not_the_catalogs_category(cards, client, login):
    """客户管理 (对客户进行分类管理): the class of a customer read 套餐大类 (the package catalog's word) in Chinese."""
    cards["users"]["a_admin"].locale = "zh_Hans_CN"
    db.session.commit()
    login("a_admin")
    for url in ("/admin/cardcustomer/", "/admin/cardcustomer/new/"):
        page = client.get(url).get_data(as_text=True)
        assert "客户类型" in page and "套餐大类" not in page, url


def test_cards_are_of_a_package_as_the_guide_and_the_import_say(cards, vault, client, login, app):
    """三.1/三.3 号卡的套餐类型: the card pages named a card's package with the subscriptions' word (服务计划,
    Gói dịch vụ), and a Chinese export had a column header the import does not read back."""
    from io import BytesIO

    from flask_babel import force_locale, gettext
    from openpyxl import load_workbook

    from importers.cards import HEADERS

    add_card(db.session, cards["users"]["support"], vault,
             CardInput("89860000000000000001", "13400000001", "T00001", "SIM-39", date.today() + timedelta(days=30)),
             date.today())
    cards["users"]["support"].locale = "zh_Hans_CN"
    db.session.commit()
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        package, plan = gettext("Package"), gettext("Plan")
    login("support")
    for url in ("/admin/simcard/", "/admin/simcard/add/", "/admin/card_stock/"):
        page = client.get(url).get_data(as_text=True)
        assert f">{package}<" in page.replace("\n", "").replace(" ", "") and plan not in page, url
    exported = client.get("/admin/simcard/export/xlsx/")
    header = [cell.value for cell in next(load_workbook(BytesIO(exported.data)).active.iter_rows(max_row=1))]
    assert header[3] == package and header[3].casefold() in {h.casefold() for h in HEADERS["plan"]}, header


def test_distributors_read_their_commission_settings_and_change_nothing(cards, client, login):
    """六.2 分销设置 for a distributor: its menu had no 分销设置 at all. It now reads its own rates (without the
    parent's level-2 share) and its sub-distributors' rules; a rule the platform set it can neither change nor
    delete (the shares it passes down itself: tests/test_cards_rates.py)."""
    users, b = cards["users"], cards["b"]
    save_rule(db.session, users["finance"], b, None, mode="split", kind="percent", level1_percent="8",
              level2_percent="13")
    db.session.commit()
    rule_id = db.session.scalar(select(CommissionRule.id))
    login("a_admin")
    assert 'href="/admin/commissionrule/"' in client.get("/admin/").get_data(as_text=True)
    parent_view = client.get("/admin/commissionrule/").get_data(as_text=True)
    # B's share, and what A keeps of B's sales under the platform's split (13% − 8%); no button on that rule.
    assert "8%" in parent_view and "5%" in parent_view and "/admin/commissionrule/set/" not in parent_view
    assert "rd-edit-share" not in parent_view and "rd-delete-share" not in parent_view
    login.logout()
    login("b_admin")
    own_view = client.get("/admin/commissionrule/").get_data(as_text=True)
    assert "8%" in own_view and "13%" not in own_view
    refused = post(client, "/admin/commissionrule/set/", {"company_id": str(b.id), "package_id": "", "mode": "override",
                                                          "kind": "percent", "level1": "50", "level2": "0"},
                   follow_redirects=True).get_data(as_text=True)
    assert "Your role may not do this" in refused
    post(client, "/admin/commissionrule/action/", [("action", "delete"), ("rowid", str(rule_id))])
    post(client, "/admin/commissionrule/delete/", {"id": str(rule_id)})
    db.session.expire_all()
    rule = db.session.get(CommissionRule, rule_id)
    assert rule is not None and (rule.level1_rate_bp, rule.level2_rate_bp) == (800, 1300)
