"""客户端 → 充值续费 / 订单记录 / 充值记录, and 财务操作 → 订单管理.

The renewal center lists a company tree's expired and soon-expiring devices a page at a time,
prices a renewal of the chosen length and turns the selected rows into a pending order; the
order page is the confirmation, the pay page takes the balance or sends the payer to the
online provider. Order pages look the order number up through the actor's scope.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.helpers import get_redirect_target
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from actions.permissions import ORDER_AREAS
from actions import ActionResult, DomainError, companies_in_scope, scoped
from actions.money import format_money, typed
from actions.idempotency import remember
from actions.bank_transfers import takes_bank_transfer
from actions.bindings import rebind_choices, rebind_unsold
from actions.dates import renewal_fits
from actions.orders import (
    MAX_MONTHS, approve_refunds, cancel_order, cancel_orders, create_recharge_order, create_renewal_order,
    mark_paid_back_by_hand, order_kind, pay_with_balance, quote_renewal, refuse_if_cash_awaits, refuse_online,
    reject_refund, renewal_price, renewals_awaiting_payment, renewed_until, request_refund, request_refunds,
    scoped_order,
)
from actions.devices import SEARCH_MAX, search_clause
from actions.value_added import (
    create_service_order, offered_packages, preview_ends, preview_services, quote_services, services_of,
)
from actions.wallets import balance_of
from actions.payments import check_method, online_methods
from actions.wallets import InsufficientBalance
from admin_views.base import (
    COUNT_BOUND, BoundedCount, RoleView, ScopedModelView, badge, claim_form, confirm_first, flash_result,
    invoice_status_formatter, label_formatter, local_day_start, parse_row_id, time_cell, unit_of_work,
)
from actions.texts import render as render_stored_text
from admin_views.confirm import Confirmation, ask, confirm_token, is_confirmed
from admin_views.payments import enabled_methods, go_to_pay, provider_label
from admin_views.system import InCompanyTree
from models import (
    CURRENCIES, INVOICE_STATUSES, ORDER_KINDS, ORDER_STATUSES, PAYMENT_METHODS, REFUND_STATUSES, WALLET_CURRENCIES,
    Company, Device, Order, OrderLine, OrderRefund, Package, db,
)

RENEW_ROLES = frozenset({"customer_admin", "tech_support", "finance", "sales"})
MONTH_CHOICES = ("6", "12", "24")
DEFAULT_MONTHS = "12"
WINDOWS = {
    "30": _l("Expired or expiring within 30 days"),
    "expired": _l("Expired"),
    "90": _l("Expired or expiring within 90 days"),
    "all": _l("All devices"),
}
PAGE_SIZES = (20, 50, 100, 500)
MAX_PAGE = 100_000  # keeps OFFSET inside the database's integer range
MAX_DEVICES_PER_ORDER = 1000
MAX_LINES_SHOWN = 500
STATUS_BADGES = {"pending": "warning", "paid": "success", "cancelled": "secondary", "refunded": "info"}


# --- the renewal center ------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceRow:
    """One line of the renewal center: a device, what N months would cost, or why it cannot renew."""

    device: Device
    price: Decimal | None
    new_expires_on: date | None
    problem: str | None
    rebind_to: tuple = ()  # packages on sale a device of a retired package may move to
    awaiting: str | None = None  # the number of the pending renewal order the device is in


def _device_row(device: Device, months: int | None, today: date, choices: dict | None = None,
                awaiting: str | None = None) -> DeviceRow:
    """The row's price and new expiry for display; quote_renewal decides again on submit.

    `choices` maps a currency to the renewal packages on sale in it (for retired packages); `awaiting`
    is the pending renewal order the device is already in (it is paid or cancelled before another)."""
    problem = price = None
    rebind_to = ()
    if awaiting:
        return DeviceRow(device, None, None, _("Awaiting payment in order %(number)s.", number=awaiting),
                         awaiting=awaiting)
    if device.status == "suspended":
        problem = _("Suspended: enable it before renewing.")
    elif device.package is None:
        problem = _("No renewal package bound.")
    elif not device.package.active:
        problem = _("Its package is no longer sold.")
        rebind_to = tuple((choices or {}).get(device.package.currency, ()))
    elif months:
        try:
            price = renewal_price(device.package, months)
        except DomainError as exc:
            problem = str(exc)
    new = None
    if months and renewal_fits(device.expires_on, months, today):
        new = renewed_until(device.expires_on, months, today)
    elif months:
        problem = problem or _("Its expiry date %(date)s cannot be renewed: correct it first.",
                               date=device.expires_on.isoformat())
        price = None
    return DeviceRow(device, price, new, problem, rebind_to)


def package_price_label(package: Package) -> str:
    """"¥5.00 per month", "¥100.00 per year", "¥45.00 per 3 months": what a package costs and for how long."""
    price = format_money(package.amount, package.currency)
    if package.pricing == "per_month":
        return _("%(price)s per month", price=price)
    if package.pricing == "per_year":
        return _("%(price)s per year", price=price)
    return _("%(price)s per %(n)s months", price=price, n=package.term_months)


def parse_months(values) -> tuple[str, str, int | None]:
    """(choice, custom text, months) from a form: 6, 12, 24 or a custom whole number of months."""
    choice = values.get("months", DEFAULT_MONTHS)
    if choice not in MONTH_CHOICES:
        choice = "custom"
    custom = (values.get("custom_months") or "").strip()[:6]
    raw = custom if choice == "custom" else choice
    months = int(raw) if raw.isdecimal() and 1 <= int(raw) <= MAX_MONTHS else None
    return choice, custom, months


def _order_or_404(number: str) -> Order:
    order = scoped_order(db.session, current_user, number)
    if order is None:
        abort(404)
    return order


def order_lines(order: Order, limit: int = MAX_LINES_SHOWN) -> tuple[list[OrderLine], int]:
    """The first `limit` lines of an order (devices and packages loaded), and how many there are."""
    lines = list(db.session.scalars(
        select(OrderLine).options(joinedload(OrderLine.device), joinedload(OrderLine.package))
        .where(OrderLine.order_id == order.id).order_by(OrderLine.id).limit(limit)
    ))
    count = db.session.scalar(select(func.count()).select_from(OrderLine).where(OrderLine.order_id == order.id))
    return lines, count or 0


def _balance(company_id: int, currency: str) -> Decimal:
    """The company's balance in `currency` (zero when it has no wallet yet); read only."""
    return balance_of(db.session, company_id, currency)


