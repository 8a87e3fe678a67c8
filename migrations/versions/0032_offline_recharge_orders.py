"""offline recharges become paid recharge orders: payment method "offline", offline_recharge.order_id

An approved 线下充值 credited the wallet but wrote no order, so the customer's 充值记录 and finance's
订单管理 never showed it. Approval now also writes a paid recharge order (payment method "offline",
paid at the approval) linked to the application (`offline_recharge.order_id`, unique, only on an approved
application) and to its ledger entry. The order's payment-method CHECK gains "offline".

Applications approved before this revision get their order here, as approval writes it today: numbered
`RC<yyyymmdd>-<id>` from the approval day, paid at the approval, one line, the ledger entry of the credit
(`offline_recharge:<id>`) linked to it. No money moves: the credit is already in the ledger.

Revision ID: 0032_offline_recharge_orders
Revises: 0031_service_sales_flow
"""
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0032_offline_recharge_orders"
down_revision = "0031_service_sales_flow"
branch_labels = None
depends_on = None

OLD_METHODS = ("balance", "wechat", "alipay", "paypal", "vnptpay", "bank_transfer", "cash")
NEW_METHODS = OLD_METHODS + ("offline",)
EXPONENT = {"CNY": 2, "USD": 2, "VND": 0, "COIN": 0}


def _methods(values):
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_order_payment_method"), type_="check")
        batch_op.create_check_constraint(
            "payment_method", f"payment_method IS NULL OR payment_method IN ({', '.join(repr(v) for v in values)})")


def _amount(minor, currency):
    """The amount as actions.texts.money_param stores it ("1000.00")."""
    exponent = EXPONENT.get(currency, 2)
    return str((Decimal(minor) / (10 ** exponent)).quantize(Decimal(1).scaleb(-exponent)))


def _aware(value):
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _backfill(conn):
    """An order for each application approved before this revision (same shape as approval writes)."""
    meta = sa.MetaData()
    recharge = sa.Table("offline_recharge", meta, autoload_with=conn)
    order = sa.Table("order", meta, autoload_with=conn)
    line = sa.Table("order_line", meta, autoload_with=conn)
    ledger = sa.Table("ledger_entry", meta, autoload_with=conn)
    approved = conn.execute(
        sa.select(recharge.c.id, recharge.c.company_id, recharge.c.currency, recharge.c.amount_minor,
                  recharge.c.payer, recharge.c.reference, recharge.c.reviewed_by_id, recharge.c.reviewed_at,
                  recharge.c.created_at)
        .where(recharge.c.status == "approved", recharge.c.order_id.is_(None)).order_by(recharge.c.id)
    ).all()
    for row in approved:
        paid_at = _aware(row.reviewed_at or row.created_at)
        amount = _amount(row.amount_minor, row.currency)
        params = {"id": row.id, "payer": row.payer}
        if row.reference:
            params["reference"] = row.reference
        key = "ledger.offline_recharge_ref" if row.reference else "ledger.offline_recharge"
        english = (f"Offline recharge #{row.id} from {row.payer}, reference {row.reference}" if row.reference
                   else f"Offline recharge #{row.id} from {row.payer}")
        order_id = conn.execute(order.insert().values(
            number=f"tmp-{uuid.uuid4().hex[:24]}", kind="recharge", status="paid", company_id=row.company_id,
            currency=row.currency, total_minor=row.amount_minor, refunded_minor=0, payment_method="offline",
            invoice_status="none", created_by_id=row.reviewed_by_id, created_at=paid_at, paid_at=paid_at,
            note=english[:255], note_data={"key": key, "params": params},
        ).returning(order.c.id)).scalar_one()
        conn.execute(order.update().where(order.c.id == order_id)
                     .values(number=f"RC{paid_at:%Y%m%d}-{order_id:06d}"))
        conn.execute(line.insert().values(
            order_id=order_id, description=f"Recharge {amount} {row.currency}"[:255],
            description_data={"key": "order.line.recharge",
                              "params": {"amount": {"money": amount, "currency": row.currency}}},
            quantity=1, unit_price_minor=row.amount_minor, gross_minor=row.amount_minor, discount_minor=0,
            net_minor=row.amount_minor, refunded_minor=0,
        ))
        conn.execute(recharge.update().where(recharge.c.id == row.id).values(order_id=order_id))
        conn.execute(ledger.update().where(ledger.c.idempotency_key == f"offline_recharge:{row.id}",
                                           ledger.c.order_id.is_(None)).values(order_id=order_id))


def upgrade():
    _methods(NEW_METHODS)
    with op.batch_alter_table("offline_recharge", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_offline_recharge_order_id_order"), "order", ["order_id"], ["id"])
        batch_op.create_unique_constraint(batch_op.f("uq_offline_recharge_order_id"), ["order_id"])
        batch_op.create_check_constraint(op.f("ck_offline_recharge_order_only_when_approved"),
                                         "order_id IS NULL OR status = 'approved'")
    _backfill(op.get_bind())


def downgrade():
    # The orders stay (paid recharges, their ledger entries point at them); only the method goes back to
    # what the older code knows: a transfer finance confirmed.
    with op.batch_alter_table("offline_recharge", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_offline_recharge_order_only_when_approved"), type_="check")
        batch_op.drop_constraint(batch_op.f("uq_offline_recharge_order_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_offline_recharge_order_id_order"), type_="foreignkey")
        batch_op.drop_column("order_id")
    op.execute("UPDATE \"order\" SET payment_method = 'bank_transfer' WHERE payment_method = 'offline'")
    _methods(OLD_METHODS)
