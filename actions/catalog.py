"""The package catalog: categories, subcategories and packages."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select, union, update
from sqlalchemy.orm import Session

from actions import DomainError, require_role
from actions.audit import record
from actions.texts import message
from actions.money import parse
from models import (
    SEAT_EDITIONS, Company, CompanyPackage, Device, DeviceService, OrderLine, Package, PackageCategory,
    PackageSubcategory,
)

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
    check_seat_edition(session, package)


def check_seat_edition(session: Session, package: Package) -> None:
    """A seat package sells one product edition, and one seat package is on sale per edition; other
    kinds have no edition (it is cleared)."""
    if package.kind != "seat":
        package.edition = None
        return
    if package.edition not in SEAT_EDITIONS:
        raise DomainError(_l("Product edition: a seat package needs one (%(editions)s).",
                             editions=", ".join(str(label) for label in SEAT_EDITIONS.values())))
    if not package.active:
        return
    with session.no_autoflush:
        other = session.scalar(select(Package.code).where(
            Package.kind == "seat", Package.edition == package.edition, Package.active.is_(True),
            Package.id != package.id if package.id else True))
    if other:
        raise DomainError(_l("Product edition: seat package %(code)s is already on sale for %(edition)s; stop its "
                             "sales first.", code=other, edition=SEAT_EDITIONS[package.edition]))


def package_in_use(session: Session, package: Package) -> bool:
    """True when a device is bound to the package or a company is offered it."""
    return bool(
        session.scalar(select(exists().where(Device.package_id == package.id)))
        or session.scalar(select(exists().where(CompanyPackage.package_id == package.id)))
    )


@dataclass(frozen=True)
class PackageUsage:
    """Who a package's sales concern: bound devices, their companies, companies it is offered to."""

    devices: int
    companies: int  # companies with a bound device or an offer of the package
    offers: int
    first_devices: tuple[tuple[str, str, date], ...]  # (number, company name, expires_on)
    first_companies: tuple[tuple[str, int], ...]  # (company name, bound devices)

    @property
    def in_use(self) -> bool:
        return bool(self.devices or self.offers)


def package_usage(session: Session, package: Package, shown: int = 20) -> PackageUsage:
    """Counts and first rows of the devices and companies bound to or offered `package`."""
    devices = session.scalar(select(func.count()).select_from(Device).where(Device.package_id == package.id)) or 0
    offers = session.scalar(
        select(func.count()).select_from(CompanyPackage).where(CompanyPackage.package_id == package.id)) or 0
    bound = select(Device.company_id).where(Device.package_id == package.id)
    offered = select(CompanyPackage.company_id).where(CompanyPackage.package_id == package.id)
    companies = session.scalar(select(func.count()).select_from(union(bound, offered).subquery())) or 0
    first_devices = tuple(session.execute(
        select(Device.number, Company.name, Device.expires_on).join(Company, Company.id == Device.company_id)
        .where(Device.package_id == package.id).order_by(Device.expires_on, Device.id).limit(shown)
    ).tuples())
    per_company = func.count(Device.id)
    first_companies = tuple(session.execute(
        select(Company.name, per_company).join(Device, Device.company_id == Company.id)
        .where(Device.package_id == package.id).group_by(Company.id, Company.name)
        .order_by(per_company.desc(), Company.name).limit(shown)
    ).tuples())
    return PackageUsage(devices, companies, offers, first_devices, first_companies)


def describe_usage(package: Package, usage: PackageUsage) -> str:
    """"GPS-M is bound to 12 devices of 3 companies and offered to 1 company"."""
    return str(_l("Package %(code)s is bound to %(devices)s devices and offered to %(offers)s companies "
                  "(%(companies)s companies in all)", code=package.code, devices=usage.devices,
                  offers=usage.offers, companies=usage.companies))


def delete_package(session: Session, actor, package: Package) -> str:
    """Delete an unused package; a package in use is refused with its usage (stop its sales instead)."""
    require_role(actor, CATALOG_ROLES)
    usage = package_usage(session, package, shown=0)
    if usage.in_use:
        raise DomainError(_l("%(usage)s: it cannot be deleted. Stop its sales instead; nothing was changed.",
                             usage=describe_usage(package, usage)))
    sold = session.scalar(select(exists().where(OrderLine.package_id == package.id))) or session.scalar(
        select(exists().where(DeviceService.package_id == package.id)))
    if sold:  # orders and bought services keep pointing at it
        raise DomainError(_l("Package %(code)s was sold (orders or services refer to it): it cannot be deleted. Stop "
                             "its sales instead; nothing was changed.", code=package.code))
    record(session, actor, "delete", "package", [package.id], package.code)
    session.delete(package)
    session.flush()
    return "deleted"


def stop_sales(session: Session, actor, package: Package, previewed_devices: int | None = None) -> PackageUsage:
    """停售: the package is no longer sold (bound devices keep it and can be rebound); audited with its usage.

    With `previewed_devices`, refuses when the number of bound devices changed since the preview.
    """
    require_role(actor, CATALOG_ROLES)
    if not package.active:
        raise DomainError(_l("Package %(code)s is not sold already; nothing was changed.", code=package.code))
    usage = package_usage(session, package, shown=0)
    if previewed_devices is not None and previewed_devices != usage.devices:
        raise DomainError(_l("Package %(code)s is now bound to %(n)s devices, not %(previewed)s as previewed: "
                             "check the new preview; nothing was changed.", code=package.code, n=usage.devices,
                             previewed=previewed_devices))
    claimed = session.execute(
        update(Package).where(Package.id == package.id, Package.active.is_(True)).values(active=False)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.expire(package)
    if claimed != 1:
        raise DomainError(_l("Package %(code)s is not sold already; nothing was changed.", code=package.code))
    record(session, actor, "stop_sales", "package", [package.id],
           message("audit.package.stop_sales", code=package.code, devices=usage.devices, offers=usage.offers,
                   companies=usage.companies))
    session.flush()
    return usage


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
