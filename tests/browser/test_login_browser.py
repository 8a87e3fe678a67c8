"""Seed 000 §1.1 and §1.2 in Chinese, in Debian's Chromium at 1366×768: logging in with phone
verification (bind a phone, the picture code, 获取验证码, the SMS code, 验证, the console), and
申请开通 from the login page without an account (register, verify, the application, waiting for
review), with the password rule shown before typing and the fields kept on an error.

The server of this module is its own (conftest's `booting`), configured as an operator would:
customers must verify a phone, seed 004's password rule (4–16 letters or digits), and the SMS
`test` backend writing each message to a file this test reads (the server is another process).
Its captchas all read AB3K (CAPTCHA_TEST_ANSWER, refused outside testing): a person reads the
picture, a test cannot. Screenshots: tests/artifacts/login-*-zh.png, register-*-zh.png, apply-*-zh.png.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER, booting, flashes, serving, shot  # noqa: E402

pytestmark = BROWSER

SCREEN = {"width": 1366, "height": 768}
CAPTCHA = "AB3K"
SMS_FILE = Path(tempfile.mkdtemp(prefix="renewdesk-sms-")) / "sms.jsonl"
SETTINGS = {
    "PHONE_VERIFICATION_CUSTOMER": "true",
    "SMS_BACKEND": "test",
    "SMS_TEST_FILE": str(SMS_FILE),
    "CAPTCHA_TEST_ANSWER": CAPTCHA,
    "PASSWORD_MIN_LENGTH": "4",
    "PASSWORD_MAX_LENGTH": "16",
    "PASSWORD_ALLOWED": "letters,digits",
}


@pytest.fixture(scope="session")
def _boot():
    with booting(SETTINGS, tag="_login") as boot:
        yield boot


@pytest.fixture(scope="session")
def live_app(_boot):
    yield from serving(_boot)


@pytest.fixture
def chinese(chromium, live_app, problems):
    """A page of a new zh-CN browser context at 1366×768, logged in as nobody."""
    contexts = []

    def new_page():
        context = chromium.new_context(locale="zh-CN", viewport=SCREEN)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        problems.watch(page)
        return page

    yield new_page
    for context in contexts:
        context.close()
    assert not problems.js_errors, f"JavaScript errors: {problems.js_errors}"
    assert not problems.server_errors, f"server errors: {problems.server_errors}\n{live_app.log_tail()}"


def submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def sms_code_sent_to(phone: str) -> str:
    """The code of the last SMS the server's test backend wrote for `phone` (E.164)."""
    messages = [json.loads(line) for line in SMS_FILE.read_text(encoding="utf-8").splitlines()]
    texts = [m["text"] for m in messages if m["phone"] == phone]
    assert texts, f"no SMS to {phone}: {messages}"
    assert "验证码" in texts[-1], texts[-1]  # written in the visitor's language
    return re.search(r"\b(\d{6})\b", texts[-1]).group(1)


def get_and_enter_code(page, phone_e164: str, shot_name: str | None = None) -> None:
    """On the verification step: the picture code, 获取验证码, then the SMS code typed in."""
    page.fill("#send-captcha", CAPTCHA)
    submit(page, "#rd-get-code")
    expect(page.locator(".alert-success")).to_contain_text("6 位验证码已发送至")
    page.fill("#verify-code", sms_code_sent_to(phone_e164))
    if shot_name:
        shot(page, shot_name)


def test_login_binds_a_phone_and_verifies_it_before_the_console(chinese, live_app):
    page = chinese()
    page.goto(live_app.url("/login"))
    expect(page.locator("#rd-apply-link")).to_have_text("申请开通")
    shot(page, "login-zh")
    page.fill("#username", "customer")
    page.fill("#password", "demo-customer")
    submit(page, "form button[type=submit]")
    assert page.url.endswith("/login/verify"), flashes(page)
    expect(page.locator("h5")).to_have_text("验证手机")
    expect(page.locator(".card-body")).to_contain_text("尚未绑定手机号")
    expect(page.locator("#send-captcha-image")).to_be_visible()
    assert page.evaluate("document.querySelector('#send-captcha-image').naturalWidth") > 0  # the picture draws
    page.fill("#send-phone", "138 0013 8000")
    shot(page, "login-verify-phone-zh")

    page.goto(live_app.url("/admin/"))  # the password alone does not open the console
    assert page.url.endswith("/login/verify")

    page.fill("#send-phone", "138 0013 8000")
    page.fill("#send-captcha", "ZZZZ")
    submit(page, "#rd-get-code")
    expect(page.locator("#send-captcha ~ .invalid-feedback, .invalid-feedback")).to_contain_text("图形验证码错误")
    page.fill("#send-phone", "138 0013 8000")
    get_and_enter_code(page, "+8613800138000", "login-verify-code-zh")
    expect(page.locator("#rd-verify-code")).to_contain_text("+86 138****8000")
    submit(page, "#rd-verify")
    assert re.search(r"/admin/?$", page.url), f"landed on {page.url}: {flashes(page)}"
    expect(page.locator("body")).to_contain_text("客户中心")
    assert live_app.scalar("SELECT login_phone FROM \"user\" WHERE username = 'customer'") == "+8613800138000"


