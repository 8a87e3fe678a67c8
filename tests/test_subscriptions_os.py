"""Seed 003's two flows: an ON service is paid online or from the balance (cash only through sales); an OS
service lets the customer register and pay cash to sales ("đăng ký thành công" with no payment page), sales
enters the receipt, finance confirms and the subscription starts."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from actions import DomainError
from actions import subscriptions as subs
from conftest import confirm_post, post
from models import CashReceipt, LedgerEntry, Order, Service, Subscription, db
from test_subscriptions import TODAY, _hidden, counts, cycle_of, details, now

D = Decimal


def service(code: str) -> Service:
    return db.session.scalar(select(Service).where(Service.code == code))


@pytest.mark.parametrize(("user", "code", "offered"), [
    ("customer", "CLOUD-OFFICE", ("balance", "online")),
    ("sales", "CLOUD-OFFICE", ("balance", "online", "cash")),
    ("admin", "CLOUD-OFFICE", ("balance", "online", "cash")),
    ("customer", "EINVOICE-VN", ("balance", "cash")),
    ("sales", "EINVOICE-VN", ("balance", "cash")),
])
def test_the_methods_offered_follow_the_service_flow_and_the_role(world, user, code, offered):
    assert subs.pay_methods_for(service(code), world.users[user]) == offered


def test_demo_services_are_on_except_the_einvoice_one(world):
    flows = dict(db.session.execute(select(Service.code, Service.sales_flow)).all())
    assert flows == {"CLOUD-OFFICE": "ON", "MEET-VN": "ON", "EINVOICE-VN": "OS"}


def test_the_database_refuses_an_unknown_flow(world):
    from sqlalchemy.exc import IntegrityError

    row = service("MEET-VN")
    row.sales_flow = "XX"
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_check_details_accepts_exactly_what_step_2_offers(world):
    customer, office, einvoice = world.users["customer"], service("CLOUD-OFFICE"), service("EINVOICE-VN")
    assert subs.check_details(db.session, einvoice, details(einvoice, pay_method="cash"), customer)
    with pytest.raises(DomainError, match=r"Payment: Online payment is not offered for Hóa đơn điện tử \(OS service\)"
                                          r"; choose Balance, Cash\."):
        subs.check_details(db.session, einvoice, details(einvoice, pay_method="online"), customer)
    with pytest.raises(DomainError, match=r"Payment: Cash is not offered for Cloud Office \(ON service\)"):
        subs.check_details(db.session, office, details(office, pay_method="cash"), customer)


# --- through the pages ----------------------------------------------------------------------------------------

def _step2(client, world, cycle) -> str:
    step1 = client.get(f"/admin/subscribe/checkout/?cycle={cycle.id}&company_id={world.acme.id}").get_data(
        as_text=True)
    key = re.search(r'name="checkout_key" value="([0-9a-f]{32})"', step1).group(1)
    answer = post(client, "/admin/subscribe/checkout/", [("checkout_key", key), ("company_id", str(world.acme.id)),
                                                         ("cycle", str(cycle.id)), ("step", "next")])
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def _filled(step2: str, cycle, pay_method: str, stage: str = "details") -> list[tuple[str, str]]:
    terms = subs.current_terms(db.session, cycle.plan.service)
    return [p for p in _hidden(step2, "rd-checkout-step2") if p[0] not in ("csrf_token", "stage")] + [
        ("stage", stage), ("invoice_title", "Acme Logistics"), ("invoice_tax_id", "0100109106"),
        ("contact_name", "Nguyễn Văn A"), ("contact_phone", "0912345678"), ("contact_email", "a@acme.example"),
        ("pay_method", pay_method), ("auto_renew", "y"), ("accept_terms", "y"), ("terms_version_id", str(terms.id))]


def test_step_2_offers_cash_to_the_customer_only_for_an_os_service(client, login, world):
    login("customer")
    os_page = _step2(client, world, cycle_of("EINV-PRO", 24))
    assert 'id="rd-pay-cash"' in os_page and 'id="rd-pay-online"' not in os_page
    assert re.search(r'value="cash" id="rd-pay-cash" checked', os_page)  # the OS flow's own method, chosen
    assert 'data-flow="OS"' in os_page
    on_page = _step2(client, world, cycle_of("OFFICE-STD", 12))
    assert 'id="rd-pay-cash"' not in on_page and 'id="rd-pay-online"' in on_page and 'data-flow="ON"' in on_page
    login.logout()
    login("sales")
    assert 'id="rd-pay-cash"' in _step2(client, world, cycle_of("OFFICE-STD", 12))  # sales takes cash for ON too


def test_price_table_and_service_page_show_the_flow(client, login, world):
    login("customer")
    table = client.get("/admin/subscribe/").get_data(as_text=True)
    assert table.count('data-flow="OS"') == 1 and table.count('data-flow="ON"') == 2
    assert "Cash accepted: pay cash to sales" in table
    page = client.get(f"/admin/subscribe/service/{service('EINVOICE-VN').id}/?tab=prices").get_data(as_text=True)
    assert 'data-flow="OS"' in page


def test_customer_registers_an_os_service_and_pays_cash_to_sales(client, login, world):
    """Step 1 → step 2 → Thanh toán → Xác nhận → đăng ký thành công; sales enters the cash from the subscription
    (found in the list's "awaiting cash"), finance confirms, the subscription starts."""
    cycle = cycle_of("EINV-PRO", 24)
    login("customer")
    step2 = _step2(client, world, cycle)
    confirm_page = post(client, "/admin/subscribe/checkout/pay/", _filled(step2, cycle, "cash")).get_data(as_text=True)
    assert 'id="rd-confirm-cash"' in confirm_page, confirm_page[-2000:]
    fields = [p for p in _hidden(confirm_page, "rd-checkout-confirm") if p[0] != "csrf_token"]
    done = post(client, "/admin/subscribe/checkout/pay/", fields)
    subscription = db.session.scalar(select(Subscription).where(Subscription.company_id == world.acme.id,
                                                                Subscription.service_id == cycle.plan.service_id))
    assert done.status_code == 302 and done.headers["Location"] == f"/admin/subscribe/registered/{subscription.id}/"
    success = client.get(done.headers["Location"]).get_data(as_text=True)
    order = subs.start_order(db.session, subscription)
    assert "Registration successful" in success and subscription.number in success and order.number in success
    assert "₫" in success and 'id="rd-next-steps"' in success
    assert (subscription.status, subscription.renewal_method, order.status) == ("pending_payment", "cash", "pending")
    assert order.total == D("4320000")
    assert db.session.scalar(select(func.count()).select_from(CashReceipt)) == 0  # the customer enters none
    # Confirming again (a double click) registers nothing more.
    post(client, "/admin/subscribe/checkout/pay/", fields)
    assert db.session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.service_id == cycle.plan.service_id)) == 1
    # The customer may not enter the receipt.
    post(client, f"/admin/subscription/view/{subscription.id}/cash/", {"received_on": "", "reference": "x"})
    assert db.session.scalar(select(func.count()).select_from(CashReceipt)) == 0
    login.logout()

    login("sales")
    listing = client.get("/admin/subscription/").get_data(as_text=True)
    awaiting = re.search(r'href="([^"]+)" id="rd-awaiting-cash"', listing).group(1).replace("&amp;", "&")
    assert subscription.number in client.get(awaiting).get_data(as_text=True)
    payments = client.get(f"/admin/subscription/view/{subscription.id}/?tab=payments").get_data(as_text=True)
    assert 'id="rd-enter-cash"' in payments
    post(client, f"/admin/subscription/view/{subscription.id}/cash/", {"received_on": "", "reference": "PT-0042"})
    receipt = db.session.scalar(select(CashReceipt).where(CashReceipt.subscription_id == subscription.id))
    assert (receipt.status, receipt.amount_minor, receipt.reference) == ("submitted", 4320000, "PT-0042")
    assert subscription.number not in client.get(awaiting).get_data(as_text=True)  # done: off the to-do list
    login.logout()

    login("finance")
    before = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    confirm_post(client, "/admin/cashreceipt/action/", [("action", "confirm"), ("rowid", str(receipt.id))])
    db.session.expire_all()
    subscription = db.session.get(Subscription, subscription.id)
    order = db.session.get(Order, order.id)
    assert subscription.status == "active" and subscription.period_end is not None
    assert (order.status, order.payment_method) == ("paid", "cash")
    assert db.session.get(CashReceipt, receipt.id).status == "confirmed"
    # Cash changes hands outside the wallets: no balance moves.
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == before
    login.logout()
    login("customer")
    assert client.get(f"/admin/subscribe/registered/{subscription.id}/").headers["Location"] == (
        f"/admin/subscription/view/{subscription.id}/")  # paid: the subscription itself


