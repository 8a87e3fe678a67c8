"""申请开通 (apply), its review by admins, quick onboarding, and 编辑信息 (the company profile).

The views parse the form, call actions.tenants, commit once and only then send the mail the
action's result describes (a rolled-back approval sends nothing).
"""
from __future__ import annotations


from flask import current_app, flash, has_request_context, redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from wtforms import SelectField, StringField, TextAreaField

from actions import DomainError, companies_in_scope
from actions.regions import COUNTRIES, cities_of, is_province, regions
from actions.tenants import (
    FIELDS, InvalidField, Onboarded, apply, approve, company_administrator, onboard, reject, update_profile,
    username_follows_email,
)
from actions.times import zone_labels
from actions.passwords import current_policy
from admin_views.confirm import Confirmation, ask, is_confirmed
from admin_views.base import OpenRowsFirst, RoleView, ScopedModelView, badge, unit_of_work
from admin_views.mailing import flash_mail, queue, send_now
from admin_views.wording import Form
from models import APPLICATION_STATUSES, LOCALES, ROLES, Company, TenantApplication, db

INDENT = "\u00a0\u00a0\u00a0"
MY_APPLICATIONS_SHOWN = 50
TAX_ID_HELP = _l("18-character unified social credit code, or an old 15- or 20-character tax ID.")


# --- forms (CSRF is checked app-wide by CSRFProtect; the templates carry the token) ------------


def _parent_field():
    return SelectField(FIELDS["parent"], choices=[], validate_choice=False)


class ApplicationForm(Form):
    company_name = StringField(FIELDS["company_name"], render_kw={"maxlength": 200})
    tax_id = StringField(FIELDS["tax_id"], description=TAX_ID_HELP, render_kw={"maxlength": 40})
    contact_name = StringField(FIELDS["contact_name"], render_kw={"maxlength": 100})
    contact_phone = StringField(FIELDS["contact_phone"], render_kw={"maxlength": 40})
    contact_email = StringField(FIELDS["contact_email"], render_kw={"maxlength": 254, "type": "email"})
    parent = _parent_field()


class OnboardingForm(ApplicationForm):
    username = StringField(FIELDS["username"], render_kw={"maxlength": 64},
                           description=_l("Leave empty to use the contact email."))


class ApproveForm(Form):
    parent = _parent_field()
    username = StringField(FIELDS["username"], render_kw={"maxlength": 64},
                           description=_l("The login of the new customer administrator."))


class RejectForm(Form):
    reason = TextAreaField(FIELDS["reason"], render_kw={"rows": 4, "maxlength": 2000},
                           description=_l("Mailed to the applicant's contact."))


class ProfileForm(Form):
    phone = StringField(FIELDS["phone"], render_kw={"maxlength": 40})
    fax = StringField(FIELDS["fax"], render_kw={"maxlength": 40})
    # Chosen from the lists of actions/regions.py (choices set per request: region_choices); the
    # action checks that the city belongs to the province.
    province = SelectField(FIELDS["province"], choices=[], validate_choice=False)
    city = SelectField(FIELDS["city"], choices=[], validate_choice=False)
    address = StringField(FIELDS["address"], render_kw={"maxlength": 255})
    full_name = StringField(FIELDS["full_name"], render_kw={"maxlength": 100})
    email = StringField(FIELDS["email"], render_kw={"maxlength": 254, "type": "email"},
                        description=_l("Password and order mail for your account goes to this address."))
    user_phone = StringField(FIELDS["user_phone"], render_kw={"maxlength": 40})
    mobile = StringField(FIELDS["mobile"], render_kw={"maxlength": 40})
    time_zone = SelectField(FIELDS["time_zone"], choices=[], validate_choice=False,
                            description=_l("Times in the console are shown in this zone. Automatic: China time for "
                                           "Chinese, Vietnam time for Vietnamese, UTC for English."))


# Offered first in the time zone list: where the customers are.
COMMON_ZONES = ("Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Ho_Chi_Minh", "Asia/Singapore",
                "Asia/Tokyo", "UTC")


def country_order(locale: str | None = None) -> tuple[str, ...]:
    """The countries of the province list, the reader's own first: Vietnam for a Vietnamese reader, else China."""
    language = str(locale if locale is not None else (get_locale() or "en")).split("_")[0]
    return ("VN", "CN") if language == "vi" else ("CN", "VN")


