"""Seats (seed 004): seats bought per product edition, organizer accounts that use them, invitations.

A company buys seats of an edition with an Order of kind "seats" (账号增加: one line with the
edition and the quantity, priced from the catalog's seat package on sale for that edition); paying it —
from the balance, online, or in cash when sales grants seats — adds the quantity to the
company's SeatQuota.purchased in the payment's transaction (the "seats" order kind, registered in
actions/order_kinds.py, delivers with `add_purchased_seats` and undoes with `remove_purchased_seats`).

Seats are counted by conditional UPDATEs, never read-check-write: creating an organizer takes a
seat with `used = used + 1 … WHERE used < purchased` (rowcount 0: no seat left, so two creations
cannot both take the last seat, on SQLite or PostgreSQL); deactivating frees it with
`active = false … WHERE active` followed by `used = used - 1`, so deactivating twice frees once.
The invitation mail is the view's job, after commit: these functions say whom to invite.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from actions import ActionResult, DomainError, in_scope, require_role, scope_company_ids
from actions.audit import record
from actions.money import round_money
from actions.text_input import one_line
from actions.times import format_minute, reader_zone
from actions.texts import label_param, message, money_param
from actions.dates import LATEST_EXPIRY, renewal_fits
from actions.orders import LineSpec, add_months, open_order, pay_offline
from models import (
    SEAT_EDITIONS, Company, MemberAccount, Order, OrderLine, OutboxMail, Package, SeatQuota, User, utcnow,
)

ORGANIZER_ROLES = {"customer_admin"}
BUY_ROLES = {"customer_admin"}
GRANT_ROLES = {"sales"}
MAX_SEATS_PER_ORDER = 10_000
MAX_NAME = 60  # MemberAccount.first_name / last_name
MAX_LOGIN = 100  # MemberAccount.login
MAX_PROMOTION = 100  # Order.promotion
MAX_NOTE = 255  # Order.note


class NoSeatLeft(DomainError):
    """The company has no free seat of that edition."""


@dataclass(frozen=True)
class SeatCount:
    """One company's seats of one edition."""

    company: Company
    edition: str
    purchased: int
    used: int

    @property
    def left(self) -> int:
        return self.purchased - self.used


# --- field checks --------------------------------------------------------------------------------

def _edition(value) -> str:
    if value not in SEAT_EDITIONS:
        raise DomainError(_l("Product edition: choose %(editions)s.",
                             editions=", ".join(str(label) for label in SEAT_EDITIONS.values())))
    return value


FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")  # a Chinese input method's full-width mode


def _quantity(value) -> int:
    text = str(value if value is not None else "").strip().translate(FULL_WIDTH_DIGITS)
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not 1 <= int(text) <= MAX_SEATS_PER_ORDER:
        raise DomainError(_l("Number of accounts: a whole number between 1 and %(max)s.", max=MAX_SEATS_PER_ORDER))
    return int(text)


def _email(value) -> str:
    text = one_line(value, _l("Account email"), MAX_LOGIN, True)
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise DomainError(_l("Account email: %(address)s is not a valid email address.", address=text)) from None


def _check_company(session: Session, actor: User, company: Company | None) -> Company:
    if company is None or not in_scope(actor, company.id, session):
        raise DomainError(_l("Choose one of your companies."))
    return company


# --- the quota -----------------------------------------------------------------------------------

def seat_counts(session: Session, actor: User, company: Company | None = None) -> list[SeatCount]:
    """The seats of every company in the actor's scope (or of `company`), by company path and edition."""
    query = select(SeatQuota, Company).join(Company, Company.id == SeatQuota.company_id)
    if company is not None:
        query = query.where(SeatQuota.company_id == company.id)
    elif not actor.is_staff:
        query = query.where(SeatQuota.company_id.in_(actor.company.subtree_ids()))
    order = list(SEAT_EDITIONS)
    rows = session.execute(query.order_by(Company.path)).all()
    counts = [SeatCount(c, q.edition, q.purchased, q.used) for q, c in rows]
    return sorted(counts, key=lambda s: (s.company.path, order.index(s.edition)))


