"""员工权限设置: a customer company's administrator creates its employees' logins and says what each may use.

An employee is a customer login (`customer_admin`, as the administrator) with a list of permission
areas (`User.areas`, actions.permissions); an administrator has them all (`areas` NULL). The rules:

- only a login with the "employees" area manages employees (full-access administrators have it);
- it grants only areas it has itself, and touches only employees whose areas are all its own (a clerk
  cannot reset the password of someone who may do more, then sign in as them);
- it never restricts, deactivates or resets itself or a full-access administrator;
- only logins of its own company tree (others are "not found");
- every change is audited, and a change of areas, a deactivation or a reset ends the employee's sessions.
"""
from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import DomainError, NotAllowed, scope_company_ids
from actions.audit import record
from actions.auth import end_sessions
from actions.cards import distributor_profile
from actions.passwords import DEFAULT_POLICY, LIST_SEPARATOR, PasswordPolicy, PasswordRefused
from actions.permissions import AREAS, DISTRIBUTOR_AREAS, areas_of, is_restricted, ordered
from actions.texts import labels_param, message
from actions.users import check_new_username, generate_password, insert_login
from models import Company, User


class EmployeeRefused(DomainError):
    """A refused change of an employee; `field` names the form field at fault, if any."""

    def __init__(self, text, field: str | None = None) -> None:
        super().__init__(text)
        self.field = field


class EmployeeNotFound(DomainError):
    """No login of that id in the actor's company tree."""


def require_manager(actor: User) -> None:
    """Raise NotAllowed unless `actor` is an active customer login with the "employees" area."""
    if (not actor.active or actor.role != "customer_admin" or actor.company_id is None
            or "employees" not in areas_of(actor)):
        raise NotAllowed(_l("Only your company's administrator, or an employee allowed to manage employees, may "
                            "do this."))


def company_areas(session: Session, company_id: int) -> list[str]:
    """The areas a login of the company can use: the card areas only when it is a distributor."""
    distributor = distributor_profile(session, company_id) is not None
    return [code for code in AREAS if distributor or code not in DISTRIBUTOR_AREAS]


def grantable_areas(session: Session, actor: User, company_id: int | None = None) -> list[str]:
    """The areas `actor` may give a login of `company_id` (its own company by default): its own, usable there."""
    mine = areas_of(actor)
    return [code for code in company_areas(session, company_id or actor.company_id) if code in mine]


def employees_of(session: Session, actor: User) -> list[User]:
    """The customer logins of the actor's company tree, administrators first, then by username."""
    require_manager(actor)
    return list(session.scalars(
        select(User).join(Company, Company.id == User.company_id)
        .where(User.role == "customer_admin", Company.path.startswith(actor.company.path))
        .order_by(Company.path, User.areas.is_not(None), User.username)
    ))


def find_employee(session: Session, actor: User, user_id) -> User:
    """The customer login `user_id` of the actor's company tree, or EmployeeNotFound."""
    require_manager(actor)
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or user.role != "customer_admin" or user.company_id not in scope_company_ids(session, actor):
        raise EmployeeNotFound(_l("User #%(id)s: not found or outside your companies.", id=user_id))
    return user


def _check_managed(session: Session, actor: User, employee: User) -> None:
    """Refuse touching oneself, a full-access administrator, a login outside the tree or one that may do more."""
    if employee.role != "customer_admin" or employee.company_id not in scope_company_ids(session, actor):
        raise EmployeeNotFound(_l("User #%(id)s: not found or outside your companies.", id=employee.id))
    if employee.id == actor.id:
        raise EmployeeRefused(_l("%(user)s: you cannot change your own login here.", user=employee.username))
    if not is_restricted(employee):
        raise EmployeeRefused(_l("%(user)s is an administrator with full access: only the platform's administrators "
                                 "change it.", user=employee.username))
    beyond = set(employee.areas) - areas_of(actor)
    if beyond:
        raise EmployeeRefused(_l("%(user)s may use %(areas)s, which you may not: only someone who may use them "
                                 "changes this login.", user=employee.username, areas=_names(beyond)))


def _names(codes: Iterable[str]) -> str:
    return str(LIST_SEPARATOR).join(str(AREAS[code]) for code in ordered(codes))


