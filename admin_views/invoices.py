"""Seed 000 section 5: 发票设置 (invoice titles), 申请开票 over unbilled orders, and finance's review.

The rules live in actions.invoices; these views parse the request, call it, commit once (or roll
back on a DomainError), flash the result and only then mail the customer.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Response, abort, current_app, flash, redirect, request
from flask_admin import expose
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model.template import EndpointLinkRowAction
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.utils import secure_filename

from actions import DomainError, companies_in_scope, scoped
from actions.money import format_amount, format_money
from actions.audit import history
from actions.invoices import (
    DEFAULT_DOC_MAX_BYTES, MAX_ORDERS_PER_REQUEST, TITLE_FIELDS, AlreadyReviewed, document_kind, issue_invoice,
    may_view_document, reject_invoice_request, request_invoice, save_invoice_title, unbilled_order_kinds,
    unbilled_orders_query,
)
from admin_views.base import (
    OpenRowsFirst, ScopedModelView, badge, company_in_scope, label_formatter, local_day_start, local_today,
    page_label, parse_row_id, time_cell, unit_of_work,
)
from admin_views.confirm import Confirmation, ask, is_confirmed
from admin_views.mailing import flash_mail, queue, send_now, user_locale
from admin_views.system import InCompanyTree
from models import (
    INVOICE_REQUEST_STATUSES, INVOICE_TITLE_KINDS, INVOICE_TYPES, ORDER_KINDS, ORDER_STATUSES, WALLET_CURRENCIES, InvoiceRequest, InvoiceTitle, Order, User, db,
)

INDENT = "\u00a0\u00a0\u00a0"
UNBILLED_SHOWN = MAX_ORDERS_PER_REQUEST
STATUS_BADGES = {"requested": "warning", "issued": "success", "rejected": "secondary"}


def _company_choices() -> list[tuple[str, str]]:
    companies = list(companies_in_scope(db.session, current_user))
    top = min((c.depth for c in companies), default=0)
    return [(str(c.id), INDENT * (c.depth - top) + c.name) for c in companies]




def _folder() -> Path:
    return Path(current_app.instance_path) / "invoice_docs"


def _max_bytes() -> int:
    return int(current_app.config.get("INVOICE_DOC_MAX_BYTES", DEFAULT_DOC_MAX_BYTES))


def document_response(title: InvoiceTitle) -> Response:
    """The stored registration document as an attachment with the type its bytes were checked to be."""
    kind = document_kind(title)
    path = _folder() / (title.registration_file_sha256 or "")
    if kind is None or not title.registration_file_sha256 or not path.is_file():
        abort(404)
    name = secure_filename(title.registration_file_name or "") or f"registration-{title.id}{kind.extensions[0]}"
    return Response(path.read_bytes(), mimetype=kind.content_type,
                    headers={"Content-Disposition": f"attachment; filename={name}"})


def _status_cell(view, context, model, name):
    return badge(str(INVOICE_REQUEST_STATUSES.get(model.status, model.status)),
                 STATUS_BADGES.get(model.status, "secondary"))


def _total_cell(view, context, model, name):
    return format_money(model.total, model.currency)


# --- 发票设置: invoice titles ---------------------------------------------------------------------------

def _document_cell(view, context, model, name):
    if not model.registration_file_sha256:
        return ""
    return Markup('<a href="{}">{}</a>').format(view.get_url(".document_view", id=model.id),
                                               model.registration_file_name or _("Document"))


TITLE_LABELS = {
    "company": _l("Company"), "kind": _l("Invoice title type"), "title": TITLE_FIELDS["title"],
    "tax_id": TITLE_FIELDS["tax_id"], "address": TITLE_FIELDS["address"], "phone": TITLE_FIELDS["phone"],
    "bank_name": TITLE_FIELDS["bank_name"], "bank_account": TITLE_FIELDS["bank_account"],
    "registration_file_name": TITLE_FIELDS["document"], "updated_at": _l("Updated"),
}


class InvoiceTitleView(ScopedModelView):
    """发票设置: each company's ordinary title and special VAT title (with the taxpayer document)."""

    roles = frozenset({"customer_admin"})
    area = "invoices"
    scope_column = "company_id"
    audit_name = "invoice_title"
    can_create = can_edit = True
    can_delete = False
    can_export = False
    column_list = ("company", "kind", "title", "tax_id", "address", "phone", "bank_name", "bank_account",
                   "registration_file_name", "updated_at")
    column_details_list = column_list
    column_labels = TITLE_LABELS
    column_default_sort = ("updated_at", True)
    column_sortable_list = ("kind", "title", "tax_id", "updated_at")
    column_searchable_list = ("title", "tax_id")
    column_select_related_list = (InvoiceTitle.company,)
    column_filters = (
        InCompanyTree(InvoiceTitle.company_id, _l("Company"), InvoiceTitle.company_id),
        sqla_filters.FilterEqual(InvoiceTitle.kind, _l("Invoice title type"),
                                 options=list(INVOICE_TITLE_KINDS.items())),
    )
    column_formatters = {"kind": label_formatter(INVOICE_TITLE_KINDS), "registration_file_name": _document_cell,
                         "updated_at": time_cell}
    column_formatters_detail = column_formatters

    def _form_page(self, values: dict, title: InvoiceTitle | None):
        return self.render("renewdesk/invoice_title_form.html", values=values, title=title,
                           companies=_company_choices(), kinds=INVOICE_TITLE_KINDS, labels=TITLE_FIELDS,
                           max_mb=f"{_max_bytes() / 1048576:g}", return_url=self.get_url(".index_view"))

    def _save(self, title: InvoiceTitle | None):
        form = request.form
        values = {key: form.get(key, "") for key in ("title", "tax_id", "address", "phone", "bank_name",
                                                     "bank_account")}
        values["company_id"] = form.get("company_id", "") if title is None else str(title.company_id)
        values["kind"] = form.get("kind", "") if title is None else title.kind
        if request.method != "POST":
            if title is not None:
                values.update({key: getattr(title, key) or "" for key in ("title", "tax_id", "address", "phone",
                                                                          "bank_name", "bank_account")})
            else:
                # 申请开票's "new invoice title" link names the company and the kind the request needs.
                values["company_id"] = request.args.get("company_id", str(current_user.company_id or ""))[:20]
                values["kind"] = request.args.get("kind", "ordinary")
            return self._form_page(values, title)
        upload = request.files.get("document")
        data = upload.stream.read(_max_bytes() + 1) if upload and upload.filename else b""
        company = company_in_scope(values["company_id"])
        with unit_of_work() as work:
            if company is None:
                raise DomainError(_l("Choose one of your companies."))
            saved = save_invoice_title(
                db.session, current_user, company, values["kind"], title=values["title"], tax_id=values["tax_id"],
                address=values["address"], phone=values["phone"], bank_name=values["bank_name"],
                bank_account=values["bank_account"], document_name=upload.filename if data else "",
                document_data=data, folder=_folder(), max_bytes=_max_bytes(),
            )
            label = f"{saved.title} ({INVOICE_TITLE_KINDS[saved.kind]})"
        if work.failed:
            return self._form_page(values, title)
        flash(_("Invoice title %(title)s saved.", title=label), "success")
        return redirect(self.get_url(".index_view"))

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """普通发票 / 专用发票: a new title (an existing one of that kind is replaced)."""
        return self._save(None)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        title = self.get_one(request.args.get("id"))
        if title is None:
            flash(_("Invoice title #%(id)s: not found.", id=str(request.args.get("id", ""))[:20]), "error")
            return redirect(self.get_url(".index_view"))
        return self._save(title)

    @expose("/document/")
    def document_view(self):
        title = self.get_one(request.args.get("id"))
        if title is None or not may_view_document(db.session, current_user, title):
            abort(404)
        return document_response(title)