def organizer_editions(counts: Sequence[SeatCount], company_id: int | None) -> tuple[list[str], str]:
    """产品类型 on the organizer form: the editions bought in `counts` (every edition when none is), and the
    one to preselect: the first with a seat left in `company_id`, else anywhere, else the first offered."""
    bought = {count.edition for count in counts}
    offered = [edition for edition in SEAT_EDITIONS if edition in bought] or list(SEAT_EDITIONS)
    with_seats = [count for count in counts if count.left > 0]
    first = next((c.edition for c in with_seats if c.company.id == company_id), None)
    return offered, first or (with_seats[0].edition if with_seats else offered[0])


def add_purchased_seats(session: Session, order: Order, today: date | None = None) -> None:
    """Add a paid seat order's quantity to its company's quota of that edition (creating the row once); its
    line's seats count from now ("active") until `today` + the term it was sold with, if any."""
    today = today or date.today()
    edition, quantity = session.execute(
        select(OrderLine.edition, func.sum(OrderLine.quantity)).where(OrderLine.order_id == order.id)
        .group_by(OrderLine.edition)
    ).one()
    _add_purchased(session, order.company_id, edition, int(quantity))
    for line_id, months in session.execute(select(OrderLine.id, OrderLine.months)
                                           .where(OrderLine.order_id == order.id)).all():
        session.execute(update(OrderLine).where(OrderLine.id == line_id)
                        .values(seat_state="active", new_expires_on=seats_expire_on(today, months))
                        .execution_options(synchronize_session=False))
    for row in list(session.identity_map.values()):
        if isinstance(row, OrderLine) and row.order_id == order.id:
            session.expire(row)


def seats_expire_on(paid_on: date, months: int | None) -> date | None:
    """The last day seats paid on `paid_on` with a term of `months` are usable (None: they never expire):
    the paid day + the term, a calendar date clamped to the end of shorter months, at most LATEST_EXPIRY."""
    if not months:
        return None
    if not renewal_fits(paid_on, months, paid_on):
        return LATEST_EXPIRY
    return add_months(paid_on, months)


