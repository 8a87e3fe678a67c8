"""A price that was shown is applied exactly, or not at all.

A confirmation form carries `quote_digest(payload, secret)`: an HMAC-SHA256, keyed with the
app's SECRET_KEY, of the canonical JSON of everything the action will apply and charge (ids,
levels, terms, amounts). On submit the action computes the payload again and `check_quote`
refuses with QuoteChanged, before anything is written, when the digest differs: the form was
changed after the price was shown, or the rows or prices changed meanwhile.
"""
from __future__ import annotations

import hashlib
import hmac
import json

from flask_babel import lazy_gettext as _l

from actions import DomainError

FIELD = "quote_hash"


class QuoteChanged(DomainError):
    """The quote computed on submit is not the one the confirmation showed."""


def quote_digest(payload, secret: str) -> str:
    """The HMAC-SHA256 hex digest of `payload` (JSON-serialisable; dates and Decimals as text)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def check_quote(expected: str | None, payload, secret: str, message=None) -> None:
    """Raise QuoteChanged unless `expected` is the digest of `payload` (a missing digest never matches)."""
    if not hmac.compare_digest(str(expected or ""), quote_digest(payload, secret)):
        raise QuoteChanged(message or _l("The prices changed since the page was shown: check the new price and "
                                         "send the form again. Nothing was done."))