def region_choices(form, province: str | None, city: str | None) -> None:
    """The province list in one <optgroup> per country (named in the reader's language, the reader's country
    first) and the chosen province's cities; a stored value that is not on the lists stays selectable so an
    old profile still shows (and saves) it. WTForms escapes every label and value."""
    lists = regions()
    groups = {str(COUNTRIES[code]): [(p["name"], p["name"]) for p in lists[code]] for code in country_order()}
    if province and not is_province(province):
        groups[_("Not on the list")] = [(province, province)]
    form.province.choices = {None: [("", _("— choose —"))], **groups}  # the placeholder in no group
    cities = [(c, c) for c in cities_of(province or "")]
    if city and city not in dict(cities):
        cities.append((city, city))
    form.city.choices = [("", _("— choose —")), *cities]


def _zone_choices(current: str | None = None):
    """The common zones first, then every other offered one, each labelled where it is in the reader's language;
    the company's own zone stays on the list when it is an older name no longer offered."""
    labels = zone_labels(str(get_locale() or "en"))
    others = [(name, label) for name, label in labels.items() if name not in COMMON_ZONES]
    kept = [(current, current)] if current and current not in labels and current not in COMMON_ZONES else []
    return [("", str(_l("Automatic (by language)"))), *((name, labels.get(name, name)) for name in COMMON_ZONES),
            *kept, *others]


REQUIRED = frozenset({"company_name", "tax_id", "contact_name", "contact_phone", "contact_email",
                      "reason", "full_name", "email", "user_phone"})


def _parent_choices(actor) -> list[tuple[str, str]]:
    companies = list(companies_in_scope(db.session, actor))
    top = min((c.depth for c in companies), default=0)
    return [("", _("(none: a top-level company)"))] + [
        (str(c.id), INDENT * (c.depth - top) + c.name) for c in companies
    ]


def _company(raw: str | None) -> Company | None:
    """The company picked in the form's parent field; a bad id becomes that field's error."""
    raw = (raw or "").strip()
    if not raw:
        return None
    company = db.session.get(Company, int(raw)) if raw.isascii() and raw.isdigit() and int(raw) < 2**31 else None
    if company is None:
        raise InvalidField("parent", _l("company #%(id)s: not found or outside your companies.", id=raw[:20]))
    return company


def _show_error(exc: DomainError, form: Form) -> None:
    """Show a refusal (already rolled back) under its field, or as a flash when it names none."""
    field = getattr(exc, "field", None)
    if field is not None and field in form:
        form[field].errors = [*form[field].errors, str(exc)]
    else:
        flash(str(exc), "error")


# --- mail, sent after commit -------------------------------------------------------------------


def _mail_locale(application: TenantApplication | None) -> str:
    """The applicant's chosen language when they set one, else the language of this request."""
    applicant = application.applicant if application is not None else None
    if applicant is not None and applicant.locale in LOCALES:
        return applicant.locale
    return str(get_locale() or "en") if has_request_context() else "en"


def queue_welcome(onboarded: Onboarded, locale: str) -> int | None:
    """Queue the new administrator's login, one-time password and login URL (before the commit)."""
    company = onboarded.company
    return queue(
        f"tenant_approved:{onboarded.user.id}", "tenant_approved", [onboarded.email], locale,
        _l("Your Renewdesk account for %(company)s is ready", company=company.name), sensitive=True,
        company=company.name, contact_name=onboarded.contact_name, username=onboarded.user.username,
        password=onboarded.password or "", login_url=url_for("auth.login", _external=True),
    )


def flash_welcome(outcomes, company: str, email: str, username: str, password: str | None) -> None:
    """Say what happened to the welcome mail; if it did not leave, the admin must pass the password on."""
    if password is None:  # a registered applicant keeps their own password: nothing secret to pass on
        flash(_("Tenant %(company)s created; the applicant %(user)s is its administrator and can enter the "
                "console now.", company=company, user=username), "success")
        if not (outcomes and (outcomes[0].sent or not outcomes[0].failed)):
            flash_mail(outcomes)
        return
    if outcomes and outcomes[0].sent:
        flash(_("Tenant %(company)s created; the login and initial password of %(user)s were emailed to "
                "%(email)s.", company=company, user=username, email=email), "success")
    elif outcomes and not outcomes[0].failed:
        flash(_("Tenant %(company)s created; the email with the login and initial password of %(user)s to "
                "%(email)s is queued and will be sent shortly.", company=company, user=username, email=email),
              "success")
    else:
        flash(_("Tenant %(company)s created, but the email to %(email)s could not be sent. Pass on the "
                "initial password of %(user)s yourself (shown once): %(password)s",
                company=company, email=email, user=username, password=password), "warning")
        flash_mail(outcomes)


