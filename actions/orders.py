"""Orders, the small public core every area plugs into.

`open_order` writes an order and its lines (gross, discount, net; each discount's share per line
in `order_discount`); `pay_with_balance`, `mark_paid` (a provider's notification) and
`pay_offline` (cash, confirmed transfer) pay it; `cancel_order` cancels it; `request_refund`,
`approve_refund` and `reject_refund` give some of its lines back. Each order kind registers
(`register_kind`) what paying delivers and what a refund undoes; paying a kind that registered
no delivery raises. The core's kinds register in `actions/order_kinds.py`.

Every state change of an order is a conditional UPDATE on its status (`… WHERE status =
'pending'`), checked by rowcount: an order is paid, cancelled or refunded exactly once however
many requests race for it. Money moves through actions.wallets in the same transaction; a 0.00
order is paid at once with no ledger movement. Functions flush; the caller commits once.
"""
from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session

from actions import ActionResult, DomainError, each_in_savepoint, in_scope, require_role, scoped
from actions.audit import record
from actions.dates import check_renewal_window
from actions.money import format_money, from_minor, parse, round_money, to_minor, zero
from actions.permissions import visible_order_kinds
from actions.providers.base import ProviderRefund
from actions.text_input import text_block
from actions.texts import english_all, label_param, message, money_param, render
from actions.wallets import credit, debit, wallet_for
from models import (
    CURRENCIES, ORDER_KINDS, ORDER_STATUSES, REFUND_STATUSES, BankTransferReceipt, CashReceipt, Company, Device, Order,
    OrderDiscount, OrderLine, OrderRefund, OrderRefundLine, Package, User, utcnow,
)

RENEWAL_ROLES = {"customer_admin", "tech_support", "finance", "sales"}
REFUND_ROLES = {"finance"}
MAX_MONTHS = 120
_CHUNK = 900


# --- the registry of order kinds ---------------------------------------------------------------

@dataclass(frozen=True)
class OrderKind:
    """What paying an order of this kind delivers, and what refunding some of its lines undoes."""

    code: str
    prefix: str
    deliver: Callable[[Session, Order, date], None]
    undo: Callable[[Session, Order, Sequence[OrderLine]], None] | None = None
    balance_pays: bool = True  # False: never paid from a wallet (a top-up of that wallet)
    # Why an order of this kind may not be paid online (a message), or None: a subscription of a service
    # sold offline (seed 003's OS flow) is paid from the balance or in cash.
    refuses_online: Callable[[Session, Order], object | None] | None = None

    @property
    def refundable(self) -> bool:
        return self.undo is not None


_KINDS: dict[str, OrderKind] = {}


class UnknownOrderKind(DomainError):
    """An order of a kind that registered no delivery: paying it would deliver nothing, so nothing happens."""


def _status(status: str) -> str:
    """An order's status as the reader's words (messages name it: "it is 已支付", not "paid")."""
    return str(ORDER_STATUSES.get(status, status))


def register_kind(code: str, prefix: str, deliver: Callable[[Session, Order, date], None],
                  undo: Callable[[Session, Order, Sequence[OrderLine]], None] | None = None,
                  balance_pays: bool = True,
                  refuses_online: Callable[[Session, Order], object | None] | None = None) -> OrderKind:
    """Register an order kind (one of models.ORDER_KINDS). `undo` None: its orders cannot be refunded;
    `balance_pays` False: the pay page offers no balance and `pay_with_balance` refuses; `refuses_online`
    (session, order) → a message when that order may not be paid online (refuse_online)."""
    if code not in ORDER_KINDS:
        raise ValueError(f"order kind {code!r} is not in models.ORDER_KINDS")
    existing = _KINDS.get(code)
    kind = OrderKind(code, prefix, deliver, undo, balance_pays, refuses_online)
    if existing is not None and existing != kind:
        raise ValueError(f"order kind {code!r} is registered twice")
    _KINDS[code] = kind
    return _KINDS[code]


def order_kind(code: str) -> OrderKind:
    """The registration of `code`; an order kind that registered nothing raises (it would deliver nothing)."""
    try:
        return _KINDS[code]
    except KeyError:
        raise UnknownOrderKind(_l("Orders of kind %(kind)s cannot be paid or refunded here: nothing is registered to "
                                  "deliver them.", kind=code)) from None


def refundable_kinds() -> tuple[str, ...]:
    return tuple(code for code, kind in _KINDS.items() if kind.refundable)


# --- dates and prices ----------------------------------------------------------------------------

def add_months(day: date, months: int) -> date:
    """`day` plus whole months, clamped to the end of shorter months (Jan 31 + 1 = Feb 28/29)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def renewed_until(expires_on: date, months: int, today: date) -> date:
    """The new expiry of a renewal: max(expiry, today) + N months (DESIGN.md section 3)."""
    return add_months(max(expires_on, today), months)


def renewal_price(package: Package, months: int) -> Decimal:
    """The price of N months of `package`: per month × N, per year × N/12, per term × N/term."""
    if months <= 0 or months > MAX_MONTHS:
        raise DomainError(_l("Months: between 1 and %(max)s.", max=MAX_MONTHS))
    if package.pricing == "per_month":
        price = package.amount * months
    elif package.pricing == "per_year":
        price = package.amount * months / Decimal(12)
    else:
        term = package.term_months or 0
        if term <= 0 or months % term:
            raise DomainError(_l("Package %(code)s is sold in terms of %(term)s months: %(months)s months is not a whole number of terms.",
                                 code=package.code, term=term, months=months))
        price = package.amount * (months // term)
    return round_money(price, package.currency)


# --- opening an order ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DiscountSpec:
    """One discount on one line: a line promotion, or the line's share of an invoice promotion."""

    source: str  # "line" | "invoice"
    label: str
    amount: Decimal
    promotion_ref: str | None = None


