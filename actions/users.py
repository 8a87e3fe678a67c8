"""Staff and customer logins: create, deactivate, reset passwords; applicants register themselves."""
from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from actions import ActionResult, DomainError, require_role
from actions.audit import record
from actions.texts import label_param, message
from actions.auth import end_sessions
from actions.passwords import DEFAULT_POLICY, PasswordPolicy, PasswordRefused
from actions.phone_login import display_phone
from models import APPLICANT, ROLES, Company, User


def generate_password(policy: PasswordPolicy = DEFAULT_POLICY) -> str:
    """A random initial password, following the policy, that the user must change at first login."""
    return policy.generate()


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
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> User:
    """Create a login; it must change its password at first login unless told otherwise."""
    require_role(actor, {"admin"})
    username = (username or "").strip()
    if not username:
        raise DomainError(_l("The username is required."))
    if role not in ROLES:
        raise DomainError(_l("Unknown role %(role)s.", role=role))
    policy.check(password, field="initial_password")
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
    record(session, actor, "create", "user", [user.id], message("audit.user.create", username=username,
                                                                  role=label_param("user_role", role)))
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
    session: Session, actor: User, users: list[User], method: str = "scrypt",
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> dict[str, str]:
    """Give each user a new random password (following the policy) to change at next login; returns them once."""
    require_role(actor, {"admin"})
    passwords = {}
    for user in users:
        password = generate_password(policy)
        user.set_password(password, method=method)
        user.must_change_password = True
        user.failed_logins = 0
        user.locked_until = None
        passwords[user.username] = password
    record(session, actor, "reset_password", "user", [u.id for u in users])
    session.flush()
    return passwords


USERNAME_MAX = 64


def username_taken(session: Session, username: str, other_than: int | None = None) -> bool:
    """Whether another login (not `other_than`) has `username` in any letter case, or in the form a reader
    takes for it (NFKC: full-width ｂｉｌｌ reads as bill)."""
    names = {username.lower(), unicodedata.normalize("NFKC", username).lower()}
    query = select(User.id).where(func.lower(User.username).in_(names))
    if other_than is not None:
        query = query.where(User.id != other_than)
    return session.scalar(query.limit(1)) is not None


def insert_login(session: Session, user: User, refused: type[PasswordRefused]) -> None:
    """Insert a new login; its username taken a moment ago by another request (the unique index, after
    check_new_username) is refused as check_new_username refuses it."""
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise refused(_l("The username %(name)s is taken: choose another.", name=user.username),
                      field="username") from None


def check_new_username(session: Session, username: str | None, refused: type[PasswordRefused]) -> str:
    """A new login's username, stripped: given, at most USERNAME_MAX printable characters without spaces,
    and not taken (case-insensitively); else `refused(message, field="username")` (a DomainError whose
    `field` names the form field, as PasswordRefused and EmployeeRefused do)."""
    username = (username or "").strip()
    if not username:
        raise refused(_l("Choose a username."), field="username")
    if len(username) > USERNAME_MAX or any(c.isspace() or not c.isprintable() for c in username):
        raise refused(_l("The username has at most %(n)s characters, without spaces.", n=USERNAME_MAX),
                      field="username")
    if username_taken(session, username):
        raise refused(_l("The username %(name)s is taken: choose another.", name=username), field="username")
    return username


def register_applicant(
    session: Session, username: str | None, password: str | None, confirm: str | None, phone: str,
    policy: PasswordPolicy = DEFAULT_POLICY, method: str = "scrypt",
) -> User:
    """申请开通 from the login page: a visitor's own login, with no company until an admin approves
    their application. `phone` is already normalized (actions.phone_login.normalize_phone)."""
    username = check_new_username(session, username, PasswordRefused)
    policy.check(password or "", field="password")
    if password != confirm:
        raise PasswordRefused(_l("The two passwords differ."), field="confirm")
    if password.lower() == username.lower():
        raise PasswordRefused(_l("The password may not be the username."), field="password")
    user = User(username=username, role=APPLICANT, company=None, mobile=display_phone(phone), login_phone=phone,
                must_change_password=False, session_version=0)
    user.set_password(password, method=method)
    insert_login(session, user, PasswordRefused)
    record(session, user, "register", "user", [user.id], message("audit.user.register", username=username))
    session.flush()
    return user
