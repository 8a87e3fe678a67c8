"""lists: the indexes of the status filters (device list sorted by expiry, a distributor's cards)

device: the status index carries the id after the expiry. A list filtered by status and sorted by
expiry orders by (expires_on, id): with the id right after the expiry the index gives that order,
and a customer's scope is checked from the same entry.

sim_card: the stock index leads with (holder, status): a distributor's cards filtered by status are
one range of it (stock look-ups by holder, status and plan use it as before). A second index,
(holder, valid_until), answers the list's "valid until" filter in one range per holder.

Revision ID: 0020_list_indexes
Revises: 0017_finish
"""
from alembic import op

revision = "0020_list_indexes"
down_revision = "0017_finish"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_device_status_expires", table_name="device")
    op.create_index("ix_device_status_expires", "device", ["status", "expires_on", "id", "company_id"])
    op.drop_index("ix_sim_card_stock", table_name="sim_card")
    op.create_index("ix_sim_card_stock", "sim_card", ["holder_key", "status", "package_id", "valid_until"])
    op.create_index("ix_sim_card_holder_valid", "sim_card", ["holder_key", "valid_until"])


def downgrade():
    op.drop_index("ix_sim_card_holder_valid", table_name="sim_card")
    op.drop_index("ix_sim_card_stock", table_name="sim_card")
    op.create_index("ix_sim_card_stock", "sim_card", ["holder_key", "package_id", "status", "valid_until"])
    op.drop_index("ix_device_status_expires", table_name="device")
    op.create_index("ix_device_status_expires", "device", ["status", "expires_on", "company_id"])
