"""orders: the note as a stored message (auto-renewal's "period 2026-12" in the reader's language)

Revision ID: 0017_finish
Revises: 0014_phone_login
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_finish"
down_revision = "0014_phone_login"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("order", sa.Column("note_data", sa.JSON(), nullable=True))  # a plain ADD COLUMN: no rebuild


def downgrade():
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.drop_column("note_data")