@dataclass(frozen=True)
class LineSpec:
    """One line of an order to open: what it is, its gross price and the discounts on it.

    `description` is plain text, or a stored message (actions.texts.message) shown in the reader's language."""

    description: str | dict
    gross: Decimal
    quantity: int = 1
    unit_price: Decimal | None = None
    discounts: Sequence[DiscountSpec] = ()
    device_id: int | None = None
    package_id: int | None = None
    months: int | None = None
    edition: str | None = None
    member_account_id: int | None = None
    old_level: str | None = None
    old_expires_on: date | None = None
    new_expires_on: date | None = None
    extra: dict = field(default_factory=dict)


def number_row(session: Session, row, prefix: str) -> None:
    """Give a new numbered row (an order, a quote) its number, `<prefix><yyyymmdd>-<id>` (flushes it)."""
    row.number = f"tmp-{uuid.uuid4().hex[:24]}"
    session.add(row)
    session.flush()
    row.number = f"{prefix}{row.created_at:%Y%m%d}-{row.id:06d}"
    session.flush()


def number_order(session: Session, order: Order) -> None:
    """Give a new order its number, `<prefix><yyyymmdd>-<id>` (flushes it)."""
    number_row(session, order, order_kind(order.kind).prefix)


def open_order(session: Session, actor: User | None, *, kind: str, company_id: int, currency: str,
               lines: Sequence[LineSpec], note: str | dict = "", promotion: str | None = None,
               today: date | None = None) -> Order:
    """A pending order of `kind` with `lines` (net = gross − discounts ≥ 0 each; total = Σ net).

    `note` and each line's description are plain text or a stored message (actions.texts.message),
    shown in the reader's language.

    A total of 0 is paid at once, with no ledger movement, and delivered (`today` needed then).
    """
    order_kind(kind)  # an unknown kind raises before anything is written
    if not lines:
        raise DomainError(_l("An order needs at least one line."))
    rows, total_minor = [], 0
    plain = english_all([note] + [spec.description for spec in lines])  # one locale switch for a thousand lines
    note, note_data, plain = plain[0], note if isinstance(note, dict) else None, plain[1:]
    texts = [(text, spec.description if isinstance(spec.description, dict) else None)
             for text, spec in zip(plain, lines)]
    minor_units: dict[Decimal, int] = {}  # a thousand lines share a few prices: round each price once

    def minor(amount: Decimal) -> int:
        found = minor_units.get(amount)
        if found is None:
            found = minor_units[amount] = to_minor(round_money(amount, currency), currency)
        return found

    for number, spec in enumerate(lines, 1):
        gross = minor(spec.gross)
        discount = sum(minor(d.amount) for d in spec.discounts)
        if gross < 0 or discount < 0 or any(d.amount <= 0 for d in spec.discounts):
            raise DomainError(_l("Line %(n)s (%(what)s): amounts must not be negative.", n=number,
                                 what=render(texts[number - 1][1], texts[number - 1][0])))
        if discount > gross:
            raise DomainError(_l("Line %(n)s (%(what)s): the discounts (%(discount)s) exceed its price (%(gross)s).",
                                 n=number, what=render(texts[number - 1][1], texts[number - 1][0]),
                                 discount=format_money(from_minor(discount, currency), currency),
                                 gross=format_money(from_minor(gross, currency), currency)))
        unit = spec.unit_price if spec.unit_price is not None else spec.gross
        rows.append((spec, gross, discount, minor(unit)))
        total_minor += gross - discount
    now = utcnow()
    order = Order(kind=kind, status="pending", company_id=company_id, currency=currency, total_minor=total_minor,
                  created_by_id=actor.id if actor else None, created_at=now, note=note[:255], note_data=note_data,
                  promotion=promotion)
    number_order(session, order)
    values = [
        {"order_id": order.id, "description": text[:255], "description_data": data, "quantity": spec.quantity,
         "unit_price_minor": unit, "gross_minor": gross, "discount_minor": discount, "net_minor": gross - discount,
         "refunded_minor": 0, "device_id": spec.device_id, "package_id": spec.package_id, "months": spec.months,
         "edition": spec.edition, "member_account_id": spec.member_account_id, "old_level": spec.old_level,
         "old_expires_on": spec.old_expires_on, "new_expires_on": spec.new_expires_on}
        for (spec, gross, discount, unit), (text, data) in zip(rows, texts)
    ]
    if any(spec.discounts for spec, *_ in rows):
        for value, (spec, *_rest) in zip(values, rows):
            line = OrderLine(**{k: v for k, v in value.items()})
            session.add(line)
            session.flush()
            for d in spec.discounts:
                session.add(OrderDiscount(order_id=order.id, line_id=line.id, source=d.source, label=d.label[:200],
                                          promotion_ref=d.promotion_ref,
                                          amount_minor=to_minor(round_money(d.amount, currency), currency)))
    else:  # one executemany of the table (no ORM bookkeeping): a thousand-line order is one statement
        session.execute(insert(OrderLine.__table__), values)
    session.flush()
    if total_minor == 0:
        if not claim_order(session, order, "pending", status="paid", paid_at=utcnow()):
            raise DomainError(_l("Order %(number)s is not awaiting payment.", number=order.number))
        deliver(session, order, today or date.today())
        record(session, actor, "pay", "order", [order.id], message("audit.order.free", order=order.number))
    session.flush()
    return order


