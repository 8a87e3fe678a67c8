"""The day's new pages attacked as users and attackers would, through the real forms: seed 003's OS flow
(the registered page, cash entry, the services page of tech support, the payment method at every stage,
renewal settings, a replayed confirm), the money of a cash receipt (its amount, a second confirm, a receipt
whose order is cancelled), the company profile's username that follows the administrator email (names in
another case, with spaces, look-alikes, too long, with markup, a limited employee, the unique index), the
renewal center's `ticked` ids, and markup or a formula in a service's name on every page and export.
Each refusal changes nothing (db_snapshot) and names nothing of another tenant."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import openpyxl
import pytest
from sqlalchemy import func, select

from actions import subscriptions as subs
from actions.employees import create_employee
from actions.orders import pay_offline
from actions.tenants import onboard
from actions.wallets import credit, debit, wallet_for
from conftest import FAST_HASH, PASSWORD, Login, confirm_post, make_user, post
from console_urls import console_get_urls, post_rules
from db_snapshot import changed_tables, snapshot
from models import AuditEvent, CashReceipt, Device, LedgerEntry, Order, Subscription, User, db
from test_onboarding import fields
from test_subscriptions import TODAY, _active, _hidden, cycle_of, details, now
from test_subscriptions_os import _filled, _step2, service

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOAD = SCRIPT + IMG
RAW = ("<script>alert(1)", "<img src=x onerror")
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;")
PROFILE = "/admin/company_profile/"
ADMIN = {"full_name": "Peter Gibbons", "user_phone": "010-62908030"}


def os_subscription(user: User, company, plan: str = "EINV-BASIC", method: str = "cash") -> Subscription:
    """A checkout of the OS service by `user` for `company`, confirmed with `method`: pending, one order."""
    cycle = cycle_of(plan, 12)
    selection = subs.Selection(cycle.id, None, (), (), None)
    key = subs.new_checkout_key()
    quote = subs.reserve(db.session, user, company, selection, key, now())
    subscription = subs.confirm(db.session, user, company, selection, key, quote.digest,
                                details(quote.service, pay_method=method), now(), TODAY)
    db.session.commit()
    return subscription


def shows_nothing_raw(client, url: str, shown: bool = True) -> str:
    answer = client.get(url)
    assert answer.status_code == 200, (url, answer.status_code)
    text = answer.get_data(as_text=True)
    assert [r for r in RAW if r in text] == [], url
    if shown:
        assert all(e in text for e in ESCAPED), (url, "the payload is not shown (escaped) here")
    return text


def as_user(web_app, username: str):
    other = web_app.test_client()
    Login(other)(username)
    return other


# --- the sweeps walk the new pages --------------------------------------------------------------------------

def test_the_sweeps_walk_the_new_pages_and_forms(app):
    """console_urls reads the url_map: the registered page, the services page and the cash form are in it."""
    urls = [url for url, _view in console_get_urls(app)]
    for expected in ("/admin/subscribe/registered/1/?id=1", "/admin/service/details/?id=1",
                     "/admin/service/edit/?id=1"):
        assert expected in urls, expected
    posts = {rule.rule for rule in post_rules(app)}
    for expected in ("/admin/subscription/view/<int:id>/cash/", "/admin/subscription/view/<int:id>/renewal/",
                     "/admin/subscribe/checkout/pay/", "/admin/service/edit/", "/admin/company_profile/"):
        assert expected in posts, expected


# --- scope --------------------------------------------------------------------------------------------------

def test_another_tenants_os_subscription_is_404_on_every_page_and_form(web_app, client, login, world):
    globex = os_subscription(world.users["globex"], world.globex)
    acme = os_subscription(world.users["customer"], world.acme)
    for actor, foreign in (("customer", globex), ("north", acme)):
        login(actor)
        before = snapshot()
        assert client.get(f"/admin/subscribe/registered/{foreign.id}/").status_code == 404
        for tab in ("payments", "details", "history"):
            assert client.get(f"/admin/subscription/view/{foreign.id}/?tab={tab}").status_code == 404
        for path, form in (("cash", {"received_on": "", "reference": "x"}),
                           ("renewal", {"auto_renew": "y", "renewal_method": "balance"}),
                           ("pay", {}), ("abandon", {}), ("notes", {"body": "x", "visibility": "customer"})):
            answer = post(client, f"/admin/subscription/view/{foreign.id}/{path}/", form)
            assert answer.status_code == 404, (actor, path, answer.status_code)
        assert changed_tables(before) == []
        login.logout()


def test_only_sales_enters_the_cash_and_finance_confirms_it(web_app, client, login, world):
    subscription = os_subscription(world.users["customer"], world.acme)
    for actor in ("customer", "finance"):
        login(actor)
        before = snapshot()
        answer = post(client, f"/admin/subscription/view/{subscription.id}/cash/",
                      {"received_on": "", "reference": "PT-1"}, follow_redirects=True)
        assert "Your role may not do this." in answer.get_data(as_text=True)
        assert changed_tables(before) == []
        login.logout()
    login("support")  # no subscriptions at all
    assert post(client, f"/admin/subscription/view/{subscription.id}/cash/", {"reference": "x"}).status_code == 403
    login.logout()
    login("sales")
    post(client, f"/admin/subscription/view/{subscription.id}/cash/", {"received_on": "", "reference": "PT-1"})
    receipt = db.session.scalar(select(CashReceipt).where(CashReceipt.subscription_id == subscription.id))
    assert receipt is not None
    login.logout()
    for actor in ("customer", "sales"):  # the cash receipts' confirm is finance's
        login(actor)
        before = snapshot()
        answer = confirm_post(client, "/admin/cashreceipt/action/",
                              [("action", "confirm"), ("rowid", str(receipt.id))], required=False)
        assert answer.status_code in (302, 403), (actor, answer.status_code)
        assert changed_tables(before) == []
        login.logout()


@pytest.mark.parametrize("actor", ["customer", "finance", "sales"])
def test_only_tech_support_edits_a_services_flow(client, login, world, actor):
    meet = service("MEET-VN")
    login(actor)
    before = snapshot()
    assert client.get(f"/admin/service/edit/?id={meet.id}").status_code == 403
    answer = post(client, f"/admin/service/edit/?id={meet.id}", {"name": "Taken over", "description": "",
                                                                  "sales_flow": "OS"})
    assert answer.status_code == 403
    assert changed_tables(before) == []


@pytest.mark.parametrize("flow", ["XX", "", "os", "OS ", "ON\x00", "O", "ONOS", "<b>OS</b>"])
def test_a_bogus_flow_is_refused_and_fields_off_the_form_are_ignored(client, login, world, flow):
    meet = service("MEET-VN")
    login("support")
    before = snapshot()
    answer = post(client, f"/admin/service/edit/?id={meet.id}", {"name": "Meet", "description": "",
                                                                  "sales_flow": flow})
    assert answer.status_code == 400 if "\x00" in flow else (
        answer.status_code == 200 and "Not a valid choice" in answer.get_data(as_text=True))
    assert changed_tables(before) == []
    # Fields the form does not have (code, currency, active, days) are not written by a tampered post.
    answer = post(client, f"/admin/service/edit/?id={meet.id}", {
        "name": meet.name, "description": "", "sales_flow": "ON", "code": "HIJACK", "currency": "USD",
        "active": "", "grace_days": "-5", "renewal_days_before": "999"})
    assert answer.status_code == 302
    db.session.expire_all()
    row = service("MEET-VN")
    assert (row.code, row.currency, row.active, row.grace_days) == ("MEET-VN", meet.currency, True, meet.grace_days)


# --- the payment method, at every stage ---------------------------------------------------------------------

@pytest.mark.parametrize(("plan", "method", "stage"), [
    ("EINV-PRO", "online", "details"), ("EINV-PRO", "online", "confirm"),
    ("OFFICE-STD", "cash", "details"), ("OFFICE-STD", "cash", "confirm"),
    ("EINV-PRO", "wallet", "confirm"), ("EINV-PRO", "", "confirm"), ("OFFICE-STD", "CASH", "details"),
    ("OFFICE-STD", "bank_transfer", "confirm"),
])
def test_a_customer_cannot_post_a_method_not_offered(client, login, world, plan, method, stage):
    cycle = cycle_of(plan, 24 if plan == "EINV-PRO" else 12)
    login("customer")
    step2 = _step2(client, world, cycle)
    before = snapshot()
    answer = post(client, "/admin/subscribe/checkout/pay/", _filled(step2, cycle, method, stage=stage)
                  + [("digest", "x")])
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Payment: " in text, text[-1500:]
    assert 'id="rd-confirm-cash"' not in text and 'id="rd-confirm-online"' not in text
    assert changed_tables(before) == []


def test_renewal_settings_refuse_a_method_not_offered(client, login, world):
    einvoice = os_subscription(world.users["customer"], world.acme)
    office = os_subscription(world.users["customer"], world.acme, "OFFICE-STD", "balance")
    login("customer")
    before = snapshot()
    for subscription, method in ((einvoice, "online"), (office, "cash"), (office, "wallet"), (einvoice, "")):
        answer = post(client, f"/admin/subscription/view/{subscription.id}/renewal/",
                      {"auto_renew": "y", "renewal_method": method}, follow_redirects=True)
        assert "Renewal method:" in answer.get_data(as_text=True), (subscription.number, method)
    assert changed_tables(before) == []


def test_a_replayed_confirm_cannot_change_the_method_or_take_another_tenants_checkout(client, login, world):
    """A double click registers nothing more; a replay with another method opens no payment the flow
    does not offer; Globex's checkout key posted by Acme changes and shows nothing of Globex."""
    cycle = cycle_of("EINV-PRO", 24)
    login("customer")
    step2 = _step2(client, world, cycle)
    confirm_page = post(client, "/admin/subscribe/checkout/pay/", _filled(step2, cycle, "cash")).get_data(
        as_text=True)
    fields_ = [p for p in _hidden(confirm_page, "rd-checkout-confirm") if p[0] != "csrf_token"]
    done = post(client, "/admin/subscribe/checkout/pay/", fields_)
    assert done.status_code == 302 and "/admin/subscribe/registered/" in done.headers["Location"]
    before = snapshot()
    again = post(client, "/admin/subscribe/checkout/pay/", fields_)
    assert again.status_code == 302 and again.headers["Location"] == done.headers["Location"]
    online = [(k, "online" if k == "pay_method" else v) for k, v in fields_]
    answer = post(client, "/admin/subscribe/checkout/pay/", online, follow_redirects=True)
    text = answer.get_data(as_text=True)
    assert "Online payment is not offered for" in text, text[-1500:]
    assert 'id="rd-sandbox-form"' not in text and not answer.request.path.startswith("/sandbox/")
    assert changed_tables(before) == []

    globex_key = "0" * 32  # SUB-GLOBEX-0001's checkout
    stolen = [(k, globex_key if k == "checkout_key" else v) for k, v in fields_]
    answer = post(client, "/admin/subscribe/checkout/pay/", stolen, follow_redirects=True)
    text = answer.get_data(as_text=True)
    assert "SUB-GLOBEX" not in text and "Globex" not in text
    foreign_company = [(k, str(world.globex.id) if k == "company_id" else v) for k, v in fields_]
    text = post(client, "/admin/subscribe/checkout/pay/", foreign_company, follow_redirects=True).get_data(
        as_text=True)
    assert "Globex" not in text
    assert changed_tables(before) == []


