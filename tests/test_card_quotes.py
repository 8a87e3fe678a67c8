"""销售报价 (seed 002 销售管理): a distributor's quote to a customer at negotiated prices — exact totals, the
draft → sent → accepted / declined / expired / cancelled states, accepting converts each line into a card
order at the quoted price exactly once (even with accepts at once), and only the seller's tree sees it."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from actions import DomainError, NotAllowed
from actions.card_quotes import (
    LineInput, accept_quote, cancel_quote, decline_quote, expire_quotes, save_quote, send_quote,
)
from actions.cards import review_verification, submit_verification
from conftest import confirm_post, make_company, make_user, post
from models import AuditEvent, CardCustomer, CardOrder, CardQuote, Order, Package, User, db
from test_no_english import english_in, read

pytest_plugins = ("card_fixtures",)

TODAY = date.today()
ID_NUMBER = "110101199003074512"  # card_fixtures' (imported as a plugin, not a module)
LIST = "/admin/cardquote/"


@pytest.fixture
def quotes(cards, vault):
    """The card world, a second plan, distributor C outside A's tree, and A's saved customer."""
    s = db.session
    plan = Package(code="SIM-59", name="59 plan", category_id=cards["package"].category_id, kind="card",
                   amount=D("59.00"), pricing="per_month", currency="CNY")
    c = make_company("Distributor C")
    c_admin = make_user("c_admin", "customer_admin", c)
    sales = make_user("sales", "sales")
    s.add(plan)
    s.flush()
    profile = submit_verification(s, c_admin, vault, c, legal_name="Gamma Ltd", id_type="resident_id",
                                  id_number=ID_NUMBER)
    review_verification(s, cards["users"]["admin"], profile, approve=True)
    customer = CardCustomer(company_id=cards["a"].id, name="Shenzhen Fleet Co", phone="13800000000",
                            address="Nanshan, Shenzhen")
    s.add(customer)
    s.commit()
    return {**cards, "plan": plan, "c": c, "customer": customer,
            "users": {**cards["users"], "c_admin": c_admin, "sales": sales}}


def _draft(q, actor="a_admin", valid_until=None, lines=None, **kwargs) -> CardQuote:
    quote = save_quote(db.session, q["users"][actor], seller=q["a"], customer=q["customer"],
                       valid_until=valid_until or TODAY + timedelta(days=14), today=TODAY,
                       lines=lines or [LineInput(q["package"], 3, "33.33", "12.5"), LineInput(q["plan"], 7)],
                       **kwargs)
    db.session.commit()
    return quote


def _sent(q, **kwargs) -> CardQuote:
    quote = _draft(q, **kwargs)
    send_quote(db.session, q["users"]["a_admin"], quote, TODAY)
    db.session.commit()
    return quote


# --- amounts ---------------------------------------------------------------------------------------


def test_totals_are_exact_in_minor_units(quotes):
    quote = _draft(quotes)
    first, second = quote.lines
    # 3 × 33.33 = 99.99; 12.5 % of it is 12.49875 → 12.50 (half up, once); net 87.49.
    assert (first.gross, first.discount, first.net) == (D("99.99"), D("12.50"), D("87.49"))
    assert (second.unit_price, second.gross, second.discount, second.net) == (D("59.00"), D("413.00"), 0, D("413.00"))
    assert quote.total == D("500.49") and quote.total_minor == 50049 == first.net_minor + second.net_minor
    assert quote.number.startswith(f"QT{TODAY:%Y%m%d}-") and quote.customer_name == "Shenzhen Fleet Co"
    assert quote.customer_address == "Nanshan, Shenzhen" and quote.status == "draft"


def test_the_database_refuses_impossible_lines(quotes):
    quote = _draft(quotes)
    line = quote.lines[0]
    for column, value in (("quantity", 0), ("net_minor", line.net_minor + 1), ("unit_price_minor", -1),
                          ("discount_bp", 10000)):
        with pytest.raises(IntegrityError):
            with db.session.begin_nested():
                db.session.execute(db.update(type(line)).where(type(line).id == line.id).values({column: value}))
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.execute(db.update(CardQuote).where(CardQuote.id == quote.id).values(status="won"))


@pytest.mark.parametrize("line, words", [
    (LineInput(None, 1), "Line 1"),
    (LineInput("pkg", 0), "Line 1: quantity"),
    (LineInput("pkg", 2, "12.345"), "Line 1: unit price"),
    (LineInput("pkg", 2, "", "100"), "Line 1: the discount must be below 100"),
    (LineInput("pkg", 2, "abc"), "Line 1: unit price"),
])
def test_bad_lines_are_refused_by_line_and_field(quotes, line, words):
    if line.package == "pkg":
        line = LineInput(quotes["package"], line.quantity, line.unit_price, line.discount_percent)
    with pytest.raises(DomainError) as refused:
        _draft(quotes, lines=[line])
    assert words in str(refused.value)
    db.session.rollback()
    assert db.session.scalar(select(func.count(CardQuote.id))) == 0


def test_a_past_valid_until_and_a_missing_customer_are_refused(quotes):
    with pytest.raises(DomainError, match="Valid until"):
        _draft(quotes, valid_until=TODAY - timedelta(days=1))
    db.session.rollback()
    with pytest.raises(DomainError, match="Customer"):
        save_quote(db.session, quotes["users"]["a_admin"], seller=quotes["a"], valid_until=TODAY, today=TODAY,
                   lines=[LineInput(quotes["package"], 1)])


def test_a_draft_is_edited_lines_added_and_removed(quotes):
    quote = _draft(quotes)
    save_quote(db.session, quotes["users"]["a_admin"], quote=quote, seller=quotes["a"], customer_name="Walk-in",
               customer_phone="139", valid_until=TODAY + timedelta(days=3), today=TODAY,
               lines=[LineInput(quotes["plan"], 2, "50"), LineInput(quotes["package"], 1),
                      LineInput(quotes["package"], 4, "30.00", "5")])
    db.session.commit()
    db.session.expire_all()
    assert [(line.package.code, line.quantity, line.net) for line in quote.lines] == [
        ("SIM-59", 2, D("100.00")), ("SIM-39", 1, D("39.00")), ("SIM-39", 4, D("114.00"))]
    assert quote.total == D("253.00") and quote.customer_name == "Walk-in" and quote.customer_id is None
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.model == "card_quote")
                                 .order_by(AuditEvent.id)).all()
    assert actions == ["create", "edit"]


# --- states ----------------------------------------------------------------------------------------


def test_illegal_transitions_are_refused_naming_the_quote(quotes):
    u = quotes["users"]["a_admin"]
    quote = _draft(quotes)
    with pytest.raises(DomainError, match=f"{quote.number} is Draft: only a sent quote can be accepted"):
        accept_quote(db.session, u, quote, TODAY)
    with pytest.raises(DomainError, match=f"{quote.number} is Draft: only a sent quote can be declined"):
        decline_quote(db.session, u, quote)
    send_quote(db.session, u, quote, TODAY)
    db.session.commit()
    with pytest.raises(DomainError, match=f"{quote.number} is Sent: only a draft can be sent"):
        send_quote(db.session, u, quote, TODAY)
    with pytest.raises(DomainError, match=f"{quote.number} is Sent: only a draft can be edited"):
        save_quote(db.session, u, quote=quote, seller=quotes["a"], customer_name="X", valid_until=TODAY,
                   today=TODAY, lines=[LineInput(quotes["package"], 1)])
    db.session.rollback()
    decline_quote(db.session, u, quote)
    db.session.commit()
    with pytest.raises(DomainError, match=f"{quote.number} is Declined: only a draft or a sent quote can be "
                                          "cancelled"):
        cancel_quote(db.session, u, quote)
    db.session.rollback()
    other = _draft(quotes)
    cancel_quote(db.session, u, other)
    db.session.commit()
    assert (quote.status, other.status) == ("declined", "cancelled")
    events = db.session.scalars(select(AuditEvent.action).where(AuditEvent.model == "card_quote")
                                .order_by(AuditEvent.id)).all()
    assert events == ["create", "send", "decline", "create", "cancel"]


def test_accept_creates_orders_at_the_quoted_price_linked_to_the_lines(quotes):
    quote = _sent(quotes)
    orders = accept_quote(db.session, quotes["users"]["a_admin"], quote, TODAY)
    db.session.commit()
    assert quote.status == "accepted" and quote.closed_at is not None
    first, second = orders
    assert [o.quote_line_id for o in orders] == [line.id for line in quote.lines]
    assert first.order.status == "pending" and first.quantity == 3 and first.customer_id == quotes["customer"].id
    assert {line.unit_price for line in first.order.lines} == {D("33.33")}  # the negotiated price, not 39.00
    assert first.order.total == quote.lines[0].net == D("87.49")
    assert sum(line.discount for line in first.order.lines) == D("12.50")  # allocated over the 3 cards
    assert second.order.total == D("413.00") and {line.unit_price for line in second.order.lines} == {D("59.00")}
    assert sum(o.order.total for o in orders) == quote.total
    assert first.shipping_address == "Nanshan, Shenzhen"
    summary = db.session.scalar(select(AuditEvent.summary).where(AuditEvent.action == "accept"))
    assert first.order.number in summary and second.order.number in summary


def test_a_quote_is_converted_once(quotes):
    quote = _sent(quotes)
    accept_quote(db.session, quotes["users"]["a_admin"], quote, TODAY)
    db.session.commit()
    with pytest.raises(DomainError, match=f"{quote.number} is Accepted: only a sent quote can be accepted"):
        accept_quote(db.session, quotes["users"]["a_admin"], quote, TODAY)
    db.session.rollback()
    assert db.session.scalar(select(func.count(CardOrder.id))) == 2
    # The database itself refuses a second order on a converted line.
    existing = db.session.scalars(select(CardOrder)).first()
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.add(CardOrder(order_id=db.session.scalar(select(Order.id).where(Order.id != existing.order_id)),
                                     seller_company_id=quotes["a"].id, package_id=quotes["package"].id, quantity=1,
                                     quote_line_id=existing.quote_line_id))
            db.session.flush()


def test_accepts_at_once_convert_the_quote_once(quotes):
    from tests.test_cards import in_threads

    quote_id, actor_id = _sent(quotes).id, quotes["users"]["a_admin"].id

    def accept(session):
        return accept_quote(session, session.get(User, actor_id), session.get(CardQuote, quote_id), TODAY)

    outcomes = in_threads(4, accept)
    done = [o for o in outcomes if isinstance(o, list)]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(done) == 1 and len(refused) == 3, outcomes
    db.session.expire_all()
    assert db.session.scalar(select(func.count(CardOrder.id))) == 2
    assert db.session.scalar(select(func.count(Order.id))) == 2


def test_an_expired_quote_cannot_be_accepted(quotes, app):
    quote = _sent(quotes, valid_until=TODAY)
    tomorrow = TODAY + timedelta(days=1)
    with pytest.raises(DomainError, match=f"{quote.number} was valid until {TODAY.isoformat()}"):
        accept_quote(db.session, quotes["users"]["a_admin"], quote, tomorrow)
    db.session.rollback()
    assert db.session.scalar(select(func.count(CardOrder.id))) == 0
    result = app.test_cli_runner().invoke(args=["cards", "expire-quotes", "--today", tomorrow.isoformat()])
    assert result.exit_code == 0 and "1 quotes expired" in result.output, result.output
    db.session.expire_all()
    assert quote.status == "expired"
    assert expire_quotes(db.session, tomorrow) == []  # safe to repeat
    with pytest.raises(DomainError, match="is Expired: only a sent quote can be accepted"):
        accept_quote(db.session, quotes["users"]["a_admin"], quote, tomorrow)


def test_another_distributor_may_not_touch_the_quote(quotes):
    quote = _sent(quotes)
    for name in ("c_admin", "b_admin"):  # outside A's tree (B is A's sub-distributor, not its parent)
        with pytest.raises(NotAllowed, match=quote.number):
            accept_quote(db.session, quotes["users"][name], quote, TODAY)
    with pytest.raises(NotAllowed):
        save_quote(db.session, quotes["users"]["c_admin"], seller=quotes["a"], customer_name="X",
                   valid_until=TODAY, today=TODAY, lines=[LineInput(quotes["package"], 1)])
    with pytest.raises(NotAllowed):
        send_quote(db.session, quotes["users"]["finance"], _draft(quotes), TODAY)
    # Platform sales may act for any distributor.
    accept_quote(db.session, quotes["users"]["sales"], quote, TODAY)


# --- pages -----------------------------------------------------------------------------------------


def _pairs(form: dict) -> list[tuple[str, str]]:
    """A form with repeated fields (the line rows) as the browser sends it."""
    return [(key, item) for key, value in form.items() for item in (value if isinstance(value, list) else [value])]


def _line_form(**fields) -> dict:
    return {"valid_until": (TODAY + timedelta(days=10)).isoformat(), "customer_name": "Walk-in Wang",
            "customer_phone": "13700000000", "customer_address": "Futian", "note": "", **fields}


def test_the_pages_create_send_accept_and_print(quotes, client, login):
    q = quotes
    login("a_admin")
    form = {**_line_form(seller_id=str(q["a"].id)),
            "line_package_id": [str(q["package"].id), str(q["plan"].id), ""],
            "line_quantity": ["3", "2", ""], "line_unit_price": ["33.33", "", ""],
            "line_discount_percent": ["12.5", "", ""]}
    answer = post(client, f"{LIST}new/", _pairs(form))
    assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
    quote = db.session.scalar(select(CardQuote))
    assert quote.total == D("205.49") and len(quote.lines) == 2
    page = client.get(f"{LIST}details/?id={quote.id}").get_data(as_text=True)
    assert quote.number in page and "205.49" in page and 'id="rd-quote-sent"' in page
    post(client, f"{LIST}state/", {"id": str(quote.id), "to": "sent"})
    assert db.session.scalar(select(CardQuote.status)) == "sent"
    answer = confirm_post(client, f"{LIST}state/", {"id": str(quote.id), "to": "accepted"}, follow_redirects=True)
    assert "await payment" in answer.get_data(as_text=True)
    db.session.expire_all()
    assert quote.status == "accepted" and db.session.scalar(select(func.count(CardOrder.id))) == 2
    printed = client.get(f"{LIST}print/?id={quote.id}").get_data(as_text=True)
    assert "@media print" in printed and quote.number in printed and "205.49" in printed
    listed = client.get(f"{LIST}?search={quote.number}").get_data(as_text=True)
    assert quote.number in listed
    export = client.get(f"{LIST}export/csv/")
    assert export.status_code == 200 and quote.number in export.get_data(as_text=True)


def test_a_new_quote_form_sent_twice_makes_one_quote_and_decline_and_cancel_ask_first(quotes, client, login):
    login("a_admin")
    form = {**_line_form(seller_id=str(quotes["a"].id)), "line_package_id": [str(quotes["package"].id)],
            "line_quantity": ["2"], "line_unit_price": [""], "line_discount_percent": [""],
            "idempotency_key": "k" * 32}
    assert post(client, f"{LIST}new/", _pairs(form)).status_code == 302
    assert post(client, f"{LIST}new/", _pairs(form)).status_code == 302
    quote = db.session.scalar(select(CardQuote))
    assert db.session.scalar(select(func.count(CardQuote.id))) == 1 and quote.total == D("78.00")
    first = post(client, f"{LIST}state/", {"id": str(quote.id), "to": "cancelled"})
    assert "rd-confirm-form" in first.get_data(as_text=True)
    db.session.expire_all()
    assert quote.status == "draft"  # the confirmation page changed nothing
    confirm_post(client, f"{LIST}state/", {"id": str(quote.id), "to": "cancelled"})
    db.session.expire_all()
    assert quote.status == "cancelled"
    other = _sent(quotes)
    confirm_post(client, f"{LIST}state/", {"id": str(other.id), "to": "declined"})
    db.session.expire_all()
    assert other.status == "declined"
    answer = post(client, f"{LIST}state/", {"id": str(other.id), "to": "sent"}, follow_redirects=True)
    assert f"{other.number} is Declined: only a draft can be sent" in answer.get_data(as_text=True)


def test_a_new_quote_proposes_thirty_days_of_validity(quotes, client, login):
    from datetime import date, timedelta

    login("a_admin")
    page = client.get(f"{LIST}new/").get_data(as_text=True)
    assert f'name="valid_until" required value="{(date.today() + timedelta(days=30)).isoformat()}"' in page


def test_a_refused_form_keeps_what_was_typed(quotes, client, login):
    login("a_admin")
    form = {**_line_form(seller_id=str(quotes["a"].id), customer_name="Typed Customer Li"),
            "line_package_id": [str(quotes["package"].id)], "line_quantity": ["0"], "line_unit_price": ["31.50"],
            "line_discount_percent": ["7"]}
    answer = post(client, f"{LIST}new/", _pairs(form))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Line 1: quantity" in page
    assert "Typed Customer Li" in page and 'value="31.50"' in page and 'value="7"' in page
    assert db.session.scalar(select(func.count(CardQuote.id))) == 0


def test_other_distributors_neither_see_nor_accept(quotes, client, login):
    quote = _sent(quotes)
    login("c_admin")
    assert quote.number not in client.get(LIST).get_data(as_text=True)
    for url in (f"{LIST}details/?id={quote.id}", f"{LIST}edit/?id={quote.id}", f"{LIST}print/?id={quote.id}"):
        assert client.get(url).status_code == 404, url
    assert confirm_post(client, f"{LIST}state/", {"id": str(quote.id), "to": "accepted"},
                        required=False).status_code == 404
    login.logout()
    login("finance")
    assert client.get(LIST).status_code == 403
    db.session.expire_all()
    assert quote.status == "sent" and db.session.scalar(select(func.count(CardOrder.id))) == 0


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
def test_pages_have_no_english_ui_words(quotes, client, login, locale):
    quote = _sent(quotes)
    draft = _draft(quotes)
    quotes["users"]["a_admin"].locale = locale
    db.session.commit()
    login("a_admin")
    edit = client.get(f"{LIST}edit/?id={draft.id}").get_data(as_text=True)  # the draft's lines, ready to change
    assert f'<option value="{quotes["plan"].id}" selected>' in edit and 'value="7"' in edit
    assert 'value="33,33"' in edit if locale == "vi" else 'value="33.33"' in edit
    urls = [LIST, f"{LIST}new/", f"{LIST}details/?id={quote.id}", f"{LIST}edit/?id={draft.id}",
            f"{LIST}print/?id={quote.id}", f"{LIST}details/?id={draft.id}"]
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert english_in(" ".join(read(answer.get_data(as_text=True)).parts)) == [], url
    assert LIST in client.get("/admin/").get_data(as_text=True)  # in the card menu


def test_the_demo_distributor_has_a_sent_quote(app):
    from actions.card_demo import seed_cards
    from actions.crypto import vault as current_vault

    seed_cards(db.session, current_vault(), method="scrypt:1024:8:1")
    db.session.commit()
    quote = db.session.scalar(select(CardQuote))
    assert quote.status == "sent" and quote.seller.name == "Aotuo Cards" and quote.valid_until > TODAY
    assert quote.total == D("2762.50")  # 50 × 35.00 less 5 % (1,662.50) and 20 × 55.00
    distributor = db.session.scalar(select(User).where(User.username == "distributor"))
    orders = accept_quote(db.session, distributor, quote, TODAY)
    assert sum(o.order.total for o in orders) == quote.total
