"""Seed 004: seats per edition, organizer accounts that take them, invitations, seat orders.

The rules are tested as functions; HTTP tests prove the wiring, roles, scope, mail and export.
"""
from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import select, update

from actions import DomainError, NotAllowed
from actions.orders import mark_paid, pay_with_balance
from actions.seats import (
    NoSeatLeft, activate_organizers, create_organizer, create_seat_order, deactivate_organizers, grant_seats,
    reinvite_organizers, remove_purchased_seats, seat_counts, seat_figures,
)
from actions.wallets import credit, wallet_for
from app import mail
from conftest import post, race
from models import (
    AuditEvent, Company, MemberAccount, Order, OrderLine, Package, PackageCategory, SeatQuota, User, db,
)

ORGANIZERS = "/admin/organizer/"
SEAT_ORDERS = "/admin/seat_order/"
TODAY = date(2024, 5, 15)
PRICES = {"enterprise": Decimal("300.00"), "standard": Decimal("200.00"), "basic": Decimal("100.00")}


pytestmark = pytest.mark.usefixtures("request_unless_client")  # actions run in a request


@pytest.fixture
def catalog(world):
    """A seat package on sale per product edition."""
    category = PackageCategory(code="SEAT", name="Seats", kind="seat")
    db.session.add(category)
    db.session.flush()
    packages = {}
    for edition, price in PRICES.items():
        packages[edition] = Package(code=f"SEAT-{edition.upper()}", name=f"{edition} seat", category_id=category.id,
                                    kind="seat", edition=edition, amount=price, pricing="per_year", currency="CNY")
    db.session.add_all(packages.values())
    db.session.commit()
    return packages


def users(world, name) -> User:
    return db.session.get(User, world.users[name].id)


def fund(company, amount: str) -> None:
    credit(db.session, wallet_for(db.session, company.id, "CNY"), Decimal(amount), "recharge",
           f"test:fund:{company.id}:{amount}")


def give_seats(world, company, edition: str, quantity: int, note: str = "test") -> Order:
    """Seats paid in cash, entered by sales (the same path as a real grant)."""
    order = grant_seats(db.session, users(world, "sales"), company, edition, quantity, note, TODAY)
    db.session.commit()
    return order


def quota(company, edition: str) -> tuple[int, int] | None:
    db.session.expire_all()
    row = db.session.scalar(select(SeatQuota).where(SeatQuota.company_id == company.id,
                                                    SeatQuota.edition == edition))
    return None if row is None else (row.purchased, row.used)


def organizer(world, email: str, edition: str = "enterprise", company=None, actor: str = "customer"):
    account = create_organizer(db.session, users(world, actor), company or world.acme, email, "Wei", "Zhang", edition)
    db.session.commit()
    return account


def account(login: str) -> MemberAccount:
    db.session.expire_all()
    return db.session.scalar(select(MemberAccount).where(MemberAccount.login == login))


# --- buying seats ---------------------------------------------------------------------------------

def test_a_seat_order_is_priced_from_the_catalog_and_paying_it_by_balance_adds_the_seats(world, catalog):
    fund(world.acme, "1600.00")
    order = create_seat_order(db.session, users(world, "customer"), world.acme, "enterprise", "3", " Spring -10% ")
    db.session.commit()
    line = db.session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))
    assert (order.kind, order.status, order.total, order.currency) == ("seats", "pending", Decimal("900.00"), "CNY")
    assert (line.edition, line.quantity, line.unit_price, line.package_id) == (
        "enterprise", 3, Decimal("300.00"), catalog["enterprise"].id)
    assert order.promotion == "Spring -10%" and order.number.startswith("SE")
    assert quota(world.acme, "enterprise") is None  # nothing until paid

    pay_with_balance(db.session, users(world, "customer"), order, TODAY)
    db.session.commit()

    assert quota(world.acme, "enterprise") == (3, 0)
    assert wallet_for(db.session, world.acme.id, "CNY").balance == Decimal("700.00")
    second = create_seat_order(db.session, users(world, "customer"), world.acme, "enterprise", 2)
    pay_with_balance(db.session, users(world, "customer"), second, TODAY)
    db.session.commit()
    assert quota(world.acme, "enterprise") == (5, 0)  # the same row, upserted


