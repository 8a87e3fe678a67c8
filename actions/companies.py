"""Companies form a tree kept as materialized paths (/1/7/12/)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, literal, update
from sqlalchemy.orm import Session

from actions import DomainError, require_role
from actions.audit import record
from actions.texts import message
from actions.unique import unique_or
from models import Company, User


def place(session: Session, company: Company, parent: Company | None) -> None:
    """Give a new (or moved) company its path under `parent`, moving its subtree along."""
    if parent is not None and (parent.id == company.id or (
        company.path and parent.path.startswith(company.path)
    )):
        raise DomainError(
            _l("Company %(name)s cannot be placed under its own subsidiary %(parent)s.",
               name=company.name, parent=parent.name)
        )
    if company.id is None:
        company.path = f"/new-{id(company)}/"  # unique placeholder until the id exists
        session.add(company)
        session.flush()
    old_path = company.path
    new_path = f"{parent.path if parent else '/'}{company.id}/"
    company.parent = parent
    company.path = new_path
    session.flush()
    if old_path and old_path != new_path and not old_path.startswith("/new-"):
        # Re-root every descendant in one statement.
        session.execute(
            update(Company)
            .where(Company.path.startswith(old_path), Company.id != company.id)
            .values(path=literal(new_path) + func.substr(Company.path, len(old_path) + 1))
            .execution_options(synchronize_session=False)
        )
        session.expire_all()


def create_company(
    session: Session, actor: User, name: str, parent: Company | None = None, **fields
) -> Company:
    """Create a company under `parent` (admins only)."""
    require_role(actor, {"admin"})
    name = (name or "").strip()
    if not name:
        raise DomainError(_l("The company name is required."))
    company = Company(name=name, **fields)
    tax_id = fields.get("tax_id")
    with unique_or("uq_company_tax_id", DomainError(_l(
            "Tax ID %(tax_id)s belongs to another company already; nothing was created.", tax_id=tax_id))):
        place(session, company, parent)
    record(session, actor, "create", "company", [company.id], message("audit.company.create", name=name))
    return company