def test_customer_posting_cash_for_an_on_service_is_refused_and_nothing_changes(client, login, world):
    cycle = cycle_of("OFFICE-STD", 12)
    login("customer")
    step2 = _step2(client, world, cycle)
    before = counts()
    answer = post(client, "/admin/subscribe/checkout/pay/", _filled(step2, cycle, "cash", stage="confirm")
                  + [("digest", "x")])
    text = answer.get_data(as_text=True)
    assert "Payment: Cash is not offered for Cloud Office (ON service); choose Balance, Online payment." in text
    db.session.expire_all()
    assert counts() == before
    assert db.session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.company_id == world.acme.id)) == 0


def test_registered_page_of_another_company_is_404(client, login, world):
    subscription = db.session.scalar(select(Subscription).where(Subscription.number == "SUB-GLOBEX-0001"))
    login("customer")
    assert client.get(f"/admin/subscribe/registered/{subscription.id}/").status_code == 404


def test_cash_stays_a_renewal_method_of_an_os_subscription(client, login, world):
    einvoice = cycle_of("EINV-BASIC", 12)
    selection = subs.Selection(einvoice.id, None, (), (), None)
    key = subs.new_checkout_key()
    quote = subs.reserve(db.session, world.users["customer"], world.acme, selection, key, now())
    subscription = subs.confirm(db.session, world.users["customer"], world.acme, selection, key, quote.digest,
                                details(quote.service, pay_method="cash"), now(), TODAY)
    subs.update_renewal(db.session, world.users["customer"], subscription, True, "balance")
    assert subs.renewal_methods_for(world.users["customer"], subscription) == ("balance", "cash")
    subs.update_renewal(db.session, world.users["customer"], subscription, True, "cash")
    with pytest.raises(DomainError, match=r"Renewal method: Online payment is not offered for Hóa đơn điện tử"):
        subs.update_renewal(db.session, world.users["customer"], subscription, True, "online")
    db.session.commit()
    login("customer")
    page = client.get(f"/admin/subscription/view/{subscription.id}/?tab=payments").get_data(as_text=True)
    assert '<option value="cash" selected>' in page and 'value="online"' not in page