# --- 申请开票: the customer's invoice requests ---------------------------------------------------------------

def _user(user_id: int | None) -> User | None:
    return db.session.get(User, user_id) if user_id else None


def _user_cell(attribute: str):
    def format_(view, context, model, name):
        return page_label(context, model, attribute, User.id, User.username) or ""

    return format_


REQUEST_LABELS = {
    "id": _l("No."), "company": _l("Company"), "title": _l("Invoice title"), "invoice_type": _l("Invoice type"),
    "currency": _l("Currency"), "total": _l("Amount"), "email": _l("Email"), "phone": _l("Mobile phone"),
    "postal_address": _l("Postal address"), "remark": _l("Remark"), "status": _l("Status"),
    "invoice_number": _l("Invoice number"), "invoice_date": _l("Invoice date"),
    "reject_reason": _l("Rejection reason"), "requested_by": _l("Requested by"), "reviewed_by": _l("Reviewed by"),
    "reviewed_at": _l("Reviewed at"), "created_at": _l("Requested"),
}
_REQUEST_FORMATTERS = {
    "invoice_type": label_formatter(INVOICE_TYPES), "status": _status_cell, "total": _total_cell,
    "created_at": time_cell, "reviewed_at": time_cell,
    "requested_by": _user_cell("requested_by_id"), "reviewed_by": _user_cell("reviewed_by_id"),
}
_REQUEST_EXPORT_FORMATTERS = {
    "invoice_type": label_formatter(INVOICE_TYPES), "status": label_formatter(INVOICE_REQUEST_STATUSES),
    "title": lambda v, c, m, n: m.title.title, "company": lambda v, c, m, n: m.company.name,
    "requested_by": _user_cell("requested_by_id"), "reviewed_by": _user_cell("reviewed_by_id"),
}


