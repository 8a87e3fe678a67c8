"""real payment providers: payment attempts, VNPT Pay as a payment method

`payment_attempt` keeps what was opened at a provider for an order (PayPal's order id; the order
number for WeChat Pay, Alipay and VNPT Pay), so the payer's return and `billing
reconcile-payments` know whom to ask. The order's payment-method CHECK gains `vnptpay`.

Revision ID: 0012_payment_providers
Revises: 0010_list_speed
"""
from alembic import op
import sqlalchemy as sa

import models

revision = "0012_payment_providers"
down_revision = '0012_cards'
branch_labels = None
depends_on = None

OLD_METHODS = "payment_method IS NULL OR payment_method IN ('balance', 'wechat', 'alipay', 'paypal', 'bank_transfer', 'cash')"
NEW_METHODS = ("payment_method IS NULL OR payment_method IN ('balance', 'wechat', 'alipay', 'paypal', 'vnptpay', "
               "'bank_transfer', 'cash')")
ATTEMPT_METHODS = "method IN ('balance', 'wechat', 'alipay', 'paypal', 'vnptpay', 'bank_transfer', 'cash')"


def upgrade():
    op.create_table(
        "payment_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("created_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(ATTEMPT_METHODS, name=op.f("ck_payment_attempt_method")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_payment_attempt_order_id_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempt")),
        sa.UniqueConstraint("method", "reference", name=op.f("uq_payment_attempt_method_reference")),
    )
    with op.batch_alter_table("payment_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_attempt_order_id"), ["order_id"], unique=False)
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_order_payment_method"), type_="check")
        batch_op.create_check_constraint("payment_method", NEW_METHODS)


def downgrade():
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_order_payment_method"), type_="check")
        batch_op.create_check_constraint("payment_method", OLD_METHODS)
    with op.batch_alter_table("payment_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_attempt_order_id"))
    op.drop_table("payment_attempt")
