"""payment_attempt.qr_text, qr_given_at: the QR code a provider gave for a payment, kept to be shown again

Opening a payment is a POST; a GET of the pay page (a reload, the payer's "I have paid" before the provider
confirms) shows the QR code of the payment still open instead of asking the provider for another one, so the
code the provider gave and when it gave it are kept with the attempt (NULL: a redirect to the provider's page,
or an attempt from before this column).

Revision ID: 0030_payment_attempt_qr
Revises: 0029_employee_permissions
"""
import sqlalchemy as sa
from alembic import op

import models

revision = "0030_payment_attempt_qr"
down_revision = "0029_employee_permissions"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payment_attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("qr_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("qr_given_at", models.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("payment_attempt", schema=None) as batch_op:
        batch_op.drop_column("qr_given_at")
        batch_op.drop_column("qr_text")
