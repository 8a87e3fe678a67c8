"""A cross-site GET cannot log anybody out; an inline edit of an unknown row is "not found".

`GET /logout` used to end every session of the user without a CSRF token (an <img src=/logout>
on any page did it). Logout is a POST with the CSRF token; GET only shows the question.
`POST /admin/<view>/ajax/update/` with an id that names no row answered 500 ("Record does not
exist"): it answers 404 like every other unknown id, and changes nothing.
"""
from __future__ import annotations

import re

import pytest

from conftest import csrf_token, post
from db_snapshot import changed_tables, snapshot
from models import Device, User, db


def session_version(username: str) -> int:
    db.session.expire_all()
    return db.session.scalar(db.select(User.session_version).where(User.username == username))


def test_get_logout_does_not_log_out(client, login, world):
    login("customer")
    version = session_version("customer")
    page = client.get("/logout")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'<form method="post" action="/logout"', html)
    assert 'name="csrf_token"' in html
    assert client.get("/admin/").status_code == 200  # still signed in
    assert session_version("customer") == version  # other sessions not ended either


def test_a_cross_site_get_logout_of_a_captured_cookie_changes_nothing(web_app, client, login, world):
    login("finance")
    other = web_app.test_client()
    other.set_cookie(*_session_cookie(client))
    before = snapshot()
    other.get("/logout")
    assert changed_tables(before) == []
    assert client.get("/admin/").status_code == 200


def test_post_logout_without_the_token_does_not_log_out(client, login, world):
    login("customer")
    assert client.post("/logout").status_code == 400
    assert client.get("/admin/").status_code == 200


def test_post_logout_with_the_token_logs_out(client, login, world):
    login("customer")
    version = session_version("customer")
    answer = post(client, "/logout", {})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")
    assert client.get("/admin/").status_code == 302
    assert session_version("customer") == version + 1


def test_get_logout_when_signed_out_goes_to_login(client, world):
    answer = client.get("/logout")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


@pytest.mark.parametrize("path", ["/admin/", "/password"])
def test_no_page_links_to_logout_with_a_get(client, login, world, path):
    login("customer")
    if path == "/password":
        db.session.get(User, world.users["customer"].id).must_change_password = True
        db.session.commit()
    html = client.get(path).get_data(as_text=True)
    assert 'action="/logout"' in html
    assert 'href="/logout"' not in html


def editable_views(app):
    return [view for view in app.extensions["admin"][0]._views if getattr(view, "column_editable_list", None)]


def test_the_walk_finds_the_inline_edits(app):
    assert "device_expiry" in {view.endpoint for view in editable_views(app)}


@pytest.mark.parametrize("row_id", ["999999", "2147483647"])
def test_inline_edit_of_an_unknown_row_is_not_found(app, client, login, world, row_id):
    login("admin")
    token = csrf_token(client)
    before = snapshot()
    for view in editable_views(app):
        column = view.column_editable_list[0]
        answer = client.post(f"/admin/{view.endpoint}/ajax/update/",
                             data={"list_form_pk": row_id, column: "2031-01-01", "csrf_token": token})
        assert answer.status_code == 404, (view.endpoint, answer.status_code)
    assert changed_tables(before) == []


def test_inline_edit_of_a_known_row_still_works(client, login, world):
    device = world.devices["AC0001"]
    login("support")
    answer = post(client, "/admin/device_expiry/ajax/update/", {"list_form_pk": device.id, "expires_on": "2031-01-31"})
    assert answer.status_code == 200
    db.session.expire_all()
    assert str(db.session.get(Device, device.id).expires_on) == "2031-01-31"


def _session_cookie(client) -> tuple[str, str]:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.key, cookie.value
