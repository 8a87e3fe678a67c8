"""No English in stored texts shown in the Chinese or Vietnamese console: order lines, ledger memos, audit
summaries and subscription history are written once (as message keys with parameters) and rendered in
the reader's language. Orders of every kind are made through the actions (recharge paid online, coins
paid by bank transfer, a renewal paid from the balance, seats granted for cash, a VIP upgrade paid in
coins, a subscription paid from the balance, a refund, a bank transfer credited to the balance), then
the order details, the ledger, the audit log and the subscription page are read in zh_Hans_CN and vi
(approach of tests/test_no_english.py: the visible text, known English fragments)."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

import actions.subscriptions as subs
from actions.bank_transfers import confirm_receipt, submit_receipt
from actions.coins import create_coin_order
from actions.members import create_members, upgrade_vip
from actions.orders import (
    approve_refund, create_recharge_order, create_renewal_order, mark_paid, pay_with_balance, quote_renewal,
    request_refund,
)
from actions.seats import grant_seats
from actions.texts import MESSAGES, render
from models import AuditEvent, LedgerEntry, MemberAccount, Order, Package, PackageCategory, PlanAddOn, PlanCycle, \
    Promotion, ServicePlan, Subscription, User, db
from test_no_english import read

TODAY = date.today()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# What the old English texts said ("Recharge 1,000.00 CNY", "216000 coins", "via wechat", "refund RC…",
# "SEAT-STANDARD × 3", "auto-renew on, balance", …): none of these words is a name in the test world (package
# codes such as SEAT-STANDARD and plan names such as "Office Standard" are data, shown as entered).
FRAGMENTS = ("Recharge", "coins", "seats", "Seats", "via", "refund", "Refund", "Order", "paid", "Paid", "balance",
             "months", "received", "receipt", "auto-renew", "Auto-renew", "Credit", "Payment", "from", "devices",
             "renew", "nothing to pay", "cancelled", "lines", "Bank transfer", "wechat", "bank_transfer",
             "pending orders", "to pay", "unused days", "Withdrawal",
             "Commission", "promotion", "in cash", "on", "off")
PATTERN = re.compile("|".join(rf"(?<![\w-]){re.escape(f)}(?![\w-])" for f in FRAGMENTS))


def english_in(text: str) -> list[str]:
    return sorted({m.group(0) for m in PATTERN.finditer(text)})


def _now():
    return datetime.now(timezone.utc)


def _seat_catalog():
    category = PackageCategory(code="SEAT", name="席位", kind="seat")
    db.session.add(category)
    db.session.flush()
    for edition, price in (("enterprise", "300.00"), ("standard", "200.00"), ("basic", "100.00")):
        db.session.add(Package(code=f"SEAT-{edition.upper()}", name=f"{edition} 席位", category_id=category.id,
                               kind="seat", edition=edition, amount=Decimal(price), pricing="per_year", currency="CNY"))
    db.session.flush()


def _subscription(customer, company) -> Subscription:
    plan = db.session.scalar(select(ServicePlan).where(ServicePlan.code == "OFFICE-STD"))
    cycle = db.session.scalar(select(PlanCycle).where(PlanCycle.plan_id == plan.id, PlanCycle.months == 12))
    storage = db.session.scalar(select(PlanAddOn).where(PlanAddOn.code == "OFFICE-STORAGE"))
    selection = subs.Selection(cycle_id=cycle.id, add_on_ids=(storage.id,),
                               invoice_promotion_id=db.session.scalar(select(Promotion.id)
                                                                      .where(Promotion.code == "INVOICE7")))
    key = subs.new_checkout_key()
    quote = subs.reserve(db.session, customer, company, selection, key, _now())
    terms = subs.current_terms(db.session, quote.service)
    details = subs.CheckoutDetails(invoice_title="Acme Logistics", invoice_tax_id="0100109106",
                                   contact_name="Nguyễn Văn A", contact_phone="+84 912 345 678",
                                   contact_email="a@acme.example", terms_version_id=terms.id, accepted_terms=True,
                                   pay_method="balance")
    subscription = subs.confirm(db.session, customer, company, selection, key, quote.digest, details, _now(), TODAY)
    subs.pay_by_balance(db.session, customer, subscription, TODAY)
    subs.update_renewal(db.session, customer, subscription, True, "balance")
    return subscription


@pytest.fixture
def orders(app, world, tmp_path):
    """Orders of every kind, paid the ways they are paid, one refunded, one transfer credited."""
    users = world.users
    customer, finance, sales, admin = users["customer"], users["finance"], users["sales"], users["admin"]
    with app.test_request_context():
        made = {}
        recharge = create_recharge_order(db.session, customer, world.acme, "CNY", "5000")
        mark_paid(db.session, recharge, "wechat", "wx-1", recharge.total, "CNY", TODAY)
        made["recharge"] = recharge
        devices = [world.devices["AC0001"], world.devices["AC0002"]]
        renewal = create_renewal_order(db.session, customer,
                                       quote_renewal(db.session, customer, world.acme, devices, 3, TODAY))
        pay_with_balance(db.session, customer, renewal, TODAY)
        made["renewal"] = renewal
        coins = create_coin_order(db.session, customer, world.acme, "2160.00", "bank_transfer")
        receipt = submit_receipt(db.session, customer, coins, "Acme 有限公司", "6222 0000", "2160.00", "r.png", PNG,
                                 tmp_path)
        confirm_receipt(db.session, finance, receipt, TODAY, "2160.00")
        made["coins"] = coins
        short = create_coin_order(db.session, customer, world.acme, "72.00", "bank_transfer")
        receipt = submit_receipt(db.session, customer, short, "Acme 有限公司", "6222 0000", "70.00", "r.png", PNG,
                                 tmp_path)
        confirm_receipt(db.session, finance, receipt, TODAY, "70.00")  # credited, not paid
        made["coins_credited"] = short
        _seat_catalog()
        made["seats"] = grant_seats(db.session, sales, world.acme, "standard", 3, "收据 0042", TODAY)
        create_members(db.session, customer, world.acme, "vip{1-2}", "default", hash_method="scrypt:1024:8:1")
        accounts = db.session.scalars(select(MemberAccount).where(MemberAccount.company_id == world.acme.id,
                                                                  MemberAccount.login.like("vip%"))).all()
        upgrade_vip(db.session, customer, accounts, "vip", "1", TODAY)
        made["vip_upgrade"] = db.session.scalar(select(Order).where(Order.kind == "vip_upgrade"))
        subscription = _subscription(customer, world.acme)
        made["subscription"] = db.session.scalar(select(Order).where(Order.kind == "subscription",
                                                                     Order.company_id == world.acme.id))
        refund = request_refund(db.session, finance, renewal, [renewal.lines[0].id], "客户要求")
        approve_refund(db.session, admin, refund, TODAY)
        db.session.commit()
        assert {o.kind for o in made.values()} >= {"recharge", "renewal", "coins", "seats", "vip_upgrade",
                                                   "subscription"}
        return {"orders": {k: o.id for k, o in made.items()}, "subscription": subscription.id}


def _visible(client, url: str) -> str:
    """The page's visible text, less the filter menus' option codes (their labels are checked elsewhere)."""
    answer = client.get(url)
    assert answer.status_code == 200, url
    html = re.sub(r'<div id="filter-groups-data"[^>]*>.*?</div>', "", answer.get_data(as_text=True), flags=re.S)
    return " ".join(read(html).parts)


def _as(client, login, username, locale):
    db.session.execute(db.update(User).where(User.username == username).values(locale=locale))
    db.session.commit()
    login.logout()
    login(username)


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
def test_order_details_ledger_and_audit_have_no_english(client, login, world, orders, locale):
    found = {}
    _as(client, login, "finance", locale)
    for kind, order_id in orders["orders"].items():
        text = _visible(client, f"/admin/order_management/details/?id={order_id}")
        found[f"order {kind}"] = english_in(text)
    ledger = _visible(client, "/admin/ledgerentry/?page_size=100")
    found["ledger"] = english_in(ledger)
    _as(client, login, "admin", locale)
    for table in ("order", "bank_transfer_receipt"):
        text = _visible(client, f"/admin/auditevent/?flt0_table_equals={table}&page_size=100")
        found[f"audit {table}"] = english_in(text)
    _as(client, login, "customer", locale)
    for kind in ("recharge", "renewal"):
        order = db.session.get(Order, orders["orders"][kind])
        found[f"customer order page {kind}"] = english_in(
            _visible(client, f"/admin/renewal_center/order/{order.number}/"))
    subscription = db.session.get(Subscription, orders["subscription"])
    found["subscription"] = english_in(_visible(client, f"/admin/subscription/view/{subscription.id}/?tab=history"))
    found = {page: words for page, words in found.items() if words}
    assert found == {}, f"English in {locale}: {found}"


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
def test_every_stored_message_is_translated(app, locale):
    from flask_babel import force_locale

    with app.test_request_context(), force_locale(locale):
        untranslated = [key for key, text in MESSAGES.items()
                        if str(text) == text._args[0] and re.search(r"[A-Za-z]{3,}", re.sub(r"%\(\w+\)s", "",
                                                                                          text._args[0]))]
    assert untranslated == []


def test_rows_written_before_keys_show_their_plain_text(app, world):
    with app.test_request_context():
        assert render(None, "Recharge 50.00 CNY") == "Recharge 50.00 CNY"
        assert render({"key": "no.such.key", "params": {}}, "old text") == "old text"
        assert render({"key": "order.line.recharge", "params": {}}, "fallback") == "fallback"  # a missing param


def test_stored_texts_keep_their_english_for_search_and_old_readers(app, world, orders):
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.kind == "bank_transfer"))
    assert entry.memo_data["key"] == "ledger.bank_transfer" and "70.00" in entry.memo
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "grant"))
    assert "收据 0042" in event.summary and event.summary_data["key"] == "audit.order.seats_granted"
