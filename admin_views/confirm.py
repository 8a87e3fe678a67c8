"""Server-rendered confirmation of money moves and irreversible actions.

The first POST of such an action changes nothing: it renders `renewdesk/confirm.html`, which says
exactly what will happen (the amount and the company, the records to delete, the devices to
suspend) and posts the same form again with a confirmation token. Only a POST carrying a token
signed for the same user, the same action, the same rows and the same form fields carries it out:
a confirmed "renew for 1 month" cannot be replayed as 12 months by editing a hidden field. The
token is an itsdangerous signature (app secret, one hour) over a digest of the action, the row ids
and the posted fields; the form's CSRF token is checked app-wide as for any form.

    if not is_confirmed("recharge_review.approve", [application.id]):
        return ask(view, Confirmation(title, summary), "recharge_review.approve", [application.id], back)
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from flask import current_app, flash, request
from flask_babel import gettext as _
from flask_login import current_user
from itsdangerous import BadData, URLSafeTimedSerializer

FIELD = "confirm_token"
SALT = "renewdesk-confirm"
MAX_AGE_SECONDS = 3600
ITEMS_SHOWN = 200


@dataclass(frozen=True)
class Confirmation:
    """What the confirmation page says: a title, the sentence naming what will happen, the records
    concerned, and a note on the consequences."""

    title: str
    summary: str
    items: Sequence[str] = ()
    note: str = ""
    confirm_label: str = ""
    refused: Sequence[str] = field(default_factory=tuple)  # submitted rows that will not be touched, and why


def posted_fields(form=None) -> list[tuple[str, str]]:
    """The submitted form's fields that the confirmation page posts back (all but the two tokens)."""
    form = form if form is not None else request.form
    return [(k, v) for k, v in form.items(multi=True) if k not in ("csrf_token", FIELD)]


def _digest(purpose: str, ids: Iterable, fields: Iterable[tuple[str, str]]) -> str:
    clean = sorted({str(i).strip() for i in ids if str(i).strip()})
    pairs = sorted(f"{k}={v}" for k, v in fields)
    return hashlib.sha256("\n".join([purpose, ",".join(clean), *pairs]).encode()).hexdigest()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def confirm_token(purpose: str, ids: Iterable, fields: Iterable[tuple[str, str]] | None = None) -> str:
    """A token that confirms `purpose` on exactly these ids with these form fields (by default the
    submitted ones), for the signed-in user, for an hour."""
    fields = posted_fields() if fields is None else fields
    return _serializer().dumps({"d": _digest(purpose, ids, fields), "u": current_user.get_id()})


def is_confirmed(purpose: str, ids: Iterable, form=None, fields: Iterable[tuple[str, str]] | None = None) -> bool:
    """Whether the submitted form carries a valid token for `purpose` on exactly these ids and fields.

    A token that is present but wrong (forged, expired, another action, other rows, a field changed)
    is flashed, so the user knows why the confirmation page shows again."""
    form = form if form is not None else request.form
    token = form.get(FIELD, "")
    if not token:
        return False
    try:
        data = _serializer().loads(token, max_age=MAX_AGE_SECONDS)
    except BadData:
        data = None
    fields = posted_fields(form) if fields is None else fields
    if data == {"d": _digest(purpose, ids, fields), "u": current_user.get_id()}:
        return True
    flash(_("The confirmation does not match this action any more; nothing was changed. Check and confirm again."),
          "error")
    return False


def ask(view, confirmation: Confirmation, purpose: str, ids: Iterable, back_url: str, action_url: str | None = None,
        fields: Sequence[tuple[str, str]] | None = None):
    """The confirmation page: the same form posted again (its fields kept hidden) with a token."""
    if fields is None:
        fields = posted_fields()
    items = list(confirmation.items)
    return view.render(
        "renewdesk/confirm.html", confirmation=confirmation, items=items[:ITEMS_SHOWN],
        more=max(len(items) - ITEMS_SHOWN, 0), fields=fields, token=confirm_token(purpose, ids, fields),
        action_url=action_url or request.full_path.rstrip("?"), back_url=back_url,
        confirm_label=confirmation.confirm_label or _("Confirm"),
    )
