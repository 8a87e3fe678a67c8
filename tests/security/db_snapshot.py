"""What "nothing changed" means in the hostile-input tests: every row of every table, read fresh."""
from __future__ import annotations

import sqlalchemy as sa

from models import db


def snapshot() -> dict[str, list[tuple]]:
    """Every table's rows, sorted, read on a new connection (it sees what other apps committed).

    The test worlds hold a few dozen rows, so the whole database is a cheap snapshot; comparing
    row counts alone would miss an update (a status flipped, a balance moved).
    """
    with db.engine.connect() as conn:
        return {table.name: sorted((tuple(row) for row in conn.execute(sa.select(table))), key=repr)
                for table in db.metadata.sorted_tables}


def changed_tables(before: dict[str, list[tuple]], after: dict[str, list[tuple]] | None = None) -> list[str]:
    """The tables whose rows differ between two snapshots (after defaults to now)."""
    after = snapshot() if after is None else after
    return sorted(name for name in before if before[name] != after.get(name))


def row_count(table: str) -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(db.metadata.tables[table])).scalar_one()