class RequestedBetween(sqla_filters.DateBetweenFilter):
    """Requested on one of the days (in the reader's zone) from the first to the last, both included."""

    def apply(self, query, value, alias=None):
        start, end = (local_day_start(day) for day in value)
        return query.filter(InvoiceRequest.created_at >= start,
                            InvoiceRequest.created_at < end + timedelta(days=1))


def _request_filters():
    return (
        sqla_filters.FilterEqual(InvoiceRequest.status, _l("Status"), options=list(INVOICE_REQUEST_STATUSES.items())),
        sqla_filters.FilterEqual(InvoiceRequest.invoice_type, _l("Invoice type"), options=list(INVOICE_TYPES.items())),
        sqla_filters.FilterEqual(InvoiceRequest.currency, _l("Currency"), options=list(WALLET_CURRENCIES.items())[:2]),
        InCompanyTree(InvoiceRequest.company_id, _l("Company"), InvoiceRequest.company_id),
        RequestedBetween(InvoiceRequest.created_at, _l("Requested")),
        sqla_filters.FilterLike(InvoiceRequest.invoice_number, _l("Invoice number")),
    )


class _RequestListView(ScopedModelView):
    scope_column = "company_id"
    audit_name = "invoice_request"
    can_edit = can_delete = False
    can_export = True
    column_labels = REQUEST_LABELS
    column_default_sort = ("created_at", True)
    column_sortable_list = ("id", "invoice_type", "currency", "total", "status", "invoice_number", "invoice_date",
                            "created_at", "reviewed_at")
    column_searchable_list = ("invoice_number",)
    column_select_related_list = (InvoiceRequest.company, InvoiceRequest.title)
    column_formatters = _REQUEST_FORMATTERS
    column_formatters_export = _REQUEST_EXPORT_FORMATTERS
    column_formatters_detail = _REQUEST_FORMATTERS
    details_template = "renewdesk/invoice_request_details.html"

    def __init__(self, *args, **kwargs):
        self.column_filters = _request_filters()
        super().__init__(InvoiceRequest, *args, **kwargs)

    def search_placeholder(self):
        return _("Invoice number")

    @expose("/details/")
    def details_view(self):
        invoice_request = self.get_one(request.args.get("id"))
        if invoice_request is not None:
            self._template_args.update(orders=_orders_of(invoice_request), kinds=ORDER_KINDS,
                                       events=history(db.session, "invoice_request", invoice_request.id))
        return super().details_view()


