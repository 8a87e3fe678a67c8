"""403, 404 and 500 answer with translated pages: inside the console layout for a signed-in user, the
sign-in layout otherwise, each with a way back."""
from __future__ import annotations

import pytest

from conftest import Login, make_app
from models import User, db


def set_locale(username: str, locale: str) -> None:
    db.session.scalar(db.select(User).where(User.username == username)).locale = locale
    db.session.commit()


def test_forbidden_page_is_inside_the_console_in_chinese(client, login, world):
    set_locale("finance", "zh_Hans_CN")
    login("finance")
    response = client.get("/admin/device/", headers={"Referer": "http://localhost/admin/recharge_review/"})
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert 'id="rd-error" data-code="403"' in page
    assert "navbar" in page and "财务操作" in page  # the console's menu, the role's own groups
    assert "您无权打开此页面" in page and "返回首页" in page
    assert 'href="http://localhost/admin/recharge_review/"' in page  # back where they came from
    assert "Forbidden" not in page and "You don&#39;t have the permission" not in page


@pytest.mark.parametrize("path", ["/admin/no-such-page/", "/admin/bank_transfer/file/999999",
                                  "/admin/bank_transfer/file/99999999999999999999",
                                  "/nothing-here"])
def test_not_found_page_is_inside_the_console(client, login, world, path):
    set_locale("customer", "vi")
    login("customer")
    response = client.get(path)
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert 'data-code="404"' in page and "navbar" in page
    assert "Không tìm thấy trang" in page and 'id="rd-error-home"' in page
    assert "Not Found" not in page


def test_back_link_only_to_our_own_pages(client, login, world):
    login("customer")
    page = client.get("/admin/nope/", headers={"Referer": "https://evil.example/x"}).get_data(as_text=True)
    assert "evil.example" not in page and 'id="rd-error-back"' not in page


def test_anonymous_not_found_page_offers_the_login(client, world):
    response = client.get("/nothing-here", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert 'data-code="404"' in page and "navbar" not in page
    assert "页面不存在" in page and 'href="/login"' in page


@pytest.fixture
def failing_app(database_url, app):
    """An app whose /admin/boom/ raises, with exceptions handled as in production."""
    failing = make_app(database_url, PROPAGATE_EXCEPTIONS=False)

    @failing.route("/admin/boom/")
    def boom():
        db.session.add(User(username="half-done", role="admin", session_version=0))
        db.session.flush()
        raise RuntimeError("boom")

    return failing


def test_server_error_page_is_inside_the_console_and_nothing_is_kept(failing_app, world):
    set_locale("admin", "zh_Hans_CN")
    client = failing_app.test_client()
    Login(client)("admin")
    response = client.get("/admin/boom/")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert 'data-code="500"' in page and "navbar" in page and "出错了" in page and "返回首页" in page
    assert "Traceback" not in page and "boom" not in page.lower().replace("/admin/boom/", "")
    assert db.session.scalar(db.select(User).where(User.username == "half-done")) is None
