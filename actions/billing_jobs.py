"""The scheduled billing jobs: auto-renewal from the balance and expiry reminders (cron, run daily).

Both follow the company's EFFECTIVE billing config (its own, else its nearest ancestor's, as
actions.billing.effective_config) and work per calendar billing period: the month ("2026-11"),
the quarter ("2026-Q4") or the year ("2026") that contains `today`. A device is due when it is
active (suspended devices are left out) and expires on or before the last day of that period;
devices that have already expired are due too.

Why the calendar period and not "the next N months from today": a renewal moves expiry to
max(expiry, today) + N months, which always lies past the period's end, so a renewed device is
never due again in the same period. With a rolling window a device renewed from today
(expired, or expiring today) would be due again the very next day and be charged twice.

Both jobs are safe to run again and again, and concurrently:
- auto_renew claims each device for its period by inserting AutoRenewAttempt(device_id,
  period_start = the device's current expires_on) BEFORE anything else (unique key, ON CONFLICT
  DO NOTHING). A device already claimed by an earlier or a concurrent run is skipped. The
  outcome stays recorded: "insufficient_balance" and "failed" are not retried while the expiry
  stays the same (someone renews or changes the expiry: that is a new period_start);
  "no_package" is retried once a package has been bound.
- remind claims (company, period) by inserting its ReminderLog first: one email per company per
  period, queued in the mail outbox (actions.outbox) in the same transaction. The mail leaves
  after the commit; a mail that fails stays in the outbox, failed with its reason, and is
  retried from there (`flask --app app mail send-queued`, an admin's retry), never lost.

Nothing here commits. auto_renew calls the `commit` it is given after each batch (the CLI passes
the session's commit): a run over many due devices never holds SQLite's write lock for longer
than one batch, and a run that stops half-way keeps the batches it finished. Each batch is its
own claims plus its order, so running the command again picks up exactly what is left.
remind: the CLI commits once.
"""
from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, bindparam, func, literal, select, tuple_, type_coerce, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from actions import DomainError
from actions.audit import record
from actions.outbox import RenderedMail, queue_mail
from actions.money import format_money, from_minor
from actions.texts import message, money_param
# open_order and pay_with_balance are the one way an order is written and paid (a paid renewal
# moves expiries, remembering old and new for refunds); auto-renewal must not grow a second one.
from actions.orders import MAX_MONTHS, LineSpec, open_order, pay_with_balance, renewal_price, renewed_until
from actions.wallets import InsufficientBalance
from models import (
    AutoRenewAttempt, BillingConfig, Company, Device, Order, Package, ReminderLog, path_ids, utcnow,
)

CYCLE_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
BATCH_DEVICES = 1000  # devices per auto-renewal order (and per page read)
MAX_LISTED = 1000  # devices listed in one reminder email; the rest are counted
_CHUNK = 900  # ids per IN (...): stays under SQLite's bound-parameter limit
_MAX_NAMED = 20  # device numbers named in one report line


# --- periods and configs ----------------------------------------------------------------------

@dataclass(frozen=True)
class BillingPeriod:
    """The calendar month, quarter or year that contains a day."""

    label: str  # "2026-11", "2026-Q4", "2026"
    start: date
    end: date  # the last day of the period


def billing_period(today: date, cycle: str) -> BillingPeriod:
    """The billing period of `cycle` (monthly, quarterly, yearly) that contains `today`."""
    months = CYCLE_MONTHS[cycle]
    first_month = (today.month - 1) // months * months + 1
    last_month = first_month + months - 1
    start = date(today.year, first_month, 1)
    end = date(today.year, last_month, calendar.monthrange(today.year, last_month)[1])
    if cycle == "monthly":
        label = f"{today.year}-{first_month:02d}"
    elif cycle == "quarterly":
        label = f"{today.year}-Q{(first_month - 1) // 3 + 1}"
    else:
        label = f"{today.year}"
    return BillingPeriod(label, start, end)


@dataclass(frozen=True)
class CompanySettings:
    """An active company with the billing settings in effect for it (its own config or inherited)."""

    id: int
    name: str
    cycle: str
    auto_renew: bool
    push_enabled: bool
    push_language: str
    push_emails: tuple[str, ...]
    source_id: int  # the company whose config this is


