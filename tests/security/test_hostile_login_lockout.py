"""Guessing passwords: the account locks after LOGIN_MAX_FAILURES wrong ones, says so, stays locked
against the right password, and the count lives in the database (every instance sees it)."""
from __future__ import annotations

from datetime import timedelta

from conftest import PASSWORD, Login, make_app
from models import User, db, utcnow

LOCKED = "this account is locked"


def _page(answer) -> str:
    return answer.get_data(as_text=True)


def _user(world, name) -> User:
    db.session.expire_all()
    return db.session.get(User, world.users[name].id)


def test_wrong_passwords_until_lockout_then_the_right_one_is_refused(web_app, client, login, world):
    limit = web_app.config["LOGIN_MAX_FAILURES"]
    for attempt in range(1, limit):
        page = _page(login("finance", f"guess-{attempt}"))
        assert "Invalid username or password." in page and "locked" not in page
    page = _page(login("finance", "guess-last"))
    assert f"locked for {web_app.config['LOGIN_LOCK_MINUTES']} minutes" in page

    answer = login("finance", PASSWORD)
    assert answer.status_code == 200 and LOCKED in _page(answer).lower()
    assert client.get("/admin/").status_code == 302  # not logged in
    user = _user(world, "finance")
    assert user.failed_logins >= limit and user.locked_until > utcnow() + timedelta(minutes=10)


def test_the_lock_holds_across_app_instances_on_the_same_database(database_url, world):
    """Two instances (two gunicorn workers, two machines): failures on either add up, and the lock
    that follows refuses the right password on both."""
    first, second = make_app(database_url), make_app(database_url)
    clients = [first.test_client(), second.test_client()]
    logins = [Login(c) for c in clients]
    limit = first.config["LOGIN_MAX_FAILURES"]
    for attempt in range(limit):
        logins[attempt % 2]("sales", f"guess-{attempt}")  # alternate instances
    assert _user(world, "sales").failed_logins == limit

    for client, log_in in zip(clients, logins):
        answer = log_in("sales", PASSWORD)
        assert LOCKED in _page(answer).lower()
        assert client.get("/admin/").status_code == 302
    for instance in (first, second):
        with instance.app_context():
            db.engine.dispose()


def test_the_lock_does_not_spill_over_to_other_accounts(client, login, world):
    for attempt in range(client.application.config["LOGIN_MAX_FAILURES"]):
        login("sales", f"guess-{attempt}")
    assert login("finance").headers["Location"] == "/admin/"


def test_an_expired_lock_lets_the_right_password_in(client, login, world):
    user = world.users["sales"]
    user.failed_logins = client.application.config["LOGIN_MAX_FAILURES"]
    user.locked_until = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert login("sales").headers["Location"] == "/admin/"
    assert _user(world, "sales").failed_logins == 0


def test_unknown_and_padded_usernames_do_not_get_in_or_lock_anyone(client, login, world):
    for name in ("nobody", " sales ", "SALES", "sales' OR '1'='1"):
        answer = login(name, "guess")
        assert answer.status_code in (200, 400), name
        assert client.get("/admin/").status_code == 302, name
    # " sales " (stripped) and "SALES" (login names are one in any letter case) are the same login.
    assert _user(world, "sales").failed_logins <= 2