class ListArgs(NamedTuple):
    """What a device page of the renewal center was asked for."""
    company: Company | None
    window: str
    choice: str
    custom: str
    months: int | None
    page: int
    page_size: int
    search: str


class RenewalCenterView(RoleView):
    """充值续费: expired and expiring devices → renewal order → confirmation → payment."""

    roles = RENEW_ROLES
    area = "renewals"
    # The order pages serve every kind of order (seats, coins, subscriptions …): open to each area that makes one.
    shared_pages = dict.fromkeys(("order_view", "pay_view", "cancel_view"), ORDER_AREAS)

    @staticmethod
    def scoped_company(value) -> Company | None:
        """The company whose id was submitted, if it is one of the actor's companies."""
        pk = parse_row_id(value)  # past 2**31 PostgreSQL refused the parameter: "not found", not a flash
        if pk is None:
            return None
        return db.session.scalar(scoped(select(Company).where(Company.id == pk), current_user, Company.id))

    def _chosen_company(self, value) -> Company | None:
        """The company to list: the chosen one, else a customer's own (staff must choose)."""
        company = self.scoped_company(value)
        if company is None and str(value or "").strip():
            flash(_("Company #%(id)s is not one of your companies.", id=str(value).strip()[:20]), "error")
        if company is None and not current_user.is_staff:
            company = current_user.company
        return company

    def _conditions(self, company: Company, window: str, today: date, search: str = "") -> list:
        # company_id IN (tree) plus a range on expires_on: the (company_id, expires_on) index.
        conditions = [Device.company_id.in_(company.subtree_ids())]
        if window == "expired":
            conditions.append(Device.expires_on < today)
        elif window != "all":
            conditions.append(Device.expires_on <= today + timedelta(days=int(window)))
        found = search_clause(db.session, search)
        if found is not None:
            conditions.append(found)
        return conditions

    def device_page(self, company: Company, window: str, page: int, page_size: int, today: date,
                    search: str = ""):
        """One page of the company tree's devices by expiry, whether more follow, and the count
        (bounded: "10,000+" beyond). Ids first, by the index; then those rows with their packages."""
        conditions = self._conditions(company, window, today, search)
        ids = list(db.session.scalars(
            select(Device.id).where(*conditions).order_by(Device.expires_on, Device.id)
            .limit(page_size + 1).offset(page * page_size)
        ))
        by_id = {d.id: d for d in db.session.scalars(
            select(Device).options(joinedload(Device.package), joinedload(Device.company))
            .where(Device.id.in_(ids[:page_size]))
        )} if ids else {}
        matching = select(Device.id).where(*conditions).limit(COUNT_BOUND + 1).subquery()
        total = db.session.scalar(select(func.count()).select_from(matching)) or 0
        total = BoundedCount(COUNT_BOUND) if total > COUNT_BOUND else total
        return [by_id[i] for i in ids[:page_size] if i in by_id], len(ids) > page_size, total

    def list_args(self, default_window: str) -> ListArgs:
        """The company, window, months, page and search of a device page's query string (both tabs)."""
        args = request.args
        choice, custom, months = parse_months(args)
        if months is None:
            flash(_("Months: a whole number between 1 and %(max)s.", max=MAX_MONTHS), "error")
        page_size = int(args["page_size"]) if args.get("page_size", "").isdecimal() else PAGE_SIZES[1]
        return ListArgs(
            company=self._chosen_company(args.get("company_id")),
            window=args.get("window") if args.get("window") in WINDOWS else default_window,
            choice=choice, custom=custom, months=months,
            page=min(int(args["page"]), MAX_PAGE) if args.get("page", "").isdecimal() else 0,
            page_size=page_size if page_size in PAGE_SIZES else PAGE_SIZES[1],
            search=(args.get("q") or "").strip()[:SEARCH_MAX],
        )

    @staticmethod
    def posted_devices(company: Company | None, months: int | None, ids: list[str], load) -> list[Device] | None:
        """The ticked devices of an order form (both tabs), read in the user's scope with `load` joined,
        soonest expiry first; None, with the refusal flashed, when the form cannot become an order."""
        if company is None:
            flash(_("Choose one of your companies first."), "error")
            return None
        if months is None:  # the page the form goes back to reads the same months and says so (list_args): once
            return None
        if len(ids) > MAX_DEVICES_PER_ORDER:
            flash(_("At most %(n)s devices per order.", n=MAX_DEVICES_PER_ORDER), "error")
            return None
        clean = sorted({pk for pk in map(parse_row_id, ids) if pk is not None})
        devices = list(db.session.scalars(
            scoped(select(Device).options(joinedload(load)).where(Device.id.in_(clean)),
                   current_user, Device.company_id).order_by(Device.expires_on, Device.id)
        )) if clean else []
        found = {str(d.id) for d in devices}
        missing = [i for i in ids if str(i) not in found]
        if missing:
            flash(_("Not ordered: %(rows)s (not found or outside your companies).",
                    rows=", ".join(f"#{i}" for i in missing[:50])), "error")
            return None
        return devices

    @expose("/")
    def index(self):
        today = date.today()
        company, window, choice, custom, months, page, page_size, search = self.list_args("30")
        rows, has_next, total = [], False, 0
        if company is not None:
            devices, has_next, total = self.device_page(company, window, page, page_size, today, search)
            retired = {d.package.currency for d in devices if d.package is not None and not d.package.active}
            choices = {currency: rebind_choices(db.session, currency) for currency in sorted(retired)}
            waiting = renewals_awaiting_payment(db.session, [d.id for d in devices])
            rows = [_device_row(d, months, today, choices, waiting.get(d.id)) for d in devices]
        # Rows ticked before the renewal length changed stay ticked (at most a page's worth of ids is read).
        ticked = {pk for pk in map(parse_row_id, request.args.getlist("ticked")[:PAGE_SIZES[-1]]) if pk is not None}
        params = {"company_id": company.id if company else "", "window": window, "months": choice,
                  "custom_months": custom, "page_size": page_size, "q": search}
        return self.render(
            "renewdesk/renewal_center.html", company=company, companies=self.company_choices(),
            windows=WINDOWS, window=window, month_choices=MONTH_CHOICES, choice=choice, custom=custom,
            months=months, rows=rows, page=page, page_size=page_size, page_sizes=PAGE_SIZES,
            has_next=has_next, total=total, params=params, today=today, search=search, ticked=ticked,
        )

    def company_choices(self) -> list[tuple[str, str]]:
        return [(str(c.id), "— " * c.depth + c.name) for c in companies_in_scope(db.session, current_user)]

    @expose("/renew/", methods=("POST",))
    def renew_view(self):
        """Renew one row (`only`) or the ticked rows (`rowid`) for the chosen months: a pending order."""
        form = request.form
        choice, custom, months = parse_months(form)
        back = url_for(".index", company_id=form.get("company_id", ""), window=form.get("window", "30"),
                       months=choice, custom_months=custom, q=(form.get("q") or "")[:SEARCH_MAX])
        company = self.scoped_company(form.get("company_id"))
        ids = [form["only"]] if form.get("only") else form.getlist("rowid")
        devices = self.posted_devices(company, months, ids, Device.package)
        if devices is None:
            return redirect(back)
        with unit_of_work() as work:
            claimed = claim_form("renew")
            quote = quote_renewal(db.session, current_user, company, devices, months, date.today())
            order = create_renewal_order(db.session, current_user, quote)
            number = order.number
            remember(claimed, url_for(".order_view", number=number))
        if work.failed:
            return work.already_done(back) or redirect(back)
        return redirect(url_for(".order_view", number=number))

    @expose("/rebind/", methods=("POST",))
    def rebind_view(self):
        """Move one device of a package no longer sold onto the renewal package chosen in its row."""
        form = request.form
        choice, custom, _months = parse_months(form)
        back = url_for(".index", company_id=form.get("company_id", ""), window=form.get("window", "30"),
                       months=choice, custom_months=custom)
        device_id = parse_row_id(form.get("rebind"))
        device = db.session.scalar(scoped(select(Device).where(Device.id == device_id), current_user,
                                          Device.company_id)) if device_id else None
        if device is None:
            flash(_("Device #%(id)s was not found among your devices.", id=str(form.get("rebind", ""))[:20]), "error")
            return redirect(back)
        package_id = parse_row_id(form.get(f"package_{device.id}"))
        package = db.session.get(Package, package_id) if package_id else None
        number = device.number
        try:
            rebind_unsold(db.session, current_user, device, package)
            code = package.code
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(back)
        flash(_("Device %(number)s now renews with package %(code)s.", number=number, code=code), "success")
        return redirect(back)

    # --- 增值服务: value-added packages bought for devices (actions/value_added.py) ----------------

    @expose("/value-added/")
    def value_added_view(self):
        """The company tree's devices with their services; choose an offered package and months to see prices."""
        args = request.args
        today = date.today()
        company, window, choice, custom, months, page, page_size, search = self.list_args("all")
        packages = offered_packages(db.session, company) if company is not None else []
        package = next((p for p in packages if str(p.id) == args.get("package_id")), packages[0] if packages else None)
        devices, has_next, total, services, price = [], False, 0, {}, None
        if company is not None:
            devices, has_next, total = self.device_page(company, window, page, page_size, today, search)
            services = services_of(db.session, [d.id for d in devices])
            if package is not None and months:
                try:
                    price = renewal_price(package, months)
                except DomainError as exc:
                    flash(str(exc), "error")
        ends, new_ends = preview_services(services, [d.id for d in devices], package, months, today)
        params = {"company_id": company.id if company else "", "window": window, "months": choice,
                  "custom_months": custom, "page_size": page_size, "q": search,
                  "package_id": package.id if package else ""}
        return self.render(
            "renewdesk/value_added_center.html", company=company, companies=self.company_choices(),
            windows=WINDOWS, window=window, month_choices=MONTH_CHOICES, choice=choice, custom=custom,
            months=months, devices=devices, services=services, packages=packages, package=package, price=price,
            ends=ends, new_ends=new_ends, page=page, page_size=page_size, page_sizes=PAGE_SIZES, has_next=has_next,
            total=total, params=params, today=today, search=search, price_label=package_price_label,
        )

    @expose("/value-added/order/", methods=("POST",))
    def value_added_order_view(self):
        """The ticked devices × the chosen package and months: a pending 增值订单, then its confirmation page."""
        form = request.form
        choice, custom, months = parse_months(form)
        back = url_for(".value_added_view", company_id=form.get("company_id", ""), window=form.get("window", "all"),
                       months=choice, custom_months=custom, q=(form.get("q") or "")[:SEARCH_MAX],
                       package_id=form.get("package_id", ""))
        company = self.scoped_company(form.get("company_id"))
        devices = self.posted_devices(company, months, form.getlist("rowid"), Device.company)
        if devices is None:
            return redirect(back)
        package_id = parse_row_id(form.get("package_id"))
        package = db.session.get(Package, package_id) if package_id else None
        with unit_of_work() as work:
            claimed = claim_form("value_added")
            quote = quote_services(db.session, current_user, company, devices, package, months, date.today())
            order = create_service_order(db.session, current_user, quote)
            number = order.number
            remember(claimed, url_for(".order_view", number=number))
        if work.failed:
            return work.already_done(back) or redirect(back)
        return redirect(url_for(".order_view", number=number))

    @expose("/order/<number>/")
    def order_view(self, number: str):
        """The order: for a pending one the confirmation (devices, months, prices, new expiries)."""
        order = _order_or_404(number)
        lines, line_count = order_lines(order)
        today = date.today()
        if order.kind == "value_added":
            ends = preview_ends(db.session, order, lines, today)
            return self.render("renewdesk/order.html", order=order, lines=lines, line_count=line_count,
                               expiries={k: new for k, (_old, new) in ends.items()},
                               old_expiries={k: old for k, (old, _new) in ends.items()}, kinds=ORDER_KINDS,
                               statuses=ORDER_STATUSES, methods=PAYMENT_METHODS, status_badges=STATUS_BADGES)
        expiries = {
            line.id: (line.new_expires_on if order.status != "pending" or line.device is None or not line.months
                      else renewed_until(line.device.expires_on, line.months, today)
                      if renewal_fits(line.device.expires_on, line.months, today) else None)
            for line in lines
        }
        return self.render("renewdesk/order.html", order=order, lines=lines, line_count=line_count,
                           expiries=expiries, kinds=ORDER_KINDS, statuses=ORDER_STATUSES,
                           methods=PAYMENT_METHODS, status_badges=STATUS_BADGES)

    @expose("/order/<number>/pay/", methods=("GET", "POST"))
    def pay_view(self, number: str):
        """Choose how to pay: the company's balance (not for a recharge) or an online provider."""
        order = _order_or_404(number)
        order_page = url_for(".order_view", number=order.number)
        if order.status != "pending":
            flash(_("Order %(number)s is not awaiting payment (it is %(status)s).", number=order.number,
                    status=ORDER_STATUSES[order.status]), "error")
            return redirect(order_page)
        try:
            refuse_if_cash_awaits(db.session, order)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(order_page)
        online_refused = None
        try:
            refuse_online(db.session, order)
            methods = online_methods(order.currency, enabled_methods())
        except DomainError as exc:  # e.g. a service sold offline: its balance (and cash to sales) only
            methods, online_refused = (), str(exc)
        balance_allowed = order_kind(order.kind).balance_pays
        transfer_allowed = takes_bank_transfer(current_user, order)
        if request.method == "POST":
            method = request.form.get("method", "")
            if method == "bank_transfer" and transfer_allowed:  # 第二步: 上传转账电子回单
                return redirect(url_for("bank_transfer.upload", order=order.number))
            if method == "balance":
                number, total, currency = order.number, order.total, order.currency
                with unit_of_work() as work:
                    remember(claim_form("pay"), order_page)
                    pay_with_balance(db.session, current_user, order, date.today())
                if isinstance(work.error, InsufficientBalance):
                    return redirect(url_for(".pay_view", number=number))
                if work.failed:
                    return redirect(order_page)
                flash(_("Order %(number)s is paid: %(amount)s from the balance.",
                        number=number, amount=format_money(total, currency)), "success")
                return redirect(order_page)
            try:
                check_method(method, order.currency, enabled_methods())
                refuse_online(db.session, order)
            except DomainError as exc:
                flash(str(exc), "error")
                return redirect(url_for(".pay_view", number=order.number))
            return go_to_pay(order, method)
        balance = _balance(order.company_id, order.currency) if balance_allowed else None
        return self.render(
            "renewdesk/order_pay.html", order=order, methods=methods, labels=PAYMENT_METHODS,
            provider_label=provider_label, balance_allowed=balance_allowed, balance=balance,
            transfer_allowed=transfer_allowed, online_refused=online_refused,
            missing=(order.total - balance) if balance is not None and balance < order.total else None,
            kinds=ORDER_KINDS,
        )

    @expose("/order/<number>/cancel/", methods=("POST",))
    def cancel_view(self, number: str):
        order = _order_or_404(number)
        number = order.number
        purpose = f"{self.endpoint}.cancel"
        if order.status == "pending" and not is_confirmed(purpose, [order.id]):
            return ask(self, describe_cancel(self, [order]), purpose, [order.id],
                       url_for(".order_view", number=number))
        with unit_of_work() as work:
            cancel_order(db.session, current_user, order)
        if not work.failed:
            flash(_("Order %(number)s is cancelled.", number=number), "success")
        return redirect(url_for(".order_view", number=number))


