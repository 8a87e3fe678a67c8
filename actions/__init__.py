"""Business operations as plain functions (DESIGN.md section 4).

Each takes the SQLAlchemy session, the acting user and the rows, checks the actor's role
and each row's scope again, does the work, writes the audit event and flushes. The
caller (a view or a CLI command) commits once.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from errors import DomainError, NotAllowed  # the refusals every action raises (re-exported)

if TYPE_CHECKING:
    from models import User


@dataclass(frozen=True)
class ActionResult:
    """What an operation changed, and what it refused and why (by row label)."""

    changed: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.refused


def require_role(actor: User, roles: Collection[str]) -> None:
    """Raise NotAllowed unless the actor is active and holds one of `roles` (admin always may)."""
    if not actor.active or (actor.role != "admin" and actor.role not in roles):
        raise NotAllowed(_l("Your role may not do this."))


def in_scope(actor: User, company_id: int | None, session: Session) -> bool:
    """True when `company_id` is inside the actor's company tree (staff see every company)."""
    if actor.is_staff:
        return True
    if company_id is None or actor.company is None:
        return False
    return company_id in scope_company_ids(session, actor)


def scope_company_ids(session: Session, actor: User) -> set[int]:
    """The ids of the companies a customer administrator may touch."""
    return set(session.scalars(actor.company.subtree_ids()))


def scope_filter(actor: User, company_column):
    """A WHERE clause keeping rows whose `company_column` is in the actor's tree, or None for staff."""
    if actor.is_staff:
        return None
    return company_column.in_(actor.company.subtree_ids())


def scoped(query, actor: User, company_column):
    """`query` narrowed to the actor's company tree (works for select() and legacy Query)."""
    clause = scope_filter(actor, company_column)
    if clause is None:
        return query
    return query.where(clause) if hasattr(query, "where") else query.filter(clause)


def companies_in_scope(session: Session, actor: User):
    """The companies the actor may pick from, by path (tree order)."""
    from models import Company

    return session.scalars(scoped(select(Company), actor, Company.id).order_by(Company.path))


def labels(rows: Iterable) -> tuple[str, ...]:
    return tuple(str(r) for r in rows)


def each_in_savepoint(session: Session, rows: Sequence, operation, label=str) -> ActionResult:
    """Apply `operation` to each row in its own savepoint: a refusal undoes only that row."""
    changed: list[str] = []
    refused: list[tuple[str, str]] = []
    for row in rows:
        name = label(row)
        try:
            with session.begin_nested():
                operation(row)
        except NotAllowed:
            raise
        except DomainError as exc:
            refused.append((name, str(exc)))
        else:
            changed.append(name)
    return ActionResult(tuple(changed), tuple(refused))
