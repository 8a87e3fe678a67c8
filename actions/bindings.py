"""客户延期配置 and 客户增值配置: bind renewal packages to devices, offer value-added packages.

A device's bound renewal package prices its renewals (DESIGN.md section 3); a company's
offered value-added packages are what its users may buy on top.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from actions import ActionResult, DomainError, in_scope, require_role, scope_company_ids
from actions.audit import record
from actions.texts import message
from models import Company, CompanyPackage, Device, Package, User

BINDING_ROLES = {"tech_support"}
_CHUNK = 900  # stays under SQLite's bound-parameter limit


def check_renewal_package(package: Package | None) -> None:
    """Raise DomainError naming the package unless it is an active renewal package."""
    if package is None:
        raise DomainError(_l("Choose a renewal package."))
    if package.kind != "renewal":
        raise DomainError(_l("Package %(code)s is not a renewal package.", code=package.code))
    if not package.active:
        raise DomainError(_l("Package %(code)s is inactive.", code=package.code))


def check_value_added_package(package: Package) -> None:
    """Raise DomainError naming the package unless it is an active value-added package."""
    if package.kind != "value_added":
        raise DomainError(_l("Package %(code)s is not a value-added package.", code=package.code))
    if not package.active:
        raise DomainError(_l("Package %(code)s is inactive.", code=package.code))


def _check_company(session: Session, actor: User, company: Company | None) -> None:
    if company is None:
        raise DomainError(_l("Choose a company."))
    if not in_scope(actor, company.id, session):
        raise DomainError(_l("Company %(name)s is outside your companies.", name=company.name))


def _split_by_scope(session: Session, actor: User, devices: Sequence[Device]):
    """The devices the actor may touch, and each other one refused by number."""
    allowed = None if actor.is_staff else scope_company_ids(session, actor)
    kept, refused = [], []
    for device in devices:
        if allowed is not None and device.company_id not in allowed:
            refused.append((device.number, str(_l("unknown device number or not one of your devices"))))
        else:
            kept.append(device)
    return kept, refused


def _was(devices: Sequence[Device]) -> str:
    """"GPS-M ×3, none ×2": the bindings the devices had before a change (for the audit log)."""
    counts = Counter(d.package.code if d.package else "none" for d in devices)
    return ", ".join(f"{code} ×{n}" for code, n in sorted(counts.items()))


def _update_devices(session: Session, ids: Sequence[int], condition, package_id: int | None):
    """Set package_id on the given devices still matching `condition`, in chunks; returns (ids, numbers)."""
    changed_ids, numbers = [], []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        rows = session.execute(
            update(Device)
            .where(Device.id.in_(chunk), condition)
            .values(package_id=package_id)
            .returning(Device.id, Device.number)
            .execution_options(synchronize_session=False)
        )
        for id_, number in rows:
            changed_ids.append(id_)
            numbers.append(number)
    _forget(session, changed_ids)
    return changed_ids, numbers


def _forget(session: Session, ids: Sequence[int]) -> None:
    """Expire the binding of changed devices already in the session, so they read the new one."""
    for id_ in ids:
        device = session.identity_map.get(identity_key(Device, id_))
        if device is not None:
            session.expire(device, ["package_id", "package"])


def _not_bound_to(package: Package):
    return or_(Device.package_id.is_(None), Device.package_id != package.id)


def bind_package(session: Session, actor: User, devices: Sequence[Device], package: Package | None) -> ActionResult:
    """Bind an active renewal package to the given (already scope-checked) devices."""
    require_role(actor, BINDING_ROLES)
    check_renewal_package(package)
    devices, refused = _split_by_scope(session, actor, devices)
    todo = []
    for device in devices:
        if device.package_id == package.id:
            refused.append((device.number, str(_l("already bound to %(code)s", code=package.code))))
        else:
            todo.append(device)
    was = _was(todo)
    ids, numbers = _update_devices(session, [d.id for d in todo], _not_bound_to(package), package.id)
    if len(ids) != len(todo):
        refused.append(("…", str(_l("%(n)s devices were bound to %(code)s meanwhile",
                                    n=len(todo) - len(ids), code=package.code))))
    record(session, actor, "bind_package", "device", ids,
           message("audit.bind.devices", code=package.code, count=len(ids), was=was or "—"))
    session.flush()
    return ActionResult(tuple(numbers), tuple(refused))


@dataclass(frozen=True)
class TypeBindingPlan:
    """How many devices of a type a binding would reach, and how many of them it would change."""

    matching: int
    to_change: int


def _type_clause(company: Company, device_type: str, include_subsidiaries: bool):
    in_company = (Device.company_id.in_(company.subtree_ids()) if include_subsidiaries
                  else Device.company_id == company.id)
    return in_company & (Device.device_type == device_type)


def _check_type_binding(session, actor, company, device_type, package) -> str:
    require_role(actor, BINDING_ROLES)
    _check_company(session, actor, company)
    check_renewal_package(package)
    device_type = (device_type or "").strip()
    if not device_type:
        raise DomainError(_l("Choose a device type."))
    return device_type


def plan_type_binding(session: Session, actor: User, company: Company | None, device_type: str,
                      package: Package | None, include_subsidiaries: bool) -> TypeBindingPlan:
    """Count what binding `package` to every `device_type` device of `company` would change."""
    device_type = _check_type_binding(session, actor, company, device_type, package)
    matching, to_change = session.execute(
        select(func.count(Device.id),
               func.coalesce(func.sum(case((_not_bound_to(package), 1), else_=0)), 0))
        .where(_type_clause(company, device_type, include_subsidiaries))
    ).one()
    return TypeBindingPlan(matching, to_change)


def bind_package_to_type(session: Session, actor: User, company: Company | None, device_type: str,
                         package: Package | None, include_subsidiaries: bool) -> ActionResult:
    """Bind `package` to every `device_type` device of `company` (and below it) in one UPDATE."""
    device_type = _check_type_binding(session, actor, company, device_type, package)
    rows = session.execute(
        update(Device)
        .where(_type_clause(company, device_type, include_subsidiaries), _not_bound_to(package))
        .values(package_id=package.id)
        .returning(Device.id, Device.number)
        .execution_options(synchronize_session=False)
    ).all()
    _forget(session, [r.id for r in rows])
    record(session, actor, "bind_package_type", "device", [r.id for r in rows],
           message("audit.bind.type_subsidiaries" if include_subsidiaries else "audit.bind.type", code=package.code,
                   count=len(rows), type=device_type, company=f"{company.name} (#{company.id})"))
    session.flush()
    return ActionResult(tuple(r.number for r in rows))


def unbind(session: Session, actor: User, devices: Sequence[Device]) -> ActionResult:
    """Remove the renewal package of the given devices; devices without one are reported."""
    require_role(actor, BINDING_ROLES)
    devices, refused = _split_by_scope(session, actor, devices)
    todo = []
    for device in devices:
        if device.package_id is None:
            refused.append((device.number, str(_l("no package bound"))))
        else:
            todo.append(device)
    was = _was(todo)
    ids, numbers = _update_devices(session, [d.id for d in todo], Device.package_id.isnot(None), None)
    if len(ids) != len(todo):
        refused.append(("…", str(_l("%(n)s devices were unbound meanwhile", n=len(todo) - len(ids)))))
    record(session, actor, "unbind_package", "device", ids,
           message("audit.bind.remove", count=len(ids), was=was or "—"))
    session.flush()
    return ActionResult(tuple(numbers), tuple(refused))


def offer_packages(session: Session, actor: User, company: Company | None,
                   packages: Sequence[Package]) -> ActionResult:
    """Offer value-added packages to a company; ones already offered are reported, not repeated."""
    require_role(actor, BINDING_ROLES)
    _check_company(session, actor, company)
    unique = list({p.id: p for p in packages}.values())
    if not unique:
        raise DomainError(_l("Tick at least one value-added package."))
    for package in unique:
        check_value_added_package(package)
    offered = set(session.scalars(
        select(CompanyPackage.package_id).where(
            CompanyPackage.company_id == company.id,
            CompanyPackage.package_id.in_([p.id for p in unique]),
        )
    ))
    refused = [(p.code, str(_l("already offered to %(name)s", name=company.name)))
               for p in unique if p.id in offered]
    new = [CompanyPackage(company_id=company.id, package_id=p.id) for p in unique if p.id not in offered]
    session.add_all(new)
    try:
        session.flush()
    except IntegrityError as exc:
        # Another request offered one of them between our check and our insert.
        raise DomainError(_l("The offers of %(name)s changed meanwhile; please try again.",
                             name=company.name)) from exc
    codes = tuple(p.code for p in unique if p.id not in offered)
    record(session, actor, "offer_packages", "company_package", [cp.id for cp in new],
           message("audit.bind.offer", company=f"{company.name} (#{company.id})", codes=", ".join(codes) or "—"))
    session.flush()
    return ActionResult(codes, tuple(refused))


def _offer_label(offer: CompanyPackage) -> str:
    return f"{offer.company.name}: {offer.package.code}"


def withdraw_offers(session: Session, actor: User, company_packages: Sequence[CompanyPackage]) -> ActionResult:
    """Stop offering value-added packages (the CompanyPackage rows are deleted)."""
    require_role(actor, BINDING_ROLES)
    allowed = None if actor.is_staff else scope_company_ids(session, actor)
    changed, refused, ids = [], [], []
    for offer in company_packages:
        label = _offer_label(offer)
        if allowed is not None and offer.company_id not in allowed:
            refused.append((label, str(_l("not found or outside your companies"))))
            continue
        changed.append(label)
        ids.append(offer.id)
        session.delete(offer)
    record(session, actor, "withdraw_offers", "company_package", ids, "; ".join(changed) or "—")
    session.flush()
    return ActionResult(tuple(changed), tuple(refused))


# --- rebinding a device whose package is no longer sold (renewal center) ------------------------------

REBIND_ROLES = {"customer_admin", "tech_support", "finance", "sales"}


def rebind_choices(session: Session, currency: str) -> list[Package]:
    """The renewal packages on sale in `currency`: what a device of a retired package may move to."""
    return list(session.scalars(
        select(Package).where(Package.kind == "renewal", Package.active.is_(True), Package.currency == currency)
        .order_by(Package.code)
    ))


def rebind_unsold(session: Session, actor: User, device: Device, package: Package | None) -> None:
    """Move a device off a package no longer sold onto an active renewal package of the same currency.

    Open to the renewal center's roles (a customer administrator for the devices of their
    companies): only a device whose package was retired, and only to a package priced in the
    same currency, so that the customer's wallet and past orders keep their meaning. Audited.
    """
    require_role(actor, REBIND_ROLES)
    if not in_scope(actor, device.company_id, session):
        raise DomainError(_l("Device %(number)s is not one of your devices.", number=device.number))
    old = device.package
    if old is None or old.active:
        raise DomainError(_l("Device %(number)s: its package is still sold; ask technical support to change it.",
                             number=device.number))
    check_renewal_package(package)
    if package.currency != old.currency:
        raise DomainError(_l("Device %(number)s: choose a package in %(currency)s, the currency of %(code)s.",
                             number=device.number, currency=old.currency, code=old.code))
    moved = session.execute(
        update(Device).where(Device.id == device.id, Device.package_id == old.id).values(package_id=package.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.expire(device)
    if moved != 1:
        raise DomainError(_l("Device %(number)s changed meanwhile; nothing was changed.", number=device.number))
    record(session, actor, "rebind_package", "device", [device.id],
           message("audit.bind.rebind", device=device.number, old=old.code, code=package.code))
    session.flush()