def test_paying_a_seat_order_online_adds_the_seats_once(world, catalog):
    order = create_seat_order(db.session, users(world, "customer"), world.north, "basic", 4)
    db.session.commit()
    assert mark_paid(db.session, order, "alipay", "ali-1", Decimal("400.00"), "CNY", TODAY) is True
    db.session.commit()
    assert mark_paid(db.session, order, "alipay", "ali-1", Decimal("400.00"), "CNY", TODAY) is False
    db.session.commit()
    assert quota(world.north, "basic") == (4, 0)
    assert quota(world.acme, "basic") is None


@pytest.mark.parametrize("change", ["missing", "inactive", "wrong_kind"])
def test_a_seat_order_is_refused_without_an_active_seat_package(world, catalog, change):
    package = catalog["standard"]
    if change == "missing":
        db.session.delete(package)
    elif change == "inactive":
        package.active = False
    else:
        package.kind, package.edition = "vip", None
    db.session.commit()
    with pytest.raises(DomainError, match="No seat package of edition Standard is on sale"):
        create_seat_order(db.session, users(world, "customer"), world.acme, "standard", 1)


@pytest.mark.parametrize("edition, quantity, message", [
    ("gold", 1, "Product edition"), ("basic", 0, "Number of accounts"), ("basic", "2.5", "Number of accounts"),
    ("basic", 10_001, "Number of accounts"), ("basic", "²", "Number of accounts"), ("basic", "9" * 40, "Number of accounts"),
])
def test_a_seat_order_checks_edition_and_quantity(world, catalog, edition, quantity, message):
    with pytest.raises(DomainError, match=message):
        create_seat_order(db.session, users(world, "customer"), world.acme, edition, quantity)


def test_a_quantity_typed_in_full_width_digits_is_that_number(world, catalog):
    """订单账号数 typed as ２ with a Chinese input method is 2 seats (superscripts and the like are still refused)."""
    order = create_seat_order(db.session, users(world, "customer"), world.acme, "basic", "２")
    assert [line.quantity for line in order.lines] == [2]


def test_customers_cannot_buy_seats_for_other_companies(world, catalog):
    with pytest.raises(DomainError, match="Choose one of your companies"):
        create_seat_order(db.session, users(world, "customer"), world.globex, "basic", 1)
    with pytest.raises(DomainError, match="Choose one of your companies"):
        create_seat_order(db.session, users(world, "north"), world.acme, "basic", 1)  # the parent is not theirs


def test_sales_grants_seats_paid_in_cash_and_it_is_audited(world, catalog):
    order = give_seats(world, world.globex, "enterprise", 2, note="receipt 0042")
    order = db.session.get(Order, order.id)
    assert (order.status, order.payment_method, order.created_by_id, order.note) == (
        "paid", "cash", world.users["sales"].id, "receipt 0042")
    assert order.total == Decimal("600.00")
    assert quota(world.globex, "enterprise") == (2, 0)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "grant"))
    assert event.actor_name == "sales" and f",{order.id}," in event.ids and "receipt 0042" in event.summary
    with pytest.raises(NotAllowed):
        grant_seats(db.session, users(world, "customer"), world.acme, "basic", 1, "free seats", TODAY)
    with pytest.raises(DomainError, match="Note is required"):
        grant_seats(db.session, users(world, "sales"), world.acme, "basic", 1, "  ", TODAY)


def test_taking_a_seat_order_back_removes_only_free_seats(world, catalog):
    """remove_purchased_seats undoes a seat order (what a refund of one must do): never seats in use."""
    order = give_seats(world, world.acme, "basic", 2)
    organizer(world, "a@acme.example", "basic")
    with pytest.raises(DomainError, match="fewer than 2 Basic seats are free; deactivate organizers first"):
        remove_purchased_seats(db.session, db.session.get(Order, order.id), db.session.get(Order, order.id).lines)
    db.session.rollback()
    assert quota(world.acme, "basic") == (2, 1)
    deactivate_organizers(db.session, users(world, "customer"), [account("a@acme.example")])
    remove_purchased_seats(db.session, db.session.get(Order, order.id), db.session.get(Order, order.id).lines)
    db.session.commit()
    assert quota(world.acme, "basic") == (0, 0)


# --- organizer accounts ----------------------------------------------------------------------------

