"""充值续费 / 订单记录 / 充值记录 / 订单管理: pricing rules as functions, then every page through HTTP —
renewal center → order → confirmation → payment (balance or sandbox), top-ups, order lists with
filters and exports, cancel and refund — with the refusals and the scope of each."""
from __future__ import annotations

import html
import io
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from actions import DomainError, NotAllowed
from actions.orders import (
    add_months, cancel_stale_orders, create_renewal_order, pay_with_balance,
    approve_refunds, quote_renewal, request_refund, request_refunds, renewal_price, renewed_until,
)
from actions.wallets import balance_of, credit, wallet_for
from models import Company, Device, LedgerEntry, Order, OrderLine, OrderRefund, Package, Wallet, db, utcnow
from tests.conftest import confirm_post, make_device, post

TODAY = date.today()


@pytest.fixture
def in_request(app):
    """Actions render refusal reasons with Babel, whose locale selector reads the request."""
    with app.test_request_context():
        yield


def page_text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def fund(company: Company, amount: str, currency: str = "CNY") -> Wallet:
    wallet = wallet_for(db.session, company.id, currency)
    credit(db.session, wallet, Decimal(amount), "offline_recharge", f"test:{company.id}:{currency}:{amount}")
    db.session.commit()
    return wallet


def balance(company: Company, currency: str = "CNY") -> Decimal:
    db.session.expire_all()
    held = balance_of(db.session, company.id, currency)
    return held if held is not None else Decimal("0.00")


def ledger(company: Company) -> list[LedgerEntry]:
    db.session.expire_all()
    return list(db.session.scalars(
        select(LedgerEntry).join(Wallet).where(Wallet.company_id == company.id).order_by(LedgerEntry.id)))


def orders_of(company: Company | None = None) -> list[Order]:
    """The orders the test made (the world fixture's own Globex order left out)."""
    db.session.expire_all()
    query = select(Order).where(Order.number.notin_(("RC-GLOBEX-0001", "SE-GLOBEX-0001"))).order_by(Order.id)
    if company is not None:
        query = query.where(Order.company_id == company.id)
    return list(db.session.scalars(query))


def expiry(device: Device) -> date:
    return fresh(Device, device.id).expires_on


def make_order(company: Company, kind: str = "renewal", status: str = "pending", total: str = "10.00",
               currency: str = "CNY", number: str | None = None, method: str | None = None,
               created_at: datetime | None = None) -> Order:
    """An order row as the money code would leave it (a line included); flushed, not committed."""
    order = Order(number=number or f"T{kind[:2].upper()}-{company.id}-{utcnow():%H%M%S%f}", kind=kind,
                  status=status, company_id=company.id, currency=currency, total=Decimal(total),
                  payment_method=method, created_at=created_at or utcnow(),
                  paid_at=utcnow() if status in ("paid", "refunded") else None)
    db.session.add(order)
    db.session.flush()
    db.session.add(OrderLine(order_id=order.id, description=f"{kind} line", unit_price=Decimal(total),
                             amount=Decimal(total)))
    db.session.flush()
    return order


def renew_via_http(client, company: Company, devices, months="12", custom="", **extra):
    data = [("company_id", str(company.id)), ("months", months), ("custom_months", custom)]
    data += [("rowid", str(d.id)) for d in devices]
    data += list(extra.items())
    return post(client, "/admin/renewal_center/renew/", data)


def order_number_from(response) -> str:
    match = re.search(r"/admin/renewal_center/order/([^/]+)/", response.headers.get("Location", ""))
    assert match, (response.status_code, response.headers.get("Location"))
    return match.group(1)


# --- pure functions -------------------------------------------------------------------------------

@pytest.mark.parametrize("day, months, expected", [
    (date(2023, 1, 31), 1, date(2023, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2024, 3, 31), 1, date(2024, 4, 30)),
    (date(2023, 8, 31), 6, date(2024, 2, 29)),
    (date(2023, 12, 15), 1, date(2024, 1, 15)),
    (date(2023, 1, 31), 13, date(2024, 2, 29)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2024, 5, 10), 24, date(2026, 5, 10)),
    (date(2024, 5, 10), 0, date(2024, 5, 10)),
])
def test_add_months_clamps_to_the_end_of_shorter_months(day, months, expected):
    assert add_months(day, months) == expected


def test_renewed_until_counts_from_the_later_of_expiry_and_today():
    today = date(2024, 1, 31)
    assert renewed_until(date(2023, 6, 1), 1, today) == date(2024, 2, 29)  # expired: from today
    assert renewed_until(date(2024, 3, 31), 1, today) == date(2024, 4, 30)  # running: from expiry
    assert renewed_until(today, 12, today) == date(2025, 1, 31)


def _package(pricing: str, amount: str, term: int | None = None) -> Package:
    return Package(code=f"P-{pricing}", name=pricing, amount=Decimal(amount), pricing=pricing,
                   term_months=term, currency="CNY", active=True)


@pytest.mark.parametrize("pricing, amount, term, months, price", [
    ("per_month", "10.00", None, 1, "10.00"),
    ("per_month", "10.00", None, 12, "120.00"),
    ("per_month", "9.99", None, 7, "69.93"),
    ("per_year", "100.00", None, 12, "100.00"),
    ("per_year", "100.00", None, 6, "50.00"),
    ("per_year", "100.00", None, 24, "200.00"),
    ("per_year", "100.00", None, 1, "8.33"),
    ("per_year", "100.00", None, 7, "58.33"),
    ("per_term", "25.00", 3, 3, "25.00"),
    ("per_term", "25.00", 3, 12, "100.00"),
])
def test_renewal_price_per_month_year_and_term(pricing, amount, term, months, price):
    assert renewal_price(_package(pricing, amount, term), months) == Decimal(price)


@pytest.mark.parametrize("months", [0, -1, 121])
def test_renewal_price_refuses_months_out_of_range(in_request, months):
    with pytest.raises(DomainError, match="Months"):
        renewal_price(_package("per_month", "10.00"), months)


def test_renewal_price_refuses_part_terms_naming_the_package(in_request):
    with pytest.raises(DomainError, match="P-per_term.*3 months.*4 months"):
        renewal_price(_package("per_term", "25.00", 3), 4)


# --- quote_renewal: the rules ------------------------------------------------------------------------

