"""Seed 004: organizer accounts against per-edition seats (创建账号, 再次邀请), seat orders (会易通订单列表),
buying seats, and sales granting seats paid in cash.

The rules live in actions.seats; these views parse the request, call it, commit once (or roll
back on a DomainError), flash the result and only then send the invitation mails.
"""
from __future__ import annotations

from datetime import date, timedelta
from functools import partial

from flask import current_app, flash, g, has_request_context, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, not_, select
from sqlalchemy.orm import joinedload

from actions import ActionResult, DomainError, companies_in_scope, scoped
from actions.money import format_amount, format_money
from actions.idempotency import remember
from actions.quotes import FIELD as QUOTE_FIELD
from actions.quotes import check_quote, quote_digest
from actions.seats import (
    EXPIRING_SOON_DAYS, MAX_SEATS_PER_ORDER, SeatTerm, activate_organizers, create_organizer, create_seat_order,
    deactivate_organizers, expiring_clause, grant_seats, invitation_mail_key, organizer_editions, reinvite_organizers,
    seat_counts, seat_figures, seat_packages, seat_term_months, seat_terms, usable_clause,
)
from admin_views.base import (
    RoleView, ScopedModelView, badge, claim_form, company_in_scope, flash_result, invoice_status_formatter,
    label_formatter, local_day_start, local_today, parse_row_id, time_cell, unit_of_work,
)
from admin_views.mailing import flash_mail, queue, request_locale, send_now
from admin_views.system import InCompanyTree
from models import (
    INVITATION_STATES, ORDER_KINDS, ORDER_STATUSES, PAYMENT_METHODS, SEAT_EDITIONS, Company,
    MemberAccount, Order, OrderLine, db,
)

INDENT = "\u00a0\u00a0\u00a0"
STATUS_BADGES = {"pending": "warning", "paid": "success", "cancelled": "secondary", "refunded": "info"}
RECENT_GRANTS = 50


def _company_choices() -> list[tuple[str, str]]:
    companies = list(companies_in_scope(db.session, current_user))
    top = min((c.depth for c in companies), default=0)
    return [(str(c.id), INDENT * (c.depth - top) + c.name) for c in companies]




def _catalog_prices() -> dict[str, tuple]:
    """Edition → (amount, currency) of the active seat packages of the catalog."""
    return {edition: (p.amount, p.currency) for edition, p in seat_packages(db.session).items()}


def _prices() -> dict[str, str]:
    """Edition → "12.00 CNY" for the active seat packages of the catalog."""
    return {edition: format_money(amount, currency) for edition, (amount, currency) in _catalog_prices().items()}


def _terms() -> dict[str, int]:
    """Edition → the months a seat of the catalog's seat package lasts, for the packages whose seats expire."""
    return {edition: months for edition, package in seat_packages(db.session).items()
            if (months := seat_term_months(package))}


def _missing_editions(prices: dict) -> list[str]:
    """The product editions with no seat package on sale (they cannot be bought or granted)."""
    return [str(label) for edition, label in SEAT_EDITIONS.items() if edition not in prices]


def _seat_summary(counts=None) -> list[tuple[Company, list]]:
    """Per company of the actor's scope that has seats (or of `counts`): its editions with what is left."""
    grouped: dict[int, tuple[Company, list]] = {}
    for count in seat_counts(db.session, current_user) if counts is None else counts:
        grouped.setdefault(count.company.id, (count.company, []))[1].append(count)
    return list(grouped.values())


def queue_invitations(accounts, inviter) -> list[int | None]:
    """Queue each organizer's invitation in the request's language, before the commit; the outbox ids."""
    locale = request_locale()
    return [
        queue(
            invitation_mail_key(account.id, account.invited_at), "organizer_invitation",
            [account.email or account.login], locale,
            _l("You are invited as an organizer of %(company)s", company=account.company.name),
            first_name=account.first_name, last_name=account.last_name, login=account.login,
            company=account.company.name, edition=SEAT_EDITIONS.get(account.seat_edition, account.seat_edition),
            inviter=inviter.full_name or inviter.username, inviter_email=inviter.email,
        )
        for account in accounts
    ]


# --- organizer accounts -------------------------------------------------------------------------------

