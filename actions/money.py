"""The one money module: currencies, parsing, rounding, allocation and display.

Amounts live in the database as integers of minor units (`amount_minor`, as Lago's
`amount_cents`); Python works in `Decimal` quantized to the currency's exponent. One rounding
mode (ROUND_HALF_UP) everywhere, one allocation (largest remainder), one formatter (Babel,
in the reader's locale). Nothing here is ever a float.

This module imports nothing of the project but `errors`, so models can use it.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from babel.numbers import format_currency, format_decimal, get_decimal_symbol, get_group_symbol
from babel.numbers import format_percent as babel_percent
from flask_babel import lazy_gettext as _l

from errors import DomainError

# ISO 4217 exponents (CNY, USD 2; VND 0) and our coins (whole coins, 1 CNY = 100 coins).
EXPONENTS: dict[str, int] = {"CNY": 2, "USD": 2, "VND": 0, "COIN": 0}
# One movement above this (in major units) is a typo, not a payment.
MAX_AMOUNT = Decimal("100000000")
# How people type a number: plain (12800.5) or grouped by thousands (12,800.5) with the given group and
# decimal symbols; a first group never starts with 0 (0.250 is a quarter, not two hundred and fifty).
_FORMS = r"(?P<plain>[0-9]+(?:{d}[0-9]+)?)|(?P<grouped>[1-9][0-9]{{0,2}}(?:{g}[0-9]{{3}})+(?:{d}[0-9]+)?)"
_MACHINE = re.compile(_FORMS.format(g=",", d=r"\."))
_LOCALE_FORMS: dict[str, re.Pattern] = {}  # locale → its own forms, for locales whose symbols are not the machine's


class MoneyError(DomainError):
    """An amount that cannot be money in its currency (names the field)."""


def exponent(currency: str) -> int:
    """Decimal places of `currency`; unknown currencies raise."""
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise MoneyError(_l("Unknown currency %(currency)s.", currency=currency)) from None


def quantum(currency: str) -> Decimal:
    """The smallest amount of `currency`: 0.01 for CNY, 1 for VND."""
    return Decimal(1).scaleb(-exponent(currency))


def round_money(amount: Decimal | int, currency: str) -> Decimal:
    """`amount` rounded half up to the currency's exponent (the only rounding we do)."""
    if isinstance(amount, float):
        raise TypeError("money is never a float")
    return Decimal(amount).quantize(quantum(currency), rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal | int, currency: str) -> int:
    """Exact minor units of `amount`; an amount finer than the currency allows raises."""
    if isinstance(amount, float):
        raise TypeError("money is never a float")
    amount = Decimal(amount)
    exact = amount.scaleb(exponent(currency))
    if exact != exact.to_integral_value():
        raise MoneyError(_l("%(amount)s has more decimals than %(currency)s allows.", amount=amount,
                            currency=currency))
    return int(exact)


def from_minor(minor: int, currency: str) -> Decimal:
    """The Decimal of `minor` units of `currency`, with the currency's exponent (12345 CNY → 123.45)."""
    return Decimal(int(minor)).scaleb(-exponent(currency)).quantize(quantum(currency))


def zero(currency: str) -> Decimal:
    return from_minor(0, currency)


def typed_number(text: str, locale=None) -> Decimal | None:
    """A number as a person typed it, or None: in the reader's locale (`locale`, default the request's)
    with its own group and decimal symbols (Vietnamese `12.800,5`), else as machines and English write
    it (`12800.5`, `12,800.5`). The reader's own form wins where both read it: in Vietnamese `12.800` is
    twelve thousand eight hundred; `500.00`, not grouped by thousands, is five hundred in every locale.
    Digits and those symbols only: no sign, no exponent, no spaces inside. Full-width forms, as a Chinese
    input method types them (`１，０００．５０`), read as their ASCII ones."""
    text = unicodedata.normalize("NFKC", str(text)).strip()
    for forms, group, decimal in (_locale_forms(_locale_name(locale)), (_MACHINE, ",", ".")):
        if forms is None:
            continue
        found = forms.fullmatch(text)
        if found:
            digits = text if found.group("plain") else text.replace(group, "")
            return Decimal(digits.replace(decimal, "."))
    return None


def _locale_forms(locale: str) -> tuple[re.Pattern | None, str, str]:
    """The number forms of a locale and its group and decimal symbols; None when they are the machine's."""
    try:
        group, decimal = get_group_symbol(locale), get_decimal_symbol(locale)
    except (ValueError, LookupError):  # not a locale Babel knows: the machine's forms alone
        return None, ",", "."
    if (group, decimal) == (",", "."):
        return None, group, decimal
    if locale not in _LOCALE_FORMS:
        _LOCALE_FORMS[locale] = re.compile(_FORMS.format(g=re.escape(group), d=re.escape(decimal)))
    return _LOCALE_FORMS[locale], group, decimal


def number_symbols(locale=None) -> dict[str, str]:
    """{"group": …, "decimal": …} of the reader's locale (Vietnamese: "." and ","), for a page's script that
    reads what people type as typed_number does."""
    _forms, group, decimal = _locale_forms(_locale_name(locale))
    return {"group": group, "decimal": decimal}