# --- money --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("received_on", ["9999-12-31", "0001-01-01", "2026-02-30", "tomorrow", "１９９９-01-01"])
def test_a_cash_receipt_on_an_impossible_day_is_refused(client, login, world, received_on):
    subscription = os_subscription(world.users["customer"], world.acme)
    login("sales")
    before = snapshot()
    answer = post(client, f"/admin/subscription/view/{subscription.id}/cash/",
                  {"received_on": received_on, "reference": "PT-1"}, follow_redirects=True)
    assert "received on" in answer.get_data(as_text=True).lower()
    assert changed_tables(before) == []


def test_the_receipt_is_the_orders_total_entered_once_confirmed_once(web_app, client, login, world):
    subscription = os_subscription(world.users["customer"], world.acme, "EINV-PRO")
    order = subs.start_order(db.session, subscription)
    login("sales")
    # An amount, a currency, a status or another order posted along are not read.
    post(client, f"/admin/subscription/view/{subscription.id}/cash/", {
        "received_on": "", "reference": "PT-1", "amount": "1", "amount_minor": "1", "currency": "CNY",
        "status": "confirmed", "order_id": "1", "subscription_id": "1"})
    receipt = db.session.scalar(select(CashReceipt).where(CashReceipt.subscription_id == subscription.id))
    assert (receipt.amount_minor, receipt.currency, receipt.status, receipt.order_id) == (
        order.total_minor, order.currency, "submitted", order.id)
    before = snapshot()
    answer = post(client, f"/admin/subscription/view/{subscription.id}/cash/", {"reference": "PT-2"},
                  follow_redirects=True)
    assert f"Order {order.number} already has a cash receipt." in answer.get_data(as_text=True)
    assert changed_tables(before) == []
    login.logout()

    login("finance")
    confirm_post(client, "/admin/cashreceipt/action/", [("action", "confirm"), ("rowid", str(receipt.id))])
    db.session.expire_all()
    paid = db.session.get(Subscription, subscription.id)
    period = (paid.period_start, paid.period_end)
    assert paid.status == "active" and db.session.get(Order, order.id).status == "paid"
    before = snapshot()
    answer = confirm_post(client, "/admin/cashreceipt/action/", [("action", "confirm"), ("rowid", str(receipt.id))],
                          required=False, follow_redirects=True)
    assert f"Cash receipt #{receipt.id} is not awaiting confirmation." in answer.get_data(as_text=True)
    assert changed_tables(before) == []
    db.session.expire_all()
    assert (db.session.get(Subscription, subscription.id).period_start,
            db.session.get(Subscription, subscription.id).period_end) == period


