"""Seed 003: price table and checkout (subscribe), the subscription list with its six-tab detail page,
promotions (sales drafts, finance activates) and cash receipts (sales enters, finance confirms).

Thin: parse ids from the request, call actions.subscriptions, commit once or roll back, flash. The
client never submits an amount: only ids, the checkout key and the quote's digest.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from flask import abort, current_app, flash, has_request_context, jsonify, redirect, request, session, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual, IntEqualFilter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import StringField
from wtforms.validators import NumberRange, Optional, ValidationError

from actions import DomainError, companies_in_scope
from actions import subscriptions as subs
from actions.money import format_money, format_percent, parse
from actions.tenants import CUSTOMER_DETAIL_ROLES, check_customer_details, update_customer_details
from actions.wallets import InsufficientBalance
from admin_views.base import (
    BLANK_CHOICE, MAX_ROW_ID, RoleView, ScopedModelView, badge, company_in_scope, confirm_first, label_formatter,
    local_today, parse_row_id, unit_of_work,
)
from admin_views.confirm import Confirmation, ask, is_confirmed
from admin_views.paid_pages import register_paid_page
from admin_views.system import InCompanyTree
from models import (
    CASH_RECEIPT_STATUSES, CURRENCIES, NOTE_VISIBILITIES, ORDER_STATUSES, PAYMENT_METHODS, PROMOTION_DURATIONS,
    PROMOTION_KINDS, PROMOTION_SCOPES, PROMOTION_STATUSES, RENEWAL_METHODS, SALES_FLOWS, SUBSCRIPTION_CURRENCIES,
    SUBSCRIPTION_EVENT_KINDS, SUBSCRIPTION_ORDER_PURPOSES, SUBSCRIPTION_STATES, CashReceipt, Company, InvoiceTitle,
    Order, PlanCycle, Promotion, PromotionCompany, PromotionTarget, Service, ServicePlan, Subscription,
    SubscriptionEvent, SubscriptionOrder, db,
)

STATE_BADGES = {"pending_payment": "warning", "active": "success", "past_due": "danger",
                "cancel_scheduled": "info", "cancelled": "secondary", "expired": "dark", "abandoned": "light",
                "suspended": "secondary"}
TABS = ("employees", "details", "notes", "payments", "invoices", "history")
TAB_LABELS = {"employees": _l("Employees"), "details": _l("Details"), "notes": _l("Notes"),
              "payments": _l("Payment methods"), "invoices": _l("Invoices"), "history": _l("History")}
INDENT = "\u00a0\u00a0\u00a0"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _company_choices() -> list[tuple[str, str]]:
    companies = list(companies_in_scope(db.session, current_user))
    top = min((c.depth for c in companies), default=0)
    return [(str(c.id), INDENT * (c.depth - top) + c.name) for c in companies if c.status == "active"]




def _id(raw) -> int | None:
    return parse_row_id(raw) if raw not in (None, "") else None


def _selection(source) -> subs.Selection:
    """Step 1's ids from a form or the query string (never amounts)."""
    cycle = parse_row_id(source.get("cycle"))
    if cycle is None:
        raise DomainError(_l("Billing cycle: choose a cycle of the plan."))
    add_ons = tuple(sorted({pk for pk in map(parse_row_id, source.getlist("add_on")) if pk is not None}))
    add_on_promotions = tuple((a, p) for a in add_ons
                              if (p := _id(source.get(f"add_on_promotion_{a}"))) is not None)
    return subs.Selection(cycle, _id(source.get("plan_promotion")), add_ons, add_on_promotions,
                          _id(source.get("invoice_promotion")))


def _details(source, company: Company) -> subs.CheckoutDetails:
    """Step 2's fields as typed. The invoice title list names the saved title the fields were filled from
    (`invoice_title_filled`, which the page's script keeps): a title picked in the list but not filled into the
    fields (no JavaScript) fills the invoice name, tax code and address here; otherwise what was typed is used."""
    title_name, tax_id, address = (source.get("invoice_title", ""), source.get("invoice_tax_id", ""),
                                   source.get("invoice_address", ""))
    title_id = _id(source.get("invoice_title_id"))
    if title_id is not None:
        title = db.session.get(InvoiceTitle, title_id)
        if title is None or title.company_id != company.id:
            raise DomainError(_l("Invoice title: #%(id)s is not a title of %(company)s.", id=title_id,
                                 company=company.name))
        if _id(source.get("invoice_title_filled")) != title_id:
            title_name, tax_id, address = title.title, title.tax_id, title.address or address
    return subs.CheckoutDetails(
        invoice_title=title_name, invoice_tax_id=tax_id,
        invoice_address=address, invoice_email=source.get("invoice_email", ""),
        contact_name=source.get("contact_name", ""), contact_phone=source.get("contact_phone", ""),
        contact_email=source.get("contact_email", ""), terms_version_id=_id(source.get("terms_version_id")),
        accepted_terms=source.get("accept_terms") == "y", pay_method=source.get("pay_method", "balance"),
        auto_renew=source.get("auto_renew") == "y")


def _customer_edit(company: Company) -> str | None:
    """How step 2's Sửa thông tin edits the customer: "link" (a customer administrator's own company: its profile,
    in another tab), "inline" (sales, or a subsidiary: phone and address on step 2, saved with the order), None."""
    if current_user.role == "customer_admin":
        if current_user.areas is not None and "company" not in current_user.areas:
            return None
        return "link" if company.id == current_user.company_id else "inline"
    return "inline" if current_user.role in CUSTOMER_DETAIL_ROLES | {"admin"} else None


def _edited_customer(source, company: Company | None = None):
    """The customer's phone and address as step 2 sent them: None when it sent neither; with `company`, the pair
    (a field not sent keeps the company's value)."""
    if "customer_phone" not in source and "customer_address" not in source:
        return None
    if company is None:
        return True
    return (source.get("customer_phone", company.phone or ""), source.get("customer_address", company.address or ""))


