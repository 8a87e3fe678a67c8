"""Card orders (seed 002, order kind `card_sale`): sell, reserve on payment, ship picked cards, receive, refund.

A distributor (verified) sells N cards of a card package to an end customer; the order belongs to
the distributor's company and is paid through the core (its balance, a provider or cash). One
order line per card, so some cards can be refunded through the core's line refunds; an invoice
promotion is spread over the lines by actions.money.allocate. Paying delivers by reserving N
cards of the holder's stock (one conditional UPDATE: never oversold) and writing the pending
commission entries on the lines' net. Shipping picks the specific cards (scanned or pasted), each
in stock at the holder, unexpired and of the ordered package; receiving (or N days after shipping)
holds the commission. A refund returns its cards (or the unshipped reservation) and reverses the
commission in proportion.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from actions import DomainError, NotAllowed, in_scope, require_role, scoped
from actions.audit import record
from actions.cards import CARD_ADMIN_ROLES, PLATFORM, move, release, require_verified, reserve
from actions.crypto import normalize
from actions.distribution import hold_received, record_refund, record_sale
from actions.money import allocate, from_minor, parse, round_money
from actions.orders import DiscountSpec, LineSpec, open_order, register_kind
from actions.texts import message
from models import (
    CardCustomer, CardFulfillment, CardOrder, Company, DistributorProfile, Order, OrderLine, OrderRefund, Package,
    SimCard, User, utcnow,
)

SELL_ROLES = frozenset({"customer_admin", "sales"})
MAX_QUANTITY = 5_000


def sellers_in_scope(session: Session, actor: User) -> list[Company]:
    """The verified distributors of the actor's tree (every one for staff), by path: who may sell cards."""
    return list(session.scalars(scoped(
        select(Company).join(DistributorProfile, DistributorProfile.company_id == Company.id)
        .where(DistributorProfile.status == "verified"), actor, Company.id).order_by(Company.path)))


def customer_details(seller: Company, customer: CardCustomer | None, name: str, phone: str,
                     address: str) -> tuple[str, str, str]:
    """The name, phone and address of an order or a quote: what was typed, blanks filled from a picked
    `customer`, which must be the seller's own."""
    if customer is None:
        return name, phone, address
    if customer.company_id != seller.id:
        raise DomainError(_l("Customer %(name)s is not a customer of %(company)s.", name=customer.name,
                             company=seller.name))
    return (name.strip() or customer.name, phone.strip() or customer.phone, address.strip() or customer.address)


def place_order(session: Session, actor: User, *, seller: Company, package: Package, quantity: int,
                holder_key: int = PLATFORM, customer: CardCustomer | None = None, customer_name: str = "",
                customer_phone: str = "", shipping_address: str = "", promotion_percent: str = "",
                promotion_label: str = "", unit_price: Decimal | None = None,
                quote_line_id: int | None = None) -> CardOrder:
    """A pending card order: one line per card at the package price, an invoice promotion spread over them.

    A picked `customer` must be the seller's own; its name, phone and address fill the blanks. A
    `unit_price` (a quoted, negotiated price) replaces the package price; `quote_line_id` links the order
    to the quote line it converts (unique: a line is converted once)."""
    require_role(actor, SELL_ROLES)
    if not in_scope(actor, seller.id, session):
        raise NotAllowed(_l("Company %(name)s is outside your companies.", name=seller.name))
    require_verified(session, seller.id)
    if package.kind != "card" or not package.active:
        raise DomainError(_l("Plan %(code)s is not an active card package.", code=package.code))
    if not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise DomainError(_l("Quantity: between 1 and %(max)s cards.", max=MAX_QUANTITY))
    check_holder(session, seller, holder_key)
    customer_name, customer_phone, shipping_address = customer_details(seller, customer, customer_name,
                                                                       customer_phone, shipping_address)
    currency = package.currency
    if unit_price is not None and (isinstance(unit_price, float) or unit_price < 0):
        raise DomainError(_l("Unit price: 0 or more."))
    price = round_money(package.amount if unit_price is None else unit_price, currency)
    gross_total = price * quantity
    shares = [Decimal(0)] * quantity
    label = ""
    if (promotion_percent or "").strip():
        percent = parse(promotion_percent, "CNY", str(_l("Promotion (%)")))
        if percent >= 100:
            raise DomainError(_l("Promotion (%): below 100."))
        label = (promotion_label or "").strip()[:150] or f"-{percent.normalize():f}%"
        discount = round_money(gross_total * percent / 100, currency)
        shares = allocate(discount, [price] * quantity, currency)
    lines = [LineSpec(description=f"{package.code} {package.name} #{n + 1}", gross=price, quantity=1,
                      unit_price=price, package_id=package.id,
                      discounts=[DiscountSpec("invoice", label, share)] if share > 0 else [])
             for n, share in enumerate(shares)]
    order = open_order(session, actor, kind="card_sale", company_id=seller.id, currency=currency, lines=lines,
                       note=customer_name[:255], promotion=label or None)
    card_order = CardOrder(order_id=order.id, seller_company_id=seller.id, holder_key=holder_key,
                           package_id=package.id, quantity=quantity, status="awaiting_shipment",
                           customer_id=customer.id if customer is not None else None,
                           customer_name=customer_name.strip()[:200], customer_phone=customer_phone.strip()[:40],
                           shipping_address=shipping_address.strip()[:255], quote_line_id=quote_line_id)
    session.add(card_order)
    session.flush()
    record(session, actor, "create", "card_order", [card_order.id], f"{order.number}: {quantity} × {package.code}")
    return card_order