def open_order_of_selected_lines(session: Session, *, kind: str, company_id: int, currency: str,
                                 columns: Sequence[str], lines: Callable[[int], object],
                                 note: str | dict = "") -> tuple[Order, int] | None:
    """A pending order whose lines are written by one INSERT … SELECT: `lines(order_id)` selects
    `columns` of order_line (order_id among them), gross, discount and net already in minor units
    (net = gross − discount, none negative: the table's CHECKs refuse anything else). No discount
    rows. None, and no order, when the SELECT finds no line.

    For jobs that build a thousand lines from other tables (auto-renewal): the rows never pass
    through Python. The order is paid as any other (pay_with_balance); its total is Σ net, and 0
    is paid there with no ledger movement. Returns the order and its number of lines."""
    order_kind(kind)
    (note_text,) = english_all([note])
    order = Order(kind=kind, status="pending", company_id=company_id, currency=currency, total_minor=0,
                  created_by_id=None, created_at=utcnow(), note=note_text[:255],
                  note_data=note if isinstance(note, dict) else None)
    number_order(session, order)
    line_table, order_table = OrderLine.__table__, Order.__table__
    # A plain INSERT: SQLAlchemy caches its compiled form (not a dialect's INSERT … ON CONFLICT's).
    session.execute(insert(line_table).from_select(list(columns), lines(order.id)))
    inserted, total_minor = session.execute(
        select(func.count(), func.coalesce(func.sum(line_table.c.net_minor), 0)).where(line_table.c.order_id == order.id)
    ).one()
    if not inserted:
        session.execute(order_table.delete().where(order_table.c.id == order.id))
        session.expunge(order)
        return None
    session.execute(order_table.update().where(order_table.c.id == order.id).values(total_minor=total_minor))
    session.expire(order)
    return order, inserted


def deliver(session: Session, order: Order, today: date) -> None:
    """Deliver what a just-paid order bought, in the payment's transaction, however it was paid."""
    order_kind(order.kind).deliver(session, order, today)


def claim_order(session: Session, order: Order, from_status: str, *, reserved_for: str | None = None,
                **values) -> bool:
    """Move the order out of `from_status` if nobody else did; True when this call won.

    A pending order whose payment_method is set is reserved for that payment (sales entered its cash, which
    finance has yet to confirm: reserve_for_cash): it is claimed only by the call that takes that payment
    (`reserved_for` the method), never paid another way nor cancelled. The condition is in the UPDATE, so a
    payment racing the cash entry loses in the database whichever commits first."""
    held = Order.payment_method == reserved_for if reserved_for else Order.payment_method.is_(None)
    result = session.execute(
        update(Order).where(Order.id == order.id, Order.status == from_status,
                            *((held,) if from_status == "pending" else ())).values(**values)
        .execution_options(synchronize_session=False)
    )
    session.expire(order)
    return result.rowcount == 1


@dataclass(frozen=True)
class RenewalQuote:
    """What renewing these devices for N months would cost, line by line."""

    company: Company
    months: int
    currency: str
    lines: tuple[tuple[Device, Package, Decimal, date], ...]  # device, package, price, new expiry

    @property
    def total(self) -> Decimal:
        return sum((price for _d, _p, price, _e in self.lines), zero(self.currency))


def quote_renewal(session: Session, actor: User, company: Company, devices: Sequence[Device], months: int,
                  today: date) -> RenewalQuote:
    """Price a renewal, refusing with device numbers named: no package, suspended, mixed currency, out of scope."""
    require_role(actor, RENEWAL_ROLES)
    if not in_scope(actor, company.id, session):
        raise DomainError(_l("Company %(name)s is outside your companies.", name=company.name))
    if not devices:
        raise DomainError(_l("Select at least one device to renew."))
    if not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise DomainError(_l("Months: between 1 and %(max)s.", max=MAX_MONTHS))
    tree = set(session.scalars(company.subtree_ids()))
    problems: list[str] = []
    outside = [d.number for d in devices if d.company_id not in tree]
    if outside:
        problems.append(str(_l("not devices of %(company)s: %(numbers)s", company=company.name, numbers=", ".join(outside))))
    unbound = [d.number for d in devices if d.package is None]
    if unbound:
        problems.append(str(_l("no renewal package bound (bind one first): %(numbers)s", numbers=", ".join(unbound))))
    inactive = [d.number for d in devices if d.package is not None and not d.package.active]
    if inactive:
        problems.append(str(_l("their package is no longer sold: %(numbers)s", numbers=", ".join(inactive))))
    suspended = [d.number for d in devices if d.status == "suspended"]
    if suspended:
        problems.append(str(_l("suspended devices cannot be renewed: %(numbers)s", numbers=", ".join(suspended))))
    currencies = {d.package.currency for d in devices if d.package is not None}
    if len(currencies) > 1:
        by_currency = "; ".join(
            f"{c}: {', '.join(d.number for d in devices if d.package is not None and d.package.currency == c)}"
            for c in sorted(currencies))
        problems.append(str(_l("one order is paid in one currency; these differ: %(list)s", list=by_currency)))
    if problems:
        raise DomainError(_l("Cannot renew — %(problems)s.", problems="; ".join(problems)))
    check_renewal_window(devices, months, today)
    lines = tuple(
        (d, d.package, renewal_price(d.package, months), renewed_until(d.expires_on, months, today))
        for d in devices
    )
    return RenewalQuote(company, months, currencies.pop(), lines)


def renewals_awaiting_payment(session: Session, device_ids: Collection[int]) -> dict[int, str]:
    """The pending renewal order each of these devices is in, as device id → order number (one query)."""
    if not device_ids:
        return {}
    return dict(session.execute(
        select(OrderLine.device_id, Order.number).join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.device_id.in_(sorted(device_ids)), Order.status == "pending", Order.kind == "renewal")
    ).all())


def create_renewal_order(session: Session, actor: User, quote: RenewalQuote) -> Order:
    """A pending renewal order for the quoted devices (paid later, by balance or a provider).

    A device is in one pending renewal order at a time: the customer pays or cancels that one before
    opening another. The device rows are locked first (PostgreSQL; SQLite's write transaction holds
    the database), so two orders opened at once for one device cannot both pass."""
    require_role(actor, RENEWAL_ROLES)
    ids = sorted(d.id for d, _p, _price, _new in quote.lines)
    session.execute(select(Device.id).where(Device.id.in_(ids)).order_by(Device.id).with_for_update())
    waiting = renewals_awaiting_payment(session, ids)
    if waiting:
        numbers = {d.id: d.number for d, _p, _price, _new in quote.lines}
        by_order: dict[str, list[str]] = {}
        for device_id in ids:
            if device_id in waiting:
                by_order.setdefault(waiting[device_id], []).append(numbers[device_id])
        raise DomainError(_l(
            "Already awaiting payment in another order (pay or cancel that order first): %(orders)s.",
            orders="; ".join(f"{order} ({', '.join(devices)})" for order, devices in sorted(by_order.items()))))
    order = open_order(
        session, actor, kind="renewal", company_id=quote.company.id, currency=quote.currency,
        lines=[LineSpec(description=message("order.line.renewal", device=d.number, package=p.name, months=quote.months),
                        gross=price, unit_price=price,
                        device_id=d.id, package_id=p.id, months=quote.months)
               for d, p, price, _new in quote.lines],
    )
    record(session, actor, "create", "order", [order.id],
           message("audit.order.renewal", order=order.number, devices=len(quote.lines), months=quote.months,
                   amount=money_param(order.total, order.currency)))
    session.flush()
    return order


