"""线下充值: sales file offline-recharge applications, finance review them (线下审核).

Sales: "Offline recharge" lists every application; "Create" saves a draft or submits it; a
draft, a submitted or a rejected application can be edited, and drafts and rejected ones
submitted. Finance: "Pending review" (submitted) and "Reviewed" (approved, rejected, declined);
the review icon of a pending row opens the review page (approve, reject back to sales, or
decline, with a comment); a pending application can be edited before it is reviewed.
The rules live in actions.offline_recharge; these views parse, call, commit once and flash.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import flash, has_request_context, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.helpers import get_redirect_target
from flask_admin.model.template import BaseListRowAction, EditRowAction, EndpointLinkRowAction
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectField, StringField

from actions import companies_in_scope
from actions.money import format_money
from actions.audit import history
from actions.idempotency import remember
from actions.offline_recharge import (
    EDITABLE_BY, MAX_PAYER, MAX_REFERENCE, REVIEWED, AlreadyReviewed, RechargeTerms, create_application,
    edit_application, review, submit, submit_applications,
)
from admin_views.base import (
    LocalFilterValue, ScopedModelView, badge, claim_form, flash_result, money_filters, parse_row_id, time_cell,
    unit_of_work,
)
from admin_views.confirm import Confirmation, ask, is_confirmed
from admin_views.system import InCompanyTree
from admin_views.wording import Form
from models import CURRENCIES, RECHARGE_STATUSES, OfflineRecharge, User, db

LABELS = {
    "id": _l("Application No."), "company": _l("Customer company"), "payer": _l("Payer"), "currency": _l("Currency"),
    "amount": _l("Amount"), "reference": _l("Reference number"), "status": _l("Status"),
    "created_by": _l("Created by"), "created_at": _l("Created"), "submitted_at": _l("Submitted"),
    "reviewed_by": _l("Reviewed by"), "reviewed_at": _l("Reviewed at"), "review_comment": _l("Review comment"),
    "order": _l("Order number"),
}
STATUS_BADGES = {"draft": "secondary", "submitted": "info", "approved": "success", "rejected": "warning",
                 "declined": "danger"}
INDENT = "\u00a0\u00a0\u00a0"


def _amount_cell(view, context, model, name):
    return format_money(model.amount, model.currency)


def _status_cell(view, context, model, name):
    return badge(str(RECHARGE_STATUSES.get(model.status, model.status)), STATUS_BADGES.get(model.status, "secondary"))


# --- filters: every column --------------------------------------------------------------------

class TimeBetween(LocalFilterValue, sqla_filters.DateTimeBetweenFilter):
    pass


class TimeAfter(LocalFilterValue, sqla_filters.DateTimeGreaterFilter):
    pass


class TimeBefore(LocalFilterValue, sqla_filters.DateTimeSmallerFilter):
    pass


def _user_options(roles):
    """Filter options of the users holding one of `roles`, computed per request."""

    def options():
        if not has_request_context() or not current_user.is_authenticated:
            return []
        users = db.session.scalars(select(User).where(User.role.in_(roles)).order_by(User.username))
        return [(str(u.id), u.username) for u in users]

    return options


def recharge_filters(statuses) -> list:
    """A filter for each column of an application (a status filter when the list shows several)."""
    model = OfflineRecharge
    filters = [
        InCompanyTree(model.company_id, _l("Customer company"), model.company_id),
        sqla_filters.IntEqualFilter(model.id, LABELS["id"]),
        sqla_filters.FilterLike(model.payer, LABELS["payer"]),
        sqla_filters.FilterEqual(model.payer, LABELS["payer"]),
        sqla_filters.FilterEqual(model.currency, LABELS["currency"], options=list(CURRENCIES.items())),
        *money_filters(model.amount_minor, model.currency, LABELS["amount"]),
        sqla_filters.FilterLike(model.reference, LABELS["reference"]),
        sqla_filters.FilterEqual(model.reference, LABELS["reference"]),
    ]
    if len(statuses) > 1:
        filters.append(sqla_filters.FilterEqual(model.status, LABELS["status"],
                                                options=[(s, RECHARGE_STATUSES[s]) for s in statuses]))
    filters += [
        sqla_filters.IntEqualFilter(model.created_by_id, LABELS["created_by"], options=_user_options(("sales", "admin"))),
        TimeBetween(model.created_at, LABELS["created_at"]),
        TimeAfter(model.created_at, LABELS["created_at"]),
        TimeBefore(model.created_at, LABELS["created_at"]),
        TimeBetween(model.submitted_at, LABELS["submitted_at"]),
        sqla_filters.IntEqualFilter(model.reviewed_by_id, LABELS["reviewed_by"],
                                    options=_user_options(("finance", "admin"))),
        TimeBetween(model.reviewed_at, LABELS["reviewed_at"]),
        sqla_filters.FilterLike(model.review_comment, LABELS["review_comment"]),
    ]
    return filters


# --- the application form -----------------------------------------------------------------------

def _optional_id(value) -> int | None:
    """A select's value as an id; the empty "choose" option is None (the action names it)."""
    return None if value in (None, "") else int(value)