def order_label(order: Order) -> str:
    """An order as a confirmation page names it: number, kind, company and total."""
    return (f"{order.number} · {ORDER_KINDS.get(order.kind, order.kind)} · {order.company.name} · "
            f"{format_money(order.total, order.currency)}")


def describe_cancel(view, orders) -> Confirmation | None:
    """The confirmation of cancelling `orders`: each pending one named with its total; the others apart."""
    pending = [o for o in orders if o.status == "pending"]
    if not pending:
        return None  # the action names each one as not awaiting payment
    if len(pending) == 1:
        order = pending[0]
        title = _("Cancel order %(number)s", number=order.number)
        summary = _("Cancel order %(number)s of %(company)s, %(amount)s, which awaits payment:", number=order.number,
                    company=order.company.name, amount=format_money(order.total, order.currency))
    else:
        title = _("Cancel orders")
        summary = _("Cancel %(count)s orders that await payment:", count=len(pending))
    return Confirmation(
        title=title, summary=summary, items=[order_label(o) for o in pending],
        note=_("No money moves: nothing was paid for these orders, and nothing is taken from the balance. A cancelled "
               "order cannot be paid any more and its devices are not renewed; place a new order if needed."),
        confirm_label=_("Cancel %(count)s orders", count=len(pending)) if len(pending) > 1 else _("Cancel the order"),
        refused=[_("%(order)s: not awaiting payment (%(status)s)", order=o.number,
                   status=ORDER_STATUSES.get(o.status, o.status)) for o in orders if o.status != "pending"],
    )