def _add_purchased(session: Session, company_id: int, edition: str, quantity: int) -> None:
    """purchased += quantity, as one INSERT … ON CONFLICT DO UPDATE (an upsert: no lost update, no duplicate)."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        statement = dialect_insert(SeatQuota).values(company_id=company_id, edition=edition, purchased=quantity,
                                                     used=0)
        session.execute(statement.on_conflict_do_update(
            index_elements=[SeatQuota.company_id, SeatQuota.edition],
            set_={"purchased": SeatQuota.purchased + statement.excluded.purchased},
        ))
    else:  # another database: update, else insert (a concurrent insert fails the transaction, safely)
        result = session.execute(
            update(SeatQuota).where(SeatQuota.company_id == company_id, SeatQuota.edition == edition)
            .values(purchased=SeatQuota.purchased + quantity).execution_options(synchronize_session=False))
        if result.rowcount == 0:
            session.execute(insert(SeatQuota).values(company_id=company_id, edition=edition, purchased=quantity,
                                                     used=0))
    _expire_quotas(session)


def remove_purchased_seats(session: Session, order: Order, lines: Sequence[OrderLine]) -> None:
    """Take a refunded seat order's seats back, if they are free (else refuse: deactivate organizers first).

    Seats the expiry job took back already (seat_state "expired") are not taken twice: the lines leave
    "active" by a conditional UPDATE, and only the quantity of those that did comes off the quota."""
    edition, quantity = lines[0].edition, 0
    for line_id, line_quantity in [(line.id, line.quantity) for line in lines]:
        claimed = session.execute(
            update(OrderLine).where(OrderLine.id == line_id, OrderLine.seat_state == "active")
            .values(seat_state="returned").execution_options(synchronize_session=False))
        quantity += line_quantity * claimed.rowcount
    for line in lines:
        session.expire(line)
    if quantity == 0:
        return  # the seats expired before the refund: nothing left to take back
    result = session.execute(
        update(SeatQuota)
        .where(SeatQuota.company_id == order.company_id, SeatQuota.edition == edition,
               SeatQuota.purchased - SeatQuota.used >= quantity)
        .values(purchased=SeatQuota.purchased - quantity).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise DomainError(_l("Order %(number)s: fewer than %(n)s %(edition)s seats are free; deactivate organizers "
                             "first.", number=order.number, n=quantity, edition=SEAT_EDITIONS[edition]))
    _expire_quotas(session)


def _take_seat(session: Session, company: Company, edition: str) -> None:
    result = session.execute(
        update(SeatQuota)
        .where(SeatQuota.company_id == company.id, SeatQuota.edition == edition, SeatQuota.used < SeatQuota.purchased)
        .values(used=SeatQuota.used + 1).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        bought = session.scalar(select(SeatQuota.purchased).where(SeatQuota.company_id == company.id,
                                                                  SeatQuota.edition == edition))
        if not bought:  # "used up" only when there were seats
            raise NoSeatLeft(_l("%(company)s has no %(edition)s seats: buy seats first.",
                                edition=SEAT_EDITIONS[edition], company=company.name))
        raise NoSeatLeft(_l("No %(edition)s seat left for %(company)s: buy more seats or deactivate an organizer.",
                            edition=SEAT_EDITIONS[edition], company=company.name))
    _expire_quotas(session)


def _free_seat(session: Session, company_id: int, edition: str) -> None:
    result = session.execute(
        update(SeatQuota)
        .where(SeatQuota.company_id == company_id, SeatQuota.edition == edition, SeatQuota.used > 0)
        .values(used=SeatQuota.used - 1).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise DomainError(_l("No %(edition)s seat is in use to free; nothing was changed.",
                             edition=SEAT_EDITIONS[edition]))
    _expire_quotas(session)


def _expire_quotas(session: Session) -> None:
    for row in list(session.identity_map.values()):
        if isinstance(row, SeatQuota):
            session.expire(row)


# --- seat orders ---------------------------------------------------------------------------------

def seat_packages(session: Session) -> dict[str, Package]:
    """Edition → the catalog's seat package on sale for it (at most one per edition, by a unique index)."""
    packages = session.scalars(select(Package).where(Package.kind == "seat", Package.active.is_(True),
                                                     Package.edition.isnot(None)))
    return {package.edition: package for package in packages}


def seat_term_months(package: Package) -> int | None:
    """How long a seat of `package` lasts: its term when it is priced per term; None (never expires) else."""
    return package.term_months if package.pricing == "per_term" and package.term_months else None


def seat_package(session: Session, edition: str) -> Package:
    """The catalog's seat package on sale for `edition` (type seat, that edition); its price is one seat's."""
    package = session.scalar(select(Package).where(Package.kind == "seat", Package.edition == edition,
                                                   Package.active.is_(True)))
    if package is None:
        raise DomainError(_l("No seat package of edition %(edition)s is on sale: technical support adds one under "
                             "Packages (type Seat, product edition %(edition)s).", edition=SEAT_EDITIONS[edition]))
    return package


def _new_seat_order(session: Session, actor: User, company: Company, edition, quantity, promotion,
                    note: str = "") -> tuple[Order, OrderLine]:
    edition = _edition(edition)
    quantity = _quantity(quantity)
    promotion = one_line(promotion, _l("Promotion"), MAX_PROMOTION, False)
    package = seat_package(session, edition)
    months = seat_term_months(package)
    if months and not renewal_fits(date.today(), months, date.today()):
        raise DomainError(_l("Seat package %(code)s: a term of %(months)s months would end after %(last)s; "
                             "technical support corrects the term.", code=package.code, months=months,
                             last=LATEST_EXPIRY.isoformat()))
    total = round_money(package.amount * quantity, package.currency)
    order = open_order(session, actor, kind="seats", company_id=company.id, currency=package.currency,
                       promotion=promotion, note=note,
                       lines=[LineSpec(description=message("order.line.seats", edition=label_param("seat_edition", edition),
                                                           quantity=quantity), gross=total, quantity=quantity,
                                       unit_price=package.amount, package_id=package.id, edition=edition,
                                       months=months)])
    return order, order.lines[0]


