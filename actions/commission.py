"""The commission engine: pure functions over Decimal, no database (issue 12, seed 002).

A distributor earns commission on what it sells (level 1) and its parent distributor an override
(level 2); never a third level. The base is always the net paid of the order's card lines (after
line and invoice promotions). Each entry is `round_money(base × rate)` in the currency, rounded
half up once; entries are never edited, a refund is a new negative entry proportional to the
cards refunded, and a month on tiered rates is trued up against the provisional entries.

Modes of a rule:
- override: the platform sets both rates; the seller earns `level1_rate`, its parent `level2_rate`.
- split: the parent's own rate is shared; the seller earns its share `level1_rate`, the parent keeps
  `level2_rate − level1_rate` (in the rule, `level2_rate` is the parent's whole rate), as an amount: the
  parent's whole commission `round(base × level2_rate)` less the seller's, so both add up to it exactly.
  A share a distributor passed down itself (actions.distribution.save_share) is a split whose
  `level2_rate` is the parent's own rate on the package at the time of the sale.
Kinds of a rule: percent of the net, fixed amount per card, or monthly tiers (graduated: each
slice at its own rate; volume: the whole month at the rate of the tier it reaches).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from actions import DomainError
from actions.money import round_money, typed_number, zero

MODES = ("override", "split")
KINDS = ("percent", "fixed", "graduated", "volume")
MAX_LEVELS = 2


@dataclass(frozen=True)
class Tier:
    """Sales from `lower` (inclusive) up to `upper` (exclusive, None = no ceiling) earn `rate`."""

    lower: Decimal
    upper: Decimal | None
    rate: Decimal


@dataclass(frozen=True)
class Share:
    """What one level earns on one sale."""

    level: int  # 1 = the seller, 2 = its parent
    rate: Decimal | None  # None for fixed per-card amounts
    amount: Decimal


def check_rate(rate: Decimal, field: str) -> Decimal:
    """A rate between 0 and 1 (0.08 = 8 %), or DomainError naming the field."""
    if isinstance(rate, float):
        raise TypeError("rates are never floats")
    rate = Decimal(rate)
    if not rate.is_finite() or rate < 0 or rate > 1:
        raise DomainError(_l("%(field)s: a rate between 0 %% and 100 %%.", field=field))
    return rate


def check_tiers(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    """Tiers start at 0, follow each other without gap or overlap, and only the last is open."""
    if not tiers:
        raise DomainError(_l("Tiers: enter at least one tier."))
    expected = Decimal(0)
    for number, tier in enumerate(tiers, start=1):
        check_rate(tier.rate, str(_l("Tier %(number)s rate", number=number)))
        if tier.lower != expected:
            raise DomainError(_l("Tier %(number)s: should start at %(lower)s.", number=number, lower=expected))
        last = number == len(tiers)
        if tier.upper is None and not last:
            raise DomainError(_l("Tier %(number)s: only the last tier may be open-ended.", number=number))
        if tier.upper is not None and tier.upper <= tier.lower:
            raise DomainError(_l("Tier %(number)s: the upper bound must exceed the lower one.", number=number))
        expected = tier.upper if tier.upper is not None else expected
    return tuple(tiers)


def commission(base: Decimal, rate: Decimal, currency: str) -> Decimal:
    """One entry: `base × rate`, rounded half up to the currency."""
    return round_money(Decimal(base) * check_rate(rate, "rate"), currency)


def level_rates(mode: str, level1_rate: Decimal, level2_rate: Decimal | None) -> tuple[Decimal, Decimal]:
    """The (seller, parent) rates of a rule; in split mode the seller's share comes out of the parent's."""
    level1_rate = check_rate(level1_rate, str(_l("Level-1 rate")))
    level2_rate = check_rate(level2_rate or Decimal(0), str(_l("Level-2 rate")))
    if mode == "override":
        return level1_rate, level2_rate
    if mode == "split":
        if level1_rate > level2_rate:
            raise DomainError(_l("Split mode: the sub-distributor's share (%(child)s) cannot exceed its parent's "
                                 "rate (%(parent)s).", child=level1_rate, parent=level2_rate))
        return level1_rate, level2_rate - level1_rate
    raise DomainError(_l("Unknown commission mode %(mode)s.", mode=mode))


def sale_shares(*, base: Decimal, cards: int, currency: str, kind: str, mode: str, level1_rate: Decimal,
                level2_rate: Decimal | None, fixed_per_card: Decimal | None = None,
                fixed_per_card_level2: Decimal | None = None, has_parent: bool) -> list[Share]:
    """The entries one sale earns: the seller (level 1) and, when it has a distributor parent, the parent.

    Tiered kinds earn their first tier's rate provisionally; `true_up` settles the month.
    """
    if kind == "fixed":
        per_card_1 = round_money(fixed_per_card or 0, currency)
        per_card_2 = round_money(fixed_per_card_level2 or 0, currency)
        if mode == "split":
            if per_card_1 > per_card_2:
                raise DomainError(_l("Split mode: the sub-distributor's share (%(child)s) cannot exceed its parent's "
                                     "rate (%(parent)s).", child=per_card_1, parent=per_card_2))
            per_card_2 = per_card_2 - per_card_1
        shares = [Share(1, None, per_card_1 * cards)]
        if has_parent:
            shares.append(Share(2, None, per_card_2 * cards))
        return [s for s in shares if s.amount]
    if kind not in KINDS:
        raise DomainError(_l("Unknown commission kind %(kind)s.", kind=kind))
    rate_1, rate_2 = level_rates(mode, level1_rate, level2_rate)
    amount_1 = commission(base, rate_1, currency)
    if mode == "split":  # the parent keeps its whole commission less the share: the two add up to it exactly
        amount_2 = commission(base, rate_1 + rate_2, currency) - amount_1
    else:
        amount_2 = commission(base, rate_2, currency)
    shares = [Share(1, rate_1, amount_1)]
    if has_parent:
        shares.append(Share(2, rate_2, amount_2))
    return [s for s in shares if s.amount]


def reversal(amount: Decimal, refunded_cards: int, total_cards: int, currency: str) -> Decimal:
    """The negative entry undoing the refunded cards' part of an entry: −round(amount × refunded/total)."""
    if total_cards <= 0 or not 0 < refunded_cards <= total_cards:
        raise DomainError(_l("Refunded cards: between 1 and %(total)s.", total=total_cards))
    if refunded_cards == total_cards:
        return -Decimal(amount)
    return -round_money(Decimal(amount) * refunded_cards / total_cards, currency)


