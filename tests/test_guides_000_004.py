"""Seeds 000 and 004 followed step by step in Chinese and Vietnamese: what a user of the guides reads and does."""
from __future__ import annotations

import html
import re

import pytest
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from actions import DomainError
from actions.members import expand_pattern
from conftest import post
from models import Company, MemberAccount, db


def test_the_login_prompt_reads_in_the_readers_language(client, web_app):
    """点击【申请开通】before signing in: the login page asks to sign in in Chinese, not in Flask-Login's English."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN,zh;q=0.9"
    page = client.get("/apply", follow_redirects=True).get_data(as_text=True)
    assert "Please log in to access this page." not in page
    with web_app.test_request_context(), force_locale("zh_Hans_CN"):
        prompt = _("Please log in to open this page.")
    assert prompt in page and 'class="alert alert-info"' in page
    assert "登录" in page


def test_logging_out_keeps_the_language_the_user_chose(client, login, world):
    """A user who reads the console in Chinese (chosen in the language menu, the browser saying nothing) logs out
    and reads "您已退出登录" and a Chinese login page, not English ones."""
    world.users["customer"].locale = "zh_Hans_CN"
    db.session.commit()
    login("customer")
    page = login.logout()
    page = client.get(page.headers["Location"]).get_data(as_text=True)
    assert "您已退出登录。" in page and "You are logged out." not in page
    assert 'lang="zh-Hans-CN"' in page or "用户名" in page
    vi = world.users["north"]
    vi.locale = "vi"
    db.session.commit()
    login("north")
    page = client.get(login.logout().headers["Location"]).get_data(as_text=True)
    assert "You are logged out." not in page and "Tên đăng nhập" in page


def test_a_pattern_typed_with_a_chinese_input_method_creates_the_accounts(client, login, world):
    """新建用户 with a Chinese input method: ｛０１－０３｝ (full-width) and {01~03} are the seed's {01-03}."""
    world.users["customer"].locale = "zh_Hans_CN"
    db.session.commit()
    login("customer")
    for pattern, made in (("ｔｕｐｐ｛０１－０３｝", "tupp01"), ("abc{01~03}", "abc03"), ("xy{1 - 2}", "xy2")):
        page = post(client, "/admin/memberaccount/new/", {"company_id": str(world.acme.id), "pattern": pattern,
                                                          "password_kind": "default"}).get_data(as_text=True)
        assert made in page, page
    logins = set(db.session.scalars(select(MemberAccount.login).where(MemberAccount.company_id == world.acme.id)))
    assert {"tupp01", "tupp02", "tupp03", "abc01", "abc02", "abc03", "xy1", "xy2"} <= logins


@pytest.mark.parametrize("pattern, message", [("u{1-2-3}", "not a range"), ("u{١-٣}", "not a range"),
                                              ("u｛1-3", "not closed")])
def test_normalising_a_pattern_still_refuses_what_is_no_range(pattern, message):
    with pytest.raises(DomainError) as caught:
        expand_pattern(pattern, 1000)
    assert message in str(caught.value)