ORGANIZER_LABELS = {
    "login": _l("Account email"), "last_name": _l("Last name"), "first_name": _l("First name"),
    "company": _l("Company"), "seat_edition": _l("Product edition"), "invitation_state": _l("Invitation"),
    "invited_at": _l("Invited at"), "active": _l("Active"), "created_at": _l("Created"),
}


class OrganizerView(ScopedModelView):
    """会易通产品列表: organizer accounts, each using a seat of its edition; create, re-invite, deactivate."""

    roles = frozenset({"customer_admin"})
    area = "members"
    scope_column = "company_id"
    audit_name = "member_account"
    can_create = True
    can_edit = can_delete = False
    can_export = True
    column_list = ("login", "last_name", "first_name", "company", "seat_edition", "invitation_state", "invited_at",
                   "active")
    column_export_list = column_list + ("created_at",)
    column_details_list = column_export_list
    column_labels = ORGANIZER_LABELS
    column_default_sort = ("created_at", True)
    column_sortable_list = ("login", "last_name", "first_name", "seat_edition", "invitation_state", "invited_at",
                            "active", "created_at")
    column_searchable_list = ("login", "last_name", "first_name")
    column_select_related_list = (MemberAccount.company,)
    column_filters = (
        InCompanyTree(MemberAccount.company_id, _l("Company"), MemberAccount.company_id),
        sqla_filters.FilterEqual(MemberAccount.seat_edition, _l("Product edition"),
                                 options=list(SEAT_EDITIONS.items())),
        sqla_filters.FilterEqual(MemberAccount.invitation_state, _l("Invitation"),
                                 options=list(INVITATION_STATES.items())),
        sqla_filters.BooleanEqualFilter(MemberAccount.active, _l("Active")),
    )
    column_formatters = {
        "seat_edition": label_formatter(SEAT_EDITIONS),
        "invitation_state": label_formatter(INVITATION_STATES),
        "invited_at": time_cell, "created_at": time_cell,
        "active": lambda v, c, m, n: badge(_("Active"), "success") if m.active else badge(_("Deactivated")),
    }
    column_formatters_export = {
        "seat_edition": label_formatter(SEAT_EDITIONS),
        "invitation_state": label_formatter(INVITATION_STATES),
        "active": lambda v, c, m, n: _("Yes") if m.active else _("No"),
    }
    column_formatters_detail = {"seat_edition": label_formatter(SEAT_EDITIONS),
                                "invitation_state": label_formatter(INVITATION_STATES)}
    list_template = "renewdesk/organizer_list.html"
    page_size_options = (20, 50, 100, 500)

    def search_placeholder(self):
        return _("Email or name")

    def get_query(self):
        return super().get_query().filter(MemberAccount.seat_edition.isnot(None))

    def get_count_query(self):
        return super().get_count_query().filter(MemberAccount.seat_edition.isnot(None))

    @expose("/")
    def index_view(self):
        self._template_args.update(seat_summary=_seat_summary(), seat_editions=SEAT_EDITIONS)
        return super().index_view()

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """创建账号: email, last and first name, edition; takes a seat and mails the invitation."""
        return_url = self.get_url(".index_view")
        form = request.form
        values = {key: form.get(key, "") for key in ("email", "last_name", "first_name", "edition")}
        values["company_id"] = form.get("company_id", str(current_user.company_id or ""))
        if request.method == "POST":
            company = company_in_scope(values["company_id"])
            with unit_of_work() as work:
                if company is None:
                    raise DomainError(_l("Choose one of your companies."))
                account = create_organizer(db.session, current_user, company, values["email"], values["first_name"],
                                           values["last_name"], values["edition"])
                login = account.login
                mail_ids = queue_invitations([account], current_user)
            if not work.failed:
                outcomes = send_now(mail_ids)
                flash(_("Organizer %(login)s created.", login=login), "success")
                flash_mail(outcomes)
                return redirect(return_url)
        counts = seat_counts(db.session, current_user)
        offered, first = organizer_editions(counts, parse_row_id(values["company_id"]))
        values["edition"] = values["edition"] or first
        return self.render("renewdesk/organizer_create.html", values=values, companies=_company_choices(),
                           editions={edition: SEAT_EDITIONS[edition] for edition in offered},
                           seat_editions=SEAT_EDITIONS, seat_summary=_seat_summary(counts), return_url=return_url)

    def _act(self, ids, operation, done: str, mail=None) -> ActionResult | None:
        rows = self.scoped_rows(ids)
        with unit_of_work() as work:
            result = operation(db.session, current_user, rows)
            mail_ids = mail(result) if mail is not None else []
        if work.failed:
            return None
        outcomes = send_now(mail_ids)
        flash_result(ActionResult(result.changed, tuple(self.refused_ids(ids, rows)) + result.refused, result.extra),
                     done)
        flash_mail(outcomes)
        return result

    @action("reinvite", _l("Re-invite"), _l("Send the invitation again to the selected organizers?"))
    def action_reinvite(self, ids):
        """再次邀请: mark invited now and queue each one's mail in the same transaction; send after the commit.
        One sent INVITATIONS_PER_HOUR invitations in the last hour (failed mail not counted) is refused, named."""
        self._act(ids, partial(reinvite_organizers, limit=int(current_app.config["INVITATIONS_PER_HOUR"])),
                  _("%(count)s organizers marked as invited again."),
                  mail=lambda result: queue_invitations(result.extra["accounts"], current_user))

    @action("deactivate", _l("Deactivate"), _l("Deactivate the selected organizers? Their seats become free."))
    def action_deactivate(self, ids):
        self._act(ids, deactivate_organizers, _("%(count)s organizers deactivated; their seats are free."))

    @action("activate", _l("Reactivate"), _l("Reactivate the selected organizers? Each takes a seat again."))
    def action_activate(self, ids):
        self._act(ids, activate_organizers, _("%(count)s organizers reactivated."))


