"""lists at 200k rows: device substring search, order list index

SQLite: an FTS5 trigram index of device numbers and names (external content: the device table
itself, kept by triggers). PostgreSQL: pg_trgm GIN indexes on the same columns. Neither is in
the models (autogenerate skips them, see models.include_in_autogenerate).

Careful on SQLite: a batch migration that recreates the device table drops these triggers;
such a migration must run `create_device_search` again afterwards.

Revision ID: 0010_list_speed
Revises: 0005
"""
from alembic import op

revision = "0010_list_speed"
down_revision = "0008_hardening"
branch_labels = None
depends_on = None

SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE device_fts USING fts5(number, name, content='device', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER device_fts_insert AFTER INSERT ON device BEGIN "
    "INSERT INTO device_fts (rowid, number, name) VALUES (new.id, new.number, new.name); END",
    "CREATE TRIGGER device_fts_delete AFTER DELETE ON device BEGIN "
    "INSERT INTO device_fts (device_fts, rowid, number, name) VALUES ('delete', old.id, old.number, old.name); END",
    "CREATE TRIGGER device_fts_update AFTER UPDATE OF number, name ON device BEGIN "
    "INSERT INTO device_fts (device_fts, rowid, number, name) VALUES ('delete', old.id, old.number, old.name); "
    "INSERT INTO device_fts (rowid, number, name) VALUES (new.id, new.number, new.name); END",
    "INSERT INTO device_fts (device_fts) VALUES ('rebuild')",
)
POSTGRESQL_SEARCH = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_device_number_trgm ON device USING gin (number gin_trgm_ops)",
    "CREATE INDEX ix_device_name_trgm ON device USING gin (name gin_trgm_ops)",
)


def create_device_search():
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_SEARCH if dialect == "sqlite" else POSTGRESQL_SEARCH if dialect == "postgresql" else ():
        op.execute(statement)


def upgrade():
    op.create_index("ix_order_created_id", "order", ["created_at", "id"], unique=False)
    create_device_search()


def downgrade():
    op.drop_index("ix_order_created_id", table_name="order")
    if op.get_bind().dialect.name == "sqlite":
        for name in ("device_fts_insert", "device_fts_delete", "device_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS device_fts")
    elif op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_device_number_trgm")
        op.execute("DROP INDEX IF EXISTS ix_device_name_trgm")
