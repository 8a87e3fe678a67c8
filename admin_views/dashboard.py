"""The home page's numbers: per role, what that role acts on, each linking to its list."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from actions import scoped
from models import (
    Company, Device, ExpiryImport, OfflineRecharge, Order, TenantApplication, User, db, utcnow,
)


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    value: int
    url: str


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _count_devices(user, *where) -> int:
    query = scoped(select(func.count()).select_from(Device), user, Device.company_id)
    return db.session.scalar(query.where(*where)) or 0


def _device_cards(user) -> list[Card]:
    today = date.today()
    return [
        Card("expiring_30", str(_l("Devices expiring in 30 days")),
             _count_devices(user, Device.expires_on.between(today, today + timedelta(days=30))),
             url_for("device.index_view", flt1_expiry_is="30")),
        Card("expired", str(_l("Expired devices")),
             _count_devices(user, Device.expires_on < today),
             url_for("device.index_view", flt1_expiry_is="expired")),
        Card("suspended", str(_l("Suspended devices")),
             _count_devices(user, Device.status == "suspended"),
             url_for("suspended_device.index_view")),
    ]


def cards_for(user) -> list[Card]:
    """The dashboard cards of `user`'s role."""
    cards: list[Card] = []
    if user.role in ("admin", "tech_support", "customer_admin"):
        cards += _device_cards(user)
    if user.role in ("admin", "tech_support"):
        cards.append(Card("unbound", str(_l("Devices without a renewal package")),
                          _count_devices(user, Device.package_id.is_(None)),
                          url_for("device.index_view", flt1_renewal_package_is="no")))
    if user.role in ("admin", "sales"):
        week_ago = utcnow() - timedelta(days=7)
        cards.append(Card("imports", str(_l("Expiry imports this week")),
                          db.session.scalar(select(func.count()).select_from(ExpiryImport)
                                            .where(ExpiryImport.created_at >= week_ago)) or 0,
                          url_for("expiry_import.index")))
    if user.role in ("admin", "finance"):
        cards.append(Card("pending_review", str(_l("Offline recharges awaiting review")),
                          _count(OfflineRecharge, OfflineRecharge.status == "submitted"),
                          url_for("recharge_review.index_view")))
        cards.append(Card("pending_orders", str(_l("Orders awaiting payment")),
                          _count(Order, Order.status == "pending"),
                          url_for("order_management.index_view", flt0_status_equals="pending")))
    if user.role in ("admin", "sales"):
        cards.append(Card("drafts", str(_l("Offline recharge drafts")),
                          _count(OfflineRecharge, OfflineRecharge.status == "draft"),
                          url_for("offline_recharge.index_view")))
        cards.append(Card("rejected", str(_l("Offline recharges sent back to you")),
                          _count(OfflineRecharge, OfflineRecharge.status == "rejected"),
                          url_for("offline_recharge.index_view")))
    if user.role == "customer_admin":
        cards.append(Card("unpaid", str(_l("Your orders awaiting payment")),
                          db.session.scalar(scoped(select(func.count()).select_from(Order), user, Order.company_id)
                                            .where(Order.status == "pending")) or 0,
                          url_for("order_record.index_view")))
    if user.role == "admin":
        cards.append(Card("applications", str(_l("Tenant applications to review")),
                          _count(TenantApplication, TenantApplication.status == "pending"),
                          url_for("tenantapplication.index_view")))
        cards.append(Card("companies", str(_l("Companies")),
                          db.session.scalar(select(func.count()).select_from(Company)) or 0,
                          url_for("company.index_view")))
        cards.append(Card("locked", str(_l("Locked or deactivated users")),
                          db.session.scalar(select(func.count()).select_from(User).where(
                              (User.active.is_(False)) | (User.locked_until.isnot(None)))) or 0,
                          url_for("user.index_view")))
    return cards
