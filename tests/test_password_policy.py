"""The configurable password policy: one rule checked by change-password, registration and user
creation, described before typing, followed by generated passwords; seed 004's "4–16 letters or
digits" is three settings."""
from __future__ import annotations

import pytest
from flask_babel import force_locale

from actions.passwords import PasswordPolicy, PasswordRefused
from actions.users import create_user, generate_password
from conftest import PASSWORD, make_user, post
from models import User, db

SEED_004 = {"PASSWORD_MIN_LENGTH": 4, "PASSWORD_MAX_LENGTH": 16, "PASSWORD_ALLOWED": "letters,digits"}


def test_seed_004_letters_or_digits_of_4_to_16():
    policy = PasswordPolicy.from_config(SEED_004)
    for good in ("abcd", "1234", "Ab12cd34", "a" * 16):
        policy.check(good)
    for bad, words in (("abc", "at least 4"), ("a" * 17, "at most 16"), ("ab-12", "not allowed: “-”"),
                       ("密码1234", "not allowed"), ("ab 12", "not allowed")):
        with pytest.raises(PasswordRefused) as caught:
            policy.check(bad)
        assert words in str(caught.value), (bad, str(caught.value))


def test_required_classes():
    policy = PasswordPolicy.from_config({"PASSWORD_MIN_LENGTH": 8, "PASSWORD_REQUIRE": "upper, digits"})
    policy.check("Abcdefg1")
    with pytest.raises(PasswordRefused, match="capital letters"):
        policy.check("abcdefg1")
    with pytest.raises(PasswordRefused, match="digits"):
        policy.check("Abcdefgh")


def test_the_default_policy_is_ten_characters_of_anything_printable():
    policy = PasswordPolicy.from_config({})
    policy.check("correct horse 42")
    with pytest.raises(PasswordRefused, match="at least 10"):
        policy.check("short")
    with pytest.raises(PasswordRefused, match="control characters"):
        policy.check("line\nbreak-password")


@pytest.mark.parametrize("config", [
    {"PASSWORD_MIN_LENGTH": 0},
    {"PASSWORD_MIN_LENGTH": 20, "PASSWORD_MAX_LENGTH": 10},
    {"PASSWORD_ALLOWED": "emoji"},
    {"PASSWORD_ALLOWED": "digits", "PASSWORD_REQUIRE": "letters"},
])
def test_a_wrong_setting_stops_the_app_naming_it(config):
    with pytest.raises(ValueError, match="PASSWORD_"):
        PasswordPolicy.from_config(config)


def test_the_rule_is_described_in_the_users_language(app):
    policy = PasswordPolicy.from_config(SEED_004)
    assert policy.describe() == "Password: 4 to 16 characters; only digits, letters."
    with force_locale("zh_Hans_CN"):
        assert policy.describe() == "密码：4 至 16 位；只能包含数字、字母。"
    with force_locale("vi"):
        assert "Password" not in policy.describe()


@pytest.mark.parametrize("config", [SEED_004, {}, {"PASSWORD_MIN_LENGTH": 20, "PASSWORD_MAX_LENGTH": 30,
                                                   "PASSWORD_REQUIRE": "upper,lower,digits,symbols"}])
def test_generated_passwords_follow_the_policy(config):
    policy = PasswordPolicy.from_config(config)
    for _ in range(30):
        policy.check(generate_password(policy))


def test_user_creation_checks_the_policy(app, world):
    admin = db.session.get(User, world.users["admin"].id)
    policy = PasswordPolicy.from_config(SEED_004)
    with pytest.raises(PasswordRefused) as caught:
        create_user(db.session, admin, "newstaff", "finance", "with-dash", policy=policy)
    assert caught.value.field == "initial_password"
    assert create_user(db.session, admin, "newstaff", "finance", "abc123", policy=policy).id


@pytest.fixture
def seed_004_policy(web_app, monkeypatch):
    for key, value in SEED_004.items():
        monkeypatch.setitem(web_app.config, key, value)


def test_change_password_shows_the_rule_before_typing_and_keeps_fields_on_error(
        client, login, world, seed_004_policy):
    login("support")
    page = client.get("/password", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "密码：4 至 16 位；只能包含数字、字母。" in page
    answer = post(client, "/password", {"current": PASSWORD, "new": "bad-one!", "confirm": "bad-one!"},
                  headers={"Accept-Language": "zh-CN"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'value="bad-one!"' in page  # the new password is kept, with the reason under it
    assert 'is-invalid' in page and f'value="{PASSWORD}"' not in page  # the current one is not echoed
    answer = post(client, "/password", {"current": PASSWORD, "new": "abc123", "confirm": "abc123"})
    assert answer.status_code == 302
    login.logout()
    assert login("support", "abc123").headers["Location"] == "/admin/"


def test_the_admin_user_form_shows_the_rule_and_refuses_a_password_outside_it(client, login, world, seed_004_policy):
    login("admin")
    page = client.get("/admin/user/new/").get_data(as_text=True)
    assert "Password: 4 to 16 characters; only digits, letters." in page
    post(client, "/admin/user/new/", {"username": "typed", "role": "finance", "initial_password": "has space"})
    assert db.session.query(User).filter_by(username="typed").count() == 0


def test_reset_passwords_follow_the_policy(client, login, world, seed_004_policy):
    target = make_user("resetme", "finance")
    db.session.commit()
    login("admin")
    page = post(client, "/admin/user/action/", {"action": "reset_password", "rowid": str(target.id)},
                follow_redirects=True).get_data(as_text=True)
    import re

    password = re.search(r"resetme \S+ ([A-Za-z0-9]+)", page) or re.search(r"\(shown once\): ([A-Za-z0-9]+)", page)
    assert password, page[:2000]
    PasswordPolicy.from_config(SEED_004).check(password.group(1))