class RechargeForm(Form):
    """客户公司, 付款客户, 充值币别, 金额, 编号 (CSRF is checked app-wide; the rules are in actions)."""

    company_id = SelectField(_l("Customer company"), coerce=_optional_id, validate_choice=False)
    payer = StringField(_l("Payer"), render_kw={"maxlength": MAX_PAYER})
    currency = SelectField(_l("Currency"), choices=list(CURRENCIES.items()))
    amount = StringField(_l("Amount"), render_kw={"inputmode": "decimal"})
    reference = StringField(_l("Reference number"), render_kw={"maxlength": MAX_REFERENCE})
    # Marked with * on the page (actions.offline_recharge.clean_terms refuses them empty); 编号 is optional.
    required_fields = ("company_id", "payer", "currency", "amount")

    def terms(self) -> dict:
        return {name: self[name].data for name in ("company_id", "payer", "currency", "amount", "reference")}


def _application_form(formdata=None, application: OfflineRecharge | None = None) -> RechargeForm:
    data = None
    if application is not None:
        data = {"company_id": application.company_id, "payer": application.payer,
                "currency": application.currency, "amount": str(application.amount),
                "reference": application.reference}
    form = RechargeForm(formdata, data=data)
    form.company_id.choices = [("", _("— choose a company —"))] + [
        (c.id, INDENT * c.depth + c.name) for c in companies_in_scope(db.session, current_user)]
    return form


class EditableRowAction(BaseListRowAction):
    """The edit icon, drawn only on rows the current role may still edit."""

    def __init__(self, statuses):
        super().__init__()
        self.statuses = statuses
        self.edit = EditRowAction()

    def render(self, context, row_id, row):
        return self.edit.render(context, row_id, row) if row.status in self.statuses else ""


# --- views ------------------------------------------------------------------------------------------

