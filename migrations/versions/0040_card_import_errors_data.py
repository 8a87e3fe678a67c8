"""card_import: the bad rows kept as message keys with parameters, shown in the reader's language

An import's errors were stored as finished text in the uploader's language: a Chinese upload showed
Chinese reasons to a Vietnamese or English reader. `errors_data` keeps each line as a stored message
(actions.texts), as expiry_import does since 0038; `errors` keeps the English text. Imports stored
before it keep their text, shown as it is.

Revision ID: 0040_card_import_errors_data
Revises: 0039_card_movement_note_data
"""
import warnings

import sqlalchemy as sa
from alembic import op

revision = "0040_card_import_errors_data"
down_revision = "0039_card_movement_note_data"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("card_import", sa.Column("errors_data", sa.JSON(), nullable=True))  # a plain ADD COLUMN


def downgrade():
    # SQLite's batch mode reflects the user table (a foreign key) and warns about its expression index (0036).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table("card_import", schema=None) as batch_op:
            batch_op.drop_column("errors_data")