def test_quote_prices_each_device_and_the_total(in_request, world):
    devices = [world.devices["AC0001"], world.devices["FL0001"]]
    quote = quote_renewal(db.session, world.users["customer"], world.acme, devices, 12, TODAY)
    assert quote.currency == "CNY" and quote.months == 12
    assert [price for _d, _p, price, _e in quote.lines] == [Decimal("120.00"), Decimal("120.00")]
    assert quote.total == Decimal("240.00")
    assert [new for _d, _p, _price, new in quote.lines] == [
        renewed_until(d.expires_on, 12, TODAY) for d in devices]


def test_quote_of_an_expired_device_starts_from_today(in_request, world):
    old = make_device("OLD-1", world.acme, TODAY - timedelta(days=400), package=world.packages["GPS-M"])
    quote = quote_renewal(db.session, world.users["customer"], world.acme, [old], 1, TODAY)
    assert quote.lines[0][3] == add_months(TODAY, 1)


def test_quote_refuses_devices_without_a_package_naming_them(in_request, world):
    bare = make_device("BARE-1", world.acme)
    with pytest.raises(DomainError, match="no renewal package bound.*BARE-1"):
        quote_renewal(db.session, world.users["customer"], world.acme, [world.devices["AC0001"], bare], 12, TODAY)


def test_quote_refuses_suspended_devices(in_request, world):
    world.devices["AC0002"].status = "suspended"
    with pytest.raises(DomainError, match="suspended.*AC0002"):
        quote_renewal(db.session, world.users["customer"], world.acme, [world.devices["AC0002"]], 12, TODAY)


def test_quote_refuses_mixed_currencies(in_request, world):
    usd = Package(code="GPS-USD", name="GPS USD", category_id=world.packages["GPS-M"].category_id,
                  amount=Decimal("2.00"), pricing="per_month", currency="USD")
    db.session.add(usd)
    dollar = make_device("USD-1", world.acme, package=usd)
    with pytest.raises(DomainError, match="one currency.*CNY: AC0001.*USD: USD-1"):
        quote_renewal(db.session, world.users["customer"], world.acme, [world.devices["AC0001"], dollar], 12, TODAY)


def test_quote_refuses_packages_no_longer_sold(in_request, world):
    world.packages["GPS-M"].active = False
    with pytest.raises(DomainError, match="no longer sold.*AC0001"):
        quote_renewal(db.session, world.users["customer"], world.acme, [world.devices["AC0001"]], 12, TODAY)


def test_quote_refuses_another_companys_tree(in_request, world):
    customer = world.users["customer"]
    with pytest.raises(DomainError, match="outside your companies"):
        quote_renewal(db.session, customer, world.globex, [world.devices["GX0001"]], 12, TODAY)
    with pytest.raises(DomainError, match="not devices of Acme North.*SO0001"):
        quote_renewal(db.session, customer, world.north, [world.devices["SO0001"]], 12, TODAY)


def test_quote_refuses_no_devices_and_bad_months(in_request, world):
    customer = world.users["customer"]
    with pytest.raises(DomainError, match="at least one device"):
        quote_renewal(db.session, customer, world.acme, [], 12, TODAY)
    for months in (0, 121):
        with pytest.raises(DomainError, match="Months"):
            quote_renewal(db.session, customer, world.acme, [world.devices["AC0001"]], months, TODAY)


def test_an_inactive_user_may_not_renew(in_request, world):
    world.users["support"].active = False
    with pytest.raises(NotAllowed):
        quote_renewal(db.session, world.users["support"], world.acme, [world.devices["AC0001"]], 12, TODAY)


def test_pay_with_balance_moves_expiry_and_writes_one_ledger_entry(in_request, world):
    customer = world.users["customer"]
    fund(world.acme, "500.00")
    device = world.devices["AC0001"]
    before = device.expires_on
    quote = quote_renewal(db.session, customer, world.acme, [device], 6, TODAY)
    order = create_renewal_order(db.session, customer, quote)
    pay_with_balance(db.session, customer, order, TODAY)
    db.session.commit()
    assert expiry(device) == add_months(before, 6)
    assert balance(world.acme) == Decimal("440.00")
    entries = ledger(world.acme)
    assert [(e.kind, e.amount, e.order_id) for e in entries[1:]] == [("payment", Decimal("-60.00"), order.id)]
    line = db.session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))
    assert (line.old_expires_on, line.new_expires_on) == (before, add_months(before, 6))


# --- the renewal center through HTTP -------------------------------------------------------------------

def test_renewal_center_lists_the_trees_expiring_devices_with_prices(client, login, world):
    make_device("LATER-1", world.acme, TODAY + timedelta(days=100), package=world.packages["GPS-M"])
    make_device("PAST-1", world.fleet, TODAY - timedelta(days=3), package=world.packages["GPS-Y"])
    db.session.commit()
    login("customer")
    page = page_text(client.get("/admin/renewal_center/?months=24"))
    for number in ("AC0001", "NO0001", "FL0001", "SO0001", "PAST-1"):
        assert number in page
    assert "GX0001" not in page and "Globex" not in page
    assert "LATER-1" not in page  # outside the default 30 days
    row = re.search(r'data-number="AC0001".*?</tr>', page, re.S).group(0)
    assert "240.00" in row and "CNY" in row and str(add_months(world.devices["AC0001"].expires_on, 24)) in row
    past = re.search(r'data-number="PAST-1".*?</tr>', page, re.S).group(0)
    assert "200.00" in past and str(add_months(TODAY, 24)) in past and "Expired" in past
    assert "LATER-1" in page_text(client.get("/admin/renewal_center/?window=all"))
    expired_only = page_text(client.get("/admin/renewal_center/?window=expired"))
    assert "PAST-1" in expired_only and "AC0001" not in expired_only


def test_renewal_center_custom_months_and_bad_months(client, login, world):
    login("customer")
    page = page_text(client.get("/admin/renewal_center/?months=custom&custom_months=3"))
    row = re.search(r'data-number="AC0001".*?</tr>', page, re.S).group(0)
    assert "30.00" in row
    page = page_text(client.get("/admin/renewal_center/?months=custom&custom_months=500"))
    assert "Months: a whole number between 1 and 120" in page


def test_renewal_center_shows_why_a_device_cannot_renew(client, login, world):
    make_device("BARE-1", world.acme)
    world.devices["SO0002"].status = "suspended"
    db.session.commit()
    login("customer")
    page = page_text(client.get("/admin/renewal_center/"))
    assert "No renewal package bound." in re.search(r'data-number="BARE-1".*?</tr>', page, re.S).group(0)
    assert "Suspended" in re.search(r'data-number="SO0002".*?</tr>', page, re.S).group(0)


