"""Seed 003 step 2 as a user following the guide meets it: Thông tin xuất hóa đơn opens with the company's
saved invoice details, a form with several fields at fault names them all at once, and paying online ends
on the subscription (đăng ký thành công)."""
from __future__ import annotations

import re
from decimal import Decimal as D

from sqlalchemy import select

from actions import subscriptions as subs
from conftest import post
from models import InvoiceTitle, Order, OrderLine, Subscription, db
from test_subscriptions import _hidden, cycle_of, details


def _step2(client, world) -> str:
    cycle = cycle_of("OFFICE-STD", 12)
    step1 = client.get(f"/admin/subscribe/checkout/?cycle={cycle.id}&company_id={world.acme.id}").get_data(
        as_text=True)
    key = re.search(r'name="checkout_key" value="([0-9a-f]{32})"', step1).group(1)
    return post(client, "/admin/subscribe/checkout/", [
        ("checkout_key", key), ("company_id", str(world.acme.id)), ("cycle", str(cycle.id)),
        ("step", "next")]).get_data(as_text=True)


def test_step2_opens_with_the_companys_saved_invoice_title(client, login, world):
    """Acme has no tax code of its own but a saved invoice title: step 2 is filled from it (the form opened
    with an empty tax code the user had to look up, then refused it)."""
    db.session.add(InvoiceTitle(company_id=world.acme.id, kind="ordinary", title="Acme Logistics Co., Ltd.",
                                tax_id="91440300MA5DEMX01X", address="1 Harbour Road"))
    world.acme.tax_id = None
    db.session.commit()
    login("customer")
    page = _step2(client, world)
    assert 'name="invoice_title" id="rd-invoice-title" maxlength="200" value="Acme Logistics Co., Ltd."' in page
    assert 'value="91440300MA5DEMX01X"' in page and 'value="1 Harbour Road"' in page


def test_step2_names_every_field_at_fault_at_once(client, login, world):
    login("customer")
    page = _step2(client, world)
    fields = [pair for pair in _hidden(page, "rd-checkout-step2") if pair[0] not in ("csrf_token", "stage")]
    answer = post(client, "/admin/subscribe/checkout/pay/", fields + [
        ("stage", "details"), ("invoice_title", "Acme"), ("invoice_tax_id", "12345"), ("contact_name", "An"),
        ("contact_phone", ""), ("contact_email", "a@acme.example"), ("pay_method", "balance")]).get_data(as_text=True)
    assert 'id="rd-checkout-confirm"' not in answer
    for said in ("Tax code: 12345 is not a valid tax code", "Contact phone is required.",
                 "Terms: tick “I agree to the service terms”"):
        assert said in answer, said


def test_check_details_lists_each_problem_once(world):
    service = cycle_of("OFFICE-STD", 12).plan.service
    try:
        subs.check_details(db.session, service, details(service, invoice_tax_id="", contact_email="nope",
                                                        pay_method="cash"), world.users["customer"])
    except subs.DomainError as exc:
        text = str(exc)
    else:
        raise AssertionError("refused details were accepted")
    assert text.count("Tax code") == 1 and text.count("Contact email") == 1
    assert "Payment: Cash is not offered for Cloud Office (ON service); choose Balance, Online payment." in text
    assert subs.check_details(db.session, service, details(service), world.users["customer"])["invoice_tax_id"]