def effective_settings(session: Session) -> list[CompanySettings]:
    """Every active company with a config in effect, in two queries (the rule of effective_config).

    Companies that are not active (pending, rejected, disabled) are neither renewed nor reminded.
    """
    configs = {c.company_id: c for c in session.scalars(select(BillingConfig))}
    settings = []
    for company_id, name, path in session.execute(
        select(Company.id, Company.name, Company.path).where(Company.status == "active").order_by(Company.path)
    ):
        ancestry = path_ids(path)
        config = next((configs[i] for i in reversed(ancestry) if i in configs), None)
        if config is not None:
            settings.append(CompanySettings(
                company_id, name, config.billing_cycle, config.auto_renew, config.push_enabled,
                config.push_language, tuple(config.email_list), config.company_id,
            ))
    return settings


@dataclass(frozen=True)
class _Package:
    """What pricing needs of a package, read once per run (renewal_price takes it like a Package)."""

    id: int
    code: str
    currency: str
    active: bool
    pricing: str
    amount_minor: int
    term_months: int | None

    @property
    def amount(self) -> Decimal:
        return from_minor(self.amount_minor, self.currency)


def _by_cycle(companies: Iterable[CompanySettings]) -> dict[str, list[CompanySettings]]:
    groups: dict[str, list[CompanySettings]] = defaultdict(list)
    for company in companies:
        groups[company.cycle].append(company)
    return groups


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _insert(session: Session, table):
    """INSERT with ON CONFLICT support for the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)


def _named(numbers: Sequence[str]) -> str:
    text = ", ".join(numbers[:_MAX_NAMED])
    return text + (f", … (+{len(numbers) - _MAX_NAMED})" if len(numbers) > _MAX_NAMED else "")


# --- auto-renewal --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AutoRenewSummary:
    """What one auto-renewal run did: device counts, the orders paid, one report line per company."""

    renewed: int = 0
    insufficient: int = 0
    no_package: int = 0
    failed: int = 0
    skipped: int = 0  # already attempted for this expiry by an earlier (or concurrent) run
    orders: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()


@dataclass
class _CompanyOutcome:
    name: str
    renewed: int = 0
    orders: list[str] = field(default_factory=list)
    insufficient: list[str] = field(default_factory=list)
    no_package: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def lines(self, company_id: int) -> list[str]:
        head = f"{self.name} (#{company_id})"
        lines = []
        if self.renewed:
            lines.append(str(_l("%(company)s: %(count)s devices renewed, paid from the balance: %(orders)s",
                                company=head, count=self.renewed, orders="; ".join(self.orders))))
        lines += [f"{head}: {text}" for text in self.insufficient + self.failed]
        if self.no_package:
            lines.append(str(_l("%(company)s: no renewal package bound (bind one first): %(numbers)s",
                                company=head, numbers=_named(self.no_package))))
        return lines


@dataclass(frozen=True, slots=True)
class _Due:
    """A due device as the scan read it."""

    id: int
    number: str
    company_id: int
    expires_on: date
    package_id: int | None


class _AutoRenewal:
    """One run: claims devices batch by batch, pays one order per company, currency and batch."""

    def __init__(self, session: Session, today: date, period: BillingPeriod, months: int,
                 packages: dict[int, _Package], outcomes: dict[int, _CompanyOutcome], totals: dict[str, int],
                 orders: list[str], commit: Callable[[], None] | None = None):
        self.session, self.today, self.period, self.months = session, today, period, months
        self.packages, self.outcomes, self.totals, self.orders = packages, outcomes, totals, orders
        self.commit = commit
        self.attempts = AutoRenewAttempt.__table__
        # Translated once per run: gettext per claimed row cost more than the row's INSERT.
        # Untranslated placeholders kept: SQL puts each device's number in (_claim).
        self.unbound_template = str(_l("%(number)s: no renewal package bound"))
        self.dates: dict[object, date] = {}  # stored expiry → date
        self.renewed: dict[date, date] = {}  # expiry → new expiry
        self.prices: dict[int, tuple[Decimal | None, str]] = {}  # package id → (price, or None and why not)

    def run(self, companies: Sequence[CompanySettings]) -> None:
        names = {c.id: c.name for c in companies}
        buffers: dict[str | None, list] = {}
        current = None
        for row in self._due_devices([c.id for c in companies]):
            if row.company_id != current:
                self._settle_all(buffers)
                current = row.company_id
                self.outcomes.setdefault(current, _CompanyOutcome(names[current]))
            package = self.packages.get(row.package_id) if row.package_id else None
            currency = package.currency if package is not None else None
            buffer = buffers.setdefault(currency, [])
            buffer.append(row)
            if len(buffer) >= BATCH_DEVICES:
                self._settle(row.company_id, currency, buffers.pop(currency))
                self._batch_done()
        self._settle_all(buffers)

    def _batch_done(self) -> None:
        if self.commit is not None:
            self.commit()

    def _due_devices(self, company_ids: Sequence[int]) -> Iterator:
        """Active devices of these companies expiring by the period's end, a page at a time.

        One company at a time, each page a range scan of ix_device_company_expires. Suspended
        devices are dropped here rather than in SQL: with `status = 'active'` in the WHERE clause
        SQLite picks ix_device_status_expires and rescans every company's due devices per page.
        Keyset pages on (expiry, id): rows renewed meanwhile leave the window, rows refused stay
        behind the cursor, so no row is read twice however the batches end.
        """
        # The expiry as stored (ISO text on SQLite), turned into a date once per distinct day, not per row.
        stored = type_coerce(Device.expires_on, String)
        for company_id in company_ids:
            after = None
            while True:
                query = (
                    select(Device.id, Device.number, Device.company_id, stored, Device.package_id, Device.status)
                    .where(Device.company_id == company_id, Device.expires_on <= self.period.end)
                    .order_by(Device.expires_on, Device.id)
                    .limit(BATCH_DEVICES)
                )
                if after is not None:
                    query = query.where(tuple_(stored, Device.id) > after)
                rows = self.session.execute(query).all()
                for id_, number, company, expires, package_id, status in rows:
                    if status == "active":
                        yield _Due(id_, number, company, self._date(expires), package_id)
                if len(rows) < BATCH_DEVICES:
                    break
                after = (rows[-1][3], rows[-1][0])

    def _date(self, stored) -> date:
        found = self.dates.get(stored)
        if found is None:
            found = self.dates[stored] = stored if isinstance(stored, date) else date.fromisoformat(stored)
        return found

    def _settle_all(self, buffers: dict) -> None:
        for currency, rows in list(buffers.items()):
            if rows:
                self._settle(rows[0].company_id, currency, rows)
                self._batch_done()
        buffers.clear()

    def _claim(self, rows: Sequence, outcome: str, reasons: dict[int, str] | None = None) -> dict[int, tuple[int, date]]:
        """Insert the attempts of these devices for their current expiry; {device_id: (attempt_id, that expiry)}
        of those won.

        Set-based: one INSERT … SELECT from device per message, the device's number put in by SQL
        (the unbound message; "<number>: <reason>" for a device its package cannot price, `reasons`
        by device id). A device is claimed only while it is still due: active, expiring by the
        period's end (another run or a person may have renewed or suspended it since the scan)."""
        now = utcnow()
        if outcome == "no_package":
            groups = {self.unbound_template: [r.id for r in rows]}
        else:
            groups = defaultdict(list)
            for row in rows:
                groups[reasons.get(row.id, "") if reasons else ""].append(row.id)
        device, attempts = Device.__table__, self.attempts
        claimed: dict[int, tuple[int, date]] = {}
        for unbound, ids in groups.items():
            if outcome == "no_package":
                text = func.replace(unbound, "%(number)s", device.c.number)
            elif unbound:
                text = func.substr(device.c.number + f": {unbound}", 1, 255)
            else:
                text = literal("")
            for chunk in _chunks(ids):
                result = self.session.execute(
                    _insert(self.session, attempts)
                    .from_select(
                        ["device_id", "period_start", "outcome", "message", "created_at"],
                        select(device.c.id, device.c.expires_on, literal(outcome), text, literal(now, attempts.c.created_at.type))
                        .where(device.c.id.in_(chunk), device.c.status == "active",
                               device.c.expires_on <= self.period.end),
                    )
                    .on_conflict_do_nothing(index_elements=["device_id", "period_start"])
                    .returning(attempts.c.id, attempts.c.device_id, type_coerce(attempts.c.period_start, String))
                )
                claimed.update({device_id: (attempt_id, self._date(expires))
                                for attempt_id, device_id, expires in result})
        return claimed

    def _reclaim_unbound(self, rows: Sequence) -> dict[int, int]:
        """Devices recorded as "no_package" for this expiry that have a package now: try them again."""
        claimed: dict[int, int] = {}
        for chunk in _chunks(list(rows)):
            result = self.session.execute(
                update(self.attempts)
                .where(tuple_(self.attempts.c.device_id, self.attempts.c.period_start)
                       .in_([(r.id, r.expires_on) for r in chunk]),
                       self.attempts.c.outcome == "no_package")
                .values(outcome="failed", message="", created_at=utcnow())
                .returning(self.attempts.c.id, self.attempts.c.device_id)
            )
            claimed.update({device_id: attempt_id for attempt_id, device_id in result})
        return claimed

    def _price(self, package_id: int) -> tuple[Decimal | None, str]:
        """The price of this run's months of a package, or None and why it cannot be renewed (once per package)."""
        found = self.prices.get(package_id)
        if found is None:
            package = self.packages[package_id]
            try:
                if not package.active:
                    raise DomainError(_l("package %(code)s is no longer sold", code=package.code))
                found = (renewal_price(package, self.months), "")
            except DomainError as exc:
                found = (None, str(exc))
            self.prices[package_id] = found
        return found

    def _settle(self, company_id: int, currency: str | None, rows: list) -> None:
        outcome = self.outcomes[company_id]
        if currency is None:
            claimed = self._claim(rows, "no_package")
            self.totals["skipped"] += len(rows) - len(claimed)
            self.totals["no_package"] += len(claimed)
            outcome.no_package += [r.number for r in rows if r.id in claimed]
            return
        # Priced before claiming, so that a device its package cannot price is claimed with its reason.
        reasons = {}
        for row in rows:
            price, reason = self._price(row.package_id)
            if price is None:
                reasons[row.id] = reason
        refusals = {r.id: f"{r.number}: {reasons[r.id]}"[:255] for r in rows if r.id in reasons}
        won = self._claim(rows, "failed", reasons)
        claimed = {device_id: attempt_id for device_id, (attempt_id, _expires) in won.items()}
        lost = [r for r in rows if r.id not in claimed]
        if lost:
            reclaimed = self._reclaim_unbound(lost)
            claimed.update(reclaimed)
            unpriced = [{"b_id": reclaimed[r.id], "b_message": refusals[r.id]} for r in lost
                        if r.id in reclaimed and r.id in refusals]
            if unpriced:
                self.session.execute(
                    update(self.attempts).where(self.attempts.c.id == bindparam("b_id"))
                    .values(message=bindparam("b_message")),
                    unpriced,
                )
        self.totals["skipped"] += len(rows) - len(claimed)
        # Renewed from the expiry each device was claimed for (the reclaimed ones: the one recorded).
        rows = [replace(r, expires_on=won[r.id][1]) if r.id in won else r for r in rows if r.id in claimed]
        failed = [refusals[r.id] for r in rows if r.id in refusals]
        outcome.failed += failed
        self.totals["failed"] += len(failed)
        priced = [r for r in rows if r.id not in refusals]
        if not priced:
            return
        ids = [claimed[row.id] for row in priced]
        try:
            with self.session.begin_nested():
                order = self._pay(company_id, currency, priced)
        except InsufficientBalance as exc:
            refusal = str(_l("%(count)s devices not renewed: %(reason)s", count=len(priced), reason=exc))
            outcome.insufficient.append(f"{refusal} ({_named([r.number for r in priced])})")
            self.totals["insufficient"] += len(priced)
            self._finish(ids, outcome="insufficient_balance", message=str(exc)[:255])
        except DomainError as exc:
            outcome.failed.append(str(_l("%(count)s devices not renewed: %(reason)s", count=len(priced), reason=exc)))
            self.totals["failed"] += len(priced)
            self._finish(ids, outcome="failed", message=str(exc)[:255])
        else:
            number, total = order.number, order.total
            outcome.renewed += len(priced)
            outcome.orders.append(f"{number} ({format_money(total, currency)})")
            self.orders.append(number)
            self.totals["renewed"] += len(priced)
            self._finish(ids, outcome="renewed", order_id=order.id, message=number)

    def _finish(self, attempt_ids: Sequence[int], **values) -> None:
        """Record one outcome for a batch of claimed attempts."""
        for chunk in _chunks(list(attempt_ids)):
            self.session.execute(update(self.attempts).where(self.attempts.c.id.in_(chunk)).values(**values))

    def _renewed_until(self, expires_on: date) -> date:
        found = self.renewed.get(expires_on)
        if found is None:
            found = self.renewed[expires_on] = renewed_until(expires_on, self.months, self.today)
        return found

    def _pay(self, company_id: int, currency: str, rows: list) -> Order:
        """A renewal order for these devices, paid from the company's own wallet; expiries moved.

        The lines carry each device's old and new expiry from the start (read by the due scan):
        paying moves them all with one UPDATE (actions.orders.apply_renewal)."""
        session = self.session
        months, packages = self.months, self.packages
        # Stored messages, shown in the reader's language; built as plain dicts (open_order renders their
        # English once per order, in one locale switch).
        order = open_order(
            session, None, kind="renewal", company_id=company_id, currency=currency,
            note=message("order.note.auto_renew", period=self.period.label),
            lines=[LineSpec(description={"key": "order.line.renewal", "params": {
                                "device": row.number, "package": packages[row.package_id].code, "months": months}},
                            gross=self.prices[row.package_id][0], unit_price=self.prices[row.package_id][0],
                            device_id=row.id, package_id=row.package_id, months=months,
                            old_expires_on=row.expires_on, new_expires_on=self._renewed_until(row.expires_on))
                   for row in rows],
        )
        number, order_id, total = order.number, order.id, order.total
        pay_with_balance(session, None, order, self.today)
        record(session, None, "auto_renew", "order", [order_id],
               message("audit.order.auto_renew", order=number, devices=len(rows), months=self.months,
                       amount=money_param(total, currency), period=self.period.label))
        session.flush()
        return order