def _orders_of(invoice_request: InvoiceRequest) -> list[Order]:
    return db.session.scalars(select(Order).where(Order.invoice_request_id == invoice_request.id)
                              .options(joinedload(Order.company)).order_by(Order.id)).all()


class InvoiceRequestCustomerView(_RequestListView):
    """申请开票 and its results: the company tree's requests; "request invoice" over unbilled orders."""

    roles = frozenset({"customer_admin"})
    area = "invoices"
    can_create = True
    column_list = ("id", "created_at", "company", "title", "invoice_type", "total", "status", "invoice_number",
                   "invoice_date", "reject_reason")
    column_export_list = column_list + ("email", "phone", "postal_address", "remark")
    column_details_list = ("id", "created_at", "company", "title", "invoice_type", "total", "email", "phone",
                           "postal_address", "remark", "status", "invoice_number", "invoice_date", "reject_reason",
                           "requested_by", "reviewed_at")

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """未开票订单 → 申请开票: tick paid orders, choose the invoice type, give where it goes."""
        form = request.form
        source = form if request.method == "POST" else request.args
        values = {key: source.get(key, "") for key in ("invoice_type", "email", "phone", "postal_address", "remark")}
        values["company_id"] = source.get("company_id", "") or str(current_user.company_id or "")
        values["invoice_type"] = values["invoice_type"] or "electronic_ordinary"
        values["kind"] = source.get("kind", "") if source.get("kind", "") in ORDER_KINDS else ""
        chosen = form.getlist("rowid")
        company = company_in_scope(values["company_id"])
        if request.method == "POST":
            wanted = sorted({pk for pk in map(parse_row_id, chosen) if pk is not None})[:MAX_ORDERS_PER_REQUEST + 1]
            orders = db.session.scalars(
                scoped(select(Order).where(Order.id.in_(wanted)), current_user, Order.company_id)).all()
            missing = sorted(set(chosen) - {str(o.id) for o in orders})
            with unit_of_work() as work:
                if company is None:
                    raise DomainError(_l("Choose one of your companies."))
                if missing:  # never named by number: they may be another tenant's
                    raise DomainError(_l("Orders not found or outside your companies: %(ids)s.",
                                         ids=", ".join(f"#{i[:20]}" for i in missing[:20])))
                invoice_request = request_invoice(
                    db.session, current_user, company, orders, values["invoice_type"], email=values["email"],
                    phone=values["phone"], postal_address=values["postal_address"], remark=values["remark"],
                )
                request_id, total, currency = invoice_request.id, invoice_request.total, invoice_request.currency
            if not work.failed:
                flash(_("Invoice request #%(id)s sent: %(total)s %(currency)s over %(count)s orders. Finance issues "
                        "it (electronic invoices within a working day, paper ones in three to five).",
                        id=request_id, total=format_amount(total, currency), currency=currency, count=len(orders)),
                      "success")
                return redirect(self.get_url(".index_view"))
        unbilled, unbilled_kinds = [], []
        if company is None and request.method == "GET" and source.get("company_id"):
            flash(_("Choose one of your companies."), "error")  # another tenant's id, or none at all
        if company is not None:
            unbilled_kinds = unbilled_order_kinds(db.session, current_user, company)
            unbilled = db.session.scalars(
                unbilled_orders_query(current_user, company, values["kind"]).options(joinedload(Order.company))
                .order_by(Order.paid_at.desc(), Order.id.desc()).limit(UNBILLED_SHOWN)
            ).all()
        titles = {}
        if company is not None:
            titles = {t.kind: t for t in db.session.scalars(select(InvoiceTitle)
                                                           .where(InvoiceTitle.company_id == company.id))}
        return self.render(
            "renewdesk/invoice_request_form.html", values=values, companies=_company_choices(), company=company,
            orders=unbilled, unbilled_kinds=unbilled_kinds, chosen=set(chosen), titles=titles, types=INVOICE_TYPES,
            kinds=ORDER_KINDS, title_kinds=INVOICE_TITLE_KINDS, shown=UNBILLED_SHOWN,
            return_url=self.get_url(".index_view"),
        )


