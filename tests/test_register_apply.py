"""申请开通 from the login page (seed 000 §1.1): a visitor registers (captcha, password policy,
unique username, phone), is logged in as an applicant outside the console, applies, waits, and
after approval enters the console as the new company's administrator with their own password."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from actions.sms import test_outbox
from conftest import post
from extensions import mail
from models import Company, TenantApplication, User, db

CAPTCHA = "AB3K"
CODE = "91350100M000100Y43"
APPLICATION = {"company_name": "初创科技", "tax_id": CODE, "contact_name": "王芳",
               "contact_phone": "138 0013 8000", "contact_email": "wang@chuchuang.example"}


@pytest.fixture
def fixed_captcha(web_app, monkeypatch):
    monkeypatch.setitem(web_app.config, "CAPTCHA_TEST_ANSWER", CAPTCHA)


def _register(client, **overrides):
    client.get("/register")
    data = {"username": "wangfang", "password": "a-good-password", "confirm": "a-good-password",
            "phone": "138 0013 8000", "captcha": CAPTCHA, **overrides}
    return post(client, "/register", data)


def test_the_login_page_offers_to_apply(client):
    page = client.get("/login", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert 'href="/register"' in page and "申请开通" in page and "还没有账号？" in page


def test_the_register_page_shows_the_password_rule_and_a_captcha(client, web_app, monkeypatch):
    monkeypatch.setitem(web_app.config, "PASSWORD_MIN_LENGTH", 4)
    monkeypatch.setitem(web_app.config, "PASSWORD_MAX_LENGTH", 16)
    monkeypatch.setitem(web_app.config, "PASSWORD_ALLOWED", "letters,digits")
    page = client.get("/register", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "密码：4 至 16 位；只能包含数字、字母。" in page
    assert "图形验证码" in page and "data:image/png;base64," in page and 'name="csrf_token"' in page


def test_register_then_apply_then_wait(client, world, fixed_captcha):
    answer = _register(client)
    assert answer.status_code == 302 and answer.headers["Location"] == "/apply"
    user = db.session.scalar(select(User).where(User.username == "wangfang"))
    assert user.role == "applicant" and user.company_id is None and user.login_phone == "+8613800138000"
    assert not user.must_change_password
    for url in ("/admin/", "/admin/device/", "/admin/tenant_apply/", "/admin/user/"):
        answer = client.get(url)
        assert answer.status_code == 302 and answer.headers["Location"] == "/apply", url
    page = client.get("/apply", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "第 2 步" in page and 'name="parent"' not in page and 'value="+86 138 0013 8000"' in page
    answer = post(client, "/apply", APPLICATION)
    assert answer.status_code == 302 and answer.headers["Location"] == "/apply"
    application = db.session.scalar(select(TenantApplication))
    assert application.applicant_id == user.id and application.parent_id is None and application.status == "pending"
    page = client.get("/apply", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "等待审核" in page and 'id="rd-waiting"' in page and 'id="rd-tenant-form"' not in page
    post(client, "/apply", {**APPLICATION, "tax_id": "911100007109288314"})  # a second one while waiting
    assert db.session.scalar(select(func.count()).select_from(TenantApplication)) == 1


def test_an_application_error_names_the_field_and_keeps_the_others(client, world, fixed_captcha):
    _register(client)
    page = post(client, "/apply", {**APPLICATION, "tax_id": "123"}).get_data(as_text=True)
    assert "Tax ID or unified social credit code" in page and 'value="wang@chuchuang.example"' in page
    assert db.session.scalar(select(func.count()).select_from(TenantApplication)) == 0


def test_approval_makes_the_applicant_the_administrator(client, login, world, fixed_captcha):
    _register(client)
    post(client, "/apply", APPLICATION)
    application = db.session.scalar(select(TenantApplication))
    login.logout()
    login("admin")
    review = client.get(f"/admin/tenantapplication/review/?id={application.id}").get_data(as_text=True)
    assert "wangfang registered from the login page" in review and 'name="username"' not in review
    with mail.record_messages() as outbox:
        page = post(client, "/admin/tenantapplication/approve/", {"id": application.id, "parent": ""},
                    follow_redirects=True).get_data(as_text=True)
    assert "the applicant wangfang is its administrator" in page
    assert len(outbox) == 1 and "Sign in with the password you chose" in outbox[0].body
    assert "Initial password" not in outbox[0].body
    login.logout()
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.username == "wangfang"))
    company = db.session.scalar(select(Company).where(Company.tax_id == CODE))
    assert user.role == "customer_admin" and user.company_id == company.id and user.email == APPLICATION["contact_email"]
    assert db.session.scalar(select(func.count()).select_from(User).where(User.company_id == company.id)) == 1
    assert login("wangfang", "a-good-password").headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/apply").headers["Location"] == "/admin/"  # the waiting page's button now leads in
    devices = client.get("/admin/device/").get_data(as_text=True)
    assert "AC0001" not in devices


def test_a_waiting_applicant_enters_the_console_once_approved(client, web_app, world, fixed_captcha):
    _register(client)
    post(client, "/apply", APPLICATION)
    application = db.session.scalar(select(TenantApplication))
    from actions.tenants import approve

    approve(db.session, db.session.get(User, world.users["admin"].id), application)
    db.session.commit()
    answer = client.get("/apply", follow_redirects=True)  # same session, now a customer
    assert answer.request.path == "/admin/" and "welcome to the console of 初创科技" in answer.get_data(as_text=True)


@pytest.mark.parametrize("overrides,field,message", [
    ({"username": "Customer"}, "username", "The username Customer is taken"),
    ({"username": "with space"}, "username", "without spaces"),
    ({"password": "short", "confirm": "short"}, "password", "at least 10"),
    ({"confirm": "a-different-one"}, "confirm", "The two passwords differ."),
    ({"password": "wangfang12", "username": "wangfang12", "confirm": "wangfang12"}, "password", "may not be the username"),
    ({"phone": "010 6552 9988"}, "phone", "is not a mobile number"),
    ({"captcha": "XXXX"}, "captcha", "The picture code is wrong"),
])
def test_registration_errors_name_the_field_and_keep_the_others(client, world, fixed_captcha, overrides, field,
                                                                message):
    answer = _register(client, **overrides)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and message in page
    assert f'id="{field}"' in page and "is-invalid" in page
    kept_phone = overrides.get("phone", "138 0013 8000")
    assert f'value="{kept_phone}"' in page
    assert db.session.scalar(select(func.count()).select_from(User).where(User.role == "applicant")) == 0
    with client.session_transaction() as cookie:
        assert "_user_id" not in cookie


def test_a_captcha_serves_one_registration_only(client, world, fixed_captcha):
    client.get("/register")
    old_cookie = client.get_cookie("session").value
    data = {"username": "first", "password": "a-good-password", "confirm": "a-good-password",
            "phone": "13800138000", "captcha": CAPTCHA}
    assert post(client, "/register", data).status_code == 302
    client.delete_cookie("session")
    client.set_cookie("session", old_cookie)
    page = post(client, "/register", {**data, "username": "second"}).get_data(as_text=True)
    assert "The picture code has expired" in page
    assert db.session.scalar(select(User.id).where(User.username == "second")) is None


def test_registration_without_csrf_is_refused(client, world, fixed_captcha):
    client.get("/register")
    answer = client.post("/register", data={"username": "x1", "password": "a-good-password",
                                            "confirm": "a-good-password", "phone": "13800138000", "captcha": CAPTCHA})
    assert answer.status_code == 400
    assert db.session.scalar(select(User.id).where(User.username == "x1")) is None


def test_a_registered_applicant_verifies_the_phone_when_customers_must(client, web_app, world, fixed_captcha,
                                                                         monkeypatch):
    monkeypatch.setitem(web_app.config, "PHONE_VERIFICATION_CUSTOMER", True)
    monkeypatch.setitem(web_app.config, "SMS_BACKEND", "test")
    test_outbox.clear()
    answer = _register(client)
    assert answer.headers["Location"] == "/login/verify"
    assert client.get("/apply").headers["Location"] == "/login/verify"
    client.get("/login/verify")
    post(client, "/login/verify", {"step": "send", "send-captcha": CAPTCHA})
    assert test_outbox[-1].phone == "+8613800138000"
    import re

    code = re.search(r"\d{6}", test_outbox[-1].text).group(0)
    assert post(client, "/login/verify", {"step": "verify", "verify-code": code}).headers["Location"] == "/apply"
    test_outbox.clear()


def test_a_logged_in_user_is_not_shown_the_register_page(client, login, world):
    login("customer")
    assert client.get("/register").headers["Location"] == "/admin/tenant_apply/"
    assert client.get("/apply").headers["Location"] == "/admin/tenant_apply/"
