"""device: the status index carries the id after the expiry (status lists sorted by expiry, ties by id)

A list filtered by status and sorted by expiry orders by (expires_on, id): with the id right after
the expiry the index gives that order, and a customer's scope is checked from the same entry.

Revision ID: 0020_device_status_order
Revises: 0017_finish
"""
from alembic import op

revision = "0020_device_status_order"
down_revision = "0017_finish"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_device_status_expires", table_name="device")
    op.create_index("ix_device_status_expires", "device", ["status", "expires_on", "id", "company_id"])


def downgrade():
    op.drop_index("ix_device_status_expires", table_name="device")
    op.create_index("ix_device_status_expires", "device", ["status", "expires_on", "company_id"])