def test_creating_an_organizer_takes_a_seat_and_records_the_invitation(world, catalog):
    give_seats(world, world.acme, "enterprise", 2)
    before = datetime.now(timezone.utc)
    created = organizer(world, "Li.Na@Example.ORG", "enterprise")
    row = account(created.login)
    assert row.login == row.email == "Li.Na@example.org"
    assert (row.first_name, row.last_name, row.seat_edition, row.invitation_state, row.active) == (
        "Wei", "Zhang", "enterprise", "sent", True)
    assert row.invited_at >= before - timedelta(seconds=1)
    assert quota(world.acme, "enterprise") == (2, 1)
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.model == "member_account",
                                                      AuditEvent.action == "create")) is not None


def test_no_seat_left_refuses_the_organizer_and_creates_nothing(world, catalog):
    give_seats(world, world.acme, "enterprise", 1)
    organizer(world, "first@acme.example")
    with pytest.raises(NoSeatLeft, match="No Enterprise seat left for Acme Logistics"):
        create_organizer(db.session, users(world, "customer"), world.acme, "second@acme.example", "A", "B",
                         "enterprise")
    db.session.rollback()
    with pytest.raises(NoSeatLeft, match="Acme Logistics has no Basic seats: buy seats first"):  # never bought
        create_organizer(db.session, users(world, "customer"), world.acme, "second@acme.example", "A", "B", "basic")
    db.session.rollback()
    assert account("second@acme.example") is None
    assert quota(world.acme, "enterprise") == (1, 1)
    # A subsidiary's seats are its own: North has none of Acme's.
    with pytest.raises(NoSeatLeft):
        create_organizer(db.session, users(world, "customer"), world.north, "n@acme.example", "A", "B", "enterprise")


@pytest.mark.parametrize("field, value, message", [
    ("email", "not-an-email", "not a valid email address"),
    ("email", "", "Account email is required"),
    ("first_name", "", "First name is required"),
    ("last_name", "x" * 61, "Last name: at most 60 characters"),
    ("edition", "gold", "Product edition"),
])
def test_organizer_fields_are_checked_before_a_seat_is_taken(world, catalog, field, value, message):
    give_seats(world, world.acme, "enterprise", 1)
    values = {"email": "ok@acme.example", "first_name": "Wei", "last_name": "Zhang", "edition": "enterprise",
              field: value}
    with pytest.raises(DomainError, match=message):
        create_organizer(db.session, users(world, "customer"), world.acme, **values)
    db.session.rollback()
    assert quota(world.acme, "enterprise") == (1, 0)


def test_an_existing_login_is_refused_without_taking_a_seat(world, catalog):
    give_seats(world, world.acme, "enterprise", 2)
    organizer(world, "taken@acme.example")
    with pytest.raises(DomainError, match="taken@acme.example exists already"):
        create_organizer(db.session, users(world, "customer"), world.acme, "taken@acme.example", "A", "B", "enterprise")
    db.session.rollback()
    assert quota(world.acme, "enterprise") == (2, 1)


def test_an_existing_login_in_another_letter_case_is_refused_without_taking_a_seat(world, catalog):
    """Zhang.San@Example.com is the mailbox zhang.san@example.com already has: no second organizer, no second seat."""
    give_seats(world, world.acme, "enterprise", 2)
    organizer(world, "zhang.san@acme.example")
    with pytest.raises(DomainError, match="exists already"):
        create_organizer(db.session, users(world, "customer"), world.acme, "Zhang.San@Acme.example", "A", "B",
                         "enterprise")
    db.session.rollback()
    assert quota(world.acme, "enterprise") == (2, 1)


def test_organizers_of_other_companies_are_refused(world, catalog):
    give_seats(world, world.globex, "enterprise", 2)
    with pytest.raises(DomainError, match="Choose one of your companies"):
        create_organizer(db.session, users(world, "customer"), world.globex, "x@acme.example", "A", "B", "enterprise")
    foreign = organizer(world, "boss@globex.example", company=world.globex, actor="globex")
    foreign = account(foreign.login)
    for operation in (reinvite_organizers, deactivate_organizers, activate_organizers):
        result = operation(db.session, users(world, "customer"), [foreign])
        assert not result.changed and result.refused == (("boss@globex.example", "outside your companies"),)
    db.session.commit()
    assert account("boss@globex.example").active and quota(world.globex, "enterprise") == (2, 1)
    with pytest.raises(NotAllowed):
        create_organizer(db.session, users(world, "finance"), world.acme, "f@acme.example", "A", "B", "enterprise")


