"""员工权限设置: an employee of a customer company sees only the menus of its permission areas and gets 403 on every
other view's URLs (every page of the view, exports and ajax look-ups included, and the pay blueprints); whoever
manages employees grants only what it has, touches only its own company tree's employees, never itself or a
full-access administrator; every change is audited and ends the employee's sessions."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from actions.employees import (
    EmployeeNotFound, EmployeeRefused, create_employee, reset_employee_password, set_areas, set_employee_active,
)
from actions.permissions import AREAS, OPEN, may_use, may_use_any
from admin_views import registered_views
from admin_views.base import ScopedModelView
from admin_views.cards import DistributorAccess
from conftest import FAST_HASH, PASSWORD, confirm_post, make_company, make_user, post
from models import AuditEvent, Order, User, db

pytest_plugins = ("card_fixtures",)


def _employee(actor: User, username: str, areas: list[str]) -> User:
    user, _password = create_employee(db.session, actor, username, areas, PASSWORD, must_change_password=False,
                                      method=FAST_HASH)
    db.session.commit()
    return user


def _form(fields: dict) -> list[tuple[str, str]]:
    """A form's pairs, a list value repeated (ticked checkboxes)."""
    return [(name, v) for name, value in fields.items() for v in (value if isinstance(value, list) else [value])]


def _customer_views(app):
    """Every view a customer login may reach by its role (distributors' views included)."""
    return [view for view in registered_views(app.extensions["admin"][0])
            if "customer_admin" in view.roles or isinstance(view, DistributorAccess)]


def _urls_of(app, view) -> list[tuple[str, str, str]]:
    """(method, url, page) of every URL rule of `view`, arguments filled with "1"."""
    found = []
    for rule in app.url_map.iter_rules():
        endpoint, _dot, page = rule.endpoint.rpartition(".")
        if endpoint != view.endpoint:
            continue
        url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "1", rule.rule)
        method = "GET" if "GET" in rule.methods else "POST"
        found.append((method, url, page))
    return found


def _walk(app, client, employee: User) -> None:
    """Each customer view: drawn in the menu and opened iff the employee's areas allow it; each of its other URLs
    (forms, exports, ajax, actions) answers 403 when they do not."""
    menu = client.get("/admin/").get_data(as_text=True)
    for view in _customer_views(app):
        index = view.url.rstrip("/") + "/"
        allowed = view.role_allows(employee) and may_use(employee, view.area)
        answer = client.get(index)
        if view.area != OPEN:
            assert (answer.status_code == 200) == allowed, (index, answer.status_code, allowed)
            if not allowed:
                assert answer.status_code == 403, (index, answer.status_code)
            assert (f'href="{index}"' in menu) == allowed, (index, "menu")
        if allowed:
            continue
        urls = _urls_of(app, view)
        if isinstance(view, ScopedModelView):
            urls += [("GET", index + "export/csv/", "export"), ("GET", index + "export/xlsx/", "export"),
                     ("GET", index + "ajax/lookup/?name=company&query=a", "ajax_lookup"),
                     ("POST", index + "action/", "action_view")]
        assert len(urls) > 0, index
        for method, url, page in urls:
            shared = view.shared_pages.get(page)
            if shared is not None and may_use_any(employee, shared):
                continue  # an order page, open to an area that makes orders (the order itself is checked)
            answer = client.get(url) if method == "GET" else post(client, url, {"action": "delete", "rowid": "1"})
            assert answer.status_code == 403, (method, url, answer.status_code)


def test_every_customer_view_names_its_area(app):
    """A customer view without an area is closed to every employee: each names one (or is open, the home page)."""
    for view in _customer_views(app):
        assert view.area == OPEN or view.area in AREAS, f"{type(view).__name__} names no permission area"
        for areas in view.shared_pages.values():
            assert set(areas) <= set(AREAS), type(view).__name__


def test_distributor_clerk_sees_only_card_orders_and_customers(app, client, login, cards):
    clerk = _employee(cards["users"]["a_admin"], "clerk", ["card_orders", "card_customers"])
    login("clerk")
    _walk(app, client, clerk)
    assert client.get("/admin/cardorder/").status_code == 200
    assert client.get("/admin/cardcustomer/").status_code == 200
    for url in ("/admin/simcard/", "/admin/simcard/export/xlsx/", "/admin/cardquote/", "/admin/withdrawal/",
                "/admin/employees/", "/admin/order_record/export/csv/", "/admin/device/ajax/lookup/?name=x&query=a"):
        assert client.get(url).status_code == 403, url


def test_device_employee_sees_only_devices(app, client, login, world):
    employee = _employee(world.users["customer"], "fleet-clerk", ["devices", "invoices"])
    login("fleet-clerk")
    _walk(app, client, employee)
    home = client.get("/admin/").get_data(as_text=True)
    assert 'id="rd-balances"' not in home  # the wallet is the orders area's
    assert "/admin/order_record/" not in home