def create_seat_order(session: Session, actor: User, company: Company, edition: str, quantity,
                      promotion: str | None = None) -> Order:
    """A pending account increase: `quantity` seats of `edition` for `company`, priced from the catalog."""
    require_role(actor, BUY_ROLES)
    company = _check_company(session, actor, company)
    order, line = _new_seat_order(session, actor, company, edition, quantity, promotion)
    record(session, actor, "create", "order", [order.id],
           message("audit.order.seats_promotion" if order.promotion else "audit.order.seats", order=order.number,
                   quantity=line.quantity, edition=label_param("seat_edition", line.edition), company=company.name,
                   amount=money_param(order.total, order.currency),
                   **({"promotion": order.promotion} if order.promotion else {})))
    session.flush()
    return order


def grant_seats(session: Session, actor: User, company: Company, edition: str, quantity, note: str,
                today: date, promotion: str | None = None) -> Order:
    """Sales enters seats paid in cash: a seat order, paid at once, whose seats are added now."""
    require_role(actor, GRANT_ROLES)
    note = one_line(note, _l("Note"), MAX_NOTE, True)
    company = _check_company(session, actor, company)
    order, line = _new_seat_order(session, actor, company, edition, quantity, promotion, note)
    quantity, edition = line.quantity, line.edition
    pay_offline(session, actor, order, "cash", today, note)
    record(session, actor, "grant", "order", [order.id],
           message("audit.order.seats_granted", order=order.number, quantity=quantity,
                   edition=label_param("seat_edition", edition), company=company.name,
                   amount=money_param(order.total, order.currency), note=note))
    session.flush()
    return order


def seat_figures(session: Session, order_ids) -> dict[int, tuple[str | None, int | None, int | None]]:
    """Order id → (edition, quantity, running maximum) of seat orders; the maximum only for paid ones.

    余下最大账号数 is computed by the database with a window function over every seat order of the
    same company and edition: SUM(quantity of paid orders) OVER (PARTITION BY company, edition
    ORDER BY created_at, id); the wanted ids only pick the rows returned (and the companies summed).
    """
    ids = sorted({int(i) for i in order_ids})
    if not ids:
        return {}
    paid_quantity = case((Order.status == "paid", OrderLine.quantity), else_=0)
    window = func.sum(paid_quantity).over(partition_by=(Order.company_id, OrderLine.edition),
                                          order_by=(Order.created_at, Order.id))
    wanted = aliased(Order)
    inner = (
        select(Order.id.label("order_id"), Order.status.label("status"), OrderLine.edition.label("edition"),
               OrderLine.quantity.label("quantity"), window.label("running"))
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.kind == "seats", Order.company_id.in_(select(wanted.company_id).where(wanted.id.in_(ids))))
        .subquery()
    )
    rows = session.execute(
        select(inner.c.order_id, inner.c.edition, inner.c.quantity,
               case((inner.c.status == "paid", inner.c.running), else_=None))
        .where(inner.c.order_id.in_(ids))
    ).all()
    return {order_id: (edition, quantity, None if running is None else int(running))
            for order_id, edition, quantity, running in rows}


# --- seat terms: 订单到期时间, 是否可用, and the daily expiry -------------------------------------------

EXPIRING_SOON_DAYS = 30  # a usable order whose seats end within this many days is shown as expiring soon


@dataclass(frozen=True)
class SeatTerm:
    """When a seat order's seats end (None: never) and whether they still count in the quota."""

    expires_on: date | None
    state: str | None

    def usable(self, status: str, today: date) -> bool:
        """可用: paid, not refunded, its seats not taken back, and not past its expiry."""
        return (status == "paid" and self.state == "active"
                and (self.expires_on is None or self.expires_on >= today))

    def expiring_soon(self, status: str, today: date) -> bool:
        """Usable, and its seats end within EXPIRING_SOON_DAYS of `today`."""
        return (self.usable(status, today) and self.expires_on is not None
                and (self.expires_on - today).days <= EXPIRING_SOON_DAYS)