def test_two_sessions_racing_for_the_last_seat_give_it_to_exactly_one(app, world, catalog):
    give_seats(world, world.acme, "enterprise", 2)
    organizer(world, "first@acme.example")
    customer_id, acme_id = world.users["customer"].id, world.acme.id
    db.session.remove()

    def attempt(email):
        def create():
            create_organizer(db.session, db.session.get(User, customer_id), db.session.get(Company, acme_id),
                             email, "Wei", "Zhang", "enterprise")
        return create

    outcomes, errors = race(app, [attempt("racer1@acme.example"), attempt("racer2@acme.example")],
                            {NoSeatLeft: "no seat"})

    assert not errors, errors
    assert sorted(outcomes) == ["no seat", "won"]
    assert quota(world.acme, "enterprise") == (2, 2)
    created = db.session.scalars(select(MemberAccount.login).where(MemberAccount.login.like("racer%"))).all()
    assert len(created) == 1


def test_the_used_count_can_never_exceed_the_purchased_count(world, catalog):
    """The database's CHECK backs the conditional UPDATE."""
    give_seats(world, world.acme, "basic", 1)
    with pytest.raises(Exception):
        db.session.execute(update(SeatQuota).values(used=SeatQuota.purchased + 1))
        db.session.flush()
    db.session.rollback()


def test_deactivating_frees_the_seat_once(world, catalog):
    give_seats(world, world.acme, "enterprise", 1)
    organizer(world, "only@acme.example")
    customer = users(world, "customer")

    first = deactivate_organizers(db.session, customer, [account("only@acme.example")])
    db.session.commit()
    again = deactivate_organizers(db.session, users(world, "customer"), [account("only@acme.example")])
    db.session.commit()

    assert first.changed == ("only@acme.example",) and not first.refused
    assert not again.changed and again.refused == (("only@acme.example", "deactivated already"),)
    assert quota(world.acme, "enterprise") == (1, 0)
    assert account("only@acme.example").active is False
    organizer(world, "next@acme.example")  # the freed seat is usable again
    assert quota(world.acme, "enterprise") == (1, 1)


def test_reactivating_takes_a_seat_or_is_refused(world, catalog):
    give_seats(world, world.acme, "enterprise", 1)
    organizer(world, "one@acme.example")
    deactivate_organizers(db.session, users(world, "customer"), [account("one@acme.example")])
    db.session.commit()
    organizer(world, "two@acme.example")  # takes the freed seat

    refused = activate_organizers(db.session, users(world, "customer"), [account("one@acme.example")])
    db.session.commit()
    assert refused.refused == (("one@acme.example", "no Enterprise seat left"),)
    assert account("one@acme.example").active is False

    deactivate_organizers(db.session, users(world, "customer"), [account("two@acme.example")])
    result = activate_organizers(db.session, users(world, "customer"), [account("one@acme.example")])
    db.session.commit()
    assert result.changed == ("one@acme.example",)
    assert account("one@acme.example").active is True and quota(world.acme, "enterprise") == (1, 1)


def test_reinvite_marks_active_unaccepted_organizers_invited_now(world, catalog):
    give_seats(world, world.acme, "enterprise", 3)
    for email in ("a@acme.example", "b@acme.example", "c@acme.example"):
        organizer(world, email)
    deactivate_organizers(db.session, users(world, "customer"), [account("b@acme.example")])
    account("c@acme.example").invitation_state = "accepted"
    db.session.commit()
    later = datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc)

    result = reinvite_organizers(db.session, users(world, "customer"),
                                 [account(x) for x in ("a@acme.example", "b@acme.example", "c@acme.example")], later)
    db.session.commit()

    assert result.changed == ("a@acme.example",)
    assert dict(result.refused) == {"b@acme.example": "deactivated",
                                    "c@acme.example": "the invitation was accepted already"}
    assert account("a@acme.example").invited_at == later
    assert account("b@acme.example").invited_at != later


# --- the seats shown, and the running maximum -------------------------------------------------------

