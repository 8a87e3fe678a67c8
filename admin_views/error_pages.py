"""400, 403, 404, 405, 413 and 500 pages: translated, inside the console layout for a signed-in user (the plain
sign-in layout otherwise), each with a way back (the previous page when it was ours, and home)."""
from __future__ import annotations

import logging

from flask import Flask, render_template, request, url_for
from flask_admin import Admin
from flask_admin.helpers import is_safe_url
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from models import db

log = logging.getLogger(__name__)

PAGES = {
    400: (_l("The request could not be read"),
          _l("Go back, reload the page and try again.")),
    "csrf": (_l("The form has expired"),
             _l("The page was open too long, or you signed in again meanwhile: go back, reload the page and "
                "send the form again. Nothing was changed.")),
    405: (_l("This address cannot be opened directly"),
          _l("It answers a form. Go back to the page the form is on.")),
    413: (_l("The file is too large"),
          _l("Nothing was uploaded. Send a smaller file (see the limit on the upload page).")),
    403: (_l("You may not open this page"),
          _l("Your role does not give access to this page. If you need it, ask an administrator.")),
    404: (_l("Page not found"),
          _l("This page does not exist, or what it showed was removed or is not in your companies.")),
    500: (_l("Something went wrong"),
          _l("The error was recorded. Please try again in a moment; if it happens again, tell your "
             "administrator what you were doing.")),
}


def _back_url() -> str | None:
    """The page the user came from, when it is one of ours and not this one."""
    referrer = request.referrer
    if referrer and referrer != request.url and is_safe_url(referrer):
        return referrer
    return None


def _signed_in() -> bool:
    return bool(current_user and current_user.is_authenticated and not current_user.must_change_password)


def render_error(admin: Admin, code: int, page_key: int | str | None = None):
    """The error page for `code` (PAGES[page_key], by default PAGES[code]) with that status."""
    title, message = PAGES[page_key or code]
    # The language menu leads home, not back to the failing URL (which it would echo into the page).
    context = {"code": code, "title": str(title), "message": str(message), "back_url": _back_url(),
               "reason": "CSRF" if page_key == "csrf" else None,  # for scripts and tests: why the form was refused
               "language_next": url_for("admin.index")}
    if _signed_in():
        page = admin.index_view.render("errors/console.html", **context)
    else:
        page = render_template("errors/public.html", home_url=url_for("auth.login"), **context)
    return page, code


def register_error_pages(app: Flask, admin: Admin) -> None:
    """Answer 403, 404 and 500 with our pages."""

    def client_error(exc: HTTPException):
        return render_error(admin, exc.code, "csrf" if isinstance(exc, CSRFError) else None)

    def server_error(exc):
        db.session.rollback()  # nothing half-done is shown or kept, and the layout can read the database
        try:
            return render_error(admin, 500)
        except Exception:  # the page itself failed (the database is down): say it in a few words
            log.exception("the 500 page could not be rendered")
            title, message = PAGES[500]
            return (f"<!DOCTYPE html><title>500</title><h1>{escape(str(title))}</h1><p>{escape(str(message))}</p>"
                    f'<p><a href="/">Renewdesk</a></p>', 500)

    for code in (400, 403, 404, 405, 413):  # Werkzeug's own pages are English ("The CSRF token has expired.")
        app.register_error_handler(code, client_error)
    app.register_error_handler(500, server_error)
