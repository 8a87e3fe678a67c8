"""The home page: per role, the numbers it acts on (each linking to its list), the balances and seats
of a customer, and two charts (devices expiring in the next 90 days, income by day).

Every panel is one query whatever the number of rows (no N+1). Chart data is built here as plain
JSON: counts as integers, money as integers of minor units with the currency's exponent and the
formatter's text for each point (the browser only divides for the axis, never formats money).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from urllib.parse import urlsplit

from babel.dates import format_skeleton
from flask import current_app, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select

from actions import scoped
from actions.cards import is_distributor_user
from actions.money import EXPONENTS, format_money, from_minor
from actions.permissions import is_restricted, may_use
from actions.subscriptions import awaiting_cash
from models import (
    SEAT_EDITIONS, WALLET_CURRENCIES, BankTransferReceipt, CardOrder, CashReceipt, Company, Device, ExpiryImport,
    InvoiceRequest, LedgerEntry, OfflineRecharge, Order, OrderRefund, SeatQuota, SimCard, Subscription,
    TenantApplication, User, Wallet, Withdrawal, db, utcnow,
)

EXPIRY_DAYS = 90
EXPIRY_BUCKET_DAYS = 7
INCOME_DAYS = 30
# Ledger movements that bring money in: credits of these kinds (refunds and coin credits are not income).
INCOME_KINDS = ("recharge", "offline_recharge", "payment")
# A customer's balances: always these, and any other currency it holds.
BALANCE_CURRENCIES = ("CNY", "USD", "COIN")
# A distributor's commission to withdraw: always this (a new distributor reads 0, not nothing), and any other.
COMMISSION_CURRENCIES = ("CNY",)


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    value: int
    url: str


@dataclass(frozen=True)
class Balance:
    currency: str
    label: str  # 人民币, 美元, 奥币
    text: str  # the one formatter's text of the balance of the customer's whole company tree
    own_text: str  # the customer's own company's balance, when it differs; else ""


@dataclass(frozen=True)
class SeatLine:
    edition: str
    purchased: int
    used: int

    @property
    def left(self) -> int:
        return self.purchased - self.used


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    data: dict
    empty_text: str = ""  # what the card says instead of an empty chart

    @property
    def empty(self) -> bool:
        """Nothing to draw: no device expires in the window, no money came in (the page says so instead of an
        empty axis)."""
        if self.data.get("kind") == "money":
            return not any(any(s["minor"]) for s in self.data["series"])
        return not any(self.data.get("counts", ()))


@dataclass
class Dashboard:
    cards: list[Card] = field(default_factory=list)
    balances: list[Balance] = field(default_factory=list)
    commission: list[Balance] = field(default_factory=list)  # a distributor's withdrawable commission
    seats: list[SeatLine] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _count_scoped(user, model, company_column, *where) -> int:
    query = scoped(select(func.count()).select_from(model), user, company_column)
    return db.session.scalar(query.where(*where)) or 0


def _count_devices(user, *where) -> int:
    return _count_scoped(user, Device, Device.company_id, *where)


def _short_day(day: date) -> str:
    """`12月1日`, `1 thg 12`, `Dec 1`: a day without its year, in the reader's language."""
    return format_skeleton("MMMd", day, locale=get_locale() or "en")


def _device_cards(user, today: date) -> list[Card]:
    return [
        Card("expiring_30", str(_l("Devices expiring in 30 days")),
             _count_devices(user, Device.expires_on.between(today, today + timedelta(days=30))),
             url_for("device.index_view", flt1_expiry_is="30")),
        Card("expired", str(_l("Expired devices")),
             _count_devices(user, Device.expires_on < today),
             url_for("device.index_view", flt1_expiry_is="expired")),
        Card("suspended", str(_l("Suspended devices")),
             _count_devices(user, Device.status == "suspended"),
             url_for("suspended_device.index_view")),
    ]


