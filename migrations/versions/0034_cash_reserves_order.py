"""order: a pending order whose cash sales entered is reserved for it (payment_method = 'cash')

From this revision on, entering a cash receipt (seed 003's OS flow) sets the pending order's payment
method to cash in the same conditional UPDATE that checks it is still pending, and every other way of
paying or cancelling a pending order requires payment_method IS NULL (actions.orders.claim_order): a
payment racing the cash entry loses in the database. Orders whose cash was entered before are reserved
here; no money moves.

Revision ID: 0034_cash_reserves_order
Revises: 0033_username_unique_any_case
"""
from alembic import op

revision = "0034_cash_reserves_order"
down_revision = "0033_username_unique_any_case"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""UPDATE "order" SET payment_method = 'cash'
                  WHERE status = 'pending' AND payment_method IS NULL
                    AND id IN (SELECT order_id FROM cash_receipt WHERE status = 'submitted')""")


def downgrade():
    op.execute("""UPDATE "order" SET payment_method = NULL
                  WHERE status = 'pending' AND payment_method = 'cash'""")
