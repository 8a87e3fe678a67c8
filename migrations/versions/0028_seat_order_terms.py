"""order_line.seat_state: seat terms (seed 004 §6, 订单到期时间 / 是否可用)

A seat package priced per term sells seats that last its term: the paid order's line keeps the
term (months) and the expiry (new_expires_on, the paid day + the term), and seat_state says whether
its seats still count in the company's quota: "active" from payment, "expired" once the daily
expiry job took them back, "returned" once a refund did.

Seat orders paid before this revision keep their seats (no term): their lines become "active", or
"returned" when the order was refunded.

Revision ID: 0028_seat_order_terms
Revises: 0027_commission_rule_set_by
"""
import sqlalchemy as sa
from alembic import op

revision = "0028_seat_order_terms"
down_revision = "0027_commission_rule_set_by"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seat_state", sa.String(length=10), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_order_line_seat_state"),
            "seat_state IS NULL OR seat_state IN ('active', 'expired', 'returned')")
    # Partial: only the seats still counted, so the many other order lines (renewals) write no entry.
    op.create_index("ix_order_line_seat_expires", "order_line", ["new_expires_on"], unique=False,
                    sqlite_where=sa.text("seat_state = 'active'"), postgresql_where=sa.text("seat_state = 'active'"))
    for status, state in (("paid", "active"), ("refunded", "returned")):
        op.execute(
            "UPDATE order_line SET seat_state = '" + state + "' WHERE edition IS NOT NULL AND order_id IN "
            "(SELECT id FROM \"order\" WHERE kind = 'seats' AND status = '" + status + "')")


def downgrade():
    op.drop_index("ix_order_line_seat_expires", table_name="order_line")
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_order_line_seat_state"), type_="check")
        batch_op.drop_column("seat_state")
