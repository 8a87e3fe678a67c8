"""One result per submitted form: the idempotency key a form carries (a hidden random token made
when the page is drawn) is claimed in the transaction that applies the form.

The claim is an INSERT guarded by the unique index (user, key): a second submit of the same
form, even one racing the first on another worker, fails that INSERT (PostgreSQL waits for the
first transaction and then reports the conflict; SQLite's writers are serialised) and is sent
to what the first one did. A form refused with an error is rolled back, key included, so it can
be sent again. A request without a key (scripts, older pages) is applied without the guard.
"""
from __future__ import annotations

import re
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from actions import DomainError
from models import IdempotencyKey, User, utcnow

FIELD = "idempotency_key"
KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


class AlreadySubmitted(DomainError):
    """This form was applied before; `result_url` shows what it did (empty when unknown)."""

    flash_category = "info"

    def __init__(self, result_url: str):
        super().__init__(_l("This form was already sent; here is what it did. Nothing was done twice."))
        self.result_url = result_url


def new_key() -> str:
    """A fresh key for a form being drawn (32 URL-safe characters, 192 bits)."""
    return secrets.token_urlsafe(24)


def claim(session: Session, actor: User, key: str | None, purpose: str) -> IdempotencyKey | None:
    """Claim `key` for `actor` in the current transaction; None when no key was sent.

    Raises AlreadySubmitted when the key was used before (by any form of this user) and
    DomainError when it is not a key this application makes.
    """
    if not key:
        return None
    if not KEY.fullmatch(key):
        raise DomainError(_l("The form's one-time key is not valid; reload the page and send it again."))
    row = IdempotencyKey(user_id=actor.id, key=key, purpose=purpose[:40], result_url="", created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        earlier = session.scalar(select(IdempotencyKey.result_url).where(
            IdempotencyKey.user_id == actor.id, IdempotencyKey.key == key))
        raise AlreadySubmitted(earlier or "") from None
    return row


def remember(claimed: IdempotencyKey | None, result_url: str) -> None:
    """Keep where the first submit of the form led, for the later ones."""
    if claimed is not None:
        claimed.result_url = result_url[:500]