def typed(amount: Decimal | int | str | None, locale=None) -> str:
    """An amount as the reader would type it (a form's value): its digits with the locale's decimal symbol,
    not grouped (`500,00` in Vietnamese, `500.00` in English); read back by typed_number."""
    if amount is None:
        return ""
    return str(amount).replace(".", number_symbols(locale)["decimal"])


def parse(value, currency: str, field: str | None = None, *, allow_zero: bool = False,
          maximum: Decimal | None = None, locale=None) -> Decimal:
    """An amount typed by a person (typed_number: `12800`, `12,800.00`, in Vietnamese also `12.800,00`);
    no exponents, no other digits, no more decimals than the currency has; positive (or zero when
    allowed). DomainError names the field."""
    field = field or str(_l("Amount"))
    if isinstance(value, float):
        raise TypeError("money is never a float")
    if isinstance(value, (Decimal, int)):
        amount = Decimal(value)
        if not amount.is_finite():
            raise MoneyError(_l("%(field)s: %(value)s is not an amount.", field=field, value=value))
    else:
        text = str(value if value is not None else "").strip()
        if not text:
            raise MoneyError(_l("%(field)s: enter an amount.", field=field))
        amount = typed_number(text, locale)
        if amount is None:
            if text.startswith("-") and typed_number(text[1:].strip(), locale) is not None:
                raise MoneyError(_l("%(field)s: must be greater than zero.", field=field))
            raise MoneyError(_l("%(field)s: %(value)s is not an amount.", field=field, value=text[:40]))
    if amount < 0 or (amount == 0 and not allow_zero):
        raise MoneyError(_l("%(field)s: must be greater than zero.", field=field))
    limit = maximum if maximum is not None else MAX_AMOUNT
    if amount > limit:
        raise MoneyError(_l("%(field)s: %(value)s is larger than any single payment.", field=field,
                            value=format_money(limit, currency) if maximum is not None else amount))
    places = exponent(currency)
    if amount != amount.quantize(quantum(currency), rounding=ROUND_DOWN):
        if places == 0:
            raise MoneyError(_l("%(field)s: %(currency)s has no decimals; enter a whole number.", field=field,
                                currency=currency))
        raise MoneyError(_l("%(field)s: at most two decimal places.", field=field))
    return amount.quantize(quantum(currency))


def allocate(amount: Decimal, weights: Sequence[Decimal | int], currency: str) -> list[Decimal]:
    """Split `amount` over `weights` in proportion, by largest remainder: the parts sum exactly to
    `amount`; equal remainders go to the lower (earlier) line. Zero weights get nothing."""
    total_minor = to_minor(round_money(amount, currency), currency)
    weights = [Decimal(w) for w in weights]
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights, Decimal(0))
    if not weights:
        return []
    if weight_sum == 0:
        if total_minor:
            raise ValueError("cannot allocate a non-zero amount over zero weights")
        return [zero(currency) for _ in weights]
    sign = -1 if total_minor < 0 else 1
    total_abs = abs(total_minor)
    shares = [total_abs * w / weight_sum for w in weights]
    floors = [int(s.to_integral_value(rounding=ROUND_DOWN)) for s in shares]
    left = total_abs - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [from_minor(sign * part, currency) for part in floors]


def _locale_name(locale) -> str:
    if locale is not None:
        return str(locale)
    try:
        from flask_babel import get_locale

        current = get_locale()
        return str(current) if current is not None else "en"
    except RuntimeError:  # outside a request or app context
        return "en"


def format_money(amount: Decimal | int | None, currency: str, locale=None) -> str:
    """`¥12,800.00`, `US$5.00`, `12.800 ₫`, `216,000 奥币`: Babel's currency format in the reader's
    locale, always with the currency's own decimals. None shows as an empty string."""
    if amount is None:
        return ""
    if isinstance(amount, float):
        raise TypeError("money is never a float")
    amount = round_money(amount, currency)
    locale = _locale_name(locale)
    if currency == "COIN":
        return str(_l("%(amount)s coins", amount=format_decimal(amount, locale=locale)))
    return format_currency(amount, currency, locale=locale, currency_digits=True)


def format_amount(amount: Decimal | int | None, currency: str, locale=None) -> str:
    """The number alone in the reader's locale, with the currency's decimals (`12,800.00`)."""
    if amount is None:
        return ""
    amount = round_money(amount, currency)
    places = exponent(currency)
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(amount, format=pattern, locale=_locale_name(locale))


def format_percent(percent: Decimal | int | None, locale=None) -> str:
    """A rate given in percent (`9.7`, `12.50`, `10`) as the reader writes it: `9.7%`, `12.5%`, and `9,7%` in
    Vietnamese; its own decimals without trailing zeros. None shows as an empty string."""
    if percent is None:
        return ""
    if isinstance(percent, float):
        raise TypeError("a rate is never a float")
    return babel_percent(Decimal(percent) / 100, locale=_locale_name(locale), decimal_quantization=False)
