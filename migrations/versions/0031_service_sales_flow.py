"""service.sales_flow: ON (paid online or from the balance) or OS (the customer may pay cash)

Seed 003 sells a service in one of two flows. ON: the customer pays online (VNPT Pay) or from the balance.
OS: the customer may also pay cash, which sales enters and finance confirms. Every existing service keeps
what it offered until now (online and balance; cash only through sales): ON.

Revision ID: 0031_service_sales_flow
Revises: 0030_payment_attempt_qr
"""
import sqlalchemy as sa
from alembic import op

revision = "0031_service_sales_flow"
down_revision = "0030_payment_attempt_qr"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sales_flow", sa.String(length=2), server_default="ON", nullable=False))
        batch_op.create_check_constraint(op.f("ck_service_sales_flow"), "sales_flow IN ('ON', 'OS')")


def downgrade():
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_service_sales_flow"), type_="check")
        batch_op.drop_column("sales_flow")