# --- finance: review ---------------------------------------------------------------------------------------

def _review_cell(view, context, model, name):
    cell = _status_cell(view, context, model, name)
    if model.status == "requested":
        cell += Markup(' <a href="{}" class="btn btn-sm btn-primary py-0 rd-review">{}</a>').format(
            view.get_url(".review_view", id=model.id), _("Review"))
    return cell


class InvoiceReviewView(OpenRowsFirst, _RequestListView):
    """开票 (finance): pending requests first (?show=all lists all); issue with number and date, or reject."""

    roles = frozenset({"finance"})
    can_create = False
    list_template = "renewdesk/invoice_review_list.html"
    column_list = ("id", "created_at", "company", "title", "invoice_type", "total", "status", "invoice_number",
                   "invoice_date", "requested_by", "reviewed_by")
    column_export_list = column_list + ("email", "phone", "postal_address", "remark", "reject_reason", "reviewed_at")
    column_details_list = column_export_list
    column_formatters = {**_REQUEST_FORMATTERS, "status": _review_cell}
    column_extra_row_actions = [EndpointLinkRowAction("fa fa-gavel", ".review_view", title=_l("Review"))]

    def open_clause(self):
        return InvoiceRequest.status == "requested"

    def _load(self, raw) -> InvoiceRequest | None:
        invoice_request = self.get_one(raw)
        if invoice_request is None:
            flash(_("Invoice request #%(id)s: not found.", id=str(raw)[:20]), "error")
        return invoice_request

    def _review_page(self, invoice_request: InvoiceRequest, number: str = "", invoice_date: str = "",
                     reason: str = ""):
        return self.render(
            "renewdesk/invoice_review.html", item=invoice_request, title=invoice_request.title,
            orders=_orders_of(invoice_request), kinds=ORDER_KINDS, order_statuses=ORDER_STATUSES, types=INVOICE_TYPES,
            statuses=INVOICE_REQUEST_STATUSES, title_kinds=INVOICE_TITLE_KINDS, labels=TITLE_FIELDS,
            number=number, invoice_date=invoice_date or local_today().isoformat(), reason=reason,
            events=history(db.session, "invoice_request", invoice_request.id), return_url=self.get_url(".index_view"),
        )

    @expose("/review/")
    def review_view(self):
        invoice_request = self._load(request.args.get("id", ""))
        if invoice_request is None:
            return redirect(self.get_url(".index_view"))
        return self._review_page(invoice_request)

    def _decide(self, decide, done, mail_template: str, subject):
        invoice_request = self._load(request.form.get("id", ""))
        if invoice_request is None:
            return redirect(self.get_url(".index_view"))
        request_id = invoice_request.id
        with unit_of_work() as work:
            decide(invoice_request)
            mail_id = _mail_customer(invoice_request, mail_template, subject(invoice_request))
        if isinstance(work.error, AlreadyReviewed):
            return redirect(self.get_url(".index_view"))
        if work.failed:
            invoice_request = self.get_one(str(request_id))
            return self._review_page(invoice_request, request.form.get("invoice_number", ""),
                                     request.form.get("invoice_date", ""), request.form.get("reason", ""))
        outcomes = send_now([mail_id])
        invoice_request = self.get_one(str(request_id))
        flash(done(invoice_request), "success")
        flash_mail(outcomes)
        return redirect(self.get_url(".index_view"))

    @expose("/issue/", methods=("POST",))
    def issue_view(self):
        return self._decide(
            lambda item: issue_invoice(db.session, current_user, item, request.form.get("invoice_number", ""),
                                       request.form.get("invoice_date", ""), local_today()),  # finance's day
            lambda item: _("Invoice request #%(id)s issued as invoice %(number)s.", id=item.id,
                           number=item.invoice_number),
            "invoice_issued",
            lambda item: _l("Invoice %(number)s issued for %(company)s", number=item.invoice_number,
                            company=item.company.name),
        )

    def _ask_reject(self):
        """The confirmation page of rejecting an invoice request (with its reason); None once confirmed."""
        item = self.get_one(request.form.get("id", ""))
        reason = request.form.get("reason", "").strip()
        if item is None or item.status != "requested" or not reason:
            return None  # the rejection itself refuses it and changes nothing
        purpose = f"{self.endpoint}.reject"
        if is_confirmed(purpose, [item.id]):
            return None
        return ask(self, Confirmation(
            title=_("Reject invoice request #%(id)s", id=item.id),
            summary=_("Reject the invoice request #%(id)s of %(company)s for %(total)s: no invoice is issued and its "
                      "orders can be requested again.", id=item.id, company=item.company.name,
                      total=format_money(item.total, item.currency)),
            items=[_("Reason: %(reason)s", reason=reason)],
            note=_("The customer is told by email, with the reason."),
            confirm_label=_("Reject the request")), purpose, [item.id], self.get_url(".review_view", id=item.id))

    @expose("/reject/", methods=("POST",))
    def reject_view(self):
        asked = self._ask_reject()
        if asked is not None:
            return asked
        return self._decide(
            lambda item: reject_invoice_request(db.session, current_user, item, request.form.get("reason", "")),
            lambda item: _("Invoice request #%(id)s rejected; its orders can be requested again.", id=item.id),
            "invoice_rejected",
            lambda item: _l("Your invoice request #%(id)s was not accepted", id=item.id),
        )

    @expose("/document/")
    def document_view(self):
        pk = parse_row_id(request.args.get("id"))
        title = db.session.get(InvoiceTitle, pk) if pk is not None else None
        if title is None or not may_view_document(db.session, current_user, title):
            abort(404)
        return document_response(title)