def valid_holder_keys(seller: Company) -> list[int]:
    """The holders whose cards `seller` may sell: the platform, then its upstream distributors (top first) and
    itself, never an unrelated company's consignment."""
    return [PLATFORM, *seller.path_ids]


def valid_holders(session: Session, seller: Company) -> list[tuple[int, str]]:
    """`valid_holder_keys` with their names, in that order: the sell form's "Shipped by" choices."""
    keys = valid_holder_keys(seller)
    names = dict(session.execute(select(Company.id, Company.name).where(Company.id.in_(keys[1:]))).all())
    return [(PLATFORM, str(_l("Platform warehouse")))] + [(key, names[key]) for key in keys[1:] if key in names]


def check_holder(session: Session, seller: Company, holder_key: int) -> None:
    """The cards of a sale come from one of the seller's `valid_holder_keys`."""
    if holder_key in valid_holder_keys(seller):
        return
    holder = session.get(Company, holder_key) if isinstance(holder_key, int) and holder_key > 0 else None
    if holder is None:
        raise DomainError(_l("Holder %(id)s is not a company.", id=holder_key))
    raise DomainError(_l("%(seller)s cannot sell cards held by %(holder)s: only the platform's, its own or "
                         "its upstream distributors' stock.", seller=seller.name, holder=holder.name))


def card_order_of(session: Session, order: Order) -> CardOrder:
    return session.scalar(select(CardOrder).where(CardOrder.order_id == order.id))


def deliver_card_sale(session: Session, order: Order, today: date) -> None:
    """Paid: reserve the cards in the holder's stock (or refuse, and the payment rolls back) and earn commission."""
    card_order = card_order_of(session, order)
    if not reserve(session, card_order.package_id, card_order.holder_key, card_order.quantity):
        raise DomainError(_l("Order %(number)s: not enough %(code)s cards in stock for %(n)s; nothing was paid.",
                             number=order.number, code=card_order.package.code, n=card_order.quantity))
    card_order.reserved = True
    base = from_minor(sum(line.net_minor for line in order.lines), order.currency)
    record_sale(session, order_id=order.id, seller_id=card_order.seller_company_id,
                package_id=card_order.package_id, cards=card_order.quantity, base=base, currency=order.currency,
                month=today.strftime("%Y-%m"))
    session.flush()


def undo_card_sale(session: Session, order: Order, lines: Sequence[OrderLine]) -> None:
    """Refunded lines: their cards come back as `returned` (inspected later: back in stock or voided),
    an unshipped line gives its reservation back; the commission is reversed for those cards."""
    card_order = card_order_of(session, order)
    line_ids = [line.id for line in lines]
    cards = session.scalars(select(SimCard).where(SimCard.order_line_id.in_(line_ids))).all()
    for card in cards:
        move(session, None, card, "returned", order_line_id=card.order_line_id,
             note=message("card.move.refund", order=order.number))
        card.order_line_id = None
    unshipped = len(lines) - len(cards)
    if unshipped and card_order.status == "awaiting_shipment":
        release(session, card_order.package_id, card_order.holder_key, unshipped, shipped=False)
    key = hashlib.sha256(",".join(map(str, sorted(line_ids))).encode()).hexdigest()[:40]
    record_refund(session, order_id=order.id, refund_key=f"order:{order.id}:{key}", refunded_cards=len(lines),
                  month=date.today().strftime("%Y-%m"))
    remaining = session.scalar(select(OrderLine.id).where(OrderLine.order_id == order.id,
                                                          OrderLine.refunded_minor == 0,
                                                          OrderLine.id.notin_(line_ids)).limit(1))
    if remaining is None:
        card_order.status = "refunded"
    session.flush()


