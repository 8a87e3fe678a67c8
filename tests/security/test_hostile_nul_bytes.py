"""NUL characters in typed text: PostgreSQL refuses them in any text parameter (psycopg raises
DataError), SQLite stores them. Either way a request carrying one must get an answer — a form
error or a 400 — never a server error, and no NUL may reach the database."""
from __future__ import annotations

import pytest

from admin_views import registered_views
from conftest import csrf_token
from db_snapshot import snapshot

NUL = "\x00"


def crash(client, method, url, **kwargs) -> str | None:
    try:
        answer = client.open(url, method=method, **kwargs)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:100]}"
    return None if answer.status_code < 500 else str(answer.status_code)


def stored_nul() -> list[str]:
    return [f"{table}: {row}" for table, rows in snapshot().items() for row in rows
            if any(isinstance(value, str) and NUL in value for value in row)]


def test_login_with_a_nul_in_the_username_or_password(client, world):
    for username, password in (("sales" + NUL, "x"), ("sales", "correct" + NUL), (NUL, NUL)):
        token = csrf_token(client)
        problem = crash(client, "POST", "/login", data={"username": username, "password": password,
                                                        "csrf_token": token})
        assert problem is None, (username, problem)
    assert client.get("/admin/").status_code == 302
    assert stored_nul() == []


def test_search_boxes_with_a_nul(app, client, login, world):
    login("admin")
    crashes = []
    for view in registered_views(app.extensions["admin"][0]):
        if getattr(view, "column_searchable_list", None):
            url = view.url.rstrip("/") + "/?search=AC" + NUL
            problem = crash(client, "GET", url)
            if problem:
                crashes.append((url, problem))
    assert crashes == []


@pytest.mark.parametrize("username, url, form", [
    ("sales", "/admin/offline_recharge/new/", {"company_id": "{acme}", "payer": "Acme" + NUL, "currency": "CNY",
                                              "amount": "10.00", "reference": "R" + NUL, "save": "draft"}),
    ("customer", "/admin/company_profile/", {"phone": "010-1234567", "address": "Road" + NUL, "full_name": "A" + NUL,
                                             "email": "customer@acme.example", "user_phone": "010-7654321"}),
    ("customer", "/admin/tenant_apply/", {"company_name": "Nul" + NUL + "Co", "tax_id": "x", "contact_name": "N",
                                          "contact_phone": "1", "contact_email": "n@acme.example"}),
    ("customer", "/admin/memberaccount/new/", {"company_id": "{acme}", "pattern": "nul" + NUL + "{1-2}",
                                               "password_kind": "default"}),
    ("support", "/admin/device_batch/", {"numbers": "AC0001" + NUL, "operation": "suspend"}),
])
def test_forms_with_a_nul(client, login, world, username, url, form):
    login(username)
    form = {key: value.replace("{acme}", str(world.acme.id)) for key, value in form.items()}
    token = csrf_token(client)
    problem = crash(client, "POST", url, data={**form, "csrf_token": token})
    assert problem is None, problem
    assert stored_nul() == []