def queue_rejection(application: TenantApplication, locale: str) -> int | None:
    """Queue the applicant's mail with the rejection reason (before the commit)."""
    return queue(
        f"tenant_rejected:{application.id}", "tenant_rejected", [application.contact_email], locale,
        _l("Your application for %(company)s was not approved", company=application.company_name),
        company=application.company_name, contact_name=application.contact_name,
        reason=application.reason,
    )


def _welcome(onboarded: Onboarded, locale: str) -> None:
    """Queue the welcome mail, commit the new tenant with it, send it, say what happened."""
    mail_id = queue_welcome(onboarded, locale)
    facts = (onboarded.company.name, onboarded.email, onboarded.user.username, onboarded.password)
    db.session.commit()
    flash_welcome(send_now([mail_id]), *facts)


# --- admins: the applications and their review ---------------------------------------------------


def _status_cell(view, context, model, name):
    kind = {"pending": "warning", "approved": "success", "rejected": "secondary"}.get(model.status, "light")
    cell = badge(str(APPLICATION_STATUSES.get(model.status, model.status)), kind)
    if model.status == "pending":
        cell += Markup(' <a href="{}" class="btn btn-sm btn-primary rd-review">{}</a>').format(
            url_for(".review", id=model.id), _("Review"))
    return cell