def test_an_administrator_does_not_confirm_the_cash_it_entered(client, login, world):
    subscription = os_subscription(world.users["customer"], world.acme)
    receipt = subs.enter_cash_receipt(db.session, world.users["admin"], subscription, TODAY, "PT-1")
    db.session.commit()
    login("admin")
    before = snapshot()
    answer = confirm_post(client, "/admin/cashreceipt/action/", [("action", "confirm"), ("rowid", str(receipt.id))],
                          required=False, follow_redirects=True)
    assert "another person of finance must confirm it" in answer.get_data(as_text=True)
    assert changed_tables(before) == []


def test_a_checkout_whose_cash_sales_entered_is_not_cancelled(client, login, world):
    """The customer handed the cash over and sales entered it: cancelling the order now would leave the
    cash with sales and a receipt finance can never confirm. The customer's Cancel order is refused, the
    stale-order job leaves it; nor is it paid twice (balance, online, by hand); finance confirms and the
    subscription starts."""
    subscription = os_subscription(world.users["customer"], world.acme)
    order = subs.start_order(db.session, subscription)
    receipt = subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY, "PT-1")
    db.session.commit()
    login("customer")
    before = snapshot()
    answer = confirm_post(client, f"/admin/subscription/view/{subscription.id}/abandon/", {}, required=False,
                          follow_redirects=True)
    assert "awaiting finance" in answer.get_data(as_text=True), answer.get_data(as_text=True)[-1500:]
    assert changed_tables(before) == []
    # Nor is it paid a second time meanwhile: from the balance, online, or as cash recorded by hand.
    credit(db.session, wallet_for(db.session, world.acme.id, order.currency), order.total, "recharge", "os-topup")
    db.session.commit()
    ledger = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    before = snapshot()
    answer = confirm_post(client, f"/admin/renewal_center/order/{order.number}/cancel/", {}, required=False,
                          follow_redirects=True)  # the order's own page
    assert "awaiting finance" in answer.get_data(as_text=True)
    answer = post(client, f"/admin/subscription/view/{subscription.id}/pay/", {}, follow_redirects=True)
    assert "awaiting finance" in answer.get_data(as_text=True)
    pay_page = f"/admin/renewal_center/order/{order.number}/pay/"
    for answer in (client.get(pay_page, follow_redirects=True),
                   post(client, pay_page, {"method": "vnptpay"}, follow_redirects=True),
                   post(client, pay_page, {"method": "balance"}, follow_redirects=True)):
        text = answer.get_data(as_text=True)
        assert "awaiting finance" in text and 'id="rd-sandbox-form"' not in text
    assert changed_tables(before) == []
    login.logout()
    with pytest.raises(subs.DomainError, match="awaiting finance"):
        pay_offline(db.session, world.users["admin"], db.session.get(Order, order.id), "cash", TODAY)
    db.session.rollback()
    subs.confirm_cash_receipt(db.session, world.users["finance"], db.session.get(CashReceipt, receipt.id), TODAY)
    db.session.commit()
    assert db.session.get(Order, order.id).status == "paid"
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == ledger  # the cash moved no wallet


