"""The one pricing engine: preview, order, invoice and refund all price through `price_order`.

Five steps, in the currency's exponent, ROUND_HALF_UP (actions.money):
1. each line's gross;
2. at most one promotion per line: percent `min(round(g × p / 100), cap, g)`, fixed `min(amount, g)`;
3. at most one invoice promotion on the sum of the step-2 nets (same formulas);
4. the invoice discount is allocated over the lines in proportion to their step-2 nets, by
   largest remainder (`actions.money.allocate`: the shares add up exactly);
5. net per line = gross − item discount − invoice share; total = Σ net ≥ 0.

A pure function: no database, no request. Bad input raises DomainError naming the line.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from actions import DomainError
from actions.money import MoneyError, allocate, exponent, round_money, to_minor, zero

PROMOTION_KINDS = ("percent", "fixed")
INVOICE = "invoice"  # how errors name the invoice promotion


@dataclass(frozen=True)
class Promotion:
    """A discount rule: `percent` (value 0–100, optional cap) or `fixed` (an amount). A fixed
    promotion may name its `currency`; it then applies only to orders in that currency."""

    kind: str
    value: Decimal
    max_discount: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Line:
    """One priced thing of an order: its key (any hashable the caller recognises), gross, promotion."""

    key: object
    gross: Decimal
    promotion: Promotion | None = None


@dataclass(frozen=True)
class PricedLine:
    key: object
    gross: Decimal
    item_discount: Decimal
    invoice_share: Decimal
    net: Decimal

    @property
    def discount(self) -> Decimal:
        return self.item_discount + self.invoice_share


@dataclass(frozen=True)
class PricedOrder:
    currency: str
    lines: tuple[PricedLine, ...]
    invoice_discount: Decimal

    @property
    def gross(self) -> Decimal:
        return sum((line.gross for line in self.lines), zero(self.currency))

    @property
    def item_discount(self) -> Decimal:
        return sum((line.item_discount for line in self.lines), zero(self.currency))

    @property
    def subtotal(self) -> Decimal:
        """The sum of the step-2 nets: what the invoice promotion applies to."""
        return self.gross - self.item_discount

    @property
    def total(self) -> Decimal:
        return sum((line.net for line in self.lines), zero(self.currency))

    def line(self, key) -> PricedLine:
        return next(line for line in self.lines if line.key == key)


def _exact(amount, currency: str, what: str) -> Decimal:
    """`amount` as a Decimal of the currency, or DomainError naming `what`."""
    if isinstance(amount, float) or not isinstance(amount, (Decimal, int)):
        raise DomainError(_l("%(what)s: %(value)s is not an amount.", what=what, value=amount))
    amount = Decimal(amount)
    if not amount.is_finite():
        raise DomainError(_l("%(what)s: %(value)s is not an amount.", what=what, value=amount))
    try:
        to_minor(amount, currency)
    except MoneyError:
        raise DomainError(_l("%(what)s: %(value)s has more decimals than %(currency)s allows.", what=what,
                             value=amount, currency=currency)) from None
    return round_money(amount, currency)


def discount_of(promotion: Promotion, base: Decimal, currency: str, what: str) -> Decimal:
    """What `promotion` takes off `base` (never more than `base`), or DomainError naming `what`."""
    if promotion.kind not in PROMOTION_KINDS:
        raise DomainError(_l("%(what)s: unknown promotion kind %(kind)s.", what=what, kind=promotion.kind))
    if isinstance(promotion.value, float) or not isinstance(promotion.value, (Decimal, int)):
        raise DomainError(_l("%(what)s: the promotion value %(value)s is not a number.", what=what,
                             value=promotion.value))
    value = Decimal(promotion.value)
    if not value.is_finite() or value < 0:
        raise DomainError(_l("%(what)s: the promotion value must not be negative.", what=what))
    if promotion.kind == "percent":
        if value > 100:
            raise DomainError(_l("%(what)s: a percentage promotion takes at most 100 %%.", what=what))
        amount = round_money(base * value / Decimal(100), currency)
        if promotion.max_discount is not None:
            cap = _exact(promotion.max_discount, currency, what)
            if cap < 0:
                raise DomainError(_l("%(what)s: the promotion cap must not be negative.", what=what))
            amount = min(amount, cap)
    else:
        if promotion.currency is not None and promotion.currency != currency:
            raise DomainError(_l("%(what)s: a fixed promotion in %(promotion_currency)s cannot apply to an "
                                 "order in %(currency)s.", what=what, promotion_currency=promotion.currency,
                                 currency=currency))
        amount = _exact(value, currency, what)
    return min(amount, base)


def price_order(lines: Sequence[Line], invoice_promotion: Promotion | None = None, *,
                currency: str) -> PricedOrder:
    """Price `lines` with their promotions and one optional invoice promotion (see module doc)."""
    exponent(currency)  # an unknown currency raises here
    if not lines:
        raise DomainError(_l("An order needs at least one line."))
    seen: set = set()
    step2: list[tuple[Line, Decimal, Decimal]] = []
    for line in lines:
        what = str(_l("Line %(key)s", key=line.key))
        if line.key in seen:
            raise DomainError(_l("%(what)s appears twice.", what=what))
        seen.add(line.key)
        gross = _exact(line.gross, currency, what)
        if gross < 0:
            raise DomainError(_l("%(what)s: the price must not be negative.", what=what))
        item = discount_of(line.promotion, gross, currency, what) if line.promotion is not None else zero(currency)
        step2.append((line, gross, item))
    nets = [gross - item for _line, gross, item in step2]
    subtotal = sum(nets, zero(currency))
    invoice = zero(currency)
    if invoice_promotion is not None:
        invoice = discount_of(invoice_promotion, subtotal, currency, str(_l("Invoice promotion")))
    shares = allocate(invoice, nets, currency) if invoice else [zero(currency) for _ in nets]
    priced = tuple(
        PricedLine(line.key, gross, item, share, gross - item - share)
        for (line, gross, item), share in zip(step2, shares)
    )
    return PricedOrder(currency, priced, invoice)