def auto_renew(session: Session, today: date, months: int | None = None,
               commit: Callable[[], None] | None = None) -> AutoRenewSummary:
    """Renew the due devices of every company whose effective config has auto-renew on, from the balance.

    `commit`, when given, is called after each batch (one order, or one batch of refusals): the
    caller's transaction then spans one batch, and the caller commits the run's summary at the end.

    Each device is renewed for its company's cycle length (`months` overrides it) and paid from
    the wallet of the DEVICE'S OWN company, also when the config is inherited from a parent: the
    order, the ledger entry and the balance stay with the company that owns the device. One order
    per company, currency and batch of BATCH_DEVICES devices; a batch the balance cannot cover is
    refused whole (its devices are recorded "insufficient_balance" with the missing amount).

    With `months` shorter than the cycle, a renewed device may still expire within the period
    and be renewed again by the next run (for its new expiry, never twice for the same one).
    """
    if months is not None and not (isinstance(months, int) and 1 <= months <= MAX_MONTHS):
        raise DomainError(_l("Months: between 1 and %(max)s.", max=MAX_MONTHS))
    companies = [c for c in effective_settings(session) if c.auto_renew]
    packages = {
        row.id: _Package(*row) for row in session.execute(
            select(Package.id, Package.code, Package.currency, Package.active, Package.pricing,
                   Package.amount_minor, Package.term_months))
    }
    outcomes: dict[int, _CompanyOutcome] = {}
    totals = defaultdict(int)
    orders: list[str] = []
    for cycle, group in _by_cycle(companies).items():
        period = billing_period(today, cycle)
        _AutoRenewal(session, today, period, months or CYCLE_MONTHS[cycle], packages, outcomes, totals,
                     orders, commit).run(group)
    lines = tuple(line for company_id, outcome in outcomes.items() for line in outcome.lines(company_id))
    summary = AutoRenewSummary(totals["renewed"], totals["insufficient"], totals["no_package"], totals["failed"],
                               totals["skipped"], tuple(orders), lines)
    if summary.renewed or summary.insufficient or summary.no_package or summary.failed:
        record(session, None, "auto_renew", "auto_renew_attempt", [],
               message("audit.auto_renew.run", day=today.isoformat(), renewed=summary.renewed, orders=len(orders),
                       insufficient=summary.insufficient, no_package=summary.no_package, failed=summary.failed,
                       skipped=summary.skipped))
    session.flush()
    return summary