class TenantApplicationView(OpenRowsFirst, ScopedModelView):
    """申请开通 review: pending applications first; approve (creating the tenant) or reject."""

    roles = frozenset({"admin"})
    can_create = can_edit = can_delete = False
    list_template = "renewdesk/tenant_application_list.html"
    column_list = ("created_at", "company_name", "tax_id", "contact_name", "contact_phone", "contact_email",
                   "parent", "applicant", "status", "reviewed_by", "reviewed_at", "reason", "company")
    column_details_list = column_list
    column_default_sort = ("created_at", True)
    column_searchable_list = ("company_name", "tax_id", "contact_name", "contact_email")
    column_filters = ("status", "created_at", "reviewed_at", "company_name", "tax_id")
    column_select_related_list = (TenantApplication.parent, TenantApplication.applicant,
                                  TenantApplication.reviewed_by, TenantApplication.company)
    column_formatters = {"status": _status_cell}
    column_choices = {"status": list(APPLICATION_STATUSES.items())}
    column_labels = {
        "created_at": _l("Applied"), "company_name": FIELDS["company_name"], "tax_id": FIELDS["tax_id"],
        "contact_name": FIELDS["contact_name"], "contact_phone": FIELDS["contact_phone"],
        "contact_email": FIELDS["contact_email"], "parent": FIELDS["parent"], "applicant": _l("Applicant"),
        "status": _l("Status"), "reviewed_by": _l("Reviewed by"), "reviewed_at": _l("Reviewed"),
        "reason": _l("Rejection reason"), "company": _l("Company created"),
    }

    # The list opens on the pending applications; ?show=all (kept by paging and filters) lists all.
    def open_clause(self):
        return TenantApplication.status == "pending"

    def _load(self, raw) -> TenantApplication | None:
        application = self.get_one(raw)
        if application is None:
            flash(_("Application #%(id)s: not found.", id=str(raw)[:20]), "error")
        return application

    def _review_page(self, application, approve_form=None, reject_form=None):
        if approve_form is None:
            approve_form = ApproveForm(data={"parent": str(application.parent_id or ""),
                                             "username": application.contact_email})
        approve_form.parent.choices = _parent_choices(current_user)
        reject_form = reject_form or RejectForm()
        taken_by = db.session.scalar(select(Company).where(Company.tax_id == application.tax_id).limit(1))
        return self.render("renewdesk/tenant_review.html", application=application,
                           approve_form=approve_form, reject_form=reject_form, taken_by=taken_by,
                           statuses=APPLICATION_STATUSES, required=REQUIRED)

    @expose("/review/")
    def review(self):
        application = self._load(request.args.get("id", ""))
        if application is None:
            return redirect(url_for(".index_view"))
        return self._review_page(application)

    @expose("/approve/", methods=("POST",))
    def approve_view(self):
        application = self._load(request.form.get("id", ""))
        if application is None:
            return redirect(url_for(".index_view"))
        form = ApproveForm(request.form)
        with unit_of_work(flash_error=False) as work:
            onboarded = approve(
                db.session, current_user, application, parent=_company(form.parent.data),
                username=form.username.data, method=current_app.config["PASSWORD_HASH_METHOD"],
                policy=current_policy(),
            )
        if work.failed:
            _show_error(work.error, form)
            application = self.get_one(application.id)
            if application is None or application.status != "pending":  # reviewed meanwhile (a double click)
                return redirect(url_for(".index_view"))
            return self._review_page(application, approve_form=form)
        _welcome(onboarded, _mail_locale(application))
        return redirect(url_for(".index_view"))

    @expose("/reject/", methods=("POST",))
    def reject_view(self):
        application = self._load(request.form.get("id", ""))
        if application is None:
            return redirect(url_for(".index_view"))
        form = RejectForm(request.form)
        purpose = f"{self.endpoint}.reject"
        if (application.status == "pending" and (form.reason.data or "").strip()
                and not is_confirmed(purpose, [application.id])):
            return ask(self, Confirmation(
                title=_("Reject the application of %(company)s", company=application.company_name),
                summary=_("Reject the application of %(company)s (tax ID %(tax_id)s): no company or account is "
                          "created.", company=application.company_name, tax_id=application.tax_id),
                items=[_("Reason: %(reason)s", reason=form.reason.data.strip())],
                note=_("The applicant is told by email, with the reason."),
                confirm_label=_("Reject the application")), purpose, [application.id],
                url_for(".review", id=application.id))
        with unit_of_work(flash_error=False) as work:
            reject(db.session, current_user, application, form.reason.data)
        if work.failed:
            _show_error(work.error, form)
            application = self.get_one(application.id)
            if application is None or application.status != "pending":
                return redirect(url_for(".index_view"))
            return self._review_page(application, reject_form=form)
        mail_id = queue_rejection(application, _mail_locale(application))
        company = application.company_name
        db.session.commit()
        outcomes = send_now([mail_id])
        flash(_("Application of %(company)s rejected.", company=company), "success")
        flash_mail(outcomes)
        return redirect(url_for(".index_view"))


class TenantOnboardingView(RoleView):
    """Quick onboarding: an admin creates a tenant and its administrator in one form."""

    roles = frozenset({"admin"})

    @expose("/", methods=("GET", "POST"))
    def index(self):
        form = OnboardingForm(request.form if request.method == "POST" else None)
        form.parent.choices = _parent_choices(current_user)
        if request.method == "POST":
            with unit_of_work(flash_error=False) as work:
                onboarded = onboard(
                    db.session, current_user, company_name=form.company_name.data, tax_id=form.tax_id.data,
                    contact_name=form.contact_name.data, contact_phone=form.contact_phone.data,
                    contact_email=form.contact_email.data, parent=_company(form.parent.data),
                    username=form.username.data, method=current_app.config["PASSWORD_HASH_METHOD"],
                    policy=current_policy(),
                )
            if work.failed:
                _show_error(work.error, form)
            else:
                _welcome(onboarded, _mail_locale(None))
                return redirect(url_for(".index"))
        return self.render("renewdesk/tenant_form.html", form=form, required=REQUIRED,
                           title=_("New tenant"), submit=_("Create tenant"),
                           intro=_("Creates the company, its billing config and its administrator, "
                                   "who receives the login and an initial password by email."))