def _finance_cards() -> list[Card]:
    # Shown only while there is one: a refund its provider did not pay out waits for finance to pay it by hand.
    by_hand = _count(OrderRefund, OrderRefund.status == "not_paid_out")
    return ([Card("refunds_not_paid_out", str(_l("Refunds to pay back by hand")), by_hand,
                  url_for("orderrefund.index_view", flt0_status_equals="not_paid_out"))] if by_hand else []) + [
        Card("pending_review", str(_l("Offline recharges awaiting review")),
             _count(OfflineRecharge, OfflineRecharge.status == "submitted"),
             url_for("recharge_review.index_view")),
        Card("bank_transfers", str(_l("Bank transfers to confirm")),
             _count(BankTransferReceipt, BankTransferReceipt.status == "submitted"),
             url_for("bank_transfer_review.index_view")),
        Card("invoice_requests", str(_l("Invoice requests to issue")),
             _count(InvoiceRequest, InvoiceRequest.status == "requested"),
             url_for("invoice_review.index_view")),
        Card("refunds", str(_l("Refunds awaiting approval")),
             _count(OrderRefund, OrderRefund.status == "requested"),
             url_for("orderrefund.index_view")),
        Card("cash_receipts", str(_l("Cash receipts to confirm")),
             _count(CashReceipt, CashReceipt.status == "submitted"),
             url_for("cashreceipt.index_view")),
        Card("pending_orders", str(_l("Orders awaiting payment")),
             _count(Order, Order.status == "pending"),
             url_for("order_management.index_view", flt0_status_equals="pending")),
    ]


def _customer_cards(user) -> list[Card]:
    return [
        Card("unpaid", str(_l("Your orders awaiting payment")),
             _count_scoped(user, Order, Order.company_id, Order.status == "pending"),
             url_for("order_record.index_view")),
        Card("invoices", str(_l("Your invoice requests in progress")),
             _count_scoped(user, InvoiceRequest, InvoiceRequest.company_id, InvoiceRequest.status == "requested"),
             url_for("invoice_request_customer.index_view")),
    ]


def balances_of(user, kind: str = "prepaid") -> list[Balance]:
    """The customer's balance per currency in its wallets of `kind`: the prepaid balance (CNY, USD, coins always,
    and any other it holds) or a distributor's commission (CNY, what withdrawals pay out by default, even before
    the first sale, and any other it holds; only withdrawals spend it, so it is never added to the balance). Its
    company tree's total, and its own company's when subsidiaries hold money too. One query."""
    own = func.sum(case((Wallet.company_id == user.company_id, Wallet.balance_minor), else_=0))
    rows = db.session.execute(
        scoped(select(Wallet.currency, func.sum(Wallet.balance_minor), own).where(Wallet.kind == kind), user,
               Wallet.company_id)
        .group_by(Wallet.currency)
    ).all()
    found = {currency: (int(total or 0), int(mine or 0)) for currency, total, mine in rows}
    always = BALANCE_CURRENCIES if kind == "prepaid" else COMMISSION_CURRENCIES
    currencies = [*always, *sorted(c for c in found if c not in always)]
    balances = []
    for currency in currencies:
        total, mine = found.get(currency, (0, 0))
        balances.append(Balance(
            currency,
            str(WALLET_CURRENCIES.get(currency, currency)),
            format_money(from_minor(total, currency), currency),
            format_money(from_minor(mine, currency), currency) if mine != total else "",
        ))
    return balances


def _distributor_cards(user) -> list[Card]:
    """A distributor's card business, as its personal centre opens (seed 002): stock, orders to ship,
    withdrawals under review."""
    paid = CardOrder.order_id.in_(select(Order.id).where(Order.status == "paid"))
    return [
        Card("cards_in_stock", str(_l("Cards in stock")),
             _count_scoped(user, SimCard, SimCard.holder_key, SimCard.status == "in_stock"),
             url_for("simcard.index_view")),
        Card("card_orders_to_ship", str(_l("Card orders awaiting shipment")),
             _count_scoped(user, CardOrder, CardOrder.seller_company_id, CardOrder.status == "awaiting_shipment", paid),
             url_for("cardorder.index_view", tab="awaiting")),
        Card("withdrawals", str(_l("Withdrawals pending review")),
             _count_scoped(user, Withdrawal, Withdrawal.company_id, Withdrawal.status == "submitted"),
             url_for("withdrawal.index_view")),
    ]