def seat_terms(session: Session, order_ids) -> dict[int, SeatTerm]:
    """Order id → its SeatTerm, for a page of seat orders in one query."""
    ids = sorted({int(i) for i in order_ids})
    if not ids:
        return {}
    rows = session.execute(
        select(OrderLine.order_id, func.max(OrderLine.new_expires_on), func.max(OrderLine.seat_state))
        .where(OrderLine.order_id.in_(ids)).group_by(OrderLine.order_id)).all()
    return {order_id: SeatTerm(expires_on, state) for order_id, expires_on, state in rows}


def usable_clause(today: date):
    """是否可用 in SQL, on Order: SeatTerm.usable as one EXISTS (filters run it; nothing is filtered in Python)."""
    return and_(Order.status == "paid", exists().where(
        OrderLine.order_id == Order.id, OrderLine.seat_state == "active",
        or_(OrderLine.new_expires_on.is_(None), OrderLine.new_expires_on >= today)))


def expiring_clause(today: date, days: int = EXPIRING_SOON_DAYS):
    """Usable seat orders whose seats end within `days` of `today`, in SQL on Order."""
    return and_(Order.status == "paid", exists().where(
        OrderLine.order_id == Order.id, OrderLine.seat_state == "active",
        OrderLine.new_expires_on.between(today, today + timedelta(days=days))))


@dataclass
class SeatExpiryReport:
    """What one run of expire_seat_orders did."""

    expired: list[str] = field(default_factory=list)  # order numbers
    deactivated: list[str] = field(default_factory=list)  # organizer logins
    failed: list[tuple[str, str]] = field(default_factory=list)  # (order number, reason); retried next run


def expire_seat_orders(session: Session, today: date) -> SeatExpiryReport:
    """Take back the seats of paid seat orders whose expiry is before `today` (the daily job; safe to repeat).

    Each order is claimed by a conditional UPDATE of its line (seat_state "active" → "expired"): a second
    run, or a concurrent one, or a refund that got there first, finds nothing to claim, so the seats are
    taken back once. Then the company's SeatQuota.purchased drops by the order's quantity in one
    conditional UPDATE (WHERE purchased − quantity ≥ used).

    When organizers use more seats than would be left, the CHECK used ≤ purchased is kept by design:
    the most recently created active organizers of that company and edition are deactivated, just
    enough to fit, each freeing its seat as deactivating one by hand does; the audit event of the
    expiry names them. The older accounts keep working; the customer saw the order as expiring
    soon for EXPIRING_SOON_DAYS days and could buy seats in time. Keeping everyone and only blocking
    new organizers was refused: it would count more seats in use than paid for, with no end.

    Each order is its own savepoint: one that fails (say, an organizer created meanwhile took the
    freed seat) is rolled back alone, reported, and expired by the next run. Nothing is committed here.
    """
    report = SeatExpiryReport()
    due = session.execute(
        select(OrderLine.id, OrderLine.quantity, OrderLine.edition, OrderLine.new_expires_on, Order.id, Order.number,
               Order.company_id, Company.name)
        .join(Order, Order.id == OrderLine.order_id).join(Company, Company.id == Order.company_id)
        .where(OrderLine.seat_state == "active", OrderLine.new_expires_on < today, Order.kind == "seats")
        .order_by(OrderLine.new_expires_on, OrderLine.id)
    ).all()
    for line_id, quantity, edition, expires_on, order_id, number, company_id, company_name in due:
        try:
            with session.begin_nested():
                claimed = session.execute(
                    update(OrderLine).where(OrderLine.id == line_id, OrderLine.seat_state == "active",
                                            OrderLine.new_expires_on < today)
                    .values(seat_state="expired").execution_options(synchronize_session=False))
                if claimed.rowcount != 1:
                    continue  # expired or refunded meanwhile
                deactivated = []
                if not _drop_purchased(session, company_id, edition, quantity):
                    deactivated = _deactivate_newest(session, company_id, edition, quantity)
                    if not _drop_purchased(session, company_id, edition, quantity):
                        raise DomainError(_l("Order %(number)s: its %(edition)s seats are in use; try again.",
                                             number=number, edition=SEAT_EDITIONS[edition]))
                params = {"order": number, "quantity": quantity, "edition": label_param("seat_edition", edition),
                          "company": company_name, "date": expires_on.isoformat()}
                if deactivated:
                    summary = message("audit.seats.expired_deactivated", logins=", ".join(deactivated), **params)
                else:
                    summary = message("audit.seats.expired", **params)
                record(session, None, "expire_seats", "order", [order_id], summary)
        except DomainError as exc:
            report.failed.append((number, str(exc)))
            continue
        report.expired.append(number)
        report.deactivated.extend(deactivated)
    _expire_quotas(session)
    session.flush()
    return report


