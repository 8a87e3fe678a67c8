"""Logging in, lockout and password changes."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from actions import DomainError
from actions.audit import record
from actions.texts import message
from actions.passwords import DEFAULT_POLICY, PasswordPolicy, PasswordRefused
from actions.times import format_minute, zone_for
from models import Company, User, path_ids

# Checked against when the username is unknown, so both answers take the same time.
_DUMMY_HASH = generate_password_hash("not-a-password", method="scrypt:1024:8:1")


COMPANY_CLOSED = _l("Your company's account is not active. Ask an administrator.")


class LoginRefused(DomainError):
    """Wrong credentials, a locked or a deactivated account, or a company that is not active."""


def company_open(session: Session, user: User) -> bool:
    """Whether the user's company and every company above it are active (staff and applicants have none).

    A disabled (or pending, rejected) company closes the console to its users and to its subsidiaries'."""
    if user.company_id is None:
        return True
    company = user.company  # the request reads it anyway (scope): no query of its own
    if company is None:
        return False
    if company.status != "active":
        return False
    above = path_ids(company.path)[:-1]
    return not above or session.scalar(select(Company.id).where(
        Company.id.in_(above), Company.status != "active").limit(1)) is None


def may_sign_in(session: Session, user: User) -> bool:
    """Whether `user` may be (or stay) signed in: an active login of an open company."""
    return bool(user.active) and company_open(session, user)


def authenticate(
    session: Session,
    username: str,
    password: str,
    now: datetime,
    max_failures: int = 5,
    lock_minutes: int = 15,
) -> User:
    """Return the user for these credentials, or raise LoginRefused; count failures in the database."""
    # Any letter case (an email typed as Bill@… signs in bill@…): login names are unique in any case
    # (migration 0033's index on lower(username), which this lookup uses).
    user = session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        raise LoginRefused(_l("Invalid username or password."))
    if user.locked_until is not None and user.locked_until > now:
        raise LoginRefused(
            _l(
                "This account is locked after too many failed logins. Try again after %(time)s.",
                # In the reader's time zone (by language: nobody is signed in yet), with its offset.
                time=format_minute(user.locked_until, zone_for(None, get_locale()), pattern="HH:mm (ZZZZ)"),
            )
        )
    if not user.check_password(password):
        # One conditional UPDATE: concurrent failures are all counted.
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(
                failed_logins=User.failed_logins + 1,
                locked_until=case(
                    (User.failed_logins + 1 >= max_failures, now + timedelta(minutes=lock_minutes)),
                    else_=User.locked_until,
                ),
            )
        )
        session.refresh(user)
        record(session, None, "login_failed", "user", [user.id], message("audit.user.login_failed",
                                                                                  username=user.username))
        if user.failed_logins >= max_failures:
            raise LoginRefused(
                _l(
                    "Too many failed logins: this account is locked for %(minutes)s minutes.",
                    minutes=lock_minutes,
                )
            )
        raise LoginRefused(_l("Invalid username or password."))
    if not user.active:
        raise LoginRefused(_l("This account is deactivated. Ask an administrator."))
    if not company_open(session, user):
        raise LoginRefused(COMPANY_CLOSED)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    record(session, user, "login", "user", [user.id])
    session.flush()
    return user


def check_new_password(
    user: User, new_password: str, confirm: str, policy: PasswordPolicy = DEFAULT_POLICY
) -> None:
    """Raise PasswordRefused (naming the field) when the new password breaks the policy, is unconfirmed or unchanged."""
    policy.check(new_password, field="new")
    if new_password != confirm:
        raise PasswordRefused(_l("The two new passwords differ."), field="confirm")
    if new_password.lower() == user.username.lower():
        raise PasswordRefused(_l("The new password may not be the username."), field="new")
    if user.check_password(new_password):
        raise PasswordRefused(_l("The new password must differ from the current one."), field="new")


def change_password(
    session: Session, user: User, current: str, new_password: str, confirm: str, method: str,
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> None:
    """Change the user's own password after checking the current one; ends other sessions."""
    if not user.check_password(current):
        raise PasswordRefused(_l("The current password is wrong."), field="current")
    check_new_password(user, new_password, confirm, policy)
    user.set_password(new_password, method=method)
    user.must_change_password = False
    record(session, user, "change_password", "user", [user.id])
    session.flush()


def end_sessions(session: Session, user: User) -> None:
    """Invalidate every session cookie of `user` (logout everywhere)."""
    session.execute(
        update(User).where(User.id == user.id).values(session_version=User.session_version + 1)
    )
