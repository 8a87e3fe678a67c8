"""exact money: integer minor units; order lines with gross, discount and net; discounts; refunds

Every money column becomes a BigInteger of minor units (CNY/USD 2 decimals, VND and COIN none),
converted exactly from the old NUMERIC(14, 2) values: ROUND(x × 10^exponent) of the row's
currency (an order line's and a receipt's currency is its order's, a ledger entry's its
wallet's, which the entry now records itself). Refunded orders keep what they gave back in
`refunded_minor`. Downgrade converts back.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

FACTOR = "CASE {currency} WHEN 'COIN' THEN 1 WHEN 'VND' THEN 1 ELSE 100 END"
ORDER_CURRENCY = '(SELECT o.currency FROM "order" o WHERE o.id = {table}.order_id)'
WALLET_CURRENCY = "(SELECT w.currency FROM wallet w WHERE w.id = ledger_entry.wallet_id)"


def _to_minor(table: str, pairs: dict[str, str], currency: str) -> None:
    """Fill each new `<x>_minor` column from its old column, exactly (rounded once, half up)."""
    factor = FACTOR.format(currency=currency)
    sets = ", ".join(f"{new} = CAST(ROUND({old} * {factor}) AS BIGINT)" for new, old in pairs.items())
    op.execute(f'UPDATE "{table}" SET {sets}')


def _add(table: str, *columns: sa.Column) -> None:
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.add_column(column)


def upgrade():
    big = sa.BigInteger()
    _add('package', sa.Column('amount_minor', big, nullable=True))
    _to_minor('package', {'amount_minor': 'amount'}, 'currency')
    with op.batch_alter_table('package') as batch:
        batch.drop_constraint(op.f('ck_package_amount_positive'), type_='check')
        batch.drop_constraint(op.f('ck_package_currency'), type_='check')
        batch.drop_column('amount')
        batch.alter_column('amount_minor', nullable=False)
        batch.create_check_constraint('amount_positive', 'amount_minor > 0')
        batch.create_check_constraint('currency', "currency IN ('CNY', 'USD', 'VND')")

    _add('wallet', sa.Column('balance_minor', big, nullable=True))
    _to_minor('wallet', {'balance_minor': 'balance'}, 'currency')
    with op.batch_alter_table('wallet') as batch:
        batch.drop_constraint(op.f('ck_wallet_balance_not_negative'), type_='check')
        batch.drop_constraint(op.f('ck_wallet_currency'), type_='check')
        batch.drop_column('balance')
        batch.alter_column('balance_minor', nullable=False)
        batch.create_check_constraint('balance_not_negative', 'balance_minor >= 0')
        batch.create_check_constraint('currency', "currency IN ('CNY', 'USD', 'VND', 'COIN')")

    _add('ledger_entry', sa.Column('currency', sa.String(4), nullable=True),
         sa.Column('amount_minor', big, nullable=True), sa.Column('balance_after_minor', big, nullable=True))
    op.execute(f"UPDATE ledger_entry SET currency = {WALLET_CURRENCY}")
    _to_minor('ledger_entry', {'amount_minor': 'amount', 'balance_after_minor': 'balance_after'}, 'currency')
    with op.batch_alter_table('ledger_entry') as batch:
        batch.drop_constraint(op.f('ck_ledger_entry_amount_not_zero'), type_='check')
        batch.drop_constraint(op.f('ck_ledger_entry_balance_after_not_negative'), type_='check')
        batch.drop_column('amount')
        batch.drop_column('balance_after')
        for name in ('currency', 'amount_minor', 'balance_after_minor'):
            batch.alter_column(name, nullable=False)
        batch.create_check_constraint('currency', "currency IN ('CNY', 'USD', 'VND', 'COIN')")
        batch.create_check_constraint('amount_not_zero', 'amount_minor <> 0')
        batch.create_check_constraint('balance_after_not_negative', 'balance_after_minor >= 0')

    _add('order', sa.Column('total_minor', big, nullable=True), sa.Column('refunded_minor', big, nullable=True))
    _to_minor('order', {'total_minor': 'total'}, 'currency')
    op.execute("""UPDATE "order" SET refunded_minor = CASE status WHEN 'refunded' THEN total_minor ELSE 0 END""")
    with op.batch_alter_table('order') as batch:
        batch.drop_constraint(op.f('ck_order_total_positive'), type_='check')
        batch.drop_constraint(op.f('ck_order_currency'), type_='check')
        batch.drop_column('total')
        batch.alter_column('total_minor', nullable=False)
        batch.alter_column('refunded_minor', nullable=False)
        batch.create_check_constraint('currency', "currency IN ('CNY', 'USD', 'VND', 'COIN')")
        batch.create_check_constraint('total_not_negative', 'total_minor >= 0')
        batch.create_check_constraint('refunded_within_total',
                                      'refunded_minor >= 0 AND refunded_minor <= total_minor')

    _add('order_line', sa.Column('unit_price_minor', big, nullable=True), sa.Column('gross_minor', big, nullable=True),
         sa.Column('discount_minor', big, nullable=True), sa.Column('net_minor', big, nullable=True),
         sa.Column('refunded_minor', big, nullable=True),
         sa.Column('member_account_id', sa.Integer(), nullable=True),
         sa.Column('old_level', sa.String(20), nullable=True))
    _to_minor('order_line', {'unit_price_minor': 'unit_price', 'net_minor': 'amount'},
              ORDER_CURRENCY.format(table='order_line'))
    op.execute("UPDATE order_line SET gross_minor = net_minor, discount_minor = 0, refunded_minor = "
               "CASE WHEN (SELECT o.status FROM \"order\" o WHERE o.id = order_line.order_id) = 'refunded' "
               "THEN net_minor ELSE 0 END")
    with op.batch_alter_table('order_line') as batch:
        batch.drop_constraint(op.f('ck_order_line_amount_positive'), type_='check')
        batch.drop_column('unit_price')
        batch.drop_column('amount')
        for name in ('unit_price_minor', 'gross_minor', 'discount_minor', 'net_minor', 'refunded_minor'):
            batch.alter_column(name, nullable=False)
        batch.create_check_constraint('amounts_not_negative', 'gross_minor >= 0 AND discount_minor >= 0')
        batch.create_check_constraint('net_is_gross_less_discount',
                                      'net_minor = gross_minor - discount_minor AND net_minor >= 0')
        batch.create_check_constraint('refunded_within_net', 'refunded_minor >= 0 AND refunded_minor <= net_minor')
        batch.create_foreign_key('fk_order_line_member_account_id_member_account', 'member_account',
                                 ['member_account_id'], ['id'])
        batch.create_index('ix_order_line_member_account_id', ['member_account_id'], unique=False)

    _add('offline_recharge', sa.Column('amount_minor', big, nullable=True))
    _to_minor('offline_recharge', {'amount_minor': 'amount'}, 'currency')
    with op.batch_alter_table('offline_recharge') as batch:
        batch.drop_constraint(op.f('ck_offline_recharge_amount_positive'), type_='check')
        batch.drop_constraint(op.f('ck_offline_recharge_currency'), type_='check')
        batch.drop_column('amount')
        batch.alter_column('amount_minor', nullable=False)
        batch.create_check_constraint('amount_positive', 'amount_minor > 0')
        batch.create_check_constraint('currency', "currency IN ('CNY', 'USD', 'VND')")

    _add('bank_transfer_receipt', sa.Column('amount_minor', big, nullable=True))
    _to_minor('bank_transfer_receipt', {'amount_minor': 'amount'}, ORDER_CURRENCY.format(table='bank_transfer_receipt'))
    with op.batch_alter_table('bank_transfer_receipt') as batch:
        batch.drop_constraint(op.f('ck_bank_transfer_receipt_amount_positive'), type_='check')
        batch.drop_column('amount')
        batch.alter_column('amount_minor', nullable=False)
        batch.create_check_constraint('amount_positive', 'amount_minor > 0')

    _add('invoice_request', sa.Column('total_minor', big, nullable=True))
    _to_minor('invoice_request', {'total_minor': 'total'}, 'currency')
    with op.batch_alter_table('invoice_request') as batch:
        batch.drop_column('total')
        batch.alter_column('total_minor', nullable=False)

    op.create_table('order_discount',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('promotion_ref', sa.String(length=64), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("source IN ('line', 'invoice')", name=op.f('ck_order_discount_source')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_order_discount_amount_positive')),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_order_discount_line_id_order_line')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_order_discount_order_id_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_discount'))
    )
    with op.batch_alter_table('order_discount') as batch:
        batch.create_index(batch.f('ix_order_discount_line_id'), ['line_id'], unique=False)
        batch.create_index(batch.f('ix_order_discount_order_id'), ['order_id'], unique=False)
        batch.create_index(batch.f('ix_order_discount_promotion_ref'), ['promotion_ref'], unique=False)

    op.create_table('order_refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('provider_refund_id', sa.String(length=100), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('requested', 'approved', 'completed', 'rejected', 'failed')",
                       name=op.f('ck_order_refund_status')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_order_refund_amount_positive')),
    sa.CheckConstraint('approved_by_id IS NULL OR approved_by_id <> requested_by_id',
                       name=op.f('ck_order_refund_four_eyes')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['user.id'], name=op.f('fk_order_refund_approved_by_id_user')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_order_refund_order_id_order')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user.id'], name=op.f('fk_order_refund_requested_by_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_refund'))
    )
    with op.batch_alter_table('order_refund') as batch:
        batch.create_index(batch.f('ix_order_refund_order_id'), ['order_id'], unique=False)
        batch.create_index('ix_order_refund_status_created', ['status', 'created_at'], unique=False)

    op.create_table('order_refund_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_order_refund_line_amount_positive')),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_order_refund_line_line_id_order_line')),
    sa.ForeignKeyConstraint(['refund_id'], ['order_refund.id'], name=op.f('fk_order_refund_line_refund_id_order_refund')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_refund_line')),
    sa.UniqueConstraint('refund_id', 'line_id', name=op.f('uq_order_refund_line_refund_id_line_id'))
    )
    with op.batch_alter_table('order_refund_line') as batch:
        batch.create_index(batch.f('ix_order_refund_line_line_id'), ['line_id'], unique=False)
        batch.create_index(batch.f('ix_order_refund_line_refund_id'), ['refund_id'], unique=False)


def _from_minor(table: str, pairs: dict[str, str], currency: str) -> None:
    factor = FACTOR.format(currency=currency)
    sets = ", ".join(f"{old} = CAST({new} AS NUMERIC(14, 2)) / {factor}" for new, old in pairs.items())
    op.execute(f'UPDATE "{table}" SET {sets}')


def downgrade():
    money = sa.Numeric(14, 2)
    op.drop_table('order_refund_line')
    op.drop_table('order_refund')
    op.drop_table('order_discount')
    for table, pairs, currency, checks in (
        ('invoice_request', {'total_minor': 'total'}, 'currency', []),
        ('bank_transfer_receipt', {'amount_minor': 'amount'}, ORDER_CURRENCY.format(table='bank_transfer_receipt'),
         [('amount_positive', 'amount > 0')]),
        ('offline_recharge', {'amount_minor': 'amount'}, 'currency', [('amount_positive', 'amount > 0')]),
        ('order_line', {'unit_price_minor': 'unit_price', 'net_minor': 'amount'},
         ORDER_CURRENCY.format(table='order_line'), [('amount_positive', 'amount > 0')]),
        ('order', {'total_minor': 'total'}, 'currency', [('total_positive', 'total > 0')]),
        ('ledger_entry', {'amount_minor': 'amount', 'balance_after_minor': 'balance_after'}, 'currency',
         [('amount_not_zero', 'amount <> 0'), ('balance_after_not_negative', 'balance_after >= 0')]),
        ('wallet', {'balance_minor': 'balance'}, 'currency', [('balance_not_negative', 'balance >= 0')]),
        ('package', {'amount_minor': 'amount'}, 'currency', [('amount_positive', 'amount > 0')]),
    ):
        _add(table, *(sa.Column(old, money, nullable=True) for old in pairs.values()))
        _from_minor(table, pairs, currency)
        inspector = sa.inspect(op.get_bind())
        existing = {c['name'] for c in inspector.get_check_constraints(table)}
        with op.batch_alter_table(table) as batch:
            for name in sorted(existing):
                if name.startswith(f'ck_{table}_') and name[len(table) + 4:] in {
                        'amount_positive', 'balance_not_negative', 'amount_not_zero', 'balance_after_not_negative',
                        'total_not_negative', 'refunded_within_total', 'amounts_not_negative',
                        'net_is_gross_less_discount', 'refunded_within_net'}:
                    batch.drop_constraint(op.f(name), type_='check')
            if table == 'order_line':
                batch.drop_index('ix_order_line_member_account_id')
                batch.drop_constraint(op.f('fk_order_line_member_account_id_member_account'), type_='foreignkey')
                for name in ('gross_minor', 'discount_minor', 'refunded_minor', 'member_account_id', 'old_level'):
                    batch.drop_column(name)
            if table == 'order':
                batch.drop_column('refunded_minor')
            if table == 'ledger_entry':
                batch.drop_constraint(op.f('ck_ledger_entry_currency'), type_='check')
                batch.drop_column('currency')
            for new, old in pairs.items():
                batch.drop_column(new)
                batch.alter_column(old, nullable=False)
            for name, sql in checks:
                batch.create_check_constraint(name, sql)