def _drop_purchased(session: Session, company_id: int, edition: str, quantity: int) -> bool:
    """purchased −= quantity in one conditional UPDATE, only if the seats in use still fit."""
    result = session.execute(
        update(SeatQuota)
        .where(SeatQuota.company_id == company_id, SeatQuota.edition == edition,
               SeatQuota.purchased - quantity >= SeatQuota.used)
        .values(purchased=SeatQuota.purchased - quantity).execution_options(synchronize_session=False))
    return result.rowcount == 1


def _deactivate_newest(session: Session, company_id: int, edition: str, quantity: int) -> list[str]:
    """Deactivate the most recently created active organizers of that company and edition, enough for the
    quota to lose `quantity` seats; each frees its seat. Their logins."""
    purchased, used = session.execute(select(SeatQuota.purchased, SeatQuota.used).where(
        SeatQuota.company_id == company_id, SeatQuota.edition == edition)).one()
    excess = used - (purchased - quantity)
    newest = session.execute(
        select(MemberAccount.id, MemberAccount.login)
        .where(MemberAccount.company_id == company_id, MemberAccount.seat_edition == edition,
               MemberAccount.active.is_(True))
        .order_by(MemberAccount.created_at.desc(), MemberAccount.id.desc()).limit(max(excess, 0))).all()
    logins = []
    for account_id, login in newest:
        result = session.execute(
            update(MemberAccount).where(MemberAccount.id == account_id, MemberAccount.active.is_(True))
            .values(active=False).execution_options(synchronize_session=False))
        if result.rowcount == 1:
            _free_seat(session, company_id, edition)
            logins.append(login)
    for row in list(session.identity_map.values()):
        if isinstance(row, MemberAccount) and row.id in {account_id for account_id, _login in newest}:
            session.expire(row)
    return logins


# --- organizer accounts --------------------------------------------------------------------------

def create_organizer(session: Session, actor: User, company: Company, email: str, first_name: str,
                     last_name: str, edition: str, now: datetime | None = None) -> MemberAccount:
    """Take a seat of `edition` and create the organizer (login = email), invited now; the view mails it."""
    require_role(actor, ORGANIZER_ROLES)
    company = _check_company(session, actor, company)
    email = _email(email)
    last_name = one_line(last_name, _l("Last name"), MAX_NAME, True)
    first_name = one_line(first_name, _l("First name"), MAX_NAME, True)
    edition = _edition(edition)
    if session.scalar(select(MemberAccount.id).where(func.lower(MemberAccount.login) == email.lower())) is not None:
        raise DomainError(_l("An account with the login %(login)s exists already.", login=email))
    _take_seat(session, company, edition)
    account = MemberAccount(company_id=company.id, login=email, email=email, first_name=first_name,
                            last_name=last_name, seat_edition=edition, invitation_state="sent",
                            invited_at=now or utcnow(), active=True)
    try:
        with session.begin_nested():
            session.add(account)
    except IntegrityError:  # created by someone else a moment ago
        raise DomainError(_l("An account with the login %(login)s exists already.", login=email)) from None
    record(session, actor, "create", "member_account", [account.id],
           message("audit.organizer.create", email=email, name=f"{last_name} {first_name}",
                   edition=label_param("seat_edition", edition), company=company.name))
    session.flush()
    return account