def test_the_billing_job_does_not_pay_from_the_balance_a_renewal_whose_cash_sales_entered(world):
    """Auto-renew from the balance, short of money when the renewal order was made; the customer pays cash to
    sales instead, then tops up: the next run leaves the order to finance (and does not stop at it)."""
    subscription = _active(world)
    wallet = wallet_for(db.session, world.acme.id, "CNY")
    debit(db.session, wallet, wallet.balance, "payment", "test-empty")
    db.session.commit()
    end = subscription.period_end
    first = subs.run_billing(db.session, end - timedelta(days=7), now())
    db.session.commit()
    renewal = db.session.scalar(select(Order).where(Order.number == first.unpaid[0]))
    receipt = subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY, "PT-9")
    assert receipt.order_id == renewal.id
    credit(db.session, wallet, renewal.total, "recharge", "late-topup")
    db.session.commit()
    again = subs.run_billing(db.session, end - timedelta(days=6), now())
    db.session.commit()
    assert again.auto_paid == [] and db.session.get(Order, renewal.id).status == "pending"
    assert wallet_for(db.session, world.acme.id, "CNY").balance == renewal.total
    subs.confirm_cash_receipt(db.session, world.users["finance"], db.session.get(CashReceipt, receipt.id), TODAY)
    db.session.commit()
    assert db.session.get(Order, renewal.id).payment_method == "cash"