# --- seat orders (会易通订单列表) -------------------------------------------------------------------------

class OrderedBetween(sqla_filters.DateBetweenFilter):
    """订单日期段: ordered on one of the days (in the reader's zone) from the first to the last, both included."""

    def apply(self, query, value, alias=None):
        start, end = value
        return query.filter(Order.created_at >= local_day_start(start),
                            Order.created_at < local_day_start(end + timedelta(days=1)))


class EditionIs(BaseSQLAFilter):
    """产品版本: orders whose line is of this edition."""

    def __init__(self):
        super().__init__(Order.id, _l("Product edition"), options=list(SEAT_EDITIONS.items()))

    def validate(self, value):
        return value in SEAT_EDITIONS

    def apply(self, query, value, alias=None):
        return query.filter(Order.id.in_(select(OrderLine.order_id).where(OrderLine.edition == value)))

    def operation(self):
        return _l("is")


class ExpiresBetween(sqla_filters.DateBetweenFilter):
    """订单到期时间: orders whose seats end on one of the days from the first to the last, both included."""

    def apply(self, query, value, alias=None):
        start, end = value
        return query.filter(Order.id.in_(select(OrderLine.order_id).where(OrderLine.new_expires_on.between(start,
                                                                                                            end))))


USABLE_OPTIONS = (("yes", _l("Usable")), ("no", _l("Not usable")),
                  ("soon", _l("Usable, expiring within %(days)s days", days=EXPIRING_SOON_DAYS)))


class UsableIs(BaseSQLAFilter):
    """是否可用: usable (paid, not refunded, seats not taken back, not past expiry), not, or expiring soon; one SQL
    EXISTS on the order's line (actions.seats.usable_clause), as of the reader's today."""

    def __init__(self):
        super().__init__(Order.id, _l("Usable?"), options=USABLE_OPTIONS)

    def validate(self, value):
        return value in dict(USABLE_OPTIONS)

    def apply(self, query, value, alias=None):
        today = local_today()
        if value == "soon":
            return query.filter(expiring_clause(today))
        clause = usable_clause(today)
        return query.filter(clause if value == "yes" else not_(clause))

    def operation(self):
        return _l("is")


def _promotion_options():
    """促销信息: the promotions of the seat orders the current user may see (per request)."""
    if not has_request_context() or not current_user.is_authenticated:
        return []
    query = scoped(select(Order.promotion).where(Order.kind == "seats", Order.promotion.isnot(None)).distinct(),
                   current_user, Order.company_id)
    return [(p, p) for p in sorted(db.session.scalars(query))][:200]