# --- order lists -----------------------------------------------------------------------------------

def _number_cell(view, context, model, name):
    if not view.order_links:
        return model.number
    return Markup('<a href="{}">{}</a>').format(url_for("renewal_center.order_view", number=model.number),
                                                model.number)


def _status_cell(view, context, model, name):
    """The status badge; a pending order of a customer list gets its "pay" link."""
    cell = badge(str(ORDER_STATUSES.get(model.status, model.status)), STATUS_BADGES.get(model.status, "secondary"))
    if view.order_links and model.status == "pending":
        cell += Markup(' <a class="btn btn-sm btn-primary py-0 rd-pay" href="{}">{}</a>').format(
            url_for("renewal_center.pay_view", number=model.number), _("Pay"))
    return cell


class CreatedBetween(sqla_filters.DateBetweenFilter):
    """Created on one of the days (in the reader's zone) from the first to the last, both included."""

    def apply(self, query, value, alias=None):
        start, end = value
        return query.filter(Order.created_at >= local_day_start(start),
                            Order.created_at < local_day_start(end + timedelta(days=1)))


class CreatedFrom(sqla_filters.DateGreaterFilter):
    def apply(self, query, value, alias=None):
        return query.filter(Order.created_at >= local_day_start(value))

    def operation(self):
        return _l("on or after")