def _prices_url(source, plan_id: int | None) -> str:
    """Back to the price table the Đăng ký came from (a service's Bảng giá tab or the whole table), at its plan."""
    plan = db.session.get(ServicePlan, plan_id) if plan_id is not None else None
    if plan is None or not plan.active or not plan.service.active:
        return url_for(".index")
    if source.get("back") == "service":
        return url_for(".service_view", service_id=plan.service_id, tab="prices", _anchor=f"rd-plan-{plan.id}")
    return url_for(".index", _anchor=f"rd-plan-{plan.id}")


def _step1_args(selection: subs.Selection, company: Company) -> dict:
    """Step 1's query string for a selection, without its promotions (they are chosen again)."""
    return {"cycle": selection.cycle_id, "company_id": company.id, "add_on": list(selection.add_on_ids)}


class SubscribeView(RoleView):
    """Bảng giá → Thanh toán dịch vụ: the price table, step 1 (plan, cycle, add-ons, promotions) and
    step 2 (invoice, customer, contact, terms) → Pay → Confirm."""

    roles = frozenset({"customer_admin", "sales"})
    area = "subscriptions"

    @expose("/")
    def index(self):
        services = db.session.scalars(select(Service).where(Service.active.is_(True)).options(
            selectinload(Service.plans).selectinload(ServicePlan.cycles)).order_by(Service.name)).all()
        tables = [(service, [(plan, subs.price_table(plan)) for plan in service.plans if plan.active])
                  for service in services]
        return self.render("renewdesk/subscriptions/price_table.html", tables=tables, sales_flows=SALES_FLOWS)

    @expose("/service/<int:service_id>/")
    def service_view(self, service_id: int):
        """Chi tiết dịch vụ with its tabs: the details, and Bảng giá (the plans' cycles, each with Đăng ký)."""
        service = db.session.get(Service, service_id)
        if service is None or not service.active:
            abort(404)
        tab = "prices" if request.args.get("tab") == "prices" else "details"
        plans = [(plan, subs.price_table(plan)) for plan in service.plans if plan.active]
        return self.render("renewdesk/subscriptions/service.html", service=service, plans=plans, tab=tab,
                           add_ons=[a for a in service.add_ons if a.active], sales_flows=SALES_FLOWS)

    def _step1(self, source, checkout_key: str):
        raw_cycle = source.get("cycle")
        plan_id = _id(source.get("plan"))
        try:  # a price table's Đăng ký sends its plan and the cycle chosen in it (none when nothing was clicked)
            cycle = subs.chosen_cycle(db.session, plan_id,
                                      None if raw_cycle in (None, "") else parse_row_id(raw_cycle) or 0)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(_prices_url(source, plan_id))
        company = company_in_scope(source.get("company_id") or current_user.company_id)
        companies = _company_choices()
        if company is None and companies:
            company = company_in_scope(companies[0][0])
        if company is None:
            abort(403)
        ticked = {pk for pk in map(parse_row_id, source.getlist("add_on")) if pk is not None}
        add_ons = [a for a in cycle.plan.service.add_ons if a.active]
        chosen = {"plan": _id(source.get("plan_promotion")),
                  **{f"add_on:{a}": _id(source.get(f"add_on_promotion_{a}")) for a in ticked}}
        offers = subs.eligible_offers(db.session, company, cycle, [a for a in add_ons if a.id in ticked], _now(),
                                      {key: value for key, value in chosen.items() if value is not None})
        preview = None
        try:  # the running total of what is chosen so far (the same pricing as the order)
            preview = subs.quote(db.session, current_user, company, _selection(source), _now())
        except DomainError:
            preview = None
        return self.render("renewdesk/subscriptions/checkout_step1.html", cycle=cycle, company=company,
                           preview=preview,
                           companies=companies, add_ons=add_ons, ticked=ticked, offers=offers, source=source,
                           add_on_gross={a.id: subs.add_on_gross(a, cycle.months) for a in add_ons},
                           checkout_key=checkout_key)

    @expose("/checkout/", methods=("GET", "POST"))
    def checkout(self):
        """Step 1. GET shows it; POST with `next` reserves the promotions and shows step 2."""
        source = request.form if request.method == "POST" else request.args
        checkout_key = source.get("checkout_key") or subs.new_checkout_key()
        if request.method == "POST" and request.form.get("step") == "next":
            company = company_in_scope(source.get("company_id"))
            try:
                if company is None:
                    raise DomainError(_l("Company: choose one of your companies."))
                quote = subs.reserve(db.session, current_user, company, _selection(source), checkout_key, _now())
            except DomainError as exc:
                db.session.rollback()
                flash(str(exc), "error")
                return self._step1(source, checkout_key)
            db.session.commit()
            return self._step2(quote, checkout_key, {})
        return self._step1(source, checkout_key)

    @expose("/checkout/customer/<company_id>/")
    def checkout_customer(self, company_id):
        """Step 2's customer details as they are now: the page reads them again when the payer comes back
        from editing them (Sửa thông tin opens the company profile in another tab)."""
        company = company_in_scope(company_id)
        if company is None:
            abort(404)
        return jsonify(name=company.name, tax_id=company.tax_id or "", address=company.address or "")

    def _step2(self, quote, checkout_key: str, values, stage: str = "details", previous=None):
        terms = subs.current_terms(db.session, quote.service)
        titles = list(db.session.scalars(select(InvoiceTitle).where(InvoiceTitle.company_id == quote.company.id)
                                         .order_by(InvoiceTitle.id)))
        defaults = subs.checkout_defaults(db.session, quote.company, current_user, quote.service)
        merged = {**defaults, **{k: v for k, v in values.items() if v is not None}}
        merged.setdefault("invoice_title_filled", merged.get("invoice_title_id") or "")
        merged.setdefault("customer_phone", quote.company.phone or "")
        merged.setdefault("customer_address", quote.company.address or "")
        return self.render("renewdesk/subscriptions/checkout_step2.html", quote=quote, checkout_key=checkout_key,
                           values=merged, customer_edit=_customer_edit(quote.company), terms=terms, titles=titles,
                           stage=stage, previous=previous,
                           pay_methods=self._pay_methods(quote.service), enters_cash=_enters_cash(),
                           sales_flows=SALES_FLOWS)

    def _pay_methods(self, service: Service) -> list[tuple[str, str]]:
        """Step 2's choices: subs.pay_methods_for (the same list check_details accepts), each explained."""
        labels = {"balance": _("Balance"), "online": _("Online payment"),
                  "cash": _("Cash (OS): sales enters the receipt, finance confirms") if _enters_cash()
                  else _("Cash: pay it to sales; the subscription starts when finance confirms it")}
        return [(method, labels[method]) for method in subs.pay_methods_for(service, current_user)]

    @expose("/checkout/pay/", methods=("POST",))
    def pay(self):
        """Step 2: Pay shows the confirmation; Confirm re-prices and makes the one order of this checkout."""
        form = request.form
        checkout_key = form.get("checkout_key", "")
        company = company_in_scope(form.get("company_id"))
        values = {key: form.get(key) for key in ("invoice_title_id", "invoice_title_filled", "invoice_title",
                                                 "invoice_tax_id", "invoice_address",
                                                 "invoice_email", "contact_name", "contact_phone", "contact_email",
                                                 "pay_method", "auto_renew", "accept_terms", "terms_version_id",
                                                 "customer_phone", "customer_address")}
        # an unticked box is not sent: "" (not None) keeps step 2's default (renew automatically) from ticking it again
        values["auto_renew"] = form.get("auto_renew") or ""
        try:
            if company is None:
                raise DomainError(_l("Company: choose one of your companies."))
            selection = _selection(form)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(url_for(".index"))
        try:
            quote = subs.quote(db.session, current_user, company, selection, _now(), checkout_key)
        except DomainError as exc:  # e.g. a chosen promotion ended or sold out: choose again on step 1
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".checkout", **_step1_args(selection, company)))
        if form.get("stage") != "confirm":
            try:
                details = _details(form, company)
                # the invoice fields as used (a title picked without JavaScript filled them): step 2 and the
                # confirmation show them, and the confirmation sends them as they are
                values.update(invoice_title=details.invoice_title, invoice_tax_id=details.invoice_tax_id,
                              invoice_address=details.invoice_address,
                              invoice_title_filled=values.get("invoice_title_id") or "")
                subs.check_details(db.session, quote.service, details, current_user)
                if _customer_edit(company) == "inline" and _edited_customer(form):
                    check_customer_details(*_edited_customer(form, company))
            except DomainError as exc:
                flash(str(exc), "error")
                return self._step2(quote, checkout_key, values)
            if quote.digest != form.get("digest"):
                return self._step2(quote, checkout_key, values, stage="confirm", previous=form.get("digest"))
            return self._step2(quote, checkout_key, values, stage="confirm")
        try:
            details = _details(form, company)
            if _customer_edit(company) == "inline" and _edited_customer(form):  # Sửa thông tin, saved with the order
                update_customer_details(db.session, current_user, company, *_edited_customer(form, company))
            subscription = subs.confirm(db.session, current_user, company, selection, checkout_key,
                                        form.get("digest", ""), details, _now(), date.today())
        except subs.QuoteChanged as exc:
            db.session.rollback()
            flash(str(exc), "error")
            try:
                fresh = subs.quote(db.session, current_user, company, selection, _now(), checkout_key)
            except DomainError as gone:  # a chosen promotion is no longer available: choose again on step 1
                flash(str(gone), "error")
                return redirect(url_for(".checkout", **_step1_args(selection, company)))
            return self._step2(fresh, checkout_key, values, stage="confirm", previous=form.get("digest"))
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return self._step2(quote, checkout_key, values)
        number, subscription_id = subscription.number, subscription.id
        db.session.commit()
        return self._after_confirm(db.session.get(Subscription, subscription_id), details.pay_method, number)

    def _after_confirm(self, subscription: Subscription, method: str, number: str):
        detail = url_for("subscription.detail_view", id=subscription.id)
        if subscription.status != "pending_payment":
            _mark_registered(subscription)
            flash(_("Subscription %(number)s is active.", number=number), "success")
            return redirect(detail)
        if method == "balance":
            try:
                with db.session.begin_nested():
                    subs.pay_by_balance(db.session, current_user, subscription, date.today())
                db.session.commit()
            except (InsufficientBalance, DomainError) as exc:
                db.session.rollback()
                flash(_("Subscription %(number)s is waiting for payment: %(reason)s", number=number,
                        reason=str(exc)), "warning")
                return redirect(detail)
            _mark_registered(subscription)
            flash(_("Subscription %(number)s is paid and active.", number=number), "success")
            return redirect(detail)
        if method == "online":
            order = subs.start_order(db.session, subscription)
            from actions.payments import online_methods
            from admin_views.payments import enabled_methods, go_to_pay

            methods = online_methods(order.currency, enabled_methods())
            if methods:
                return go_to_pay(order, methods[0])
            flash(_("No online payment provider takes %(currency)s yet; pay by balance or cash.",
                    currency=order.currency), "warning")
            return redirect(detail)
        if not _enters_cash():  # a customer's cash (OS flow): registered; sales takes the cash, finance confirms
            return redirect(url_for(".registered", subscription_id=subscription.id))
        try:
            today = local_today()  # the seller's calendar day, which may not be the server's
            subs.enter_cash_receipt(db.session, current_user, subscription, today, today=today)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(detail)
        _mark_registered(subscription)
        flash(_("Subscription %(number)s: cash receipt entered; it starts when finance confirms it.",
                number=number), "success")
        return redirect(detail)

    @expose("/registered/<int:subscription_id>/")
    def registered(self, subscription_id: int):
        """Hiển thị màn hình đăng ký thành công (OS flow): registered, awaiting the cash; what happens next."""
        subscription = db.session.get(Subscription, subscription_id)
        if subscription is None or company_in_scope(subscription.company_id) is None:
            abort(404)
        orders = subs.pending_orders(db.session, subscription, "start")
        if subscription.status != "pending_payment" or not orders:  # paid, or given up: the subscription says so
            return redirect(url_for("subscription.detail_view", id=subscription.id))
        order = orders[0]
        hours = int(current_app.config["ORDER_PENDING_HOURS"])
        return self.render("renewdesk/subscriptions/registered.html", subscription=subscription, order=order,
                           pay_by=subs.cash_pay_by(order, timedelta(hours=hours)),
                           receipt=db.session.scalar(select(CashReceipt).where(CashReceipt.order_id == order.id,
                                                                               CashReceipt.status != "rejected")))


