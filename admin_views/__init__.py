"""The console: menu groups, the home dashboard and the registration of every view."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.helpers import is_safe_url
from flask_admin.theme import Bootstrap4Theme
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from actions.idempotency import new_key
from actions.permissions import OPEN
from admin_views.base import RoleMixin, current_zone
from admin_views.wording import picker_locale, use_our_wording
from models import LOCALES, ROLES, USER_ROLES

# Menu groups, as the user guides group them.
CUSTOMER = _l("Customer center")  # 客户中心
MANAGEMENT = _l("Management center")  # 管理中心
FINANCE = _l("Finance operations")  # 财务操作
SALES = _l("Sales operations")  # 销售操作
SUPPORT = _l("Tech support operations")  # 技术支持操作
SYSTEM = _l("System")  # 系统
CARDS = _l("Card management")  # 号卡管理
DISTRIBUTION = _l("Distribution")  # 分销管理


class HomeView(RoleMixin, AdminIndexView):
    """The dashboard: per role, the numbers that role acts on, and its charts."""

    roles = frozenset(ROLES)
    area = OPEN

    def is_visible(self) -> bool:
        return True

    @expose("/")
    def index(self):
        from admin_views.dashboard import dashboard_for

        return self.render("renewdesk/home.html", board=dashboard_for(current_user, current_zone()))


def init_admin(app: Flask) -> Admin:
    """Build the console for `app` with every view registered once."""
    use_our_wording(Path(app.config["BABEL_TRANSLATION_DIRECTORIES"].split(";")[0]))
    admin = Admin(
        app,
        name="Renewdesk",
        index_view=HomeView(name=_l("Home"), url="/admin"),
        theme=Bootstrap4Theme(base_template="renewdesk/master.html", fluid=True),
    )
    from admin_views import (
        billing, bindings, card_orders, card_quotes, cards, catalog, device_types, devices, employees, expiry_import,
        invoices, mailing, members, money, offline_recharge, payments, renewals, seats, subscriptions, system, tenants,
    )

    for category in (MANAGEMENT, CUSTOMER, CARDS, DISTRIBUTION, FINANCE, SALES, SUPPORT, SYSTEM):
        admin.add_category(category)  # the menu's order; a group with nothing visible is not drawn
    renewals.register(admin, customer=CUSTOMER, finance=FINANCE)
    devices.register(admin, management=MANAGEMENT, support=SUPPORT)
    offline_recharge.register(admin, sales=SALES, finance=FINANCE)
    money.register(admin, finance=FINANCE, customer=CUSTOMER)
    payments.register(admin, finance=FINANCE)
    members.register(admin, customer=CUSTOMER, finance=FINANCE)
    seats.register(admin, customer=CUSTOMER, sales=SALES)
    invoices.register(admin, customer=CUSTOMER, finance=FINANCE)
    billing.register(admin, sales=SALES, customer=CUSTOMER)
    catalog.register(admin, SUPPORT)
    bindings.register(admin, support=SUPPORT)
    device_types.register(admin, support=SUPPORT)
    expiry_import.register(admin, SALES)
    system.register(admin, SYSTEM)
    mailing.register(admin, SYSTEM)
    tenants.register(admin, system=SYSTEM, customer=CUSTOMER)
    subscriptions.register(admin, customer=CUSTOMER, sales=SALES, finance=FINANCE)
    cards.register(admin, cards=CARDS, distribution=DISTRIBUTION, finance=FINANCE, system=SYSTEM)
    card_orders.register(admin, CARDS)
    card_quotes.register(admin, CARDS)
    # 员工权限设置 (seed 002 系统设置): in the customer center, the platform's System menu stays staff-only
    employees.register(admin, CUSTOMER)

    @app.context_processor
    def console_context():
        return {"locales": LOCALES, "role_labels": USER_ROLES, "get_locale": get_locale, "idempotency_key": new_key,
                "picker_locale": picker_locale, "audit_actions": system.AUDIT_ACTIONS, "html_lang": html_lang,
                "language_return": language_return}

    return admin


def html_lang() -> str:
    """The page's language as HTML wants it ("zh-Hans-CN", "vi"): Chromium picks Chinese glyphs and offers no
    translation of a page that says its language."""
    return str(get_locale() or "en").replace("_", "-")


def language_return() -> str:
    """Where the language menu leads back to: this page; for a page drawn in answer to a form (whose address may
    answer forms only: 405) the page the form was on."""
    if request.method == "GET":
        return request.full_path
    referrer = request.referrer
    if referrer and is_safe_url(referrer):
        parts = urlsplit(referrer)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return url_for("admin.index")


def registered_views(admin: Admin):
    """Every view of the console (the access tests walk them all)."""
    return list(admin._views)
