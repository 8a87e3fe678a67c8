"""Orders: pricing, renewal orders, payment by balance or provider, expiry of stale orders, refunds.

Every state change of an order is a conditional UPDATE on its status (`… WHERE status =
'pending'`), checked by rowcount: an order is paid, cancelled or refunded exactly once however
many requests race for it. Money moves through actions.wallets in the same transaction.
"""
from __future__ import annotations

import calendar
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session

from actions import ActionResult, DomainError, NotAllowed, in_scope, require_role, scoped
from actions.audit import record
from actions.dates import check_renewal_window
from actions.wallets import credit, debit, parse_amount, wallet_for
from models import BankTransferReceipt, Company, Device, Order, OrderLine, Package, User, utcnow

CENT = Decimal("0.01")
NUMBER_PREFIX = {"recharge": "RC", "coins": "CO", "renewal": "RN", "value_added": "VA", "vip_upgrade": "VP",
                 "seats": "SE", "subscription": "SB", "card_sale": "CS"}
RENEWAL_ROLES = {"customer_admin", "tech_support", "finance", "sales"}
MAX_MONTHS = 120
# What a refund knows how to undo (money back; expiries rolled back, unused seats removed);
# coins and VIP upgrades would need their effects reversed too.
REFUNDABLE_KINDS = ("renewal", "value_added", "seats")
_CHUNK = 900


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
    return Decimal(price).quantize(CENT, rounding=ROUND_HALF_UP)


def _number_order(session: Session, order: Order) -> None:
    order.number = f"tmp-{uuid.uuid4().hex[:24]}"
    session.add(order)
    session.flush()
    order.number = f"{NUMBER_PREFIX[order.kind]}{order.created_at:%Y%m%d}-{order.id:06d}"
    session.flush()


@dataclass(frozen=True)
class RenewalQuote:
    """What renewing these devices for N months would cost, line by line."""

    company: Company
    months: int
    currency: str
    lines: tuple[tuple[Device, Package, Decimal, date], ...]  # device, package, price, new expiry

    @property
    def total(self) -> Decimal:
        return sum((price for _d, _p, price, _e in self.lines), Decimal("0.00"))


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


def create_renewal_order(session: Session, actor: User, quote: RenewalQuote) -> Order:
    """A pending renewal order for the quoted devices (paid later, by balance or a provider)."""
    require_role(actor, RENEWAL_ROLES)
    order = Order(kind="renewal", status="pending", company_id=quote.company.id, currency=quote.currency,
                  total=quote.total, created_by_id=actor.id, created_at=utcnow())
    _number_order(session, order)
    session.execute(
        OrderLine.__table__.insert(),
        [
            {"order_id": order.id, "device_id": d.id, "package_id": p.id, "months": quote.months,
             "quantity": 1, "unit_price": price, "amount": price,
             "description": f"{d.number} {p.code} × {quote.months}"}
            for d, p, price, _new in quote.lines
        ],
    )
    record(session, actor, "create", "order", [order.id],
           f"{order.number}: renew {len(quote.lines)} devices × {quote.months} months = {order.total} {order.currency}")
    session.flush()
    return order


def create_recharge_order(session: Session, actor: User, company: Company, currency: str, amount) -> Order:
    """A pending top-up of the company's wallet, paid through an online provider."""
    require_role(actor, {"customer_admin"})
    if not in_scope(actor, company.id, session):
        raise DomainError(_l("Company %(name)s is outside your companies.", name=company.name))
    if currency not in ("CNY", "USD"):
        raise DomainError(_l("Currency: %(currency)s cannot be recharged.", currency=currency))
    amount = parse_amount(amount, str(_l("Amount")))
    order = Order(kind="recharge", status="pending", company_id=company.id, currency=currency, total=amount,
                  created_by_id=actor.id, created_at=utcnow())
    _number_order(session, order)
    session.add(OrderLine(order_id=order.id, description=f"Recharge {amount} {currency}", quantity=1,
                          unit_price=amount, amount=amount))
    record(session, actor, "create", "order", [order.id], f"{order.number}: recharge {amount} {currency}")
    session.flush()
    return order


def scoped_order(session: Session, actor: User, number: str) -> Order | None:
    """The order numbered `number` if it belongs to the actor's companies, else None."""
    return session.scalar(scoped(select(Order).where(Order.number == number), actor, Order.company_id))