def _figure(index: int):
    def format_(view, context, model, name):
        value = view.figures(model)[index]
        if index == 0:
            return str(SEAT_EDITIONS.get(value, value or ""))
        return "" if value is None else value

    return format_


def _order_status_cell(view, context, model, name):
    cell = badge(str(ORDER_STATUSES.get(model.status, model.status)), STATUS_BADGES.get(model.status, "secondary"))
    if model.status == "pending" and _order_pages():
        cell += Markup(' <a class="btn btn-sm btn-primary py-0 rd-pay" href="{}">{}</a>').format(
            url_for("renewal_center.order_view", number=model.number), _("Pay"))
    return cell


def _order_pages() -> bool:
    """True when the renewal center's order pages (confirm, pay by balance or online) are there."""
    return "renewal_center.order_view" in current_app.view_functions


def _expiry_cell(view, context, model, name):
    """订单到期时间: the last day the seats are usable, blank when they never expire; marked while expiring soon."""
    term, today = view.term(model), local_today()
    if term.expires_on is None:
        return ""
    cell = Markup("{}").format(term.expires_on.isoformat())
    if term.expiring_soon(model.status, today):
        days = (term.expires_on - today).days
        cell += Markup(" ") + badge(_("Expires in %(days)s days", days=days) if days else _("Expires today"),
                                    "warning")
    return cell


def _usable_cell(view, context, model, name):
    usable = view.term(model).usable(model.status, local_today())
    return badge(_("Usable"), "success") if usable else badge(_("Not usable"))


def _expiry_value(view, context, model, name):
    return view.term(model).expires_on


def _usable_value(view, context, model, name):
    return _("Usable") if view.term(model).usable(model.status, local_today()) else _("Not usable")


def _company_type(view, context, model, name):
    return _("Group") if model.company.parent_id is None else _("Subsidiary")


SEAT_ORDER_LABELS = {
    "id": _l("No."), "company": _l("Customer"), "created_at": _l("Order date"), "kind": _l("Order type"),
    "quantity": _l("Accounts ordered"), "running_max": _l("Maximum accounts so far"),
    "payment_method": _l("Payment"), "invoice_status": _l("Invoice"), "number": _l("Order number"),
    "company_type": _l("Customer type"), "edition": _l("Product edition"), "promotion": _l("Promotion"),
    "status": _l("Status"), "total": _l("Total"), "currency": _l("Currency"), "note": _l("Note"),
    "paid_at": _l("Paid at"), "created_by": _l("Created by"),
    "expires_on": _l("Order expires on"), "usable": _l("Usable?"),
}
_SEAT_FORMATTERS = {
    "kind": label_formatter(ORDER_KINDS),
    "quantity": _figure(1), "running_max": _figure(2), "edition": _figure(0),
    "payment_method": lambda v, c, m, n: str(PAYMENT_METHODS.get(m.payment_method, "")) if m.payment_method else "",
    "invoice_status": invoice_status_formatter(),
    "company_type": _company_type,
    "promotion": lambda v, c, m, n: m.promotion or "",
}


