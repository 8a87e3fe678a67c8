"""销售报价 (seed 002 销售管理): a distributor quotes card packages to a customer at negotiated prices.

draft (edited freely: customer, valid-until day, note, lines) → sent → accepted | declined | expired;
a draft or a sent quote can be cancelled. Accepting converts each line into a pending card order
through `actions.card_orders.place_order` at the quoted unit price and discount, linked to its line
(`CardOrder.quote_line_id`, unique): the status moves by one conditional UPDATE (sent → accepted) and
the unique link backs it up, so two accepts at once convert the quote once. A sent quote whose
valid-until day has passed cannot be accepted; `expire_quotes` (cron, and each list page) marks it
expired.

Amounts are integer minor units; a line is gross = unit price × quantity, discount = gross × percent
rounded once (ROUND_HALF_UP), net = gross − discount: exactly what its card order will charge (the
order spreads the same discount over its cards with actions.money.allocate).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from actions import DomainError, NotAllowed, in_scope, require_role
from actions.audit import record
from actions.card_orders import MAX_QUANTITY, SELL_ROLES, customer_details, place_order
from actions.cards import require_verified
from actions.money import from_minor, parse, round_money, to_minor
from actions.orders import number_row
from actions.texts import label_param, message, money_param
from models import (
    CARD_QUOTE_STATUSES, CardCustomer, CardOrder, CardQuote, CardQuoteLine, Company, Package, User, utcnow,
)

QUOTE_ROLES = SELL_ROLES  # the distributor's administrators and platform sales (admins always)
PREFIX = "QT"
MAX_LINES = 100
DEFAULT_VALIDITY_DAYS = 30  # a new quote's form proposes valid until today + 30 days
EDITABLE = ("draft",)
CANCELLABLE = ("draft", "sent")


@dataclass(frozen=True)
class LineInput:
    """A quote line as typed: the package, the number of cards, the unit price (blank: the list price) and
    an optional discount in percent."""

    package: Package | None
    quantity: int | None
    unit_price: str = ""
    discount_percent: str = ""


@dataclass(frozen=True)
class LineAmounts:
    gross: Decimal
    discount: Decimal
    net: Decimal


def line_amounts(unit_price: Decimal, quantity: int, discount_percent: Decimal, currency: str) -> LineAmounts:
    """gross = unit price × quantity; discount = gross × percent / 100, rounded once; net = gross − discount."""
    gross = round_money(unit_price, currency) * quantity
    discount = round_money(gross * discount_percent / 100, currency) if discount_percent else from_minor(0, currency)
    return LineAmounts(gross, discount, gross - discount)


def _status(quote: CardQuote) -> str:
    return str(CARD_QUOTE_STATUSES.get(quote.status, quote.status))


def _may_touch(session: Session, actor: User, quote_or_seller) -> None:
    require_role(actor, QUOTE_ROLES)
    company_id = quote_or_seller.seller_company_id if isinstance(quote_or_seller, CardQuote) else quote_or_seller.id
    if not in_scope(actor, company_id, session):
        if isinstance(quote_or_seller, CardQuote):
            raise NotAllowed(_l("Quote %(number)s is outside your companies.", number=quote_or_seller.number))
        raise NotAllowed(_l("Company %(name)s is outside your companies.", name=quote_or_seller.name))


def _checked_lines(lines: Sequence[LineInput]) -> tuple[str, list[tuple[Package, int, Decimal, int]]]:
    """The currency and (package, quantity, unit price, discount in basis points) of each line; a bad line
    is refused by its number and field."""
    if not lines:
        raise DomainError(_l("A quote needs at least one line."))
    if len(lines) > MAX_LINES:
        raise DomainError(_l("A quote has at most %(max)s lines.", max=MAX_LINES))
    checked, currencies = [], set()
    for n, line in enumerate(lines, 1):
        package = line.package
        if package is None or package.kind != "card" or not package.active:
            raise DomainError(_l("Line %(n)s: choose an active card package.", n=n))
        if not isinstance(line.quantity, int) or not 1 <= line.quantity <= MAX_QUANTITY:
            raise DomainError(_l("Line %(n)s: quantity between 1 and %(max)s cards.", n=n, max=MAX_QUANTITY))
        currency = package.currency
        currencies.add(currency)
        price_text = (line.unit_price or "").strip()
        price = (round_money(package.amount, currency) if not price_text else
                 parse(price_text, currency, str(_l("Line %(n)s: unit price", n=n)), allow_zero=True))
        percent_text = (line.discount_percent or "").strip()
        percent = parse(percent_text, "CNY", str(_l("Line %(n)s: discount (%%)", n=n)), allow_zero=True) \
            if percent_text else Decimal(0)
        if percent >= 100:
            raise DomainError(_l("Line %(n)s: the discount must be below 100%%.", n=n))
        checked.append((package, line.quantity, price, int(percent * 100)))
    if len(currencies) > 1:
        raise DomainError(_l("A quote is in one currency: these packages are in %(currencies)s.",
                             currencies=", ".join(sorted(currencies))))
    return currencies.pop(), checked


def _summary(quote: CardQuote) -> dict:
    return message("audit.quote.saved", number=quote.number, customer=quote.customer_name, lines=len(quote.lines),
                   total=money_param(quote.total, quote.currency), day=quote.valid_until.isoformat())


def save_quote(session: Session, actor: User, *, seller: Company, valid_until: date | None,
               lines: Sequence[LineInput], today: date, quote: CardQuote | None = None,
               customer: CardCustomer | None = None, customer_name: str = "", customer_phone: str = "",
               customer_address: str = "", note: str = "") -> CardQuote:
    """Create a draft quote, or replace a draft's fields and lines (lines added and removed at once)."""
    _may_touch(session, actor, seller)
    if quote is not None:
        _may_touch(session, actor, quote)
        if quote.status not in EDITABLE:
            raise DomainError(_l("Quote %(number)s is %(status)s: only a draft can be edited.",
                                 number=quote.number, status=_status(quote)))
    require_verified(session, seller.id)
    customer_name, customer_phone, customer_address = customer_details(seller, customer, customer_name,
                                                                       customer_phone, customer_address)
    customer_name = (customer_name or "").strip()
    if not customer_name:
        raise DomainError(_l("Customer: pick a saved customer or type the customer's name."))
    if valid_until is None:
        raise DomainError(_l("Valid until: enter a date."))
    if valid_until < today:
        raise DomainError(_l("Valid until: %(day)s is in the past.", day=valid_until.isoformat()))
    currency, checked = _checked_lines(lines)
    created = quote is None
    if created:
        quote = CardQuote(status="draft", created_by_id=actor.id, created_at=utcnow())
    else:
        # Claim the draft: a send meanwhile makes this edit refuse instead of changing a sent quote.
        claimed = session.execute(update(CardQuote).where(CardQuote.id == quote.id, CardQuote.status == "draft")
                                  .values(updated_at=utcnow()).execution_options(synchronize_session=False)).rowcount
        if claimed != 1:
            session.refresh(quote)
            raise DomainError(_l("Quote %(number)s is %(status)s: only a draft can be edited.",
                                 number=quote.number, status=_status(quote)))
        quote.lines.clear()
        session.flush()
    quote.seller_company_id = seller.id
    quote.customer_id = customer.id if customer is not None else None
    quote.customer_name = customer_name[:200]
    quote.customer_phone = (customer_phone or "").strip()[:40]
    quote.customer_address = (customer_address or "").strip()[:255]
    quote.currency = currency
    quote.valid_until = valid_until
    quote.note = (note or "").strip()[:2000]
    total_minor = 0
    for package, quantity, price, discount_bp in checked:
        amounts = line_amounts(price, quantity, Decimal(discount_bp) / 100, currency)
        row = CardQuoteLine(package_id=package.id, package=package, quantity=quantity,
                            unit_price_minor=to_minor(price, currency), discount_bp=discount_bp,
                            gross_minor=to_minor(amounts.gross, currency),
                            discount_minor=to_minor(amounts.discount, currency),
                            net_minor=to_minor(amounts.net, currency))
        quote.lines.append(row)
        total_minor += row.net_minor
    quote.total_minor = total_minor
    if created:
        number_row(session, quote, PREFIX)
    session.flush()
    record(session, actor, "create" if created else "edit", "card_quote", [quote.id], _summary(quote))
    return quote