def test_seat_counts_show_what_is_left_per_company_and_edition(world, catalog):
    give_seats(world, world.acme, "enterprise", 1)
    give_seats(world, world.acme, "basic", 2)
    give_seats(world, world.north, "basic", 5)
    give_seats(world, world.globex, "basic", 9)
    organizer(world, "n1@acme.example", "basic", company=world.north)
    counts = [(c.company.name, c.edition, c.left) for c in seat_counts(db.session, users(world, "customer"))]
    assert counts == [("Acme Logistics", "enterprise", 1), ("Acme Logistics", "basic", 2), ("Acme North", "basic", 4)]
    north = [(c.company.name, c.edition, c.left) for c in seat_counts(db.session, users(world, "north"))]
    assert north == [("Acme North", "basic", 4)]


def _set_created(order: Order, when: datetime) -> None:
    db.session.execute(update(Order).where(Order.id == order.id).values(created_at=when))
    db.session.commit()


def test_running_maximum_is_cumulative_per_company_and_edition(world, catalog):
    day = datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)
    plan = [(world.acme, "standard", 10), (world.acme, "basic", 3), (world.acme, "standard", 5),
            (world.north, "standard", 7), (world.acme, "standard", 1)]
    orders = []
    for i, (company, edition, quantity) in enumerate(plan):
        order = give_seats(world, company, edition, quantity)
        _set_created(order, day + timedelta(days=i))
        orders.append(order)
    unpaid = create_seat_order(db.session, users(world, "customer"), world.acme, "standard", 100)
    db.session.commit()
    _set_created(unpaid, day + timedelta(days=3, hours=1))
    # Two orders at the same instant are ordered by id.
    same_time = give_seats(world, world.acme, "standard", 2)
    _set_created(same_time, day + timedelta(days=4))

    figures = seat_figures(db.session, [o.id for o in orders] + [unpaid.id, same_time.id])

    assert [figures[o.id][2] for o in orders] == [10, 3, 15, 7, 16]
    assert figures[same_time.id] == ("standard", 2, 18)
    assert figures[unpaid.id] == ("standard", 100, None)  # not paid: no seats, no maximum
    # Asking for one order still sums everything before it.
    assert seat_figures(db.session, [orders[4].id]) == {orders[4].id: ("standard", 1, 16)}


# --- HTTP: pages, mail, actions, filters, export ----------------------------------------------------

def test_organizer_page_shows_seats_left_and_creating_mails_the_invitation(client, login, world, catalog):
    give_seats(world, world.acme, "enterprise", 1)
    give_seats(world, world.acme, "basic", 2)
    login("customer")
    page = client.get(ORGANIZERS).get_data(as_text=True)
    assert "Enterprise: 1 left" in page and "Basic: 2 left" in page
    form = client.get(ORGANIZERS + "new/").get_data(as_text=True)
    assert 'name="csrf_token"' in form and "Enterprise: 1 left" in form

    def set_locale(locale):
        db.session.execute(update(User).where(User.id == world.users["customer"].id).values(locale=locale))
        db.session.commit()

    fields = {"edition": "enterprise", "company_id": str(world.acme.id)}
    with mail.record_messages() as outbox:
        set_locale("zh_Hans_CN")  # the invitation goes out in the language of the request
        answer = post(client, ORGANIZERS + "new/", {**fields, "email": "li@acme.example", "last_name": "Li",
                                                   "first_name": "<b>Na"}, follow_redirects=True)
        assert "li@acme.example" in answer.get_data(as_text=True)
        set_locale(None)
        refused = post(client, ORGANIZERS + "new/", {**fields, "email": "wu@acme.example", "last_name": "Wu",
                                                    "first_name": "Yi"})
        assert "No Enterprise seat left for Acme Logistics" in refused.get_data(as_text=True)
    assert len(outbox) == 1
    message = outbox[0]
    assert message.recipients == ["li@acme.example"]
    assert message.subject == "您已受邀成为 Acme Logistics 的组织者"
    assert "您的登录名：li@acme.example" in message.body and "<b>Na" in message.body
    assert "&lt;b&gt;Na" in message.html and "<b>Na" not in message.html
    assert account("wu@acme.example") is None
    assert quota(world.acme, "enterprise") == (1, 1)
    listing = client.get(ORGANIZERS).get_data(as_text=True)
    assert "Enterprise: 0 left" in listing and "&lt;b&gt;Na" in listing


def _edition_options(page: str) -> list[tuple[str, bool]]:
    select = page.split('id="rd-edition"')[1].split("</select>")[0]
    return [(code, bool(chosen)) for code, chosen in re.findall(r'<option value="(\w+)"( selected)?>', select)]