def _clean_areas(session: Session, actor: User, company_id: int, areas: Iterable[str],
                 kept: Iterable[str] = ()) -> list[str]:
    """The chosen area codes, checked: each known and usable by the company, each new one the actor's own."""
    chosen = {str(code) for code in areas}
    unknown = chosen - set(AREAS)
    if unknown:
        raise EmployeeRefused(_l("Unknown permission: %(codes)s.", codes=", ".join(sorted(unknown))), field="areas")
    unusable = chosen - set(company_areas(session, company_id))
    if unusable:
        raise EmployeeRefused(_l("%(areas)s: only a distributor's logins can use these.", areas=_names(unusable)),
                              field="areas")
    granted = chosen - set(kept) - areas_of(actor)
    if granted:
        raise EmployeeRefused(_l("You may not give permissions you do not have yourself: %(areas)s.",
                                 areas=_names(granted)), field="areas")
    return ordered(chosen)




def create_employee(
    session: Session, actor: User, username: str, areas: Iterable[str], password: str | None = None, *,
    full_name: str | None = None, email: str | None = None, mobile: str | None = None,
    must_change_password: bool = True, method: str = "scrypt", policy: PasswordPolicy = DEFAULT_POLICY,
) -> tuple[User, str]:
    """A new login of the actor's company limited to `areas`; returns it and its initial password (generated
    when none is given), which it must change at first login."""
    require_manager(actor)
    username = check_new_username(session, username, EmployeeRefused)
    chosen = _clean_areas(session, actor, actor.company_id, areas)
    email = (email or "").strip() or None
    if email is not None and (len(email) > 254 or "@" not in email or any(c.isspace() for c in email)):
        raise EmployeeRefused(_l("%(address)s is not a valid email address.", address=email), field="email")
    password = password or generate_password(policy)
    policy.check(password, field="password")
    if password.lower() == username.lower():
        raise PasswordRefused(_l("The password may not be the username."), field="password")
    user = User(username=username, role="customer_admin", company_id=actor.company_id, areas=chosen,
                full_name=(full_name or "").strip()[:100] or None, email=email,
                mobile=(mobile or "").strip()[:40] or None, must_change_password=must_change_password,
                session_version=0)
    user.set_password(password, method=method)
    insert_login(session, user, EmployeeRefused)
    record(session, actor, "create", "user", [user.id], message(
        "audit.employee.create", username=username, company=actor.company.name,
        areas=labels_param("permission_area", chosen)))
    session.flush()
    return user, password


def set_areas(session: Session, actor: User, employee: User, areas: Iterable[str]) -> bool:
    """Limit `employee` to `areas`; ends its sessions. False when they were already these."""
    require_manager(actor)
    _check_managed(session, actor, employee)
    old = ordered(employee.areas)
    new = _clean_areas(session, actor, employee.company_id, areas, kept=old)
    if new == old:
        return False
    employee.areas = new
    session.flush()
    end_sessions(session, employee)
    record(session, actor, "set_permissions", "user", [employee.id], message(
        "audit.employee.areas", username=employee.username, old=labels_param("permission_area", old),
        new=labels_param("permission_area", new)))
    session.flush()
    session.refresh(employee)
    return True


def set_employee_active(session: Session, actor: User, employee: User, active: bool) -> bool:
    """Deactivate (ending its sessions) or reactivate an employee; False when it already was."""
    require_manager(actor)
    _check_managed(session, actor, employee)
    if employee.active == active:
        return False
    employee.active = active
    session.flush()
    if not active:
        end_sessions(session, employee)
        record(session, actor, "deactivate", "user", [employee.id],
               message("audit.employee.deactivate", username=employee.username))
    else:
        record(session, actor, "activate", "user", [employee.id],
               message("audit.employee.activate", username=employee.username))
    session.flush()
    session.refresh(employee)
    return True


def reset_employee_password(session: Session, actor: User, employee: User, method: str = "scrypt",
                            policy: PasswordPolicy = DEFAULT_POLICY) -> str:
    """A new random password for an employee, to change at its next login (its sessions end); returned once."""
    require_manager(actor)
    _check_managed(session, actor, employee)
    password = generate_password(policy)
    employee.set_password(password, method=method)
    employee.must_change_password = True
    employee.failed_logins = 0
    employee.locked_until = None
    record(session, actor, "reset_password", "user", [employee.id],
           message("audit.employee.reset_password", username=employee.username))
    session.flush()
    return password