def test_a_login_is_one_login_in_any_letter_case(client, login, world):
    """新建用户 TUPP{01-02} after tupp{01-02}: nothing is created, the taken logins are named; the database refuses
    a second spelling too."""
    login("customer")
    made = {"company_id": str(world.acme.id), "pattern": "tupp{01-02}", "password_kind": "default"}
    post(client, "/admin/memberaccount/new/", made)
    page = post(client, "/admin/memberaccount/new/", {**made, "pattern": "TUPP{01-03}"}).get_data(as_text=True)
    assert "TUPP01, TUPP02" in page and "exist already" in page
    assert db.session.scalar(select(func.count()).select_from(MemberAccount).where(
        func.lower(MemberAccount.login).like("tupp%"))) == 2
    db.session.add(MemberAccount(company_id=world.acme.id, login="Tupp01", vip_level="none"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_phone_numbers_typed_with_a_chinese_input_method_are_phone_numbers(client, login, world):
    """编辑信息: 公司电话（可有分机）typed with a Chinese input method (full-width brackets and digits, 分机) is saved,
    as the ASCII form; letters still are not."""
    login("customer")
    answer = post(client, "/admin/company_profile/", {
        "phone": "（０２１）１２３４５６７８ 分机 801", "fax": "０２１－８７６５４３２１",
        "province": "上海市", "city": "上海市",
        "address": "", "full_name": "陈", "email": "chen@acme.example", "user_phone": "021-7654321 转 8",
        "mobile": "+86 138 0000 0000"}, follow_redirects=True)
    assert answer.status_code == 200
    company = db.session.get(Company, world.acme.id)
    db.session.refresh(company)
    assert (company.phone, company.fax) == ("(021)12345678 分机 801", "021-87654321")
    page = post(client, "/admin/company_profile/", {
        "phone": "电话号码", "province": "", "city": "", "full_name": "陈", "email": "chen@acme.example",
        "user_phone": "021-7654321"}).get_data(as_text=True)
    assert "Company phone: not a phone number" in page
    db.session.refresh(company)
    assert company.phone == "(021)12345678 分机 801"


def test_the_member_search_finds_a_login_in_any_letter_case(client, login, world):
    """Finding tupp05 to tick it (批量 → 升级vip): TUPP0 and ｔｕｐｐ０ find it as tupp0 does; other logins stay out."""
    login("customer")
    post(client, "/admin/memberaccount/new/", {"company_id": str(world.acme.id), "pattern": "tupp{01-05}",
                                               "password_kind": "default"})
    post(client, "/admin/memberaccount/new/", {"company_id": str(world.acme.id), "pattern": "other{1-2}",
                                               "password_kind": "default"})
    for term in ("tupp0", "TUPP0", "ｔｕｐｐ０"):
        page = client.get("/admin/memberaccount/", query_string={"search": term}).get_data(as_text=True)
        assert "tupp05" in page and "other1" not in page, term


def test_the_invoice_request_leads_to_the_missing_title_of_its_company(client, login, world):
    """若您以前没有申请过发票，请先提交开票信息: 申请开票 without a title links to 发票设置 for that company and kind,
    and that form opens on them."""
    login("customer")
    page = client.get("/admin/invoice_request_customer/new/",
                      query_string={"company_id": world.north.id}).get_data(as_text=True)
    link = re.search(r'id="rd-new-title-special" href="([^"]+)"', page)
    assert link, page
    url = html.unescape(link.group(1))
    assert "kind=special" in url and f"company_id={world.north.id}" in url
    form = client.get(url).get_data(as_text=True)
    assert f'<option value="{world.north.id}" selected>' in form
    assert re.search(r'name="kind" id="rd-kind-special" value="special" checked', form)
    assert 'id="rd-new-title-electronic_ordinary"' in page
    foreign = client.get(url.replace(f"company_id={world.north.id}", f"company_id={world.globex.id}"))
    assert foreign.status_code == 200 and "Globex" not in foreign.get_data(as_text=True)  # not one of the choices


@pytest.mark.parametrize("changes, message", [
    ({"email": "not an email"}, "Email: not an email is not a valid email address."),
    ({"first_name": "San\u200b"}, "First name: control characters"),
    ({"last_name": "Zhang\nWang"}, "Last name: control characters and line breaks"),
])
def test_editing_a_member_checks_its_email_and_names(client, login, world, changes, message):
    """编辑 a member account: a wrong email or a name with a line break or an invisible character is refused, naming
    the field, and nothing changes; good values are saved trimmed."""
    account = MemberAccount(company_id=world.acme.id, login="tupp01", vip_level="none", email="old@acme.example")
    db.session.add(account)
    db.session.commit()
    login("customer")
    url = f"/admin/memberaccount/edit/?id={account.id}"
    fields = {"email": "old@acme.example", "first_name": "San", "last_name": "Zhang", "active": "y"}
    page = post(client, url, {**fields, **changes}, follow_redirects=True).get_data(as_text=True)
    assert message in html.unescape(page), page
    db.session.expire_all()
    assert (account.email, account.first_name, account.last_name) == ("old@acme.example", None, None)
    post(client, url, {**fields, "email": " New@Acme.Example ", "first_name": " San "})
    db.session.expire_all()
    assert (account.email, account.first_name, account.last_name) == ("New@acme.example", "San", "Zhang")


def test_a_members_details_show_labels_not_codes(client, login, world):
    account = MemberAccount(company_id=world.acme.id, login="tupp01", vip_level="none", invitation_state="none")
    db.session.add(account)
    db.session.commit()
    world.users["customer"].locale = "zh_Hans_CN"
    db.session.commit()
    login("customer")
    page = client.get(f"/admin/memberaccount/details/?id={account.id}").get_data(as_text=True)
    assert re.search(r"<td>\s*未邀请\s*</td>", page), page
    assert not re.search(r"<td>\s*(none|None)\s*</td>", page)