class TenantApplyView(RoleView):
    """申请开通: any signed-in user applies for a company (a customer: under their own tree)."""

    roles = frozenset(ROLES)
    area = "company"

    @expose("/", methods=("GET", "POST"))
    def index(self):
        if request.method == "POST":
            form = ApplicationForm(request.form)
        else:
            own = current_user.company_id if not current_user.is_staff else None
            form = ApplicationForm(data={"parent": str(own or "")})
        form.parent.choices = _parent_choices(current_user)
        if request.method == "POST":
            with unit_of_work(flash_error=False) as work:
                application = apply(
                    db.session, current_user, company_name=form.company_name.data, tax_id=form.tax_id.data,
                    contact_name=form.contact_name.data, contact_phone=form.contact_phone.data,
                    contact_email=form.contact_email.data, parent=_company(form.parent.data),
                )
            if work.failed:
                _show_error(work.error, form)
            else:
                flash(_("Application #%(id)s for %(company)s submitted: an administrator will review it.",
                        id=application.id, company=application.company_name), "success")
                return redirect(url_for(".index"))
        mine = db.session.scalars(
            select(TenantApplication).where(TenantApplication.applicant_id == current_user.id)
            .order_by(TenantApplication.created_at.desc(), TenantApplication.id.desc())
            .limit(MY_APPLICATIONS_SHOWN)
        ).all()
        return self.render("renewdesk/tenant_form.html", form=form, required=REQUIRED,
                           title=_("Apply for an account"), submit=_("Apply"),
                           intro=_("Apply for a company account; an administrator reviews the "
                                   "application and the contact receives the login by email."),
                           applications=mine, statuses=APPLICATION_STATUSES)


class CompanyProfileView(RoleView):
    """编辑信息: the company's details and its administrator's contact details (actions.tenants.update_profile);
    the administrator's username is shown beside the email it follows."""

    roles = frozenset({"customer_admin"})
    area = "company"

    @expose("/", methods=("GET", "POST"))
    def index(self):
        company = current_user.company
        if company is None:  # staff have no company of their own
            return self.render("renewdesk/company_profile.html", company=None, form=None, required=REQUIRED)
        if request.method == "POST":
            form = ProfileForm(request.form)
            form.time_zone.choices = _zone_choices(company.time_zone)
            region_choices(form, form.province.data, form.city.data)
            with unit_of_work(flash_error=False) as work:
                change = update_profile(
                    db.session, current_user, phone=form.phone.data, fax=form.fax.data,
                    province=form.province.data, city=form.city.data, address=form.address.data,
                    full_name=form.full_name.data, email=form.email.data, user_phone=form.user_phone.data,
                    mobile=form.mobile.data, time_zone=form.time_zone.data or "",
                )
            if work.failed:
                _show_error(work.error, form)
            else:
                if not change.changed:
                    flash(_("Nothing changed."), "info")
                else:
                    flash(_("Company profile saved."), "success")
                mine = change.administrator is None or change.administrator.id == current_user.id
                if change.new_email and mine:
                    flash(_("From now on, mail for your account (passwords, orders) goes to %(email)s.",
                            email=change.new_email), "info")
                elif change.new_email:
                    flash(_("From now on, mail for the administrator's account (passwords, orders) goes to "
                            "%(email)s.", email=change.new_email), "info")
                if change.new_username:
                    flash(_("The administrator's username is now %(username)s: sign in with it from now on.",
                            username=change.new_username), "info")
                return redirect(url_for(".index"))
        else:
            user = company_administrator(db.session, company) or current_user
            form = ProfileForm(data={
                "phone": company.phone, "fax": company.fax, "province": company.province, "city": company.city,
                "address": company.address, "full_name": user.full_name, "email": user.email,
                "user_phone": user.phone, "mobile": user.mobile, "time_zone": company.time_zone,
            })
        form.time_zone.choices = _zone_choices(company.time_zone)
        region_choices(form, form.province.data, form.city.data)
        administrator = company_administrator(db.session, company) or current_user
        return self.render("renewdesk/company_profile.html", company=company, form=form, required=REQUIRED,
                           regions=regions(), administrator=administrator,
                           follows_email=username_follows_email(administrator))


def register(admin, system, customer) -> None:
    """Add tenant applications and quick onboarding (admins), applying and the company profile."""
    admin.add_view(TenantApplicationView(TenantApplication, name=_l("Tenant applications"), category=system))
    admin.add_view(TenantOnboardingView(name=_l("New tenant"), category=system, endpoint="tenant_onboarding"))
    admin.add_view(TenantApplyView(name=_l("Apply for an account"), category=customer, endpoint="tenant_apply"))
    admin.add_view(CompanyProfileView(name=_l("Company profile"), category=customer, endpoint="company_profile"))

