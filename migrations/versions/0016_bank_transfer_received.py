"""bank transfers: the amount received and the "credited" outcome; the device-type list; stored texts
as message keys with parameters (order lines, ledger memos, audit and subscription-event summaries)

Revision ID: 0016_bank_transfer_received
Revises: 0015_value_added
"""
import sqlalchemy as sa
from alembic import op

import models

revision = "0016_bank_transfer_received"
down_revision = "0015_value_added"
branch_labels = None
depends_on = None

OLD_RECEIPT_STATUSES = ("submitted", "confirmed", "rejected")
NEW_RECEIPT_STATUSES = ("submitted", "confirmed", "credited", "rejected")
OLD_LEDGER_KINDS = ("recharge", "coin_purchase", "offline_recharge", "payment", "refund", "commission", "withdrawal",
                    "withdrawal_release")
NEW_LEDGER_KINDS = ("recharge", "coin_purchase", "offline_recharge", "payment", "refund", "bank_transfer",
                    "commission", "withdrawal", "withdrawal_release")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_check(table, name, sqltext):
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
        batch_op.create_check_constraint(op.f(f"ck_{table}_{name}"), sqltext)


def upgrade():
    with op.batch_alter_table("bank_transfer_receipt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("received_minor", sa.BigInteger(), nullable=True))
        batch_op.drop_constraint(op.f("ck_bank_transfer_receipt_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_bank_transfer_receipt_status"), _in("status", NEW_RECEIPT_STATUSES))
        batch_op.create_check_constraint(op.f("ck_bank_transfer_receipt_received_positive"),
                                         "received_minor IS NULL OR received_minor > 0")
    # Receipts confirmed before: what arrived was the amount on them (confirming required it).
    op.execute("UPDATE bank_transfer_receipt SET received_minor = amount_minor WHERE status = 'confirmed'")

    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("memo_data", sa.JSON(), nullable=True))
    _replace_check("ledger_entry", "kind", _in("kind", NEW_LEDGER_KINDS))
    # Plain ADD COLUMNs: no table rebuild for the large tables.
    op.add_column("audit_event", sa.Column("summary_data", sa.JSON(), nullable=True))
    op.add_column("order_line", sa.Column("description_data", sa.JSON(), nullable=True))
    op.add_column("subscription_event", sa.Column("summary_data", sa.JSON(), nullable=True))

    device_type = op.create_table(
        "device_type",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("created_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_type")),
        sa.UniqueConstraint("name", name=op.f("uq_device_type_name")),
    )
    # The list starts from the types devices already have, so every existing value is on it.
    from datetime import datetime, timezone

    names = [row[0] for row in op.get_bind().execute(
        sa.text("SELECT DISTINCT device_type FROM device WHERE device_type <> '' ORDER BY device_type"))]
    now = datetime.now(timezone.utc)
    if names:
        op.bulk_insert(device_type, [{"name": name[:40], "active": True, "sort_order": i, "created_at": now}
                                     for i, name in enumerate(names)])


def downgrade():
    op.drop_table("device_type")
    for table, column in (("subscription_event", "summary_data"), ("order_line", "description_data"),
                          ("audit_event", "summary_data")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
    op.execute("UPDATE ledger_entry SET kind = 'recharge' WHERE kind = 'bank_transfer'")  # balances stay whole
    _replace_check("ledger_entry", "kind", _in("kind", OLD_LEDGER_KINDS))
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_column("memo_data")
    op.execute("UPDATE bank_transfer_receipt SET status = 'confirmed' WHERE status = 'credited'")
    with op.batch_alter_table("bank_transfer_receipt", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_bank_transfer_receipt_received_positive"), type_="check")
        batch_op.drop_constraint(op.f("ck_bank_transfer_receipt_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_bank_transfer_receipt_status"), _in("status", OLD_RECEIPT_STATUSES))
        batch_op.drop_column("received_minor")