class CreatedBefore(sqla_filters.DateSmallerFilter):
    def apply(self, query, value, alias=None):
        return query.filter(Order.created_at < local_day_start(value))

    def operation(self):
        return _l("before")


def _order_filters(kinds) -> tuple:
    created = _l("Created")
    return (
        InCompanyTree(Order.company_id, _l("Company"), Order.company_id),
        CreatedBetween(Order.created_at, created),
        CreatedFrom(Order.created_at, created),
        CreatedBefore(Order.created_at, created),
        sqla_filters.FilterEqual(Order.status, _l("Status"), options=list(ORDER_STATUSES.items())),
        sqla_filters.FilterEqual(Order.payment_method, _l("Payment method"), options=list(PAYMENT_METHODS.items())),
        sqla_filters.FilterEqual(Order.currency, _l("Currency"), options=list(WALLET_CURRENCIES.items())),
    ) + ((sqla_filters.FilterEqual(Order.kind, _l("Order type"), options=[(k, ORDER_KINDS[k]) for k in kinds]),)
         if len(kinds) > 1 else ())


ORDER_LABELS = {
    "number": _l("Order number"), "kind": _l("Order type"), "company": _l("Company"), "status": _l("Status"),
    "currency": _l("Currency"), "total": _l("Total"), "payment_method": _l("Payment method"),
    "provider_ref": _l("Transaction id"), "invoice_status": _l("Invoice"), "created_by": _l("Created by"),
    "created_at": _l("Created"), "paid_at": _l("Paid at"), "cancelled_at": _l("Cancelled at"),
    "refunded_at": _l("Refunded at"), "note": _l("Note"),
}
_LABEL_FORMATTERS = {
    "kind": label_formatter(ORDER_KINDS),
    "note": lambda v, c, m, n: render_stored_text(m.note_data, m.note),
    "payment_method": lambda v, c, m, n: str(PAYMENT_METHODS.get(m.payment_method, "")) if m.payment_method else "",
}


# On screen times read to the minute; exports keep them typed.
_TIME_FORMATTERS = {name: time_cell for name in ("created_at", "paid_at", "cancelled_at", "refunded_at")}