def _organizers_in_scope(session: Session, actor: User, accounts: Sequence[MemberAccount]):
    """Split accounts into the actor's organizers and the refused (label, reason) pairs."""
    allowed = None if actor.is_staff else scope_company_ids(session, actor)
    mine, refused = [], []
    for account in accounts:
        if allowed is not None and account.company_id not in allowed:
            refused.append((account.login, str(_l("outside your companies"))))
        elif account.seat_edition is None:
            refused.append((account.login, str(_l("not an organizer account"))))
        else:
            mine.append(account)
    return mine, refused


INVITATION_WINDOW = timedelta(hours=1)
INVITATIONS_PER_HOUR = 5  # the default of the INVITATIONS_PER_HOUR setting: the first mail and four more


INVITATION_KEY = "organizer_invitation:"  # + account id + ":" + invitation time: one mail per invitation


def invitation_mail_key(account_id: int, invited_at: datetime) -> str:
    """The outbox key of an organizer's invitation mail: one mail per account and invitation time."""
    return f"{INVITATION_KEY}{account_id}:{invited_at.isoformat()}"


def _recent_invitations(session: Session, account_ids: Sequence[int], since: datetime) -> dict[int, list[datetime]]:
    """Account id → when each of its invitation mails not failed left (sent) or was queued after `since`, oldest
    first. A failed mail counts for nothing: the organizer never got it."""
    wanted = set(account_ids)
    if not wanted:
        return {}
    when = func.coalesce(OutboxMail.sent_at, OutboxMail.created_at)
    rows = session.execute(  # the invitations of the last hour, of every account: a few rows
        select(OutboxMail.dedupe_key, when)
        .where(OutboxMail.dedupe_key.startswith(INVITATION_KEY, autoescape=True), OutboxMail.status != "failed",
               when > since).order_by(when)).all()
    recent: dict[int, list[datetime]] = {}
    for key, at in rows:
        account_id = key[len(INVITATION_KEY):].split(":", 1)[0]
        if account_id.isdigit() and int(account_id) in wanted:
            recent.setdefault(int(account_id), []).append(at)
    return recent


def _too_many(session: Session, actor: User, limit: int, again_from: datetime) -> str:
    """The refusal of an organizer sent `limit` invitations in the last hour, in the actor's language and zone."""
    return str(_l("hourly limit of invitations reached (%(count)s); the next may be sent from %(time)s",
                  count=limit, time=format_minute(again_from, reader_zone(session, actor))))


