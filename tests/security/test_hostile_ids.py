"""Ids that are not ids: past the integer range of the database, Unicode digits that str.isdigit()
accepts and int() refuses ("²"), negative, exponent, hexadecimal. Typed into any id, number or
company field of any page they are "not found" (or a form error), never a server error, and
nothing changes."""
from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from conftest import csrf_token
from console_urls import console_get_urls, fill, post_rules, views_by_endpoint
from db_snapshot import changed_tables, snapshot

HUGE = "99999999999999999999"  # beyond 64 bits: SQLite overflows, PostgreSQL refuses the parameter
SUPERSCRIPT = "²"  # "²".isdigit() is True, int("²") raises ValueError
OTHERS = ["2147483648", "-1", "1e3", "0x1", "1.0", "+1", "1_0"]  # (" 1" and "١" are read as 1: lenient, not hostile)
ID_FIELDS = ("id", "rowid", "company_id", "company", "ids", "payer_id", "package_id", "parent", "order", "only")
SKIP_POST = {"auth", "payment_callbacks", "sandbox"}  # login, logout, language; signed; checked elsewhere


def hostile_query(value: str) -> str:
    return "&".join(f"{name}={value}" for name in ID_FIELDS)


def crash(client, method: str, url: str, **kwargs) -> str | None:
    """None when the answer is an answer (anything below 500), else what went wrong."""
    try:
        answer = client.open(url, method=method, **kwargs)
    except Exception as exc:  # FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION and TESTING let it through
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None if answer.status_code < 500 else str(answer.status_code)


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT])
def test_get_pages_survive_hostile_ids(app, client, login, world, value):
    login("admin")
    crashes = []
    for url, _view in console_get_urls(app, integer=value if value.isascii() else "1"):
        if "/export/" in url or "/ajax/" in url:
            continue
        query = url.split("?")[0] + "?" + hostile_query(value)
        problem = crash(client, "GET", query)
        if problem:
            crashes.append((query.split("?")[0], problem))
    assert crashes == []


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT, "others"])
def test_post_routes_survive_hostile_ids(app, client, login, world, value):
    """Every POST route (but inline edits, below) with each id field set to `value` ("others": each
    field repeated with every value of OTHERS), for each action of the view."""
    login("admin")
    values = OTHERS if value == "others" else [value]
    views = views_by_endpoint(app)
    token = csrf_token(client)
    before = snapshot()
    crashes = []
    for rule in post_rules(app, SKIP_POST):
        if rule.endpoint.endswith(".ajax_update"):
            continue
        view = views.get(rule.endpoint.split(".")[0])
        actions = [name for name, _label in getattr(view, "_actions", None) or []] or [""]
        for url in fill(rule.rule, integer=value if value.isascii() and value.isdigit() else "999999", text="RC-NONE"):
            for action in actions:
                form = MultiDict([(name, v) for name in ID_FIELDS for v in values] + [
                    ("action", action), ("confirm", "1"), ("save", "1"), ("decision", "reject"),
                    ("months", "12"), ("csrf_token", token)])
                problem = crash(client, "POST", url + "?" + hostile_query(values[0]), data=form)
                if problem:
                    crashes.append((url, action, problem))
    assert crashes == []
    assert set(changed_tables(before)) <= {"audit_event"}  # actions that found no rows still say so


def test_an_inline_edit_without_its_row_id_is_refused(client, login, world):
    """Flask-Admin's ajax_update drops every field not submitted, the row id included, then reads
    `form.list_form_pk.data`: a POST without it is an AttributeError (a 500), not a 400."""
    login("support")
    before = snapshot()
    problem = crash(client, "POST", "/admin/device_expiry/ajax/update/",
                    data={"expires_on": "2031-01-01", "csrf_token": csrf_token(client)})
    assert problem is None
    assert changed_tables(before) == []


BEYOND_INTEGER = "2147483648"  # a valid int8, past PostgreSQL's INTEGER ids


@pytest.mark.parametrize("username, url, form", [
    ("customer", "/admin/renewal_center/renew/", {"company_id": BEYOND_INTEGER, "months": "12", "rowid": "1"}),
    ("customer", "/admin/renewal_center/renew/", {"company_id": "{acme}", "months": "12", "rowid": BEYOND_INTEGER}),
    ("customer", "/admin/renewal_center/value-added/order/", {"company_id": BEYOND_INTEGER, "months": "12",
                                                              "rowid": BEYOND_INTEGER}),
    ("support", "/admin/company_package/offer/", {"company_id": BEYOND_INTEGER, "package_id": BEYOND_INTEGER}),
    ("support", "/admin/device_package/bind-type/", {"company_id": BEYOND_INTEGER, "package_id": BEYOND_INTEGER}),
])
def test_ids_past_the_integer_range_are_refused_on_the_page(client, login, world, username, url, form):
    """Company, device and package ids past 2**31 reached PostgreSQL, whose DataError made the renewal
    center, the value-added order and the package offer answer "not found" instead of naming the ids."""
    login(username)
    form = {key: value.replace("{acme}", str(world.acme.id)) for key, value in form.items()}
    before = snapshot()
    for method in ("GET", "POST") if "_package/" in url else ("POST",):  # the bindings pages show a GET too
        answer = client.open(url, method=method, query_string=form if method == "GET" else None,
                             data={**form, "csrf_token": csrf_token(client)} if method == "POST" else None)
        assert answer.status_code in (200, 302), (method, answer.status_code)
    assert set(changed_tables(before)) <= {"audit_event"}


@pytest.mark.parametrize("url", ["/admin/offline_recharge/edit/", "/admin/recharge_review/edit/",
                                 "/admin/recharge_review/review/"])
@pytest.mark.parametrize("raw_id", [BEYOND_INTEGER, HUGE])
def test_an_application_id_past_the_integer_range_is_not_found_with_the_message(client, login, world, url, raw_id):
    """The offline recharge pages name an unknown application ("Application #…: not found.") and go back to
    the list; an id past 2**31 reached PostgreSQL instead and answered a bare 404."""
    login("admin")
    answer = client.get(f"{url}?id={raw_id}", follow_redirects=True)
    assert answer.status_code == 200
    assert f"Application #{raw_id[:20]}: not found." in answer.get_data(as_text=True)
