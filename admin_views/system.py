"""System pages for administrators: companies, users, the audit log."""
from __future__ import annotations


from flask import current_app, flash
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as pgettext  # lazy; named so that pybabel extracts it
from flask_login import current_user
from markupsafe import Markup, escape
from wtforms import PasswordField
from wtforms.validators import Optional, ValidationError

from actions.passwords import LIST_SEPARATOR
from actions.permissions import AREAS, ordered
from actions.texts import change, changes_param, message
from actions.texts import render as render_text
from actions import ActionResult, DomainError, companies_in_scope
from actions.audit import record
from actions.companies import place
from actions.tenants import InvalidField, follow_new_email
from actions.unique import unique_or
from actions.users import create_user, generate_password, reset_password, set_active
from actions.passwords import current_policy
from actions.tenants import FIELDS
from admin_views.base import (
    parse_row_id,
    ScopedModelView, changed_fields, flash_result, label_formatter, scoped_company_options, unit_of_work,
)
from models import (
    COMPANY_STATUSES, LOCALES, STOCK_DOCUMENT_KINDS, USER_ROLES, WITHDRAWAL_STATUSES, AuditEvent, Company, User, db,
)


class InCompanyTree(BaseSQLAFilter):
    """Rows of the chosen company and every company below it."""

    def __init__(self, column, name, company_column):
        super().__init__(column, name, options=scoped_company_options)
        self.company_column = company_column

    def apply(self, query, value, alias=None):
        pk = parse_row_id(value)
        company = db.session.get(Company, pk) if pk is not None else None
        if company is None:
            return query.filter(self.company_column.is_(None) & self.company_column.isnot(None))
        return query.filter(self.company_column.in_(company.subtree_ids()))

    def operation(self):
        return _l("in the tree of")


class CompanyPickerMixin:
    """A "choose a company" box above the list that sets the company-tree filter (选择公司)."""

    def company_filter_param(self) -> str | None:
        """The URL argument of the company-tree filter (e.g. flt0_company_in_the_tree_of)."""
        for arg, (_index, flt) in (self._filter_args or {}).items():
            if isinstance(flt, InCompanyTree):
                return f"flt0_{arg}"
        return None

    def company_choices(self):
        """(id, indented name) of every company the user may pick, in tree order."""
        return [(str(c.id), "— " * c.depth + c.name) for c in companies_in_scope(db.session, current_user)]

    def list_url_for_company(self, company: Company | None) -> str:
        """The list, filtered to `company`'s tree when one is given."""
        param = self.company_filter_param()
        if company is None or param is None:
            return self.get_url(".index_view")
        return self.get_url(".index_view", **{param: company.id})


def _indented_name(view, context, model, name):
    return Markup("{}{}").format(Markup("&nbsp;&nbsp;&nbsp;") * model.depth, escape(model.name))