def reinvite_organizers(session: Session, actor: User, accounts: Sequence[MemberAccount],
                        now: datetime | None = None, limit: int | None = None) -> ActionResult:
    """再次邀请: mark active, not yet accepted organizers invited again now; extra["accounts"] are to be mailed.

    The guide's case is re-inviting at once ("the user did not receive the invitation mail"), so there is no
    wait; but one organizer gets at most `limit` invitation mails an hour (sent or queued; a failed one does
    not count), so the button cannot flood a mailbox: one past it is refused, naming when the next may go.
    The others are invited, as with any other refused row. Each is marked with a conditional UPDATE on the
    invitation time read before the outbox: of two presses at once, the second finds it changed and is
    refused, so one mail leaves.
    """
    require_role(actor, ORGANIZER_ROLES)
    mine, refused = _organizers_in_scope(session, actor, accounts)
    now = now or utcnow()
    limit = INVITATIONS_PER_HOUR if limit is None else max(int(limit), 1)
    candidates = []
    for account in mine:
        if not account.active:
            refused.append((account.login, str(_l("deactivated"))))
        elif account.invitation_state == "accepted":
            refused.append((account.login, str(_l("the invitation was accepted already"))))
        else:
            candidates.append(account)
    # The invitation time first, then the outbox: a re-invitation committed between the two reads shows
    # in the outbox; one committed after both changes the time, and the UPDATE below finds nothing.
    seen = dict(session.execute(select(MemberAccount.id, MemberAccount.invited_at)
                                .where(MemberAccount.id.in_([a.id for a in candidates]))).all()) if candidates else {}
    recent = _recent_invitations(session, list(seen), now - INVITATION_WINDOW)
    chosen = []
    for account in candidates:
        login, invited_at, sent = account.login, seen.get(account.id), recent.get(account.id, [])
        if len(sent) >= limit:  # the next may go an hour after the oldest of the last `limit`
            refused.append((login, _too_many(session, actor, limit, sent[len(sent) - limit] + INVITATION_WINDOW)))
            continue
        result = session.execute(
            update(MemberAccount)
            .where(MemberAccount.id == account.id, MemberAccount.active.is_(True),
                   MemberAccount.invitation_state != "accepted",
                   MemberAccount.invited_at.is_(None) if invited_at is None else MemberAccount.invited_at == invited_at)
            .values(invitation_state="sent", invited_at=now).execution_options(synchronize_session=False))
        session.expire(account)
        if result.rowcount != 1:  # invited (or deactivated, or accepted) by someone else a moment ago
            state = session.execute(select(MemberAccount.active, MemberAccount.invitation_state)
                                    .where(MemberAccount.id == account.id)).one()
            if not state.active:
                refused.append((login, str(_l("deactivated"))))
            elif state.invitation_state == "accepted":
                refused.append((login, str(_l("the invitation was accepted already"))))
            else:
                refused.append((login, str(_l("it was invited again a moment ago"))))
            continue
        chosen.append(account)
    if chosen:
        ids = [a.id for a in chosen]
        record(session, actor, "reinvite", "member_account", ids,
               message("audit.organizer.reinvite", logins=", ".join(a.login for a in chosen)))
        session.flush()
    return ActionResult(tuple(a.login for a in chosen), tuple(refused), {"accounts": chosen})


def deactivate_organizers(session: Session, actor: User, accounts: Sequence[MemberAccount]) -> ActionResult:
    """Deactivate organizers, freeing each one's seat once (an inactive one is refused, frees nothing)."""
    require_role(actor, ORGANIZER_ROLES)
    mine, refused = _organizers_in_scope(session, actor, accounts)
    changed = []
    for account in mine:
        login, company_id, edition = account.login, account.company_id, account.seat_edition
        result = session.execute(
            update(MemberAccount).where(MemberAccount.id == account.id, MemberAccount.active.is_(True))
            .values(active=False).execution_options(synchronize_session=False))
        session.expire(account)
        if result.rowcount != 1:
            refused.append((login, str(_l("deactivated already"))))
            continue
        _free_seat(session, company_id, edition)
        changed.append((account.id, login))
    if changed:
        record(session, actor, "deactivate", "member_account", [i for i, _login in changed],
               "organizers deactivated, seats freed: " + ", ".join(login for _i, login in changed))
        session.flush()
    return ActionResult(tuple(login for _i, login in changed), tuple(refused))


def activate_organizers(session: Session, actor: User, accounts: Sequence[MemberAccount]) -> ActionResult:
    """Reactivate organizers, each taking a seat again; one without a free seat is refused and stays inactive."""
    require_role(actor, ORGANIZER_ROLES)
    mine, refused = _organizers_in_scope(session, actor, accounts)
    changed = []
    for account in mine:
        login, company, edition = account.login, account.company, account.seat_edition
        try:
            with session.begin_nested():
                result = session.execute(
                    update(MemberAccount).where(MemberAccount.id == account.id, MemberAccount.active.is_(False))
                    .values(active=True).execution_options(synchronize_session=False))
                if result.rowcount != 1:
                    raise DomainError(_l("active already"))
                _take_seat(session, company, edition)
        except NoSeatLeft:
            refused.append((login, str(_l("no %(edition)s seat left", edition=SEAT_EDITIONS[edition]))))
        except DomainError as exc:
            refused.append((login, str(exc)))
        else:
            changed.append((account.id, login))
        session.expire(account)
    if changed:
        record(session, actor, "activate", "member_account", [i for i, _login in changed],
               "organizers reactivated, seats taken: " + ", ".join(login for _i, login in changed))
        session.flush()
    return ActionResult(tuple(login for _i, login in changed), tuple(refused))
