"""Amounts, percents and coins are read as the reader types them: in Vietnamese "1.500.000" is a million and a
half (the dot groups thousands, the comma is the decimal mark), as every Vietnamese price is written; the
machine form ("500.00", "12,800.00") is read in every language. Forms show amounts back the same way."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from flask_babel import force_locale, gettext

from actions import DomainError
from actions.coins import parse_years, whole_coins
from actions.distribution import bp_of
from actions.money import number_symbols, parse, typed, typed_number
from models import Order, User, db
from tests.conftest import post
from tests.test_bank_transfer_received import coin_order
from tests.test_idempotency import key_on


@pytest.mark.parametrize("text, currency, wanted", [
    ("1.500.000", "VND", Decimal("1500000")), ("12.800", "VND", Decimal("12800")),
    ("12.800,50", "CNY", Decimal("12800.50")), ("1,5", "USD", Decimal("1.50")), ("12800", "CNY", Decimal("12800.00")),
    # The machine form stays readable: "500.00" is not grouped by thousands, "12,800.00" is English grouping.
    ("500.00", "CNY", Decimal("500.00")), ("12,800.00", "CNY", Decimal("12800.00")), ("0.250", "USD", Decimal("0.25")),
])
def test_vietnamese_amounts_are_read_as_vietnamese_write_them(app, text, currency, wanted):
    with app.test_request_context(), force_locale("vi"):
        assert parse(text, currency, "Số tiền") == wanted


NOT_AN_AMOUNT = "%(field)s: %(value)s is not an amount."
NO_DECIMALS = "%(field)s: %(currency)s has no decimals; enter a whole number."


@pytest.mark.parametrize("locale, text, currency, msgid", [
    ("vi", "1,234", "VND", NO_DECIMALS),  # 1,234 is one and a bit in Vietnamese
    ("vi", "1.2.3", "CNY", NOT_AN_AMOUNT), ("vi", "1e3", "CNY", NOT_AN_AMOUNT),
    ("vi", "-1.500", "VND", "%(field)s: must be greater than zero."),
    ("vi", "12.800,505", "CNY", "%(field)s: at most two decimal places."),
    ("en", "12.800", "VND", NO_DECIMALS), ("en", "1.500.000", "VND", NOT_AN_AMOUNT),
    ("zh_Hans_CN", "12,8", "CNY", NOT_AN_AMOUNT),
])
def test_what_is_not_an_amount_in_the_readers_language_is_refused(app, locale, text, currency, msgid):
    with app.test_request_context(), force_locale(locale):
        with pytest.raises(DomainError) as caught:
            parse(text, currency, "Amount")
        assert str(caught.value) == gettext(msgid, field="Amount", value=text, currency=currency)


def test_english_and_chinese_read_as_before(app):
    for locale in ("en", "zh_Hans_CN"):
        with app.test_request_context(), force_locale(locale):
            assert parse("12,800.50", "CNY") == Decimal("12800.50")
            assert parse("1,500", "VND") == Decimal("1500")
            assert number_symbols() == {"group": ",", "decimal": "."}
    assert typed_number("12.800", "vi") == Decimal("12800") and typed_number("12.800", "en") == Decimal("12.800")


def test_full_width_digits_as_a_chinese_input_method_types_them_are_read(app):
    """"１，０００．５０" (full-width, an IME's default) was "not an amount"."""
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert parse("１，０００．５０", "CNY") == Decimal("1000.50")
        assert parse("５００", "CNY") == Decimal("500.00")
        assert bp_of("１２．５", "Rate") == 1250
    assert typed_number("１．５００．０００", "vi") == Decimal("1500000")
    assert typed_number("٣٠٠", "zh_Hans_CN") is None  # other scripts' digits are not ours to guess


def test_percents_coins_and_terms_are_read_in_the_readers_language_too(app):
    with app.test_request_context(), force_locale("vi"):
        assert bp_of("7,5", "Level 1") == 750 and bp_of("7.5", "Level 1") == 750 and bp_of("", "Level 1") == 0
        assert whole_coins("10.000") == Decimal("10000")
        assert parse_years("0,5") == Decimal("0.5") and parse_years("0.25") == Decimal("0.25")
        with pytest.raises(DomainError) as caught:
            bp_of("7,5,1", "Level 1")
        assert str(caught.value) == gettext("%(field)s: %(value)s is not a percent.", field="Level 1", value="7,5,1")
        with pytest.raises(DomainError) as caught:
            whole_coins("-5")
        assert str(caught.value) == gettext("%(field)s: must be greater than zero.", field="coins")
    with app.test_request_context(), force_locale("en"):
        assert whole_coins("10,000") == Decimal("10000") and bp_of("7.5%", "Level 1") == 750


def test_forms_show_amounts_as_the_reader_types_them(app):
    with app.test_request_context(), force_locale("vi"):
        assert typed(Decimal("500.00")) == "500,00" and typed(Decimal("1500000")) == "1500000"
        assert parse(typed(Decimal("12800.50")), "CNY") == Decimal("12800.50")
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert typed(Decimal("500.00")) == "500.00" and typed(None) == ""


def test_a_vietnamese_customer_tops_up_as_vietnamese_write_amounts(client, login, world):
    """The top-up form, in Vietnamese, with the amount as a Vietnamese customer types it."""
    db.session.scalar(db.select(User).where(User.username == "customer")).locale = "vi"
    db.session.commit()
    login("customer")
    key = key_on(client, "/admin/recharge_record/top-up/")
    post(client, "/admin/recharge_record/top-up/", {"company_id": str(world.acme.id), "currency": "USD",
                                                    "amount": "1.500,50", "idempotency_key": key})
    (order,) = db.session.scalars(db.select(Order).where(Order.kind == "recharge", Order.company_id == world.acme.id))
    assert (order.currency, order.total) == ("USD", Decimal("1500.50"))
    assert 'placeholder="100,00"' in client.get("/admin/recharge_record/top-up/").get_data(as_text=True)


def test_the_top_up_example_follows_each_readers_language(client, login, world):
    """The example amount was a filter of a literal, which Jinja works out once when it compiles the template:
    every later reader saw the first reader's 100.00 or 100,00."""
    customer = db.session.scalar(db.select(User).where(User.username == "customer"))
    for locale, example in (("zh_Hans_CN", "100.00"), ("vi", "100,00"), ("en", "100.00"), ("vi", "100,00")):
        customer.locale = locale
        db.session.commit()
        login("customer")
        page = client.get("/admin/recharge_record/top-up/").get_data(as_text=True)
        assert f'placeholder="{example}"' in page, locale
        login.logout()


def test_the_receipt_page_tells_the_script_the_readers_symbols(client, login, world):
    """The bank-transfer receipt page compares the typed amount with the order total in the browser: its
    script reads the amount as the server will (data-group / data-decimal of the reader's language)."""
    order = coin_order(world, amount="2160.50")
    db.session.scalar(db.select(User).where(User.username == "customer")).locale = "vi"
    db.session.commit()
    login("customer")
    page = client.get(f"/admin/bank_transfer/upload/?order={order.number}").get_data(as_text=True)
    field = re.search(r'<input[^>]*id="rd-amount"[^>]*>', page, re.S).group(0)
    assert 'data-group="."' in field and 'data-decimal=","' in field
    assert 'placeholder="2160,50"' in field and 'data-total="2160.50"' in field


def test_the_renewal_center_shows_prices_in_the_readers_number_format(client, login, world):
    """Prices were the bare Decimal (180.00) in every language; Vietnamese writes 180,00."""
    db.session.scalar(db.select(User).where(User.username == "customer")).locale = "vi"
    db.session.commit()
    login("customer")
    page = client.get(f"/admin/renewal_center/?company_id={world.acme.id}&months=12&scope=all").get_data(as_text=True)
    prices = re.findall(r'<td class="text-right rd-price">([^<]*)</td>', page)
    assert prices and all(re.fullmatch(r"[0-9.]+,[0-9]{2}|—", price) for price in prices), prices
