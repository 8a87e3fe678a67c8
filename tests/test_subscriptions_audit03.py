"""Seed 003 followed step by step (audit 03): what a user of the guide still missed on the real pages."""
from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy import select

from actions import subscriptions as subs
from actions.wallets import credit, wallet_for
from conftest import post
from models import Subscription, db
from test_subscriptions import _hidden, cycle_of
from test_subscriptions_guide import _step2


def _filled(page: str, method: str, stage: str = "confirm", extra=()) -> list[tuple[str, str]]:
    terms = subs.current_terms(db.session, cycle_of("OFFICE-STD", 12).plan.service)
    return [p for p in _hidden(page, "rd-checkout-step2") if p[0] not in ("csrf_token", "stage")] + [
        ("stage", stage), ("invoice_title", "Acme Logistics"), ("invoice_tax_id", "0100109106"),
        ("contact_name", "Nguyễn Văn A"), ("contact_phone", "0912345678"), ("contact_email", "a@acme.example"),
        ("pay_method", method), ("accept_terms", "y"), ("terms_version_id", str(terms.id)), *extra]


def _pay(client, world, method: str):
    """Step 2 filled as the guide says, Thanh toán, then Xác nhận: the answer to the confirmation."""
    return post(client, "/admin/subscribe/checkout/pay/", _filled(_step2(client, world), method))


def _registered(world) -> Subscription:
    return db.session.scalar(select(Subscription).where(Subscription.company_id == world.acme.id))


def test_paying_online_shows_registration_successful(client, login, world):
    """'Nhập thông tin thanh toán sau đó nhấn nút Thanh toán - Hiển thị màn hình đăng ký thành công': the payer
    came back to the subscription with only "order … is paid", never told the registration succeeded."""
    login("customer")
    answer = _pay(client, world, "online")
    paid = post(client, answer.headers["Location"], {"decision": "pay"})
    page = client.get(paid.headers["Location"]).get_data(as_text=True)
    subscription = _registered(world)
    assert subscription.status == "active"
    assert 'id="rd-registered"' in page and "Registration successful" in page
    assert (f"Subscription {subscription.number} of Acme Logistics is active from "
            f"{subscription.period_start.isoformat()} to {subscription.period_end.isoformat()}.") in page
    again = client.get(paid.headers["Location"]).get_data(as_text=True)
    assert 'id="rd-registered"' not in again  # said once, on the page the payment led to


def test_paying_by_balance_shows_registration_successful(client, login, world):
    credit(db.session, wallet_for(db.session, world.acme.id, "CNY"), D("5000.00"), "recharge", "audit03-topup")
    db.session.commit()
    login("customer")
    done = _pay(client, world, "balance")
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    subscription = _registered(world)
    assert subscription.status == "active"
    assert "is paid and active" in page  # as before
    assert 'id="rd-registered"' in page and f"Subscription {subscription.number} of Acme Logistics is active" in page


def _vnd_order(world):
    import secrets

    from tests.test_renewals import make_order

    order = make_order(world.acme, "recharge", "pending", "1200000", currency="VND",
                       number=f"RC{secrets.token_hex(6)}")
    db.session.commit()
    return order


