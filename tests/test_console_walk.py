"""What a person clicking through the console in Chinese or Vietnamese ran into (pages, forms, exports)."""
from __future__ import annotations

import html

import pytest

from models import User, db


def _as(client, login, username: str, locale: str) -> None:
    db.session.scalar(db.select(User).where(User.username == username)).locale = locale
    db.session.commit()
    login(username)


@pytest.mark.parametrize("url", ["/admin/company/new/", "/admin/user/new/", "/admin/promotion/new/"])
def test_an_optional_choice_reads_blank_not_none(client, login, world, url):
    """WTForms 3.3 writes an option without text as its value: the empty parent company, company or plan read
    "__None" in the select (and in select2's box)."""
    _as(client, login, "admin", "zh_Hans_CN")
    page = html.unescape(html.unescape(client.get(url).get_data(as_text=True)))  # inline rows: escaped twice
    assert '<option selected value="__None">' in page, "the blank choice is still offered"
    assert ">__None<" not in page
