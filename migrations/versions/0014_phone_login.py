"""phone verification at login (SMS codes, their throttle, image captchas) and the applicant role

Revision ID: 0014_phone_login
Revises: 0016_bank_transfer_received
"""
import sqlalchemy as sa
from alembic import op

import models

revision = "0014_phone_login"
down_revision = "0016_bank_transfer_received"
branch_labels = None
depends_on = None

OLD_ROLES = "role IN ('admin', 'tech_support', 'finance', 'sales', 'customer_admin')"
NEW_ROLES = "role IN ('admin', 'tech_support', 'finance', 'sales', 'customer_admin', 'applicant')"


def upgrade():
    op.create_table(
        "phone_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_phone_code_user_id_user"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_code")),
    )
    with op.batch_alter_table("phone_code") as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_code_phone"), ["phone"], unique=False)
        batch_op.create_index(batch_op.f("ix_phone_code_user_id"), ["user_id"], unique=False)
    op.create_table(
        "phone_throttle",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("last_sent_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_started_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_in_window", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_phone_throttle")),
    )
    op.create_table(
        "captcha_challenge",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("answer_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_captcha_challenge")),
    )
    with op.batch_alter_table("captcha_challenge") as batch_op:
        batch_op.create_index(batch_op.f("ix_captcha_challenge_expires_at"), ["expires_at"], unique=False)
    with op.batch_alter_table("user") as batch_op:
        batch_op.add_column(sa.Column("login_phone", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("login_phone_verified_at", models.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f("ck_user_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_user_role"), NEW_ROLES)


def downgrade():
    # Applicants (no company) cannot exist before this revision: their applications and audit events
    # keep their text and lose the link, then the logins go.
    applicants = "SELECT id FROM \"user\" WHERE role = 'applicant'"
    op.execute(f"UPDATE tenant_application SET applicant_id = NULL WHERE applicant_id IN ({applicants})")
    op.execute(f"UPDATE audit_event SET actor_id = NULL WHERE actor_id IN ({applicants})")
    op.execute("DELETE FROM \"user\" WHERE role = 'applicant'")
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_constraint(op.f("ck_user_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_user_role"), OLD_ROLES)
        batch_op.drop_column("login_phone_verified_at")
        batch_op.drop_column("login_phone")
    op.drop_table("captcha_challenge")
    op.drop_table("phone_throttle")
    op.drop_table("phone_code")
