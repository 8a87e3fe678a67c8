"""Mail from views, after the commit: templates/mail/<name>.txt and .html rendered in the recipient's language."""
from __future__ import annotations

import smtplib
from collections.abc import Sequence

from flask import current_app, has_request_context, render_template
from flask_babel import force_locale, get_locale
from flask_mail import BadHeaderError, Message

from models import LOCALES


def request_locale() -> str:
    """The language of the current request (the user's choice, else the browser's), else English."""
    locale = str(get_locale()) if has_request_context() else ""
    return locale if locale in LOCALES else "en"


def user_locale(user) -> str:
    """A user's chosen language, else the default one (not the sender's: the mail is for the user)."""
    locale = getattr(user, "locale", None)
    return locale if locale in LOCALES else current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def send_mail(template: str, recipients: Sequence[str], locale: str, subject, **context) -> bool:
    """Render mail/<template>.txt and .html and the (lazy) subject in `locale` and send to `recipients`.

    False (and logged) when sending fails: the caller has committed and tells the user so.
    """
    recipients = [r for r in dict.fromkeys(recipients) if r]
    if not recipients:
        return False
    with force_locale(locale):
        message = Message(
            subject=str(subject),
            recipients=recipients,
            body=render_template(f"mail/{template}.txt", **context),
            html=render_template(f"mail/{template}.html", **context),
        )
    try:
        current_app.extensions["mail"].send(message)
    except (smtplib.SMTPException, OSError, BadHeaderError):
        current_app.logger.exception("mail %s to %s failed", template, ", ".join(recipients))
        return False
    return True
