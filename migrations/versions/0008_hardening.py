"""unique indexes for company tax IDs, offline-recharge references and issued invoice numbers

Revision ID: 0008_hardening
Revises: 0005

Read-before-write checks let two concurrent requests both pass (issue 10 item 8); these
partial unique indexes make the database refuse the second row, on SQLite and PostgreSQL:

- company.tax_id, where it is not empty (NULLs never collide);
- offline_recharge (company_id, reference), where the reference is not empty and the
  application is not declined (a declined application's reference may be filed again);
- invoice_request.invoice_number, where the request is issued.

Existing duplicates: the upgrade FAILS, before changing anything, with a message listing every
duplicated value and the ids holding it. Nothing is merged or renamed automatically: which of
two companies owns a tax ID, which application is the real transfer, which invoice carries a
number, is a business decision. Fix the rows (e.g. clear the wrong tax ID, decline the second
application, correct the invoice number) and run the upgrade again.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_hardening'
down_revision = '0009_idempotency'
branch_labels = None
depends_on = None

DUPLICATES = (
    ("company tax IDs", "SELECT tax_id, id FROM company WHERE tax_id <> '' AND tax_id IN "
     "(SELECT tax_id FROM company WHERE tax_id <> '' GROUP BY tax_id HAVING COUNT(*) > 1) ORDER BY tax_id, id"),
    ("offline-recharge references (company, reference)",
     "SELECT company_id || ' / ' || reference, id FROM offline_recharge o WHERE reference <> '' "
     "AND status <> 'declined' AND (SELECT COUNT(*) FROM offline_recharge p WHERE p.company_id = o.company_id "
     "AND p.reference = o.reference AND p.status <> 'declined') > 1 ORDER BY company_id, reference, id"),
    ("issued invoice numbers", "SELECT invoice_number, id FROM invoice_request WHERE status = 'issued' AND "
     "invoice_number IN (SELECT invoice_number FROM invoice_request WHERE status = 'issued' "
     "GROUP BY invoice_number HAVING COUNT(*) > 1) ORDER BY invoice_number, id"),
)


def _refuse_duplicates():
    connection = op.get_bind()
    problems = []
    for what, query in DUPLICATES:
        rows = connection.execute(sa.text(query)).all()
        if rows:
            held: dict[str, list[str]] = {}
            for value, row_id in rows:
                held.setdefault(str(value), []).append(f"#{row_id}")
            problems.append(f"{what}: " + "; ".join(f"{v} held by {', '.join(ids)}" for v, ids in held.items()))
    if problems:
        raise RuntimeError("0008_hardening: duplicates must be resolved before the unique indexes can be "
                           "created (see this migration's docstring):\n  " + "\n  ".join(problems))


def upgrade():
    _refuse_duplicates()
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.create_index('uq_company_tax_id', ['tax_id'], unique=True,
                              sqlite_where=sa.text("tax_id <> ''"), postgresql_where=sa.text("tax_id <> ''"))
    with op.batch_alter_table('offline_recharge', schema=None) as batch_op:
        batch_op.create_index('uq_offline_recharge_company_reference', ['company_id', 'reference'], unique=True,
                              sqlite_where=sa.text("reference <> '' AND status <> 'declined'"),
                              postgresql_where=sa.text("reference <> '' AND status <> 'declined'"))
    with op.batch_alter_table('invoice_request', schema=None) as batch_op:
        batch_op.create_index('uq_invoice_request_issued_number', ['invoice_number'], unique=True,
                              sqlite_where=sa.text("status = 'issued'"), postgresql_where=sa.text("status = 'issued'"))


def downgrade():
    with op.batch_alter_table('invoice_request', schema=None) as batch_op:
        batch_op.drop_index('uq_invoice_request_issued_number')
    with op.batch_alter_table('offline_recharge', schema=None) as batch_op:
        batch_op.drop_index('uq_offline_recharge_company_reference')
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.drop_index('uq_company_tax_id')
