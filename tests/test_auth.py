"""Logins: passwords, lockout, forced password change, safe redirects, sessions that end."""
from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from conftest import PASSWORD, csrf_token, make_user, post
from models import AuditEvent, User, db


def test_login_and_logout(client, login, world):
    answer = login("support")
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/"
    assert client.get("/admin/device/").status_code == 200
    login.logout()
    assert client.get("/admin/device/").status_code == 302


def test_the_username_is_read_in_any_letter_case(client, login, world):
    """Login names are unique in any case (an email typed Bill@… is bill@…); the password is not."""
    answer = login(" Support ")
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/"
    login.logout()
    page = login("SUPPORT", PASSWORD.upper() if PASSWORD.upper() != PASSWORD else PASSWORD + "x",
                 follow=True).get_data(as_text=True)
    assert "Invalid username or password." in page


def test_wrong_password_is_refused_without_saying_which_part(client, login, world):
    page = login("support", "wrong-password", follow=True).get_data(as_text=True)
    assert "Invalid username or password." in page
    page = login("nobody", "wrong-password", follow=True).get_data(as_text=True)
    assert "Invalid username or password." in page
    assert client.get("/admin/").status_code == 302


def test_repeated_failures_lock_the_account_and_say_so(app, client, login, world):
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        login("support", "wrong-password")
    page = login("support", "wrong-password", follow=True).get_data(as_text=True)
    assert "locked for 15 minutes" in page
    page = login("support", PASSWORD, follow=True).get_data(as_text=True)
    assert "locked" in page
    assert client.get("/admin/device/").status_code == 302
    db.session.expire_all()
    user = db.session.get(User, world.users["support"].id)
    assert user.failed_logins == app.config["LOGIN_MAX_FAILURES"] and user.locked_until is not None



def test_a_locked_account_says_until_when_in_the_readers_time_zone(app, client, login, world):
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    until = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=9)
    user = db.session.get(User, world.users["support"].id)
    user.locked_until = until
    db.session.commit()
    post(client, "/language", {"locale": "zh_Hans_CN", "next": "/login"})
    page = html.unescape(login("support", PASSWORD, follow=True).get_data(as_text=True))
    shanghai = until.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M")
    assert f"此账号已被锁定。请在 {shanghai} (GMT+08:00) 之后重试。" in page
    assert client.get("/admin/device/").status_code == 302

def test_a_successful_login_resets_the_failure_count(client, login, world):
    login("support", "wrong-password")
    login("support")
    db.session.expire_all()
    assert db.session.get(User, world.users["support"].id).failed_logins == 0


def test_login_without_csrf_token_is_refused(client, world):
    answer = client.post("/login", data={"username": "support", "password": PASSWORD})
    assert answer.status_code == 400