def test_no_cash_is_entered_for_a_cancelled_checkout(client, login, world):
    subscription = os_subscription(world.users["customer"], world.acme)
    subs.abandon(db.session, world.users["customer"], subscription)
    db.session.commit()
    login("sales")
    before = snapshot()
    answer = post(client, f"/admin/subscription/view/{subscription.id}/cash/", {"reference": "PT-1"},
                  follow_redirects=True)
    assert "has no order awaiting payment" in answer.get_data(as_text=True)
    assert changed_tables(before) == []


class Racing:
    """The session of a request racing another: its reads of `table` miss the other request's row (written
    after it looked); everything else is the real session."""

    def __init__(self, session, table: str):
        self._session, self._table = session, table

    def __getattr__(self, name):
        return getattr(self._session, name)

    def scalar(self, statement, *args, **kwargs):
        if f"FROM {self._table}" in str(statement) and "count" not in str(statement):
            return None
        return self._session.scalar(statement, *args, **kwargs)


def test_two_people_entering_the_same_cash_at_once_make_one_receipt(world):
    subscription = os_subscription(world.users["customer"], world.acme)
    subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY, "PT-1")
    db.session.commit()
    before = snapshot()
    with pytest.raises(subs.DomainError, match="already has a cash receipt"):
        subs.enter_cash_receipt(Racing(db.session, "cash_receipt"), world.users["sales"], subscription, TODAY, "PT-2")
    db.session.rollback()
    assert changed_tables(before) == []


def test_a_double_click_confirming_the_same_checkout_at_once_makes_one_subscription(world):
    cycle = cycle_of("EINV-BASIC", 12)
    selection = subs.Selection(cycle.id, None, (), (), None)
    key = subs.new_checkout_key()
    customer = world.users["customer"]
    quote = subs.reserve(db.session, customer, world.acme, selection, key, now())
    subs.confirm(db.session, customer, world.acme, selection, key, quote.digest,
                 details(quote.service, pay_method="cash"), now(), TODAY)
    db.session.commit()
    before = snapshot()
    with pytest.raises(subs.DomainError, match="confirmed a moment ago"):
        subs.confirm(Racing(db.session, "subscription"), customer, world.acme, selection, key, quote.digest,
                     details(quote.service, pay_method="cash"), now(), TODAY)
    db.session.rollback()
    assert changed_tables(before) == []


# --- the company profile: the username that follows the email -----------------------------------------------

@pytest.fixture
def tenant(world):
    onboarded = onboard(db.session, world.users["admin"], **fields(), method=FAST_HASH)
    onboarded.user.set_password(PASSWORD, method=FAST_HASH)
    onboarded.user.must_change_password = False
    db.session.commit()
    return onboarded


@pytest.mark.parametrize("email", [
    "BILL@initech.example", " bill@initech.example ", "bill@INITECH.EXAMPLE", "Bill@Initech.Example\t",
    "ｂｉｌｌ@initech.example",  # full-width letters: the same name to a reader (NFKC)
    "bill@ｉｎｉｔｅｃｈ.example",
])
def test_another_logins_name_in_any_disguise_is_refused(client, login, world, tenant, email):
    make_user("bill@initech.example", "tech_support")
    db.session.commit()
    login("peter@initech.example")
    before = snapshot()
    page = post(client, PROFILE, {"email": email, **ADMIN}).get_data(as_text=True)
    email_field = page.split('id="email"', 1)[1].split("</div>", 1)[0]
    assert "is already the username of another login" in email_field, email_field
    assert changed_tables(before) == []


@pytest.mark.parametrize("email", [
    "a" * 60 + "@initech.example", "a" * 250 + "@initech.example", "x" * 20000, "<b>bill</b>@initech.example",
    '"<script>"@initech.example', "bill@initech.example\x00", "bill\u200b@initech.example", "bill @initech.example",
    "", "   ",
])
def test_an_email_that_cannot_be_a_username_is_refused_and_nothing_changes(client, login, world, tenant, email):
    login("peter@initech.example")
    before = snapshot()
    answer = post(client, PROFILE, {"email": email, **ADMIN})
    if "\x00" in email:  # refused before the form reads it (tests/security/test_hostile_nul_bytes.py)
        assert answer.status_code == 400 and changed_tables(before) == []
        return
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert 'class="invalid-feedback' in page.split('id="email"', 1)[1].split("</div>", 1)[0] or "is-invalid" in page
    assert "<b>bill</b>" not in page and '"<script>"@' not in page
    assert changed_tables(before) == []


