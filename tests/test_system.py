"""System pages (admins only): companies (a tree kept as paths), users (create, deactivate,
reset password) and the read-only audit log that every change above writes to."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from actions import DomainError, NotAllowed
from actions.companies import create_company, place
from actions.users import create_user, reset_password, set_active
from models import AuditEvent, Company, User, db
from tests.conftest import FAST_HASH, PASSWORD, Login, confirm_post, make_company, post


def fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def company_named(name: str) -> Company | None:
    db.session.expire_all()
    return db.session.scalar(select(Company).where(Company.name == name))


def user_named(name: str) -> User | None:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.username == name))


def events(model: str | None = None, action: str | None = None) -> list[AuditEvent]:
    db.session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    if model:
        query = query.where(AuditEvent.model == model)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


def action_post(client, endpoint: str, action: str, ids, **kwargs):
    pairs = [("action", action)] + [("rowid", str(i)) for i in ids]
    return confirm_post(client, f"/admin/{endpoint}/action/", pairs, required=False, **kwargs)


def flashed_password(page: str, username: str) -> str:
    match = re.search(rf"password of {re.escape(username)} \(shown once\): (\S+?)\s*<", page)
    assert match, f"no password flashed for {username}"
    return match.group(1)


def company_form(name: str, parent: Company | None = None, **extra) -> dict:
    form = {"name": name, "parent": str(parent.id) if parent else "__None", "status": "active",
            "tax_id": "", "contact_name": "", "contact_phone": "", "contact_email": ""}
    form.update(extra)
    return form


def user_form(username: str, role: str, company: Company | None = None, password: str = "") -> dict:
    return {"username": username, "email": f"{username}@example.test", "role": role,
            "company": str(company.id) if company else "__None", "locale": "", "initial_password": password}


# --- companies: the rules ------------------------------------------------------------------------

def test_create_company_places_it_under_its_parent_and_audits(world):
    west = create_company(db.session, world.users["admin"], "  Acme West ", world.acme)
    db.session.commit()
    assert west.name == "Acme West"
    assert west.path == f"{world.acme.path}{west.id}/"
    (event,) = events("company", "create")
    assert event.ids == f",{west.id}," and event.actor_name == "admin"


def test_create_company_needs_a_name_and_an_admin(world):
    with pytest.raises(DomainError, match="name is required"):
        create_company(db.session, world.users["admin"], "  ")
    with pytest.raises(NotAllowed):
        create_company(db.session, world.users["support"], "Sneaky")


def test_moving_a_company_moves_its_subtree(world):
    place(db.session, world.north, world.globex)
    db.session.commit()
    north, fleet = fresh(Company, world.north.id), fresh(Company, world.fleet.id)
    assert north.path == f"/{world.globex.id}/{north.id}/"
    assert fleet.path == f"/{world.globex.id}/{north.id}/{fleet.id}/"
    assert north.parent_id == world.globex.id
    assert fresh(Company, world.south.id).path == f"/{world.acme.id}/{world.south.id}/"


def test_moving_a_company_to_the_top(world):
    place(db.session, world.north, None)
    db.session.commit()
    assert fresh(Company, world.fleet.id).path == f"/{world.north.id}/{world.fleet.id}/"


@pytest.mark.parametrize("target", ["fleet", "north"])
def test_a_company_cannot_go_under_itself_or_its_subsidiary(world, target):
    with pytest.raises(DomainError, match="cannot be placed under its own subsidiary"):
        place(db.session, world.north, getattr(world, target))


def test_a_moved_subtree_leaves_the_old_customer_scope(world, client, login):
    place(db.session, world.north, world.globex)
    db.session.commit()
    login("customer")
    page = client.get("/admin/device/?page_size=100").get_data(as_text=True)
    assert "NO0001" not in page and "FL0001" not in page and "SO0001" in page


# --- companies over HTTP --------------------------------------------------------------------------

def test_create_company_under_a_parent_through_the_form(client, login, world):
    login("admin")
    response = post(client, "/admin/company/new/", company_form("Acme East", world.acme, tax_id="91310000X"))
    assert response.status_code == 302
    east = company_named("Acme East")
    assert east.parent_id == world.acme.id
    assert east.path == f"/{world.acme.id}/{east.id}/"
    assert east.tax_id == "91310000X"
    (event,) = events("company", "create")
    assert event.actor_name == "admin" and event.ids == f",{east.id},"
    assert "Name: — → Acme East" in event.summary


def test_create_top_level_company_through_the_form(client, login, world):
    login("admin")
    assert post(client, "/admin/company/new/", company_form("Initech")).status_code == 302
    initech = company_named("Initech")
    assert initech.parent_id is None and initech.path == f"/{initech.id}/"


def test_move_company_through_the_form_moves_the_subtree(client, login, world):
    login("admin")
    response = post(client, f"/admin/company/edit/?id={world.north.id}", company_form("Acme North", world.south))
    assert response.status_code == 302
    north, fleet = fresh(Company, world.north.id), fresh(Company, world.fleet.id)
    assert north.parent_id == world.south.id
    assert north.path == f"{world.south.path}{north.id}/"
    assert fleet.path == f"{world.south.path}{north.id}/{fleet.id}/"
    (event,) = events("company", "edit")
    assert event.ids == f",{north.id}," and event.actor_name == "admin"
    assert "Parent company: Acme Logistics → Acme South" in event.summary
    assert "Path" not in event.summary and world.south.path not in event.summary  # ids are not for readers


def test_moving_under_own_subsidiary_is_refused_through_the_form(client, login, world):
    paths = {c.id: c.path for c in db.session.scalars(select(Company))}
    login("admin")
    response = post(client, f"/admin/company/edit/?id={world.north.id}", company_form("Acme North", world.fleet))
    page = response.get_data(as_text=True)
    assert "Company Acme North cannot be placed under its own subsidiary Acme North Fleet." in page
    db.session.expire_all()
    assert {c.id: c.path for c in db.session.scalars(select(Company))} == paths
    assert fresh(Company, world.north.id).parent_id == world.acme.id
    assert events("company") == []


def test_editing_company_details_keeps_its_place(client, login, world):
    login("admin")
    response = post(client, f"/admin/company/edit/?id={world.north.id}",
                    company_form("Acme North Ltd", world.acme, contact_name="Li Lei"))
    assert response.status_code == 302
    north = fresh(Company, world.north.id)
    assert (north.name, north.contact_name, north.path) == ("Acme North Ltd", "Li Lei", f"/{world.acme.id}/{north.id}/")
    (event,) = events("company", "edit")
    assert "Name: Acme North → Acme North Ltd" in event.summary


def test_company_list_filter_takes_the_subtree(client, login, world):
    login("admin")
    page = client.get(f"/admin/company/?flt0_company_in_the_tree_of={world.north.id}").get_data(as_text=True)
    names = [re.sub(r"(&nbsp;)+", "", n) for n in re.findall(r'<td class="col-name">\s*(.*?)\s*</td>', page, re.S)]
    assert names == ["Acme North", "Acme North Fleet"]
    assert "List (2)" in page


def test_company_names_are_escaped_in_the_list(client, login, world):
    login("admin")
    page = client.get("/admin/company/").get_data(as_text=True)
    assert "Globex <b>Trading</b>" not in page
    assert "Globex &lt;b&gt;Trading&lt;/b&gt;" in page


# --- users: the rules ----------------------------------------------------------------------------

def test_create_user_must_change_password(world):
    user = create_user(db.session, world.users["admin"], " li ", "finance", "initial-pass-1", method=FAST_HASH)
    db.session.commit()
    assert user.username == "li" and user.must_change_password and user.company is None
    assert user.check_password("initial-pass-1")
    (event,) = events("user", "create")
    assert event.ids == f",{user.id}," and event.summary == "User li created (Finance)"
    assert event.summary_data["params"]["role"] == {"label": "user_role", "code": "finance"}


def test_customer_admin_needs_a_company(world):
    with pytest.raises(DomainError, match="needs a company"):
        create_user(db.session, world.users["admin"], "li", "customer_admin", "x" * 12, method=FAST_HASH)


def test_staff_users_get_no_company(world):
    user = create_user(db.session, world.users["admin"], "li", "sales", "x" * 12, company=world.acme,
                       method=FAST_HASH)
    assert user.company is None


@pytest.mark.parametrize("username, role, message", [
    ("admin", "sales", "The username admin is taken."),
    ("", "sales", "The username is required."),
    ("li", "king", "Unknown role king."),
])
def test_create_user_refusals(world, username, role, message):
    with pytest.raises(DomainError, match=re.escape(message)):
        create_user(db.session, world.users["admin"], username, role, "x" * 12, method=FAST_HASH)


def test_only_admins_manage_users(world):
    for fn in (lambda a: create_user(db.session, a, "li", "sales", "x" * 12, method=FAST_HASH),
               lambda a: set_active(db.session, a, [world.users["sales"]], False),
               lambda a: reset_password(db.session, a, [world.users["sales"]], method=FAST_HASH)):
        with pytest.raises(NotAllowed):
            fn(world.users["support"])


def test_deactivate_ends_sessions_and_refuses_self(world):
    admin, sales = world.users["admin"], world.users["sales"]
    version = sales.session_version
    result = set_active(db.session, admin, [sales, admin], False)
    db.session.commit()
    assert result.changed == ("sales",)
    assert [(name, str(why)) for name, why in result.refused] == [("admin", "you cannot deactivate yourself")]
    sales = fresh(User, sales.id)
    assert not sales.active and sales.session_version == version + 1
    assert fresh(User, admin.id).active
    (event,) = events("user", "deactivate")
    assert event.ids == f",{sales.id},"


def test_reactivate(world):
    sales = world.users["sales"]
    set_active(db.session, world.users["admin"], [sales], False)
    result = set_active(db.session, world.users["admin"], [sales], True)
    assert result.changed == ("sales",) and fresh(User, sales.id).active


def test_reset_password_gives_a_new_one_to_change(world):
    sales = world.users["sales"]
    sales.failed_logins = 3
    passwords = reset_password(db.session, world.users["admin"], [sales], method=FAST_HASH)
    db.session.commit()
    sales = fresh(User, sales.id)
    assert sales.check_password(passwords["sales"]) and not sales.check_password(PASSWORD)
    assert sales.must_change_password and sales.failed_logins == 0
    (event,) = events("user", "reset_password")
    assert event.ids == f",{sales.id},"
    assert passwords["sales"] not in event.summary


# --- users over HTTP -------------------------------------------------------------------------------

def test_create_user_with_initial_password_through_the_form(client, login, world, web_app):
    login("admin")
    response = post(client, "/admin/user/new/", user_form("lucy", "customer_admin", world.north, "first-pass-123"),
                    follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "shown once" not in page
    lucy = user_named("lucy")
    assert lucy.role == "customer_admin" and lucy.company_id == world.north.id and lucy.must_change_password
    (event,) = events("user", "create")
    assert event.actor_name == "admin" and event.ids == f",{lucy.id},"

    other = web_app.test_client()
    response = Login(other)("lucy", "first-pass-123")
    assert response.status_code == 302 and response.headers["Location"].endswith("/password")
    assert other.get("/admin/device/").headers["Location"].endswith("/password")


def test_create_user_without_password_flashes_a_generated_one_once(client, login, world, web_app):
    login("admin")
    page = post(client, "/admin/user/new/", user_form("ming", "finance"), follow_redirects=True).get_data(as_text=True)
    password = flashed_password(page, "ming")
    assert password not in client.get("/admin/user/").get_data(as_text=True)
    assert password not in "".join(e.summary for e in events())

    other = web_app.test_client()
    response = Login(other)("ming", password)
    assert response.status_code == 302 and response.headers["Location"].endswith("/password")
    response = post(other, "/password", {"current": password, "new": "my-own-password-9",
                                         "confirm": "my-own-password-9"})
    assert response.status_code == 302
    assert other.get("/admin/").status_code == 200
    assert not user_named("ming").must_change_password


def test_customer_admin_without_company_is_refused(client, login, world):
    login("admin")
    page = post(client, "/admin/user/new/", user_form("nobody", "customer_admin"), follow_redirects=True
                ).get_data(as_text=True)
    assert "A customer administrator needs a company." in page
    assert user_named("nobody") is None
    assert events("user", "create") == []


def test_editing_a_customer_admin_to_no_company_is_refused(client, login, world):
    login("admin")
    customer = world.users["customer"]
    page = post(client, f"/admin/user/edit/?id={customer.id}",
                {"email": "c@example.test", "role": "customer_admin", "company": "__None", "locale": ""}
                ).get_data(as_text=True)
    assert "A customer administrator needs a company." in page
    assert fresh(User, customer.id).company_id == world.acme.id


def test_editing_a_user_is_audited_and_never_renames(client, login, world):
    login("admin")
    sales = world.users["sales"]
    response = post(client, f"/admin/user/edit/?id={sales.id}",
                    {"username": "renamed", "email": "new@example.test", "role": "sales", "company": "__None",
                     "locale": "vi"})
    assert response.status_code == 302
    sales = fresh(User, sales.id)
    assert (sales.username, sales.email, sales.locale) == ("sales", "new@example.test", "vi")
    (event,) = events("user", "edit")
    assert "Email: sales@example.test → new@example.test" in event.summary
    assert event.ids == f",{sales.id},"


def test_duplicate_username_is_refused_on_the_form(client, login, world):
    login("admin")
    page = post(client, "/admin/user/new/", user_form("sales", "finance")).get_data(as_text=True)
    assert "Already exists." in page or "The username sales is taken." in page
    assert user_named("sales").role == "sales"


def test_deactivated_users_session_stops_working(client, login, world, web_app):
    victim = web_app.test_client()
    Login(victim)("sales")
    assert victim.get("/admin/").status_code == 200

    login("admin")
    page = action_post(client, "user", "deactivate", [world.users["sales"].id], follow_redirects=True
                       ).get_data(as_text=True)
    assert "1 users deactivated." in page

    response = victim.get("/admin/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    page = Login(victim)("sales", follow=True).get_data(as_text=True)
    assert "This account is deactivated." in page
    (event,) = events("user", "deactivate")
    assert event.actor_name == "admin" and event.ids == f",{world.users['sales'].id},"


def test_admin_cannot_deactivate_themself(client, login, world):
    login("admin")
    admin = world.users["admin"]
    page = action_post(client, "user", "deactivate", [admin.id], follow_redirects=True).get_data(as_text=True)
    assert "Not changed: admin (you cannot deactivate yourself)" in page
    assert fresh(User, admin.id).active
    assert client.get("/admin/user/").status_code == 200


def test_reset_password_action(client, login, world, web_app):
    victim = web_app.test_client()
    Login(victim)("north")
    login("admin")
    page = action_post(client, "user", "reset_password", [world.users["north"].id], follow_redirects=True
                       ).get_data(as_text=True)
    password = flashed_password(page, "north")

    response = victim.get("/admin/")  # the old session ends with the old password
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    fresh_client = web_app.test_client()
    page = Login(fresh_client)("north", PASSWORD, follow=True).get_data(as_text=True)
    assert "Invalid username or password." in page
    response = Login(fresh_client)("north", password)
    assert response.status_code == 302 and response.headers["Location"].endswith("/password")
    assert fresh(User, world.users["north"].id).must_change_password
    (event,) = events("user", "reset_password")
    assert event.actor_name == "admin" and event.ids == f",{world.users['north'].id},"


def test_activate_action(client, login, world):
    world.users["sales"].active = False
    db.session.commit()
    login("admin")
    page = action_post(client, "user", "activate", [world.users["sales"].id], follow_redirects=True
                       ).get_data(as_text=True)
    assert "1 users activated." in page
    assert fresh(User, world.users["sales"].id).active


def test_user_actions_name_unknown_ids(client, login, world):
    login("admin")
    page = action_post(client, "user", "deactivate", [99999], follow_redirects=True).get_data(as_text=True)
    assert "#99999" in page


def test_user_list_filters(client, login, world):
    login("admin")
    page = client.get("/admin/user/?flt0_role_equals=customer_admin").get_data(as_text=True)
    names = re.findall(r'<td class="col-username">\s*(\S+)\s*</td>', page)
    assert sorted(names) == ["customer", "globex", "north"]
    page = client.get(f"/admin/user/?flt0_company_in_the_tree_of={world.north.id}").get_data(as_text=True)
    assert re.findall(r'<td class="col-username">\s*(\S+)\s*</td>', page) == ["north"]


# --- the audit log ---------------------------------------------------------------------------------

def test_audit_log_lists_the_operations(client, login, world):
    login("admin")
    post(client, "/admin/company/new/", company_form("Acme East", world.acme))
    action_post(client, "user", "reset_password", [world.users["sales"].id])
    page = client.get("/admin/auditevent/").get_data(as_text=True)
    assert "Reset password" in page and "Acme East" in page  # the action as it reads
    page = client.get("/admin/auditevent/?flt0_action_equals=reset_password").get_data(as_text=True)
    assert "Reset password" in page and "Acme East" not in page
    page = client.get("/admin/auditevent/?flt0_table_equals=company").get_data(as_text=True)
    page = re.sub(r'<div id="filter-groups-data".*?</div>', "", page, flags=re.S)  # the filter's codes, not shown
    assert "Acme East" in page and "reset_password" not in page
    page = client.get("/admin/auditevent/?flt0_actor_equals=nobody").get_data(as_text=True)
    assert "Acme East" not in page


def test_audit_log_search(client, login, world):
    login("admin")
    post(client, "/admin/company/new/", company_form("Acme East", world.acme))
    assert "Acme East" in client.get("/admin/auditevent/?search=East").get_data(as_text=True)


def test_audit_log_is_read_only(client, login, world):
    login("admin")
    action_post(client, "user", "reset_password", [world.users["sales"].id])
    (event,) = events("user", "reset_password")
    assert client.get("/admin/auditevent/new/").status_code == 302
    assert post(client, "/admin/auditevent/new/", {"actor_name": "x", "action": "forged", "model": "user"}
                ).status_code == 302
    assert client.get(f"/admin/auditevent/edit/?id={event.id}").status_code == 302
    assert post(client, f"/admin/auditevent/edit/?id={event.id}", {"action": "forged"}).status_code == 302
    assert post(client, "/admin/auditevent/delete/", {"id": event.id}).status_code == 302
    action_post(client, "auditevent", "delete", [event.id])
    remaining = events()
    assert event.id in [e.id for e in remaining]
    assert "forged" not in [e.action for e in remaining]
    page = client.get("/admin/auditevent/").get_data(as_text=True)
    assert "/admin/auditevent/new/" not in page and "/admin/auditevent/edit/" not in page


@pytest.mark.parametrize("role", ["support", "finance", "sales", "customer"])
def test_system_pages_are_for_admins_only(client, login, world, role):
    login(role)
    for url in ("/admin/company/", "/admin/company/new/", "/admin/user/", "/admin/user/new/",
                "/admin/auditevent/", f"/admin/user/edit/?id={world.users[role].id}"):
        assert client.get(url).status_code == 403, url
    response = action_post(client, "user", "deactivate", [world.users["sales"].id])
    assert response.status_code == 403
    assert fresh(User, world.users["sales"].id).active


def test_every_change_above_is_in_the_audit_log(client, login, world):
    """Create, edit, bulk actions and deletes each leave an event naming actor, action, table and ids."""
    gps_y_id, device_id = world.packages["GPS-Y"].id, world.devices["AC0001"].id
    login("admin")
    post(client, "/admin/company/new/", company_form("Acme East", world.acme))
    east = company_named("Acme East")
    post(client, f"/admin/company/edit/?id={east.id}", company_form("Acme East", world.south))
    post(client, "/admin/user/new/", user_form("ming", "finance"))
    ming = user_named("ming")
    post(client, f"/admin/user/edit/?id={ming.id}",
         {"email": "m@example.test", "role": "finance", "company": "__None", "locale": ""})
    action_post(client, "user", "deactivate", [ming.id])
    action_post(client, "user", "activate", [ming.id])
    action_post(client, "user", "reset_password", [ming.id])
    action_post(client, "device", "suspend", [device_id])
    action_post(client, "device", "enable", [device_id])
    confirm_post(client, "/admin/package/delete/", {"id": gps_y_id})
    got = [(e.actor_name, e.action, e.model, e.ids) for e in events() if e.action not in ("login",)]
    assert got == [
        ("admin", "create", "company", f",{east.id},"),
        ("admin", "edit", "company", f",{east.id},"),
        ("admin", "create", "user", f",{ming.id},"),
        ("admin", "edit", "user", f",{ming.id},"),
        ("admin", "deactivate", "user", f",{ming.id},"),
        ("admin", "activate", "user", f",{ming.id},"),
        ("admin", "reset_password", "user", f",{ming.id},"),
        ("admin", "suspend", "device", f",{device_id},"),
        ("admin", "enable", "device", f",{device_id},"),
        ("admin", "delete", "package", f",{gps_y_id},"),
    ]
    assert all(e.ip == "127.0.0.1" for e in events())


def test_make_company_helper_keeps_paths_unique(world):
    a = make_company("A", world.globex)
    b = make_company("B", world.globex)
    assert a.path != b.path and a.path.startswith(world.globex.path)


@pytest.mark.parametrize("query, expected", [
    ("flt0_time_greater_than=2000-01-01+00:00:00", 1),
    ("flt0_time_smaller_than=2000-01-01+00:00:00", 0),
    ("flt0_time_between=2000-01-01+00:00:00+to+2999-01-01+00:00:00", 1),
    ("flt0_time_not_between=2000-01-01+00:00:00+to+2999-01-01+00:00:00", 0),
    ("flt0_time_equals=2000-01-01+00:00:00", 0),
    ("flt0_time_empty=0", 1),
])
def test_audit_log_time_filters(client, login, world, query, expected):
    login("admin")
    action_post(client, "user", "reset_password", [world.users["sales"].id])
    page = client.get(f"/admin/auditevent/?flt1_action_equals=reset_password&{query}")
    assert page.status_code == 200
    assert page.get_data(as_text=True).count('<td class="col-action">') == expected


def test_audit_log_filters_by_exact_row_id(client, login, world):
    ids = [world.users[n].id for n in ("sales", "finance")]
    login("admin")
    action_post(client, "user", "reset_password", [ids[0]])
    action_post(client, "user", "reset_password", [ids[1]])
    page = client.get(f"/admin/auditevent/?flt0_row_ids_includes={ids[0]}&flt1_action_equals=reset_password")
    cells = re.findall(r'<td class="col-ids">\s*(.*?)\s*</td>', page.get_data(as_text=True), re.S)
    assert cells == [str(ids[0])]


def test_audit_log_export_is_formula_safe(client, login, world):
    login("admin")
    post(client, "/admin/company/new/", company_form("=cmd", world.acme))
    text = client.get("/admin/auditevent/export/csv/?flt0_table_equals=company").get_data(as_text=True)
    assert "=cmd" in text
    assert "\n=" not in text and ",=" not in text


def test_reset_password_names_unknown_ids(client, login, world):
    login("admin")
    page = action_post(client, "user", "reset_password", [99999], follow_redirects=True).get_data(as_text=True)
    assert "#99999 (not found or outside your companies)" in page


def test_a_users_language_reads_by_its_name(client, login, world):
    """语言 on the user's details: 简体中文, not the code zh_Hans_CN; blank (not "None") when it follows the browser."""
    chosen, unset = world.users["finance"], world.users["sales"]
    chosen.locale, unset.locale = "zh_Hans_CN", None
    db.session.commit()
    login("admin")
    def language_cell(user) -> str:
        page = client.get(f"/admin/user/details/?id={user.id}").get_data(as_text=True)
        return re.search(r"<b>Language</b>\s*</td>\s*<td>(.*?)</td>", page, re.S).group(1).strip()

    assert language_cell(chosen) == "简体中文"
    assert language_cell(unset) == ""