def test_order_pages_follow_the_kind_of_the_order(app, client, login, world):
    """The renewal center's order pages serve every order kind: an employee opens only orders its areas make, and
    the pay blueprints answer 403 to one with no area that makes orders."""
    acme = world.acme
    order = Order(number="RC-ACME-0001", kind="recharge", status="pending", company_id=acme.id, currency="CNY",
                  total=50)
    db.session.add(order)
    db.session.commit()
    _employee(world.users["customer"], "members-clerk", ["members"])
    _employee(world.users["customer"], "device-clerk", ["devices"])
    _employee(world.users["customer"], "order-clerk", ["orders"])
    login("members-clerk")
    assert client.get("/admin/renewal_center/order/RC-ACME-0001/").status_code == 404  # a recharge: not members'
    assert client.get("/admin/renewal_center/").status_code == 403
    login.logout()
    login("device-clerk")
    assert client.get("/admin/renewal_center/order/RC-ACME-0001/").status_code == 403
    assert client.get("/payments/pay/RC-ACME-0001/wechat").status_code == 403
    assert client.get("/sandbox/pay/RC-ACME-0001").status_code == 403
    login.logout()
    login("order-clerk")
    assert client.get("/admin/renewal_center/order/RC-ACME-0001/").status_code == 200
    assert client.get("/admin/renewal_center/order/RC-ACME-0001/pay/").status_code == 200


def test_full_access_users_keep_everything(app, client, login, world):
    """Existing logins (areas NULL) are administrators: every customer view, and the employee page."""
    assert world.users["customer"].areas is None
    login("customer")
    menu = client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/employees/"' in menu
    for view in _customer_views(app):
        if view.role_allows(world.users["customer"]):
            assert client.get(view.url.rstrip("/") + "/").status_code == 200, view.url


def test_no_escalation(app, world):
    admin = world.users["customer"]
    manager = _employee(admin, "manager", ["employees", "devices"])
    with pytest.raises(EmployeeRefused, match="Orders"):
        create_employee(db.session, manager, "helper", ["devices", "orders"], PASSWORD, method=FAST_HASH)
    db.session.rollback()
    helper = _employee(manager, "helper", ["devices"])
    with pytest.raises(EmployeeRefused):
        set_areas(db.session, manager, helper, ["devices", "invoices"])
    db.session.rollback()
    stronger = _employee(admin, "stronger", ["devices", "invoices"])
    for attempt in (lambda: set_areas(db.session, manager, stronger, ["devices"]),
                    lambda: reset_employee_password(db.session, manager, stronger, method=FAST_HASH),
                    lambda: set_employee_active(db.session, manager, stronger, False)):
        with pytest.raises(EmployeeRefused):
            attempt()
        db.session.rollback()
    with pytest.raises(EmployeeRefused):  # not itself
        set_areas(db.session, manager, manager, ["devices"])
    db.session.rollback()
    with pytest.raises(EmployeeRefused):  # not a full-access administrator
        set_employee_active(db.session, manager, admin, False)
    db.session.rollback()
    assert set_areas(db.session, manager, helper, []) is True  # taking away is not granting
    db.session.commit()
    assert db.session.get(User, helper.id).areas == []


def test_only_the_company_tree(app, client, login, world):
    admin = world.users["customer"]
    globex_clerk = _employee(world.users["globex"], "globex-clerk", ["devices"])
    with pytest.raises(EmployeeNotFound):
        set_areas(db.session, admin, globex_clerk, [])
    db.session.rollback()
    login("customer")
    for url in ("/admin/employees/areas/", "/admin/employees/deactivate/", "/admin/employees/reset-password/",
                "/admin/employees/activate/"):
        assert post(client, url, {"id": str(globex_clerk.id), "areas": "devices"}).status_code == 404, url
    north = world.users["north"]  # a subsidiary's administrator: listed, but full access
    page = client.get("/admin/employees/").get_data(as_text=True)
    assert 'data-user="north"' in page and 'data-user="globex-clerk"' not in page
    answer = post(client, "/admin/employees/areas/", {"id": str(north.id), "areas": "devices"})
    assert answer.status_code == 200 and "full access" in answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, north.id).areas is None
    assert db.session.get(User, globex_clerk.id).areas == ["devices"]