def _claim(session: Session, order: Order, from_status: str, **values) -> bool:
    """Move the order out of `from_status` if nobody else did; True when this call won."""
    result = session.execute(
        update(Order).where(Order.id == order.id, Order.status == from_status).values(**values)
        .execution_options(synchronize_session=False)
    )
    session.expire(order)
    return result.rowcount == 1


def _apply_renewal(session: Session, order: Order, today: date) -> None:
    """Move each renewed device's expiry (batched), remembering old and new for refunds."""
    lines = session.execute(
        select(OrderLine.id, OrderLine.device_id, OrderLine.months).where(OrderLine.order_id == order.id)
    ).all()
    current: dict[int, tuple[date, str]] = {}
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
    changes = [
        {"b_id": line.device_id, "b_old": current[line.device_id][0],
         "b_new": renewed_until(current[line.device_id][0], line.months, today), "b_line": line.id}
        for line in lines
    ]
    device = Device.__table__
    result = session.execute(
        device.update()
        .where(device.c.id == bindparam("b_id"), device.c.expires_on == bindparam("b_old"))
        .values(expires_on=bindparam("b_new")),
        changes,
    )
    if result.rowcount != len(changes):
        raise DomainError(_l("Some devices of order %(number)s changed meanwhile; nothing was paid. Try again.",
                             number=order.number))
    line_table = OrderLine.__table__
    session.execute(
        line_table.update().where(line_table.c.id == bindparam("b_line"))
        .values(old_expires_on=bindparam("b_old"), new_expires_on=bindparam("b_new")),
        changes,
    )
    session.expire_all()


def _fulfil(session: Session, order: Order, today: date) -> None:
    """Deliver what a just-paid order bought, in the payment's transaction, however it was paid."""
    via = f"{order.number} via {order.payment_method}"
    if order.kind == "recharge":
        wallet = wallet_for(session, order.company_id, order.currency)
        credit(session, wallet, order.total, "recharge", f"recharge:order:{order.id}", None, order_id=order.id,
               memo=via)
    elif order.kind == "renewal":
        _apply_renewal(session, order, today)
    elif order.kind == "coins":
        # 1 CNY buys 100 coins (seed 000); a 2-decimal total always makes whole coins.
        wallet = wallet_for(session, order.company_id, "COIN")
        credit(session, wallet, order.total * 100, "coin_purchase", f"coins:order:{order.id}", None,
               order_id=order.id, memo=via)
    elif order.kind == "seats":
        from actions.seats import add_purchased_seats  # actions.seats builds on this module

        add_purchased_seats(session, order)


def pay_with_balance(session: Session, actor: User, order: Order, today: date) -> None:
    """Pay a pending order from the company's wallet; the debit and the renewal share one transaction."""
    require_role(actor, RENEWAL_ROLES)
    if not in_scope(actor, order.company_id, session):
        raise DomainError(_l("Order %(number)s is outside your companies.", number=order.number))
    if order.kind == "recharge":
        raise DomainError(_l("A recharge order cannot be paid from the balance it tops up."))
    number, total, currency, company_id = order.number, order.total, order.currency, order.company_id
    if not _claim(session, order, "pending", status="paid", payment_method="balance", paid_at=utcnow()):
        raise DomainError(_l("Order %(number)s is not awaiting payment (it is %(status)s).",
                             number=number, status=order.status))
    wallet = wallet_for(session, company_id, currency)
    debit(session, wallet, total, "payment", f"pay:order:{order.id}", actor, order_id=order.id,
          memo=f"{number}")
    _fulfil(session, order, today)
    record(session, actor, "pay", "order", [order.id], f"{number}: {total} {currency} from balance")
    session.flush()


def mark_paid(session: Session, order: Order, method: str, provider_ref: str, amount: Decimal, currency: str,
              today: date) -> bool:
    """A provider says the order is paid. True the first time; False for a repeat of the same payment."""
    if currency != order.currency or Decimal(amount) != order.total:
        raise DomainError(_l("Payment for %(number)s does not match the order: %(amount)s %(currency)s.",
                             number=order.number, amount=amount, currency=currency))
    if order.status == "paid" and order.provider_ref == provider_ref:
        return False
    if not _claim(session, order, "pending", status="paid", payment_method=method, provider_ref=provider_ref,
                  paid_at=utcnow()):
        if order.status == "paid" and order.provider_ref == provider_ref:
            return False  # a concurrent delivery of the same notification won
        raise DomainError(_l("Order %(number)s is not awaiting payment (it is %(status)s).",
                             number=order.number, status=order.status))
    _fulfil(session, order, today)
    record(session, None, "pay", "order", [order.id], f"{order.number}: {amount} {currency} via {method} ({provider_ref})")
    session.flush()
    return True