class CompanyView(ScopedModelView):
    roles = frozenset({"admin"})
    scope_column = "id"
    column_list = ("name", "parent", "status", "tax_id", "contact_name", "contact_phone", "created_at")
    column_default_sort = "path"
    column_searchable_list = ("name", "tax_id", "contact_name")
    column_select_related_list = (Company.parent,)
    column_formatters = {"name": _indented_name, "status": label_formatter(COMPANY_STATUSES)}
    column_labels = {
        "name": _l("Name"), "parent": _l("Parent company"), "status": _l("Status"),
        "tax_id": _l("Tax ID"), "contact_name": _l("Contact"), "contact_phone": _l("Phone"),
        "contact_email": _l("Email"), "created_at": _l("Created"), "path": _l("Path"),
        "phone": FIELDS["phone"], "fax": FIELDS["fax"], "province": FIELDS["province"], "city": FIELDS["city"],
        "address": FIELDS["address"], "time_zone": FIELDS["time_zone"],
    }
    form_columns = ("name", "parent", "status", "tax_id", "contact_name", "contact_phone", "contact_email")
    form_choices = {"status": list(COMPANY_STATUSES.items())}
    column_filters = (
        InCompanyTree(Company.id, _l("Company"), Company.id),
        "status",
        "name",
    )
    can_delete = False

    def on_model_change(self, form, model, is_created):
        # place() flushes (and re-roots the subtree), which leaves the base view nothing to
        # describe: read the form's changes first and write the event here.
        changes = changed_fields(model, self.column_labels, self.form_choices)
        before = {"parent_id": model.parent_id}  # the path follows the parent: a row of ids, not for readers
        model.tax_id = (model.tax_id or "").strip().upper() or None  # as actions.tenants normalizes it
        taken = DomainError(_l("Tax ID %(tax_id)s belongs to another company already; nothing was saved.",
                               tax_id=model.tax_id))
        try:
            with unique_or("uq_company_tax_id", taken):
                place(db.session, model, model.parent)
        except DomainError as exc:
            db.session.rollback()  # a failed flush leaves the session unusable, even to read the locale
            raise ValidationError(str(exc)) from exc
        def named(company_id):  # the parent by name, not by id
            parent = db.session.get(Company, company_id) if company_id else None
            return parent.name if parent is not None else company_id

        changes += [change(key, self.column_labels[key.removesuffix("_id")],
                           *((named(old), named(model.parent_id)) if key == "parent_id" else (old, getattr(model, key))))
                    for key, old in before.items() if getattr(model, key) != old]
        record(db.session, current_user, "create" if is_created else "edit", self._audit_model,
               [model.id], message("audit.changes", changes=changes_param(changes)) if changes else "")


def _areas_cell(view, context, model, name):
    """A customer login's permission areas (员工权限设置), or that it has them all."""
    if model.areas is None:
        return _("Administrator: full access") if model.role == "customer_admin" else "—"
    return str(LIST_SEPARATOR).join(str(AREAS[code]) for code in ordered(model.areas)) or "—"


def _locale_cell(view, context, model, name):
    """语言 by its name in that language (简体中文), blank when the user follows the browser."""
    return LOCALES.get(model.locale or "", model.locale or "")


