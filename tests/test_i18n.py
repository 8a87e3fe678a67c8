"""Chinese is a first-class language: every string we wrote has a translation, and it shows."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from models import db

ROOT = Path(__file__).resolve().parent.parent


def _catalog(locale: str):
    with open(ROOT / "translations" / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=locale)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Every msgid in the code and templates right now."""
    out = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [str(Path(sys.executable).parent / "pybabel"), "-q", "extract", "-F", "babel.cfg",
         "-k", "_l", "-k", "lazy_gettext", "-o", str(out), "."],
        cwd=ROOT, check=True,
    )
    with open(out, "rb") as handle:
        return {(m.id, m.context) for m in read_po(handle) if m.id}  # pgettext's context is part of the key


def test_every_message_has_a_chinese_translation(extracted):
    catalog = _catalog("zh_Hans_CN")
    entries = {(mid, context): catalog.get(mid, context=context) for mid, context in extracted}
    missing = sorted(
        str(mid) for (mid, _context), entry in entries.items()
        if entry is None or not entry.string or entry.fuzzy
        or (isinstance(entry.string, tuple) and not all(entry.string))
    )
    assert not missing, f"{len(missing)} msgids lack a Chinese translation (make translations): {missing[:20]}"


def test_translations_keep_their_placeholders():
    import re

    for locale in ("zh_Hans_CN", "vi"):
        for message in _catalog(locale):
            if not message.id or not message.string or isinstance(message.id, tuple):
                continue
            wanted = sorted(re.findall(r"%\(\w+\)s", message.id))
            assert sorted(re.findall(r"%\(\w+\)s", message.string)) == wanted, (locale, message.id)


def test_vietnamese_catalog_is_started():
    translated = [m for m in _catalog("vi") if m.id and m.string]
    assert len(translated) >= 20


def test_chinese_menu_for_a_user_who_chose_chinese(client, login, world):
    world.users["support"].locale = "zh_Hans_CN"
    db.session.commit()
    login("support")
    page = client.get("/admin/").get_data(as_text=True)
    for label in ("管理中心", "技术支持操作", "设备", "套餐"):
        assert label in page, label
    assert "Tech support operations" not in page


def test_browser_language_is_the_default(client, world):
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    assert "登录" in page
    page = client.get("/login", headers={"Accept-Language": "en-US"}).get_data(as_text=True)
    assert "Log in" in page


def test_switching_language_is_remembered(client, login, world):
    from conftest import post

    login("customer")
    post(client, "/language", {"locale": "zh_Hans_CN", "next": "/admin/"})
    assert "客户中心" in client.get("/admin/").get_data(as_text=True) or \
        "管理中心" in client.get("/admin/").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(world.users["customer"]), world.users["customer"].id).locale == "zh_Hans_CN"