def test_organizer_form_offers_the_editions_bought_with_one_that_has_a_seat_chosen(client, login, world, catalog):
    """4. 创建组织者账号: 若您购买多种版本的话，需在“产品类型”中选择所对应产品 — the editions bought, not one
    the company never bought preselected (which could only be refused)."""
    login("customer")
    assert _edition_options(client.get(ORGANIZERS + "new/").get_data(as_text=True)) == [
        ("enterprise", True), ("standard", False), ("basic", False)]  # none bought: every edition, and the hint
    give_seats(world, world.acme, "basic", 2)
    assert _edition_options(client.get(ORGANIZERS + "new/").get_data(as_text=True)) == [("basic", True)]
    give_seats(world, world.acme, "enterprise", 1)
    give_seats(world, world.north, "standard", 1)
    organizer = create_organizer(db.session, world.users["customer"], world.acme, "a@acme.example", "A", "Li",
                                 "enterprise")
    db.session.commit()
    assert organizer.seat_edition == "enterprise"
    assert _edition_options(client.get(ORGANIZERS + "new/").get_data(as_text=True)) == [
        ("enterprise", False), ("standard", False), ("basic", True)]  # Acme's enterprise seat is taken


def test_creating_an_organizer_needs_the_csrf_token(client, login, world, catalog):
    give_seats(world, world.acme, "enterprise", 1)
    login("customer")
    answer = client.post(ORGANIZERS + "new/", data={"email": "li@acme.example", "last_name": "Li", "first_name": "Na",
                                                     "edition": "enterprise", "company_id": str(world.acme.id)})
    assert answer.status_code == 400
    assert quota(world.acme, "enterprise") == (1, 0)


def test_creating_an_organizer_in_another_company_is_refused_over_http(client, login, world, catalog):
    give_seats(world, world.globex, "enterprise", 1)
    login("customer")
    page = post(client, ORGANIZERS + "new/", {"email": "x@acme.example", "last_name": "X", "first_name": "Y",
                                             "edition": "enterprise", "company_id": str(world.globex.id)})
    assert "Choose one of your companies" in page.get_data(as_text=True)
    assert quota(world.globex, "enterprise") == (1, 0) and account("x@acme.example") is None