def test_page_adds_edits_deactivates_and_audits(app, client, login, world):
    login("customer")
    typed = {"username": "north", "full_name": "Zhang San", "email": "zs@example.test",
             "areas": ["devices", "invoices"]}
    answer = post(client, "/admin/employees/new/", _form(typed))
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "is taken" in text  # refused: the form keeps what was typed
    assert 'value="Zhang San"' in text and 'value="zs@example.test"' in text
    assert re.search(r'value="invoices"[^>]*checked', text)
    answer = post(client, "/admin/employees/new/", _form({"username": "zhangsan", "full_name": "Zhang San",
                                                          "areas": ["devices", "invoices"]}), follow_redirects=True)
    assert "zhangsan" in answer.get_data(as_text=True)
    employee = db.session.scalar(select(User).where(User.username == "zhangsan"))
    assert employee.areas == ["devices", "invoices"] and employee.must_change_password
    assert employee.company_id == world.acme.id

    employee_client = client.application.test_client()
    from conftest import Login

    employee.must_change_password = False
    employee.set_password(PASSWORD, method=FAST_HASH)
    db.session.commit()
    Login(employee_client)("zhangsan")
    assert employee_client.get("/admin/device/").status_code == 200

    post(client, "/admin/employees/areas/", {"id": str(employee.id), "areas": "devices"}, follow_redirects=True)
    db.session.expire_all()
    assert db.session.get(User, employee.id).areas == ["devices"]
    assert employee_client.get("/admin/device/").status_code == 302  # its session ended with the change

    confirm_post(client, "/admin/employees/deactivate/", {"id": str(employee.id)})
    db.session.expire_all()
    assert db.session.get(User, employee.id).active is False
    post(client, "/admin/employees/activate/", {"id": str(employee.id)})
    answer = confirm_post(client, "/admin/employees/reset-password/", {"id": str(employee.id)}, follow_redirects=True)
    assert "zhangsan" in answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, employee.id).must_change_password is True

    events = db.session.scalars(select(AuditEvent).where(AuditEvent.ids.contains(f",{employee.id},"))
                                .order_by(AuditEvent.id)).all()
    mine = [(e.action, e.summary_data["key"]) for e in events if e.actor_name == "customer"]
    assert mine == [("create", "audit.employee.create"), ("set_permissions", "audit.employee.areas"),
                    ("deactivate", "audit.employee.deactivate"), ("activate", "audit.employee.activate"),
                    ("reset_password", "audit.employee.reset_password")]
    areas_event = next(e for e in events if e.action == "set_permissions")
    assert areas_event.summary == "Employee zhangsan: permissions Devices, Invoices → Devices"


def test_an_employee_with_the_employees_area_manages_within_its_areas(app, client, login, world):
    _employee(world.users["customer"], "hr", ["employees", "devices"])
    login("hr")
    page = client.get("/admin/employees/").get_data(as_text=True)
    assert 'value="devices"' in page and 'value="orders"' not in page  # it offers only what hr has
    answer = post(client, "/admin/employees/new/", _form({"username": "hr-helper", "areas": ["devices", "orders"]}))
    assert answer.status_code == 200
    assert db.session.scalar(select(User).where(User.username == "hr-helper")) is None


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
def test_page_has_no_english(app, client, login, world, locale):
    from test_no_english import english_in, read

    world.users["customer"].locale = locale
    _employee(world.users["customer"], "clerk", ["devices"])
    login("customer")
    text = " ".join(read(client.get("/admin/employees/").get_data(as_text=True)).parts)
    assert english_in(text) == []
    for words in ("Permissions", "Employee", "full access", "Add an employee", "Active", "Reset password",
                  "Deactivate", "Devices", "Orders"):
        assert words not in text, (locale, words)


def test_demo_clerk(app):
    from actions.card_demo import seed_cards

    seed_cards(db.session, app.extensions["card_vault"], method=FAST_HASH)
    db.session.commit()
    clerk = db.session.scalar(select(User).where(User.username == "distributor-clerk"))
    assert clerk.areas == ["card_orders", "card_customers"] and not clerk.must_change_password
    assert clerk.check_password("demo-distributor-clerk") and clerk.company.name == "Aotuo Cards"


def test_only_customer_logins_have_areas(app, world):
    from sqlalchemy.exc import IntegrityError

    staff = make_user("support2", "tech_support")
    staff.areas = ["devices"]
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    make_company("Unused")  # the factory still works after the refusal


def test_platform_admin_has_no_employees_here(app, client, login, world):
    """Staff belong to no company: the page says where users are managed, and its forms find nobody."""
    clerk = _employee(world.users["customer"], "clerk", ["devices"])
    login("admin")
    assert 'id="rd-no-company"' in client.get("/admin/employees/").get_data(as_text=True)
    for url in ("/admin/employees/areas/", "/admin/employees/deactivate/", "/admin/employees/new/"):
        assert post(client, url, {"id": str(clerk.id), "username": "x"}).status_code == 404, url
    page = client.get(f"/admin/user/details/?id={clerk.id}").get_data(as_text=True)
    assert "Devices" in page
