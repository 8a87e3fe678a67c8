"""Mail from views through the outbox (actions.outbox): queued before the commit, sent right after it.

A view queues its mail in the transaction of its change (`queue`), commits, then calls `send_now`
with the ids and flashes what happened to each mail (`flash_mail`): sent, still queued, or failed
with the reason, which an admin can retry from the mail outbox page.
"""
from __future__ import annotations

from collections.abc import Sequence

from flask import current_app, flash, has_request_context
from flask_admin.actions import action
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from actions import ActionResult, DomainError
from actions.outbox import MailOutcome, deliver, queue_mail, render_mail, retry_mails
from admin_views.base import ScopedModelView, badge, flash_result
from models import LOCALES, MAIL_STATUSES, OutboxMail, db


def request_locale() -> str:
    """The language of the current request (the user's choice, else the browser's), else English."""
    locale = str(get_locale()) if has_request_context() else ""
    return locale if locale in LOCALES else "en"


def user_locale(user) -> str:
    """A user's chosen language, else the default one (not the sender's: the mail is for the user)."""
    locale = getattr(user, "locale", None)
    return locale if locale in LOCALES else current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def queue(key: str, template: str, recipients: Sequence[str], locale: str, subject, sensitive: bool = False,
          **context) -> int | None:
    """Queue mail/<template> in `locale` in this request's transaction (before its commit); the outbox id."""
    return queue_mail(db.session, key, recipients, render_mail(template, locale, subject, **context), sensitive)


def send_now(ids: Sequence[int | None]) -> list[MailOutcome]:
    """Right after the commit: send these queued mails and say where each stands (cron sends what is left)."""
    return deliver(db.session, current_app.extensions["mail"], ids, commit=db.session.commit)


def flash_mail(outcomes: Sequence[MailOutcome]) -> None:
    """One flash per outcome kind, saying what happened: sent, queued, or failed with the reason."""
    def who(group):
        return "; ".join(", ".join(o.recipients) for o in group)

    sent = [o for o in outcomes if o.sent]
    failed = [o for o in outcomes if o.failed]
    queued = [o for o in outcomes if not o.sent and not o.failed]
    if sent:
        flash(_("Email sent to %(recipients)s.", recipients=who(sent)), "success")
    if queued:
        flash(_("Email queued for %(recipients)s; it will be sent shortly.", recipients=who(queued)), "info")
    if failed:
        flash(_("Email to %(recipients)s failed: %(reasons)s. An administrator can retry it in the mail outbox.",
                recipients=who(failed), reasons="; ".join(dict.fromkeys(o.error for o in failed))), "warning")


def _status_cell(view, context, model, name):
    kind = {"sent": "success", "failed": "danger", "queued": "secondary", "sending": "info"}[model.status]
    cell = badge(str(MAIL_STATUSES[model.status]), kind)
    if model.status == "failed" and model.last_error:
        cell += Markup(" ") + model.last_error
    return cell


class OutboxMailView(ScopedModelView):
    """The mail outbox (admins): what was queued, sent or failed and why; failed mail can be retried."""

    roles = frozenset({"admin"})
    can_create = can_edit = can_delete = False
    column_list = ("created_at", "recipients", "subject", "language", "status", "attempts", "sent_at")
    column_details_list = ("created_at", "dedupe_key", "recipients", "subject", "language", "status", "attempts",
                           "last_error", "claimed_at", "sent_at")
    column_default_sort = ("id", True)
    column_filters = ("status", "created_at", "sent_at", "recipients")
    column_searchable_list = ("recipients", "subject")
    column_choices = {"status": list(MAIL_STATUSES.items())}
    column_formatters = {"status": _status_cell}
    column_labels = {
        "created_at": _l("Queued at"), "recipients": _l("To"), "subject": _l("Subject"), "language": _l("Language"),
        "status": _l("Status"), "attempts": _l("Attempts"), "sent_at": _l("Sent at"), "last_error": _l("Last error"),
        "claimed_at": _l("Last attempt"), "dedupe_key": _l("Key"),
    }

    @action("retry", _l("Retry"), _l("Send the selected failed mails again?"))
    def action_retry(self, ids):
        rows = self.scoped_rows(ids)
        try:
            result = retry_mails(db.session, current_user, rows)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return
        retried = list(result.extra["ids"])
        refused = tuple(self.refused_ids(ids, rows)) + result.refused
        db.session.commit()
        outcomes = send_now(retried)
        flash_result(ActionResult(refused=refused), "")
        flash_mail(outcomes)


def register(admin, system) -> None:
    admin.add_view(OutboxMailView(OutboxMail, name=_l("Mail outbox"), category=system))