class _ApplicationView(ScopedModelView):
    """An application list limited to `statuses`, with the shared edit page."""

    scope_column = "company_id"
    audit_name = "offline_recharge"
    statuses: tuple[str, ...] = tuple(RECHARGE_STATUSES)
    can_create = can_delete = False
    can_edit = False
    # "order": the paid recharge order approval wrote (订单管理 and the customer's 充值记录 list it).
    column_list = ("id", "company", "payer", "amount", "reference", "status", "created_by", "created_at",
                   "submitted_at", "reviewed_by", "reviewed_at", "review_comment", "order")
    column_details_list = column_list
    column_export_list = ("id", "company", "payer", "currency", "amount", "reference", "status", "created_by",
                          "created_at", "submitted_at", "reviewed_by", "reviewed_at", "review_comment", "order")
    column_labels = LABELS
    column_default_sort = ("id", True)
    column_sortable_list = ("id", "payer", "amount", "reference", "status", "created_at", "submitted_at",
                            "reviewed_at")
    column_searchable_list = ("payer", "reference")
    column_select_related_list = (OfflineRecharge.company, OfflineRecharge.created_by, OfflineRecharge.reviewed_by,
                                  OfflineRecharge.order)
    column_formatters = {"amount": _amount_cell, "status": _status_cell, "created_at": time_cell,
                         "submitted_at": time_cell, "reviewed_at": time_cell}
    column_formatters_export = {"status": lambda v, c, m, n: str(RECHARGE_STATUSES.get(m.status, m.status))}
    form_template = "renewdesk/offline_recharge_form.html"

    def __init__(self, *args, **kwargs):
        self.column_filters = recharge_filters(self.statuses)
        super().__init__(OfflineRecharge, *args, **kwargs)

    def search_placeholder(self):
        return _("Payer or reference number")

    def get_query(self):
        return super().get_query().filter(OfflineRecharge.status.in_(self.statuses))

    def get_count_query(self):
        return super().get_count_query().filter(OfflineRecharge.status.in_(self.statuses))

    @property
    def editable_statuses(self) -> tuple[str, ...]:
        return EDITABLE_BY.get(current_user.role, ())

    def get_list_row_actions(self):
        actions = [EditableRowAction(self.editable_statuses) if isinstance(a, EditRowAction) else a
                   for a in super().get_list_row_actions()]
        return actions

    def any_application(self, raw_id) -> OfflineRecharge | None:
        """An application of the actor's companies, whatever its status (None if unknown)."""
        pk = parse_row_id(raw_id)  # past 2**31 PostgreSQL refused the parameter: a bare 404, not the message
        if pk is None:
            return None
        return ScopedModelView.get_query(self).filter(OfflineRecharge.id == pk).one_or_none()

    def _render_form(self, form, application, return_url):
        return self.render(self.form_template, form=form, application=application, return_url=return_url,
                           statuses=RECHARGE_STATUSES, money=format_money)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        """Edit an application that is not reviewed yet; sales may also submit it from here."""
        return_url = get_redirect_target() or self.get_url(".index_view")
        if not self.can_edit:
            return redirect(return_url)
        raw_id = request.args.get("id", "")
        application = self.any_application(raw_id)
        if application is None:
            flash(_("Application #%(id)s: not found.", id=raw_id[:20]), "error")
            return redirect(return_url)
        if application.status not in self.editable_statuses:
            flash(_("Application #%(id)s is %(status)s: it can no longer be edited here.", id=application.id,
                    status=RECHARGE_STATUSES[application.status]), "error")
            return redirect(return_url)
        form = _application_form(request.form if request.method == "POST" else None, application)
        if request.method == "POST" and form.validate():
            then_submit = request.form.get("save") == "submit"
            with unit_of_work() as work:
                remember(claim_form("offline_recharge"), return_url)
                edit_application(db.session, current_user, application, **form.terms())
                if then_submit:
                    submit(db.session, current_user, application)
            again = work.already_done(return_url)
            if again:
                return again
            if not work.failed:
                if then_submit:
                    flash(_("Application #%(id)s saved and submitted for review.", id=application.id), "success")
                else:
                    flash(_("Application #%(id)s saved.", id=application.id), "success")
                return redirect(return_url)
        return self._render_form(form, application, return_url)


class OfflineRechargeView(_ApplicationView):
    """线下充值 (sales): every application; create (draft or submit), edit until reviewed, submit."""

    roles = frozenset({"sales"})
    can_create = True
    can_edit = True
    can_export = True

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """The application form: "Save as draft" or "Submit for review"."""
        return_url = get_redirect_target() or self.get_url(".index_view")
        form = _application_form(request.form if request.method == "POST" else None)
        if request.method == "POST" and form.validate():
            then_submit = request.form.get("save") == "submit"
            with unit_of_work() as work:
                remember(claim_form("offline_recharge"), return_url)
                application = create_application(db.session, current_user, submit=then_submit, **form.terms())
            again = work.already_done(return_url)
            if again:
                return again
            if not work.failed:
                if then_submit:
                    flash(_("Application #%(id)s submitted for review.", id=application.id), "success")
                else:
                    flash(_("Application #%(id)s saved as a draft.", id=application.id), "success")
                return redirect(return_url)
        return self._render_form(form, None, return_url)

    @action("submit", _l("Submit for review"), _l("Submit the selected applications for review?"))
    def action_submit(self, ids):
        rows = self.scoped_rows(ids)
        with unit_of_work() as work:
            result = submit_applications(db.session, current_user, rows)
        if work.failed:
            return
        refused = tuple(self.refused_ids(ids, rows)) + result.refused
        flash_result(type(result)(result.changed, refused), _("%(count)s applications submitted for review."))


def _expected_terms(form) -> RechargeTerms | None:
    """What the reviewer saw on the review page (hidden fields), or None when not sent."""
    if "seen_amount" not in form:
        return None
    try:
        amount = Decimal(form.get("seen_amount", ""))
        company_id = int(form.get("seen_company_id", ""))
    except (InvalidOperation, ValueError):
        amount, company_id = Decimal("-1"), -1  # tampered: matches nothing, so nothing is reviewed
    return RechargeTerms(company_id, form.get("seen_payer", ""), form.get("seen_currency", ""), amount,
                         form.get("seen_reference", ""))