register_kind("card_sale", "CS", deliver=deliver_card_sale, undo=undo_card_sale)


def _may_ship(session: Session, actor: User, card_order: CardOrder) -> None:
    """The platform's stock is shipped by inventory staff; a consignment holder ships its own."""
    if card_order.holder_key == PLATFORM:
        require_role(actor, CARD_ADMIN_ROLES)
    elif not (actor.is_staff and actor.role in CARD_ADMIN_ROLES | {"admin"}) and not (
            actor.role == "customer_admin" and actor.company_id == card_order.holder_key):
        raise NotAllowed(_l("Only the holder of these cards may ship them."))


def ship(session: Session, actor: User, card_order: CardOrder, iccids: Sequence[str], carrier: str,
         tracking_number: str, today: date) -> CardFulfillment:
    """发货: the picked cards (exactly the ordered number, in the holder's stock, unexpired, of the package)."""
    _may_ship(session, actor, card_order)
    order = card_order.order
    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    if not carrier or not tracking_number:
        raise DomainError(_l("Carrier and tracking number: enter both."))
    if order.status != "paid" or card_order.status != "awaiting_shipment" or not card_order.reserved:
        raise DomainError(_l("Order %(number)s is not awaiting shipment.", number=order.number))
    lines = [line for line in order.lines if line.refunded_minor == 0]
    wanted = list(dict.fromkeys(normalize(i).upper() for i in iccids if normalize(i)))
    if len(wanted) != len(lines):
        raise DomainError(_l("Order %(number)s needs %(n)s cards; %(given)s different numbers were given.",
                             number=order.number, n=len(lines), given=len(wanted)))
    found = {c.iccid: c for c in session.scalars(select(SimCard).where(SimCard.iccid.in_(wanted)))}
    problems = []
    for iccid in wanted:
        card = found.get(iccid)
        if card is None:
            problems.append(str(_l("%(iccid)s is not in the inventory", iccid=iccid)))
        elif card.status != "in_stock" or card.holder_key != card_order.holder_key:
            problems.append(str(_l("%(iccid)s is not in the shipper's stock", iccid=iccid)))
        elif card.package_id != card_order.package_id:
            problems.append(str(_l("%(iccid)s is not a %(code)s card", iccid=iccid, code=card_order.package.code)))
        elif card.valid_until < today:
            problems.append(str(_l("%(iccid)s expired on %(day)s", iccid=iccid, day=card.valid_until.isoformat())))
    if problems:
        raise DomainError(_l("Nothing shipped — %(problems)s.", problems="; ".join(problems)))
    claimed = session.execute(update(CardOrder).where(CardOrder.id == card_order.id,
                                                      CardOrder.status == "awaiting_shipment")
                              .values(status="shipped").execution_options(synchronize_session=False)).rowcount
    session.expire(card_order)
    if claimed != 1:
        raise DomainError(_l("Order %(number)s is not awaiting shipment.", number=order.number))
    for card, line in zip((found[i] for i in wanted), lines):
        card.order_line_id = line.id
        move(session, actor, card, "shipped", order_line_id=line.id, note=f"{carrier} {tracking_number}"[:255])
    release(session, card_order.package_id, card_order.holder_key, len(lines), shipped=True)
    fulfillment = CardFulfillment(card_order_id=card_order.id, carrier=carrier[:60],
                                  tracking_number=tracking_number[:60], shipped_by_id=actor.id)
    session.add(fulfillment)
    session.flush()
    record(session, actor, "ship", "card_order", [card_order.id],
           message("audit.card_order.ship", order=order.number, count=len(lines), carrier=carrier[:60]))
    return fulfillment