def _move(session: Session, actor: User | None, quote: CardQuote, allowed: Sequence[str], to: str, refusal,
          **values) -> None:
    """One conditional UPDATE from one of `allowed` to `to`; refused with `refusal(quote)` (naming the quote and
    its status as it is now) when it is not in `allowed`, or another change came first."""
    old = quote.status
    moved = session.execute(update(CardQuote).where(CardQuote.id == quote.id, CardQuote.status.in_(allowed))
                            .values(status=to, updated_at=utcnow(), **values)
                            .execution_options(synchronize_session=False)).rowcount
    session.refresh(quote)
    if moved != 1:
        raise DomainError(refusal(quote))
    record(session, actor, _ACTIONS[to], "card_quote", [quote.id],
           message("audit.quote.status", number=quote.number, old=label_param("quote_status", old),
                   new=label_param("quote_status", to)))


# The audit action of each target status (AUDIT_ACTIONS labels them).
_ACTIONS = {"sent": "send", "accepted": "accept", "declined": "decline", "cancelled": "cancel", "expired": "expire"}


def _only_draft_sent(quote):
    return _l("Quote %(number)s is %(status)s: only a draft can be sent.", number=quote.number, status=_status(quote))


def _only_sent_accepted(quote):
    return _l("Quote %(number)s is %(status)s: only a sent quote can be accepted.", number=quote.number,
              status=_status(quote))