def cancel_stale_orders(session: Session, older_than: timedelta, now: datetime) -> int:
    """Cancel pending orders created before now - older_than; returns how many."""
    awaiting_finance = exists().where(BankTransferReceipt.order_id == Order.id,
                                      BankTransferReceipt.status == "submitted")
    result = session.execute(
        update(Order).where(Order.status == "pending", Order.created_at < now - older_than, ~awaiting_finance)
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        record(session, None, "cancel_stale", "order", [], f"{result.rowcount} pending orders expired")
    return result.rowcount


def cancel_order(session: Session, actor: User, order: Order) -> None:
    """Cancel a pending order of the actor's companies."""
    require_role(actor, RENEWAL_ROLES)
    if not in_scope(actor, order.company_id, session):
        raise DomainError(_l("Order %(number)s is outside your companies.", number=order.number))
    number = order.number
    if not _claim(session, order, "pending", status="cancelled", cancelled_at=utcnow()):
        raise DomainError(_l("Order %(number)s is not awaiting payment (it is %(status)s).",
                             number=number, status=order.status))
    record(session, actor, "cancel", "order", [order.id], number)
    session.flush()


def refund_order(session: Session, actor: User, order: Order) -> None:
    """Finance refunds a paid balance order: money back to the wallet, renewed expiries rolled back."""
    require_role(actor, {"finance"})
    number = order.number
    if order.kind not in REFUNDABLE_KINDS:
        raise DomainError(_l("Order %(number)s cannot be refunded here: only renewal, value-added and seat orders can.",
                             number=number))
    if order.payment_method != "balance":
        raise DomainError(_l("Order %(number)s was not paid from the balance; refund it through its payment provider.",
                             number=number))
    if not _claim(session, order, "paid", status="refunded", refunded_at=utcnow()):
        raise DomainError(_l("Order %(number)s cannot be refunded: it is %(status)s.", number=number,
                             status=order.status))
    if order.kind == "seats":
        from actions.seats import remove_purchased_seats  # actions.seats builds on this module

        remove_purchased_seats(session, order)
    lines = session.execute(
        select(OrderLine.device_id, OrderLine.old_expires_on, OrderLine.new_expires_on)
        .where(OrderLine.order_id == order.id, OrderLine.device_id.isnot(None))
    ).all()
    if lines:
        device = Device.__table__
        result = session.execute(
            device.update()
            .where(device.c.id == bindparam("b_id"), device.c.expires_on == bindparam("b_new"))
            .values(expires_on=bindparam("b_old")),
            [{"b_id": d, "b_old": old, "b_new": new} for d, old, new in lines],
        )
        if result.rowcount != len(lines):
            raise DomainError(_l("Order %(number)s: some devices' expiry changed after this renewal; "
                                 "refund the later change first.", number=number))
    wallet = wallet_for(session, order.company_id, order.currency)
    credit(session, wallet, order.total, "refund", f"refund:order:{order.id}", actor, order_id=order.id,
           memo=f"refund {number}")
    record(session, actor, "refund", "order", [order.id], f"{number}: {order.total} {order.currency} back to balance")
    session.expire_all()
    session.flush()


def _each_in_savepoint(session: Session, orders: Sequence[Order], operation) -> ActionResult:
    """Apply `operation` to each order in its own savepoint: a refusal undoes only that order."""
    changed: list[str] = []
    refused: list[tuple[str, str]] = []
    for order in orders:
        number = order.number
        try:
            with session.begin_nested():
                operation(order)
        except NotAllowed:
            raise
        except DomainError as exc:
            refused.append((number, str(exc)))
        else:
            changed.append(number)
    return ActionResult(tuple(changed), tuple(refused))


def cancel_orders(session: Session, actor: User, orders: Sequence[Order]) -> ActionResult:
    """Cancel each pending order; the others are reported by order number with the reason."""
    require_role(actor, RENEWAL_ROLES)
    return _each_in_savepoint(session, orders, lambda order: cancel_order(session, actor, order))


def refund_orders(session: Session, actor: User, orders: Sequence[Order]) -> ActionResult:
    """Refund each order (finance); one refused order, named by number, leaves the others refunded."""
    require_role(actor, {"finance"})
    return _each_in_savepoint(session, orders, lambda order: refund_order(session, actor, order))