def test_support_sets_the_flow_of_a_service_in_the_catalog(client, login, world):
    login("support")
    listing = client.get("/admin/service/").get_data(as_text=True)
    assert "EINVOICE-VN" in listing and 'badge badge-warning">OS<' in listing
    meet = service("MEET-VN")
    form = client.get(f"/admin/service/edit/?id={meet.id}").get_data(as_text=True)
    assert 'name="sales_flow"' in form
    answer = post(client, f"/admin/service/edit/?id={meet.id}", {"name": meet.name, "description": "",
                                                                  "sales_flow": "OS"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[-2000:]
    db.session.expire_all()
    assert service("MEET-VN").sales_flow == "OS"
    refused = post(client, f"/admin/service/edit/?id={meet.id}", {"name": meet.name, "sales_flow": "XX"})
    assert refused.status_code == 200
    db.session.expire_all()
    assert service("MEET-VN").sales_flow == "OS"
    login.logout()
    login("customer")
    assert client.get("/admin/service/").status_code == 403


def test_chinese_pages_explain_the_os_flow(client, login, world):
    world.users["customer"].locale = "zh_Hans_CN"
    db.session.commit()
    login("customer")
    table = client.get("/admin/subscribe/").get_data(as_text=True)
    assert "接受现金" in table, "compile the catalogs with this branch's msgids merged"
    step2 = _step2(client, world, cycle_of("EINV-BASIC", 12))
    assert "现金：交给销售人员" in step2
