"""员工权限设置 (seed 002 系统设置): a customer company's administrator lists its logins, adds employees, ticks
what each may use, deactivates them or resets their passwords — thin over actions.employees."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import Form, PasswordField, StringField

from actions.employees import (
    EmployeeNotFound, create_employee, employees_of, find_employee, grantable_areas, reset_employee_password,
    set_areas, set_employee_active,
)
from actions.passwords import current_policy
from actions.permissions import AREAS
from admin_views.base import RoleView, parse_row_id, unit_of_work
from admin_views.confirm import Confirmation, ask, is_confirmed
from models import Company, db

FIELDS = {
    "username": _l("Username"),
    "full_name": _l("Full name"),
    "mobile": _l("Mobile phone"),
    "email": _l("Email"),
    "password": _l("Initial password"),
}
REQUIRED = ("username",)


class EmployeeForm(Form):
    username = StringField(FIELDS["username"], render_kw={"maxlength": 64, "autocomplete": "off"})
    full_name = StringField(FIELDS["full_name"], render_kw={"maxlength": 100})
    mobile = StringField(FIELDS["mobile"], render_kw={"maxlength": 40})
    email = StringField(FIELDS["email"], render_kw={"maxlength": 254, "type": "email"})
    password = PasswordField(FIELDS["password"], render_kw={"autocomplete": "new-password"})


class EmployeeView(RoleView):
    """The company tree's logins with their permissions; an employee's areas, state and password."""

    roles = frozenset({"customer_admin"})
    area = "employees"

    def _page(self, form: EmployeeForm | None = None, chosen: list[str] | None = None,
              edited: dict[int, list[str]] | None = None):
        if current_user.company is None:  # staff: their users are under System › Users
            return self.render("renewdesk/employees.html", users=None, form=None)
        form = form or EmployeeForm()
        form.password.description = (f"{current_policy().describe()} "
                                     f"{_('Leave empty to generate one; the user must change it at first login.')}")
        users = employees_of(db.session, current_user)
        companies = {c.id: c.name for c in db.session.query(Company).filter(
            Company.id.in_({u.company_id for u in users}))}
        offered = {user.id: grantable_areas(db.session, current_user, user.company_id) for user in users}
        return self.render(
            "renewdesk/employees.html", users=users, companies=companies, areas=AREAS, offered=offered,
            new_areas=grantable_areas(db.session, current_user), chosen=set(chosen or ()), edited=edited or {},
            form=form, required=REQUIRED,
        )

    def _employee(self):
        if current_user.company is None:  # staff: no employees of their own
            abort(404)
        pk = parse_row_id(request.form.get("id"))
        try:
            return find_employee(db.session, current_user, pk)
        except EmployeeNotFound:
            abort(404)

    @expose("/")
    def index(self):
        return self._page()

    @expose("/new/", methods=("POST",))
    def create_view(self):
        if current_user.company is None:
            abort(404)
        form = EmployeeForm(request.form)
        chosen = request.form.getlist("areas")
        with unit_of_work(flash_error=False) as work:
            user, password = create_employee(
                db.session, current_user, form.username.data, chosen, form.password.data or None,
                full_name=form.full_name.data, email=form.email.data, mobile=form.mobile.data,
                method=current_app.config["PASSWORD_HASH_METHOD"], policy=current_policy(),
            )
            username = user.username
        if work.failed:  # the form as typed, the refusal under its field (the password is typed again)
            field = getattr(work.error, "field", None)
            if field in ("username", "email", "password"):
                form[field].errors = [*form[field].errors, str(work.error)]
            else:
                flash(str(work.error), "error")
            return self._page(form, chosen)
        flash(_("Employee %(user)s added.", user=username), "success")
        if not form.password.data:
            flash(_("Initial password of %(user)s (shown once): %(password)s", user=username, password=password),
                  "info")
        return redirect(url_for(".index"))

    @expose("/areas/", methods=("POST",))
    def areas_view(self):
        employee = self._employee()
        chosen = request.form.getlist("areas")
        employee_id, username = employee.id, employee.username
        with unit_of_work(flash_error=False) as work:
            changed = set_areas(db.session, current_user, employee, chosen)
        if work.failed:
            flash(str(work.error), "error")
            return self._page(edited={employee_id: chosen})
        if changed:
            flash(_("Permissions of %(user)s saved; their sessions ended.", user=username), "success")
        else:
            flash(_("Nothing changed."), "info")
        return redirect(url_for(".index"))

    @expose("/deactivate/", methods=("POST",))
    def deactivate_view(self):
        employee = self._employee()
        purpose = f"{self.endpoint}.deactivate"
        if not is_confirmed(purpose, [employee.id]):
            return ask(self, Confirmation(
                title=_("Deactivate an employee"),
                summary=_("Deactivate the login %(user)s?", user=employee.username),
                note=_("It can no longer sign in and its sessions end. You can reactivate it later."),
                confirm_label=_("Deactivate"),
            ), purpose, [employee.id], url_for(".index"))
        return self._set_active(employee, False)

    @expose("/activate/", methods=("POST",))
    def activate_view(self):
        return self._set_active(self._employee(), True)

    def _set_active(self, employee, active: bool):
        username = employee.username
        with unit_of_work() as work:
            changed = set_employee_active(db.session, current_user, employee, active)
        if not work.failed:
            if not changed:
                flash(_("Nothing changed."), "info")
            elif active:
                flash(_("%(user)s can sign in again.", user=username), "success")
            else:
                flash(_("%(user)s is deactivated; their sessions ended.", user=username), "success")
        return redirect(url_for(".index"))

    @expose("/reset-password/", methods=("POST",))
    def reset_password_view(self):
        employee = self._employee()
        purpose = f"{self.endpoint}.reset_password"
        if not is_confirmed(purpose, [employee.id]):
            return ask(self, Confirmation(
                title=_("Reset password"),
                summary=_("Give %(user)s a new password?", user=employee.username),
                note=_("The new password is shown once; the employee must change it at the next sign-in, and its "
                       "sessions end."),
                confirm_label=_("Reset password"),
            ), purpose, [employee.id], url_for(".index"))
        username = employee.username
        with unit_of_work() as work:
            password = reset_employee_password(db.session, current_user, employee,
                                               method=current_app.config["PASSWORD_HASH_METHOD"],
                                               policy=current_policy())
        if not work.failed:
            flash(_("New password of %(user)s (shown once): %(password)s", user=username, password=password), "info")
        return redirect(url_for(".index"))


def register(admin, customer) -> None:
    admin.add_view(EmployeeView(name=_l("Employee permissions"), category=customer, endpoint="employees"))