def test_vnpt_pay_page_asks_how_to_pay_then_the_international_card(client, login, world):
    """'tại màn thanh toán qua VNPT, chọn Thẻ thanh toán quốc tế, sau đó nhấn nút Tiếp theo - Nhập thông tin thanh
    toán sau đó nhấn nút Thanh toán': the VNPT Pay page had only Pay and Cancel."""
    order = _vnd_order(world)
    login("customer")
    url = f"/sandbox/pay/{order.number}?method=vnptpay"
    first = client.get(url).get_data(as_text=True)
    assert 'value="international_card"' in first and 'id="rd-sandbox-next"' in first
    assert 'id="rd-sandbox-pay"' not in first  # the card comes first
    card = client.get(url + "&channel=international_card").get_data(as_text=True)
    for name in ("card_number", "card_holder", "card_expiry", "card_cvv"):
        assert f'name="{name}"' in card
    bad = post(client, url, {"decision": "pay", "channel": "international_card", "card_number": "4111 1111 1111 1112",
                             "card_holder": "<b>NGUYEN</b>", "card_expiry": "13/99", "card_cvv": "12"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 200
    assert "Card number: 12 to 19 digits" in text and "Valid thru:" in text and "CVV:" in text
    assert "<b>NGUYEN</b>" not in text and "&lt;b&gt;NGUYEN&lt;/b&gt;" in text
    assert "4111 1111 1111 1112" not in text  # the card number is never echoed
    db.session.expire_all()
    assert db.session.get(type(order), order.id).status == "pending"
    good = post(client, url, {"decision": "pay", "channel": "international_card", "card_number": "4111111111111111",
                              "card_holder": "NGUYEN VAN A", "card_expiry": "12/99", "card_cvv": "123"})
    assert good.status_code == 302
    db.session.expire_all()
    assert db.session.get(type(order), order.id).status == "paid"


def test_vnpt_pay_page_refuses_an_unknown_channel(client, login, world):
    order = _vnd_order(world)
    login("customer")
    answer = post(client, f"/sandbox/pay/{order.number}?method=vnptpay", {"decision": "pay", "channel": "crypto"})
    assert answer.status_code == 200 and "Payment method: choose one of the list." in answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(order), order.id).status == "pending"


def test_sandbox_card_checks():
    from datetime import date

    from actions.payments import check_sandbox_card

    today = date(2026, 12, 3)
    assert check_sandbox_card("international_card", "4111-1111-1111-1111", "A", "12/26", "123", today) == {}
    assert set(check_sandbox_card("international_card", "４１１１", "", "11/26", "1234x", today)) == {
        "card_number", "card_holder", "card_expiry", "card_cvv"}
    assert check_sandbox_card("domestic_card", "9704000000000018", "A", "01/20", "", today) == {}
    assert set(check_sandbox_card("domestic_card", "9704000000000018", "A", "01/27", "", today)) == {"card_expiry"}
    assert check_sandbox_card("wallet", "", "", "", "", today) == {}


def test_a_scheduled_plan_change_can_be_withdrawn(client, login, world):
    """Đổi gói to another cycle takes effect at the period end, and the current cycle was no longer offered:
    a change made by mistake could not be taken back before the renewal."""
    from models import SubscriptionEvent
    from test_subscriptions import _active

    subscription = _active(world)
    monthly = cycle_of("OFFICE-STD", 1)
    login("customer")
    post(client, f"/admin/subscription/view/{subscription.id}/change/", {"cycle": str(monthly.id)})
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).next_cycle_id == monthly.id
    page = client.get(f"/admin/subscription/view/{subscription.id}/?tab=details").get_data(as_text=True)
    assert 'id="rd-keep-plan"' in page and "Standard · 1 month from the next period" in page
    kept = post(client, f"/admin/subscription/view/{subscription.id}/change/", {"undo": "y"}, follow_redirects=True)
    assert "The plan change is withdrawn" in kept.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.get(Subscription, subscription.id)
    assert (row.next_cycle_id, row.next_plan_id) == (None, None)
    assert "12 months" in str(subs.renewal_quote(db.session, row).lines[0].label)
    assert db.session.scalar(select(SubscriptionEvent).where(
        SubscriptionEvent.subscription_id == row.id, SubscriptionEvent.kind == "settings")) is not None
    again = post(client, f"/admin/subscription/view/{subscription.id}/change/", {"undo": "y"}, follow_redirects=True)
    assert f"Subscription {row.number} has no scheduled plan change." in again.get_data(as_text=True)


def test_another_tenant_may_not_withdraw_a_plan_change(client, login, world):
    from test_subscriptions import _active

    subscription = _active(world)
    subs.schedule_downgrade(db.session, world.users["customer"], subscription, cycle_of("OFFICE-STD", 1).id)
    db.session.commit()
    login("globex")
    answer = post(client, f"/admin/subscription/view/{subscription.id}/change/", {"undo": "y"})
    assert answer.status_code == 404
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).next_cycle_id is not None


def _step2_for(client, company) -> str:
    import re

    cycle = cycle_of("OFFICE-STD", 12)
    step1 = client.get(f"/admin/subscribe/checkout/?cycle={cycle.id}&company_id={company.id}").get_data(as_text=True)
    key = re.search(r'name="checkout_key" value="([0-9a-f]{32})"', step1).group(1)
    return post(client, "/admin/subscribe/checkout/", [
        ("checkout_key", key), ("company_id", str(company.id)), ("cycle", str(cycle.id)),
        ("step", "next")]).get_data(as_text=True)


