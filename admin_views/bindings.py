"""技术支持 → 客户延期配置 / 客户增值配置: renewal packages bound to devices, value-added offers."""
from __future__ import annotations

import json

from flask import flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.helpers import get_redirect_target
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import escape
from sqlalchemy import select

from actions import ActionResult
from actions.device_types import device_type_names
from actions.bindings import (
    bind_package, bind_package_to_type, offer_packages, plan_type_binding, unbind, withdraw_offers,
)
from admin_views.device_types import device_type_filter
from admin_views.base import ScopedModelView, badge, confirm_first, flash_result, parse_row_id, unit_of_work
from admin_views.confirm import Confirmation
from admin_views.devices import LABELS as DEVICE_LABELS
from admin_views.devices import DeviceView, PackageBound
from admin_views.system import CompanyPickerMixin, InCompanyTree
from models import Company, CompanyPackage, Device, Package, db


def _get(model, value):
    """The row of `model` whose id was submitted, or None."""
    pk = parse_row_id(value)  # past 2**31 PostgreSQL refused the parameter: "not found", not a message
    return db.session.get(model, pk) if pk is not None else None


def _active_packages(kind: str) -> list[Package]:
    return list(db.session.scalars(
        select(Package).where(Package.kind == kind, Package.active.is_(True)).order_by(Package.code)
    ))


def _report(result: ActionResult, done: str, extra_refused=()) -> None:
    """Flash `done` when something changed, and each refused row with its reason."""
    refused = tuple(extra_refused) + result.refused
    if result.changed:
        flash(done, "success")
    elif not refused:
        flash(_("Nothing changed."), "info")
    flash_result(ActionResult((), refused), "")


def _package_cell(view, context, model, name):
    if model.package is None:
        return badge(_("not bound"), "warning")
    return escape(str(model.package))


class DevicePackageView(CompanyPickerMixin, ScopedModelView):
    """客户延期配置: a company's devices with and without a renewal package; bind, unbind, export."""

    roles = frozenset({"tech_support"})
    scope_column = "company_id"
    can_create = can_edit = can_delete = False
    can_view_details = False
    column_display_actions = False
    can_export = True
    column_list = ("number", "name", "device_type", "company", "package", "expires_on")
    column_export_list = column_list
    column_labels = {**DEVICE_LABELS, "package.code": _l("Package code"), "package.name": _l("Package name")}
    column_default_sort = "number"
    column_sortable_list = ("number", "name", "device_type", ("company", "company.name"),
                            ("package", "package.code"), "expires_on")
    column_searchable_list = ("number", "name")
    column_select_related_list = (Device.company, Device.package)
    column_filters = (
        InCompanyTree(Device.company_id, _l("Company"), Device.company_id),
        PackageBound(),
        device_type_filter(),
        "package.code",
        "package.name",
        "expires_on",
    )
    column_formatters = {"package": _package_cell}
    column_formatters_export = {"package": lambda v, c, m, n: str(m.package) if m.package else ""}
    list_template = "renewdesk/device_package_list.html"
    page_size_options = (20, 50, 100, 500)

    # The device list's search (the trigram index), shared as is.
    search_placeholder = DeviceView.search_placeholder
    search_clause = staticmethod(DeviceView.search_clause)

    # --- bind selected devices: choose the devices, then the package, then confirm ----------
    def _render_bind(self, devices, return_url: str, package_id: str = ""):
        return self.render(
            "renewdesk/bind_devices.html", devices=devices, packages=_active_packages("renewal"),
            package_id=package_id, return_url=return_url,
        )

    @action("bind", _l("Bind a renewal package"))
    def action_bind(self, ids):
        devices = self.scoped_rows(ids)
        refused = self.refused_ids(ids, devices)
        if refused:
            flash_result(ActionResult((), tuple(refused)), "")
        if not devices:
            flash(_("Select at least one device."), "error")
            return None
        return self._render_bind(devices, get_redirect_target() or self.get_url(".index_view"))

    @expose("/bind/", methods=("POST",))
    def bind_view(self):
        ids = request.form.getlist("rowid")
        return_url = get_redirect_target() or self.get_url(".index_view")
        devices = self.scoped_rows(ids)
        if not devices:
            flash(_("Select at least one device."), "error")
            return redirect(return_url)
        package = _get(Package, request.form.get("package_id"))
        with unit_of_work() as work:
            result = bind_package(db.session, current_user, devices, package)
        if work.failed:
            return self._render_bind(self.scoped_rows(ids), return_url, request.form.get("package_id", ""))
        _report(result, _("%(count)s devices bound to package %(code)s.",
                          count=len(result.changed), code=package.code),
                self.refused_ids(ids, devices))
        return redirect(return_url)

    @action("unbind", _l("Remove the renewal package"),
            _l("Remove the renewal package of the selected devices? They cannot be renewed until "
               "a package is bound again."))
    def action_unbind(self, ids):
        devices = self.scoped_rows(ids)
        with unit_of_work() as work:
            result = unbind(db.session, current_user, devices)
        if work.failed:
            return
        _report(result, _("Renewal package removed from %(count)s devices.", count=len(result.changed)),
                self.refused_ids(ids, devices))

    # --- bind every device of a type in a company: check shows the count, confirm applies -----
    @expose("/bind-type/", methods=("GET", "POST"))
    def bind_type_view(self):
        values = request.values
        company = _get(Company, values.get("company_id"))
        package = _get(Package, values.get("package_id"))
        device_type = values.get("device_type", "").strip()[:40]
        include = values.get("include_subsidiaries") == "1"
        # The confirm button applies only what the user checked and saw counted.
        key = json.dumps([company.id if company else None, device_type, include, package.id if package else None])
        plan = None
        if request.method == "POST":
            confirmed = values.get("confirm") == "1" and values.get("checked") == key
            with unit_of_work() as work:
                if confirmed:
                    result = bind_package_to_type(db.session, current_user, company, device_type, package,
                                                  include)
                else:
                    plan = plan_type_binding(db.session, current_user, company, device_type, package, include)
            if confirmed and not work.failed:
                _report(result, _("%(count)s devices of type %(type)s bound to package %(code)s.",
                                  count=len(result.changed), type=device_type, code=package.code))
                return redirect(self.list_url_for_company(company))
        types = device_type_names(db.session, company.subtree_ids() if company is not None else None)
        return self.render(
            "renewdesk/bind_type.html", companies=self.company_choices(), types=types,
            packages=_active_packages("renewal"), company=company, package=package,
            device_type=device_type, include=include, plan=plan, key=key,
            list_url=self.list_url_for_company(company),
        )


