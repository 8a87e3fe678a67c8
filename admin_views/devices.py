"""管理中心 → 设备管理: the device list, suspend/enable, batch suspend, expiry maintenance."""
from __future__ import annotations

import json
from datetime import date, timedelta

from flask import flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_admin.model.widgets import XEditableWidget
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import aliased, joinedload
from werkzeug.datastructures import MultiDict
from wtforms.fields import DateField
from wtforms.utils import unset_value
from wtforms.validators import ValidationError

from actions import DomainError
from actions.audit import history
from actions.dates import check_expiry_window
from actions.value_added import services_of
from actions.devices import (
    TARGET_STATUS, apply_status_change, change_status, parse_numbers, plan_status_change, search_clause,
)
from admin_views.device_types import device_type_filter
from admin_views.base import RoleView, ScopedModelView, badge, confirm_first, flash_result, unit_of_work
from admin_views.confirm import Confirmation, ask, is_confirmed
from admin_views.system import CompanyPickerMixin, InCompanyTree
from importers.xlsx import formula_safe
from models import DEVICE_STATUSES, Company, Device, Package, db, utcnow

LABELS = {
    "number": _l("Device number"), "name": _l("Device name"), "device_type": _l("Device type"),
    "company": _l("Company"), "status": _l("Status"), "expires_on": _l("Expires on"),
    "package": _l("Renewal package"), "suspended_at": _l("Suspended at"), "created_at": _l("Created"),
    # A filter. The English is Flask-Admin's own label, from which it makes the filter's URL argument
    # (package_renewal_package_code_…): kept, so that saved links still filter.
    "package.code": _l("package / Renewal package / Code"),
}
EXPIRY_WINDOWS = {
    "expired": _l("Expired"),
    "7": _l("Expiring in 7 days"),
    "30": _l("Expiring in 30 days"),
    "90": _l("Expiring in 90 days"),
}


class ExpiryWindow(BaseSQLAFilter):
    """Expired, or expiring within N days (N from the options or typed)."""

    def __init__(self):
        super().__init__(Device.expires_on, _l("Expiry"), options=list(EXPIRY_WINDOWS.items()))

    def validate(self, value):
        return value == "expired" or (str(value).isdecimal() and int(value) <= 3650)

    def apply(self, query, value, alias=None):
        today = date.today()
        if value == "expired":
            return query.filter(Device.expires_on < today)
        return query.filter(Device.expires_on.between(today, today + timedelta(days=int(value))))

    def operation(self):
        return _l("is")


class PackageBound(BaseSQLAFilter):
    def __init__(self):
        super().__init__(Device.package_id, _l("Renewal package"),
                         options=[("yes", _l("bound")), ("no", _l("not bound"))])

    def validate(self, value):
        return value in ("yes", "no")

    def apply(self, query, value, alias=None):
        return query.filter(Device.package_id.isnot(None) if value == "yes" else Device.package_id.is_(None))

    def operation(self):
        return _l("is")


def _status_cell(view, context, model, name):
    """The status badge plus the one-click suspend / enable button of the row."""
    suspended = model.status == "suspended"
    label = DEVICE_STATUSES[model.status]
    cell = badge(str(label), "secondary" if suspended else "success")
    if not view.row_toggle:
        return cell
    operation = "enable" if suspended else "suspend"
    title = _("Enable") if suspended else _("Suspend")
    return cell + Markup(
        ' <form method="post" action="{url}" class="d-inline rd-row-toggle">'
        '<input type="hidden" name="csrf_token" value="{csrf}">'
        '<input type="hidden" name="action" value="{op}">'
        '<input type="hidden" name="rowid" value="{id}">'
        '<input type="hidden" name="url" value="{back}">'
        '<button type="submit" class="btn btn-link btn-sm p-0" title="{title}" aria-label="{title}">'
        '<span class="fa {icon}"></span></button></form>'
    ).format(
        url=view.get_url(".action_view"), csrf=generate_csrf(), op=operation, id=model.id,
        back=context.get("return_url") or view.get_url(".index_view"),
        title=title, icon="fa-play-circle" if suspended else "fa-minus-circle",
    )


def device_label(device: Device) -> str:
    """A device as a confirmation page names it: number, name and company."""
    return _("%(number)s %(name)s (%(company)s)", number=device.number, name=device.name or "",
             company=device.company.name if device.company else "")