# --- expiry reminders ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpiryReminder:
    """One company's reminder for one period: who gets it, in which language, which devices."""

    company_id: int
    company_name: str
    period: str
    period_end: date
    language: str  # a PUSH_LANGUAGES code: zh_CN, en, vi
    recipients: tuple[str, ...]
    devices: tuple[tuple[str, str, date], ...]  # number, name, expires_on (the first MAX_LISTED)
    total: int  # all due devices, listed or not

    @property
    def unlisted(self) -> int:
        return self.total - len(self.devices)


@dataclass(frozen=True)
class RemindSummary:
    """What one reminder run did: emails queued (their outbox ids) and companies already reminded this period."""

    queued: int = 0
    skipped: int = 0
    devices: int = 0
    lines: tuple[str, ...] = ()
    mail_ids: tuple[int, ...] = ()


def _due_by_company(session: Session, company_ids: Sequence[int], period_end: date) -> dict[int, list]:
    """{company_id: [(number, name, expires_on, total), …]}: the first MAX_LISTED due devices, one query per chunk."""
    found: dict[int, list] = defaultdict(list)
    for chunk in _chunks(list(company_ids)):
        ranked = (
            select(
                Device.company_id, Device.number, Device.name, Device.expires_on,
                func.row_number().over(partition_by=Device.company_id,
                                       order_by=(Device.expires_on, Device.number)).label("rank"),
                func.count().over(partition_by=Device.company_id).label("total"),
            )
            .where(Device.company_id.in_(chunk), Device.status == "active", Device.expires_on <= period_end)
            .subquery()
        )
        for row in session.execute(
            select(ranked.c.company_id, ranked.c.number, ranked.c.name, ranked.c.expires_on, ranked.c.total)
            .where(ranked.c.rank <= MAX_LISTED)
            .order_by(ranked.c.company_id, ranked.c.rank)
        ):
            found[row.company_id].append(row)
    return found


