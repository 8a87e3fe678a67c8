"""refused payment notifications; mail outbox

Revision ID: 0007_outbox_payments
Revises: 0005
Create Date: 2026-12-01 04:00:00

"""
from alembic import op
import sqlalchemy as sa

import models


# revision identifiers, used by Alembic.
revision = '0007_outbox_payments'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('refused_notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=45), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('order_number', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.String(length=255), nullable=False),
    sa.Column('body_excerpt', sa.Text(), nullable=False),
    sa.CheckConstraint("reason IN ('malformed', 'unknown_method', 'bad_signature', 'unknown_order', 'amount_mismatch', 'currency_mismatch', 'stale', 'repeated')", name=op.f('ck_refused_notification_reason')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refused_notification'))
    )
    with op.batch_alter_table('refused_notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refused_notification_at'), ['at'], unique=False)
        batch_op.create_index('ix_refused_notification_source_at', ['source', 'at'], unique=False)

    op.create_table('outbox_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', models.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'sending', 'sent', 'failed')", name=op.f('ck_outbox_mail_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_mail')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_mail_dedupe_key'))
    )
    with op.batch_alter_table('outbox_mail', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_mail_status_id', ['status', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox_mail', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_mail_status_id')
    op.drop_table('outbox_mail')
    with op.batch_alter_table('refused_notification', schema=None) as batch_op:
        batch_op.drop_index('ix_refused_notification_source_at')
        batch_op.drop_index(batch_op.f('ix_refused_notification_at'))
    op.drop_table('refused_notification')