def _enters_cash() -> bool:
    return subs.enters_cash(current_user)


REGISTERED = "rd_registered"


def _mark_registered(subscription: Subscription) -> None:
    """"Hiển thị màn hình đăng ký thành công": the subscription's page, opened next, says the checkout registered it."""
    session[REGISTERED] = subscription.id


def _subscription_page(order: Order) -> str | None:
    """A subscription's order paid online: the payer lands on the subscription (đăng ký thành công), not the order."""
    subscription = subs.subscription_of_order(db.session, order)
    if subscription is None:
        return None
    purpose = db.session.scalar(select(SubscriptionOrder.purpose).where(SubscriptionOrder.order_id == order.id))
    if purpose == "start" and subscription.status in ("active", "cancel_scheduled"):
        _mark_registered(subscription)
    return url_for("subscription.detail_view", id=subscription.id)


# --- the subscription list and its detail page --------------------------------------------------------------

def _options(model, label_of, *load):
    """Filter options read per request (Flask-Admin also calls them once at start-up, outside one);
    `load`: the relationships the labels read, loaded with the rows (one query, not one per row)."""
    def options():
        if not has_request_context() or not current_user.is_authenticated:
            return []
        rows = db.session.scalars(select(model).options(*(joinedload(r) for r in load)).order_by(model.id))
        return [(str(row.id), label_of(row)) for row in rows]
    return options