class SeatOrderView(ScopedModelView):
    """会易通订单列表: every account increase with its quantity and the running maximum; filters, export."""

    roles = frozenset({"customer_admin"})
    area = "members"
    scope_column = "company_id"
    audit_name = "order"
    can_create = can_edit = can_delete = False
    can_export = True
    # The guide's columns in its order (订单到期时间 after 客户类型, 是否可用 last), then the status.
    column_list = ("id", "company", "created_at", "kind", "quantity", "running_max", "payment_method",
                   "invoice_status", "number", "company_type", "expires_on", "edition", "promotion", "usable",
                   "status")
    column_export_list = column_list + ("total", "currency", "paid_at")
    column_details_list = ("number", "company", "created_at", "kind", "quantity", "running_max", "edition",
                           "promotion", "status", "expires_on", "usable", "total", "currency", "payment_method",
                           "invoice_status", "paid_at", "created_by", "note")
    column_labels = SEAT_ORDER_LABELS
    column_default_sort = ("created_at", True)
    column_sortable_list = ("id", ("company", "company.name"), "created_at", "payment_method", "invoice_status",
                            "number", "promotion", "status")
    column_searchable_list = ("number",)
    column_select_related_list = (Order.company,)
    column_formatters = {**_SEAT_FORMATTERS, "created_at": time_cell, "paid_at": time_cell,
                         "status": _order_status_cell, "expires_on": _expiry_cell, "usable": _usable_cell}
    column_formatters_export = {**_SEAT_FORMATTERS, "status": label_formatter(ORDER_STATUSES),
                                "expires_on": _expiry_value, "usable": _usable_value}
    column_formatters_detail = {**_SEAT_FORMATTERS, "created_at": time_cell, "paid_at": time_cell,
                                "status": label_formatter(ORDER_STATUSES), "expires_on": _expiry_cell,
                                "usable": _usable_cell}
    list_template = "renewdesk/seat_order_list.html"
    page_size_options = (20, 50, 100, 500)

    def __init__(self, *args, **kwargs):
        self.column_filters = (
            OrderedBetween(Order.created_at, _l("Order date")),
            sqla_filters.FilterLike(Order.number, _l("Order number")),
            sqla_filters.FilterEqual(Order.promotion, _l("Promotion"), options=_promotion_options),
            sqla_filters.FilterLike(Order.promotion, _l("Promotion")),
            EditionIs(),
            UsableIs(),
            ExpiresBetween(Order.id, _l("Order expires on")),
            sqla_filters.FilterEqual(Order.status, _l("Status"), options=list(ORDER_STATUSES.items())),
            InCompanyTree(Order.company_id, _l("Company"), Order.company_id),
        )
        super().__init__(Order, *args, **kwargs)

    def search_placeholder(self):
        return _("Order number")

    @expose("/")
    def index_view(self):
        """The list, and above it how many usable orders end within EXPIRING_SOON_DAYS (a link lists them)."""
        query = scoped(select(func.count()).select_from(Order)
                       .where(Order.kind == "seats", expiring_clause(local_today())), current_user, Order.company_id)
        arg = next((arg for arg, (_index, flt) in (self._filter_args or {}).items() if isinstance(flt, UsableIs)),
                   None)
        self._template_args.update(expiring_count=db.session.scalar(query), expiring_days=EXPIRING_SOON_DAYS,
                                   expiring_url=self.get_url(".index_view", **({f"flt0_{arg}": "soon"} if arg else {})))
        return super().index_view()

    def get_query(self):
        return super().get_query().filter(Order.kind == "seats")

    def get_count_query(self):
        return super().get_count_query().filter(Order.kind == "seats")

    # The per-order figures come from one windowed query per page (or export batch), kept per request.
    def figures(self, order) -> tuple:
        cache = g.setdefault("rd_seat_figures", {})
        if order.id not in cache:
            cache.update(seat_figures(db.session, [order.id]))
        return cache.get(order.id, (None, None, None))

    def term(self, order) -> SeatTerm:
        cache = g.setdefault("rd_seat_terms", {})
        if order.id not in cache:
            cache.update(seat_terms(db.session, [order.id]))
        return cache.get(order.id, SeatTerm(None, None))

    def _remember(self, orders) -> None:
        ids = [o.id for o in orders]
        g.setdefault("rd_seat_figures", {}).update(seat_figures(db.session, ids))
        g.setdefault("rd_seat_terms", {}).update(seat_terms(db.session, ids))

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        if kwargs.get("execute", True) and rows:
            self._remember(rows)
        return count, rows

    def export_rows(self):
        args = self._get_list_extra_args()
        sort = self._get_column_by_idx(args.sort)
        _count, query = self.get_list(0, sort[0] if sort else None, args.sort_desc, args.search, args.filters,
                                      execute=False, page_size=self.export_max_rows or False)
        columns = [c for c, _label in self._export_columns]
        batch = []
        for order in query.yield_per(self.export_batch_rows):
            batch.append(order)
            if len(batch) >= self.export_batch_rows:
                yield from self._export_batch(batch, columns)
                batch = []
        yield from self._export_batch(batch, columns)

    def _export_batch(self, orders, columns):
        if orders:
            g.rd_seat_figures = seat_figures(db.session, [o.id for o in orders])
            g.rd_seat_terms = seat_terms(db.session, [o.id for o in orders])
        for order in orders:
            yield [self.export_value(order, c) for c in columns]

    @expose("/buy/", methods=("GET", "POST"))
    def buy_view(self):
        """账号增加: an order for more seats of an edition, then the order page to pay it."""
        form = request.form
        values = {"company_id": form.get("company_id", str(current_user.company_id or "")),
                  "edition": form.get("edition", ""), "quantity": form.get("quantity", ""),
                  "promotion": form.get("promotion", "")}
        if request.method == "POST":
            company = company_in_scope(values["company_id"])
            with unit_of_work() as work:
                claimed = claim_form("seat_order")
                if company is None:
                    raise DomainError(_l("Choose one of your companies."))
                order = create_seat_order(db.session, current_user, company, values["edition"], values["quantity"],
                                          values["promotion"])
                number, total, currency = order.number, order.total, order.currency
                remember(claimed, url_for("renewal_center.order_view", number=number) if _order_pages()
                         else self.get_url(".index_view"))
            again = work.already_done(self.get_url(".index_view"))
            if again:
                return again
            if not work.failed:
                flash(_("Order %(number)s created: %(total)s %(currency)s. Pay it to add the seats.",
                        number=number, total=format_amount(total, currency), currency=currency), "success")
                if _order_pages():
                    return redirect(url_for("renewal_center.order_view", number=number))
                return redirect(self.get_url(".index_view"))
        return self.render("renewdesk/seat_buy.html", values=values, companies=_company_choices(),
                           editions=SEAT_EDITIONS, prices=_prices(), terms=_terms(), max_quantity=MAX_SEATS_PER_ORDER,
                           missing=_missing_editions(_catalog_prices()),
                           seat_summary=_seat_summary(), seat_editions=SEAT_EDITIONS,
                           return_url=self.get_url(".index_view"))