def create_recharge_order(session: Session, actor: User, company: Company, currency: str, amount) -> Order:
    """A pending top-up of the company's wallet, paid through an online provider."""
    require_role(actor, {"customer_admin"})
    if not in_scope(actor, company.id, session):
        raise DomainError(_l("Company %(name)s is outside your companies.", name=company.name))
    if currency not in CURRENCIES:  # CNY, USD and VND: each has its online provider (VND: VNPT Pay)
        raise DomainError(_l("Currency: %(currency)s cannot be recharged.", currency=currency))
    amount = parse(amount, currency, str(_l("Amount")))
    order = open_order(session, actor, kind="recharge", company_id=company.id, currency=currency,
                       lines=[LineSpec(description=message("order.line.recharge", amount=money_param(amount, currency)),
                                       gross=amount)])
    record(session, actor, "create", "order", [order.id],
           message("audit.order.recharge", order=order.number, amount=money_param(amount, currency)))
    session.flush()
    return order


def record_paid_recharge(session: Session, actor: User, *, company_id: int, currency: str, amount: Decimal,
                         method: str, paid_at: datetime, note: str | dict = "") -> Order:
    """A recharge order paid outside the order flow (an approved 线下充值): opened and marked paid by `method`
    at `paid_at` at once, so the customer's 充值记录 and finance's 订单管理 list it. Nothing is delivered here:
    the caller credits the wallet, in the same transaction, under its own idempotency key."""
    if method != "offline":
        raise DomainError(_l("Payment method: %(method)s is not paid offline.", method=method))
    order = open_order(session, actor, kind="recharge", company_id=company_id, currency=currency, note=note,
                       lines=[LineSpec(description=message("order.line.recharge", amount=money_param(amount, currency)),
                                       gross=amount)])
    if not claim_order(session, order, "pending", status="paid", payment_method=method, paid_at=paid_at):
        raise DomainError(_l("Order %(number)s is not awaiting payment.", number=order.number))
    record(session, actor, "pay", "order", [order.id],
           message("audit.order.pay_offline", order=order.number, amount=money_param(amount, currency),
                   method=label_param("payment_method", method)))
    session.flush()
    return order


def scoped_order(session: Session, actor: User, number: str) -> Order | None:
    """The order numbered `number` if it belongs to the actor's companies, else None; for an employee limited to
    some areas (actions.permissions), only an order of a kind its areas make."""
    query = scoped(select(Order).where(Order.number == number), actor, Order.company_id)
    kinds = visible_order_kinds(actor)
    if kinds is not None:
        query = query.where(Order.kind.in_(sorted(kinds)))
    return session.scalar(query)


# --- what the core's kinds deliver and undo (registered in actions/order_kinds.py) ---------------

def apply_renewal(session: Session, order: Order, today: date) -> None:
    """Move each renewed device's expiry, remembering old and new on its line for refunds.

    Lines opened with their old and new expiry (auto-renewal read them already) are used as they
    are; the others get them from the devices now. Then one set-based UPDATE … FROM order_line
    moves every device whose expiry is still the line's old one.
    """
    line_table, device = OrderLine.__table__, Device.__table__
    devices = (line_table.c.order_id == order.id, line_table.c.device_id.isnot(None))
    # Counted, not fetched: an auto-renewal order has thousands of lines, all with their expiries.
    expected, unpriced = session.execute(
        select(func.count(), func.count(line_table.c.id).filter(line_table.c.new_expires_on.is_(None))).where(*devices)
    ).one()
    if unpriced:
        _price_lines_expiries(session, order, session.execute(
            select(line_table.c.id, line_table.c.device_id, line_table.c.months)
            .where(*devices, line_table.c.new_expires_on.is_(None))
        ).all(), today)
    result = session.execute(
        device.update()
        .where(line_table.c.order_id == order.id, device.c.id == line_table.c.device_id,
               device.c.expires_on == line_table.c.old_expires_on, device.c.status != "suspended")
        .values(expires_on=line_table.c.new_expires_on)
    )
    if result.rowcount != expected:
        suspended = session.scalars(
            select(Device.number).join(OrderLine, OrderLine.device_id == Device.id)
            .where(OrderLine.order_id == order.id, Device.status == "suspended").order_by(Device.number)
        ).all()
        if suspended:
            raise DomainError(_l("Cannot renew — suspended devices cannot be renewed: %(numbers)s.",
                                 numbers=", ".join(suspended)))
        raise DomainError(_l("Some devices of order %(number)s changed meanwhile; nothing was paid. Try again.",
                             number=order.number))
    session.expire_all()


def _price_lines_expiries(session: Session, order: Order, lines: Sequence, today: date) -> None:
    """Write each line's old expiry (the device's now) and new one (renewed_until); suspended devices refuse."""
    current: dict[int, tuple[date, str, str]] = {}
    ids = [line.device_id for line in lines]
    for start in range(0, len(ids), _CHUNK):
        for id_, expires_on, status, number in session.execute(
            select(Device.id, Device.expires_on, Device.status, Device.number).where(Device.id.in_(ids[start:start + _CHUNK]))
        ):
            current[id_] = (expires_on, status, number)
    suspended = [current[i][2] for i in ids if current[i][1] == "suspended"]
    if suspended:
        raise DomainError(_l("Cannot renew — suspended devices cannot be renewed: %(numbers)s.",
                             numbers=", ".join(suspended)))
    line_table = OrderLine.__table__
    session.execute(
        line_table.update().where(line_table.c.id == bindparam("b_line"))
        .values(old_expires_on=bindparam("b_old"), new_expires_on=bindparam("b_new")),
        [{"b_line": line.id, "b_old": current[line.device_id][0],
          "b_new": renewed_until(current[line.device_id][0], line.months, today)} for line in lines],
    )


