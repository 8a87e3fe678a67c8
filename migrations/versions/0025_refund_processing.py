"""order_refund: "processing" (the provider accepted it, not paid out yet) and "not_paid_out" (it gave up)

WeChat Pay answers most refunds PROCESSING and PayPal some PENDING: the money is not with the payer
yet, and may never be (WeChat Pay's ABNORMAL, a closed card). Such a refund is now "processing" until
the provider says where the money went: "completed", or "not_paid_out", which finance pays back by
hand and then marks completed.

Revision ID: 0025_refund_processing
Revises: 0024_subscription_list_indexes
"""
from alembic import op

revision = "0025_refund_processing"
down_revision = "0024_subscription_list_indexes"
branch_labels = None
depends_on = None

OLD_STATUSES = ("requested", "approved", "completed", "rejected", "failed")
NEW_STATUSES = ("requested", "approved", "processing", "completed", "not_paid_out", "rejected", "failed")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _statuses(values):
    with op.batch_alter_table("order_refund", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_order_refund_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_order_refund_status"), _in("status", values))


def upgrade():
    _statuses(NEW_STATUSES)


def downgrade():
    # The older code knows no refund on its way: it read "completed" (money it had asked the provider for).
    op.execute("UPDATE order_refund SET status = 'completed' WHERE status IN ('processing', 'not_paid_out')")
    _statuses(OLD_STATUSES)