def _state_cell(view, context, model, name):
    return badge(str(SUBSCRIPTION_STATES.get(model.status, model.status)), STATE_BADGES.get(model.status, "secondary"))


def _number_cell(view, context, model, name):
    return Markup('<a href="{}">{}</a>').format(url_for("subscription.detail_view", id=model.id), model.number)


def _order_label(order: Order) -> str:
    return f"{order.number} · {format_money(order.total, order.currency)}"


def describe_cancel(subscription: Subscription) -> Confirmation | None:
    """Cancelling at the period's end: when it ends, no money back, which unpaid renewal orders are cancelled now."""
    if subscription.status != "active":
        return None
    orders = subs.pending_orders(db.session, subscription, "renewal")
    return Confirmation(
        title=_("Cancel subscription %(number)s", number=subscription.number),
        summary=_("Cancel subscription %(number)s of %(company)s at the end of its period, on %(date)s.",
                  number=subscription.number, company=subscription.company.name,
                  date=subscription.period_end.isoformat() if subscription.period_end else "—"),
        items=[_("Unpaid renewal order cancelled now: %(order)s", order=_order_label(o)) for o in orders],
        note=_("No money is paid back: the subscription keeps running until that day, then ends. Until then you "
               "can keep it."),
        confirm_label=_("Cancel at the end of the period"))


def describe_cancel_now(subscription: Subscription) -> Confirmation | None:
    """Cancelling now: the refund asked for, of which order and amount, and who approves it."""
    if subscription.status not in ("active", "cancel_scheduled", "past_due"):
        return None
    order = subs.current_period_order(db.session, subscription)
    if order is None:
        return None
    return Confirmation(
        title=_("Cancel subscription %(number)s now", number=subscription.number),
        summary=_("Cancel subscription %(number)s of %(company)s now and request a refund of order %(order)s "
                  "(%(amount)s).", number=subscription.number, company=subscription.company.name,
                  order=order.number, amount=format_money(order.total, order.currency)),
        items=[_("Reason: %(reason)s", reason=request.form.get("reason", "").strip())]
        if request.form.get("reason", "").strip() else [],
        note=_("The refunded lines' amount goes back to the payer once another person of finance approves the "
               "refund; the subscription ends then."),
        confirm_label=_("Request the refund"))


def describe_abandon(subscription: Subscription) -> Confirmation | None:
    """Dropping an unpaid checkout: its orders cancelled (nothing was paid), promotions given back."""
    if subscription.status != "pending_payment":
        return None
    orders = subs.pending_orders(db.session, subscription)
    return Confirmation(
        title=_("Cancel the order of subscription %(number)s", number=subscription.number),
        summary=_("Cancel the unpaid orders of subscription %(number)s of %(company)s:", number=subscription.number,
                  company=subscription.company.name),
        items=[_order_label(o) for o in orders],
        note=_("No money moves: nothing was paid for these orders. The promotions they reserved are given back and "
               "the subscription does not start."),
        confirm_label=_("Cancel this order"))


class AwaitingCash(BaseSQLAFilter):
    """Subscriptions whose cash sales is to take (subs.awaiting_cash): the OS flow's to-do list."""

    def __init__(self):
        super().__init__(Subscription.renewal_method, _l("Cash"), options=[("y", _l("awaiting payment"))])

    def validate(self, value):
        return value == "y"

    def apply(self, query, value, alias=None):
        return query.filter(subs.awaiting_cash())

    def operation(self):
        return _l("is")