class UserView(ScopedModelView):
    roles = frozenset({"admin"})
    scope_column = "company_id"
    column_list = ("username", "role", "company", "email", "active", "must_change_password",
                   "locked_until", "last_login_at")
    column_searchable_list = ("username", "email")
    column_filters = ("role", "active", InCompanyTree(User.company_id, _l("Company"), User.company_id))
    column_select_related_list = (User.company,)
    column_formatters = {"role": label_formatter(USER_ROLES), "areas": _areas_cell, "locale": _locale_cell}
    column_labels = {
        "areas": _l("Permissions"),
        "username": _l("Username"), "role": _l("Role"), "company": _l("Company"),
        "email": _l("Email"), "active": _l("Active"), "must_change_password": _l("Must change password"),
        "locked_until": _l("Locked until"), "last_login_at": _l("Last login"), "locale": _l("Language"),
        "initial_password": _l("Initial password"), "full_name": _l("Full name"), "phone": _l("Phone"),
        "mobile": _l("Mobile phone"), "failed_logins": _l("Failed sign-ins"), "created_at": _l("Created"),
        "login_phone": _l("Sign-in phone"), "login_phone_verified_at": _l("Sign-in phone verified"),
    }
    column_details_exclude_list = ("password_hash", "session_version")
    form_columns = ("username", "email", "role", "company", "locale", "initial_password")
    # Applicants (registered from the login page) keep their role until approval; admins create the others.
    form_choices = {"role": list(USER_ROLES.items()), "locale": list(LOCALES.items())}
    form_extra_fields = {
        "initial_password": PasswordField(
            _l("Initial password"),
            validators=[Optional()],
            description=_l("Leave empty to generate one; the user must change it at first login."),
        )
    }
    can_delete = False

    def create_model(self, form):
        policy = current_policy()
        password = form.initial_password.data or generate_password(policy)
        with unit_of_work() as work:
            user = create_user(
                db.session, current_user, form.username.data, form.role.data, password,
                company=form.company.data, email=form.email.data or None,
                method=current_app.config["PASSWORD_HASH_METHOD"], policy=policy,
            )
            user.locale = form.locale.data or None
        if work.failed:
            return False
        if not form.initial_password.data:
            flash(_("Initial password of %(user)s (shown once): %(password)s",
                    user=user.username, password=password), "info")
        return user

    def create_form(self, obj=None):
        form = super().create_form(obj)
        form.initial_password.description = (f"{current_policy().describe()} "
                                              f"{_('Leave empty to generate one; the user must change it at first login.')}")
        return form

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        del form.username  # it follows the email of a company administrator (actions.tenants.follow_new_email)
        del form.initial_password  # passwords change through "Reset password"
        return form

    def on_model_change(self, form, model, is_created):
        if model.role == "customer_admin" and model.company is None:
            raise ValidationError(_("A customer administrator needs a company."))
        if model.role != "customer_admin":
            model.company = None
            model.areas = None  # staff have their roles, not permission areas
        model.locale = model.locale or None
        if not is_created:
            try:  # an administrator's login name follows its email, as on the company profile
                renamed = follow_new_email(db.session, model, form.email.object_data)
            except InvalidField as exc:
                raise ValidationError(str(exc)) from None
            if renamed:
                flash(_("The administrator's username is now %(username)s: sign in with it from now on.",
                        username=renamed), "info")
        super().on_model_change(form, model, is_created)

    def _set_active(self, ids, active: bool, done: str) -> None:
        users = self.scoped_rows(ids)
        with unit_of_work() as work:
            result = set_active(db.session, current_user, users, active)
        if work.failed:
            return
        flash_result(ActionResult(result.changed, tuple(self.refused_ids(ids, users)) + result.refused), done)

    @action("deactivate", _l("Deactivate"), _l("Deactivate the selected users? Their sessions end."))
    def action_deactivate(self, ids):
        self._set_active(ids, False, _("%(count)s users deactivated."))

    @action("activate", _l("Activate"))
    def action_activate(self, ids):
        self._set_active(ids, True, _("%(count)s users activated."))

    @action("reset_password", _l("Reset password"),
            _l("Give the selected users new passwords that they must change?"))
    def action_reset_password(self, ids):
        users = self.scoped_rows(ids)
        with unit_of_work() as work:
            passwords = reset_password(db.session, current_user, users,
                                       method=current_app.config["PASSWORD_HASH_METHOD"],
                                       policy=current_policy())
        if work.failed:
            return
        for username, password in passwords.items():
            flash(_("New password of %(user)s (shown once): %(password)s",
                    user=username, password=password), "info")
        flash_result(ActionResult(refused=tuple(self.refused_ids(ids, users))), "")


def _ids_formatter(view, context, model, name):
    return model.ids.strip(",")


class TouchesRow(BaseSQLAFilter):
    """Events whose row ids include one id (ids are stored as ",3,5,8,")."""

    def validate(self, value):
        return str(value).strip().isdecimal()

    def apply(self, query, value, alias=None):
        return query.filter(AuditEvent.ids.contains(f",{int(value)},"))

    def operation(self):
        return _l("includes")


