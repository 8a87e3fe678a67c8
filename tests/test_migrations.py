"""The migrations build exactly the models: autogenerate finds nothing to do."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import db, include_in_autogenerate


# SQLite's reflection skips an index on an expression (user's lower(username)), and autogenerate then skips
# the model's: each says so; PostgreSQL compares it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_match_the_models(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "include_object": include_in_autogenerate})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"run `flask --app app db migrate`: the models differ from the migrations: {diff}"


def test_sqlite_has_foreign_keys_and_wal(app):
    if db.engine.dialect.name != "sqlite":
        return
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def _normalized(text: str) -> str:
    return " ".join(str(text).replace('"', "").replace("::text", "").replace("(", " ").replace(")", " ").split())


def test_check_constraints_match_the_models(app):
    """Autogenerate does not compare CHECK constraints: a changed choice list needs a hand-written step."""
    from sqlalchemy import CheckConstraint, inspect

    inspector = inspect(db.engine)
    for table in db.metadata.sorted_tables:
        wanted = {c.name: _normalized(c.sqltext) for c in table.constraints
                  if isinstance(c, CheckConstraint) and c.name}
        found = {c["name"]: _normalized(c["sqltext"]) for c in inspector.get_check_constraints(table.name)}
        for name, text in wanted.items():
            assert name in found, f"{table.name}: CHECK {name} missing from the migrated database"
            if db.engine.dialect.name == "sqlite":
                assert found[name] == text, f"{table.name}: CHECK {name} differs: {found[name]!r} != {text!r}"
            else:  # PostgreSQL rewrites IN (...) as = ANY (ARRAY[...]): compare the quoted values
                import re

                assert sorted(re.findall(r"'[^']*'", found[name])) == sorted(re.findall(r"'[^']*'", text)), \
                    f"{table.name}: CHECK {name} differs: {found[name]!r} != {text!r}"