def test_apply_from_the_login_page_register_verify_apply_wait(chinese, live_app):
    page = chinese()
    page.goto(live_app.url("/login"))
    submit(page, "#rd-apply-link")
    assert page.url.endswith("/register")
    expect(page.locator("h5")).to_have_text("申请开通")
    # The rule is shown before anything is typed.
    expect(page.locator("#password-help")).to_have_text("密码：4 至 16 位；只能包含数字、字母。")
    shot(page, "register-rule-zh")

    page.fill("#username", "chuchuang")
    page.fill("#password", "abc")
    page.fill("#confirm", "abc")
    page.fill("#phone", "0912 345 678")
    page.fill("#captcha", CAPTCHA)
    submit(page, "#rd-register-submit")
    expect(page.locator("#password ~ .invalid-feedback")).to_contain_text("密码至少 4 位（当前 3 位）")
    expect(page.locator("#username")).to_have_value("chuchuang")  # kept
    expect(page.locator("#phone")).to_have_value("0912 345 678")
    expect(page.locator("#captcha")).to_have_value("")  # a picture code is used once
    shot(page, "register-error-zh")

    page.fill("#password", "chuang2026")
    page.fill("#confirm", "chuang2026")
    page.fill("#captcha", CAPTCHA)
    submit(page, "#rd-register-submit")
    assert page.url.endswith("/login/verify"), flashes(page)  # customers verify their phone
    expect(page.locator("#rd-bound-phone")).to_have_value("+84 912****5678")
    get_and_enter_code(page, "+84912345678")
    submit(page, "#rd-verify")
    assert page.url.endswith("/apply"), flashes(page)

    expect(page.locator("h5")).to_have_text("申请开通")
    page.fill("#company_name", "初创物流科技有限公司")
    page.fill("#tax_id", "91350100M000100Y43")
    page.fill("#contact_name", "王芳")
    page.fill("#contact_email", "wang@chuchuang.example")
    expect(page.locator("#contact_phone")).to_have_value("+84 912 345 678")
    shot(page, "apply-form-zh")
    submit(page, "#rd-submit")
    expect(page.locator("h5")).to_have_text("等待审核")
    expect(page.locator("#rd-waiting")).to_contain_text("正在等待管理员审核")
    expect(page.locator("#rd-my-applications")).to_contain_text("初创物流科技有限公司")
    shot(page, "apply-waiting-zh")

    page.goto(live_app.url("/admin/device/"))  # an applicant has no console yet
    assert page.url.endswith("/apply")
    status = live_app.scalar("SELECT status FROM tenant_application WHERE company_name = '初创物流科技有限公司'")
    assert status == "pending"


def test_change_password_shows_the_rule_and_keeps_the_fields(chinese, live_app):
    with live_app.engine.begin() as conn:  # finance is staff: no phone verification in this server
        conn.execute(sa.text("UPDATE \"user\" SET locale = 'zh_Hans_CN' WHERE username = 'finance'"))
    page = chinese()
    page.goto(live_app.url("/login"))
    page.fill("#username", "finance")
    page.fill("#password", "demo-finance")
    submit(page, "form button[type=submit]")
    page.goto(live_app.url("/password"))
    expect(page.locator("#new-help")).to_have_text("密码：4 至 16 位；只能包含数字、字母。")
    page.fill("#current", "demo-finance")
    page.fill("#new", "new-pass")
    page.fill("#confirm", "new-pass")
    submit(page, "form button[type=submit]")
    expect(page.locator("#new ~ .invalid-feedback")).to_contain_text("密码只能包含数字、字母；不允许的字符：“-”")
    expect(page.locator("#new")).to_have_value("new-pass")
    expect(page.locator("#confirm")).to_have_value("new-pass")
    shot(page, "change-password-rule-zh")
