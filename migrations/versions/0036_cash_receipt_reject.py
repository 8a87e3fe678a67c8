"""cash_receipt: finance may reject a receipt (with a reason); sales may then enter the right one

A receipt sales entered wrongly (the customer had not paid, the wrong amount or day) could be neither
corrected nor entered again: "rejected" was a status nothing set, and the order allowed one receipt ever.
Finance now rejects it with a reason (the order is released for another payment); the one-receipt rule
holds for receipts not rejected (a partial unique index), so sales can enter the right one.

Revision ID: 0036_cash_receipt_reject
Revises: 0035_member_login_any_case
"""
import warnings

import sqlalchemy as sa
from alembic import op

EVENTS = ("created", "paid", "started", "renewal_ordered", "renewed", "past_due", "expired", "abandoned",
          "cancel_scheduled", "cancel_undone", "cancelled", "refunded", "upgrade_ordered", "upgraded",
          "downgrade_scheduled", "downgraded", "seat_assigned", "seat_removed", "note", "settings", "cash_entered",
          "cash_confirmed")

revision = "0036_cash_receipt_reject"
down_revision = "0035_member_login_any_case"
branch_labels = None
depends_on = None


# SQLite's batch mode reflects the tables the recreated ones refer to (user): SQLAlchemy cannot reflect the
# expression index on lower(username) (0033) and warns; that index is not these tables' and stays as it is.
REFLECTION_WARNING = "Skipped unsupported reflection of expression-based index"


def upgrade():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=REFLECTION_WARNING)
        _upgrade()


def _upgrade():
    with op.batch_alter_table("cash_receipt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reject_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.drop_constraint(op.f("uq_cash_receipt_order_id"), type_="unique")
        batch_op.create_check_constraint(op.f("ck_cash_receipt_rejected_with_reason"),
                                         "status <> 'rejected' OR reject_reason <> ''")
        batch_op.create_index(batch_op.f("ix_cash_receipt_order_id"), ["order_id"], unique=False)
    op.create_index("uq_cash_receipt_order_open", "cash_receipt", ["order_id"], unique=True,
                    sqlite_where=sa.text("status <> 'rejected'"), postgresql_where=sa.text("status <> 'rejected'"))
    _events(EVENTS + ("cash_rejected",))


def _events(kinds):
    with op.batch_alter_table("subscription_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_subscription_event_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_subscription_event_kind"),
                                         "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")")


def downgrade():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=REFLECTION_WARNING)
        _downgrade()


def _downgrade():
    op.execute("DELETE FROM subscription_event WHERE kind = 'cash_rejected'")
    _events(EVENTS)
    op.drop_index("uq_cash_receipt_order_open", table_name="cash_receipt")
    op.execute("DELETE FROM cash_receipt WHERE status = 'rejected'")
    with op.batch_alter_table("cash_receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cash_receipt_order_id"))
        batch_op.drop_constraint(op.f("ck_cash_receipt_rejected_with_reason"), type_="check")
        batch_op.create_unique_constraint(op.f("uq_cash_receipt_order_id"), ["order_id"])
        batch_op.drop_column("reject_reason")
