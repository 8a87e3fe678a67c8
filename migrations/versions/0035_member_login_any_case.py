"""member_account: one login in any letter case (a unique index on lower(login))

A member or organizer login was unique only as typed: 新建用户 with TUPP{01-20} beside tupp01 … tupp20, or an
organizer Zhang.San@Example.com beside zhang.san@example.com, made a second account for the same login (and the
organizer took a second seat for the same mailbox). The actions compare logins case-insensitively from this
revision on; the index makes the database refuse the second of two concurrent requests as well.

Revision ID: 0035_member_login_any_case
Revises: 0034_cash_reserves_order
"""
import sqlalchemy as sa
from alembic import op

revision = "0035_member_login_any_case"
down_revision = "0034_cash_reserves_order"
branch_labels = None
depends_on = None


def upgrade():
    twins = op.get_bind().execute(sa.text(
        "SELECT lower(login) FROM member_account GROUP BY lower(login) HAVING count(*) > 1 ORDER BY 1")).scalars().all()
    if twins:  # say which, rather than fail on the index: an operator renames or removes one of each first
        raise RuntimeError("member_account: these logins exist in more than one letter case; rename or remove one "
                           "of each, then upgrade again: " + ", ".join(twins[:50]))
    op.create_index("uq_member_account_login_lower", "member_account", [sa.text("lower(login)")], unique=True)


def downgrade():
    op.drop_index("uq_member_account_login_lower", table_name="member_account")