class OrderListView(ScopedModelView):
    """An order list: filters, search by order number, details with lines, streamed export."""

    scope_column = "company_id"
    audit_name = "order"
    kinds: tuple[str, ...] = tuple(ORDER_KINDS)
    order_links = False  # customer lists link to the order page and offer "pay"
    can_create = can_edit = can_delete = False
    can_export = True
    column_list = ("number", "kind", "company", "status", "currency", "total", "payment_method",
                   "created_at", "paid_at")
    column_export_list = column_list
    column_details_list = ("number", "kind", "company", "status", "currency", "total", "payment_method",
                           "provider_ref", "invoice_status", "created_by", "created_at", "paid_at",
                           "cancelled_at", "refunded_at", "note")
    column_labels = ORDER_LABELS
    column_default_sort = ("created_at", True)
    column_sortable_list = ("number", "kind", ("company", "company.name"), "status", "currency", "total",
                            "payment_method", "created_at", "paid_at")
    column_searchable_list = ("number",)
    column_select_related_list = (Order.company,)
    column_formatters = {**_LABEL_FORMATTERS, **_TIME_FORMATTERS, "number": _number_cell, "status": _status_cell}
    column_formatters_export = {**_LABEL_FORMATTERS, "status": label_formatter(ORDER_STATUSES)}
    column_formatters_detail = {**_LABEL_FORMATTERS, **_TIME_FORMATTERS, "status": label_formatter(ORDER_STATUSES),
                                "invoice_status": invoice_status_formatter()}
    details_template = "renewdesk/order_details.html"
    page_size_options = (20, 50, 100, 500)

    def extra_filters(self) -> tuple:
        """Filters a subclass offers beside the common ones (new objects for each view)."""
        return ()

    def __init__(self, *args, **kwargs):
        self.column_filters = _order_filters(self.kinds) + self.extra_filters()
        super().__init__(Order, *args, **kwargs)

    def search_placeholder(self):
        return _("Order number")

    def get_query(self):
        return super().get_query().filter(Order.kind.in_(self.kinds))

    def get_count_query(self):
        return super().get_count_query().filter(Order.kind.in_(self.kinds))

    @expose("/details/")
    def details_view(self):
        order = self.get_one(request.args.get("id"))
        if order is not None:
            lines, count = order_lines(order)
            self._template_args.update(lines=lines, line_count=count, order_links=self.order_links)
        return super().details_view()


class CustomerOrderView(OrderListView):
    """A customer's own orders: "pay" on pending ones, and cancel."""

    roles = frozenset({"customer_admin"})
    area = "orders"
    order_links = True

    @action("cancel", _l("Cancel"))
    @confirm_first(describe_cancel)
    def action_cancel(self, ids):
        orders = self.scoped_rows(ids)
        with unit_of_work() as work:
            result = cancel_orders(db.session, current_user, orders)
        if work.failed:
            return
        flash_result(ActionResult(result.changed, tuple(self.refused_ids(ids, orders)) + result.refused),
                     _("%(count)s orders cancelled."))


class OrderRecordView(CustomerOrderView):
    """订单记录: the company tree's orders of every kind, paid or not (seed 001's recharges, renewals and
    value-added orders; seed 000's 订单管理 → "vip/奥币" + 未付款 → 支付 finds coin purchases here too), as
    finance's 订单管理 lists them and as the home page's "orders awaiting payment" counts them."""


class RechargeRecordView(CustomerOrderView):
    """充值记录: top-ups of the company tree's wallets, paid and pending; "top up" starts one."""

    kinds = ("recharge",)
    # An approved 线下充值 is a paid recharge too (payment method "offline"): its note names the application,
    # the payer and the reference.
    column_list = ("number", "company", "status", "currency", "total", "payment_method", "note", "created_at",
                   "paid_at")
    column_export_list = column_list
    list_template = "renewdesk/recharge_list.html"

    @expose("/top-up/", methods=("GET", "POST"))
    def top_up_view(self):
        """余额充值: choose the company and currency, type the amount, then pay online."""
        companies = list(companies_in_scope(db.session, current_user))
        form = request.form
        company_id = form.get("company_id") or str(current_user.company_id or "")
        currency = form.get("currency", "CNY")
        amount = form.get("amount", "").strip()[:40]
        if request.method == "POST":
            company = next((c for c in companies if str(c.id) == company_id), None)
            if company is None:
                flash(_("Company: choose one of your companies."), "error")
            elif currency not in CURRENCIES:
                flash(_("Currency: choose one of %(currencies)s.",
                        currencies=", ".join(str(label) for label in CURRENCIES.values())), "error")
            else:
                with unit_of_work() as work:
                    claimed = claim_form("recharge")
                    order = create_recharge_order(db.session, current_user, company, currency, amount)
                    number = order.number
                    remember(claimed, url_for("renewal_center.pay_view", number=number))
                again = work.already_done(self.get_url(".index_view"))
                if again:
                    return again
                if not work.failed:
                    return redirect(url_for("renewal_center.pay_view", number=number))
        return self.render(
            "renewdesk/top_up.html", companies=companies, company_id=company_id, currencies=CURRENCIES,
            currency=currency, amount=amount, example=typed(Decimal("100.00")),
            methods={c: [PAYMENT_METHODS[m] for m in online_methods(c, enabled_methods())] for c in CURRENCIES},
        )


