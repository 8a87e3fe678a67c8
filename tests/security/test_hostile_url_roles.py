"""Each role against every GET URL of the url_map beyond the views' index pages: new/, edit/,
details/, export/, ajax lookups and every custom page a view exposes answer 403 to a role the view
does not list (admins may use everything) and something else to the roles it lists; anonymous
users are sent to /login. The view of a URL is found from its endpoint. None of these GETs changes
anything (they carry no CSRF token)."""
from __future__ import annotations

import pytest

from console_urls import console_get_urls
from db_snapshot import changed_tables, snapshot
from models import ROLES

ROLE_USERS = {"admin": "admin", "tech_support": "support", "finance": "finance", "sales": "sales",
              "customer_admin": "customer"}


def test_the_walk_reaches_sub_pages_and_custom_pages(app):
    urls = {url.split("?")[0] for url, _view in console_get_urls(app)}
    for expected in ("/admin/device/new/", "/admin/device/edit/", "/admin/device/details/",
                     "/admin/device/export/xlsx/", "/admin/device/export/csv/", "/admin/device/ajax/lookup/",
                     "/admin/expiry_import/template", "/admin/expiry_import/preview/1",
                     "/admin/renewal_center/order/RC-GLOBEX-0001/", "/admin/recharge_record/top-up/",
                     "/admin/bank_transfer/file/1"):
        assert expected in urls, expected
    assert len(urls) > 120


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_console_get_url_follows_the_views_roles(app, client, login, world, role):
    login(ROLE_USERS[role])
    before = snapshot()
    wrong = []
    for url, view in console_get_urls(app):
        allowed = role == "admin" or role in view.roles
        status = client.get(url).status_code
        if (status == 403) == allowed:
            wrong.append((url, status, "allowed" if allowed else "not allowed"))
    assert wrong == []
    assert changed_tables(before) == [], "a GET changed something (GETs carry no CSRF token)"


def test_anonymous_users_are_sent_to_login_from_every_console_get_url(app, client, world):
    wrong = []
    for url, _view in console_get_urls(app):
        answer = client.get(url)
        if answer.status_code != 302 or not answer.headers["Location"].startswith("/login?next="):
            wrong.append((url, answer.status_code, answer.headers.get("Location")))
    assert wrong == []


@pytest.mark.parametrize("url", ["/password", "/sandbox/pay/RC-GLOBEX-0001?method=wechat"])
def test_anonymous_users_are_sent_to_login_outside_the_console(client, world, url):
    answer = client.get(url)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login?next=")
