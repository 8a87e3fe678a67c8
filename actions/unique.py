"""Turning a unique index's refusal into the domain error that names the value.

The actions check uniqueness first, for a friendly message; two concurrent requests can both
pass that check, and then the database's unique index refuses the second row. The action
catches that IntegrityError where it flushes and raises the same clear DomainError.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Index
from sqlalchemy.exc import IntegrityError

from actions import DomainError
from models import db


def _index(name: str) -> Index:
    for table in db.metadata.tables.values():
        for index in table.indexes:
            if index.name == name:
                return index
    raise LookupError(name)


def violates(exc: IntegrityError, index_name: str) -> bool:
    """Whether `exc` is the refusal of the unique index `index_name` (PostgreSQL names it; SQLite
    names its columns)."""
    text = str(exc.orig)
    if index_name in text:
        return True
    index = _index(index_name)
    columns = ", ".join(f"{index.table.name}.{column.name}" for column in index.columns)
    return f"UNIQUE constraint failed: {columns}" in text


@contextmanager
def unique_or(index_name: str, error: DomainError) -> Iterator[None]:
    """Run the block (a flush or an UPDATE); if `index_name` refuses it, raise `error` instead.

    The transaction is then unusable until the caller rolls back, which a DomainError makes it do.
    """
    try:
        yield
    except IntegrityError as exc:
        if not violates(exc, index_name):
            raise
        raise error from None
