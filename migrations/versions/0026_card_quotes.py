"""card_quote and card_quote_line (销售报价, seed 002); card_order.quote_line_id, unique: a quote line is
converted into one card order, once

Revision ID: 0026_card_quotes
Revises: 0025_refund_processing
"""
import sqlalchemy as sa
from alembic import op

import models

revision = "0026_card_quotes"
down_revision = "0025_refund_processing"
branch_labels = None
depends_on = None


STATUSES = ("draft", "sent", "accepted", "declined", "expired", "cancelled")
CURRENCIES = ("CNY", "USD", "VND", "COIN")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    op.create_table(
        "card_quote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("seller_company_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("customer_name", sa.String(length=200), nullable=False),
        sa.Column("customer_phone", sa.String(length=40), nullable=False),
        sa.Column("customer_address", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.String(length=4), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_in("currency", CURRENCIES), name=op.f("ck_card_quote_currency")),
        sa.CheckConstraint(_in("status", STATUSES), name=op.f("ck_card_quote_status")),
        sa.CheckConstraint("total_minor >= 0", name=op.f("ck_card_quote_total_not_negative")),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_card_quote_created_by_id_user")),
        sa.ForeignKeyConstraint(["customer_id"], ["card_customer.id"],
                                name=op.f("fk_card_quote_customer_id_card_customer")),
        sa.ForeignKeyConstraint(["seller_company_id"], ["company.id"],
                                name=op.f("fk_card_quote_seller_company_id_company")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_quote")),
        sa.UniqueConstraint("number", name=op.f("uq_card_quote_number")),
    )
    with op.batch_alter_table("card_quote", schema=None) as batch_op:
        batch_op.create_index("ix_card_quote_created_id", ["created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_card_quote_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_card_quote_seller_status", ["seller_company_id", "status"], unique=False)

    op.create_table(
        "card_quote_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quote_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_bp", sa.Integer(), nullable=False),
        sa.Column("gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("discount_bp >= 0 AND discount_bp < 10000",
                           name=op.f("ck_card_quote_line_discount_in_range")),
        sa.CheckConstraint("net_minor = gross_minor - discount_minor AND net_minor >= 0",
                           name=op.f("ck_card_quote_line_net_is_gross_less_discount")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_card_quote_line_quantity_positive")),
        sa.CheckConstraint("unit_price_minor >= 0 AND gross_minor >= 0 AND discount_minor >= 0",
                           name=op.f("ck_card_quote_line_amounts_not_negative")),
        sa.ForeignKeyConstraint(["package_id"], ["package.id"], name=op.f("fk_card_quote_line_package_id_package")),
        sa.ForeignKeyConstraint(["quote_id"], ["card_quote.id"], name=op.f("fk_card_quote_line_quote_id_card_quote"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_quote_line")),
    )
    with op.batch_alter_table("card_quote_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_quote_line_quote_id"), ["quote_id"], unique=False)

    # The order a quote line was converted into: unique, so two accepts at once cannot convert it twice.
    with op.batch_alter_table("card_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quote_line_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_card_order_quote_line_id"), ["quote_line_id"])
        batch_op.create_foreign_key(batch_op.f("fk_card_order_quote_line_id_card_quote_line"), "card_quote_line",
                                    ["quote_line_id"], ["id"])


def downgrade():
    with op.batch_alter_table("card_order", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_card_order_quote_line_id_card_quote_line"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_card_order_quote_line_id"), type_="unique")
        batch_op.drop_column("quote_line_id")
    with op.batch_alter_table("card_quote_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_quote_line_quote_id"))
    op.drop_table("card_quote_line")
    with op.batch_alter_table("card_quote", schema=None) as batch_op:
        batch_op.drop_index("ix_card_quote_seller_status")
        batch_op.drop_index(batch_op.f("ix_card_quote_customer_id"))
        batch_op.drop_index("ix_card_quote_created_id")
    op.drop_table("card_quote")