def test_renewal_center_pages_with_limit(client, login, world):
    for i in range(45):
        make_device(f"BULK{i:03d}", world.fleet, TODAY - timedelta(days=50 - i), package=world.packages["GPS-M"])
    db.session.commit()
    login("north")
    first = page_text(client.get("/admin/renewal_center/?page_size=20"))
    numbers = re.findall(r'data-number="([^"]+)"', first)
    assert numbers == [f"BULK{i:03d}" for i in range(20)]
    assert 'id="rd-next"' in first and "49 devices" in first
    third = page_text(client.get("/admin/renewal_center/?page_size=20&page=2"))
    numbers = re.findall(r'data-number="([^"]+)"', third)
    assert len(numbers) == 9 and numbers[:5] == [f"BULK{i:03d}" for i in range(40, 45)]
    assert 'id="rd-next"' not in third


def test_renewal_center_query_uses_the_company_expiry_index(app, world):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    from admin_views.renewals import RenewalCenterView

    view = RenewalCenterView()
    conditions = view._conditions(world.acme, "30", TODAY)
    query = select(Device.id).where(*conditions).order_by(Device.expires_on, Device.id).limit(51)
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    plan = " ".join(str(row[-1]) for row in db.session.execute(db.text("EXPLAIN QUERY PLAN " + sql)))
    assert "ix_device_company_expires" in plan, plan


def test_staff_choose_the_company_they_renew_for(client, login, world):
    login("sales")
    assert "Choose a company to see its devices." in page_text(client.get("/admin/renewal_center/"))
    page = page_text(client.get(f"/admin/renewal_center/?company_id={world.globex.id}"))
    assert "GX0001" in page and "AC0001" not in page
    response = renew_via_http(client, world.globex, [world.devices["GX0001"]])
    order = orders_of(world.globex)[0]
    assert order_number_from(response) == order.number
    assert order.created_by_id == world.users["sales"].id and order.total == Decimal("120.00")


def test_staff_renewal_refuses_devices_outside_the_chosen_company(client, login, world):
    login("finance")
    response = renew_via_http(client, world.north, [world.devices["SO0001"]])
    page = page_text(client.get(response.headers["Location"]))
    assert "not devices of Acme North" in page and "SO0001" in page
    assert orders_of() == []


def test_customer_renews_end_to_end_and_pays_from_the_balance(client, login, world):
    fund(world.acme, "1000.00")
    devices = [world.devices["AC0001"], world.devices["FL0002"]]
    before = {d.number: d.expires_on for d in devices}
    login("customer")
    response = renew_via_http(client, world.acme, devices, months="12")
    number = order_number_from(response)
    order = orders_of(world.acme)[0]
    assert (order.number, order.status, order.total, order.currency) == (number, "pending", Decimal("240.00"), "CNY")
    assert {d.number: expiry(d) for d in devices} == before  # nothing moves before payment

    confirm = page_text(client.get(f"/admin/renewal_center/order/{number}/"))
    assert "Confirm the order" in confirm and "240.00" in confirm and "120.00" in confirm
    for d in devices:
        assert d.number in confirm and str(add_months(before[d.number], 12)) in confirm
    assert f"/admin/renewal_center/order/{number}/pay/" in confirm

    pay_page = page_text(client.get(f"/admin/renewal_center/order/{number}/pay/"))
    assert "available: CN¥1,000.00" in pay_page
    assert 'value="wechat"' in pay_page and 'value="alipay"' in pay_page and 'value="paypal"' not in pay_page

    response = post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"},
                    follow_redirects=True)
    assert f"Order {number} is paid: CN¥240.00 from the balance." in page_text(response)
    order = fresh(Order, order.id)
    assert (order.status, order.payment_method) == ("paid", "balance")
    assert {d.number: expiry(d) for d in devices} == {n: add_months(e, 12) for n, e in before.items()}
    assert balance(world.acme) == Decimal("760.00")
    payments = [e for e in ledger(world.acme) if e.kind == "payment"]
    assert [(e.amount, e.order_id, e.balance_after) for e in payments] == [(Decimal("-240.00"), order.id, Decimal("760.00"))]

    # Paying twice is refused and moves nothing.
    again = post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"}, follow_redirects=True)
    assert f"Order {number} is not awaiting payment" in page_text(again)
    assert balance(world.acme) == Decimal("760.00")
    assert {d.number: expiry(d) for d in devices} == {n: add_months(e, 12) for n, e in before.items()}


def test_one_row_renew_button_orders_only_that_device(client, login, world):
    login("customer")
    response = renew_via_http(client, world.acme, [world.devices["AC0001"], world.devices["AC0002"]],
                              months="6", only=str(world.devices["AC0002"].id))
    number = order_number_from(response)
    order = orders_of(world.acme)[0]
    lines = list(db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)))
    assert order.number == number and [line.device_id for line in lines] == [world.devices["AC0002"].id]
    assert (lines[0].months, lines[0].unit_price) == (6, Decimal("60.00"))


def test_insufficient_balance_changes_nothing_and_says_what_is_missing(client, login, world):
    fund(world.acme, "50.00")
    login("customer")
    number = order_number_from(renew_via_http(client, world.acme, [world.devices["AC0001"], world.devices["AC0002"]]))
    before = expiry(world.devices["AC0001"])
    pay_page = page_text(client.get(f"/admin/renewal_center/order/{number}/pay/"))
    assert "CN¥190.00 missing" in pay_page
    response = post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"}, follow_redirects=True)
    text = page_text(response)
    assert "Insufficient CNY balance: CN¥240.00 needed, CN¥50.00 available, CN¥190.00 missing." in text
    order = orders_of(world.acme)[0]
    assert (order.status, order.payment_method) == ("pending", None)
    assert balance(world.acme) == Decimal("50.00")
    assert [e.kind for e in ledger(world.acme)] == ["offline_recharge"]
    assert expiry(world.devices["AC0001"]) == before


@pytest.mark.parametrize("case", ["no_package", "suspended", "mixed_currency"])
def test_renew_refusals_flash_and_create_no_order(client, login, world, case):
    devices = [world.devices["AC0001"]]
    if case == "no_package":
        devices.append(make_device("BARE-1", world.acme))
        expected = "no renewal package bound (bind one first): BARE-1"
    elif case == "suspended":
        world.devices["AC0002"].status = "suspended"
        devices.append(world.devices["AC0002"])
        expected = "suspended devices cannot be renewed: AC0002"
    else:
        usd = Package(code="GPS-USD", name="GPS USD", category_id=world.packages["GPS-M"].category_id,
                      amount=Decimal("2.00"), pricing="per_month", currency="USD")
        db.session.add(usd)
        devices.append(make_device("USD-1", world.acme, package=usd))
        expected = "CNY: AC0001; USD: USD-1"
    db.session.commit()
    login("customer")
    response = renew_via_http(client, world.acme, devices)
    assert response.status_code == 302 and "/order/" not in response.headers["Location"]
    assert expected in page_text(client.get(response.headers["Location"]))
    assert orders_of() == []