def undo_renewal(session: Session, order: Order, lines: Sequence[OrderLine]) -> None:
    """Put refunded lines' devices back to their expiry before the renewal (unless changed since)."""
    rows = [(line.device_id, line.old_expires_on, line.new_expires_on) for line in lines if line.device_id]
    if not rows:
        return
    device = Device.__table__
    result = session.execute(
        device.update()
        .where(device.c.id == bindparam("b_id"), device.c.expires_on == bindparam("b_new"))
        .values(expires_on=bindparam("b_old")),
        [{"b_id": d, "b_old": old, "b_new": new} for d, old, new in rows],
    )
    if result.rowcount != len(rows):
        raise DomainError(_l("Order %(number)s: some devices' expiry changed after this renewal; "
                             "refund the later change first.", number=order.number))


def credit_recharge(session: Session, order: Order, today: date) -> None:
    """A paid top-up credits the company's wallet with the order's total."""
    wallet = wallet_for(session, order.company_id, order.currency)
    credit(session, wallet, order.total, "recharge", f"recharge:order:{order.id}", None, order_id=order.id,
           memo=message("ledger.paid", order=order.number, method=label_param("payment_method", order.payment_method)))


def undo_recharge(session: Session, order: Order, lines: Sequence[OrderLine]) -> None:
    """A refunded top-up takes its money out of the wallet again (refused if it was spent)."""
    amount = sum((line.net for line in lines), zero(order.currency))
    wallet = wallet_for(session, order.company_id, order.currency)
    debit(session, wallet, amount, "refund", f"unrecharge:order:{order.id}:" + ",".join(str(line.id) for line in lines),
          None, order_id=order.id, memo=message("ledger.refund", order=order.number))


# --- paying --------------------------------------------------------------------------------------

def cash_awaiting_confirmation(session: Session, order: Order) -> int | None:
    """The id of the cash receipt sales entered for `order` that finance has yet to confirm, or None. The
    cash is with sales: the order is paid when finance confirms it, so it is neither paid again (balance,
    online, offline) nor cancelled meanwhile."""
    return session.scalar(select(CashReceipt.id).where(CashReceipt.order_id == order.id,
                                                       CashReceipt.status == "submitted").limit(1))


def reserve_for_cash(session: Session, order: Order) -> bool:
    """Reserve a pending order for the cash sales is entering (its payment_method becomes cash while it stays
    pending); False when it is no longer pending or already reserved. Only confirming that cash pays it
    (mark_paid with reserved=True); nothing cancels it meanwhile (claim_order)."""
    done = session.execute(update(Order).where(Order.id == order.id, Order.status == "pending",
                                               Order.payment_method.is_(None)).values(payment_method="cash")
                           .execution_options(synchronize_session=False)).rowcount
    session.expire(order)
    return done == 1


def release_cash_reservation(session: Session, order: Order) -> None:
    """The cash the order was reserved for was rejected by finance: it awaits payment like any pending order."""
    session.execute(update(Order).where(Order.id == order.id, Order.status == "pending",
                                        Order.payment_method == "cash").values(payment_method=None)
                    .execution_options(synchronize_session=False))
    session.expire(order)


def refuse_if_cash_awaits(session: Session, order: Order) -> None:
    """DomainError naming the order and its receipt when sales entered cash for it (cash_awaiting_confirmation)."""
    receipt = cash_awaiting_confirmation(session, order)
    if receipt is not None:
        raise DomainError(_l("Order %(number)s: its cash receipt #%(id)s is awaiting finance's confirmation; it is "
                             "paid when finance confirms it.", number=order.number, id=receipt))


def refuse_online(session: Session, order: Order) -> None:
    """DomainError when `order` may not be paid online (its kind says why, e.g. a service sold offline)."""
    refuses = order_kind(order.kind).refuses_online
    reason = refuses(session, order) if refuses is not None else None
    if reason is not None:
        raise DomainError(reason)


def pay_with_balance(session: Session, actor: User | None, order: Order, today: date) -> None:
    """Pay a pending order from the company's wallet; the debit and the delivery share one transaction.

    `actor` None is a scheduled job (auto-renewal) paying from the order's own company's wallet.
    """
    if actor is not None:
        require_role(actor, RENEWAL_ROLES | {"customer_admin"})
        if not in_scope(actor, order.company_id, session):
            raise DomainError(_l("Order %(number)s is outside your companies.", number=order.number))
    if order.kind == "recharge":
        raise DomainError(_l("A recharge order cannot be paid from the balance it tops up."))
    if not order_kind(order.kind).balance_pays:
        raise DomainError(_l("Order %(number)s is paid online or by bank transfer, not from the balance.",
                             number=order.number))
    refuse_if_cash_awaits(session, order)
    number, total, currency, company_id = order.number, order.total, order.currency, order.company_id
    if not claim_order(session, order, "pending", status="paid", payment_method="balance", paid_at=utcnow()):
        refuse_if_cash_awaits(session, order)  # entered a moment ago
        raise DomainError(_l("Order %(number)s is not awaiting payment (it is %(status)s).",
                             number=number, status=_status(order.status)))
    if total > 0:
        wallet = wallet_for(session, company_id, currency)
        debit(session, wallet, total, "payment", f"pay:order:{order.id}", actor, order_id=order.id,
              memo=message("ledger.payment", order=number))
    deliver(session, order, today)
    record(session, actor, "pay", "order", [order.id],
           message("audit.order.pay_balance", order=number, amount=money_param(total, currency)))
    session.flush()


