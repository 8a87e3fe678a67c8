"""card_movement.note_data: the notes the system writes on a card's timeline, in the reader's language

A refunded card's movement was noted "refund SE…" and an automatic receipt "auto", in English only, on
the Chinese and Vietnamese timeline. They are now stored messages (actions.texts: card.move.refund,
card.move.auto_received), their English kept in `note`; notes people typed stay as typed. This revision
adds the column and gives the movements noted before it the same messages.

Revision ID: 0039_card_movement_note_data
Revises: 0038_expiry_import_errors_data
"""
import warnings

import sqlalchemy as sa
from alembic import op

revision = "0039_card_movement_note_data"
down_revision = "0038_expiry_import_errors_data"
branch_labels = None
depends_on = None

# SQLite's batch mode reflects the tables card_movement refers to (user): SQLAlchemy cannot reflect the
# expression index on lower(username) (0033) and warns; that index is not this table's and stays as it is.
REFLECTION_WARNING = "Skipped unsupported reflection of expression-based index"
MOVEMENT = sa.table("card_movement", sa.column("id", sa.Integer), sa.column("to_status", sa.String),
                    sa.column("note", sa.String), sa.column("note_data", sa.JSON))


def upgrade():
    with op.batch_alter_table("card_movement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note_data", sa.JSON(), nullable=True))
    conn = op.get_bind()
    conn.execute(MOVEMENT.update().where(MOVEMENT.c.to_status == "received", MOVEMENT.c.note == "auto").values(
        note="Received automatically", note_data={"key": "card.move.auto_received", "params": {}}))
    refunds = conn.execute(sa.select(MOVEMENT.c.id, MOVEMENT.c.note).where(
        MOVEMENT.c.to_status == "returned", MOVEMENT.c.note.like("refund %"))).all()
    for movement_id, note in refunds:
        order = note.removeprefix("refund ")
        conn.execute(MOVEMENT.update().where(MOVEMENT.c.id == movement_id).values(
            note=f"Refund of order {order}"[:255], note_data={"key": "card.move.refund", "params": {"order": order}}))


def downgrade():
    conn = op.get_bind()
    conn.execute(MOVEMENT.update().where(MOVEMENT.c.note == "Received automatically",
                                         MOVEMENT.c.note_data.is_not(None)).values(note="auto"))
    refunds = conn.execute(sa.select(MOVEMENT.c.id, MOVEMENT.c.note).where(
        MOVEMENT.c.note.like("Refund of order %"), MOVEMENT.c.note_data.is_not(None))).all()
    for movement_id, note in refunds:
        conn.execute(MOVEMENT.update().where(MOVEMENT.c.id == movement_id).values(
            note="refund " + note.removeprefix("Refund of order ")))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=REFLECTION_WARNING)
        with op.batch_alter_table("card_movement", schema=None) as batch_op:
            batch_op.drop_column("note_data")