SUSPEND_NOTE = _l("A suspended device is left out of auto-renewal and expiry reminders until it is enabled again.")


def describe_suspension(view, devices) -> Confirmation | None:
    """The confirmation of suspending `devices`: how many, each named; those already suspended apart."""
    active = [d for d in devices if d.status != "suspended"]
    if not active:
        return None  # the action names each one as already suspended
    return Confirmation(
        title=_("Suspend devices"),
        summary=_("Suspend %(count)s devices:", count=len(active)),
        items=[device_label(d) for d in active],
        note=str(SUSPEND_NOTE),
        confirm_label=_("Suspend %(count)s devices", count=len(active)),
        refused=[_("%(device)s: already suspended", device=device_label(d)) for d in devices if d.status == "suspended"],
    )


def _export_status(view, context, model, name):
    """The status label of an exported row, translated once per request, not once per row
    (gettext per row added seconds to a 200,000-row export)."""
    labels = g.get("device_status_labels")
    if labels is None:
        labels = g.device_status_labels = {code: str(label) for code, label in DEVICE_STATUSES.items()}
    return labels[model.status]


class DeviceView(ScopedModelView):
    """The device list: filters, prefix search, export, suspend/enable one or many."""

    roles = frozenset({"tech_support", "customer_admin"})
    area = "devices"
    scope_column = "company_id"
    row_toggle = True
    can_create = can_edit = can_delete = False
    can_export = True
    column_list = ("number", "name", "device_type", "company", "status", "expires_on", "package")
    column_export_list = ("number", "name", "device_type", "company", "status", "expires_on", "package")
    export_batch_rows = 500  # rows per fetch and streamed piece: 2,000 held 4 MB more at 200,000 rows, for no less CPU
    column_labels = LABELS
    column_default_sort = ("expires_on", False)
    column_sortable_list = ("number", "name", "device_type", "status", "expires_on")
    column_searchable_list = ("number", "name")
    # Substring search on number and name, any case, through the trigram index.
    search_clause = staticmethod(search_clause)
    column_select_related_list = (Device.company, Device.package)
    column_filters = (
        InCompanyTree(Device.company_id, _l("Company"), Device.company_id),
        "status",
        device_type_filter(),
        "expires_on",
        ExpiryWindow(),
        PackageBound(),
        "package.code",
    )
    column_formatters = {"status": _status_cell}
    column_formatters_export = {"status": _export_status}
    column_choices = {"status": list(DEVICE_STATUSES.items())}  # the status filter picks 已停用, not "suspended"
    column_details_list = ("number", "name", "device_type", "company", "status", "expires_on",
                           "package", "suspended_at", "created_at")
    details_template = "renewdesk/device_details.html"
    list_template = "renewdesk/device_list.html"
    page_size_options = (20, 50, 100, 500)

    def search_placeholder(self):
        return _("Part of a device number or name")


    def export_rows(self):
        """Plain rows straight from SQL (no Device objects), with the company and package joined:
        200,000 devices export in a fraction of the time ORM rows took. Text is formula-safe."""
        if tuple(self.column_export_list) != DeviceView.column_export_list:
            yield from super().export_rows()
            return
        company, package = aliased(Company), aliased(Package)
        query = (
            self.export_query()
            .with_entities(Device.number, Device.name, Device.device_type, company.name, Device.status,
                           Device.expires_on, package.code, package.name)
            .join(company, company.id == Device.company_id)
            .outerjoin(package, package.id == Device.package_id)
            .execution_options(yield_per=self.export_batch_rows)
        )
        labels = {code: str(label) for code, label in DEVICE_STATUSES.items()}
        safe = formula_safe
        for number, name, kind, company_name, status, expires_on, code, package_name in query:
            yield (safe(number), safe(name), safe(kind), safe(company_name), labels.get(status, status), expires_on,
                   None if code is None else safe(f"{code} {package_name}"))

    def _status_action(self, ids, operation, done):
        rows = self.scoped_rows(ids)
        with unit_of_work() as work:
            result = change_status(db.session, current_user, rows, operation, utcnow())
        if work.failed:
            return
        refused = tuple(self.refused_ids(ids, rows)) + result.refused
        flash_result(type(result)(result.changed, refused), done)

    @action("suspend", _l("Suspend"))
    @confirm_first(describe_suspension)
    def action_suspend(self, ids):
        self._status_action(ids, "suspend", _("%(count)s devices suspended."))

    @action("enable", _l("Enable"), _l("Enable the selected devices?"))
    def action_enable(self, ids):
        self._status_action(ids, "enable", _("%(count)s devices enabled."))

    @expose("/details/")
    def details_view(self):
        device = self.get_one(request.args.get("id"))
        if device is not None:
            self._template_args["events"] = history(db.session, "device", device.id)
            self._template_args["services"] = services_of(db.session, [device.id]).get(device.id, [])
            self._template_args["today"] = date.today()
        return super().details_view()