def pay_offline(session: Session, actor: User, order: Order, method: str, today: date, note: str = "") -> None:
    """Staff record a payment received outside the system (cash): paid now, delivered now."""
    if method not in ("cash", "bank_transfer"):
        raise DomainError(_l("Payment method: %(method)s is not paid offline.", method=method))
    order_kind(order.kind)
    refuse_if_cash_awaits(session, order)
    number = order.number
    if not claim_order(session, order, "pending", status="paid", payment_method=method, paid_at=utcnow()):
        refuse_if_cash_awaits(session, order)  # entered a moment ago
        raise DomainError(_l("Order %(number)s is not awaiting payment.", number=number))
    deliver(session, order, today)
    record(session, actor, "pay", "order", [order.id],
           message("audit.order.pay_offline_note" if note else "audit.order.pay_offline", order=number,
                   amount=money_param(order.total, order.currency), method=label_param("payment_method", method),
                   **({"note": note} if note else {})))
    session.flush()


def mark_paid(session: Session, order: Order, method: str, provider_ref: str, amount: Decimal, currency: str,
              today: date, *, reserved: bool = False) -> bool:
    """A provider says the order is paid. True the first time; False for a repeat of the same payment.
    `reserved`: the payment the order was reserved for (confirmed cash, reserve_for_cash)."""
    order_kind(order.kind)
    if currency != order.currency or Decimal(amount) != order.total:
        raise DomainError(_l("Payment for %(number)s does not match the order: %(amount)s %(currency)s.",
                             number=order.number, amount=amount, currency=currency))
    if order.status == "paid" and order.provider_ref == provider_ref:
        return False
    if not claim_order(session, order, "pending", status="paid", payment_method=method, provider_ref=provider_ref,
                       paid_at=utcnow(), reserved_for=method if reserved else None):
        if order.status == "paid" and order.provider_ref == provider_ref:
            return False  # a concurrent delivery of the same notification won
        refuse_if_cash_awaits(session, order)
        raise DomainError(_l("Order %(number)s is not awaiting payment (it is %(status)s).",
                             number=order.number, status=_status(order.status)))
    deliver(session, order, today)
    record(session, None, "pay", "order", [order.id],
           message("audit.order.pay_provider", order=order.number, amount=money_param(order.total, currency),
                   method=label_param("payment_method", method), reference=provider_ref))
    session.flush()
    return True


# --- cancelling ----------------------------------------------------------------------------------

# Pending orders that are someone's work in progress (a payment awaiting confirmation by finance) or
# that wait by their own area's rules (a subscription's renewal order) are never cancelled as stale:
# each area registers the condition that says so, given the job's `now`.
_AWAITING_CONFIRMATION: list[Callable[[datetime], object]] = [
    lambda now: exists().where(BankTransferReceipt.order_id == Order.id, BankTransferReceipt.status == "submitted"),
    # cash sales entered (a subscription's, seed 003's OS flow): cash_awaiting_confirmation below
    lambda now: exists().where(CashReceipt.order_id == Order.id, CashReceipt.status == "submitted"),
]


def keep_pending_while(condition: Callable[[datetime], object]) -> None:
    """Register a condition over Order (an EXISTS correlated to Order.id), given the job's `now`: pending
    orders it matches are not cancelled as stale."""
    _AWAITING_CONFIRMATION.append(condition)