def remind(session: Session, today: date, compose: Callable[[ExpiryReminder], RenderedMail]) -> RemindSummary:
    """Queue an email to each company with push on listing the devices expiring by its period's end: once per
    company and period.

    `compose(reminder)` renders one email (the CLI renders it in the push language); it is queued in
    the outbox with the company's ReminderLog, in the caller's transaction. The caller commits,
    then sends (actions.outbox.send_queued): no mail leaves while the transaction is open.
    """
    companies = [c for c in effective_settings(session) if c.push_enabled]
    queued = skipped = devices = 0
    lines: list[str] = []
    logs = ReminderLog.__table__
    company_ids: list[int] = []
    mail_ids: list[int] = []
    for cycle, group in _by_cycle(companies).items():
        period = billing_period(today, cycle)
        by_id = {c.id: c for c in group}
        due = _due_by_company(session, list(by_id), period.end)
        reachable = []
        for company_id in due:
            if by_id[company_id].push_emails:
                reachable.append(company_id)
            else:
                lines.append(str(_l("%(company)s (#%(id)s): push is on but no push email address is configured.",
                                    company=by_id[company_id].name, id=company_id)))
        for chunk in _chunks(reachable):
            claimed = set(session.scalars(
                _insert(session, logs)
                .on_conflict_do_nothing(index_elements=["company_id", "period"])
                .returning(logs.c.company_id),
                [{"company_id": i, "period": period.label, "devices": due[i][0].total,
                  "recipients": "\n".join(by_id[i].push_emails), "created_at": utcnow()} for i in chunk],
            ))
            skipped += len(chunk) - len(claimed)
            for company_id in (i for i in chunk if i in claimed):
                company, rows = by_id[company_id], due[company_id]
                reminder = ExpiryReminder(
                    company_id, company.name, period.label, period.end, company.push_language,
                    company.push_emails, tuple((r.number, r.name, r.expires_on) for r in rows),
                    rows[0].total,
                )
                mail_id = queue_mail(session, f"expiry_reminder:{company_id}:{period.label}", reminder.recipients,
                                     compose(reminder))
                if mail_id is not None:
                    mail_ids.append(mail_id)
                queued += 1
                devices += reminder.total
                company_ids.append(company_id)
    if queued:
        record(session, None, "remind", "company", company_ids,
               message("audit.remind.run", day=today.isoformat(), queued=queued, devices=devices))
    session.flush()
    return RemindSummary(queued, skipped, devices, tuple(lines), tuple(mail_ids))
