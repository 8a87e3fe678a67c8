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
- auto_renew claims each device for the expiry it renews from, in the same statement that writes
  what happened (unique keys, ON CONFLICT): a renewed device's claim is its order line
  (order_line.auto_renew_from = the old expiry, unique with the device); a refused device's is an
  AutoRenewAttempt(device_id, period_start = that expiry, outcome, message). A device claimed in
  either by an earlier or a concurrent run is skipped. Refusals stay recorded: "insufficient_balance"
  and "failed" are not retried while the expiry stays the same (someone renews or changes the
  expiry: that is a new period_start); "no_package" is retried once a package has been bound (the
  refusal stays as history; a new refusal replaces it).
- remind claims (company, period) by inserting its ReminderLog first: one email per company per
  period, queued in the mail outbox (actions.outbox) in the same transaction. The mail leaves
  after the commit; a mail that fails stays in the outbox, failed with its reason, and is
  retried from there (`flask --app app mail send-queued`, an admin's retry), never lost.

Nothing here commits. auto_renew calls the `commit` it is given after the batch that takes the
write transaction past TRANSACTION_SECONDS (the CLI passes the session's commit): a run over many
due devices never holds SQLite's write lock for much longer than that, and a run that stops
half-way keeps the batches it committed. Each batch is its own order (or its refusals) with its
claims, so running the command again picks up exactly what is left.
remind: the CLI commits once.
"""
from __future__ import annotations

import calendar
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Date, Integer, String, case, cast, exists, func, literal, literal_column, select, tuple_, type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from actions import DomainError
from actions.audit import record
from actions.outbox import RenderedMail, queue_mail
from actions.money import format_money, from_minor, to_minor
from actions.texts import english, message, money_param
# actions.orders writes and pays every order (a paid renewal moves expiries, remembering old and new
# for refunds); auto-renewal opens its orders there too, their lines selected by SQL.
from actions.orders import MAX_MONTHS, add_months, open_order_of_selected_lines, pay_with_balance, renewal_price
from actions.wallets import InsufficientBalance
from models import (
    AutoRenewAttempt, BillingConfig, Company, Device, OrderLine, Package, ReminderLog, path_ids, utcnow,
)

CYCLE_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
BATCH_DEVICES = 5000  # devices per auto-renewal order (a batch the balance cannot cover is refused whole)
# A run's write transaction is committed after the batch that takes it past this many seconds: a few
# batches share one commit (each commit writes every page the transaction changed, and the devices of a
# batch spread over most of the device table's pages), and SQLite's write lock is held about this long
# plus one batch.
TRANSACTION_SECONDS = 0.1
# SQLite, for the length of a run (the connection's own settings are put back at its end):
# - its page cache, in KiB (the default is 2 MB): batch after batch, a run touches the same device-table
#   and index pages, which a 2 MB cache reads again from the file each time;
# - no automatic WAL checkpoint after each commit: a checkpoint copies every page the WAL holds back into
#   the database file, and a run's transactions write the same device and index pages again and again.
#   Once the run has put the connection's setting back, the caller's last commit checkpoints them once.
SQLITE_CACHE_KIB = 32768
REFUSALS_PER_STATEMENT = 5000  # refusals recorded by one INSERT … SELECT (cheaper than a renewal)
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


def whole_terms(package, months: int) -> int:
    """The months an auto-renewal of `months` renews a device on `package` for: `months` for a package priced
    per month or per year; for one sold in terms, the whole terms that cover them (a quarterly package in a
    monthly cycle renews three months), at most MAX_MONTHS."""
    term = package.term_months or 0
    if package.pricing != "per_term" or term <= 0 or months % term == 0:
        return months
    return min(-(-months // term) * term, MAX_MONTHS)


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


def _named(numbers: Sequence[str], total: int | None = None) -> str:
    """The first _MAX_NAMED of `numbers`, then how many more (of `total` when only the first are given)."""
    total = len(numbers) if total is None else total
    text = ", ".join(numbers[:_MAX_NAMED])
    return text + (f", … (+{total - _MAX_NAMED})" if total > _MAX_NAMED else "")


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
    no_package: int = 0
    unbound: list[str] = field(default_factory=list)  # the first _MAX_NAMED device numbers without a package
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
                                company=head, numbers=_named(self.unbound, self.no_package))))
        return lines


_DEVICE_TOKEN = "\u2063device\u2063"  # where SQL puts each device's number into a line's English description


class _SQLiteSettings:
    """A run's SQLite settings (PRAGMA cache_size and wal_autocheckpoint, see SQLITE_CACHE_KIB) on each connection
    it uses (after a commit the next transaction may be on another pooled connection), each connection's own
    put back by restore(), also after a failed run. Does nothing on other databases."""

    WANTED = {"cache_size": -SQLITE_CACHE_KIB, "wal_autocheckpoint": 0}

    def __init__(self, session: Session):
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self.before: dict[object, dict[str, int]] = {}  # DB-API connection → its settings before the run

    def apply(self) -> None:
        if not self.sqlite:
            return
        connection = self.session.connection().connection.dbapi_connection
        if connection not in self.before:
            self.before[connection] = {
                name: connection.execute(f"PRAGMA {name}").fetchone()[0] for name in self.WANTED}
            for name, value in self.WANTED.items():
                connection.execute(f"PRAGMA {name} = {int(value)}")

    def restore(self) -> None:
        for connection, settings in self.before.items():
            try:
                for name, value in settings.items():
                    connection.execute(f"PRAGMA {name} = {int(value)}")
            except sqlite3.ProgrammingError:  # closed meanwhile (the pool let it go): nothing to put back
                pass
        self.before.clear()


def renewed_until_sql(expires_on, today: date, months: int, postgresql: bool):
    """actions.orders.renewed_until in SQL: max(expiry, today) + N months, clamped to the end of a shorter month
    (PostgreSQL's date + interval clamps; SQLite's date(…, '+N months') overflows into the next month, so the
    last day of the target month caps it)."""
    months = int(months)
    start = literal(today, Date)
    if postgresql:
        return cast(func.greatest(expires_on, start) + literal_column(f"interval '{months} months'"), Date)
    start = func.max(expires_on, start)
    return func.min(func.date(start, f"+{months} months"),
                    func.date(start, "start of month", f"+{months + 1} months", "-1 day"))


class _AutoRenewal:
    """One run over the companies of one billing cycle, company by company, set-based.

    Per company: its refusals first (no package; a package that cannot be priced), one INSERT …
    SELECT into auto_renew_attempt per REFUSALS_PER_STATEMENT devices, outcome and message (the
    device's number in it) computed by SQL; then one order per currency and batch of
    BATCH_DEVICES devices whose lines are selected from the due devices by SQL
    (actions.orders.open_order_of_selected_lines: device, package, price, old and new expiry, the
    description with the device's number), paid from the balance (pay_with_balance: the ledger
    entry, the devices moved). No device row passes through Python.

    The claim of a renewed device is its order line (unique on device and auto_renew_from, the
    expiry renewed from); the claim of a refused device is its auto_renew_attempt (unique on device
    and period_start). A device is selected only while it is due (active, expiring by the period's
    end) and claimed in neither table for its current expiry; on PostgreSQL the selected devices
    are locked (FOR UPDATE) until the batch commits, so a device renewed or suspended meanwhile by
    someone else is re-checked and left out, never renewed twice.
    """

    def __init__(self, session: Session, today: date, period: BillingPeriod, months: int,
                 packages: dict[int, _Package], outcomes: dict[int, _CompanyOutcome], totals: dict[str, int],
                 orders: list[str], sqlite_settings: _SQLiteSettings, commit: Callable[[], None] | None = None):
        self.session, self.today, self.period, self.months = session, today, period, months
        self.sqlite_settings = sqlite_settings
        self.packages, self.outcomes, self.totals, self.orders = packages, outcomes, totals, orders
        self.commit = commit
        self.began = time.monotonic()  # when the current write transaction began
        self.postgresql = session.get_bind().dialect.name == "postgresql"
        # Renewed for fewer months than the cycle, a device may still be due afterwards: the next run
        # renews it again (from its new expiry), not this one (it leaves out its own orders' devices).
        self.order_ids: list[int] | None = [] if add_months(today, months) <= period.end else None
        self.attempts, self.device, self.line = AutoRenewAttempt.__table__, Device.__table__, OrderLine.__table__
        # Translated once per run; SQL puts each device's number in.
        self.unbound_template = str(_l("%(number)s: no renewal package bound"))
        self.months_of = {package.id: whole_terms(package, months) for package in packages.values()}
        # Each package priced once: {currency: {package id: price in minor units}}, {reason: [package ids]}.
        self.priced: dict[str, dict[int, int]] = defaultdict(dict)
        self.unpriced: dict[str, list[int]] = defaultdict(list)
        for package in packages.values():
            price, reason = self._price(package)
            if price is None:
                self.unpriced[reason].append(package.id)
            else:
                self.priced[package.currency][package.id] = to_minor(price, package.currency)
        self.descriptions = {  # package id → its lines' English, the device's number left to SQL
            package_id: english(message("order.line.renewal", device=_DEVICE_TOKEN,
                                        package=packages[package_id].code, months=self.months_of[package_id]))
            for prices in self.priced.values() for package_id in prices
        }

    def _price(self, package: _Package) -> tuple[Decimal | None, str]:
        """The price of this run's months of a package, or None and why it cannot be renewed."""
        try:
            if not package.active:
                raise DomainError(_l("package %(code)s is no longer sold", code=package.code))
            return renewal_price(package, self.months_of[package.id]), ""
        except DomainError as exc:
            return None, str(exc)

    def run(self, companies: Sequence[CompanySettings]) -> None:
        d = self.device
        # How many devices each company has due, from the covering ix_device_status_expires: those this
        # run neither renews nor refuses were claimed already (the summary's "already attempted").
        due = dict(self.session.execute(
            select(d.c.company_id, func.count()).where(d.c.status == "active", d.c.expires_on <= self.period.end)
            .group_by(d.c.company_id)
        ).all())
        for company in companies:
            if due.get(company.id):
                outcome = self.outcomes.setdefault(company.id, _CompanyOutcome(company.name))
                handled = self._company(company.id, outcome)
                self.totals["skipped"] += max(0, due[company.id] - handled)

    def _batch_done(self) -> None:
        """A batch is written: commit when the transaction has lasted TRANSACTION_SECONDS."""
        if self.commit is not None and time.monotonic() - self.began >= TRANSACTION_SECONDS:
            self.commit()
            self.began = time.monotonic()
            self.sqlite_settings.apply()  # the next transaction may be on another pooled connection

    # -- what is due -----------------------------------------------------------------------------

    def _due(self, company_id: int) -> tuple:
        """Active devices of the company expiring by the period's end (a range of ix_device_company_expires)."""
        d = self.device
        return d.c.company_id == company_id, d.c.expires_on <= self.period.end, d.c.status == "active"

    def _after(self, after: tuple) -> list:
        """Due devices after `after` in (expiry, id) order: the first term makes it a range of the index (a
        scan from there, not from the company's first due device)."""
        d = self.device
        return [d.c.expires_on >= after[0], tuple_(d.c.expires_on, d.c.id) > after]

    def _renewed_already(self):
        """The device has an auto-renewal line for its current expiry."""
        d, line = self.device, self.line
        return exists().where(line.c.device_id == d.c.id, line.c.auto_renew_from == d.c.expires_on)

    def _refused_already(self):
        """A refusal stands for the device's current expiry ("no_package" does not once a package is bound)."""
        d, a = self.device, self.attempts
        return exists().where(a.c.device_id == d.c.id, a.c.period_start == d.c.expires_on, a.c.outcome != "no_package")

    def _company(self, company_id: int, outcome: _CompanyOutcome) -> int:
        """Refuse, then renew, the company's due devices; how many this run did either to."""
        handled = self._refuse_unrenewable(company_id, outcome)
        for currency, prices in self.priced.items():
            after = None
            while True:
                count, after = self._renew_batch(company_id, currency, prices, outcome, after)
                handled += count
                if count < BATCH_DEVICES:
                    break
        return handled

    # -- refusals --------------------------------------------------------------------------------

    def _refuse_unrenewable(self, company_id: int, outcome: _CompanyOutcome) -> int:
        """Record, REFUSALS_PER_STATEMENT at a time by INSERT … SELECT, the refusal of each due device without a
        package ("no_package") or whose package cannot be priced ("failed"); each message is the device's
        number (put in by SQL) and the reason. A device recorded "no_package" for this expiry and bound since
        to a package that cannot be priced has its refusal turned into that one. The report has one line per
        reason: how many devices, the first numbers. How many were recorded."""
        d = self.device
        unpriced = {package_id: reason for reason, ids in self.unpriced.items() for package_id in ids}
        condition = d.c.package_id.is_(None)
        text = func.replace(self.unbound_template, "%(number)s", d.c.number)
        if unpriced:
            condition = condition | d.c.package_id.in_(list(unpriced))
            text = case((d.c.package_id.is_(None), text), else_=func.substr(
                d.c.number + case({i: f": {reason}" for i, reason in unpriced.items()}, value=d.c.package_id), 1, 255))
        result = case((d.c.package_id.is_(None), "no_package"), else_="failed")
        unbound: list[int] = []
        failed: dict[str, list[int]] = defaultdict(list)  # reason → the devices refused for it
        after = None
        while True:
            refused = self._refuse(company_id, condition, result, text, after=after, limit=REFUSALS_PER_STATEMENT,
                                   messages=True)
            for device_id, _expiry, result_, message_ in refused:
                if result_ == "no_package":
                    unbound.append(device_id)
                else:  # "<number>: <reason>" (a number may hold ": " too), the end cut off past 255 characters
                    reason = next((r for r in self.unpriced if message_.endswith(f": {r}")),
                                  message_.partition(": ")[2])
                    failed[reason].append(device_id)
            if refused:
                self._batch_done()
            if len(refused) < REFUSALS_PER_STATEMENT:
                break
            device_id, expiry = refused[-1][:2]
            after = (expiry if isinstance(expiry, date) else date.fromisoformat(expiry), device_id)
        if unbound:
            outcome.no_package += len(unbound)
            outcome.unbound += self._numbers(unbound)[:_MAX_NAMED - len(outcome.unbound)]
            self.totals["no_package"] += len(unbound)
        for reason, device_ids in failed.items():
            outcome.failed.append(self._refusal_line(len(device_ids), reason, device_ids))
            self.totals["failed"] += len(device_ids)
        return len(unbound) + sum(len(ids) for ids in failed.values())

    def _refusal_line(self, count: int, reason, device_ids: Sequence[int]) -> str:
        """"N devices not renewed: <reason> (the first numbers, … (+more))"."""
        refusal = str(_l("%(count)s devices not renewed: %(reason)s", count=count, reason=reason))
        return f"{refusal} ({_named(self._numbers(device_ids), count)})"

    def _refuse(self, company_id: int, condition, outcome, text, *, after=None, limit: int | None = None,
                messages: bool = False) -> list[tuple]:
        """Record the refusal `outcome` (an SQL expression of the device, as the message `text`) of the company's
        due devices matching `condition` (after `after` in (expiry, id) order, the first `limit`) that no claim
        stands for; [(device id, expiry)] of those recorded, in (expiry, id) order (with `messages`: [(device id,
        expiry, outcome, message)]). A "no_package" refusal of a device that has a package now gives way (ON
        CONFLICT: also when a concurrent run recorded it meanwhile); any other stands."""
        d, a = self.device, self.attempts
        standing = exists().where(a.c.device_id == d.c.id, a.c.period_start == d.c.expires_on,
                                  (a.c.outcome != "no_package") | d.c.package_id.is_(None))
        rows = (
            select(d.c.id, d.c.expires_on, outcome, text, literal(utcnow(), a.c.created_at.type))
            .where(*self._due(company_id), condition, ~standing, ~self._renewed_already())
        )
        if after is not None:
            rows = rows.where(*self._after(after))
        if limit is not None:
            rows = rows.order_by(d.c.expires_on, d.c.id).limit(limit)
        statement = _insert(self.session, a).from_select(
            ["device_id", "period_start", "outcome", "message", "created_at"], rows)
        result = self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["device_id", "period_start"],
                set_={"outcome": statement.excluded.outcome, "message": statement.excluded.message,
                      "created_at": statement.excluded.created_at},
                where=(a.c.outcome == "no_package") & (statement.excluded.outcome != "no_package"),
            )
            # The expiry as stored (ISO text on SQLite): not parsed into a date for each of thousands of rows.
            .returning(a.c.device_id, type_coerce(a.c.period_start, String),
                       *((a.c.outcome, a.c.message) if messages else ()))
        ).all()
        result.sort(key=lambda row: (row[1], row[0]))
        return [tuple(row) for row in result]

    def _numbers(self, device_ids: Sequence[int]) -> list[str]:
        """The numbers of the first _MAX_NAMED of these devices, in their order (for a report line)."""
        wanted = list(device_ids[:_MAX_NAMED])
        found = dict(self.session.execute(select(Device.id, Device.number).where(Device.id.in_(wanted))).all())
        return [found[i] for i in wanted if i in found]

    # -- renewals --------------------------------------------------------------------------------

    def _months(self, prices: dict[int, int]):
        """The months column of a batch's lines and their new expiry: one literal when every package of the
        batch renews the run's months (the usual case), else chosen per package (whole_terms)."""
        d, spans = self.device, defaultdict(list)
        for package_id in prices:
            spans[self.months_of[package_id]].append(package_id)
        if len(spans) == 1:
            (months,) = spans
            return literal(months), renewed_until_sql(d.c.expires_on, self.today, months, self.postgresql)
        return (case({i: self.months_of[i] for i in prices}, value=d.c.package_id),
                case(*[(d.c.package_id.in_(ids), renewed_until_sql(d.c.expires_on, self.today, months,
                                                                    self.postgresql))
                       for months, ids in sorted(spans.items())]))

    def _description_data(self, packages, months):
        d = self.device
        build = func.json_build_object if self.postgresql else func.json_object
        key = cast(literal("order.line.renewal"), String)
        return build(cast(literal("key"), String), key, cast(literal("params"), String), build(
            cast(literal("device"), String), d.c.number,
            cast(literal("package"), String), packages,
            cast(literal("months"), String), cast(months, Integer)))

    def _renew_batch(self, company_id: int, currency: str, prices: dict[int, int], outcome: _CompanyOutcome,
                     after: tuple | None) -> tuple[int, tuple | None]:
        """One order for the company's next BATCH_DEVICES due devices (after `after`, their (expiry, id) order)
        of these packages, paid from the balance; how many devices it took (0: none left) and the last one's
        (expiry, id). A batch the balance cannot cover is refused whole."""
        session, d, line = self.session, self.device, self.line
        price = case(prices, value=d.c.package_id)
        description = func.substr(func.replace(
            case({i: self.descriptions[i] for i in prices}, value=d.c.package_id), _DEVICE_TOKEN, d.c.number), 1, 255)
        codes = case({i: self.packages[i].code for i in prices}, value=d.c.package_id)
        due = [*self._due(company_id), d.c.package_id.in_(list(prices)), ~self._refused_already(),
               ~self._renewed_already()]
        if self.order_ids:
            due.append(~exists().where(line.c.device_id == d.c.id, line.c.order_id.in_(self.order_ids)))
        if after is not None:
            due += self._after(after)

        months, renewed_until = self._months(prices)

        def lines(order_id: int):
            query = (
                select(literal(order_id), d.c.id, d.c.package_id, description, self._description_data(codes, months),
                       months, literal(1), price, price, literal(0), price, literal(0),
                       d.c.expires_on, renewed_until, d.c.expires_on)
                .where(*due).order_by(d.c.expires_on, d.c.id).limit(BATCH_DEVICES)
            )
            # PostgreSQL: the devices stay locked until the batch commits; one changed by someone else
            # meanwhile is checked again (still due?) before it is taken. A concurrent run's line for the
            # same device and expiry is then impossible; were it not, the unique index would fail this
            # batch rather than renew twice.
            return query.with_for_update(of=d) if self.postgresql else query

        try:
            with session.begin_nested():
                opened = open_order_of_selected_lines(
                    session, kind="renewal", company_id=company_id, currency=currency,
                    note=message("order.note.auto_renew", period=self.period.label),
                    columns=_LINE_COLUMNS, lines=lines)
                if opened is None:
                    return 0, after
                order, count = opened
                number, order_id, total = order.number, order.id, order.total
                pay_with_balance(session, None, order, self.today)
                record(session, None, "auto_renew", "order", [order_id],
                       message("audit.order.auto_renew", order=number, devices=count, months=self.months,
                               amount=money_param(total, currency), period=self.period.label))
                last = session.execute(
                    select(line.c.old_expires_on, line.c.device_id).where(line.c.order_id == order_id)
                    .order_by(line.c.old_expires_on.desc(), line.c.device_id.desc()).limit(1)
                ).one()
                session.flush()
        except DomainError as exc:  # InsufficientBalance among them
            insufficient = isinstance(exc, InsufficientBalance)
            refused = self._refuse(company_id, d.c.package_id.in_(list(prices)),
                                   literal("insufficient_balance" if insufficient else "failed"),
                                   literal(str(exc)[:255]), after=after, limit=BATCH_DEVICES)
            line = self._refusal_line(len(refused), exc, [row[0] for row in refused])
            if insufficient:
                outcome.insufficient.append(line)
                self.totals["insufficient"] += len(refused)
            else:
                outcome.failed.append(line)
                self.totals["failed"] += len(refused)
            self._batch_done()
            return len(refused), after
        outcome.renewed += count
        outcome.orders.append(f"{number} ({format_money(total, currency)})")
        self.orders.append(number)
        if self.order_ids is not None:
            self.order_ids.append(order_id)
        self.totals["renewed"] += count
        self._batch_done()
        return count, tuple(last)


_LINE_COLUMNS = ("order_id", "device_id", "package_id", "description", "description_data", "months", "quantity",
                 "unit_price_minor", "gross_minor", "discount_minor", "net_minor", "refunded_minor",
                 "old_expires_on", "new_expires_on", "auto_renew_from")


def auto_renew(session: Session, today: date, months: int | None = None,
               commit: Callable[[], None] | None = None) -> AutoRenewSummary:
    """Renew the due devices of every company whose effective config has auto-renew on, from the balance.

    `commit`, when given, is called after the batch (one order, or a company's refusals) that takes
    the transaction past TRANSACTION_SECONDS: the caller's transaction then spans a few batches, and
    the caller commits the rest and the run's summary at the end.

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
    settings = _SQLiteSettings(session)
    settings.apply()
    try:
        for cycle, group in _by_cycle(companies).items():
            period = billing_period(today, cycle)
            _AutoRenewal(session, today, period, months or CYCLE_MONTHS[cycle], packages, outcomes, totals,
                         orders, settings, commit).run(group)
    finally:
        settings.restore()
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
