"""设备类型 (technical support): the list device types are chosen from; a type in use is deactivated, not deleted."""
from __future__ import annotations

from flask import flash, has_request_context
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from wtforms.validators import ValidationError

from actions import DomainError, scoped
from actions.device_types import check_device_type, device_type_names
from admin_views.base import ScopedModelView
from models import Company, Device, DeviceType, db


def device_type_options():
    """Filter options for "device type" (per request): the list, then the types the user's devices carry."""
    if not has_request_context() or not current_user.is_authenticated:
        return []
    companies = None if current_user.is_staff else scoped(select(Company.id), current_user, Company.id)
    return [(name, name) for name in device_type_names(db.session, companies)]


def device_type_filter(column=Device.device_type):
    return FilterEqual(column, _l("Device type"), options=device_type_options)


class DeviceTypeView(ScopedModelView):
    roles = frozenset({"tech_support"})
    column_list = ("name", "active", "sort_order", "created_at")
    column_labels = {"name": _l("Device type"), "active": _l("On the list"), "sort_order": _l("Order"),
                     "created_at": _l("Added")}
    column_default_sort = [("sort_order", False), ("name", False)]
    column_searchable_list = ("name",)
    form_columns = ("name", "active", "sort_order")
    form_args = {"sort_order": {"default": 0}, "active": {"default": True}}

    def search_placeholder(self):
        return _("Device type")

    def on_model_change(self, form, model, is_created):
        try:
            check_device_type(db.session, model)
        except DomainError as exc:
            raise ValidationError(str(exc)) from exc
        super().on_model_change(form, model, is_created)

    def delete_model(self, model):
        used = db.session.scalar(select(func.count()).select_from(Device).where(Device.device_type == model.name))
        if used:
            flash(_("Device type %(name)s is used by %(count)s devices: take it off the list instead "
                    "(untick \u201cOn the list\u201d).", name=model.name, count=used), "error")
            return False
        return super().delete_model(model)


def register(admin, support) -> None:
    admin.add_view(DeviceTypeView(DeviceType, name=_l("Device types"), category=support))