def describe_review(application: OfflineRecharge, decision: str, comment: str) -> Confirmation:
    """What approving (the amount, the company, the balance) or declining an application will do."""
    amount = format_money(application.amount, application.currency)
    company = application.company.name
    if decision == "approve":
        return Confirmation(
            title=_("Approve offline recharge #%(id)s", id=application.id),
            summary=_("Approve and credit %(amount)s to the %(currency)s balance of %(company)s.", amount=amount,
                      currency=CURRENCIES.get(application.currency, application.currency), company=company),
            items=[_("Payer: %(payer)s", payer=application.payer),
                   _("Reference number: %(reference)s", reference=application.reference)],
            note=_("The balance is credited at once and the approval cannot be undone."),
            confirm_label=_("Approve and credit %(amount)s", amount=amount),
        )
    return Confirmation(
        title=_("Decline offline recharge #%(id)s", id=application.id),
        summary=_("Decline the application of %(company)s for %(amount)s: nothing is credited.", company=company,
                  amount=amount),
        items=[_("Review comment: %(comment)s", comment=comment.strip())],
        note=_("Declining is final: sales cannot edit and resubmit this application."),
        confirm_label=_("Decline (final)"),
    )


class PendingReviewView(_ApplicationView):
    """线下审核 → 待审核 (finance): submitted applications; review icon per row; edit before review."""

    roles = frozenset({"finance"})
    statuses = ("submitted",)
    can_edit = True
    can_export = True
    column_extra_row_actions = [EndpointLinkRowAction("fa fa-gavel", ".review_view", title=_l("Review"))]
    review_template = "renewdesk/offline_recharge_review.html"

    @expose("/review/", methods=("GET", "POST"))
    def review_view(self):
        """The review page: the application, its history, approve / reject / decline with a comment."""
        list_url = get_redirect_target() or self.get_url(".index_view")
        raw_id = request.args.get("id", "")
        application = self.any_application(raw_id)
        if application is None:
            flash(_("Application #%(id)s: not found.", id=raw_id[:20]), "error")
            return redirect(list_url)
        comment = request.form.get("comment", "")
        if request.method == "POST":
            decision = request.form.get("decision", "")
            app_id = application.id
            if application.status == "submitted" and (decision == "approve" or (decision == "decline" and comment.strip())):
                purpose = f"{self.endpoint}.{decision}"
                if not is_confirmed(purpose, [app_id]):
                    return ask(self, describe_review(application, decision, comment), purpose, [app_id],
                               self.get_url(".review_view", id=app_id, url=list_url))
            with unit_of_work() as work:
                review(db.session, current_user, application, decision, comment, _expected_terms(request.form))
            if isinstance(work.error, AlreadyReviewed):
                return redirect(list_url)
            if not work.failed:
                if decision == "approve":
                    flash(_("Application #%(id)s approved: %(amount)s credited to %(company)s.", id=app_id,
                            amount=format_money(application.amount, application.currency),
                            company=application.company.name), "success")
                elif decision == "reject":
                    flash(_("Application #%(id)s rejected: it is back with sales to edit and resubmit.",
                            id=app_id), "success")
                else:
                    flash(_("Application #%(id)s declined.", id=app_id), "success")
                return redirect(list_url)
        return self.render(self.review_template, application=application, comment=comment,
                           events=history(db.session, "offline_recharge", application.id),
                           statuses=RECHARGE_STATUSES, reviewed=application.status in REVIEWED,
                           money=format_money, return_url=list_url)


class ReviewedView(_ApplicationView):
    """线下审核 → 已审核 (finance): approved, rejected and declined applications."""

    roles = frozenset({"finance"})
    statuses = REVIEWED
    can_export = True


def register(admin, sales, finance) -> None:
    """Add the offline recharge views (sales: applications; finance: pending review, reviewed)."""
    admin.add_view(OfflineRechargeView(name=_l("Offline recharge"), category=sales, endpoint="offline_recharge"))
    admin.add_view(PendingReviewView(name=_l("Pending review"), category=finance, endpoint="recharge_review"))
    admin.add_view(ReviewedView(name=_l("Reviewed"), category=finance, endpoint="recharge_reviewed"))
