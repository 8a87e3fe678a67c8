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
from dataclasses import dataclass
from datetime import date, datetime

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from actions import ActionResult, DomainError, in_scope, require_role, scope_company_ids
from actions.audit import record
from actions.money import round_money
from actions.text_input import one_line
from actions.texts import label_param, message, money_param
from actions.orders import LineSpec, open_order, pay_offline
from models import SEAT_EDITIONS, Company, MemberAccount, Order, OrderLine, Package, SeatQuota, User, utcnow

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


def _quantity(value) -> int:
    text = str(value if value is not None else "").strip()
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
    """Add a paid seat order's quantity to its company's quota of that edition (creating the row once)."""
    edition, quantity = session.execute(
        select(OrderLine.edition, func.sum(OrderLine.quantity)).where(OrderLine.order_id == order.id)
        .group_by(OrderLine.edition)
    ).one()
    _add_purchased(session, order.company_id, edition, int(quantity))


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
    """Take a refunded seat order's seats back, if they are free (else refuse: deactivate organizers first)."""
    edition, quantity = lines[0].edition, sum(line.quantity for line in lines)
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
    total = round_money(package.amount * quantity, package.currency)
    order = open_order(session, actor, kind="seats", company_id=company.id, currency=package.currency,
                       promotion=promotion, note=note,
                       lines=[LineSpec(description=message("order.line.seats", edition=label_param("seat_edition", edition),
                                                           quantity=quantity), gross=total, quantity=quantity,
                                       unit_price=package.amount, package_id=package.id, edition=edition)])
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
    if session.scalar(select(MemberAccount.id).where(MemberAccount.login == email)) is not None:
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


def reinvite_organizers(session: Session, actor: User, accounts: Sequence[MemberAccount],
                        now: datetime | None = None) -> ActionResult:
    """再次邀请: mark active, not yet accepted organizers invited again now; extra["accounts"] are to be mailed."""
    require_role(actor, ORGANIZER_ROLES)
    mine, refused = _organizers_in_scope(session, actor, accounts)
    now = now or utcnow()
    chosen = []
    for account in mine:
        if not account.active:
            refused.append((account.login, str(_l("deactivated"))))
        elif account.invitation_state == "accepted":
            refused.append((account.login, str(_l("the invitation was accepted already"))))
        else:
            chosen.append(account)
    if chosen:
        ids = [a.id for a in chosen]
        session.execute(
            update(MemberAccount)
            .where(MemberAccount.id.in_(ids), MemberAccount.active.is_(True),
                   MemberAccount.invitation_state != "accepted")
            .values(invitation_state="sent", invited_at=now).execution_options(synchronize_session=False))
        for account in chosen:
            session.expire(account)
        record(session, actor, "reinvite", "member_account", ids,
               "invitation sent again to " + ", ".join(a.login for a in chosen))
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