class CompanyPackageView(CompanyPickerMixin, ScopedModelView):
    """客户增值配置: the value-added packages offered to each company; offer several, withdraw."""

    roles = frozenset({"tech_support"})
    scope_column = "company_id"
    can_create = can_edit = False
    can_delete = True
    can_view_details = False
    can_export = True
    column_list = ("company", "package.code", "package.name", "package.amount", "package.active", "created_at")
    column_export_list = column_list
    column_labels = {
        "company": _l("Company"), "package": _l("Value-added package"), "package.code": _l("Package code"),
        "package.name": _l("Package name"), "package.amount": _l("Amount"), "package.active": _l("Active"),
        "created_at": _l("Offered at"),
    }
    column_default_sort = ("created_at", True)
    column_sortable_list = (("company", "company.name"), "package.code", "package.name", "created_at")
    column_searchable_list = ("package.code", "package.name")
    column_select_related_list = (CompanyPackage.company, CompanyPackage.package)
    column_filters = (
        InCompanyTree(CompanyPackage.company_id, _l("Company"), CompanyPackage.company_id),
        "package.code",
        "package.name",
        "package.active",
    )
    list_template = "renewdesk/company_package_list.html"

    def search_placeholder(self):
        return _("Package code or name")

    @expose("/offer/", methods=("GET", "POST"))
    def offer_view(self):
        company = _get(Company, request.values.get("company_id"))
        ticked = {pk for pk in map(parse_row_id, request.form.getlist("package_id")) if pk is not None}
        if request.method == "POST":
            packages = list(db.session.scalars(select(Package).where(Package.id.in_(ticked)))) if ticked else []
            with unit_of_work() as work:
                result = offer_packages(db.session, current_user, company, packages)
            if not work.failed:
                _report(result, _("%(count)s value-added packages offered to %(name)s.",
                                  count=len(result.changed), name=company.name))
                return redirect(self.list_url_for_company(company))
        offered = set()
        if company is not None:
            offered = set(db.session.scalars(
                select(CompanyPackage.package_id).where(CompanyPackage.company_id == company.id)
            ))
        return self.render(
            "renewdesk/offer_packages.html", companies=self.company_choices(), company=company,
            packages=_active_packages("value_added"), offered=offered, ticked=ticked,
            list_url=self.list_url_for_company(company),
        )

    def delete_model(self, model):
        with unit_of_work() as work:
            result = withdraw_offers(db.session, current_user, [model])
        return not work.failed and bool(result.changed)

    @action("delete", _l("Withdraw"))
    @confirm_first(lambda view, rows: Confirmation(
        title=_("Withdraw value-added offers"),
        summary=_("Stop offering %(count)s value-added packages:", count=len(rows)),
        items=[f"{row.package.code} {row.package.name} → {row.company.name}" for row in rows],
        confirm_label=_("Withdraw %(count)s offers", count=len(rows))))
    def action_delete(self, ids):
        offers = self.scoped_rows(ids)
        with unit_of_work() as work:
            result = withdraw_offers(db.session, current_user, offers)
        if work.failed:
            return
        _report(result, _("%(count)s value-added offers withdrawn.", count=len(result.changed)),
                self.refused_ids(ids, offers))


def register(admin, support) -> None:
    """Add the customer extension and value-added config views."""
    admin.add_view(DevicePackageView(Device, name=_l("Customer extension config"), category=support,
                                     endpoint="device_package"))
    admin.add_view(CompanyPackageView(CompanyPackage, name=_l("Customer value-added config"),
                                      category=support, endpoint="company_package"))