# What the audit log's codes read as (unknown codes are shown as they are).
AUDIT_ACTIONS = {
    "activate": pgettext("audit action", "Activate"),
    "apply": pgettext("audit action", "Apply"),
    "approve": pgettext("audit action", "Approve"),
    "assign_seats": pgettext("audit action", "Assign seats"),
    "bind_package": pgettext("audit action", "Bind package"),
    "bind_package_type": pgettext("audit action", "Bind package by device type"),
    "cancel": pgettext("audit action", "Cancel"),
    "cancel_now_requested": pgettext("audit action", "Immediate cancellation requested"),
    "cancel_scheduled": pgettext("audit action", "Cancellation scheduled"),
    "cancel_undone": pgettext("audit action", "Cancellation withdrawn"),
    "change_password": pgettext("audit action", "Change password"),
    "configure": pgettext("audit action", "Configure"),
    "confirm": pgettext("audit action", "Confirm"),
    "credit": pgettext("audit action", "Credit to balance"),
    "auto_renew": pgettext("audit action", "Auto-renew"),
    "remind": pgettext("audit action", "Expiry reminder"),
    "login_failed": pgettext("audit action", "Failed login"),
    "preview": pgettext("audit action", "Preview import"),
    "commit": pgettext("audit action", "Import"),
    "rollback": pgettext("audit action", "Undo import"),
    "export": pgettext("audit action", "Export"),
    "export_pins": pgettext("audit action", "Export with PINs"),
    "cancel_stale": pgettext("audit action", "Cancel (expired unpaid)"),
    "create": pgettext("audit action", "Create"),
    "deactivate": pgettext("audit action", "Deactivate"),
    "delete": pgettext("audit action", "Delete"),
    "downgrade": pgettext("audit action", "Downgrade"),
    "edit": pgettext("audit action", "Edit"),
    "expiry_import": pgettext("audit action", "Expiry import"),
    "expire_seats": pgettext("audit action", "Seats expired"),
    "grant": pgettext("audit action", "Grant"),
    "issue": pgettext("audit action", "Issue"),
    "login": pgettext("audit action", "Log in"),
    "offer_packages": pgettext("audit action", "Offer value-added packages"),
    "onboard": pgettext("audit action", "Onboard tenant"),
    "pay": pgettext("audit action", "Pay"),
    "rebind_package": pgettext("audit action", "Rebind package"),
    "refresh_levels": pgettext("audit action", "Refresh levels"),
    "refund": pgettext("audit action", "Refund"),
    "reinvite": pgettext("audit action", "Invite again"),
    "reject": pgettext("audit action", "Reject"),
    "reject_refund": pgettext("audit action", "Reject refund"),
    "register": pgettext("audit action", "Register"),
    "send_sms_code": pgettext("audit action", "SMS code sent"),
    "verify_phone": pgettext("audit action", "Phone verified"),
    "phone_code_failed": pgettext("audit action", "Wrong SMS code"),
    "remove_seat": pgettext("audit action", "Remove seat"),
    "request": pgettext("audit action", "Request"),
    "request_refund": pgettext("audit action", "Request refund"),
    "reset_password": pgettext("audit action", "Reset password"),
    "set_permissions": pgettext("audit action", "Set permissions"),
    "resume": pgettext("audit action", "Resume"),
    "retry": pgettext("audit action", "Retry"),
    "set_expiry": pgettext("audit action", "Set expiry date"),
    "stop_sales": pgettext("audit action", "Stop sales"),
    "submit": pgettext("audit action", "Submit"),
    "suspend": pgettext("audit action", "Suspend"),
    "enable": pgettext("audit action", "Enable"),
    "post": pgettext("audit action", "Post"),
    "prepare": pgettext("audit action", "Prepare"),
    "receive": pgettext("audit action", "Confirm receipt"),
    "refund_failed": pgettext("audit action", "Refund failed"),
    "refund_settled": pgettext("audit action", "Refund paid out or not"),
    "refund_by_hand": pgettext("audit action", "Refund paid back by hand"),
    "reveal": pgettext("audit action", "Reveal"),
    "save": pgettext("audit action", "Save"),
    "ship": pgettext("audit action", "Ship"),
    "verify": pgettext("audit action", "Verify"),
    "unbind_package": pgettext("audit action", "Unbind package"),
    "upgrade": pgettext("audit action", "Upgrade"),
    "upgrade_vip": pgettext("audit action", "VIP upgrade"),
    "withdraw_offers": pgettext("audit action", "Withdraw value-added packages"),
    "active": pgettext("audit action", "Activate"),
    "paused": pgettext("audit action", "Pause"),
    "archived": pgettext("audit action", "Archive"),
    "draft": pgettext("audit action", "Back to draft"),
    "send": pgettext("audit action", "Send"),
    "accept": pgettext("audit action", "Accept"),
    "expire": pgettext("audit action", "Expire"),
    # Stock documents are recorded by their kind, offline recharge reviews by the decision, closed withdrawals
    # by the outcome: they read as those pages name them.
    **STOCK_DOCUMENT_KINDS,
    "decline": _l("Decline (final)"),
    **{outcome: WITHDRAWAL_STATUSES[outcome] for outcome in ("rejected", "failed", "cancelled")},
}
AUDIT_TABLES = {
    "company": pgettext("audit table", "Company"),
    "user": pgettext("audit table", "User"),
    "package_category": pgettext("audit table", "Package category"),
    "package_subcategory": pgettext("audit table", "Package subcategory"),
    "package": pgettext("audit table", "Package"),
    "billing_config": pgettext("audit table", "Billing config"),
    "device": pgettext("audit table", "Device"),
    "device_type": pgettext("audit table", "Device type"),
    "auto_renew_attempt": pgettext("audit table", "Auto-renew run"),
    "card_import": pgettext("audit table", "Card import"),
    "card_order": pgettext("audit table", "Card order"),
    "card_quote": pgettext("audit table", "Sales quotation"),
    "commission_rule": pgettext("audit table", "Commission rule"),
    "commission_settlement": pgettext("audit table", "Commission statement"),
    "distributor_profile": pgettext("audit table", "Distributor profile"),
    "sim_card": pgettext("audit table", "SIM card"),
    "stock_document": pgettext("audit table", "Stock document"),
    "withdrawal": pgettext("audit table", "Withdrawal"),
    "company_package": pgettext("audit table", "Value-added package offer"),
    "expiry_import": pgettext("audit table", "Expiry import"),
    "wallet": pgettext("audit table", "Wallet"),
    "ledger_entry": pgettext("audit table", "Ledger entry"),
    "order": pgettext("audit table", "Order"),
    "order_refund": pgettext("audit table", "Refund"),
    "offline_recharge": pgettext("audit table", "Offline recharge"),
    "tenant_application": pgettext("audit table", "Tenant application"),
    "member_account": pgettext("audit table", "Member account"),
    "seat_quota": pgettext("audit table", "Seat quota"),
    "bank_transfer_receipt": pgettext("audit table", "Bank transfer receipt"),
    "invoice_title": pgettext("audit table", "Invoice title"),
    "invoice_request": pgettext("audit table", "Invoice request"),
    "outbox_mail": pgettext("audit table", "Outgoing mail"),
    "service": pgettext("audit table", "Service"),
    "service_plan": pgettext("audit table", "Service plan"),
    "promotion": pgettext("audit table", "Promotion"),
    "subscription": pgettext("audit table", "Subscription"),
    "cash_receipt": pgettext("audit table", "Cash receipt"),
}