def test_reinvite_action_sends_the_invitation_again(client, login, world, catalog):
    give_seats(world, world.acme, "enterprise", 2)
    first = organizer(world, "a@acme.example").id
    second = organizer(world, "b@acme.example").id
    old = datetime(2020, 1, 1, tzinfo=timezone.utc)
    db.session.execute(update(MemberAccount).values(invited_at=old))
    db.session.commit()
    login("customer")
    with mail.record_messages() as outbox:
        page = post(client, ORGANIZERS + "action/", [("action", "reinvite"), ("rowid", str(first)),
                                                     ("rowid", str(second))], follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "2 organizers marked as invited again" in text
    assert "Email sent to a@acme.example; b@acme.example." in text or \
        "Email sent to b@acme.example; a@acme.example." in text
    assert sorted(m.recipients[0] for m in outbox) == ["a@acme.example", "b@acme.example"]
    assert account("a@acme.example").invited_at > old and account("b@acme.example").invited_at > old


def test_deactivate_action_frees_one_seat_even_when_posted_twice(client, login, world, catalog):
    give_seats(world, world.acme, "enterprise", 2)
    one = organizer(world, "a@acme.example").id
    organizer(world, "b@acme.example")
    login("customer")
    post(client, ORGANIZERS + "action/", [("action", "deactivate"), ("rowid", str(one))])
    page = post(client, ORGANIZERS + "action/", [("action", "deactivate"), ("rowid", str(one))],
                follow_redirects=True).get_data(as_text=True)
    assert "a@acme.example (deactivated already)" in page
    assert quota(world.acme, "enterprise") == (2, 1)


def test_actions_on_foreign_organizers_change_nothing(client, login, world, catalog):
    give_seats(world, world.globex, "enterprise", 1)
    foreign = organizer(world, "boss@globex.example", company=world.globex, actor="globex").id
    login("customer")
    assert client.get(f"{ORGANIZERS}details/?id={foreign}").status_code in (302, 404)
    with mail.record_messages() as outbox:
        for name in ("reinvite", "deactivate"):
            page = post(client, ORGANIZERS + "action/", [("action", name), ("rowid", str(foreign))],
                        follow_redirects=True).get_data(as_text=True)
            assert f"#{foreign} (not found or outside your companies)" in page
    assert not outbox
    assert account("boss@globex.example").active and quota(world.globex, "enterprise") == (1, 1)
    assert "boss@globex.example" not in client.get(ORGANIZERS).get_data(as_text=True)


def test_the_organizer_list_leaves_out_plain_member_accounts(client, login, world, catalog):
    db.session.add(MemberAccount(company_id=world.acme.id, login="tupp01"))
    give_seats(world, world.acme, "basic", 1)
    organizer(world, "org@acme.example", "basic")
    login("customer")
    page = client.get(ORGANIZERS).get_data(as_text=True)
    assert "org@acme.example" in page and "tupp01" not in page


def test_buying_seats_over_http_leads_to_the_order_page_and_paying_adds_them(client, login, world, catalog):
    fund(world.acme, "500.00")
    db.session.commit()
    login("customer")
    page = client.get(SEAT_ORDERS + "buy/").get_data(as_text=True)
    assert "CN¥300.00 per account" in page
    answer = post(client, SEAT_ORDERS + "buy/", {"company_id": str(world.acme.id), "edition": "basic",
                                                "quantity": "3", "promotion": "Launch"})
    assert answer.status_code == 302
    order = db.session.scalar(select(Order).where(Order.kind == "seats", Order.company_id == world.acme.id))
    assert (order.total, order.promotion, order.status) == (Decimal("300.00"), "Launch", "pending")
    assert order.number in answer.headers["Location"]
    post(client, f"/admin/renewal_center/order/{order.number}/pay/", {"method": "balance"})
    assert quota(world.acme, "basic") == (3, 0)
    listing = client.get(SEAT_ORDERS).get_data(as_text=True)
    assert order.number in listing and "Account increase" in listing


def test_seat_order_message_reads_the_total_in_the_readers_format(client, login, world, catalog):
    login("customer")
    page = post(client, SEAT_ORDERS + "buy/", {"company_id": str(world.acme.id), "edition": "basic", "quantity": "12"},
                follow_redirects=True).get_data(as_text=True)
    assert "created: 1,200.00 CNY. Pay it to add the seats." in page


def test_sales_grants_seats_over_http_and_customers_may_not(client, login, world, catalog):
    login("sales")
    shown = re.search(r'name="quote_hash" value="(\w+)"', client.get("/admin/seat_grant/").get_data(as_text=True))
    page = post(client, "/admin/seat_grant/", {"company_id": str(world.globex.id), "edition": "enterprise",
                                              "quantity": "2", "note": "cash receipt 7", "quote_hash": shown[1]},
                follow_redirects=True)
    assert "paid in cash" in page.get_data(as_text=True)
    assert quota(world.globex, "enterprise") == (2, 0)
    order = db.session.scalar(select(Order).where(Order.note == "cash receipt 7"))
    recent = client.get("/admin/seat_grant/").get_data(as_text=True)
    assert order.number in recent and "Globex &lt;b&gt;Trading&lt;/b&gt;" in recent
    login.logout()
    login("customer")
    assert post(client, "/admin/seat_grant/", {"company_id": str(world.acme.id), "edition": "basic",
                                              "quantity": "2", "note": "x"}).status_code == 403
    assert quota(world.acme, "basic") is None


def _seat_order_filter(app, name: str, operation: str) -> str:
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "seat_order")
    for arg, (index, flt) in view._filter_args.items():
        if str(flt.name) == name and str(flt.operation()) == operation:
            return f"flt0_{arg}"
    raise AssertionError(f"no filter {name} {operation}")


@pytest.fixture
def seat_history(world, catalog):
    """Acme: four account increases over three months, one of North, one of Globex."""
    plan = [(world.acme, "standard", 10, datetime(2024, 1, 5, 10, tzinfo=timezone.utc), "New year"),
            (world.acme, "standard", 5, datetime(2024, 2, 10, 10, tzinfo=timezone.utc), None),
            (world.acme, "basic", 1, datetime(2024, 2, 20, 23, 59, tzinfo=timezone.utc), "=HYPERLINK(\"x\")"),
            (world.north, "standard", 4, datetime(2024, 3, 1, 0, 0, tzinfo=timezone.utc), "New year"),
            (world.globex, "standard", 50, datetime(2024, 3, 2, tzinfo=timezone.utc), "Globex deal")]
    orders = []
    for company, edition, quantity, when, promotion in plan:
        order = grant_seats(db.session, users(world, "sales"), company, edition, quantity, "cash", TODAY, promotion)
        db.session.commit()
        _set_created(order, when)
        orders.append(db.session.get(Order, order.id))
    return orders