@pytest.mark.parametrize(("email", "refused"), [
    ("\u0430dmin@initech.example", True),  # a Cyrillic а before Latin letters: reads as admin
    ("bill@initech.ex\u0430mple", True),  # in a label of the domain
    ("\u03bfps@initech.example", True),  # a Greek ο
    ("\u0438\u0432\u0430\u043d@initech.example", False),  # иван: Cyrillic alone is a name, not a disguise
    ("\u5f20\u4e09@initech.example", False),  # 张三
    ("nguy\u1ec5n@initech.example", False),  # nguyễn: Latin with its accents
])
def test_a_look_alike_of_another_alphabet_is_refused(client, login, world, tenant, email, refused):
    login("peter@initech.example")
    client.get(PROFILE)
    before = snapshot()
    page = post(client, PROFILE, {"email": email, **ADMIN}, follow_redirects=True).get_data(as_text=True)
    if refused:
        assert "mix alphabets that look alike" in page.split('id="email"', 1)[1].split("</div>", 1)[0]
        assert changed_tables(before) == []
    else:
        db.session.expire_all()
        assert db.session.get(User, tenant.user.id).username == email


def test_a_username_with_markup_characters_is_escaped_everywhere(web_app, client, login, world, tenant):
    """Characters an email may hold (' & { }) in the new login name: escaped on the top bar, the welcome
    page, the user list and its search, the audit log; the export carries no formula."""
    email = "x'onmouseover=alert`1`&{{7*7}}@initech.example"
    login("peter@initech.example")
    answer = post(client, PROFILE, {"email": email, **ADMIN}, follow_redirects=True)
    assert answer.status_code == 200
    db.session.expire_all()
    assert db.session.get(User, tenant.user.id).username == email
    escaped = "x&#39;onmouseover=alert`1`&amp;{{7*7}}@initech.example"
    for url in (PROFILE, "/admin/", "/admin/subscription/"):
        text = client.get(url).get_data(as_text=True)
        assert "x'onmouseover" not in text and "49@initech" not in text, url
        assert escaped in text, url
    admin = as_user(web_app, "admin")
    for url in ("/admin/user/", "/admin/user/?search=onmouseover", "/admin/auditevent/",
                f"/admin/user/details/?id={tenant.user.id}"):
        text = admin.get(url).get_data(as_text=True)
        assert "x'onmouseover" not in text and "49@initech" not in text, url
        assert escaped in text, url