def cancel_stale_orders(session: Session, older_than: timedelta, now: datetime) -> int:
    """Cancel pending orders created before now - older_than, except those awaiting a confirmation; how many."""
    awaited = [~condition(now) for condition in _AWAITING_CONFIRMATION]
    result = session.execute(
        update(Order).where(Order.status == "pending", Order.payment_method.is_(None),
                            Order.created_at < now - older_than, *awaited)
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        record(session, None, "cancel_stale", "order", [], message("audit.order.cancel_stale", count=result.rowcount))
    return result.rowcount


def cancel_order(session: Session, actor: User, order: Order) -> None:
    """Cancel a pending order of the actor's companies."""
    require_role(actor, RENEWAL_ROLES)
    if not in_scope(actor, order.company_id, session):
        raise DomainError(_l("Order %(number)s is outside your companies.", number=order.number))
    number = order.number
    refused = not claim_order(session, order, "pending", status="cancelled", cancelled_at=utcnow())
    receipt = cash_awaiting_confirmation(session, order) if refused else None
    if receipt is not None:  # the cash is with sales: cancelled, finance could never confirm it
        raise DomainError(_l("Order %(number)s: its cash receipt #%(id)s is awaiting finance's confirmation; it "
                             "cannot be cancelled now.", number=number, id=receipt))
    if refused:
        raise DomainError(_l("Order %(number)s is not awaiting payment (it is %(status)s).",
                             number=number, status=_status(order.status)))
    record(session, actor, "cancel", "order", [order.id], message("audit.order.cancel", order=number))
    session.flush()


# --- refunds: requested → approved → completed | processing | rejected | failed ----------------------
# A provider that accepts a refund may pay it out later (WeChat Pay's PROCESSING, PayPal's PENDING): the
# refund is "processing" until the provider says where the money went (actions.provider_settlement asks):
# "completed", or "not_paid_out" (the provider gave up: finance pays it back by hand, then marks it so).

# Methods whose money the system gives back itself; the others (cash, bank transfer) are paid back
# by finance outside the system, which approving the refund records.
_PROVIDER_REFUNDS: dict[str, Callable[[Session, Order, OrderRefund], ProviderRefund]] = {}


def register_provider_refund(method: str, refund: Callable[[Session, Order, OrderRefund], ProviderRefund]) -> None:
    """How to give money back for orders paid with `method`: returns what the provider answered, or raises."""
    _PROVIDER_REFUNDS[method] = refund


def request_refund(session: Session, actor: User, order: Order, line_ids: Sequence[int] | None = None,
                   reason: str = "") -> OrderRefund:
    """Ask to refund some lines of a paid order (all refundable ones when `line_ids` is None).

    The refund gives back exactly those lines' net; another person approves it.
    """
    require_role(actor, REFUND_ROLES)
    number = order.number
    kind = order_kind(order.kind)
    if not kind.refundable:
        raise DomainError(_l("Order %(number)s cannot be refunded: %(kind)s orders cannot be undone.",
                             number=number, kind=ORDER_KINDS[order.kind]))
    if order.status != "paid":
        raise DomainError(_l("Order %(number)s cannot be refunded: it is %(status)s.", number=number,
                             status=_status(order.status)))
    lines = {line.id: line for line in order.lines}
    wanted = list(lines) if line_ids is None else list(dict.fromkeys(int(i) for i in line_ids))
    unknown = [str(i) for i in wanted if i not in lines]
    if unknown:
        raise DomainError(_l("Order %(number)s has no line %(lines)s.", number=number, lines=", ".join(unknown)))
    chosen = [lines[i] for i in wanted if lines[i].refundable]
    done = [lines[i].description for i in wanted if not lines[i].refundable]
    if line_ids is not None and done:
        raise DomainError(_l("Order %(number)s: already refunded or free: %(lines)s.", number=number,
                             lines="; ".join(done)))
    if not chosen:
        raise DomainError(_l("Order %(number)s has nothing left to refund.", number=number))
    open_refund = session.scalar(select(OrderRefundLine.line_id).join(OrderRefund).where(
        OrderRefundLine.line_id.in_([line.id for line in chosen]),
        OrderRefund.status.in_(("requested", "approved"))).limit(1))
    if open_refund is not None:
        raise DomainError(_l("Order %(number)s: line %(line)s already has a refund awaiting approval.",
                             number=number, line=lines[open_refund].description))
    amount_minor = sum(line.net_minor for line in chosen)
    refund = OrderRefund(order_id=order.id, status="requested", amount_minor=amount_minor, reason=reason[:2000],
                         requested_by_id=actor.id, created_at=utcnow())
    session.add(refund)
    session.flush()
    session.execute(insert(OrderRefundLine), [{"refund_id": refund.id, "line_id": line.id,
                                               "amount_minor": line.net_minor} for line in chosen])
    record(session, actor, "request_refund", "order", [order.id],
           message("audit.order.request_refund", order=number, refund=refund.id, lines=len(chosen),
                   amount=money_param(from_minor(amount_minor, order.currency), order.currency)))
    session.flush()
    return refund


def _claim_refund(session: Session, refund: OrderRefund, from_status: str, **values) -> bool:
    result = session.execute(update(OrderRefund).where(OrderRefund.id == refund.id, OrderRefund.status == from_status)
                             .values(**values).execution_options(synchronize_session=False))
    session.expire(refund)
    return result.rowcount == 1


class _ProviderRefused(Exception):
    """The provider refused to give the money back: the refund fails, nothing else changes."""


def approve_refund(session: Session, approver: User, refund: OrderRefund, today: date) -> str:
    """Approve a requested refund (not by its requester) and carry it out: the kind undoes those lines'
    effects, the money goes back the way the order was paid, once, whatever races.

    Returns the refund's new status: "completed"; "processing" when the provider accepted it but has not
    paid it out yet (the lines, the order and the kind's effects are refunded already); or "failed" when the
    provider refused it (its reason in `failure_reason`; the lines, the order and the kind's effects stay as
    they were).
    """
    require_role(approver, REFUND_ROLES)
    order = refund.order
    number = order.number
    if refund.requested_by_id == approver.id:
        raise DomainError(_l("Refund #%(id)s of %(number)s: you requested it; another person must approve it.",
                             id=refund.id, number=number))
    if not _claim_refund(session, refund, "requested", status="approved", approved_by_id=approver.id,
                         approved_at=utcnow()):
        raise DomainError(_l("Refund #%(id)s of %(number)s is not awaiting approval (it is %(status)s).",
                             id=refund.id, number=number,
                             status=REFUND_STATUSES.get(refund.status, refund.status)))
    lines = [rl.line for rl in refund.lines]
    try:
        with session.begin_nested():
            answer = _carry_out_refund(session, approver, refund, order, lines)
    except _ProviderRefused as exc:
        reason = str(exc.args[0])
        session.execute(update(OrderRefund).where(OrderRefund.id == refund.id)
                        .values(status="failed", completed_at=utcnow(), failure_reason=reason[:2000]))
        session.expire_all()
        record(session, approver, "refund_failed", "order", [order.id],
               message("audit.order.refund_failed", order=number, refund=refund.id, reason=reason,
                       method=label_param("payment_method", order.payment_method)))
        session.flush()
        return "failed"
    status = "processing" if answer is not None and answer.state == "processing" else "completed"
    session.execute(update(OrderRefund).where(OrderRefund.id == refund.id).values(
        status=status, completed_at=utcnow() if status == "completed" else None,
        provider_refund_id=answer.refund_id if answer is not None else None))
    session.execute(update(Order).where(Order.id == order.id, Order.refunded_minor == Order.total_minor)
                    .values(status="refunded", refunded_at=utcnow()))
    session.expire_all()
    if status == "processing":
        record(session, approver, "refund", "order", [order.id],
               message("audit.order.refund_processing", order=number, refund=refund.id, lines=len(lines),
                       amount=money_param(refund.amount, order.currency),
                       method=label_param("payment_method", order.payment_method)))
    elif order.payment_method:
        record(session, approver, "refund", "order", [order.id],
               message("audit.order.refund", order=number, refund=refund.id, lines=len(lines),
                       amount=money_param(refund.amount, order.currency),
                       method=label_param("payment_method", order.payment_method)))
    else:
        record(session, approver, "refund", "order", [order.id],
               message("audit.order.refund_free", order=number, refund=refund.id, lines=len(lines)))
    session.flush()
    return status


def _carry_out_refund(session: Session, approver: User, refund: OrderRefund, order: Order,
                      lines: list[OrderLine]) -> ProviderRefund | None:
    """The lines, the order's refunded amount, the kind's undo and the money back; what the provider answered
    (None: no provider gives this money back)."""
    number = order.number
    line_table = OrderLine.__table__
    taken = session.execute(
        line_table.update().where(line_table.c.id == bindparam("b_id"), line_table.c.refunded_minor == 0)
        .values(refunded_minor=bindparam("b_amount")),
        [{"b_id": rl.line_id, "b_amount": rl.amount_minor} for rl in refund.lines],
    )
    if taken.rowcount != len(refund.lines):
        raise DomainError(_l("Refund #%(id)s of %(number)s: some of its lines were refunded meanwhile.",
                             id=refund.id, number=number))
    result = session.execute(
        update(Order).where(Order.id == order.id, Order.status == "paid",
                            Order.refunded_minor + refund.amount_minor <= Order.total_minor)
        .values(refunded_minor=Order.refunded_minor + refund.amount_minor)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise DomainError(_l("Order %(number)s cannot give back %(amount)s more.", number=number,
                             amount=format_money(refund.amount, order.currency)))
    order_kind(order.kind).undo(session, order, lines)
    answer = None
    if order.payment_method == "balance":
        wallet = wallet_for(session, order.company_id, order.currency)
        credit(session, wallet, refund.amount, "refund", f"refund:{refund.id}", approver, order_id=order.id,
               memo=message("ledger.refund", order=number))
    elif order.payment_method in _PROVIDER_REFUNDS:
        try:
            answer = _PROVIDER_REFUNDS[order.payment_method](session, order, refund)
        except DomainError as exc:
            raise _ProviderRefused(str(exc)) from exc
        if answer.state == "failed":
            raise _ProviderRefused(answer.reason)
    return answer


def settle_refund(session: Session, refund: OrderRefund, answer: ProviderRefund) -> str:
    """Record where the money of a "processing" refund went, as its provider now says: "completed", or
    "not_paid_out" with the provider's reason (the lines stay refunded: finance pays the money back by hand).
    Once, whatever races (a conditional update); the refund's status after it."""
    number = refund.order.number
    if answer.state == "completed":
        done = _claim_refund(session, refund, "processing", status="completed", completed_at=utcnow())
        key, extra = "audit.order.refund_paid_out", {}
    elif answer.state == "failed":
        done = _claim_refund(session, refund, "processing", status="not_paid_out",
                             failure_reason=(answer.reason or "")[:2000])
        key, extra = "audit.order.refund_not_paid_out", {"reason": answer.reason}
    else:
        return refund.status
    if done:
        record(session, None, "refund_settled", "order", [refund.order_id],
               message(key, order=number, refund=refund.id, amount=money_param(refund.amount, refund.order.currency),
                       method=label_param("payment_method", refund.order.payment_method), **extra))
        session.flush()
    return refund.status


def mark_paid_back_by_hand(session: Session, actor: User, refund: OrderRefund, note: str) -> None:
    """Finance paid a refund its provider did not pay out ("not_paid_out") back outside the system: it is
    completed, with the note (how and when it was paid)."""
    require_role(actor, REFUND_ROLES)
    note = text_block(note, _l("How it was paid back"), 2000)
    if not note:
        raise DomainError(_l("How it was paid back: say how and when the money reached the payer."))
    number = refund.order.number
    if not _claim_refund(session, refund, "not_paid_out", status="completed", completed_at=utcnow(),
                         failure_reason=note):
        raise DomainError(_l("Refund #%(id)s of %(number)s is not waiting to be paid back by hand (it is "
                             "%(status)s).", id=refund.id, number=number,
                             status=REFUND_STATUSES.get(refund.status, refund.status)))
    record(session, actor, "refund_by_hand", "order", [refund.order_id],
           message("audit.order.refund_by_hand", order=number, refund=refund.id,
                   amount=money_param(refund.amount, refund.order.currency), note=note))
    session.flush()


def reject_refund(session: Session, actor: User, refund: OrderRefund, reason: str) -> None:
    """Turn a requested refund down, with the reason (nothing moves)."""
    require_role(actor, REFUND_ROLES)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_l("Reason: say why the refund is rejected."))
    number = refund.order.number
    if not _claim_refund(session, refund, "requested", status="rejected", failure_reason=reason[:2000],
                         approved_at=utcnow()):
        raise DomainError(_l("Refund #%(id)s of %(number)s is not awaiting approval (it is %(status)s).",
                             id=refund.id, number=number,
                             status=REFUND_STATUSES.get(refund.status, refund.status)))
    record(session, actor, "reject_refund", "order", [refund.order_id],
           message("audit.order.reject_refund", order=number, refund=refund.id, reason=reason))
    session.flush()


def cancel_orders(session: Session, actor: User, orders: Sequence[Order]) -> ActionResult:
    """Cancel each pending order; the others are reported by order number with the reason."""
    require_role(actor, RENEWAL_ROLES)
    return each_in_savepoint(session, orders, lambda order: cancel_order(session, actor, order))


def request_refunds(session: Session, actor: User, orders: Sequence[Order], reason: str = "") -> ActionResult:
    """Request a refund of every refundable line of each order; refusals named by order number."""
    require_role(actor, REFUND_ROLES)
    return each_in_savepoint(session, orders, lambda order: request_refund(session, actor, order, None, reason))


def approve_refunds(session: Session, actor: User, refunds: Sequence[OrderRefund], today: date) -> ActionResult:
    """Approve each requested refund; one refused (named) leaves the others done."""
    require_role(actor, REFUND_ROLES)
    failed: list[tuple[str, str]] = []

    def approve(refund: OrderRefund) -> None:
        if approve_refund(session, actor, refund, today) == "failed":
            failed.append((refund.order.number, refund.failure_reason))

    result = each_in_savepoint(session, refunds, approve, label=lambda refund: refund.order.number)
    failed_numbers = {number for number, _reason in failed}
    return ActionResult(tuple(n for n in result.changed if n not in failed_numbers), result.refused + tuple(failed))