def _only_sent_declined(quote):
    return _l("Quote %(number)s is %(status)s: only a sent quote can be declined.", number=quote.number,
              status=_status(quote))


def _only_open_cancelled(quote):
    return _l("Quote %(number)s is %(status)s: only a draft or a sent quote can be cancelled.", number=quote.number,
              status=_status(quote))


def _refuse_expired(quote: CardQuote, today: date) -> None:
    if quote.valid_until < today:
        raise DomainError(_l("Quote %(number)s was valid until %(day)s: it can no longer be accepted; make a new "
                             "quote.", number=quote.number, day=quote.valid_until.isoformat()))


def send_quote(session: Session, actor: User, quote: CardQuote, today: date) -> None:
    """发送: a draft with lines, still valid, goes to the customer (it can no longer be edited)."""
    _may_touch(session, actor, quote)
    if quote.status == "draft":
        if not quote.lines:
            raise DomainError(_l("A quote needs at least one line."))
        if quote.valid_until < today:
            raise DomainError(_l("Quote %(number)s: valid until %(day)s is in the past; edit the date first.",
                                 number=quote.number, day=quote.valid_until.isoformat()))
    _move(session, actor, quote, ("draft",), "sent", _only_draft_sent, sent_at=utcnow())


def accept_quote(session: Session, actor: User, quote: CardQuote, today: date) -> list[CardOrder]:
    """接受: the customer said yes. Each line becomes a pending card order at the quoted price and discount,
    linked to its line; a quote is converted once (conditional UPDATE, and the link is unique)."""
    _may_touch(session, actor, quote)
    if quote.status == "sent":
        _refuse_expired(quote, today)
    moved = session.execute(update(CardQuote).where(CardQuote.id == quote.id, CardQuote.status == "sent",
                                                    CardQuote.valid_until >= today)
                            .values(status="accepted", updated_at=utcnow(), closed_at=utcnow())
                            .execution_options(synchronize_session=False)).rowcount
    session.refresh(quote)
    if moved != 1:
        if quote.status == "sent":
            _refuse_expired(quote, today)
        raise DomainError(_only_sent_accepted(quote))
    seller = quote.seller
    orders = []
    for line in quote.lines:
        orders.append(place_order(
            session, actor, seller=seller, package=line.package, quantity=line.quantity, customer=quote.customer,
            customer_name=quote.customer_name, customer_phone=quote.customer_phone,
            shipping_address=quote.customer_address, unit_price=line.unit_price,
            promotion_percent=f"{line.discount_percent:f}" if line.discount_bp else "",
            promotion_label=f"{quote.number} -{line.discount_percent:f}%", quote_line_id=line.id))
    record(session, actor, "accept", "card_quote", [quote.id],
           message("audit.quote.accept", number=quote.number,
                   orders=", ".join(card_order.order.number for card_order in orders)))
    return orders


def decline_quote(session: Session, actor: User, quote: CardQuote) -> None:
    """拒绝: the customer said no (final)."""
    _may_touch(session, actor, quote)
    _move(session, actor, quote, ("sent",), "declined", _only_sent_declined, closed_at=utcnow())


def cancel_quote(session: Session, actor: User, quote: CardQuote) -> None:
    """取消: the seller withdraws a draft or a sent quote (final)."""
    _may_touch(session, actor, quote)
    _move(session, actor, quote, CANCELLABLE, "cancelled", _only_open_cancelled, closed_at=utcnow())


def expire_quotes(session: Session, today: date, seller_ids: Sequence[int] | None = None) -> list[str]:
    """Sent quotes valid until before `today` become expired (cron-safe, and run lazily by the list page);
    returns their numbers. `seller_ids` narrows it to some sellers."""
    query = select(CardQuote.id, CardQuote.number).where(CardQuote.status == "sent", CardQuote.valid_until < today)
    if seller_ids is not None:
        query = query.where(CardQuote.seller_company_id.in_(list(seller_ids)))
    due = session.execute(query.order_by(CardQuote.id)).all()
    if not due:
        return []
    ids = [row.id for row in due]
    session.execute(update(CardQuote).where(CardQuote.id.in_(ids), CardQuote.status == "sent",
                                            CardQuote.valid_until < today)
                    .values(status="expired", updated_at=utcnow(), closed_at=utcnow())
                    .execution_options(synchronize_session=False))
    numbers = [row.number for row in due]
    record(session, None, "expire", "card_quote", ids,
           message("audit.quote.expire", count=len(ids), numbers=", ".join(numbers[:50])))
    session.flush()
    return numbers


def quote_orders(session: Session, quote: CardQuote) -> list[CardOrder]:
    """The card orders an accepted quote was converted into, in line order."""
    return list(session.scalars(select(CardOrder).join(CardQuoteLine, CardQuoteLine.id == CardOrder.quote_line_id)
                                .where(CardQuoteLine.quote_id == quote.id).order_by(CardQuoteLine.id)))

