"""a company's time zone: the zone its users see times in ("" = by language)

Revision ID: 0013_time_zone
Revises: 0010_list_speed
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_time_zone"
down_revision = '0012_payment_providers'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN (no table rebuild), so nothing else on the company table is touched.
    op.add_column("company", sa.Column("time_zone", sa.String(length=64), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("company") as batch_op:
        batch_op.drop_column("time_zone")