def test_paying_a_subscription_online_lands_on_the_subscription(client, login, world):
    """Thanh toán → Xác nhận → the provider's page → Thanh toán → 'màn hình đăng ký thành công': the payer
    came back to the renewal center's order page (Trung tâm gia hạn), with no way to the subscription."""
    login("customer")
    page = _step2(client, world)
    terms = subs.current_terms(db.session, cycle_of("OFFICE-STD", 12).plan.service)
    filled = [p for p in _hidden(page, "rd-checkout-step2") if p[0] not in ("csrf_token", "stage")] + [
        ("stage", "confirm"), ("invoice_title", "Acme Logistics"), ("invoice_tax_id", "91310000MA1FL8LQ47"),
        ("contact_name", "Li Lei"), ("contact_phone", "13800000000"), ("contact_email", "li@acme.example"),
        ("pay_method", "online"), ("accept_terms", "y"), ("terms_version_id", str(terms.id))]
    answer = post(client, "/admin/subscribe/checkout/pay/", filled)
    assert "/sandbox/pay/" in answer.headers["Location"]
    paid = post(client, answer.headers["Location"], {"decision": "pay"})
    subscription = db.session.scalar(select(Subscription).where(Subscription.company_id == world.acme.id,
                                                                Subscription.status == "active"))
    assert paid.headers["Location"] == f"/admin/subscription/view/{subscription.id}/"
    assert subscription.number in client.get(paid.headers["Location"]).get_data(as_text=True)


def test_paying_another_kind_online_still_lands_on_its_order(client, login, world):
    order = Order(number="RC-GUIDE-0001", kind="recharge", status="pending", company_id=world.acme.id,
                  currency="CNY", total=D("50.00"))
    db.session.add(order)
    db.session.flush()
    db.session.add(OrderLine(order_id=order.id, description="Recharge", unit_price=D("50.00"), amount=D("50.00")))
    db.session.commit()
    login("customer")
    paid = post(client, "/sandbox/pay/RC-GUIDE-0001?method=wechat", {"decision": "pay"})
    assert paid.headers["Location"] == "/admin/renewal_center/order/RC-GUIDE-0001/"


def test_a_service_has_its_details_and_its_price_table_tab(client, login, world):
    """'Vào xem chi tiết Dịch vụ, nhấn tab Bảng giá': the price table page was the only way in; each service now
    opens on its details, and its Bảng giá tab lists its own cycles with Đăng ký."""
    from models import Service

    world.users["customer"].locale = "vi"
    office = db.session.scalar(select(Service).where(Service.code == "CLOUD-OFFICE"))
    db.session.commit()
    login("customer")
    table = client.get("/admin/subscribe/").get_data(as_text=True)
    link = f'href="/admin/subscribe/service/{office.id}/"'
    assert link in table
    details = client.get(f"/admin/subscribe/service/{office.id}/").get_data(as_text=True)
    assert "Chi tiết" in details and "Bảng giá" in details and "Dịch vụ bổ sung" in details
    assert "rd-subscribe" not in details
    prices = client.get(f"/admin/subscribe/service/{office.id}/?tab=prices").get_data(as_text=True)
    std12 = cycle_of("OFFICE-STD", 12)
    assert f'type="radio" form="rd-plan-{std12.plan_id}" name="cycle" value="{std12.id}"' in prices
    assert f'name="cycle" value="{cycle_of("MEET-BASIC", 1).id}"' not in prices  # the other service's cycles
    office.active = False
    db.session.commit()
    assert client.get(f"/admin/subscribe/service/{office.id}/").status_code == 404


def test_step2_customer_details_are_read_again_only_for_ones_own_companies(client, login, world):
    """The address the page asks when the payer is back from editing the company (Sửa thông tin)."""
    world.acme.address = "1 <Harbour> Road"
    db.session.commit()
    login("customer")
    page = _step2(client, world)
    url = f"/admin/subscribe/checkout/customer/{world.acme.id}/"
    assert f'data-url="{url}"' in page and "customer-refresh.js" in page
    assert client.get(url).get_json() == {"name": world.acme.name, "tax_id": world.acme.tax_id or "",
                                          "address": "1 <Harbour> Road"}
    assert client.get(f"/admin/subscribe/checkout/customer/{world.globex.id}/").status_code == 404
    assert client.get("/admin/subscribe/checkout/customer/999999/").status_code == 404
    assert client.get("/admin/subscribe/checkout/customer/x/").status_code == 404
