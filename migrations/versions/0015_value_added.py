"""value-added services bought for devices; seat packages name their edition

`device_service`: one row per device and value-added package, with the date the service runs
until (增值订单 extend it; refunds put it back). `package.edition`: the product edition a seat
package sells, so that buying and granting seats find the package by its edition (one on sale
per edition) instead of by a code; existing seat packages coded SEAT-<EDITION> get theirs.

Revision ID: 0015_value_added
Revises: 0013_time_zone
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_value_added"
down_revision = "0013_time_zone"
branch_labels = None
depends_on = None

EDITIONS = ("enterprise", "standard", "basic")
ACTIVE_SEAT = "kind = 'seat' AND active"


def upgrade():
    op.create_table(
        "device_service",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"], name=op.f("fk_device_service_device_id_device")),
        sa.ForeignKeyConstraint(["package_id"], ["package.id"], name=op.f("fk_device_service_package_id_package")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_service")),
        sa.UniqueConstraint("device_id", "package_id", name=op.f("uq_device_service_device_id_package_id")),
    )
    with op.batch_alter_table("device_service") as batch_op:
        batch_op.create_index(batch_op.f("ix_device_service_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_service_package_id"), ["package_id"], unique=False)

    op.add_column("package", sa.Column("edition", sa.String(length=20), nullable=True))
    # Seat packages were found by their code until now: give each SEAT-<EDITION> its edition. Any
    # other seat package keeps none (it sells no edition until technical support chooses one).
    for edition in EDITIONS:
        op.execute(f"UPDATE package SET edition = '{edition}' WHERE kind = 'seat' AND code = 'SEAT-{edition.upper()}'")
    with op.batch_alter_table("package") as batch_op:
        batch_op.create_check_constraint(
            "seat_edition",
            "edition IS NULL OR (kind = 'seat' AND edition IN ('enterprise', 'standard', 'basic'))",
        )
        batch_op.create_index("uq_package_active_seat_edition", ["edition"], unique=True,
                              sqlite_where=sa.text(ACTIVE_SEAT), postgresql_where=sa.text(ACTIVE_SEAT))


def downgrade():
    with op.batch_alter_table("package") as batch_op:
        batch_op.drop_index("uq_package_active_seat_edition", sqlite_where=sa.text(ACTIVE_SEAT),
                            postgresql_where=sa.text(ACTIVE_SEAT))
        batch_op.drop_constraint(op.f("ck_package_seat_edition"), type_="check")
        batch_op.drop_column("edition")
    with op.batch_alter_table("device_service") as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_service_package_id"))
        batch_op.drop_index(batch_op.f("ix_device_service_device_id"))
    op.drop_table("device_service")
