"""user.areas: the permission areas an employee of a customer company may use (员工权限设置)

A column on `user`, not a user_permission(user_id, area) table:
- the areas are read on every permission check (each menu entry of every page asks), and the signed-in
  user's row is already loaded: a column costs no query, a table one per request;
- NULL means full access, so every existing login keeps everything without a data step, and an empty
  list (an employee allowed no area yet) stays distinct from full access, which absent rows could not say;
- an employee's areas change in one UPDATE of one row, together with its session version.
Nothing queries "who has area X" across users; the codes are checked by actions.employees on write.
A CHECK keeps restrictions to customer logins (staff have their roles).

Revision ID: 0029_employee_permissions
Revises: 0028_seat_order_terms
"""
import sqlalchemy as sa
from alembic import op

revision = "0029_employee_permissions"
down_revision = "0028_seat_order_terms"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("areas", sa.JSON(none_as_null=True), nullable=True))
        batch_op.create_check_constraint(op.f("ck_user_areas_customer_only"),
                                         "areas IS NULL OR role = 'customer_admin'")


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_user_areas_customer_only"), type_="check")
        batch_op.drop_column("areas")