class OrderManagementView(OrderListView):
    """订单管理 (finance): every company's orders; refund after a confirmation page."""

    roles = frozenset({"finance"})
    # 未开票订单 (seed 000): finance sees and filters each order's invoice status, and exports it.
    column_list = ("number", "kind", "company", "status", "currency", "total", "payment_method", "invoice_status",
                   "created_at", "paid_at", "note")
    column_export_list = column_list
    column_formatters = {**OrderListView.column_formatters, "invoice_status": invoice_status_formatter()}
    column_formatters_export = {**OrderListView.column_formatters_export,
                                "invoice_status": invoice_status_formatter()}

    def extra_filters(self) -> tuple:
        return (sqla_filters.FilterEqual(Order.invoice_status, _l("Invoice"), options=list(INVOICE_STATUSES.items())),)

    @action("refund", _l("Refund"))
    def action_refund(self, ids):
        orders = self.scoped_rows(ids)
        refused = self.refused_ids(ids, orders)
        if refused:
            flash_result(ActionResult((), tuple(refused)), "")
        if not orders:
            flash(_("Select at least one order."), "error")
            return None
        totals: dict[str, Decimal] = {}
        for order in orders:
            totals[order.currency] = totals.get(order.currency, Decimal(0)) + order.total - order.refunded
        return self.render(
            "renewdesk/refund_confirm.html", orders=orders, totals=sorted(totals.items()),
            kinds=ORDER_KINDS, statuses=ORDER_STATUSES, methods=PAYMENT_METHODS,
            return_url=get_redirect_target() or self.get_url(".index_view"),
            # the page asks for the reason: the token covers the orders only
            confirm_token=confirm_token(f"{self.endpoint}.refund", [o.id for o in orders], fields=()),
        )

    @expose("/refund/", methods=("POST",))
    def refund_view(self):
        """The confirmed request: a refund of each listed order's remaining lines, for another person to approve."""
        ids = request.form.getlist("rowid")
        return_url = get_redirect_target() or self.get_url(".index_view")
        orders = self.scoped_rows(ids)
        if not orders:
            flash(_("Select at least one order."), "error")
            return redirect(return_url)
        if not is_confirmed(f"{self.endpoint}.refund", [o.id for o in orders], fields=()):
            return self.action_refund(ids)  # the confirmation page, again
        with unit_of_work() as work:
            remember(claim_form("refund"), return_url)
            result = request_refunds(db.session, current_user, orders, request.form.get("reason", "").strip())
        if work.failed:
            return work.already_done(return_url) or redirect(return_url)
        flash_result(ActionResult(result.changed, tuple(self.refused_ids(ids, orders)) + result.refused),
                     _("%(count)s refunds requested; another finance user approves them under Refunds."))
        return redirect(return_url)

    @expose("/refund-lines/", methods=("POST",))
    def refund_lines_view(self):
        """A refund of the lines ticked on an order's page (partial refund), for another person to approve."""
        order = self.get_one(request.form.get("id"))
        if order is None:
            abort(404)
        line_ids = [i for i in (parse_row_id(v) for v in request.form.getlist("line")) if i is not None]
        back = self.get_url(".details_view", id=order.id, url=get_redirect_target() or None)  # and on to the list
        if not line_ids:
            flash(_("Tick at least one line to refund."), "error")
            return redirect(back)
        purpose = f"{self.endpoint}.refund_lines.{order.id}"
        if not is_confirmed(purpose, line_ids):
            lines = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id,
                                                               OrderLine.id.in_(line_ids)).order_by(OrderLine.id)).all()
            return ask(self, Confirmation(
                title=_("Request a refund"),
                summary=_("Request a refund of %(count)s lines of order %(number)s of %(company)s:", count=len(lines),
                          number=order.number, company=order.company.name),
                items=[f"{render_stored_text(line.description_data, line.description)} · "
                       f"{format_money(line.net, order.currency)}" for line in lines],
                note=_("Another finance user approves it under Refunds; only then is the money paid back."),
                confirm_label=_("Request the refund")), purpose, line_ids, back)
        try:
            refund = request_refund(db.session, current_user, order, line_ids, request.form.get("reason", "").strip())
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(back)
        amount = format_money(refund.amount, order.currency)
        db.session.commit()
        flash(_("Refund of %(amount)s requested for %(number)s; another finance user approves it under Refunds.",
                amount=amount, number=order.number), "success")
        return redirect(back)


REFUND_LABELS = {
    "id": _l("Refund"), "order": _l("Order number"), "order.company": _l("Company"), "status": _l("Status"),
    "amount": _l("Amount"), "reason": _l("Reason"), "requested_by": _l("Requested by"),
    "approved_by": _l("Reviewed by"), "created_at": _l("Requested at"), "approved_at": _l("Reviewed at"),
    "completed_at": _l("Refunded at"), "provider_refund_id": _l("Provider refund id"),
    "failure_reason": _l("Reason or note"),
}


