"""The package catalog: categories, subcategories and packages."""
from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from actions import DomainError, require_role
from actions.audit import record
from actions.money import parse
from models import CompanyPackage, Device, Package, PackageCategory, PackageSubcategory

CATALOG_ROLES = {"tech_support"}
MAX_AMOUNT = Decimal("100000000")  # one package above this is a typo


def check_code_unique(session: Session, row: PackageCategory | PackageSubcategory | Package) -> None:
    """Raise DomainError naming the code when another row of the same table already uses it."""
    model = type(row)
    with session.no_autoflush:  # the pending row itself must not be inserted by this query
        taken = session.scalar(
            select(exists().where(model.code == row.code, model.id != row.id if row.id else True))
        )
    if taken:
        raise DomainError(_l("Code %(code)s is already used; choose another code.", code=row.code))


def check_subcategory(session: Session, sub: PackageSubcategory) -> None:
    """Refuse to move a subcategory that packages use into another category."""
    check_code_unique(session, sub)
    category_id = sub.category.id if sub.category is not None else sub.category_id
    with session.no_autoflush:
        moved_away = sub.id is not None and session.scalar(
            select(exists().where(Package.subcategory_id == sub.id, Package.category_id != category_id))
        )
    if moved_away:
        raise DomainError(
            _l("Subcategory %(code)s is used by packages; move or deactivate them first.", code=sub.code)
        )


def check_package(session: Session, package: Package) -> None:
    """Raise DomainError naming the field when the package breaks a catalog rule."""
    with session.no_autoflush:  # a pending package must not reach the database's own checks first
        sub = session.get(PackageSubcategory, package.subcategory_id) if package.subcategory_id else None
        category = package.category or session.get(PackageCategory, package.category_id)
    # A form sets the relationship; category_id follows only at flush.
    category_id = category.id if category is not None else package.category_id
    if package.subcategory_id and (sub is None or sub.category_id != category_id):
        raise DomainError(
            _l("Subcategory %(sub)s does not belong to category %(cat)s.",
               sub=str(sub or package.subcategory_id), cat=str(category))
        )
    if package.amount is None:
        raise DomainError(_l("Amount: must be greater than zero."))
    package.amount = parse(package.amount, package.currency or "CNY", str(_l("Amount")), maximum=MAX_AMOUNT)
    if package.pricing == "per_term":
        if not package.term_months or package.term_months <= 0:
            raise DomainError(_l("Term months: required (a whole number of months) for per-term pricing."))
    else:
        package.term_months = None


def package_in_use(session: Session, package: Package) -> bool:
    """True when a device is bound to the package or a company is offered it."""
    return bool(
        session.scalar(select(exists().where(Device.package_id == package.id)))
        or session.scalar(select(exists().where(CompanyPackage.package_id == package.id)))
    )


def delete_package(session: Session, actor, package: Package) -> str:
    """Delete an unused package; a package in use is deactivated instead. Returns "deleted" or "deactivated"."""
    require_role(actor, CATALOG_ROLES)
    if package_in_use(session, package):
        package.active = False
        record(session, actor, "deactivate", "package", [package.id],
               f"{package.code}: in use, deactivated instead of deleted")
        session.flush()
        return "deactivated"
    record(session, actor, "delete", "package", [package.id], package.code)
    session.delete(package)
    session.flush()
    return "deleted"


def check_category_deletable(session: Session, category: PackageCategory) -> None:
    """Refuse to delete a category that still has subcategories or packages."""
    if session.scalar(select(exists().where(PackageSubcategory.category_id == category.id))) or \
            session.scalar(select(exists().where(Package.category_id == category.id))):
        raise DomainError(
            _l("Category %(code)s still has subcategories or packages; remove those first.",
               code=category.code)
        )


def check_subcategory_deletable(session: Session, sub: PackageSubcategory) -> None:
    """Refuse to delete a subcategory that packages still use."""
    if session.scalar(select(exists().where(Package.subcategory_id == sub.id))):
        raise DomainError(
            _l("Subcategory %(code)s is used by packages; move or deactivate them first.",
               code=sub.code)
        )