def _rows(page: str, orders) -> list[str]:
    return [o.number for o in orders if o.number in page]


def test_seat_order_list_filters_by_date_range_number_and_promotion(app, client, login, world, seat_history):
    login("customer")
    page = client.get(SEAT_ORDERS).get_data(as_text=True)
    assert _rows(page, seat_history) == [o.number for o in seat_history[:4]]
    assert "Globex deal" not in page  # neither the foreign order nor its promotion as a filter option

    between = _seat_order_filter(app, "Order date", "between")
    page = client.get(f"{SEAT_ORDERS}?{between}=2024-02-01+to+2024-02-20").get_data(as_text=True)
    assert _rows(page, seat_history) == [seat_history[1].number, seat_history[2].number]

    number = _seat_order_filter(app, "Order number", "contains")
    page = client.get(f"{SEAT_ORDERS}?{number}={seat_history[1].number}").get_data(as_text=True)
    assert _rows(page, seat_history) == [seat_history[1].number]

    promotion = _seat_order_filter(app, "Promotion", "equals")
    page = client.get(f"{SEAT_ORDERS}?{promotion}=New+year").get_data(as_text=True)
    assert _rows(page, seat_history) == [seat_history[0].number, seat_history[3].number]
    assert _rows(client.get(f"{SEAT_ORDERS}?{promotion}=Globex+deal").get_data(as_text=True), seat_history) == []


def test_seat_order_export_has_the_running_maximum_and_no_formulas(client, login, world, seat_history):
    login("customer")
    answer = client.get(SEAT_ORDERS + "export/xlsx/?sort=2")  # by order date, ascending
    assert answer.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(answer.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert header[:6] == ("No.", "Customer", "Order date", "Order type", "Accounts ordered", "Maximum accounts so far")
    body = {row[header.index("Order number")]: row for row in rows[1:]}
    assert set(body) == {o.number for o in seat_history[:4]}
    figures = {number: (row[header.index("Accounts ordered")], row[header.index("Maximum accounts so far")],
                        row[header.index("Product edition")]) for number, row in body.items()}
    assert figures == {
        seat_history[0].number: (10, 10, "Standard"),
        seat_history[1].number: (5, 15, "Standard"),
        seat_history[2].number: (1, 1, "Basic"),
        seat_history[3].number: (4, 4, "Standard"),
    }
    promotion = body[seat_history[2].number][header.index("Promotion")]
    assert promotion == "'=HYPERLINK(\"x\")"  # quoted text, never a formula
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
    assert body[seat_history[3].number][header.index("Customer type")] == "Subsidiary"
    assert body[seat_history[0].number][header.index("Customer type")] == "Group"


def test_seat_orders_of_other_companies_are_not_shown_or_exported(client, login, world, seat_history):
    login("north")
    page = client.get(SEAT_ORDERS).get_data(as_text=True)
    assert _rows(page, seat_history) == [seat_history[3].number]
    globex = seat_history[4]
    assert client.get(f"{SEAT_ORDERS}details/?id={globex.id}").status_code in (302, 404)
    answer = client.get(SEAT_ORDERS + "export/xlsx/")
    cells = {c for r in openpyxl.load_workbook(io.BytesIO(answer.data)).active.iter_rows(values_only=True) for c in r}
    assert globex.number not in cells and seat_history[0].number not in cells


@pytest.mark.parametrize("path", [ORGANIZERS, ORGANIZERS + "new/", SEAT_ORDERS, SEAT_ORDERS + "buy/"])
def test_staff_other_than_admin_may_not_open_customer_seat_pages(client, login, world, path):
    login("finance")
    assert client.get(path).status_code == 403


def test_seat_counts_ignore_other_tenants_in_the_database(world, catalog):
    give_seats(world, world.globex, "basic", 3)
    assert seat_counts(db.session, users(world, "customer")) == []
    assert quota(world.globex, "basic") == (3, 0)