def test_customer_cannot_renew_another_tenants_devices_or_company(client, login, world):
    login("customer")
    foreign = world.devices["GX0001"]
    response = renew_via_http(client, world.acme, [world.devices["AC0001"], foreign])
    text = page_text(client.get(response.headers["Location"]))
    assert f"#{foreign.id}" in text and "outside your companies" in text
    assert "GX0001" not in text
    response = renew_via_http(client, world.globex, [world.devices["AC0001"]])
    assert "Choose one of your companies first." in page_text(client.get(response.headers["Location"]))
    page = page_text(client.get(f"/admin/renewal_center/?company_id={world.globex.id}"))
    assert f"Company #{world.globex.id} is not one of your companies." in page
    assert "GX0001" not in page and "AC0001" in page
    assert orders_of() == []


def test_subsidiary_admin_renews_only_inside_their_tree(client, login, world):
    login("north")
    page = page_text(client.get("/admin/renewal_center/"))
    assert "NO0001" in page and "FL0001" in page and "AC0001" not in page
    response = renew_via_http(client, world.north, [world.devices["AC0001"]])
    assert "outside your companies" in page_text(client.get(response.headers["Location"]))
    assert orders_of() == []


def test_order_pages_of_another_company_answer_404(client, login, world):
    foreign = make_order(world.globex)
    db.session.commit()
    login("customer")
    base = f"/admin/renewal_center/order/{foreign.number}/"
    assert client.get(base).status_code == 404
    assert client.get(base + "pay/").status_code == 404
    assert post(client, base + "pay/", {"method": "balance"}).status_code == 404
    assert post(client, base + "cancel/", {}).status_code == 404
    assert client.get(f"/sandbox/pay/{foreign.number}?method=wechat").status_code == 404
    assert post(client, f"/sandbox/pay/{foreign.number}?method=wechat", {"decision": "pay"}).status_code == 404
    assert fresh(Order, foreign.id).status == "pending"
    login.logout()
    login("north")  # a subsidiary does not see its parent's orders either
    parent = make_order(world.acme)
    db.session.commit()
    assert client.get(f"/admin/renewal_center/order/{parent.number}/").status_code == 404


def test_cancel_a_pending_order_from_its_page(client, login, world):
    login("customer")
    number = order_number_from(renew_via_http(client, world.acme, [world.devices["AC0001"]]))
    response = confirm_post(client, f"/admin/renewal_center/order/{number}/cancel/", {}, follow_redirects=True)
    assert f"Order {number} is cancelled." in page_text(response)
    assert orders_of()[0].status == "cancelled"
    response = post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"}, follow_redirects=True)
    assert "not awaiting payment" in page_text(response)
    assert orders_of()[0].status == "cancelled"



def test_a_device_awaiting_payment_is_not_ordered_again_until_that_order_is_paid_or_cancelled(client, login, world):
    login("customer")
    ac1, fl2 = world.devices["AC0001"], world.devices["FL0002"]
    first = order_number_from(renew_via_http(client, world.acme, [ac1]))
    page = page_text(client.get("/admin/renewal_center/?months=12"))
    row = re.search(r'data-number="AC0001".*?</tr>', page, re.S).group(0)
    assert f"Awaiting payment in order {first}." in row and "disabled" in row
    assert f'href="/admin/renewal_center/order/{first}/"' in row and 'name="only"' not in row
    assert 'name="only"' in re.search(r'data-number="FL0002".*?</tr>', page, re.S).group(0)

    response = renew_via_http(client, world.acme, [fl2, ac1], months="6")
    assert response.status_code == 302 and "/order/" not in response.headers["Location"]
    assert (f"Already awaiting payment in another order (pay or cancel that order first): {first} (AC0001)."
            in page_text(client.get(response.headers["Location"])))
    assert [o.number for o in orders_of()] == [first]  # nothing else was opened, not even for FL0002

    confirm_post(client, f"/admin/renewal_center/order/{first}/cancel/", {})
    again = order_number_from(renew_via_http(client, world.acme, [fl2, ac1], months="6"))
    assert again != first and {o.status for o in orders_of() if o.number == again} == {"pending"}


def test_two_orders_opened_at_once_for_one_device_give_it_to_exactly_one(app, world):
    from tests.conftest import race
    from models import User

    customer_id, acme_id, device_id = world.users["customer"].id, world.acme.id, world.devices["AC0001"].id
    db.session.remove()

    def attempt():
        actor, company = db.session.get(User, customer_id), db.session.get(Company, acme_id)
        quote = quote_renewal(db.session, actor, company, [db.session.get(Device, device_id)], 12, TODAY)
        create_renewal_order(db.session, actor, quote)

    outcomes, errors = race(app, [attempt, attempt])
    assert not errors, errors
    assert sorted(outcomes) == ["refused", "won"]
    lines = db.session.scalars(select(OrderLine).join(Order).where(OrderLine.device_id == device_id,
                                                                   Order.status == "pending")).all()
    assert len(lines) == 1

# --- online payment through the sandbox page ---------------------------------------------------------

def test_online_payment_through_the_sandbox_page(client, login, world):
    device = world.devices["AC0001"]
    before = device.expires_on
    login("customer")
    number = order_number_from(renew_via_http(client, world.acme, [device], months="24"))
    response = post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "wechat"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/sandbox/pay/{number}?method=wechat"
    sandbox = page_text(client.get(response.headers["Location"]))
    assert "WeChat Pay (sandbox)" in sandbox and "CN¥240.00" in sandbox and 'name="csrf_token"' in sandbox

    response = post(client, f"/sandbox/pay/{number}?method=wechat", {"decision": "pay"}, follow_redirects=True)
    assert f"Order {number} is paid: CN¥240.00 with WeChat Pay (sandbox)." in page_text(response)
    order = orders_of(world.acme)[0]
    assert (order.status, order.payment_method) == ("paid", "wechat")
    assert order.provider_ref.startswith("wechat-")
    assert expiry(device) == add_months(before, 24)
    assert ledger(world.acme) == []  # the provider took the money, not the wallet

    again = post(client, f"/sandbox/pay/{number}?method=wechat", {"decision": "pay"}, follow_redirects=True)
    assert "not awaiting payment" in page_text(again)
    assert expiry(device) == add_months(before, 24)


