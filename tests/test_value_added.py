"""增值服务 (seed 001): value-added packages offered to a company, bought for its devices from the renewal
center as 增值订单, paid, extended, refunded line by line — as functions, then through the pages."""
from __future__ import annotations

import html
import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from actions import DomainError, NotAllowed
from actions.orders import add_months, approve_refund, pay_with_balance, request_refund
from actions.value_added import create_service_order, offered_packages, quote_services
from actions.wallets import balance_of, credit, wallet_for
from models import CompanyPackage, Device, DeviceService, Order, OrderRefund, Package, db
from tests.conftest import confirm_post, post

TODAY = date.today()


@pytest.fixture
def in_request(app):
    """Refusals are rendered with Babel, whose locale selector reads the request."""
    with app.test_request_context():
        yield


def offer(company, package) -> None:
    db.session.add(CompanyPackage(company_id=company.id, package_id=package.id))
    db.session.commit()


def fund(company, amount: str) -> None:
    credit(db.session, wallet_for(db.session, company.id, "CNY"), Decimal(amount), "offline_recharge",
           f"test:fund:{company.id}:{amount}")
    db.session.commit()


def balance(company) -> Decimal:
    db.session.expire_all()
    return balance_of(db.session, company.id, "CNY")


def service_end(device, package) -> date | None:
    db.session.expire_all()
    return db.session.scalar(select(DeviceService.expires_on).where(DeviceService.device_id == device.id,
                                                                    DeviceService.package_id == package.id))


@pytest.fixture
def sms(world):
    """VAS-SMS (¥5.00 per month) offered to Acme Logistics, and ¥1,000 in Acme's wallet."""
    package = world.packages["VAS-SMS"]
    offer(world.acme, package)
    fund(world.acme, "1000.00")
    return package


def buy(world, devices, package, months=3, actor="customer", company=None):
    """Quote, order and pay from the balance (committed); the order."""
    quote = quote_services(db.session, world.users[actor], company or world.acme, devices, package, months, TODAY)
    order = create_service_order(db.session, world.users[actor], quote)
    pay_with_balance(db.session, world.users[actor], order, TODAY)
    db.session.commit()
    return db.session.get(Order, order.id)


def refund_lines(world, order, devices) -> OrderRefund:
    """Finance asks for a refund of the devices' lines; the admin (a second person) approves it."""
    line_ids = [line.id for line in order.lines if line.device_id in {d.id for d in devices}]
    refund = request_refund(db.session, world.users["finance"], order, line_ids, "customer asked")
    assert approve_refund(db.session, world.users["admin"], refund, TODAY) == "completed"
    db.session.commit()
    return refund


# --- the rules, as functions ----------------------------------------------------------------------

def test_offers_hold_for_the_company_and_every_company_below_it(in_request, world, sms):
    assert offered_packages(db.session, world.acme) == [sms]
    assert offered_packages(db.session, world.fleet) == [sms]  # offered to Acme, two levels up
    assert offered_packages(db.session, world.globex) == []


def test_buying_starts_the_service_and_pays_exactly_from_the_balance(in_request, world, sms):
    devices = [world.devices["AC0001"], world.devices["FL0002"]]
    order = buy(world, devices, sms, months=3)
    assert (order.kind, order.status, order.payment_method) == ("value_added", "paid", "balance")
    assert order.number.startswith("VA")
    assert order.total == Decimal("30.00")  # 2 devices × 3 months × ¥5.00
    assert balance(world.acme) == Decimal("970.00")
    for device in devices:
        assert service_end(device, sms) == add_months(TODAY, 3)
    assert {(line.old_expires_on, line.new_expires_on) for line in order.lines} == {(None, add_months(TODAY, 3))}


def test_buying_again_extends_from_the_current_end(in_request, world, sms):
    device = world.devices["NO0001"]
    buy(world, [device], sms, months=2)
    second = buy(world, [device], sms, months=12)
    assert service_end(device, sms) == add_months(add_months(TODAY, 2), 12)
    (line,) = second.lines
    assert (line.old_expires_on, line.new_expires_on) == (add_months(TODAY, 2), add_months(add_months(TODAY, 2), 12))


def test_prices_are_exact_in_minor_units(in_request, world):
    package = world.packages["VAS-SMS"]
    package.amount = Decimal("9.99")
    offer(world.acme, package)
    quote = quote_services(db.session, world.users["customer"], world.acme,
                           [world.devices["AC0001"], world.devices["SO0001"], world.devices["FL0001"]], package, 7,
                           TODAY)
    assert quote.total == Decimal("209.79")  # 3 × 7 × 9.99
    order = create_service_order(db.session, world.users["customer"], quote)
    assert order.total_minor == 20979 and [line.net_minor for line in order.lines] == [6993] * 3