class SubscriptionView(ScopedModelView):
    """Quản lý thuê bao: every subscription of the company tree (unlimited per company)."""

    roles = frozenset({"customer_admin", "sales", "finance"})
    area = "subscriptions"
    scope_column = "company_id"
    can_create = can_edit = can_delete = False
    can_export = True
    export_types = ["xlsx"]
    column_list = ("number", "company.name", "service.name", "plan.name", "cycle.months", "status", "period_start",
                   "period_end", "auto_renew", "renewal_method")
    column_export_list = column_list
    column_labels = {"number": _l("Subscription"), "company.name": _l("Company"), "service.name": _l("Service"),
                     "plan.name": _l("Plan"), "cycle.months": _l("Cycle (months)"), "status": _l("Status"),
                     "period_start": _l("Period start"), "period_end": _l("Period end"),
                     "auto_renew": _l("Auto-renew"), "renewal_method": _l("Renewal method")}
    column_formatters = {"status": _state_cell, "number": _number_cell,
                         "renewal_method": label_formatter(RENEWAL_METHODS)}
    column_formatters_export = {"status": label_formatter(SUBSCRIPTION_STATES),
                                "renewal_method": label_formatter(RENEWAL_METHODS)}
    column_searchable_list = ("number",)
    search_clause = staticmethod(subs.search_clause)  # a range of the number's unique index, not LIKE '%…%'
    column_default_sort = ("id", True)
    column_select_related_list = (Subscription.company, Subscription.service, Subscription.plan, Subscription.cycle)
    column_details_list = column_list
    list_template = "renewdesk/subscriptions/list.html"  # with the "Awaiting cash" link of sales

    def __init__(self, *args, **kwargs):
        self.column_filters = [
            FilterEqual(Subscription.status, _l("Status"), options=list(SUBSCRIPTION_STATES.items())),
            # Integer filters for the id columns: PostgreSQL refuses `integer = character varying`.
            IntEqualFilter(Subscription.service_id, _l("Service"), options=_options(Service, str)),
            IntEqualFilter(Subscription.plan_id, _l("Plan"), options=_options(ServicePlan, str)),
            IntEqualFilter(Subscription.cycle_id, _l("Cycle"), options=_options(
                PlanCycle, lambda c: f"{c.plan.name} · {ngettext('%(num)s month', '%(num)s months', c.months)}",
                PlanCycle.plan)),
            "period_end",
            InCompanyTree(Subscription.company_id, _l("Company"), Subscription.company_id),
            AwaitingCash(),
        ]
        super().__init__(Subscription, *args, **kwargs)

    def awaiting_cash_url(self) -> str | None:
        """The list filtered to the subscriptions awaiting cash (for those who take it), or None."""
        if not _enters_cash():
            return None
        for arg, (_index, flt) in (self._filter_args or {}).items():
            if isinstance(flt, AwaitingCash):
                return self.get_url(".index_view", **{f"flt0_{arg}": "y"})
        return None

    def search_placeholder(self):
        return _("Subscription number")

    def is_action_allowed(self, name):
        if name in ("suspend", "resume") and current_user.role not in ("admin", "sales"):
            return False
        return super().is_action_allowed(name)

    def _act(self, ids, operation, done: str):
        self.act_on_each(ids, operation, lambda row: row.number, done)

    @action("suspend", _l("Suspend"))
    @confirm_first(lambda view, rows: Confirmation(
        title=_("Suspend subscriptions"), summary=_("Suspend %(count)s subscriptions:", count=len(rows)),
        items=[f"{row.number} · {row.company.name}" for row in rows],
        confirm_label=_("Suspend %(count)s subscriptions", count=len(rows))))
    def action_suspend(self, ids):
        self._act(ids, lambda row: subs.suspend(db.session, current_user, row, _now()), _("%(count)s suspended."))

    @action("resume", _l("Resume"), _l("Resume the selected subscriptions?"))
    def action_resume(self, ids):
        self._act(ids, lambda row: subs.resume(db.session, current_user, row), _("%(count)s resumed."))

    def _subscription_or_404(self, id: int) -> Subscription:
        row = self.get_one(str(id))
        if row is None:
            abort(404)
        return row

    @expose("/view/<int:id>/")
    def detail_view(self, id: int):
        """The six tabs (Danh sách nhân viên, Chi tiết, Ghi nhớ, Phương thức thanh toán, Hóa đơn, Lịch sử)."""
        subscription = self._subscription_or_404(id)
        tab = request.args.get("tab", "details")
        tab = tab if tab in TABS else "details"
        context = {"subscription": subscription, "tab": tab, "tabs": TABS, "tab_labels": TAB_LABELS,
                   "states": SUBSCRIPTION_STATES, "state_badges": STATE_BADGES,
                   "registered": session.pop(REGISTERED, None) == subscription.id}
        links = db.session.scalars(select(SubscriptionOrder).where(
            SubscriptionOrder.subscription_id == subscription.id, SubscriptionOrder.order_id.is_not(None))
            .options(joinedload(SubscriptionOrder.order).selectinload(Order.lines))
            .order_by(SubscriptionOrder.id)).unique().all()
        if tab == "employees":
            context["seats"] = subs.seats_of(db.session, subscription)
        elif tab == "details":
            context["other_cycles"] = [c for plan in subscription.service.plans if plan.active for c in plan.cycles
                                       if c.active and c.id != subscription.cycle_id]
            try:
                context["next_quote"] = subs.renewal_quote(db.session, subscription)
            except DomainError as exc:
                context["next_quote_error"] = str(exc)
        elif tab == "notes":
            context["notes"] = subs.notes_for(db.session, current_user, subscription)
            context["visibilities"] = NOTE_VISIBILITIES
        elif tab == "payments":
            context["links"] = links
            context["renewal_methods"] = {m: RENEWAL_METHODS[m] for m in subs.renewal_methods_for(current_user,
                                                                                                   subscription)}
            context["payment_methods"] = PAYMENT_METHODS
            context["order_statuses"] = ORDER_STATUSES
            context["receipts"] = db.session.scalars(select(CashReceipt).where(
                CashReceipt.subscription_id == subscription.id).order_by(CashReceipt.id)).all()
            context["receipt_statuses"] = CASH_RECEIPT_STATUSES
        elif tab == "invoices":
            context["links"] = links
            context["purposes"] = SUBSCRIPTION_ORDER_PURPOSES
            context["order_statuses"] = ORDER_STATUSES
        else:
            kind = request.args.get("kind", "")
            query = select(SubscriptionEvent).where(SubscriptionEvent.subscription_id == subscription.id)
            if kind in SUBSCRIPTION_EVENT_KINDS:
                query = query.where(SubscriptionEvent.kind == kind)
            context["events"] = db.session.scalars(query.options(joinedload(SubscriptionEvent.actor),
                                                                 joinedload(SubscriptionEvent.order))
                                                   .order_by(SubscriptionEvent.id.desc()).limit(500)).all()
            context["event_kinds"] = SUBSCRIPTION_EVENT_KINDS
            context["kind"] = kind
        return self.render("renewdesk/subscriptions/detail.html", **context)

    def _post(self, id: int, tab: str, operation, done: str):
        subscription = self._subscription_or_404(id)
        try:
            operation(subscription)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(done, "success")
        return redirect(url_for(".detail_view", id=id, tab=tab))

    @expose("/view/<int:id>/seats/", methods=("POST",))
    def seats_view(self, id: int):
        return self._post(id, "employees", lambda s: subs.assign_seats(db.session, current_user, s,
                                                                         request.form.get("logins", "")),
                          _("Seats assigned."))

    @expose("/view/<int:id>/seats/remove/", methods=("POST",))
    def remove_seat_view(self, id: int):
        seat_id = parse_row_id(request.form.get("seat_id")) or 0
        return self._post(id, "employees", lambda s: subs.remove_seat(db.session, current_user, s, seat_id),
                          _("Seat removed."))

    @expose("/view/<int:id>/notes/", methods=("POST",))
    def notes_view(self, id: int):
        form = request.form
        return self._post(id, "notes", lambda s: subs.add_note(db.session, current_user, s, form.get("body", ""),
                                                                form.get("visibility", "customer"),
                                                                form.get("pinned") == "y"),
                          _("Note added."))

    @expose("/view/<int:id>/renewal/", methods=("POST",))
    def renewal_view(self, id: int):
        form = request.form
        return self._post(id, "payments", lambda s: subs.update_renewal(db.session, current_user, s,
                                                                         form.get("auto_renew") == "y",
                                                                         form.get("renewal_method", "")),
                          _("Renewal settings saved."))

    def _ask_first(self, id: int, name: str, describe, tab: str = "details"):
        """The confirmation page of operation `name` on subscription `id` unless the form carries its token;
        None when confirmed, or when `describe` returns None (the operation itself then refuses)."""
        subscription = self._subscription_or_404(id)
        purpose = f"{self.endpoint}.{name}"
        if is_confirmed(purpose, [subscription.id]):
            return None
        confirmation = describe(subscription)
        if confirmation is None:
            return None
        return ask(self, confirmation, purpose, [subscription.id], url_for(".detail_view", id=id, tab=tab))

    @expose("/view/<int:id>/cancel/", methods=("POST",))
    def cancel_view(self, id: int):
        undo = request.form.get("undo") == "y"
        if not undo:
            page = self._ask_first(id, "cancel", describe_cancel)
            if page is not None:
                return page
        return self._post(id, "details", lambda s: (subs.undo_cancel if undo else subs.schedule_cancel)(
            db.session, current_user, s),
            _("Cancellation withdrawn.") if undo else _("The subscription ends at the end of its period."))

    @expose("/view/<int:id>/change/", methods=("POST",))
    def change_view(self, id: int):
        """Upgrade now (an order; the unused days go back to the balance when it is paid) or downgrade at
        the period end."""
        cycle_id = parse_row_id(request.form.get("cycle"))
        subscription = self._subscription_or_404(id)
        if request.form.get("undo") == "y":  # Keep the current plan: the scheduled change is withdrawn
            return self._post(id, "details", lambda s: subs.undo_downgrade(db.session, current_user, s),
                              _("The plan change is withdrawn; the subscription renews on its current plan."))
        try:
            target = db.session.get(PlanCycle, cycle_id or 0)
            if target is not None and target.plan.rank > subscription.plan.rank:
                order = subs.upgrade_now(db.session, current_user, subscription, cycle_id, date.today())
                message = _("Upgrade order %(number)s: %(total)s. Pay it to switch now.", number=order.number,
                            total=format_money(order.total, order.currency))
            else:
                subs.schedule_downgrade(db.session, current_user, subscription, cycle_id)
                message = _("The plan changes at the end of the period.")
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(message, "success")
        return redirect(url_for(".detail_view", id=id, tab="details"))

    @expose("/view/<int:id>/cancel-now/", methods=("POST",))
    def cancel_now_view(self, id: int):
        page = self._ask_first(id, "cancel_now", describe_cancel_now)
        if page is not None:
            return page
        return self._post(id, "details", lambda s: subs.request_cancel_now(db.session, current_user, s,
                                                                            request.form.get("reason", "")),
                          _("Refund requested; the subscription ends when another person of finance approves it."))

    @expose("/view/<int:id>/abandon/", methods=("POST",))
    def abandon_view(self, id: int):
        page = self._ask_first(id, "abandon", describe_abandon, "payments")
        if page is not None:
            return page
        return self._post(id, "payments", lambda s: subs.abandon(db.session, current_user, s),
                          _("The order is cancelled and its promotions are given back."))

    @expose("/view/<int:id>/pay/", methods=("POST",))
    def pay_view(self, id: int):
        return self._post(id, "payments", lambda s: subs.pay_by_balance(db.session, current_user, s, date.today()),
                          _("Paid from the balance."))

    @expose("/view/<int:id>/cash/", methods=("POST",))
    def cash_view(self, id: int):
        form = request.form

        def enter(subscription):
            today = local_today()  # the seller's calendar day (in China a day ahead of UTC from 16:00 UTC)
            try:
                received = date.fromisoformat(form.get("received_on", "") or today.isoformat())
            except ValueError:
                raise DomainError(_l("Received on: a date such as 2026-12-01.")) from None
            subs.enter_cash_receipt(db.session, current_user, subscription, received, form.get("reference", ""),
                                    today=today)

        return self._post(id, "payments", enter, _("Cash receipt entered; finance confirms it."))


