"""order.note_data for subscription orders: the note is shown in the reader's language

A subscription's order noted "SUB0000002 start" in English text only; finance's order list showed that
to Chinese and Vietnamese readers. The note is now a stored message (actions.texts:
order.note.subscription_start / _renewal / _upgrade, params subscription and purpose), rendered in the
reader's language, its English kept in `note` as for every stored message. This revision gives the
orders noted before it the same message; their English text follows it.

Revision ID: 0037_subscription_order_notes
Revises: 0036_cash_receipt_reject
"""
import re

import sqlalchemy as sa
from alembic import op

revision = "0037_subscription_order_notes"
down_revision = "0036_cash_receipt_reject"
branch_labels = None
depends_on = None

NOTE = re.compile(r"^(SUB\d+) (start|renewal|upgrade)$")
ENGLISH = {"start": "Registration of subscription %s", "renewal": "Renewal of subscription %s",
           "upgrade": "Plan change of subscription %s"}
ORDER = sa.table("order", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                 sa.column("note", sa.String), sa.column("note_data", sa.JSON))


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.select(ORDER.c.id, ORDER.c.note).where(
        ORDER.c.kind == "subscription", ORDER.c.note_data.is_(None), ORDER.c.note.like("SUB% %"))).all()
    for order_id, note in rows:
        match = NOTE.match(note or "")
        if match is None:
            continue
        number, purpose = match.groups()
        conn.execute(ORDER.update().where(ORDER.c.id == order_id).values(
            note=ENGLISH[purpose] % number,
            note_data={"key": f"order.note.subscription_{purpose}",
                       "params": {"subscription": number, "purpose": purpose}}))


def downgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.select(ORDER.c.id, ORDER.c.note_data).where(
        ORDER.c.kind == "subscription", ORDER.c.note_data.is_not(None))).all()
    for order_id, data in rows:
        params = (data or {}).get("params") or {}
        if str((data or {}).get("key", "")).startswith("order.note.subscription_"):
            conn.execute(ORDER.update().where(ORDER.c.id == order_id).values(
                note=f"{params.get('subscription')} {params.get('purpose')}", note_data=None))
