"""Card orders through the console: sell and pay, the five tabs, ship picked cards, receive, refund; the cron command."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from sqlalchemy import func, select

from actions.cards import CardInput, add_card
from actions.distribution import save_rule
from actions.wallets import balance_of, credit, wallet_for
from conftest import confirm_post, post
from models import CardOrder, CommissionEntry, SimCard, db

pytest_plugins = ("card_fixtures",)
LIST = "/admin/cardorder/"


def _setup(cards, vault, n=10):
    s, u, b = db.session, cards["users"], cards["b"]
    rows = [add_card(s, u["support"], vault, CardInput(f"8986{i:016d}", f"1340000{i:04d}", f"T{i:05d}", "SIM-39",
                                                       date.today() + timedelta(days=365)), date.today())
            for i in range(n)]
    credit(s, wallet_for(s, b.id, "CNY"), D("1000.00"), "offline_recharge", "test:fund", u["admin"])
    save_rule(s, u["finance"], b, cards["package"].id, mode="split", kind="percent", level1_percent="8",
              level2_percent="10")
    s.commit()
    return rows


def _tab(client, tab):
    return client.get(f"{LIST}?tab={tab}").get_data(as_text=True)


def test_worked_example_through_the_order_pages(cards, vault, client, login):
    rows = _setup(cards, vault)
    b = cards["b"]
    login("b_admin")
    answer = post(client, f"{LIST}place/", {"seller_id": str(b.id), "package_id": str(cards["package"].id),
                                            "quantity": "10", "holder": "0", "promotion_percent": "5",
                                            "promotion_label": "5% invoice promotion", "customer_name": "Zhang San",
                                            "customer_phone": "13900000000", "shipping_address": "Shenzhen"},
                  follow_redirects=True)
    assert "370.50" in answer.get_data(as_text=True)
    card_order = db.session.scalar(select(CardOrder))
    number = card_order.order.number
    assert number in _tab(client, "awaiting") and number not in _tab(client, "shipped")
    assert balance_of(db.session, b.id, "CNY") == D("629.50")
    entries = client.get("/admin/commissionentry/").get_data(as_text=True)
    assert "29.64" in entries and "7.41" not in entries  # B sees its own entry; A's is A's
    assert client.get(f"{LIST}ship/?id={card_order.id}").status_code == 200
    refused = post(client, f"{LIST}ship/", {"id": str(card_order.id), "numbers": "\n".join(r.iccid for r in rows),
                                            "carrier": "SF", "tracking_number": "SF1"}, follow_redirects=True)
    assert "Your role may not do this" in refused.get_data(as_text=True)
    login.logout()

    login("support")
    post(client, f"{LIST}ship/", {"id": str(card_order.id), "numbers": "\n".join(r.iccid for r in rows),
                                  "carrier": "SF Express", "tracking_number": "SF1234567890"})
    assert number in _tab(client, "shipped")
    login.logout()

    login("b_admin")
    post(client, f"{LIST}action/", [("action", "receive"), ("rowid", str(card_order.id))])
    assert number in _tab(client, "received")
    login.logout()

    login("finance")
    post(client, f"{LIST}refund/", {"id": str(card_order.id), "numbers": f"{rows[0].iccid}\n{rows[1].iccid}",
                                    "reason": "two faulty cards"})
    assert number in _tab(client, "refunding") and number not in _tab(client, "received")
    answer = confirm_post(client, f"{LIST}action/", [("action", "refund"), ("rowid", str(card_order.id))],
                          follow_redirects=True)
    assert "another person must approve" in answer.get_data(as_text=True)
    login.logout()
    login("finance2")
    confirm_post(client, f"{LIST}action/", [("action", "refund"), ("rowid", str(card_order.id))])
    assert number in _tab(client, "received") and number not in _tab(client, "refunding")
    db.session.expire_all()
    assert balance_of(db.session, b.id, "CNY") == D("703.60")
    assert sorted(e.amount_minor for e in db.session.scalars(select(CommissionEntry).where(
        CommissionEntry.kind == "reversal"))) == [-593, -148]
    assert {db.session.get(SimCard, r.id).status for r in rows[:2]} == {"returned"}


def test_sold_out_orders_are_refused_and_nothing_is_paid(cards, vault, client, login):
    _setup(cards, vault, n=3)
    login("b_admin")
    answer = post(client, f"{LIST}place/", {"seller_id": str(cards["b"].id), "package_id": str(cards["package"].id),
                                            "quantity": "4", "holder": "0"}, follow_redirects=True)
    assert "not enough SIM-39 cards" in answer.get_data(as_text=True)
    assert db.session.scalar(select(CardOrder)) is None
    assert balance_of(db.session, cards["b"].id, "CNY") == D("1000.00")


def test_cards_receive_command_confirms_old_shipments(cards, vault, app):
    from actions.card_orders import place_order, ship
    from actions.orders import pay_with_balance

    rows = _setup(cards, vault, n=2)
    s, u = db.session, cards["users"]
    card_order = place_order(s, u["b_admin"], seller=cards["b"], package=cards["package"], quantity=2)
    pay_with_balance(s, u["b_admin"], card_order.order, date.today())
    ship(s, u["support"], card_order, [r.iccid for r in rows], "SF", "X", date.today())
    s.commit()
    runner = app.test_cli_runner()
    later = (date.today() + timedelta(days=11)).isoformat()
    result = runner.invoke(args=["cards", "receive", "--today", later])
    assert result.exit_code == 0 and "1 orders received" in result.output, result.output
    again = runner.invoke(args=["cards", "receive", "--today", later])
    assert "0 orders received" in again.output
    s.expire_all()
    assert s.get(CardOrder, card_order.id).status == "received"


def test_a_sell_form_sent_twice_sells_once(cards, vault, client, login):
    _setup(cards, vault, n=5)
    login("b_admin")
    page = client.get(f"{LIST}place/").get_data(as_text=True)
    key = page.split('name="idempotency_key" value="')[1].split('"')[0]
    form = {"seller_id": str(cards["b"].id), "package_id": str(cards["package"].id), "quantity": "2", "holder": "0",
            "idempotency_key": key}
    first = post(client, f"{LIST}place/", form)
    second = post(client, f"{LIST}place/", form, follow_redirects=True)
    assert first.status_code == 302 and "already sent" in second.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(CardOrder)) == 1
    assert balance_of(db.session, cards["b"].id, "CNY") == D("1000.00") - 2 * D("39.00")


def test_true_up_command_settles_a_tiered_month_once(cards, app):
    from models import Order

    s, u, b = db.session, cards["users"], cards["b"]
    save_rule(s, u["finance"], b, cards["package"].id, mode="override", kind="graduated",
              tiers="0-10000:6\n10000-50000:8\n50000-:10")
    order = Order(number="CS-TIERS", kind="card_sale", status="paid", company_id=b.id, currency="CNY",
                  total=D("62000.00"))
    s.add(order)
    s.flush()
    from actions.distribution import record_sale

    record_sale(s, order_id=order.id, seller_id=b.id, package_id=cards["package"].id, cards=1590,
                base=D("62000.00"), currency="CNY", month="2026-11")
    s.commit()
    runner = app.test_cli_runner()
    assert "1 true-up entries" in runner.invoke(args=["cards", "true-up", "--month", "2026-11"]).output
    assert "0 true-up entries" in runner.invoke(args=["cards", "true-up", "--month", "2026-11"]).output
    s.expire_all()
    assert sorted(e.amount_minor for e in s.scalars(select(CommissionEntry))) == [128000, 372000]
    assert runner.invoke(args=["cards", "true-up", "--month", "26-11"]).exit_code != 0


def test_a_customer_with_orders_is_not_deleted_and_the_message_names_it(cards, vault, client, login):
    """Deleting a card customer its orders still name flashed the database's FOREIGN KEY message."""
    from actions.card_orders import place_order
    from models import CardCustomer

    _setup(cards, vault, n=2)
    s = db.session
    customer = CardCustomer(company_id=cards["b"].id, name="Wang <b>Wu</b>", category="school")
    s.add(customer)
    s.flush()
    place_order(s, cards["users"]["b_admin"], seller=cards["b"], package=cards["package"], quantity=1,
                customer=customer)
    s.commit()
    customer_id = customer.id
    login("b_admin")
    page = confirm_post(client, "/admin/cardcustomer/delete/", {"id": str(customer_id)},
                        follow_redirects=True).get_data(as_text=True)
    assert "Wang &lt;b&gt;Wu&lt;/b&gt; cannot be deleted: other records (orders, history) still refer to it." in page
    assert "IntegrityError" not in page and "FOREIGN KEY" not in page.upper()
    s.expire_all()
    assert s.get(CardCustomer, customer_id) is not None