class SuspendedDeviceView(DeviceView):
    """已停用设备: every suspended device, with enable."""

    row_toggle = True
    column_filters = DeviceView.column_filters[:1] + DeviceView.column_filters[2:]

    def get_query(self):
        return super().get_query().filter(Device.status == "suspended")

    def get_count_query(self):
        return super().get_count_query().filter(Device.status == "suspended")

    def is_action_allowed(self, name):
        return name != "suspend" and super().is_action_allowed(name)


class BatchStatusView(RoleView):
    """批量设备停用: paste thousands of device numbers, see what would change, confirm."""

    roles = frozenset({"tech_support", "customer_admin"})
    area = "devices"

    @expose("/", methods=("GET", "POST"))
    def index(self):
        text = request.form.get("numbers", "")
        operation = request.form.get("operation", "suspend")
        plan = None
        if request.method == "POST":
            from flask import current_app

            numbers = parse_numbers(text)
            limit = current_app.config["BATCH_SUSPEND_MAX_NUMBERS"]
            if operation not in TARGET_STATUS:
                # Never fall back to a default: a confirmed "enable" must not become a suspension.
                flash(_("Choose suspend or enable."), "error")
                operation = "suspend"
            elif not numbers:
                flash(_("Paste at least one device number."), "error")
            elif len(numbers) > limit:
                flash(_("At most %(n)s device numbers at once; you pasted %(m)s.", n=limit, m=len(numbers)), "error")
            else:
                plan = plan_status_change(db.session, current_user, numbers, operation)
                if request.form.get("confirm") == "1":
                    purpose = f"{self.endpoint}.{operation}"
                    if not plan.ids:
                        flash(_("Nothing to change."), "error")
                    elif operation == "suspend" and not is_confirmed(purpose, plan.ids):
                        return self._ask_suspend(plan, purpose, text)
                    else:
                        with unit_of_work() as work:
                            result = apply_status_change(db.session, current_user, plan, utcnow())
                        if work.failed:
                            return redirect(url_for(".index"))
                        flash_result(result, _("%(count)s devices suspended.") if operation == "suspend"
                                     else _("%(count)s devices enabled."))
                        return redirect(url_for(".index"))
        return self.render("renewdesk/batch_status.html", text=text, operation=operation, plan=plan)

    def _ask_suspend(self, plan, purpose: str, text: str):
        """The confirmation page of a batch suspension: the number of devices, each named."""
        devices = db.session.scalars(select(Device).options(joinedload(Device.company))
                                     .where(Device.id.in_(plan.ids)).order_by(Device.number)).all()
        confirmation = Confirmation(
            title=_("Suspend devices"),
            summary=_("Suspend %(count)s devices:", count=len(plan.ids)),
            items=[device_label(d) for d in devices], note=str(SUSPEND_NOTE),
            confirm_label=_("Suspend %(count)s devices", count=len(plan.ids)),
            refused=[f"{number} ({why})" for number, why in plan.refused],
        )
        return ask(self, confirmation, purpose, plan.ids, url_for(".index"),
                   fields=[("numbers", text), ("operation", "suspend"), ("confirm", "1")])


class ExpiryCellWidget(XEditableWidget):
    """The list's inline expiry editor, its year list from five years back to twenty ahead (Flask-Admin
    stops it at 2030)."""

    def get_kwargs(self, field, kwargs):
        if isinstance(field, ExpiryDateField):
            field.type = "DateField"  # edited inline as the date it is
        kwargs = super().get_kwargs(field, kwargs)
        if field.type == "DateField":
            year = date.today().year
            kwargs["data-combodate"] = json.dumps({"minuteStep": 1, "minYear": year - 5, "maxYear": year + 20,
                                                   "yearDescending": False})
        return kwargs