def _mail_customer(invoice_request: InvoiceRequest, template: str, subject) -> int | None:
    """Queue the mail to the requester (and the request's email) in the requester's language; None: nobody to mail."""
    requester = _user(invoice_request.requested_by_id)
    recipients = [invoice_request.email, requester.email if requester else None]
    if not any(recipients):
        return None
    return queue(
        f"{template}:{invoice_request.id}", template, recipients, user_locale(requester), subject,
        company=invoice_request.company.name, title=invoice_request.title.title, request_id=invoice_request.id,
        invoice_type=INVOICE_TYPES.get(invoice_request.invoice_type, invoice_request.invoice_type),
        total=format_money(invoice_request.total, invoice_request.currency, user_locale(requester)),
        invoice_number=invoice_request.invoice_number, invoice_date=invoice_request.invoice_date,
        reason=invoice_request.reject_reason, postal_address=invoice_request.postal_address,
    )


def register(admin, customer, finance) -> None:
    """Add invoice titles and requests (customer) and the invoice review (finance)."""
    admin.add_view(InvoiceTitleView(InvoiceTitle, name=_l("Invoice titles"), category=customer))
    admin.add_view(InvoiceRequestCustomerView(name=_l("Invoice requests"), category=customer,
                                              endpoint="invoice_request_customer"))
    admin.add_view(InvoiceReviewView(name=_l("Invoice review"), category=finance, endpoint="invoice_review"))
