"""Phone verification at login through the test client, attacker cases included: the password alone
reaches nothing while verification is pending, a captcha cannot be replayed, codes cannot be
brute-forced, requests without a CSRF token are refused, a pending login expires."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

import admin_views.auth as auth_views
from actions.sms import test_outbox
from conftest import PASSWORD, csrf_token, make_user, post
from models import AuditEvent, CaptchaChallenge, PhoneCode, User, db, utcnow

CAPTCHA = "AB3K"
PHONE = "13800138000"
E164 = "+8613800138000"


@pytest.fixture
def verifying(web_app, monkeypatch):
    """Staff must verify a phone; SMS go to the in-memory test backend; captchas all read AB3K."""
    monkeypatch.setitem(web_app.config, "PHONE_VERIFICATION_STAFF", True)
    monkeypatch.setitem(web_app.config, "SMS_BACKEND", "test")
    monkeypatch.setitem(web_app.config, "CAPTCHA_TEST_ANSWER", CAPTCHA)
    test_outbox.clear()
    yield
    test_outbox.clear()


def _last_code() -> str:
    return re.search(r"\b(\d{6})\b", test_outbox[-1].text).group(1)


def _send(client, phone: str | None = PHONE, captcha: str = CAPTCHA, **kwargs):
    client.get("/login/verify")  # the page draws (and remembers) a new captcha
    data = {"step": "send", "send-captcha": captcha}
    if phone is not None:
        data["send-phone"] = phone
    return post(client, "/login/verify", data, **kwargs)


def _verify(client, code: str, **kwargs):
    return post(client, "/login/verify", {"step": "verify", "verify-code": code}, **kwargs)


def test_without_the_setting_the_password_is_enough(client, login, world):
    assert login("support").headers["Location"] == "/admin/"


def test_the_password_alone_reaches_nothing_while_verification_is_pending(client, login, world, verifying):
    answer = login("support")
    assert answer.headers["Location"] == "/login/verify"
    for url in ("/admin/", "/admin/device/", "/admin/user/", "/password", "/apply", "/admin/device/?page=2"):
        answer = client.get(url)
        assert answer.status_code == 302 and answer.headers["Location"] == "/login/verify", url
    answer = post(client, "/admin/device/action/", {"action": "suspend", "rowid": "1"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/login/verify"
    with client.session_transaction() as cookie:
        assert "_user_id" not in cookie


def test_customers_are_not_asked_when_only_staff_must_verify(client, login, world, verifying):
    assert login("customer").headers["Location"] == "/admin/"


def test_bind_a_phone_captcha_code_verify_then_the_console(client, login, world, verifying):
    login("support", follow=False)
    page = client.get("/login/verify", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "验证手机" in page and "尚未绑定手机号" in page and "获取验证码" in page and "data:image/png;base64," in page
    answer = _send(client)
    assert answer.status_code == 302 and answer.headers["Location"] == "/login/verify"
    assert test_outbox[-1].phone == E164
    page = client.get("/login/verify").get_data(as_text=True)
    assert "+86 138****8000" in page
    assert client.get("/admin/").headers["Location"] == "/login/verify"  # a sent code is not a login
    answer = _verify(client, _last_code())
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/"
    assert client.get("/admin/device/").status_code == 200
    db.session.expire_all()
    user = db.session.get(User, world.users["support"].id)
    assert user.login_phone == E164 and user.login_phone_verified_at is not None


def test_a_bound_phone_gets_the_code_without_typing_it(client, login, world, verifying):
    user = db.session.get(User, world.users["support"].id)
    user.login_phone = "+84912345678"
    db.session.commit()
    login("support")
    page = client.get("/login/verify").get_data(as_text=True)
    assert "+84 912****5678" in page and 'name="send-phone"' not in page
    _send(client, phone="13900000000")  # a typed number is ignored: the code goes to the bound phone
    assert test_outbox[-1].phone == "+84912345678"
    assert _verify(client, _last_code()).headers["Location"] == "/admin/"


def test_the_next_page_survives_verification(client, world, verifying):
    client.post("/login?next=/admin/device/", data={"username": "support", "password": PASSWORD,
                                                     "csrf_token": csrf_token(client)})
    _send(client)
    assert _verify(client, _last_code()).headers["Location"] == "/admin/device/"


def test_a_wrong_captcha_sends_nothing_and_is_used_up(client, login, world, verifying):
    login("support")
    page = _send(client, captcha="ZZZZ").get_data(as_text=True)
    assert "The picture code is wrong" in page and not test_outbox
    assert db.session.query(CaptchaChallenge).count() == 1  # only the new one the page drew


def test_a_captcha_cannot_be_replayed_with_an_old_cookie(client, web_app, login, world, verifying):
    login("support")
    client.get("/login/verify")
    old_cookie = client.get_cookie("session").value
    assert post(client, "/login/verify", {"step": "send", "send-phone": PHONE, "send-captcha": CAPTCHA}
                ).status_code == 302
    assert len(test_outbox) == 1
    client.set_cookie("session", old_cookie)  # the cookie that still names the used captcha
    page = post(client, "/login/verify", {"step": "send", "send-phone": "13900139000", "send-captcha": CAPTCHA}
                ).get_data(as_text=True)
    assert "The picture code has expired" in page and len(test_outbox) == 1


def test_brute_forcing_the_code_locks_it(client, login, world, verifying):
    login("support")
    _send(client)
    code = _last_code()
    wrong = "000000" if code != "000000" else "111111"
    for attempt in range(5):
        page = _verify(client, wrong).get_data(as_text=True)
    assert "locked" in page
    page = _verify(client, code).get_data(as_text=True)
    assert "locked" in page and client.get("/admin/").headers["Location"] == "/login/verify"
    db.session.expire_all()
    assert db.session.query(PhoneCode).one().attempts == 5
    assert db.session.query(AuditEvent).filter_by(action="phone_code_failed").count() == 5


def test_codes_are_rate_limited_per_phone(client, login, world, verifying):
    login("support")
    _send(client)
    page = _send(client, follow_redirects=True).get_data(as_text=True)
    assert "A code was just sent to this phone" in page and len(test_outbox) == 1


def test_verify_before_any_code_is_refused(client, login, world, verifying):
    login("support")
    client.get("/login/verify")
    page = _verify(client, "123456").get_data(as_text=True)
    assert "Get an SMS code first." in page and client.get("/admin/").headers["Location"] == "/login/verify"


def test_requests_without_a_csrf_token_are_refused(client, login, world, verifying):
    login("support")
    client.get("/login/verify")
    assert client.post("/login/verify", data={"step": "send", "send-phone": PHONE,
                                              "send-captcha": CAPTCHA}).status_code == 400
    assert not test_outbox
    _send(client)
    assert client.post("/login/verify", data={"step": "verify", "verify-code": _last_code()}).status_code == 400
    assert client.get("/admin/").headers["Location"] == "/login/verify"


def test_the_verification_page_without_a_password_sends_to_login(client, world, verifying):
    answer = client.get("/login/verify")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    with client.session_transaction() as cookie:  # a forged pending login for a user id
        cookie["pending_login"] = {"user": f"{world.users['admin'].id}:999", "at": utcnow().timestamp(), "next": "/"}
    assert client.get("/login/verify").headers["Location"] == "/login"


def test_a_pending_login_expires(client, login, world, verifying, monkeypatch):
    login("support")
    _send(client)
    later = utcnow() + timedelta(minutes=auth_views.PENDING_LOGIN_MINUTES + 1)
    monkeypatch.setattr(auth_views, "utcnow", lambda: later)
    answer = _verify(client, _last_code())
    assert answer.headers["Location"] == "/login"
    assert client.get("/admin/").headers["Location"].startswith("/login")


def test_a_password_change_elsewhere_ends_the_pending_login(client, login, world, verifying):
    login("support")
    _send(client)
    user = db.session.get(User, world.users["support"].id)
    user.set_password("another-password-1", method="scrypt:1024:8:1")
    db.session.commit()
    assert _verify(client, _last_code()).headers["Location"] == "/login"


def test_a_failed_sms_says_so(client, login, world, verifying, web_app, monkeypatch):
    monkeypatch.setitem(web_app.config, "SMS_BACKEND", "test_phone_login:_Broken")
    login("support")
    page = _send(client, follow_redirects=True).get_data(as_text=True)
    assert "The SMS could not be sent" in page


def test_a_deactivated_user_cannot_finish(client, login, world, verifying):
    login("support")
    _send(client)
    user = db.session.get(User, world.users["support"].id)
    user.active = False
    db.session.commit()
    assert _verify(client, _last_code()).headers["Location"] == "/login"


def test_a_user_whose_company_is_disabled_meanwhile_cannot_finish(client, login, world, verifying, web_app,
                                                                  monkeypatch):
    monkeypatch.setitem(web_app.config, "PHONE_VERIFICATION_CUSTOMER", True)
    assert login("customer").headers["Location"] == "/login/verify"
    _send(client)
    world.acme.status = "disabled"
    db.session.commit()
    answer = _verify(client, _last_code(), follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "Your company&#39;s account is not active. Ask an administrator." in page
    assert "Your login has expired" not in page
    assert client.get("/admin/").status_code == 302


def test_customers_verify_when_the_customer_setting_is_on(client, login, world, verifying, web_app, monkeypatch):
    monkeypatch.setitem(web_app.config, "PHONE_VERIFICATION_CUSTOMER", True)
    monkeypatch.setitem(web_app.config, "PHONE_VERIFICATION_STAFF", False)
    assert login("support").headers["Location"] == "/admin/"
    login.logout()
    assert login("customer").headers["Location"] == "/login/verify"
    _send(client)
    assert _verify(client, _last_code()).headers["Location"] == "/admin/"


def test_a_must_change_password_user_verifies_first_then_changes(client, login, world, verifying):
    make_user("fresh", "finance", must_change=True)
    db.session.commit()
    assert login("fresh").headers["Location"] == "/login/verify"
    assert client.get("/password").headers["Location"] == "/login/verify"
    _send(client)
    assert _verify(client, _last_code()).headers["Location"] == "/password"


@pytest.mark.parametrize("extra,words", [
    ({"PHONE_VERIFICATION_STAFF": True}, "SMS_BACKEND=log only writes the codes down"),
    ({"PHONE_VERIFICATION_CUSTOMER": True, "SMS_BACKEND": "test"}, "SMS_BACKEND=test only writes the codes down"),
    ({"CAPTCHA_TEST_ANSWER": "AB3K"}, "testing only"),
])
def test_production_refuses_codes_nobody_receives_and_fixed_captchas(extra, words):
    from app import create_app

    with pytest.raises(RuntimeError, match=words):
        create_app({"ENV_NAME": "production", "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://", **extra})


def test_a_wrong_password_setting_or_sms_backend_stops_the_start():
    from app import create_app

    with pytest.raises(ValueError, match="PASSWORD_ALLOWED"):
        create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://", "PASSWORD_ALLOWED": "emoji"})
    with pytest.raises(ValueError, match="SMS_BACKEND"):
        create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://", "SMS_BACKEND": "carrier-pigeon"})


def test_log_in_as_someone_else_ends_the_pending_login(client, login, world, verifying):
    login("support")
    assert 'id="rd-other-login"' in client.get("/login/verify").get_data(as_text=True)
    assert post(client, "/logout", {}).headers["Location"] == "/login"
    assert client.get("/admin/").headers["Location"].startswith("/login?next=")
    assert client.get("/login/verify").headers["Location"] == "/login"
