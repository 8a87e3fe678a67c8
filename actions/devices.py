"""Devices: suspend and enable (one, selected, or thousands of pasted numbers), expiry edits."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, column, func, literal_column, or_, select, table, update
from sqlalchemy.orm import Session

from actions import ActionResult, DomainError, require_role, scope_company_ids
from actions.audit import record
from actions.dates import check_expiry_window
from actions.texts import change, changes_param, message
from models import Device, User

DEVICE_ROLES = {"tech_support", "customer_admin"}
TARGET_STATUS = {"suspend": "suspended", "enable": "active"}
IDS_PER_QUERY = 900  # stays under SQLite's bound-parameter limit


SEARCH_MAX = 64  # characters of a search term that count
_TRIGRAM = 3  # shorter terms have no trigram to look up: they fall back to LIKE
_FEW = 500  # matches looked up once, by id (see search_clause)
_WINDOW = 4  # characters of a long ASCII term looked up in SQLite's trigram index (see search_clause)


def search_clause(session: Session, text: str):
    """Devices whose number or name contains `text`, in any case; None for an empty term.

    Three characters or more go through the trigram index of the database: SQLite's FTS5
    table device_fts, PostgreSQL's pg_trgm GIN indexes (ILIKE uses them). Shorter terms fall
    back to LIKE, which reads the table (it stops early when the list's order has an index).

    On SQLite a phrase costs every one of its trigrams' row lists, and in numbers such as
    GT00001001 most trigrams ("gt0", "000") are in nearly every row: a whole number took 9 ms
    at 200k devices. A long ASCII term is therefore looked up by its last four characters (two
    trigrams, where numbers and names differ most) and the few rows found are checked against
    the whole term with LIKE (ASCII case folding is all LIKE knows, hence ASCII only).
    This runs one query: the ids of the matching devices, when they are few.
    """
    term = (text or "").strip()[:SEARCH_MAX]
    if not term:
        return None
    pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    contains = or_(Device.number.ilike(pattern, escape="\\"), Device.name.ilike(pattern, escape="\\"))
    if len(term) < _TRIGRAM:
        return contains
    clause = contains
    if session.get_bind().dialect.name == "sqlite":
        looked_up = term[-_WINDOW:] if term.isascii() else term
        fts = table("device_fts", column("rowid"))
        phrase = '"' + looked_up.replace('"', '""') + '"'
        clause = Device.id.in_(select(fts.c.rowid).where(
            literal_column("device_fts").op("MATCH")(bindparam("device_search", phrase))))
        if looked_up != term:
            clause = and_(clause, contains)
    # A list runs its search twice (the page and its count): a term that matches few devices is
    # looked up once, and both queries take those ids. A broad one stays a condition, which the
    # list's ordered index scan can stop early on.
    found = session.scalars(select(Device.id).where(clause).limit(_FEW + 1)).all()
    return Device.id.in_(found) if len(found) <= _FEW else clause


def parse_numbers(text: str) -> list[str]:
    """Device numbers pasted one per line or separated by commas, semicolons or spaces."""
    return [n for n in re.split(r"[\s,;，；]+", text or "") if n]


@dataclass
class StatusPlan:
    """What a status change would do: the device ids to change and each refusal by number."""

    operation: str
    ids: list[int] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def plan_status_change(session: Session, actor: User, numbers: Sequence[str], operation: str) -> StatusPlan:
    """Look the numbers up and sort them into "will change" and "refused, because …"."""
    require_role(actor, DEVICE_ROLES)
    target = TARGET_STATUS[operation]
    plan = StatusPlan(operation)
    seen: set[str] = set()
    unique: list[str] = []
    for number in numbers:
        if number in seen:
            plan.refused.append((number, str(_l("listed twice"))))
        else:
            seen.add(number)
            unique.append(number)
    found = _find_numbers(session, unique)
    allowed = None if actor.is_staff else scope_company_ids(session, actor)
    planned: set[int] = set()
    for number in unique:
        row = found.get(number)
        if row is None or (allowed is not None and row[1] not in allowed):
            # Outside the actor's scope reads as unknown: no hint that the number exists.
            plan.refused.append((number, str(_l("unknown device number or not one of your devices"))))
        elif row[0] in planned:  # the same number pasted again in another case
            plan.refused.append((number, str(_l("listed twice"))))
        elif row[2] == target:
            plan.refused.append((number, str(_l("already suspended") if target == "suspended" else _l("already active"))))
        else:
            planned.add(row[0])
            plan.ids.append(row[0])
            plan.numbers.append(number)
    return plan


def _find_numbers(session: Session, numbers: Sequence[str]) -> dict[str, tuple[int, int, str]]:
    """{pasted number: (id, company_id, status)}, matching the stored number in any case.

    Exact matches first (the unique index), then the numbers upper-cased (stored numbers
    usually are), then whatever is left by lower(number): that last pass reads the table once
    per chunk, and only for numbers that matched nothing so far.
    """
    found: dict[str, tuple[int, int, str]] = {}
    fields = (Device.id, Device.company_id, Device.status)

    def look_up(candidates: Sequence[str], key, stored, normalize) -> None:
        for start in range(0, len(candidates), IDS_PER_QUERY):
            chunk = candidates[start:start + IDS_PER_QUERY]
            wanted: dict[str, list[str]] = {}
            for number in chunk:
                wanted.setdefault(normalize(number), []).append(number)
            for match, id_, company_id, status in session.execute(
                select(stored, *fields).where(key.in_(list(wanted)))
            ):
                for number in wanted.get(normalize(match), []):
                    found.setdefault(number, (id_, company_id, status))

    look_up(list(numbers), Device.number, Device.number, lambda n: n)
    missing = [n for n in numbers if n not in found and n.upper() != n]
    look_up(missing, Device.number, Device.number, str.upper)
    missing = [n for n in numbers if n not in found]
    look_up(missing, func.lower(Device.number), Device.number, str.lower)
    return found


def apply_status_change(session: Session, actor: User, plan: StatusPlan, now: datetime) -> ActionResult:
    """Change the planned devices in set-based UPDATEs; rows changed meanwhile are reported."""
    require_role(actor, DEVICE_ROLES)
    target = TARGET_STATUS[plan.operation]
    changed = 0
    for start in range(0, len(plan.ids), IDS_PER_QUERY):
        chunk = plan.ids[start:start + IDS_PER_QUERY]
        result = session.execute(
            update(Device)
            .where(Device.id.in_(chunk), Device.status != target)
            .values(status=target, suspended_at=now if target == "suspended" else None)
            .execution_options(synchronize_session=False)
        )
        changed += result.rowcount
    refused = list(plan.refused)
    if changed != len(plan.ids):
        refused.append(("…", str(_l("%(n)s devices changed state meanwhile and were left alone",
                                    n=len(plan.ids) - changed))))
    record(session, actor, plan.operation, "device", plan.ids, message("audit.devices", count=changed))
    session.flush()
    session.expire_all()
    return ActionResult(tuple(plan.numbers), tuple(refused))


def change_status(session: Session, actor: User, devices: Sequence[Device], operation: str, now: datetime) -> ActionResult:
    """Suspend or enable the given (already scope-checked) devices."""
    plan = plan_status_change(session, actor, [d.number for d in devices], operation)
    return apply_status_change(session, actor, plan, now)


def set_expiry(session: Session, actor: User, device: Device, expires_on: date) -> None:
    """Tech support's expiry maintenance: one device, audited with old and new dates."""
    require_role(actor, {"tech_support"})
    if not isinstance(expires_on, date):
        raise DomainError(_l("Device %(number)s: the expiry date is missing.", number=device.number))
    check_expiry_window(device.number, expires_on)
    old = device.expires_on
    device.expires_on = expires_on
    record(session, actor, "set_expiry", "device", [device.id], message("audit.changes", changes=changes_param(
        [change("expires_on", _l("Expires on"), old, expires_on)])))
    session.flush()