def cards_to_ship(session: Session, actor: User, card_order: CardOrder, today: date) -> list[SimCard]:
    """The cards a shipper may pick for an order awaiting shipment: in the holder's stock, of the package,
    unexpired, soonest expiry first, as many as the order still needs (a suggestion; `ship` checks again).
    Empty for anyone who may not ship the order: the holder's stock is not theirs to read."""
    try:
        _may_ship(session, actor, card_order)
    except NotAllowed:
        return []
    if card_order.status != "awaiting_shipment":
        return []
    needed = sum(1 for line in card_order.order.lines if line.refunded_minor == 0)
    return list(session.scalars(
        select(SimCard).where(SimCard.package_id == card_order.package_id, SimCard.holder_key == card_order.holder_key,
                              SimCard.status == "in_stock", SimCard.valid_until >= today)
        .order_by(SimCard.valid_until, SimCard.iccid).limit(needed))) if needed else []


def confirm_receipt(session: Session, actor: User | None, card_order: CardOrder, today: date,
                    auto: bool = False) -> None:
    """确认收货 (by the seller or staff; None = automatically after N days): cards received, commission held."""
    if actor is not None:
        require_role(actor, CARD_ADMIN_ROLES | SELL_ROLES)
        if not in_scope(actor, card_order.seller_company_id, session):
            raise NotAllowed(_l("This order is outside your companies."))
    claimed = session.execute(update(CardOrder).where(CardOrder.id == card_order.id, CardOrder.status == "shipped")
                              .values(status="received").execution_options(synchronize_session=False)).rowcount
    session.expire(card_order)
    if claimed != 1:
        raise DomainError(_l("Order %(number)s is not shipped (or was already received).",
                             number=card_order.order.number))
    for card in session.scalars(select(SimCard).join(OrderLine, OrderLine.id == SimCard.order_line_id)
                                .where(OrderLine.order_id == card_order.order_id, SimCard.status == "shipped")):
        move(session, actor, card, "received", note=message("card.move.auto_received") if auto else "")
    session.execute(update(CardFulfillment).where(CardFulfillment.card_order_id == card_order.id)
                    .values(received_at=utcnow(), received_by_id=actor.id if actor else None, auto_received=auto))
    hold_received(session, card_order.order_id, today)
    record(session, actor, "receive", "card_order", [card_order.id], "auto" if auto else "")
    session.flush()


def order_cards(session: Session, card_order: CardOrder) -> list[SimCard]:
    """号卡信息: the cards shipped on the order and not refunded, by ICCID."""
    return list(session.scalars(select(SimCard).join(OrderLine, OrderLine.id == SimCard.order_line_id)
                                .where(OrderLine.order_id == card_order.order_id).order_by(SimCard.iccid)))


def auto_receive(session: Session, today: date, days: int) -> int:
    """Confirm receipt of orders shipped at least `days` ago (cron-safe: each order once)."""
    cutoff = datetime.combine(today - timedelta(days=days), datetime.min.time(), tzinfo=timezone.utc)
    due = session.scalars(select(CardOrder).join(CardFulfillment, CardFulfillment.card_order_id == CardOrder.id)
                          .where(CardOrder.status == "shipped", CardFulfillment.shipped_at < cutoff)).all()
    for card_order in due:
        confirm_receipt(session, None, card_order, today, auto=True)
    return len(due)


def lines_for_refund(session: Session, card_order: CardOrder, iccids: Sequence[str], count: int | None) -> list[int]:
    """The order lines a refund of these cards (shipped) or of `count` unshipped cards covers."""
    lines = [line for line in card_order.order.lines if line.refunded_minor == 0]
    if iccids:
        wanted = {normalize(i).upper() for i in iccids if normalize(i)}
        by_card = {c.iccid: c.order_line_id for c in session.scalars(
            select(SimCard).where(SimCard.iccid.in_(wanted), SimCard.order_line_id.in_([line.id for line in lines])))}
        missing = sorted(wanted - set(by_card))
        if missing:
            raise DomainError(_l("Not cards of order %(number)s: %(list)s.", number=card_order.order.number,
                                 list=", ".join(missing[:20])))
        return sorted(by_card.values())
    if card_order.status != "awaiting_shipment":
        raise DomainError(_l("Order %(number)s was shipped: name the cards to refund.", number=card_order.order.number))
    if count is None or not 1 <= count <= len(lines):
        raise DomainError(_l("Cards to refund: between 1 and %(n)s.", n=len(lines)))
    return [line.id for line in lines[-count:]]


def open_refund(session: Session, card_order: CardOrder) -> OrderRefund | None:
    """The order's refund awaiting approval, if any (the 退款中 tab)."""
    return session.scalar(select(OrderRefund).where(OrderRefund.order_id == card_order.order_id,
                                                    OrderRefund.status == "requested"))