def test_refunding_one_line_removes_that_service_only_and_pays_its_share_back(in_request, world, sms):
    kept, refunded = world.devices["AC0001"], world.devices["AC0002"]
    order = buy(world, [kept, refunded], sms, months=6)
    assert balance(world.acme) == Decimal("940.00")
    refund_lines(world, order, [refunded])
    order = db.session.get(Order, order.id)
    assert order.status == "paid" and order.refunded == Decimal("30.00")
    assert balance(world.acme) == Decimal("970.00")
    assert service_end(refunded, sms) is None
    assert service_end(kept, sms) == add_months(TODAY, 6)


def test_refunding_an_extension_puts_the_earlier_end_back(in_request, world, sms):
    device = world.devices["AC0001"]
    buy(world, [device], sms, months=1)
    extension = buy(world, [device], sms, months=12)
    refund_lines(world, extension, [device])
    assert service_end(device, sms) == add_months(TODAY, 1)
    assert db.session.get(Order, extension.id).status == "refunded"


def test_refunding_an_order_extended_since_is_refused_until_the_later_one_is(in_request, world, sms):
    device = world.devices["AC0001"]
    first = buy(world, [device], sms, months=1)
    buy(world, [device], sms, months=1)
    refund = request_refund(db.session, world.users["finance"], first, None, "")
    with pytest.raises(DomainError, match="refund the later order first"):
        approve_refund(db.session, world.users["admin"], refund, TODAY)
    db.session.rollback()
    assert service_end(device, sms) == add_months(TODAY, 2)
    assert balance(world.acme) == Decimal("990.00")


def test_a_customer_never_buys_for_another_companys_device(in_request, world, sms):
    offer(world.globex, sms)
    foreign = world.devices["GX0001"]
    with pytest.raises(DomainError, match="GX0001"):
        quote_services(db.session, world.users["customer"], world.acme, [foreign], sms, 3, TODAY)
    with pytest.raises(DomainError):  # naming the other company does not help
        quote_services(db.session, world.users["customer"], world.globex, [foreign], sms, 3, TODAY)
    with pytest.raises(DomainError, match="AC0001"):  # a subsidiary's administrator: not the parent's devices
        quote_services(db.session, world.users["north"], world.north, [world.devices["AC0001"]], sms, 3, TODAY)


def test_only_packages_offered_to_the_devices_company_can_be_bought(in_request, world, sms):
    fence = Package(code="VAS-FENCE", name="Geofence", category_id=sms.category_id, kind="value_added",
                    amount=Decimal("8.00"), pricing="per_month", currency="CNY")
    db.session.add(fence)
    db.session.flush()
    offer(world.north, fence)  # to North only: its devices and Fleet's, not Acme's own or South's
    assert offered_packages(db.session, world.acme) == [fence, sms]  # by code; some of Acme's devices may buy it
    assert offered_packages(db.session, world.south) == [sms]
    quote = quote_services(db.session, world.users["customer"], world.acme,
                           [world.devices["NO0001"], world.devices["FL0001"]], fence, 1, TODAY)
    assert len(quote.lines) == 2
    with pytest.raises(DomainError, match="VAS-FENCE is not offered to the company of AC0001, SO0001"):
        quote_services(db.session, world.users["customer"], world.acme,
                       [world.devices["AC0001"], world.devices["SO0001"], world.devices["NO0001"]], fence, 1, TODAY)
    with pytest.raises(DomainError, match="not offered"):
        quote_services(db.session, world.users["globex"], world.globex, [world.devices["GX0001"]], sms, 1, TODAY)


def test_an_inactive_or_non_value_added_package_is_refused(in_request, world, sms):
    device = world.devices["AC0001"]
    with pytest.raises(DomainError, match="GPS-M is not a value-added package"):
        quote_services(db.session, world.users["customer"], world.acme, [device], world.packages["GPS-M"], 1, TODAY)
    sms.active = False
    db.session.commit()
    with pytest.raises(DomainError, match="VAS-SMS is inactive"):
        quote_services(db.session, world.users["customer"], world.acme, [device], sms, 1, TODAY)
    with pytest.raises(DomainError, match="Choose a value-added package"):
        quote_services(db.session, world.users["customer"], world.acme, [device], None, 1, TODAY)