def test_an_email_starting_with_a_formula_is_exported_as_text(web_app, client, login, world, tenant):
    login("peter@initech.example")
    post(client, PROFILE, {"email": "=cmd|'/Ccalc'!A0@initech.example", **ADMIN})
    db.session.expire_all()
    assert db.session.get(User, tenant.user.id).username.startswith("=cmd")
    client.get(PROFILE)  # the audit log names the actor by its new name from now on
    post(client, PROFILE, {"email": "=cmd|'/Ccalc'!A0@initech.example", **ADMIN, "full_name": "Peter G."})
    admin = as_user(web_app, "admin")
    for kind in ("csv", "xlsx"):
        answer = admin.get(f"/admin/auditevent/export/{kind}/")
        assert answer.status_code == 200, kind
        if kind == "csv":
            cells = [c for row in csv.reader(io.StringIO(answer.get_data(as_text=True))) for c in row]
        else:
            sheet = openpyxl.load_workbook(io.BytesIO(answer.data)).active
            cells = [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
        assert any("=cmd" in c for c in cells), kind
        assert not any(c.startswith(("=", "+", "@")) for c in cells), (kind, [c for c in cells if "cmd" in c])


def test_an_employee_limited_to_other_areas_does_not_reach_the_profile(web_app, client, login, world, tenant):
    clerk, _password = create_employee(db.session, tenant.user, "clerk", ["subscriptions"], PASSWORD,
                                       must_change_password=False, method=FAST_HASH)
    company_clerk, _password = create_employee(db.session, tenant.user, "deskclerk", ["company"], PASSWORD,
                                               must_change_password=False, method=FAST_HASH)
    db.session.commit()
    login("clerk")
    client.get("/admin/")
    before = snapshot()
    assert client.get(PROFILE).status_code == 403
    assert post(client, PROFILE, {"email": "clerk@evil.example", **ADMIN}).status_code == 403
    assert changed_tables(before) == []
    login.logout()
    login("deskclerk")
    client.get("/admin/")
    before = snapshot()
    page = post(client, PROFILE, {"email": "deskclerk@evil.example", **ADMIN}).get_data(as_text=True)
    assert "only the company" in page.split('id="email"', 1)[1].split("</div>", 1)[0]
    assert changed_tables(before) == []
    assert company_clerk.id and clerk.id


def test_a_name_another_login_took_meanwhile_is_refused_by_the_unique_index(client, login, world, tenant,
                                                                             monkeypatch):
    """Two sessions at once: the check passed, another login took the name before the flush."""
    login("peter@initech.example")
    make_user("bill@initech.example", "tech_support")
    db.session.commit()
    monkeypatch.setattr("actions.tenants.username_for_email", lambda session, admin, name: name)
    before = snapshot()
    page = post(client, PROFILE, {"email": "bill@initech.example", **ADMIN}).get_data(as_text=True)
    assert "is already the username of another login" in page.split('id="email"', 1)[1].split("</div>", 1)[0]
    assert changed_tables(before) == []


def test_a_name_another_login_took_meanwhile_in_another_case_is_refused_by_the_unique_index(
        client, login, world, tenant, monkeypatch):
    """The same race with the other login's name in capitals: sign-in and every check compare names
    case-insensitively, so the unique index must too."""
    login("peter@initech.example")
    make_user("Bill@initech.example", "tech_support")
    db.session.commit()
    monkeypatch.setattr("actions.tenants.username_for_email", lambda session, admin, name: name)
    before = snapshot()
    page = post(client, PROFILE, {"email": "bill@initech.example", **ADMIN}).get_data(as_text=True)
    assert "is already the username of another login" in page.split('id="email"', 1)[1].split("</div>", 1)[0]
    assert changed_tables(before) == []


# --- 充值续费: ticked ids ride along ----------------------------------------------------------------------------

def test_ticked_ids_tick_only_the_readers_own_rows_and_reveal_nothing(client, login, world):
    foreign = [world.devices[n].id for n in ("GX0001", "GX0002", "AC0001", "SO0001")]
    login("north")  # North's tree: North and Fleet; Acme, South and Globex are foreign
    junk = ["abc", "-1", "0", "1e3", "٣", "99999999999999999999", "", " 1", "1.0", "0x1", "%00", "<b>1</b>"]
    many = [str(n) for n in range(1, 5001)]
    base = f"/admin/renewal_center/?company_id={world.north.id}&window=all&months=12"
    for ticked in (foreign, junk, many):
        query = "&".join(f"ticked={v}" for v in ticked)
        answer = client.get(f"{base}&{query}")
        assert answer.status_code == 200
        text = answer.get_data(as_text=True)
        for number in ("GX0001", "GX0002", "AC0001", "SO0001", "Globex"):
            assert number not in text, number
        checked = set(re.findall(r'class="rd-device" name="rowid" value="(\d+)"[^>]*checked', text))
        mine = {str(d.id) for n, d in world.devices.items() if n.startswith(("NO", "FL"))}
        assert checked <= mine
        if ticked is many:
            assert checked == mine
        else:
            assert checked == set()
    foreign_company = client.get(f"/admin/renewal_center/?company_id={world.globex.id}&window=all&"
                                 + "&".join(f"ticked={v}" for v in foreign))
    assert b"GX0001" not in foreign_company.data
    assert db.session.scalar(select(func.count()).select_from(Device)) == len(world.devices)


# --- markup and formulas in a service's name ----------------------------------------------------------------

def test_a_service_name_with_markup_is_escaped_on_every_page(web_app, client, login, world):
    einvoice = service("EINVOICE-VN")
    login("support")
    answer = post(client, f"/admin/service/edit/?id={einvoice.id}", {
        "name": "E-invoice " + PAYLOAD, "description": PAYLOAD, "sales_flow": "OS"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[-1500:]
    shows_nothing_raw(client, "/admin/service/")
    shows_nothing_raw(client, f"/admin/service/details/?id={einvoice.id}")
    shows_nothing_raw(client, f"/admin/service/edit/?id={einvoice.id}")
    login.logout()

    subscription = os_subscription(world.users["customer"], world.acme)
    customer = as_user(web_app, "customer")
    shows_nothing_raw(customer, "/admin/subscribe/")
    shows_nothing_raw(customer, f"/admin/subscribe/service/{einvoice.id}/")
    shows_nothing_raw(customer, f"/admin/subscribe/service/{einvoice.id}/?tab=prices")
    cycle = cycle_of("EINV-PRO", 24)
    shows_nothing_raw(customer, f"/admin/subscribe/checkout/?cycle={cycle.id}&company_id={world.acme.id}")
    step2 = _step2(customer, world, cycle)
    assert [r for r in RAW if r in step2] == [] and ESCAPED[0] in step2
    refused = post(customer, "/admin/subscribe/checkout/pay/", _filled(step2, cycle, "online")).get_data(
        as_text=True)  # the refusal names the service
    assert [r for r in RAW if r in refused] == [] and "Online payment is not offered for" in refused
    shows_nothing_raw(customer, f"/admin/subscribe/registered/{subscription.id}/")
    globex = os_subscription(world.users["globex"], world.globex)  # "Globex <b>Trading</b>"
    registered = as_user(web_app, "globex").get(f"/admin/subscribe/registered/{globex.id}/").get_data(as_text=True)
    assert "Globex &lt;b&gt;Trading&lt;/b&gt;" in registered and "<b>Trading" not in registered
    shows_nothing_raw(customer, "/admin/subscription/")
    for tab in ("employees", "details", "notes", "payments", "invoices", "history"):
        shows_nothing_raw(customer, f"/admin/subscription/view/{subscription.id}/?tab={tab}", shown=False)
    refused = post(customer, f"/admin/subscription/view/{subscription.id}/renewal/",
                   {"auto_renew": "y", "renewal_method": "online"}, follow_redirects=True).get_data(as_text=True)
    assert [r for r in RAW if r in refused] == [] and "Renewal method:" in refused
    sales = as_user(web_app, "sales")
    listing = shows_nothing_raw(sales, "/admin/subscription/")
    awaiting = re.search(r'href="([^"]+)" id="rd-awaiting-cash"', listing).group(1).replace("&amp;", "&")
    shows_nothing_raw(sales, awaiting)
    post(sales, f"/admin/subscription/view/{subscription.id}/cash/", {"reference": PAYLOAD})
    finance = as_user(web_app, "finance")
    shows_nothing_raw(finance, "/admin/cashreceipt/")


def test_a_service_name_starting_with_a_formula_is_exported_as_text(web_app, client, login, world):
    einvoice = service("EINVOICE-VN")
    einvoice.name = "=HYPERLINK(\"http://evil.example\",\"x\")"
    db.session.commit()
    os_subscription(world.users["customer"], world.acme)
    login("customer")
    answer = client.get("/admin/subscription/export/xlsx/")
    assert answer.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(answer.data)).active
    cells = [cell.value for row in sheet.iter_rows() for cell in row if isinstance(cell.value, str)]
    assert any("HYPERLINK" in c for c in cells)
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells), cells
    login.logout()
    login("support")
    answer = client.get("/admin/service/export/csv/")
    if answer.status_code == 200:
        assert "\n=HYPERLINK" not in answer.get_data(as_text=True) and ",=HYPERLINK" not in answer.get_data(
            as_text=True)


def test_the_audit_of_a_profile_change_names_old_and_new_escaped(web_app, client, login, world, tenant):
    login("peter@initech.example")
    post(client, PROFILE, {"email": "bill@initech.example", **ADMIN, "full_name": PAYLOAD})
    summary = db.session.scalar(select(AuditEvent.summary).where(AuditEvent.model == "user",
                                                                 AuditEvent.action == "edit"))
    assert "bill@initech.example" in summary
    shows_nothing_raw(as_user(web_app, "admin"), "/admin/auditevent/")


# --- a flask command with nothing set runs as development; anything named keeps production's rules ---------

@pytest.mark.parametrize("setting", [("ENV_NAME", "production"), ("RENEWDESK_ENV_NAME", "production"),
                                     ("ENV_NAME", ""), ("RENEWDESK_DATABASE_URL", "sqlite:////tmp/x.db"),
                                     ("DATABASE_URL", "")])
def test_a_command_that_names_its_environment_or_database_still_needs_a_secret_key(monkeypatch, setting):
    import click

    from app import create_app

    for name in ("ENV_NAME", "DATABASE_URL", "SECRET_KEY", "RENEWDESK_ENV_NAME", "RENEWDESK_DATABASE_URL",
                 "RENEWDESK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(*setting)
    with click.Context(click.Command("billing")), pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "Meet\nVN", "\u200b"])
def test_a_service_name_that_is_no_name_is_refused(client, login, world, name):
    meet = service("MEET-VN")
    login("support")
    before = snapshot()
    answer = post(client, f"/admin/service/edit/?id={meet.id}", {"name": name, "description": "", "sales_flow": "ON"})
    assert answer.status_code == 200, (name, answer.status_code)
    assert changed_tables(before) == []
