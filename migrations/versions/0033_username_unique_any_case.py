"""user: one login name in any letter case (a unique index on lower(username))

Onboarding and the company profile compare login names case-insensitively (and sign-in does from this
revision on), but the unique key was on the name as typed: two requests at once (the profile's username
following a new email, and a new login) could each pass the check and store Bill@… beside bill@…. The
index makes the database refuse the second, as the actions already say when they see it (the name is taken).

Revision ID: 0033_username_unique_any_case
Revises: 0032_offline_recharge_orders
"""
import sqlalchemy as sa
from alembic import op

revision = "0033_username_unique_any_case"
down_revision = "0032_offline_recharge_orders"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("uq_user_username_lower", "user", [sa.text("lower(username)")], unique=True)


def downgrade():
    op.drop_index("uq_user_username_lower", table_name="user")
