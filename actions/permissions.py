"""Permission areas of customer logins (员工权限设置, seed 002 系统设置): the one list of them.

A customer company's administrator has every area; an employee (`User.areas`, a list of codes) has
only the areas given to it. An area is one customer-facing menu group: each customer view names its
area once (`area = "devices"` beside its `roles`, admin_views/base.py RoleMixin), and the role check
asks `may_use` too, so a menu outside the employee's areas is not drawn and its URLs answer 403.

Staff have no areas (their roles decide), and neither do the logins created before employees
existed: `areas` NULL means full access.
"""
from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l

# Every area, in the order of the menus (the employee page lists them so).
AREAS = {
    "renewals": _l("Renewal center"),
    "orders": _l("Orders, recharges and payments"),
    "account_config": _l("Account config"),
    "devices": _l("Devices"),
    "members": _l("Member accounts, coins and seats"),
    "invoices": _l("Invoices"),
    "subscriptions": _l("Subscriptions"),
    "company": _l("Company profile and verification"),
    "cards": _l("Cards"),
    "card_orders": _l("Card orders"),
    "card_customers": _l("Card customers"),
    "quotes": _l("Sales quotations"),
    "distribution": _l("Distribution and commission"),
    "card_finance": _l("Income and withdrawals"),
    "employees": _l("Employee permissions"),
}
# Areas only a distributor's logins can use (their views also need the company to be a distributor).
DISTRIBUTOR_AREAS = frozenset({"cards", "card_orders", "card_customers", "quotes", "distribution", "card_finance"})
# The area of a view every signed-in login may use whatever its areas (the home page).
OPEN = "open"

# Which area makes orders of each kind: an order's pages (its details, paying it, a bank-transfer receipt
# for it) open to that area and to "orders" (the order records list every kind).
ORDER_KIND_AREAS = {
    "recharge": "orders",
    "coins": "members",
    "renewal": "renewals",
    "value_added": "renewals",
    "vip_upgrade": "members",
    "seats": "members",
    "subscription": "subscriptions",
    "card_sale": "card_orders",
}
ORDER_AREAS = frozenset({"orders", *ORDER_KIND_AREAS.values()})


def is_restricted(user) -> bool:
    """Whether `user` is an employee limited to some areas (not staff, not a full-access administrator)."""
    return getattr(user, "areas", None) is not None


def areas_of(user) -> frozenset[str]:
    """The areas `user` may use: every area unless it is restricted."""
    areas = getattr(user, "areas", None)
    return frozenset(AREAS) if areas is None else frozenset(areas) & frozenset(AREAS)


def may_use(user, area: str | None) -> bool:
    """Whether `user` may use a view of `area`. A restricted login is refused a view that names no area:
    a customer view added without its area is closed to employees until it says which one it is."""
    if not is_restricted(user):
        return True
    return area == OPEN or (area is not None and area in user.areas)


def may_use_any(user, areas: Iterable[str]) -> bool:
    """Whether `user` may use at least one of `areas`."""
    return not is_restricted(user) or bool(set(areas) & set(user.areas))


def visible_order_kinds(user) -> frozenset[str] | None:
    """The order kinds whose orders `user` may open; None: every kind."""
    if not is_restricted(user):
        return None
    if "orders" in user.areas:
        return None
    return frozenset(kind for kind, area in ORDER_KIND_AREAS.items() if area in user.areas)


def ordered(codes: Iterable[str]) -> list[str]:
    """Area codes in the order of AREAS (unknown ones left out)."""
    wanted = set(codes)
    return [code for code in AREAS if code in wanted]