class AuditEventView(ScopedModelView):
    roles = frozenset({"admin"})
    can_create = can_edit = can_delete = False
    can_export = True
    export_types = ["csv", "xlsx"]
    column_list = ("at", "actor_name", "action", "model", "ids", "summary", "ip")
    column_default_sort = ("at", True)
    column_searchable_list = ("summary", "actor_name")
    column_filters = ("at", "actor_name", "action", "model",
                      TouchesRow(AuditEvent.ids, _l("Row ids")), "ip")
    column_formatters = {"ids": _ids_formatter, "action": label_formatter(AUDIT_ACTIONS),
                         "model": label_formatter(AUDIT_TABLES),
                         "summary": lambda v, c, m, n: render_text(m.summary_data, m.summary)}
    column_formatters_export = column_formatters
    column_labels = {
        "at": _l("Time"), "actor_name": _l("Actor"), "action": _l("Action"), "model": _l("Table"),
        "ids": _l("Row ids"), "summary": _l("Summary"), "ip": _l("IP address"),
    }
    column_details_exclude_list = ("actor",)  # named by actor_name


def register(admin, category) -> None:
    admin.add_view(CompanyView(Company, name=_l("Companies"), category=category))
    admin.add_view(UserView(User, name=_l("Users"), category=category))
    admin.add_view(AuditEventView(AuditEvent, name=_l("Audit log"), category=category))
