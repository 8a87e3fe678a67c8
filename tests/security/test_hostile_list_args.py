"""Query strings a browser or an attacker sends to every list page: a page before the first or
past any integer, a page size of 0, of text or of a billion, a sort by a column that does not
exist, `desc=x`, a search of LIKE wildcards, quotes, a lone surrogate and 5,000 characters, and
every filter of the page at once given a value of the wrong type (text for a number or a date, a
date in year 10000, an integer past 32 or 64 bits: PostgreSQL's and SQLite's DataError made the
list answer "not found"). Each page answers as a page (200, the filters it
cannot read flashed), never a server error, never the "not found" that a database error becomes."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from flask_admin.model import BaseModelView

from admin_views import registered_views
from db_snapshot import changed_tables, snapshot

PAGING = ["page=-1&page_size=-5&sort=-1&desc=x", "page=99999999999999999999&page_size=abc&sort=999&desc=5",
          "page=abc&page_size=0&sort=abc", "page=999999&page_size=100000000",
          "page=9223372036854775807&page_size=9223372036854775807"]
SEARCHES = ["%_\\'\"", "\ud800 \udfff \U0010ffff 😀", "x" * 5000, "' OR 1=1 --"]
FILTER_VALUES = ["x", "99999999999999999999", "2147483648", "10000-01-01 to 2020-01-02", "1e309", "-1,abc,", "😀\ud800"]


def encode(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")


def crash(client, url: str) -> str | None:
    try:
        answer = client.get(url)
    except Exception as exc:  # FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION lets it through
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None if answer.status_code == 200 else str(answer.status_code)


def list_urls(view) -> list[str]:
    base = view.url.rstrip("/") + "/?"
    urls = [base + query for query in PAGING]
    if view.column_searchable_list or getattr(view, "search_clause", None):
        urls += [base + "search=" + encode(text) for text in SEARCHES]
    arguments = list(view._filter_args or {})
    if arguments:
        urls += [base + "&".join(f"flt{i}_{arg}={encode(value)}" for i, arg in enumerate(arguments))
                 for value in FILTER_VALUES]
        urls += [base + "flt0_999=x&flt1_no_such_filter=1&fltx_y=1&flt_=1"]
    return urls


@pytest.mark.parametrize("username, role", [("admin", "admin"), ("customer", "customer_admin")])
def test_every_list_page_survives_hostile_query_strings(app, client, login, world, username, role):
    login(username)
    before = snapshot()
    crashes = []
    for view in registered_views(app.extensions["admin"][0]):
        if not isinstance(view, BaseModelView) or not (role == "admin" or role in view.roles):
            continue
        for url in list_urls(view):
            problem = crash(client, url)
            if problem:
                crashes.append((url[:160], problem))
    assert crashes == []
    assert changed_tables(before) == []


@pytest.mark.parametrize("value", ["2147483648", "-2147483649", "99999999999999999999", "1,2147483648"])
def test_an_integer_filter_past_its_column_is_flashed_and_the_list_shown(client, login, world, value):
    login("support")
    answer = client.get(f"/admin/package/?flt0_term_months_{'in_list' if ',' in value else 'equals'}={value}")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert f"Invalid Filter Value: {value}" in page
    assert world.packages["GPS-M"].code in page  # the filter is dropped, the list shown


def test_a_page_before_the_first_shows_the_first(client, login, world):
    """PostgreSQL refuses a negative OFFSET: page=-1 answered "not found" there (SQLite read it as 0)."""
    login("support")
    for query in ("page=-1", "page=-3&page_size=20"):
        answer = client.get(f"/admin/package/?{query}")
        assert answer.status_code == 200, query
        assert world.packages["GPS-M"].code in answer.get_data(as_text=True)