def test_suspended_devices_and_bad_lengths_are_refused_by_name(in_request, world, sms):
    device = world.devices["AC0002"]
    device.status = "suspended"
    db.session.commit()
    with pytest.raises(DomainError, match="suspended devices cannot buy services: AC0002"):
        quote_services(db.session, world.users["customer"], world.acme, [device], sms, 1, TODAY)
    for months in (0, 121, "3"):
        with pytest.raises(DomainError, match="Months"):
            quote_services(db.session, world.users["customer"], world.acme, [world.devices["AC0001"]], sms, months,
                           TODAY)
    sms.pricing, sms.term_months = "per_term", 3
    db.session.commit()
    with pytest.raises(DomainError, match="terms of 3 months"):
        quote_services(db.session, world.users["customer"], world.acme, [world.devices["AC0001"]], sms, 4, TODAY)


def test_a_device_suspended_before_payment_is_not_served(in_request, world, sms):
    device = world.devices["AC0001"]
    quote = quote_services(db.session, world.users["customer"], world.acme, [device], sms, 1, TODAY)
    order = create_service_order(db.session, world.users["customer"], quote)
    db.session.commit()
    db.session.get(Device, device.id).status = "suspended"
    db.session.commit()
    with pytest.raises(DomainError, match="AC0001"):
        pay_with_balance(db.session, world.users["customer"], order, TODAY)
    db.session.rollback()
    assert db.session.get(Order, order.id).status == "pending" and balance(world.acme) == Decimal("1000.00")


def test_only_finance_requests_refunds_and_the_requester_cannot_approve(in_request, world, sms):
    order = buy(world, [world.devices["AC0001"]], sms)
    with pytest.raises(NotAllowed):
        request_refund(db.session, world.users["customer"], order, None, "")
    refund = request_refund(db.session, world.users["finance"], order, None, "")
    with pytest.raises(DomainError, match="another person must approve"):
        approve_refund(db.session, world.users["finance"], refund, TODAY)


# --- through the pages ----------------------------------------------------------------------------

def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


ONCE = re.compile(r'name="idempotency_key" value="([^"]+)"')


def order_number(response) -> str:
    match = re.search(r"/admin/renewal_center/order/([^/]+)/", response.headers.get("Location", ""))
    assert match, (response.status_code, response.headers.get("Location"))
    return match.group(1)


def order_form(world, package, devices, months="3", **extra) -> list:
    data = [("company_id", str(world.acme.id)), ("package_id", str(package.id)), ("months", "custom"),
            ("custom_months", months)]
    return data + [("rowid", str(d.id)) for d in devices] + list(extra.items())


def test_the_value_added_tab_lists_offered_packages_devices_and_prices(client, login, world, sms):
    login("customer")
    page = text(client.get(f"/admin/renewal_center/value-added/?company_id={world.acme.id}&package_id={sms.id}"
                           "&months=12"))
    assert "VAS-SMS SMS — CN¥5.00 per month" in page
    assert "AC0001" in page and "FL0002" in page and "GX0001" not in page
    assert "CN¥60.00 per device for 12 months" in page
    assert "/admin/renewal_center/value-added/" in text(client.get("/admin/renewal_center/"))  # the tab


def test_a_company_without_offers_is_told_who_offers_them(client, login, world):
    login("globex")
    page = text(client.get("/admin/renewal_center/value-added/"))
    assert "No value-added package is offered to Globex <b>Trading</b> yet" in page


def test_buy_pay_and_find_it_in_order_records(client, login, world, sms):
    login("customer")
    devices = [world.devices["AC0001"], world.devices["FL0001"]]
    number = order_number(post(client, "/admin/renewal_center/value-added/order/", order_form(world, sms, devices)))
    confirm = text(client.get(f"/admin/renewal_center/order/{number}/"))
    assert "Value-added order" in confirm and "VAS-SMS" in confirm and str(add_months(TODAY, 3)) in confirm
    paid = post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"})
    assert paid.status_code == 302
    assert balance(world.acme) == Decimal("970.00")
    assert service_end(devices[1], sms) == add_months(TODAY, 3)
    records = text(client.get("/admin/order_record/?flt0_0=value_added"))
    assert number in records
    details = text(client.get(f"/admin/device/details/?id={devices[0].id}"))
    assert "SMS" in details and str(add_months(TODAY, 3)) in details


def test_the_same_order_form_sent_twice_makes_one_order(client, login, world, sms):
    login("customer")
    page = client.get(f"/admin/renewal_center/value-added/?company_id={world.acme.id}").get_data(as_text=True)
    key = ONCE.search(page).group(1)
    form = order_form(world, sms, [world.devices["AC0001"]], idempotency_key=key)
    first = post(client, "/admin/renewal_center/value-added/order/", form)
    second = post(client, "/admin/renewal_center/value-added/order/", form)
    assert second.headers["Location"] == first.headers["Location"]
    assert db.session.scalar(select(db.func.count()).select_from(Order).where(Order.kind == "value_added")) == 1