# --- sales: seats paid in cash ---------------------------------------------------------------------------

class SeatGrantView(RoleView):
    """Sales enters seats a customer paid in cash: a paid seat order, seats added at once, audited."""

    roles = frozenset({"sales"})

    @expose("/", methods=("GET", "POST"))
    def index(self):
        form = request.form
        values = {key: form.get(key, "") for key in ("company_id", "edition", "quantity", "note", "promotion")}
        if request.method == "POST":
            company = company_in_scope(values["company_id"])
            with unit_of_work() as work:
                remember(claim_form("seat_grant"), url_for(".index"))
                # Paid at once: only at the prices the form showed (the catalog may have changed since).
                check_quote(form.get(QUOTE_FIELD), _catalog_prices(), current_app.config["SECRET_KEY"])
                if company is None:
                    raise DomainError(_l("Choose a company."))
                order = grant_seats(db.session, current_user, company, values["edition"], values["quantity"],
                                    values["note"], date.today(), values["promotion"])
                number = order.number
            again = work.already_done(url_for(".index"))
            if again:
                return again
            if not work.failed:
                flash(_("Order %(number)s entered as paid in cash: %(company)s has the seats now.", number=number,
                        company=company.name), "success")
                return redirect(url_for(".index"))
        recent = db.session.scalars(
            select(Order).where(Order.kind == "seats", Order.payment_method == "cash")
            .options(joinedload(Order.company), joinedload(Order.created_by))
            .order_by(Order.id.desc()).limit(RECENT_GRANTS)
        ).unique().all()
        return self.render("renewdesk/seat_grant.html", values=values, companies=_company_choices(),
                           editions=SEAT_EDITIONS, prices=_prices(), terms=_terms(), recent=recent,
                           missing=_missing_editions(_catalog_prices()),
                           quote_hash=quote_digest(_catalog_prices(), current_app.config["SECRET_KEY"]),
                           figures=seat_figures(db.session, [o.id for o in recent]), max_quantity=MAX_SEATS_PER_ORDER)


def register(admin, customer, sales) -> None:
    """Add organizer accounts and seat orders (customer) and seat grants (sales)."""
    admin.add_view(OrganizerView(MemberAccount, name=_l("Organizer accounts"), category=customer,
                                 endpoint="organizer"))
    admin.add_view(SeatOrderView(name=_l("Seat orders"), category=customer, endpoint="seat_order"))
    admin.add_view(SeatGrantView(name=_l("Grant seats"), category=sales, endpoint="seat_grant"))