def test_sandbox_refuses_a_method_that_does_not_take_the_currency(client, login, world):
    login("customer")
    number = order_number_from(renew_via_http(client, world.acme, [world.devices["AC0001"]]))
    response = post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "paypal"}, follow_redirects=True)
    assert "paypal does not take CNY." in page_text(response)
    response = client.get(f"/sandbox/pay/{number}?method=paypal", follow_redirects=True)
    assert "paypal does not take CNY." in page_text(response)
    assert orders_of()[0].status == "pending"


def test_sandbox_cancel_leaves_the_order_pending(client, login, world):
    login("customer")
    number = order_number_from(renew_via_http(client, world.acme, [world.devices["AC0001"]]))
    response = post(client, f"/sandbox/pay/{number}?method=alipay", {"decision": "cancel"}, follow_redirects=True)
    assert "Payment cancelled at Alipay (sandbox)" in page_text(response)
    assert orders_of()[0].status == "pending"


def test_sandbox_page_needs_a_login_and_a_csrf_token(client, login, world):
    order = make_order(world.acme)
    db.session.commit()
    response = client.get(f"/sandbox/pay/{order.number}?method=wechat")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    login("customer")
    assert client.post(f"/sandbox/pay/{order.number}?method=wechat", data={"decision": "pay"}).status_code == 400
    assert fresh(Order, order.id).status == "pending"


# --- recharge: top-up page, sandbox, records ------------------------------------------------------------

@pytest.mark.parametrize("amount, message", [
    ("-5", "Amount: must be greater than zero."),
    ("0", "Amount: must be greater than zero."),
    ("1.234", "Amount: at most two decimal places."),
    ("1000000000", "Amount: 1000000000 is larger than any single payment."),
    ("abc", "Amount: abc is not an amount."),
    ("", "Amount: enter an amount."),
    ("NaN", "Amount: NaN is not an amount."),
])
def test_top_up_refuses_bad_amounts_naming_the_field(client, login, world, amount, message):
    login("customer")
    response = post(client, "/admin/recharge_record/top-up/",
                    {"company_id": str(world.acme.id), "currency": "CNY", "amount": amount})
    assert response.status_code == 200
    assert message in page_text(response)
    assert orders_of() == []


def test_top_up_refuses_other_companies_and_currencies(client, login, world):
    login("customer")
    response = post(client, "/admin/recharge_record/top-up/",
                    {"company_id": str(world.globex.id), "currency": "CNY", "amount": "10"})
    assert "Company: choose one of your companies." in page_text(response)
    response = post(client, "/admin/recharge_record/top-up/",
                    {"company_id": str(world.acme.id), "currency": "COIN", "amount": "10"})
    assert "Currency: choose one of CNY, USD, VND." in page_text(response)
    assert orders_of() == []


def test_top_up_escapes_what_was_typed(client, login, world):
    login("customer")
    response = post(client, "/admin/recharge_record/top-up/",
                    {"company_id": str(world.acme.id), "currency": "CNY", "amount": "<script>x</script>"})
    assert "<script>x</script>" not in response.get_data(as_text=True)


def test_top_up_then_pay_online_credits_the_wallet_once(client, login, world):
    login("customer")
    response = post(client, "/admin/recharge_record/top-up/",
                    {"company_id": str(world.south.id), "currency": "USD", "amount": "100.50"})
    order = orders_of(world.south)[0]
    assert response.headers["Location"] == f"/admin/renewal_center/order/{order.number}/pay/"
    assert (order.kind, order.status, order.total, order.currency) == ("recharge", "pending", Decimal("100.50"), "USD")
    pay_page = page_text(client.get(response.headers["Location"]))
    assert 'value="paypal"' in pay_page
    # The tab names the top-up, not the renewal center the pay page lives under.
    assert f"<title>Recharge {order.number} - " in pay_page
    assert f"<title>Recharge {order.number} - " in page_text(client.get(f"/admin/renewal_center/order/{order.number}/"))
    assert 'value="wechat"' not in pay_page and 'value="balance"' not in pay_page
    # The balance cannot pay for its own top-up, even when asked directly.
    refused = post(client, f"/admin/renewal_center/order/{order.number}/pay/", {"method": "balance"},
                   follow_redirects=True)
    assert "A recharge order cannot be paid from the balance it tops up." in page_text(refused)

    response = post(client, f"/admin/renewal_center/order/{order.number}/pay/", {"method": "paypal"})
    assert response.headers["Location"] == f"/sandbox/pay/{order.number}?method=paypal"
    assert "PayPal (sandbox)" in page_text(client.get(response.headers["Location"]))
    post(client, response.headers["Location"], {"decision": "pay"})
    assert fresh(Order, order.id).status == "paid"
    assert balance(world.south, "USD") == Decimal("100.50")
    assert [(e.kind, e.amount, e.order_id) for e in ledger(world.south)] == [("recharge", Decimal("100.50"), order.id)]


def test_top_up_page_offers_the_companies_of_the_tree(client, login, world):
    login("north")
    page = page_text(client.get("/admin/recharge_record/top-up/"))
    assert "Acme North Fleet" in page and "Acme South" not in page and "Globex" not in page
    assert "WeChat Pay, Alipay" in page and "PayPal" in page


def test_recharge_records_list_paid_and_pending_top_ups_of_the_tree(client, login, world):
    paid = make_order(world.fleet, "recharge", "paid", "30.00", method="alipay")
    pending = make_order(world.acme, "recharge", "pending", "20.00")
    renewal = make_order(world.acme, "renewal", "paid", "40.00", method="balance")
    foreign = make_order(world.globex, "recharge", "paid", "50.00", method="wechat")
    db.session.commit()
    login("customer")
    page = page_text(client.get("/admin/recharge_record/"))
    assert paid.number in page and pending.number in page
    assert renewal.number not in page and foreign.number not in page
    assert f"/admin/renewal_center/order/{pending.number}/pay/" in page  # "pay" on the pending one
    assert f"/admin/renewal_center/order/{paid.number}/pay/" not in page
    assert "/admin/recharge_record/top-up/" in page


# --- order lists: scope, filters, export, details ------------------------------------------------------