def test_must_change_password_reaches_nothing_else(client, login, world):
    make_user("newbie", "tech_support", must_change=True)
    db.session.commit()
    answer = login("newbie")
    assert answer.headers["Location"] == "/password"
    for url in ("/admin/", "/admin/device/", "/admin/package/"):
        answer = client.get(url)
        assert answer.status_code == 302 and answer.headers["Location"] == "/password", url
    answer = post(client, "/password", {"current": PASSWORD, "new": "a-much-better-one", "confirm": "a-much-better-one"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/"
    assert client.get("/admin/device/").status_code == 200


@pytest.mark.parametrize("new,confirm,message", [
    ("short", "short", "at least 10 characters"),
    ("a-long-password-1", "a-long-password-2", "differ"),
    (PASSWORD, PASSWORD, "must differ from the current one"),
])
def test_weak_or_unconfirmed_new_passwords_are_refused(client, login, world, new, confirm, message):
    login("support")
    page = post(client, "/password", {"current": PASSWORD, "new": new, "confirm": confirm},
                follow_redirects=True).get_data(as_text=True)
    assert message in page
    login.logout()
    assert login("support").headers["Location"] == "/admin/"


def test_changing_the_password_ends_other_sessions(app, web_app, client, login, world):
    other = web_app.test_client()
    from conftest import Login

    Login(other)("support")
    assert other.get("/admin/device/").status_code == 200
    login("support")
    post(client, "/password", {"current": PASSWORD, "new": "brand-new-secret", "confirm": "brand-new-secret"})
    assert client.get("/admin/device/").status_code == 200
    assert other.get("/admin/device/").status_code == 302


def test_a_captured_cookie_stops_working_after_logout(web_app, client, login, world):
    login("support")
    stolen = client.get_cookie("session").value
    login.logout()
    thief = web_app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/admin/device/").status_code == 302


def test_deactivated_users_cannot_log_in(client, login, world):
    world.users["support"].active = False
    db.session.commit()
    page = login("support", follow=True).get_data(as_text=True)
    assert "deactivated" in page


CLOSED = "Your company&#39;s account is not active. Ask an administrator."


@pytest.mark.parametrize("status", ["disabled", "pending", "rejected"])
@pytest.mark.parametrize("closed, username", [("acme", "customer"), ("acme", "north"), ("north", "north")])
def test_users_of_a_company_that_is_not_active_cannot_log_in(client, login, world, status, closed, username):
    """The company's users and its subsidiaries' are refused; the password was right, so no failure is counted."""
    getattr(world, closed).status = status
    db.session.commit()
    answer = login(username, follow=True)
    assert CLOSED in answer.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302
    user = db.session.scalar(select(User).where(User.username == username))
    db.session.refresh(user)
    assert user.failed_logins == 0 and user.last_login_at is None


def test_a_wrong_password_for_a_disabled_company_says_only_that_it_is_wrong(client, login, world):
    world.acme.status = "disabled"
    db.session.commit()
    page = login("customer", "not-the-password", follow=True).get_data(as_text=True)
    assert "Invalid username or password." in page and CLOSED not in page


def test_a_signed_in_session_ends_when_its_company_is_disabled(client, login, world):
    login("customer")
    assert client.get("/admin/device/").status_code == 200
    world.south.status = "disabled"  # a subsidiary closed: the group's administrator stays in
    db.session.commit()
    assert client.get("/admin/device/").status_code == 200
    world.acme.status = "disabled"
    db.session.commit()
    answer = client.get("/admin/device/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    world.acme.status = "active"  # enabled again: the same cookie works again (it was never more than refused)
    db.session.commit()
    assert client.get("/admin/device/").status_code == 200


def test_staff_and_other_tenants_are_not_affected(client, login, world):
    world.acme.status = "disabled"
    db.session.commit()
    for username in ("admin", "globex"):
        assert login(username).headers["Location"] == "/admin/", username
        login.logout()


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "http:/evil.example"])
def test_next_only_redirects_inside_the_site(client, world, target):
    token = csrf_token(client)
    answer = client.post("/login?next=" + target, data={"username": "support", "password": PASSWORD,
                                                         "csrf_token": token})
    assert answer.headers["Location"] == "/admin/"


def test_next_inside_the_site_is_followed(client, world):
    token = csrf_token(client)
    answer = client.post("/login?next=/admin/device/%3Fsearch%3DAC", data={
        "username": "support", "password": PASSWORD, "csrf_token": token})
    assert answer.headers["Location"] == "/admin/device/?search=AC"


def test_session_cookie_and_security_headers(client, login, world):
    answer = login("support")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/admin/")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_logins_are_audited(client, login, world):
    login("support", "wrong-password")
    login("support")
    actions = [e.action for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["login_failed", "login"]


def test_secret_key_is_required_outside_development(database_url):
    from app import create_app

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"ENV_NAME": "production", "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": ""})



def _locked_error():
    import sqlite3

    from sqlalchemy.exc import OperationalError

    return OperationalError("UPDATE app_user …", {}, sqlite3.OperationalError("database is locked"))


def test_a_sign_in_that_meets_a_locked_database_says_so_instead_of_failing(client, login, world, monkeypatch):
    """SQLite's busy timeout during a sign-in (many people signing in at once): a message and the login page
    again, never a 500."""
    import admin_views.auth as auth_views

    def locked(*args, **kwargs):
        raise _locked_error()

    monkeypatch.setattr(auth_views, "authenticate", locked)
    answer = login("finance")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")
    page = client.get("/login").get_data(as_text=True)
    assert "The database is busy with another change; nothing was changed. Try again in a moment." in page


def test_a_read_that_meets_a_locked_database_answers_503_and_other_errors_still_raise(app):
    from sqlalchemy.exc import OperationalError

    with app.test_request_context("/payments/pay/X/wechat", method="GET"):
        busy = app.handle_user_exception(_locked_error())
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
    with app.test_request_context("/login", method="POST"), pytest.raises(OperationalError):
        app.handle_user_exception(OperationalError("SELECT 1", {}, Exception("no such table: nowhere")))


def test_a_flask_command_in_an_unconfigured_checkout_runs_as_make_run_does(monkeypatch):
    """`flask --app app ledger-check` after `make run` (nothing set): development, on the embedded database.
    A server started the same way, or a command that names a database, still needs SECRET_KEY."""
    import click

    from app import create_app

    for name in ("ENV_NAME", "DATABASE_URL", "SECRET_KEY", "RENEWDESK_ENV_NAME", "RENEWDESK_DATABASE_URL",
                 "RENEWDESK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with click.Context(click.Command("ledger-check")):
        app = create_app()
    assert app.config["ENV_NAME"] == "development"
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("instance/renewdesk.db")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()  # gunicorn wsgi:app: no command, no default
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db.example/renewdesk")
    with click.Context(click.Command("ledger-check")), pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()
