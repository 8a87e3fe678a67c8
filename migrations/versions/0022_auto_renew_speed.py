"""auto-renewal: the order line is the renewed device's claim

order_line.auto_renew_from: on an auto-renewal line, the expiry the run renewed the device from
(its old_expires_on); NULL on every other line. Unique with the device: a device is renewed by
auto-renewal at most once from one expiry, however many runs race (the claim that used to be an
auto_renew_attempt row per renewed device; auto_renew_attempt now records only the refusals).
The unique index leads with device_id and replaces ix_order_line_device_id.

Revision ID: 0022_auto_renew_speed
Revises: 0021_import_chunks
"""
import sqlalchemy as sa
from alembic import op

revision = "0022_auto_renew_speed"
down_revision = "0021_import_chunks"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("order_line", sa.Column("auto_renew_from", sa.Date(), nullable=True))
    op.create_index("uq_order_line_device_auto_renew", "order_line", ["device_id", "auto_renew_from"], unique=True)
    op.drop_index("ix_order_line_device_id", table_name="order_line")


def downgrade():
    op.create_index("ix_order_line_device_id", "order_line", ["device_id"])
    op.drop_index("uq_order_line_device_auto_renew", table_name="order_line")
    with op.batch_alter_table("order_line") as batch_op:
        batch_op.drop_column("auto_renew_from")