@pytest.fixture
def ledgered(world):
    """Orders of several kinds, statuses, methods and currencies across both tenants."""
    rows = {
        "acme_renewal": make_order(world.acme, "renewal", "paid", "120.00", method="balance", number="RN-A1"),
        "fleet_recharge": make_order(world.fleet, "recharge", "pending", "80.00", currency="USD", number="RC-F1"),
        "south_value": make_order(world.south, "value_added", "cancelled", "5.00", number="VA-S1"),
        "acme_vip": make_order(world.acme, "vip_upgrade", "paid", "72.00", method="wechat", number="VP-A1"),
        "globex_renewal": make_order(world.globex, "renewal", "paid", "60.00", method="alipay", number="RN-G1"),
        "old": make_order(world.acme, "renewal", "paid", "10.00", method="balance", number="RN-OLD",
                          created_at=datetime(2023, 5, 20, 12, tzinfo=timezone.utc)),
    }
    db.session.commit()
    return rows


def listed_orders(client, url: str) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200, url
    return set(re.findall(r"\b(RN-\w+|RC-\w+|VA-\w+|VP-\w+)\b", page_text(response))) & {
        "RN-A1", "RC-F1", "VA-S1", "VP-A1", "RN-G1", "RN-OLD"}


def test_order_records_show_the_customers_tree_and_every_kind(client, login, ledgered):
    login("customer")
    assert listed_orders(client, "/admin/order_record/") == {"RN-A1", "RC-F1", "VA-S1", "VP-A1", "RN-OLD"}
    login.logout()
    login("north")
    assert listed_orders(client, "/admin/order_record/") == {"RC-F1"}


def test_order_management_shows_every_company(client, login, ledgered):
    login("finance")
    assert listed_orders(client, "/admin/order_management/") == {"RN-A1", "RC-F1", "VA-S1", "VP-A1", "RN-G1", "RN-OLD"}


@pytest.mark.parametrize("query, expected", [
    ("flt0_status_equals=paid", {"RN-A1", "VP-A1", "RN-G1", "RN-OLD"}),
    ("flt0_payment_method_equals=alipay", {"RN-G1"}),
    ("flt0_currency_equals=USD", {"RC-F1"}),
    ("flt0_order_type_equals=value_added", {"VA-S1"}),
    ("flt0_created_between=2023-05-01+to+2023-05-31", {"RN-OLD"}),
    ("flt0_created_before=2024-01-01", {"RN-OLD"}),
    ("flt0_created_on_or_after=2024-01-01", {"RN-A1", "RC-F1", "VA-S1", "VP-A1", "RN-G1"}),
    ("search=RN-G", {"RN-G1"}),
])
def test_order_management_filters(client, login, ledgered, query, expected):
    login("finance")
    assert listed_orders(client, f"/admin/order_management/?{query}") == expected


def test_order_management_company_filter_takes_the_tree(client, login, world, ledgered):
    login("finance")
    assert listed_orders(client, f"/admin/order_management/?flt0_company_in_the_tree_of={world.north.id}") == {"RC-F1"}
    assert listed_orders(client, f"/admin/order_management/?flt0_company_in_the_tree_of={world.acme.id}") == {
        "RN-A1", "RC-F1", "VA-S1", "VP-A1", "RN-OLD"}


def test_order_management_shows_and_filters_the_invoice_status(client, login, ledgered):
    """未开票订单 (seed 000): finance sees each order's invoice status, filters on it and exports it."""
    db.session.execute(Order.__table__.update().where(Order.number == "RN-A1").values(invoice_status="invoiced"))
    db.session.commit()
    login("finance")
    assert listed_orders(client, "/admin/order_management/?flt0_invoice_equals=invoiced") == {"RN-A1"}
    assert "RN-A1" not in listed_orders(client, "/admin/order_management/?flt0_invoice_equals=none")
    page = client.get("/admin/order_management/").get_data(as_text=True)
    assert "Invoiced" in page and "Not invoiced" in page
    rows = _sheet(client.get("/admin/order_management/export/xlsx/"))
    column = rows[0].index("Invoice")
    assert {r[0]: r[column] for r in rows[1:]}["RN-A1"] == "Invoiced"


def test_order_record_filters_for_the_customer(client, login, ledgered):
    login("customer")
    assert listed_orders(client, "/admin/order_record/?flt0_status_equals=paid") == {"RN-A1", "VP-A1", "RN-OLD"}
    assert listed_orders(client, "/admin/order_record/?flt0_currency_equals=USD") == {"RC-F1"}
    assert listed_orders(client, "/admin/order_record/?flt0_payment_method_equals=balance") == {"RN-A1", "RN-OLD"}
    # The company filter offers only the customer's tree.
    page = client.get("/admin/order_record/").get_data(as_text=True)
    assert "Acme North Fleet" in page and "Globex" not in page


def _sheet(response) -> list[tuple]:
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(response.data))
    return [tuple(row) for row in book.active.iter_rows(values_only=True)]


