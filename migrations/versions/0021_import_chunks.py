"""expiry import: a chunked, resumable commit ("committing", rows applied, the last chunk's time)

The commit of an expiry import applies its changes a chunk at a time, each chunk its own short
transaction: while it runs, or once it was interrupted, the import is "committing" with
`rows_applied` devices set and `progress_at` the time of its last chunk.

Revision ID: 0021_import_chunks
Revises: 0020_list_indexes
"""
import sqlalchemy as sa
from alembic import op

import models

revision = "0021_import_chunks"
down_revision = "0020_list_indexes"
branch_labels = None
depends_on = None

OLD_STATUSES = ("previewed", "committed", "failed")
NEW_STATUSES = ("previewed", "committing", "committed", "failed")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    with op.batch_alter_table("expiry_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rows_applied", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("progress_at", models.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f("ck_expiry_import_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_expiry_import_status"), _in("status", NEW_STATUSES))


def downgrade():
    # An import left half-applied cannot be resumed by the older code: it failed.
    op.execute("UPDATE expiry_import SET status = 'failed' WHERE status = 'committing'")
    with op.batch_alter_table("expiry_import", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_expiry_import_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_expiry_import_status"), _in("status", OLD_STATUSES))
        batch_op.drop_column("progress_at")
        batch_op.drop_column("rows_applied")