class RefundView(ScopedModelView):
    """退款审核 (finance): refunds others requested; approving gives the money back, once."""

    roles = frozenset({"finance"})
    audit_name = "order_refund"
    details_template = "renewdesk/refund_details.html"
    can_create = can_edit = can_delete = False
    can_export = True
    column_list = ("id", "order", "order.company", "status", "amount", "reason", "requested_by", "created_at",
                   "approved_by", "approved_at")
    column_export_list = (*column_list, "completed_at", "provider_refund_id", "failure_reason")
    column_details_list = ("id", "order", "order.company", "status", "amount", "reason", "requested_by",
                           "created_at", "approved_by", "approved_at", "completed_at", "provider_refund_id",
                           "failure_reason")
    column_labels = REFUND_LABELS
    column_default_sort = [("created_at", True), ("id", True)]
    column_sortable_list = ("id", "status", "amount", "created_at", "approved_at")
    column_select_related_list = (OrderRefund.order,)
    column_filters = (sqla_filters.FilterEqual(OrderRefund.status, _l("Status"),
                                               options=list(REFUND_STATUSES.items())),)
    column_formatters = {"status": label_formatter(REFUND_STATUSES), "created_at": time_cell,
                         "approved_at": time_cell, "completed_at": time_cell}
    column_formatters_export = {"status": label_formatter(REFUND_STATUSES)}

    def __init__(self, *args, **kwargs):
        super().__init__(OrderRefund, *args, **kwargs)

    @action("approve", _l("Approve and refund"))
    def action_approve(self, ids):
        refunds = self.scoped_rows(ids)
        if not refunds:
            flash(_("Select at least one refund."), "error")
            return None
        return self.render("renewdesk/refund_approve.html", refunds=refunds,
                           return_url=get_redirect_target() or self.get_url(".index_view"),
                           confirm_token=confirm_token(f"{self.endpoint}.approve", [r.id for r in refunds], fields=()))

    @expose("/approve/", methods=("POST",))
    def approve_view(self):
        """The confirmed approval: each refund is carried out or named with the reason it is not."""
        ids = request.form.getlist("rowid")
        return_url = get_redirect_target() or self.get_url(".index_view")
        refunds = self.scoped_rows(ids)
        if refunds and not is_confirmed(f"{self.endpoint}.approve", [r.id for r in refunds], fields=()):
            return self.action_approve(ids)  # the confirmation page, again
        try:
            result = approve_refunds(db.session, current_user, refunds, date.today())
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(return_url)
        db.session.commit()
        flash_result(ActionResult(result.changed, tuple(self.refused_ids(ids, refunds)) + result.refused),
                     _("%(count)s refunds approved and paid back."))
        return redirect(return_url)

    @expose("/reject/", methods=("POST",))
    def reject_view(self):
        """Reject one requested refund with a reason."""
        refund = self.get_one(request.form.get("id"))
        if refund is None:
            abort(404)
        return_url = get_redirect_target() or self.get_url(".index_view")
        reason = request.form.get("reason", "").strip()
        purpose = f"{self.endpoint}.reject"
        if refund.status == "requested" and reason and not is_confirmed(purpose, [refund.id]):
            return ask(self, Confirmation(
                title=_("Reject refund #%(id)s", id=refund.id),
                summary=_("Reject the refund of %(amount)s for order %(number)s of %(company)s: no money is paid "
                          "back.", amount=format_money(refund.amount, refund.order.currency),
                          number=refund.order.number, company=refund.order.company.name),
                items=[_("Reason: %(reason)s", reason=reason)],
                confirm_label=_("Reject the refund")), purpose, [refund.id], return_url)
        try:
            reject_refund(db.session, current_user, refund, request.form.get("reason", ""))
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(return_url)
        db.session.commit()
        flash(_("Refund rejected."), "success")
        return redirect(return_url)

    @action("check", _l("Ask the provider where the money is"))
    def action_check(self, ids):
        """Refunds a provider accepted but had not paid out ("on its way"): ask it now and record the answer."""
        from actions.provider_settlement import check_refunds

        refunds = self.scoped_rows(ids)
        providers = current_app.extensions["renewdesk_payments"].adapters
        check = check_refunds(db.session, providers, refunds)
        db.session.commit()
        if check.completed:
            flash(_("Paid out: %(refunds)s.", refunds=", ".join(check.completed)), "success")
        if check.processing:
            flash(_("Still on its way: %(refunds)s.", refunds=", ".join(check.processing)), "info")
        for label, reason in check.not_paid_out:
            flash(_("Not paid out by the provider: %(refund)s: %(reason)s Pay it back another way, then record how "
                    "on its page.", refund=label, reason=reason), "error")
        for label, reason in check.failed + self.refused_ids(ids, refunds):
            flash(_("%(refund)s: %(reason)s", refund=label, reason=reason), "error")
        return None

    @expose("/by-hand/", methods=("POST",))
    def by_hand_view(self):
        """Finance paid a refund the provider did not pay out back by hand: say how, then it is completed."""
        refund = self.get_one(request.form.get("id"))
        if refund is None:
            abort(404)
        return_url = get_redirect_target() or self.get_url(".details_view", id=refund.id)
        note = request.form.get("note", "")
        purpose = f"{self.endpoint}.by_hand"
        if refund.status == "not_paid_out" and note.strip() and not is_confirmed(purpose, [refund.id]):
            return ask(self, Confirmation(
                title=_("Refund #%(id)s paid back by hand", id=refund.id),
                summary=_("%(amount)s of order %(number)s of %(company)s reached the payer outside Renewdesk: the "
                          "refund is completed.", amount=format_money(refund.amount, refund.order.currency),
                          number=refund.order.number, company=refund.order.company.name),
                items=[_("How it was paid back: %(note)s", note=note.strip())],
                confirm_label=_("Mark it paid back")), purpose, [refund.id], return_url)
        try:
            mark_paid_back_by_hand(db.session, current_user, refund, note)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(return_url)
        db.session.commit()
        flash(_("Refund marked paid back by hand."), "success")
        return redirect(return_url)


def register(admin, customer, finance) -> None:
    """Add the renewal center, recharge and order views."""
    admin.add_view(RenewalCenterView(name=_l("Renewal center"), category=customer, endpoint="renewal_center"))
    admin.add_view(OrderRecordView(name=_l("Order records"), category=customer, endpoint="order_record"))
    admin.add_view(RechargeRecordView(name=_l("Recharge records"), category=customer, endpoint="recharge_record"))
    admin.add_view(OrderManagementView(name=_l("Order management"), category=finance,
                                       endpoint="order_management"))
    admin.add_view(RefundView(name=_l("Refunds"), category=finance))
