"""commission_rule: who set it (a parent distributor passing a share down, or the platform), and one
rule "for every package" per company

A distributor now sets the share it passes to each direct sub-distributor (分销设置): the rule
records the company that set it (`set_by_distributor_id`, NULL = the platform) and the user. The
unique constraint (company_id, package_id) never caught two rules "for every package" (NULLs
differ): a partial unique index does. Duplicates left by earlier races are refused by name.

Revision ID: 0027_commission_rule_set_by
Revises: 0026_card_quotes
"""
import sqlalchemy as sa
from alembic import op

revision = "0027_commission_rule_set_by"
down_revision = "0026_card_quotes"
branch_labels = None
depends_on = None


def upgrade():
    duplicates = op.get_bind().execute(sa.text(
        "SELECT company_id FROM commission_rule WHERE package_id IS NULL GROUP BY company_id HAVING count(*) > 1"
    )).scalars().all()
    if duplicates:
        raise RuntimeError(f"commission_rule: companies {duplicates} have several rules for every package; "
                           "keep one each, then migrate again")
    with op.batch_alter_table("commission_rule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("set_by_distributor_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("set_by_user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_commission_rule_set_by_distributor_id_company"), "company",
                                    ["set_by_distributor_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_commission_rule_set_by_user_id_user"), "user",
                                    ["set_by_user_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_commission_rule_set_by_distributor_id"), ["set_by_distributor_id"],
                              unique=False)
        batch_op.create_index("uq_commission_rule_company_every", ["company_id"], unique=True,
                              sqlite_where=sa.text("package_id IS NULL"),
                              postgresql_where=sa.text("package_id IS NULL"))


def downgrade():
    with op.batch_alter_table("commission_rule", schema=None) as batch_op:
        batch_op.drop_index("uq_commission_rule_company_every")
        batch_op.drop_index(batch_op.f("ix_commission_rule_set_by_distributor_id"))
        batch_op.drop_constraint(batch_op.f("fk_commission_rule_set_by_user_id_user"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_commission_rule_set_by_distributor_id_company"), type_="foreignkey")
        batch_op.drop_column("set_by_user_id")
        batch_op.drop_column("set_by_distributor_id")
