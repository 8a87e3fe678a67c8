"""Staff and customer logins: create, deactivate, reset passwords."""
from __future__ import annotations

import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import ActionResult, DomainError, require_role
from actions.audit import record
from actions.auth import end_sessions
from models import ROLES, Company, User


def generate_password() -> str:
    """A random initial password the user must change at first login."""
    return secrets.token_urlsafe(9)


def create_user(
    session: Session,
    actor: User,
    username: str,
    role: str,
    password: str,
    company: Company | None = None,
    email: str | None = None,
    method: str = "scrypt",
    must_change_password: bool = True,
) -> User:
    """Create a login; it must change its password at first login unless told otherwise."""
    require_role(actor, {"admin"})
    username = (username or "").strip()
    if not username:
        raise DomainError(_l("The username is required."))
    if role not in ROLES:
        raise DomainError(_l("Unknown role %(role)s.", role=role))
    if role == "customer_admin" and company is None:
        raise DomainError(_l("A customer administrator needs a company."))
    if session.scalar(select(User.id).where(User.username == username)):
        raise DomainError(_l("The username %(name)s is taken.", name=username))
    user = User(
        username=username,
        role=role,
        company=company if role == "customer_admin" else None,
        email=email,
        must_change_password=must_change_password,
        session_version=0,
    )
    user.set_password(password, method=method)
    session.add(user)
    session.flush()
    record(session, actor, "create", "user", [user.id], f"username={username} role={role}")
    return user


def set_active(session: Session, actor: User, users: list[User], active: bool) -> ActionResult:
    """Deactivate (ending their sessions) or reactivate users; an admin cannot deactivate themself."""
    require_role(actor, {"admin"})
    changed, refused = [], []
    for user in users:
        if user.id == actor.id and not active:
            refused.append((user.username, _l("you cannot deactivate yourself")))
            continue
        if user.active == active:
            refused.append((user.username, _l("already in that state")))
            continue
        user.active = active
        if not active:
            end_sessions(session, user)
        changed.append(user.username)
    record(
        session, actor, "activate" if active else "deactivate", "user",
        [u.id for u in users if u.username in changed],
    )
    session.flush()
    return ActionResult(tuple(changed), tuple(refused))


def reset_password(
    session: Session, actor: User, users: list[User], method: str = "scrypt"
) -> dict[str, str]:
    """Give each user a new random password to change at next login; returns them once."""
    require_role(actor, {"admin"})
    passwords = {}
    for user in users:
        password = generate_password()
        user.set_password(password, method=method)
        user.must_change_password = True
        user.failed_logins = 0
        user.locked_until = None
        passwords[user.username] = password
    record(session, actor, "reset_password", "user", [u.id for u in users])
    session.flush()
    return passwords