class YearMonthDaySelects:
    """A date as three lists (年 / 月 / 日 in Chinese): years from last year to twenty years ahead, and
    the date's own year when it lies outside."""

    def __call__(self, field, **kwargs):
        value = field.data if isinstance(field.data, date) else None
        this_year = date.today().year
        first, last = this_year - 1, this_year + 20
        if value is not None:
            first, last = min(first, value.year), max(last, value.year)
        raw = field.raw_data[0].split("-") if field.raw_data and field.raw_data[0].count("-") == 2 else None
        chosen = raw or ([str(value.year), str(value.month), str(value.day)] if value else ["", "", ""])

        def select(part: str, numbers, label) -> Markup:
            options = [Markup('<option value=""></option>')] if not chosen[0] else []
            wanted = chosen[("year", "month", "day").index(part)].lstrip("0")
            options += [Markup('<option value="{v}"{s}>{v}</option>').format(
                v=n, s=Markup(" selected") if str(n) == wanted else "") for n in numbers]
            return Markup('<select class="form-control mx-1" id="{id}-{part}" name="{name}-{part}" aria-label="{label}">'
                          '{options}</select>').format(id=field.id, name=field.name, part=part, label=label,
                                                       options=Markup("").join(options))

        parts = {"year": select("year", range(first, last + 1), _("Year")),
                 "month": select("month", range(1, 13), _("Month")),
                 "day": select("day", range(1, 32), _("Day"))}
        return Markup('<div class="form-inline" id="{id}">{selects}</div>').format(
            id=field.id, selects=Markup(_("Year %(year)s Month %(month)s Day %(day)s", **parts)))


class ExpiryDateField(DateField):
    """The expiry date, chosen year, month and day; a plain YYYY-MM-DD value is taken as well."""

    widget = YearMonthDaySelects()

    def process(self, formdata, data=unset_value, extra_filters=None):
        if formdata is not None and self.name not in formdata and f"{self.name}-year" in formdata:
            parts = [formdata.get(f"{self.name}-{part}", "").strip() for part in ("year", "month", "day")]
            formdata = MultiDict({self.name: "-".join(p.zfill(2) for p in parts) if all(parts) else ""})
        super().process(formdata, data, extra_filters)


class DeviceExpiryView(CompanyPickerMixin, DeviceView):
    """设备到期维护 (tech support): pick a company (选择某公司下的设备), edit a device's expiry date; each edit
    audited."""

    roles = frozenset({"tech_support"})
    row_toggle = False
    can_edit = True
    can_export = False
    column_editable_list = ("expires_on",)
    form_columns = ("expires_on",)
    # Year, month and day lists: twenty years ahead (Flask-Admin's pickers stop at 2030 or five years ahead).
    form_overrides = {"expires_on": ExpiryDateField}
    form_args = {"expires_on": {"label": _l("New expiry date")}}
    list_template = "renewdesk/device_expiry_list.html"
    edit_template = "renewdesk/device_expiry_edit.html"

    def scaffold_list_form(self, widget=None, validators=None):
        return super().scaffold_list_form(widget=ExpiryCellWidget(), validators=validators)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        """The edit form names the device (number, name, company) above its new expiry date."""
        device = self.get_one(request.args.get("id"))
        if device is not None:
            self._template_args.update(statuses=DEVICE_STATUSES, current_expiry=device.expires_on)
        return super().edit_view()

    def is_action_allowed(self, name):
        return False

    def on_model_change(self, form, model, is_created):
        if model.expires_on is None:
            raise ValidationError(_("Device %(number)s: the expiry date is required.", number=model.number))
        try:
            check_expiry_window(model.number, model.expires_on)
        except DomainError as exc:
            raise ValidationError(str(exc)) from exc
        super().on_model_change(form, model, is_created)


def register(admin, management, support) -> None:
    admin.add_view(DeviceView(Device, name=_l("Devices"), category=management))
    admin.add_view(SuspendedDeviceView(Device, name=_l("Suspended devices"), category=management,
                                       endpoint="suspended_device"))
    admin.add_view(BatchStatusView(name=_l("Batch suspend"), category=management,
                                   endpoint="device_batch"))
    admin.add_view(DeviceExpiryView(Device, name=_l("Device expiry maintenance"), category=support,
                                    endpoint="device_expiry"))
