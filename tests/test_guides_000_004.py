"""Seeds 000 and 004 followed step by step in Chinese and Vietnamese: what a user of the guides reads and does."""
from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from models import db


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