# --- promotions ---------------------------------------------------------------------------------------------

def _value_cell(view, context, model, name):
    if model.kind == "percent":
        text = format_percent(model.percent)
        if model.max_discount is not None:
            text += " ≤ " + view.money(model.max_discount, model.currency)
        return text
    return view.money(model.amount, model.currency)


def _redemptions_cell(view, context, model, name):
    cap = model.max_redemptions if model.max_redemptions is not None else "∞"
    return f"{model.redeemed} + {model.reserved} / {cap}"


class PromotionView(ScopedModelView):
    """Khuyến mại: admin and sales draft promotions; finance (not their creator) activates them."""

    roles = frozenset({"sales", "finance"})
    can_delete = False
    column_list = ("code", "name", "scope", "kind", "value", "currency", "status", "redemptions", "starts_at",
                   "ends_at", "duration", "combinable", "first_subscription_only", "created_by")
    column_labels = {"code": _l("Code"), "name": _l("Name"), "scope": _l("Applies to"), "kind": _l("Kind"),
                     "value": _l("Value"), "currency": _l("Currency"), "status": _l("Status"),
                     "redemptions": _l("Redeemed + reserved / cap"), "starts_at": _l("Starts"), "ends_at": _l("Ends"),
                     "duration": _l("Duration"), "combinable": _l("Combinable"),
                     "first_subscription_only": _l("First subscription only"), "created_by": _l("Created by"),
                     "percent": _l("Percentage"), "amount": _l("Amount"), "max_discount": _l("Cap"),
                     "min_subtotal": _l("Minimum subtotal"), "max_redemptions": _l("Redemptions cap"),
                     "max_per_company": _l("Per-company cap"), "duration_cycles": _l("Cycles"),
                     "redeemed": _l("Redeemed"), "reserved": _l("Reserved"), "activated_by": _l("Activated by"),
                     "activated_at": _l("Activated"), "created_at": _l("Created")}
    column_formatters = {"scope": label_formatter(PROMOTION_SCOPES), "kind": label_formatter(PROMOTION_KINDS),
                         "status": label_formatter(PROMOTION_STATUSES),
                         "duration": label_formatter(PROMOTION_DURATIONS),
                         "value": _value_cell, "redemptions": _redemptions_cell}
    column_filters = ("status", "scope", "kind", "currency")
    column_choices = {"currency": [(code, CURRENCIES[code]) for code in SUBSCRIPTION_CURRENCIES]}  # 人民币, picked
    column_searchable_list = ("code", "name")
    form_columns = ("code", "name", "scope", "kind", "currency", "percent_value", "amount_value", "cap_value",
                    "min_subtotal_value",
                    "starts_at", "ends_at", "max_redemptions", "max_per_company", "first_subscription_only",
                    "combinable", "duration", "duration_cycles")
    # Typed as text and parsed by actions.money (never a float); stored as minor units.
    form_extra_fields = {"percent_value": StringField(_l("Percentage")), "amount_value": StringField(_l("Amount")),
                         "cap_value": StringField(_l("Cap")),
                         "min_subtotal_value": StringField(_l("Minimum subtotal"))}
    # The database's checks (a cap of 0 or less, -1 cycles) answered with an IntegrityError: say it on the field.
    form_args = {"max_redemptions": {"validators": [Optional(), NumberRange(min=0, max=MAX_ROW_ID)]},
                 "max_per_company": {"validators": [Optional(), NumberRange(min=1, max=MAX_ROW_ID)]},
                 "duration_cycles": {"validators": [Optional(), NumberRange(min=1, max=MAX_ROW_ID)]}}
    form_choices = {"scope": [(k, v) for k, v in PROMOTION_SCOPES.items()],
                    "kind": [(k, v) for k, v in PROMOTION_KINDS.items()],
                    "currency": [(c, c) for c in SUBSCRIPTION_CURRENCIES],
                    "duration": [(k, v) for k, v in PROMOTION_DURATIONS.items()]}

    inline_models = (
        (PromotionTarget, {"form_columns": ("id", "plan", "cycle", "add_on"),
                           "form_label": _l("Applies only to (one plan, cycle or add-on per row)"),
                           "form_args": {"plan": {"label": _l("Plan"), "blank_text": BLANK_CHOICE},
                                         "cycle": {"label": _l("Cycle"), "blank_text": BLANK_CHOICE},
                                         "add_on": {"label": _l("Add-on"), "blank_text": BLANK_CHOICE}}}),
        (PromotionCompany, {"form_columns": ("id", "company"), "form_label": _l("Offered only to (and subsidiaries)"),
                            "form_args": {"company": {"label": _l("Company")}},
                            "form_ajax_refs": {"company": QueryAjaxModelLoader("company", db.session, Company,
                                                                               fields=["name"], page_size=20)}}),
    )

    @staticmethod
    def money(amount, currency):
        from actions.money import format_money

        return format_money(amount, currency)

    @property
    def can_create(self):
        return current_user.is_authenticated and current_user.role in ("admin", "sales")

    @property
    def can_edit(self):
        return current_user.is_authenticated and current_user.role in ("admin", "sales")

    def on_form_prefill(self, form, id):
        row = self.get_one(id)
        if row is not None:
            form.percent_value.data = f"{row.percent.normalize():f}" if row.percent is not None else ""
            form.amount_value.data = str(row.amount) if row.amount is not None else ""
            form.cap_value.data = str(row.max_discount) if row.max_discount is not None else ""
            form.min_subtotal_value.data = str(row.min_subtotal) if row.min_subtotal is not None else ""

    def on_model_change(self, form, model, is_created):
        if current_user.role not in ("admin", "sales"):
            raise ValidationError(_("Your role may not do this."))
        from actions.money import to_minor

        currency = model.currency
        try:
            def optional(field, label):
                text = (field.data or "").strip()
                return to_minor(parse(text, currency, str(label)), currency) if text else None

            if model.kind == "percent":
                text = (form.percent_value.data or "").strip()
                percent = parse(text, "CNY", str(_l("Percentage")), maximum=100)
                model.percent_hundredths, model.amount_minor = int(percent * 100), None
                model.max_discount_minor = optional(form.cap_value, _l("Cap"))
            else:
                model.amount_minor = optional(form.amount_value, _l("Amount"))
                if model.amount_minor is None:
                    raise DomainError(_l("%(field)s: enter an amount.", field=_l("Amount")))
                model.percent_hundredths = model.max_discount_minor = None
            model.min_subtotal_minor = optional(form.min_subtotal_value, _l("Minimum subtotal"))
            subs.check_promotion_terms(model)
            if is_created:
                model.status, model.created_by_id = "draft", current_user.id
            else:
                from sqlalchemy import inspect

                state = inspect(model)
                changed = [a.key for a in state.mapper.column_attrs if state.attrs[a.key].history.has_changes()]
                subs.check_promotion_edit(model, changed)
        except DomainError as exc:
            raise ValidationError(str(exc)) from None
        super().on_model_change(form, model, is_created)

    def _act(self, ids, operation, done: str):
        self.act_on_each(ids, operation, lambda row: row.code, done)

    @action("activate", _l("Activate"), _l("Activate the selected promotions?"))
    def action_activate(self, ids):
        self._act(ids, lambda p: subs.activate_promotion(db.session, current_user, p), _("%(count)s activated."))

    @action("pause", _l("Pause"), _l("Pause the selected promotions?"))
    def action_pause(self, ids):
        self._act(ids, lambda p: subs.set_promotion_status(db.session, current_user, p, "paused"),
                  _("%(count)s paused."))

    @action("archive", _l("Archive"), _l("Archive the selected promotions?"))
    def action_archive(self, ids):
        self._act(ids, lambda p: subs.set_promotion_status(db.session, current_user, p, "archived"),
                  _("%(count)s archived."))


