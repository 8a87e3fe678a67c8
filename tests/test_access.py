"""Every view × every role: the menu shows exactly the views a role may use, and the URL
answers 200 to them, 403 to other roles and a redirect to /login to anonymous users."""
from __future__ import annotations

import pytest

from admin_views import registered_views
from admin_views.base import RoleMixin, ScopedModelView
from models import ROLES

ROLE_USERS = {"admin": "admin", "tech_support": "support", "finance": "finance", "sales": "sales",
              "customer_admin": "customer"}


def _views(app):
    return registered_views(app.extensions["admin"][0])


def _index_url(view) -> str:
    return view.url.rstrip("/") + "/"


def test_every_view_declares_roles(app):
    assert _views(app)
    for view in _views(app):
        assert isinstance(view, RoleMixin), f"{type(view).__name__} does not derive from the role base"
        assert view.roles, f"{type(view).__name__} declares no roles"
        assert set(view.roles) <= set(ROLES), f"{type(view).__name__} names an unknown role"


def test_customer_views_declare_their_scope(app):
    for view in _views(app):
        if isinstance(view, ScopedModelView) and "customer_admin" in view.roles:
            assert view.scope_column, f"{type(view).__name__} lets customers in without a scope"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_menu_and_urls_follow_the_declared_roles(app, client, login, world, role):
    login(ROLE_USERS[role])
    home = client.get("/admin/")
    assert home.status_code == 200
    menu = home.get_data(as_text=True)
    for view in _views(app):
        allowed = role == "admin" or role in view.roles
        url = _index_url(view)
        answer = client.get(url)
        assert answer.status_code == (200 if allowed else 403), (role, url, answer.status_code)
        if view.endpoint != "admin":
            assert (f'href="{url}"' in menu) == allowed, (role, url, "menu")


def test_anonymous_users_are_sent_to_login(app, client, world):
    for view in _views(app):
        url = _index_url(view)
        answer = client.get(url)
        assert answer.status_code == 302, url
        assert answer.headers["Location"].startswith("/login?next="), url


def test_model_view_sub_pages_are_guarded_too(app, client, login, world):
    """create/edit/details/export/action URLs answer 403 to a role the view does not allow."""
    login("finance")
    for view in _views(app):
        if not isinstance(view, ScopedModelView) or "finance" in view.roles:
            continue
        base = _index_url(view)
        for suffix in ("new/", "edit/?id=1", "details/?id=1", "export/xlsx/", "export/csv/"):
            assert client.get(base + suffix).status_code == 403, base + suffix
        from conftest import post

        assert post(client, base + "action/", {"action": "delete", "rowid": "1"}).status_code == 403