def test_a_customer_cannot_order_for_another_companys_device_through_the_page(client, login, world, sms):
    offer(world.globex, sms)
    login("customer")
    foreign = world.devices["GX0001"]
    refused = post(client, "/admin/renewal_center/value-added/order/", order_form(world, sms, [foreign]),
                   follow_redirects=True)
    assert f"Not ordered: #{foreign.id} (not found or outside your companies)." in text(refused)
    form = order_form(world, sms, [foreign])
    form[0] = ("company_id", str(world.globex.id))
    assert "Choose one of your companies first." in text(
        post(client, "/admin/renewal_center/value-added/order/", form, follow_redirects=True))
    assert db.session.scalar(select(db.func.count()).select_from(Order).where(Order.kind == "value_added")) == 0


def test_finance_refunds_a_line_in_order_management_and_an_admin_approves(client, login, world, sms):
    order = buy(world, [world.devices["AC0001"], world.devices["AC0002"]], sms, months=3)
    line = next(line for line in order.lines if line.device_id == world.devices["AC0002"].id)
    login("finance")
    assert order.number in text(client.get("/admin/order_management/?flt0_0=value_added"))
    details = text(client.get(f"/admin/order_management/details/?id={order.id}"))
    assert "Request a refund of the ticked lines" in details and "AC0002 SMS × 3 months" in details
    requested = confirm_post(client, "/admin/order_management/refund-lines/",
                             [("id", str(order.id)), ("line", str(line.id)), ("reason", "device returned")],
                             follow_redirects=True)
    assert "Refund of CN¥15.00 requested" in text(requested)
    refund = db.session.scalar(select(OrderRefund).where(OrderRefund.order_id == order.id))
    login.logout()
    login("admin")
    asked = post(client, "/admin/orderrefund/action/", [("action", "approve"), ("rowid", str(refund.id))])
    token = re.search(r'name="confirm_token" value="([^"]+)"', asked.get_data(as_text=True)).group(1)
    approved = post(client, "/admin/orderrefund/approve/", [("rowid", str(refund.id)), ("confirm_token", token)],
                    follow_redirects=True)
    assert "1 refunds approved" in text(approved)
    db.session.expire_all()
    assert db.session.get(OrderRefund, refund.id).status == "completed"
    assert service_end(world.devices["AC0002"], sms) is None
    assert service_end(world.devices["AC0001"], sms) == add_months(TODAY, 3)
    assert balance(world.acme) == Decimal("985.00")


def test_a_customer_asking_for_another_companys_devices_sees_their_own(client, login, world, sms):
    login("customer")
    page = text(client.get(f"/admin/renewal_center/value-added/?company_id={world.globex.id}"))
    assert f"Company #{world.globex.id} is not one of your companies." in page
    assert "GX0001" not in page and "AC0001" in page


def test_a_sold_value_added_package_cannot_be_deleted(in_request, world, sms):
    from actions.catalog import delete_package
    from actions.bindings import withdraw_offers

    buy(world, [world.devices["AC0001"]], sms, months=1)
    offers = list(db.session.scalars(select(CompanyPackage).where(CompanyPackage.package_id == sms.id)))
    withdraw_offers(db.session, world.users["support"], offers)
    db.session.commit()
    with pytest.raises(DomainError, match="Package VAS-SMS was sold"):
        delete_package(db.session, world.users["support"], sms)


@pytest.mark.parametrize("locale, words", [
    ("zh_Hans_CN", ("增值服务", "增值套餐", "服务时长", "¥5.00 / 月", "增值订单", "服务到期日")),
    ("vi", ("Dịch vụ giá trị gia tăng", "Gói giá trị gia tăng", "Thời hạn dịch vụ", "Đơn giá trị gia tăng")),
])
def test_the_value_added_pages_speak_chinese_and_vietnamese(client, login, world, sms, locale, words):
    from tests.test_no_english import english_in, read

    db.session.get(type(world.users["customer"]), world.users["customer"].id).locale = locale
    db.session.commit()
    login("customer")
    center = client.get(f"/admin/renewal_center/value-added/?company_id={world.acme.id}&package_id={sms.id}")
    number = order_number(post(client, "/admin/renewal_center/value-added/order/",
                               order_form(world, sms, [world.devices["AC0001"]])))
    order = client.get(f"/admin/renewal_center/order/{number}/")
    shown = " ".join(" ".join(read(page.get_data(as_text=True)).parts) for page in (center, order))
    assert english_in(shown) == []
    for word in words:
        assert word in shown, word