def tiered_commission(sales: Decimal, tiers: Sequence[Tier], kind: str, currency: str) -> Decimal:
    """A month's commission on `sales` net: graduated (each slice at its rate) or volume (all at the reached rate)."""
    tiers = check_tiers(tiers)
    sales = Decimal(sales)
    if sales <= 0:
        return zero(currency)
    if kind == "volume":
        reached = next(t for t in reversed(tiers) if sales >= t.lower)
        return round_money(sales * reached.rate, currency)
    if kind != "graduated":
        raise DomainError(_l("Unknown commission kind %(kind)s.", kind=kind))
    total = Decimal(0)
    for tier in tiers:
        if sales <= tier.lower:
            break
        top = sales if tier.upper is None else min(sales, tier.upper)
        total += (top - tier.lower) * tier.rate
    return round_money(total, currency)


def true_up(sales: Decimal, tiers: Sequence[Tier], kind: str, provisional: Decimal, currency: str) -> Decimal:
    """What the month still owes (or takes back): its tiered commission less the provisional entries."""
    return tiered_commission(sales, tiers, kind, currency) - round_money(provisional, currency)


def parse_tiers(text: str, locale=None) -> tuple[Tier, ...]:
    """Tiers typed one per line as `lower-upper:percent` (`0-10000:6`, `50000-:10`): as a Chinese keyboard
    types them too (full-width `０-１００００：６`, a `～` between the bounds), and with the numbers in the reader's
    forms (`locale`, default the request's: Vietnamese `50.000-:12,5`) or the machine's."""
    def number(typed: str) -> Decimal:
        value = typed_number(typed.strip(), locale)
        if value is None:
            raise ValueError(typed)
        return value

    tiers = []
    for number_, line in enumerate((row.strip() for row in (text or "").splitlines() if row.strip()), start=1):
        try:
            bounds, percent = unicodedata.normalize("NFKC", line).split(":")
            lower, upper = re.split(r"[-~]", bounds)
            tier = Tier(number(lower), number(upper) if upper.strip() else None,
                        number(percent.strip().removesuffix("%")) / 100)
        except (ValueError, ArithmeticError):
            raise DomainError(_l("Tier %(number)s: write it as lower-upper:percent, e.g. 0-10000:6.",
                                 number=number_)) from None
        tiers.append(tier)
    return check_tiers(tiers)


def format_tiers(tiers: Sequence[Tier]) -> str:
    """The text `parse_tiers` reads back in any language: machine forms, no exponent (a 10 % tier read "1E+1")."""
    def plain(value: Decimal) -> str:
        return format(value.normalize(), "f")

    return "\n".join(f"{plain(t.lower)}-{'' if t.upper is None else plain(t.upper)}:{plain(t.rate * 100)}"
                     for t in tiers)