def seats_of(user) -> list[SeatLine]:
    """Seats bought and used per edition in the customer's company tree. One query."""
    rows = db.session.execute(
        scoped(select(SeatQuota.edition, func.sum(SeatQuota.purchased), func.sum(SeatQuota.used)),
               user, SeatQuota.company_id).group_by(SeatQuota.edition)
    ).all()
    found = {edition: (int(bought or 0), int(used or 0)) for edition, bought, used in rows}
    return [SeatLine(str(label), *found[edition]) for edition, label in SEAT_EDITIONS.items() if edition in found]


def expiring_chart(user, today: date) -> Chart:
    """Devices in the user's scope expiring in the next 90 days, counted per week. One query."""
    end = today + timedelta(days=EXPIRY_DAYS - 1)
    rows = db.session.execute(
        scoped(select(Device.expires_on, func.count()), user, Device.company_id)
        .where(Device.expires_on.between(today, end))
        .group_by(Device.expires_on)
    ).all()
    buckets = (EXPIRY_DAYS + EXPIRY_BUCKET_DAYS - 1) // EXPIRY_BUCKET_DAYS
    counts = [0] * buckets
    for expires_on, count in rows:
        counts[(expires_on - today).days // EXPIRY_BUCKET_DAYS] += int(count)
    labels, ranges = [], []
    for index in range(buckets):
        first = today + timedelta(days=index * EXPIRY_BUCKET_DAYS)
        last = min(first + timedelta(days=EXPIRY_BUCKET_DAYS - 1), end)
        labels.append(_short_day(first))
        ranges.append(f"{_short_day(first)} – {_short_day(last)}")
    return Chart("expiring", str(_l("Devices expiring in the next 90 days")), {
        "kind": "count",
        "labels": labels,
        "ranges": ranges,
        "counts": counts,
        "series_name": str(_l("Devices")),
        "total": sum(counts),
    }, str(_l("No device expires in the next %(days)s days.", days=EXPIRY_DAYS)))


def _hour_bucket(column):
    """A UTC hour of `column` as text 'YYYY-MM-DD HH', on SQLite and PostgreSQL alike."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", column)


def income_chart(zone: tzinfo, now: datetime | None = None) -> Chart:
    """Money in by day for the last 30 days in `zone`, per currency: the sum of the ledger's positive
    recharge and payment movements, in minor units. One query (grouped by UTC hour, so a day is the
    reader's own day)."""
    now = now or utcnow()
    today = now.astimezone(zone).date()
    first = today - timedelta(days=INCOME_DAYS - 1)
    start = datetime.combine(first, time.min, tzinfo=zone).astimezone(timezone.utc)
    hour = _hour_bucket(LedgerEntry.created_at)
    rows = db.session.execute(
        select(hour, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .where(LedgerEntry.created_at >= start, LedgerEntry.amount_minor > 0,
               LedgerEntry.kind.in_(INCOME_KINDS))
        .group_by(hour, LedgerEntry.currency)
    ).all()
    days = [first + timedelta(days=i) for i in range(INCOME_DAYS)]
    sums: dict[str, list[int]] = {}
    for bucket, currency, minor in rows:
        at = datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=timezone.utc)
        index = (at.astimezone(zone).date() - first).days
        if 0 <= index < INCOME_DAYS:
            sums.setdefault(currency, [0] * INCOME_DAYS)[index] += int(minor)
    if not sums:
        sums["CNY"] = [0] * INCOME_DAYS
    order = [c for c in EXPONENTS if c in sums] + sorted(c for c in sums if c not in EXPONENTS)
    series = [{
        "currency": currency,
        "label": str(WALLET_CURRENCIES.get(currency, currency)),  # 人民币
        "exponent": EXPONENTS.get(currency, 0),
        "minor": sums[currency],
        "text": [format_money(from_minor(minor, currency), currency) for minor in sums[currency]],
        "total_text": format_money(from_minor(sum(sums[currency]), currency), currency),
    } for currency in order]
    return Chart("income", str(_l("Income by day, last 30 days")), {
        "kind": "money",
        "labels": [_short_day(day) for day in days],
        "days": [day.isoformat() for day in days],
        "series": series,
    }, str(_l("No money came in during the last %(days)s days.", days=INCOME_DAYS)))


def _keeps_devices(user: User, distributor: bool) -> bool:
    """Whether the home page shows device panels: staff and customers always; a distributor's administrator
    only while its company tree holds a device (seed 002: its centre is its card business, and device counts
    and an expiry chart it can never fill are noise)."""
    if user.role not in ("admin", "tech_support", "customer_admin"):
        return False
    if not distributor:
        return True
    return db.session.scalar(scoped(select(Device.id), user, Device.company_id).limit(1)) is not None


def _may_open(user: User, url: str) -> bool:
    """Whether `user` may open the console view that `url` leads to (the view whose address is its longest prefix)."""
    if not is_restricted(user):
        return True
    path = urlsplit(url).path.rstrip("/") + "/"
    views = [view for view in current_app.extensions["admin"][0]._views if path.startswith(view.url.rstrip("/") + "/")]
    view = max(views, key=lambda v: len(v.url), default=None)
    return view is not None and view.allows(user)


def dashboard_for(user: User, zone: tzinfo, today: date | None = None) -> Dashboard:
    """What `user`'s role sees on the home page; days are days in `zone` (the reader's)."""
    today = today or utcnow().astimezone(zone).date()
    board = Dashboard()
    cards = board.cards
    distributor = user.role == "customer_admin" and is_distributor_user(db.session, user)
    devices = _keeps_devices(user, distributor) and may_use(user, "devices")
    if devices:
        cards += _device_cards(user, today)
    if user.role in ("admin", "tech_support"):
        cards.append(Card("unbound", str(_l("Devices without a renewal package")),
                          _count_devices(user, Device.package_id.is_(None)),
                          url_for("device.index_view", flt1_renewal_package_is="no")))
    if user.role in ("admin", "sales"):
        week_ago = utcnow() - timedelta(days=7)
        cards.append(Card("imports", str(_l("Expiry imports this week")),
                          _count(ExpiryImport, ExpiryImport.created_at >= week_ago),
                          url_for("expiry_import.index")))
    if user.role in ("admin", "finance"):
        cards += _finance_cards()
    if user.role in ("admin", "sales"):
        cards.append(Card("drafts", str(_l("Offline recharge drafts")),
                          _count(OfflineRecharge, OfflineRecharge.status == "draft"),
                          url_for("offline_recharge.index_view")))
        cards.append(Card("rejected", str(_l("Offline recharges sent back to you")),
                          _count(OfflineRecharge, OfflineRecharge.status == "rejected"),
                          url_for("offline_recharge.index_view")))
        # Seed 003's OS flow: subscriptions registered in cash whose cash sales is to take and enter.
        cards.append(Card("awaiting_cash", str(_l("Subscriptions awaiting cash")),
                          _count(Subscription, awaiting_cash()),
                          url_for("subscription.index_view", flt0_cash_is="y")))
    if user.role == "customer_admin":
        if distributor:
            cards[:0] = _distributor_cards(user)
            if may_use(user, "card_finance"):
                board.commission = balances_of(user, "commission")
        cards += _customer_cards(user)
        if may_use(user, "orders"):
            board.balances = balances_of(user)
        if may_use(user, "members"):
            board.seats = seats_of(user)
        # An employee limited to some areas sees the numbers of the lists it may open only.
        cards[:] = [card for card in cards if _may_open(user, card.url)]
    if user.role == "admin":
        cards.append(Card("applications", str(_l("Tenant applications to review")),
                          _count(TenantApplication, TenantApplication.status == "pending"),
                          url_for("tenantapplication.index_view")))
        cards.append(Card("companies", str(_l("Companies")), _count(Company), url_for("company.index_view")))
        cards.append(Card("locked", str(_l("Locked or deactivated users")),
                          _count(User, (User.active.is_(False)) | (User.locked_until.isnot(None))),
                          url_for("user.index_view")))
    if devices:
        board.charts.append(expiring_chart(user, today))
    if user.role in ("admin", "finance"):
        board.charts.append(income_chart(zone))
    return board