def test_order_exports_are_scoped_labelled_and_formula_safe(client, login, world, ledgered):
    world.acme.name = "=cmd|' /C calc'!A0"
    db.session.commit()
    login("finance")
    rows = _sheet(client.get("/admin/order_management/export/xlsx/?flt0_status_equals=paid"))
    header, body = rows[0], rows[1:]
    assert header[:4] == ("Order number", "Order type", "Company", "Status")
    by_number = {r[0]: r for r in body}
    assert set(by_number) == {"RN-A1", "VP-A1", "RN-G1", "RN-OLD"}
    assert by_number["RN-A1"][1:4] == ("Renewal", "'=cmd|' /C calc'!A0", "Paid")  # quoted, as in the CSV
    assert by_number["RN-A1"][5] == 120 and by_number["RN-A1"][6] == "Balance"
    book = load_workbook(io.BytesIO(client.get("/admin/order_management/export/xlsx/").data))
    cells = [cell for row in book.active.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    assert [c.data_type for c in cells if str(c.value).startswith("'=cmd")] == ["s"] * 3  # text, not a formula
    text = client.get("/admin/order_management/export/csv/").get_data(as_text=True)
    assert "'=cmd|' /C calc'!A0" in text
    login.logout()
    login("customer")
    rows = _sheet(client.get("/admin/order_record/export/xlsx/"))
    assert {r[0] for r in rows[1:]} == {"RN-A1", "RC-F1", "VA-S1", "VP-A1", "RN-OLD"}


def test_order_details_list_the_lines_and_stay_in_scope(client, login, world):
    fund(world.acme, "500.00")
    login("customer")
    number = order_number_from(renew_via_http(client, world.acme, [world.devices["AC0001"], world.devices["NO0001"]]))
    post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"})
    order = orders_of(world.acme)[0]
    page = page_text(client.get(f"/admin/order_record/details/?id={order.id}"))
    assert "AC0001" in page and "NO0001" in page and "120.00" in page
    assert str(fresh(Device, world.devices["AC0001"].id).expires_on) in page
    foreign = make_order(world.globex, number="RN-GX-9")
    db.session.commit()
    response = client.get(f"/admin/order_record/details/?id={foreign.id}")
    assert response.status_code in (302, 404) and "RN-GX-9" not in page_text(response)
    login.logout()
    login("finance")
    assert "RN-GX-9" in page_text(client.get(f"/admin/order_management/details/?id={foreign.id}"))


def test_customer_cancels_pending_orders_from_the_list(client, login, world):
    pending = make_order(world.acme, "renewal", "pending", number="RN-P1")
    paid = make_order(world.acme, "renewal", "paid", method="balance", number="RN-P2")
    foreign = make_order(world.globex, "renewal", "pending", number="RN-P3")
    db.session.commit()
    login("customer")
    pairs = [("action", "cancel")] + [("rowid", str(o.id)) for o in (pending, paid, foreign)]
    response = confirm_post(client, "/admin/order_record/action/", pairs, follow_redirects=True)
    text = page_text(response)
    assert "1 orders cancelled." in text
    assert "RN-P2 (Order RN-P2 is not awaiting payment (it is Paid).)" in text
    assert f"#{foreign.id} (not found or outside your companies)" in text
    assert [fresh(Order, o.id).status for o in (pending, paid, foreign)] == ["cancelled", "paid", "pending"]


# --- refunds (finance) ----------------------------------------------------------------------------

def _paid_renewal(client, login, world, devices, amount="500.00") -> Order:
    fund(world.acme, amount)
    login("customer")
    number = order_number_from(renew_via_http(client, world.acme, devices))
    post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"})
    login.logout()
    order = orders_of(world.acme)[0]
    assert order.status == "paid"
    return order


def confirm_token_of(response) -> str:
    """The confirmation token of a refund confirmation page."""
    return re.search(r'name="confirm_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def test_refund_goes_through_a_confirmation_page(client, login, world):
    device = world.devices["AC0001"]
    before = device.expires_on
    order = _paid_renewal(client, login, world, [device])
    assert balance(world.acme) == Decimal("380.00")
    login("finance")
    confirm = post(client, "/admin/order_management/action/", [("action", "refund"), ("rowid", str(order.id))])
    text = page_text(confirm)
    assert confirm.status_code == 200 and "Request refunds of these orders?" in text
    assert order.number in text and "120.00" in text and 'name="csrf_token"' in text
    assert fresh(Order, order.id).status == "paid"  # nothing happens before the confirmation

    unconfirmed = post(client, "/admin/order_management/refund/", [("rowid", str(order.id)), ("reason", "x")])
    assert "Request refunds of these orders?" in page_text(unconfirmed)  # no token: the confirmation page again
    assert db.session.scalar(select(func.count()).select_from(OrderRefund)) == 0
    done = post(client, "/admin/order_management/refund/", [("rowid", str(order.id)), ("reason", "customer asked"),
                                                            ("confirm_token", confirm_token_of(confirm))],
                follow_redirects=True)
    assert "1 refunds requested" in page_text(done)
    assert fresh(Order, order.id).status == "paid" and balance(world.acme) == Decimal("380.00")
    refund = db.session.scalar(select(OrderRefund).where(OrderRefund.order_id == order.id))
    mine = post(client, "/admin/orderrefund/approve/", [("rowid", str(refund.id)), ("confirm_token", confirm_token_of(
        post(client, "/admin/orderrefund/action/", [("action", "approve"), ("rowid", str(refund.id))])))],
                follow_redirects=True)
    assert "another person must approve it" in page_text(mine)  # four eyes
    assert fresh(Order, order.id).status == "paid"
    login.logout()
    login("admin")
    ask = post(client, "/admin/orderrefund/action/", [("action", "approve"), ("rowid", str(refund.id))])
    assert "Approve these refunds?" in page_text(ask) and fresh(Order, order.id).status == "paid"
    unconfirmed = post(client, "/admin/orderrefund/approve/", [("rowid", str(refund.id))])
    assert "Approve these refunds?" in page_text(unconfirmed) and fresh(Order, order.id).status == "paid"
    done = post(client, "/admin/orderrefund/approve/", [("rowid", str(refund.id)), ("confirm_token", confirm_token_of(ask))],
                follow_redirects=True)
    assert "1 refunds approved" in page_text(done)
    assert fresh(Order, order.id).status == "refunded"
    assert expiry(device) == before
    assert balance(world.acme) == Decimal("500.00")
    refunds = [e for e in ledger(world.acme) if e.kind == "refund"]
    assert [(e.amount, e.order_id) for e in refunds] == [(Decimal("120.00"), order.id)]

    login.logout()
    login("finance")
    again = post(client, "/admin/order_management/action/", [("action", "refund"), ("rowid", str(order.id))])
    twice = post(client, "/admin/order_management/refund/", [("rowid", str(order.id)),
                                                             ("confirm_token", confirm_token_of(again))],
                 follow_redirects=True)
    assert f"{order.number} (Order {order.number} cannot be refunded: it is Refunded.)" in page_text(twice)
    assert balance(world.acme) == Decimal("500.00")
    assert len([e for e in ledger(world.acme) if e.kind == "refund"]) == 1


def test_refund_names_each_refused_order_and_refunds_the_others(client, login, world):
    order = _paid_renewal(client, login, world, [world.devices["AC0001"]])
    online = make_order(world.acme, "renewal", "paid", "60.00", method="wechat", number="RN-WX1")
    pending = make_order(world.acme, "renewal", "pending", "60.00", number="RN-PD1")
    db.session.commit()
    login("finance")
    ids = [order.id, online.id, pending.id]
    ask = post(client, "/admin/order_management/action/", [("action", "refund")] + [("rowid", str(i)) for i in ids])
    response = post(client, "/admin/order_management/refund/",
                    [("rowid", str(i)) for i in ids] + [("confirm_token", confirm_token_of(ask))], follow_redirects=True)
    text = page_text(response)
    assert "2 refunds requested" in text
    assert "RN-PD1 (Order RN-PD1 cannot be refunded: it is Pending payment.)" in text
    assert db.session.scalar(select(func.count()).select_from(OrderRefund)) == 2
    assert [fresh(Order, i).status for i in ids] == ["paid", "paid", "pending"]


def test_refund_of_a_renewal_whose_expiry_changed_since_is_refused_alone(in_request, world):
    """A refusal after the status changed rolls back only that order (savepoint per order)."""
    customer, finance = world.users["customer"], world.users["finance"]
    fund(world.acme, "500.00")
    orders = []
    for number in ("AC0001", "AC0002"):
        quote = quote_renewal(db.session, customer, world.acme, [world.devices[number]], 1, TODAY)
        order = create_renewal_order(db.session, customer, quote)
        pay_with_balance(db.session, customer, order, TODAY)
        orders.append(order)
    db.session.commit()
    world.devices["AC0001"].expires_on = TODAY + timedelta(days=999)  # edited after the renewal
    db.session.commit()
    requested = request_refunds(db.session, finance, [fresh(Order, orders[0].id), fresh(Order, orders[1].id)])
    assert len(requested.changed) == 2
    refunds = db.session.scalars(select(OrderRefund).order_by(OrderRefund.id)).all()
    result = approve_refunds(db.session, world.users["admin"], refunds, TODAY)
    db.session.commit()
    assert result.changed == (orders[1].number,)
    assert result.refused[0][0] == orders[0].number and "refund the later change first" in result.refused[0][1]
    assert [fresh(Order, o.id).status for o in orders] == ["paid", "refunded"]
    assert balance(world.acme) == Decimal("490.00")


def test_only_finance_refunds(in_request, world):
    order = make_order(world.acme, "renewal", "paid", method="balance")
    with pytest.raises(NotAllowed):
        request_refund(db.session, world.users["customer"], order)
    with pytest.raises(NotAllowed):
        request_refunds(db.session, world.users["sales"], [order])


def test_customers_cannot_reach_order_management(client, login, ledgered):
    login("customer")
    assert client.get("/admin/order_management/").status_code == 403
    assert post(client, "/admin/order_management/refund/", [("rowid", "1")]).status_code == 403
    login.logout()
    login("finance")
    assert client.get("/admin/order_record/").status_code == 403
    assert client.get("/admin/recharge_record/top-up/").status_code == 403


# --- stale orders ----------------------------------------------------------------------------------

def test_cancel_stale_orders_expires_old_pending_orders_only(app, world):
    hours = app.config["ORDER_PENDING_HOURS"]
    now = utcnow()
    old = make_order(world.acme, created_at=now - timedelta(hours=hours + 1))
    young = make_order(world.acme, created_at=now - timedelta(hours=hours - 1))
    paid_old = make_order(world.acme, "renewal", "paid", method="balance", created_at=now - timedelta(days=10))
    db.session.commit()
    assert cancel_stale_orders(db.session, older_than=timedelta(hours=hours), now=now) == 1
    db.session.commit()
    assert [fresh(Order, o.id).status for o in (old, young, paid_old)] == ["cancelled", "pending", "paid"]
    assert cancel_stale_orders(db.session, older_than=timedelta(hours=hours), now=now) == 0


# --- the scope walk of test_scope, with the Globex orders it needs -------------------------------------

def test_customer_order_views_hide_another_tenants_orders(app, client, login, world):
    from admin_views import registered_views

    foreign = make_order(world.globex, "recharge", "pending", number="RC-GLOBEX-1")
    db.session.commit()
    login("customer")
    views = [v for v in registered_views(app.extensions["admin"][0]) if v.endpoint in ("order_record", "recharge_record")]
    assert len(views) == 2
    for view in views:
        base = view.url.rstrip("/") + "/"
        assert "RC-GLOBEX-1" not in client.get(base).get_data(as_text=True)
        for page in (f"details/?id={foreign.id}", f"edit/?id={foreign.id}"):
            answer = client.get(base + page)
            assert answer.status_code in (302, 403, 404) and "RC-GLOBEX-1" not in answer.get_data(as_text=True)
        for name in view._actions_data:
            post(client, base + "action/", [("action", name), ("rowid", str(foreign.id))])
        cells = {c for r in _sheet(client.get(base + "export/xlsx/")) for c in r}
        assert "RC-GLOBEX-1" not in cells
    assert fresh(Order, foreign.id).status == "pending"


def test_menu_places_the_pages_by_role(client, login, world):
    login("customer")
    menu = client.get("/admin/").get_data(as_text=True)
    for url in ("/admin/renewal_center/", "/admin/order_record/", "/admin/recharge_record/"):
        assert f'href="{url}"' in menu
    assert 'href="/admin/order_management/"' not in menu
    login.logout()
    login("finance")
    menu = client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/order_management/"' in menu and 'href="/admin/renewal_center/"' in menu
    assert 'href="/admin/order_record/"' not in menu


def test_lists_name_the_currency_in_the_readers_language(client, login, world):
    """A list's currency column reads like its filter (人民币), in the list and in its export."""
    world.users["customer"].locale = "zh_Hans_CN"
    db.session.commit()
    login("customer")
    post(client, "/admin/recharge_record/top-up/", {"company_id": str(world.acme.id), "currency": "CNY",
                                                     "amount": "10"})
    listed = page_text(client.get("/admin/recharge_record/"))
    assert orders_of(world.acme)[0].number in listed
    assert re.search(r'class="col-currency">\s*人民币\s*</td>', listed)
    assert not re.search(r'class="col-currency">\s*CNY\s*</td>', listed)
    exported = page_text(client.get("/admin/recharge_record/export/csv/"))
    assert "人民币" in exported.splitlines()[1]


def test_order_lines_show_quantity_and_unit_price_only_for_lines_of_several_units(client, login, world):
    """A device's renewal line is one unit: its unit price repeated its amount; a line of 5 seats shows both."""
    renewal = make_order(world.acme, "renewal", total="180.00")
    seats = make_order(world.acme, "seats", total="500.00")
    seats.lines[0].quantity, seats.lines[0].unit_price = 5, Decimal("100.00")
    db.session.commit()
    login("customer")
    one = page_text(client.get(f"/admin/renewal_center/order/{renewal.number}/"))
    assert "Unit price" not in one and "Quantity" not in one and "CN¥180.00" in one
    several = page_text(client.get(f"/admin/renewal_center/order/{seats.number}/"))
    cells = re.findall(r'<td class="text-right">([^<]*)</td>', several)
    assert "Quantity" in several and "Unit price" in several
    assert ["5", "CN¥100.00", "CN¥500.00"] == cells[:3]