def test_sales_edits_the_customer_details_at_checkout(client, login, world):
    """'Tại mục Thông tin khách hàng nhấn nút Sửa thông tin': sales, who checks out for a customer, had no such
    button (it opened the customer administrator's own profile only)."""
    from models import AuditEvent, Company

    login("sales")
    page = _step2_for(client, world.acme)
    assert 'id="rd-edit-customer-inline"' in page and 'id="rd-edit-customer"' not in page
    bad = post(client, "/admin/subscribe/checkout/pay/", _filled(page, "online", "details", [
        ("customer_phone", "call me <b>"), ("customer_address", "12 Lê Lợi")])).get_data(as_text=True)
    assert "Company phone: not a phone number" in bad and "call me &lt;b&gt;" in bad
    db.session.expire_all()
    assert db.session.get(Company, world.acme.id).address != "12 Lê Lợi"
    extra = [("customer_phone", "028 3822 1234"), ("customer_address", "12 Lê Lợi, Quận 1")]
    confirm_page = post(client, "/admin/subscribe/checkout/pay/", _filled(page, "online", "details", extra))
    fields = [p for p in _hidden(confirm_page.get_data(as_text=True), "rd-checkout-confirm") if p[0] != "csrf_token"]
    assert ("customer_address", "12 Lê Lợi, Quận 1") in fields
    post(client, "/admin/subscribe/checkout/pay/", fields)
    db.session.expire_all()
    company = db.session.get(Company, world.acme.id)
    assert (company.phone, company.address) == ("028 3822 1234", "12 Lê Lợi, Quận 1")
    assert _registered(world) is not None
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.model == "company", AuditEvent.action == "edit",
                                                      AuditEvent.actor_id == world.users["sales"].id)) is not None


def test_customer_admin_edits_a_subsidiary_inline_and_its_own_company_in_its_profile(client, login, world):
    login("customer")
    own = _step2_for(client, world.acme)
    assert 'id="rd-edit-customer"' in own and 'id="rd-edit-customer-inline"' not in own
    subsidiary = _step2_for(client, world.north)
    assert 'id="rd-edit-customer-inline"' in subsidiary and 'id="rd-edit-customer"' not in subsidiary


def test_customer_details_are_kept_when_step2_does_not_send_them(client, login, world):
    from models import Company

    before = (world.north.phone, world.north.address)
    login("sales")
    page = _step2_for(client, world.north)
    fields = [p for p in _filled(page, "online") if not p[0].startswith("customer_")]
    post(client, "/admin/subscribe/checkout/pay/", fields)
    db.session.expire_all()
    company = db.session.get(Company, world.north.id)
    assert (company.phone, company.address) == before


def test_only_sales_and_customer_administrators_edit_customer_details(world):
    import pytest

    from actions import DomainError
    from actions.tenants import update_customer_details

    with pytest.raises(DomainError):
        update_customer_details(db.session, world.users["finance"], world.acme, "028 1234 567", "x")
    with pytest.raises(DomainError):
        update_customer_details(db.session, world.users["globex"], world.acme, "028 1234 567", "x")


def test_sales_cash_checkout_shows_registration_successful(client, login, world):
    """OS flow as sales: 'nhấn nút Thanh toán rồi chọn Xác nhận - Hiển thị màn hình đăng ký thành công'."""
    from test_subscriptions_os import _filled as os_filled
    from test_subscriptions_os import _step2 as os_step2

    cycle = cycle_of("EINV-PRO", 24)
    login("sales")
    confirm_page = post(client, "/admin/subscribe/checkout/pay/", os_filled(os_step2(client, world, cycle), cycle,
                                                                            "cash")).get_data(as_text=True)
    fields = [p for p in _hidden(confirm_page, "rd-checkout-confirm") if p[0] != "csrf_token"]
    done = post(client, "/admin/subscribe/checkout/pay/", fields)
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert 'id="rd-registered"' in page and "Registration successful" in page
    assert "The subscription starts when finance confirms the cash" in page
    assert "cash receipt entered" in page


def test_an_unpaid_online_checkout_can_be_paid_later_from_the_subscription(client, login, world):
    """The payer left VNPT Pay's page without paying: the subscription's Phương thức thanh toán tab offered only
    the balance; it now leads to the order's pay page (online payment)."""
    login("customer")
    _pay(client, world, "online")  # off to the provider's page, never paid
    subscription = _registered(world)
    order = subs.pending_orders(db.session, subscription)[0]
    page = client.get(f"/admin/subscription/view/{subscription.id}/?tab=payments").get_data(as_text=True)
    link = f'href="/admin/renewal_center/order/{order.number}/pay/"'
    assert link in page
    assert client.get(f"/admin/renewal_center/order/{order.number}/pay/").status_code == 200


def test_the_history_says_which_cycle_a_scheduled_change_moves_to(client, login, world):
    from test_subscriptions import _active

    subscription = _active(world)
    world.users["customer"].locale = "vi"
    db.session.commit()
    login("customer")
    post(client, f"/admin/subscription/view/{subscription.id}/change/", {"cycle": str(cycle_of("OFFICE-STD", 1).id)})
    history = client.get(f"/admin/subscription/view/{subscription.id}/?tab=history").get_data(as_text=True)
    assert "Standard → Standard × 1 tháng" in history, history[-2500:]