# --- cash receipts ------------------------------------------------------------------------------------------

def _receipt_amount(view, context, model, name):
    from actions.money import format_money

    return format_money(model.amount, model.currency)


def _receipt_status(view, context, model, name):
    """The status; a submitted receipt offers finance its review page (confirm, or reject with a reason)."""
    cell = Markup("{}").format(CASH_RECEIPT_STATUSES.get(model.status, model.status))
    if model.status == "submitted" and current_user.role in subs.CASH_CONFIRM_ROLES:
        cell += Markup(' <a href="{}" class="btn btn-sm btn-primary py-0 rd-review">{}</a>').format(
            view.get_url(".review_view", id=model.id), _("Review"))
    return cell


class CashReceiptView(ScopedModelView):
    """OS flow: cash receipts entered by sales, confirmed by another person of finance — or rejected with a
    reason (the order is released and sales may enter the right receipt)."""

    roles = frozenset({"sales", "finance"})
    can_create = can_edit = can_delete = False
    column_list = ("id", "created_at", "company.name", "subscription.number", "order.number", "amount",
                   "received_on", "reference", "status", "entered_by", "confirmed_by", "confirmed_at",
                   "reject_reason")
    column_labels = {"id": _l("No."), "company.name": _l("Company"), "subscription.number": _l("Subscription"),
                     "order.number": _l("Order"), "amount": _l("Amount"), "received_on": _l("Received on"),
                     "reference": _l("Reference"), "status": _l("Status"), "entered_by": _l("Entered by"),
                     "confirmed_by": _l("Reviewed by"), "confirmed_at": _l("Reviewed at"),
                     "reject_reason": _l("Rejection reason"),
                     "created_at": _l("Created"), "company": _l("Company"), "subscription": _l("Subscription"),
                     "order": _l("Order"), "currency": _l("Currency")}
    column_formatters = {"amount": _receipt_amount, "status": _receipt_status}
    column_formatters_export = {"amount": _receipt_amount, "status": label_formatter(CASH_RECEIPT_STATUSES)}
    column_filters = ("status", "received_on")
    column_choices = {"status": list(CASH_RECEIPT_STATUSES.items())}
    column_default_sort = ("id", True)
    column_select_related_list = (CashReceipt.company, CashReceipt.subscription, CashReceipt.order)

    @action("confirm", _l("Confirm cash received"))
    @confirm_first(lambda view, rows: Confirmation(
        title=_("Confirm cash received"),
        summary=_("Confirm the cash of %(count)s receipts: their subscriptions start.", count=len(rows)),
        items=[f"#{row.id} {row.company.name} · {format_money(row.amount, row.currency)}" for row in rows],
        confirm_label=_("Confirm %(count)s receipts", count=len(rows))))
    def action_confirm(self, ids):
        self.act_on_each(ids, lambda row: subs.confirm_cash_receipt(db.session, current_user, row, date.today()),
                         lambda row: f"#{row.id}", _("%(count)s confirmed; the subscriptions started."))

    def _review_page(self, receipt: CashReceipt, reason: str = ""):
        return self.render("renewdesk/subscriptions/cash_review.html", receipt=receipt, reason=reason,
                           statuses=CASH_RECEIPT_STATUSES, may_review=current_user.role in subs.CASH_CONFIRM_ROLES,
                           return_url=self.get_url(".index_view"))

    @expose("/review/")
    def review_view(self):
        receipt = self.get_one(request.args.get("id", ""))
        if receipt is None:
            abort(404)
        return self._review_page(receipt)

    @expose("/reject/", methods=("POST",))
    def reject_view(self):
        """Reject a receipt with the reason (after a confirmation page naming it): the order is released."""
        receipt = self.get_one(request.form.get("id", ""))
        if receipt is None:
            abort(404)
        reason = request.form.get("reason", "")
        purpose = f"{self.endpoint}.reject"
        if receipt.status == "submitted" and reason.strip() and not is_confirmed(purpose, [receipt.id]):
            return ask(self, Confirmation(
                title=_("Reject cash receipt #%(id)s", id=receipt.id),
                summary=_("Reject the cash receipt #%(id)s of %(company)s for %(amount)s (order %(order)s): the "
                          "order awaits payment again and sales may enter the right receipt.", id=receipt.id,
                          company=receipt.company.name, amount=format_money(receipt.amount, receipt.currency),
                          order=receipt.order.number),
                items=[_("Reason: %(reason)s", reason=reason.strip())],
                confirm_label=_("Reject the receipt")), purpose, [receipt.id],
                self.get_url(".review_view", id=receipt.id))
        receipt_id = receipt.id
        with unit_of_work() as work:
            subs.reject_cash_receipt(db.session, current_user, receipt, reason)
        if work.failed:
            return self._review_page(self.get_one(str(receipt_id)), reason)
        flash(_("Cash receipt #%(id)s rejected; its order awaits payment again.", id=receipt_id), "success")
        return redirect(self.get_url(".index_view"))


def register(admin, customer, sales, finance) -> None:
    """Subscribe (price table and checkout), subscriptions, promotions and cash receipts."""
    register_paid_page("subscription", _subscription_page)
    admin.add_view(SubscribeView(name=_l("Subscribe to a service"), category=customer, endpoint="subscribe"))
    admin.add_view(SubscriptionView(name=_l("Subscriptions"), category=customer, endpoint="subscription"))
    admin.add_view(PromotionView(Promotion, name=_l("Promotions"), category=sales, endpoint="promotion"))
    admin.add_view(CashReceiptView(CashReceipt, name=_l("Cash receipts"), category=finance, endpoint="cashreceipt"))