def test_an_order_for_a_picked_customer_takes_its_details_and_only_the_sellers_own(cards, vault, client, login):
    from models import CardCustomer

    _setup(cards, vault, n=4)
    s = db.session
    own = CardCustomer(company_id=cards["b"].id, name="Wang Wu", category="school", phone="13800001111",
                       address="Nanshan, Shenzhen")
    foreign = CardCustomer(company_id=cards["a"].id, name="Parent's Customer")
    s.add_all([own, foreign])
    s.commit()
    login("b_admin")
    page = client.get(f"{LIST}place/").get_data(as_text=True)
    assert "Wang Wu" in page and "Parent&#39;s Customer" not in page
    post(client, f"{LIST}place/", {"seller_id": str(cards["b"].id), "package_id": str(cards["package"].id),
                                   "quantity": "1", "holder": "0", "customer_id": str(own.id)})
    card_order = s.scalar(select(CardOrder))
    assert (card_order.customer_id, card_order.customer_name, card_order.shipping_address) == \
        (own.id, "Wang Wu", "Nanshan, Shenzhen")
    from actions.card_orders import place_order
    from actions import DomainError

    with pytest.raises(DomainError, match="not a customer of"):
        place_order(s, cards["users"]["b_admin"], seller=cards["b"], package=cards["package"], quantity=1,
                    customer=foreign)
