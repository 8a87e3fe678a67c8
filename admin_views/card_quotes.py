"""销售报价: the list (filters, search, export), the draft form with its lines, the quote's page with Send /
Accept / Decline / Cancel / Print. Thin views over actions.card_quotes.

Distributors' administrators see their company tree's quotes (DistributorAccess, scope by seller);
platform sales see all. Accepting, declining and cancelling are final: each asks on a page of its own.
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from actions import DomainError, companies_in_scope
from actions.card_orders import sellers_in_scope
from actions.card_quotes import (
    DEFAULT_VALIDITY_DAYS, LineInput, accept_quote, cancel_quote, decline_quote, expire_quotes, quote_orders,
    save_quote, send_quote,
)
from actions.idempotency import remember
from actions.money import typed as typed_amount
from admin_views.base import ScopedModelView, badge, claim_form, label_formatter, unit_of_work
from admin_views.cards import DistributorAccess, int_arg
from admin_views.confirm import Confirmation, ask, is_confirmed
from models import (
    CARD_QUOTE_STATUSES, ORDER_STATUSES, WALLET_CURRENCIES, CardCustomer, CardQuote, Package, db,
)

STATUS_BADGES = {"draft": "secondary", "sent": "info", "accepted": "success", "declined": "dark",
                 "expired": "warning", "cancelled": "light"}
BLANK_LINES = 3  # empty rows under a new quote's lines (more are added on the page)


def _status_cell(view, context, model, name):
    return badge(str(CARD_QUOTE_STATUSES.get(model.status, model.status)), STATUS_BADGES.get(model.status, "secondary"))


def _status_text(view, context, model, name):
    return str(CARD_QUOTE_STATUSES.get(model.status, model.status))


class CardQuoteView(DistributorAccess, ScopedModelView):
    """Quotes of the actor's distributors: drafts are edited, sent ones accepted (into card orders) or declined."""

    roles = frozenset({"sales"})
    area = "quotes"
    scope_column = "seller_company_id"
    can_create = can_edit = True
    can_delete = False
    can_export = True
    export_types = ["xlsx", "csv"]
    column_list = ("number", "seller", "customer_name", "total", "valid_until", "status", "created_at")
    column_details_list = ("number", "status", "seller", "customer_name", "customer_phone", "customer_address",
                           "total", "valid_until", "note", "created_by", "created_at", "sent_at", "closed_at")
    column_export_list = ("number", "seller", "customer_name", "customer_phone", "total", "currency", "valid_until",
                          "status", "created_at")
    column_labels = {"number": _l("Quote number"), "seller": _l("Distributor"), "customer_name": _l("Customer"),
                     "customer_phone": _l("Phone number"), "customer_address": _l("Address"), "total": _l("Total"),
                     "currency": _l("Currency"), "valid_until": _l("Valid until"), "status": _l("Status"),
                     "note": _l("Note"), "created_by": _l("Created by"), "created_at": _l("Created"),
                     "sent_at": _l("Sent at"), "closed_at": _l("Closed")}
    column_formatters = {"status": _status_cell}
    column_formatters_export = {"status": _status_text, "seller": lambda v, c, m, n: m.seller.name,
                                "currency": label_formatter(WALLET_CURRENCIES)}
    column_filters = (sqla_filters.FilterEqual(CardQuote.status, _l("Status"), options=[
                          (code, label) for code, label in CARD_QUOTE_STATUSES.items()]),
                      sqla_filters.FilterLike(CardQuote.customer_name, _l("Customer")),
                      "created_at", "valid_until")
    column_searchable_list = ("number", "customer_name", "customer_phone")
    column_select_related_list = (CardQuote.seller,)
    column_default_sort = ("id", True)
    details_template = "renewdesk/cards/quote_details.html"

    def _sellers(self):
        """The actor's verified distributors (a quote is sold by one)."""
        return sellers_in_scope(db.session, current_user)

    def _expire_due(self) -> None:
        """Lazily: sent quotes past their day read expired (the cron command does the same for every seller)."""
        with unit_of_work(flash_error=False):
            sellers = None if current_user.is_staff else [c.id for c in companies_in_scope(db.session, current_user)]
            expire_quotes(db.session, date.today(), sellers)

    @expose("/")
    def index_view(self):
        self._expire_due()
        return super().index_view()

    def _form_page(self, quote: CardQuote | None):
        sellers = self._sellers()
        packages = db.session.scalars(select(Package).where(Package.kind == "card", Package.active)
                                      .order_by(Package.code)).all()
        customers = db.session.scalars(select(CardCustomer).where(
            CardCustomer.company_id.in_([c.id for c in sellers])).order_by(CardCustomer.name)).all()
        back = request.args.get("url") or url_for(".index_view")
        if request.method == "POST":
            form = request.form
            seller = next((c for c in sellers if c.id == int_arg("seller_id")), None)
            lines = _typed_lines(form, {p.id: p for p in packages})
            with unit_of_work() as work:  # a new quote's form sent twice makes one quote
                claimed = claim_form("card_quote") if quote is None else None
                if seller is None:
                    raise DomainError(_l("Choose a verified distributor."))
                quote = save_quote(
                    db.session, current_user, quote=quote, seller=seller,
                    customer=next((c for c in customers if c.id == int_arg("customer_id")), None),
                    customer_name=form.get("customer_name", ""), customer_phone=form.get("customer_phone", ""),
                    customer_address=form.get("customer_address", ""), note=form.get("note", ""),
                    valid_until=_day(form.get("valid_until", "")), lines=lines, today=date.today())
                number, quote_id = quote.number, quote.id
                remember(claimed, url_for(".details_view", id=quote_id))
            again = work.already_done(url_for(".index_view"))
            if again:
                return again
            if not work.failed:
                flash(_("Quote %(number)s saved.", number=number), "success")
                return redirect(url_for(".details_view", id=quote_id))
            sent, rows = form, _typed_rows(form)
        elif quote is not None:
            sent = {"seller_id": str(quote.seller_company_id), "customer_id": str(quote.customer_id or ""),
                    "customer_name": quote.customer_name, "customer_phone": quote.customer_phone,
                    "customer_address": quote.customer_address, "valid_until": quote.valid_until.isoformat(),
                    "note": quote.note}
            rows = [{"package_id": str(line.package_id), "quantity": str(line.quantity),
                      "unit_price": typed_amount(line.unit_price),
                      "discount_percent": typed_amount(line.discount_percent) if line.discount_bp else ""}
                     for line in quote.lines]
        else:  # a new quote is valid for DEFAULT_VALIDITY_DAYS unless the seller says otherwise
            sent, rows = {"valid_until": (date.today() + timedelta(days=DEFAULT_VALIDITY_DAYS)).isoformat()}, []
        rows = rows + [{}] * max(BLANK_LINES - len(rows), 1)
        return self.render("renewdesk/cards/quote_form.html", quote=quote, sellers=sellers, packages=packages,
                           customers=customers, sent=sent, rows=rows, back_url=back)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        return self._form_page(None)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        quote = self.get_one(request.values.get("id", ""))
        if quote is None:
            abort(404)
        if quote.status != "draft":
            flash(_("Quote %(number)s is %(status)s: only a draft can be edited.", number=quote.number,
                    status=CARD_QUOTE_STATUSES[quote.status]), "error")
            return redirect(url_for(".details_view", id=quote.id))
        return self._form_page(quote)

    @expose("/details/")
    def details_view(self):
        quote = self.get_one(request.args.get("id", ""))
        if quote is None:
            abort(404)
        self._template_args.update(quote=quote, orders=quote_orders(db.session, quote), statuses=CARD_QUOTE_STATUSES,
                                   order_statuses=ORDER_STATUSES, today=date.today())
        return super().details_view()

    @expose("/print/")
    def print_view(self):
        quote = self.get_one(request.args.get("id", ""))
        if quote is None:
            abort(404)
        return self.render("renewdesk/cards/quote_print.html", quote=quote, statuses=CARD_QUOTE_STATUSES)

    @expose("/state/", methods=("POST",))
    def state_view(self):
        """Send, accept, decline or cancel one quote; the final ones ask first."""
        quote = self.get_one(request.form.get("id", ""))
        if quote is None:
            abort(404)
        to = request.form.get("to", "")
        if to not in ("sent", "accepted", "declined", "cancelled"):
            abort(400)
        page = url_for(".details_view", id=quote.id)
        purpose = f"card_quote.{to}"
        if to != "sent" and not is_confirmed(purpose, [quote.id]):
            return ask(self, _confirmation(quote, to), purpose, [quote.id], page)
        number = quote.number
        with unit_of_work() as work:
            if to == "sent":
                send_quote(db.session, current_user, quote, date.today())
            elif to == "accepted":
                orders = [o.order.number for o in accept_quote(db.session, current_user, quote, date.today())]
            elif to == "declined":
                decline_quote(db.session, current_user, quote)
            else:
                cancel_quote(db.session, current_user, quote)
        if not work.failed:
            if to == "accepted":
                flash(_("Quote %(number)s accepted: orders %(orders)s await payment.", number=number,
                        orders=", ".join(orders)), "success")
            else:
                flash(_("Quote %(number)s: %(status)s.", number=number, status=CARD_QUOTE_STATUSES[to]), "success")
        return redirect(page)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _confirmation(quote: CardQuote, to: str) -> Confirmation:
    lines = [f"{line.package.code} {line.package.name} × {line.quantity}" for line in quote.lines]
    if to == "accepted":
        return Confirmation(title=_("Accept quote %(number)s", number=quote.number),
                            summary=_("The customer %(customer)s accepted: each line becomes a card order awaiting "
                                      "payment, at the quoted price.", customer=quote.customer_name),
                            items=lines, confirm_label=_("Accept and create the orders"))
    if to == "declined":
        return Confirmation(title=_("Decline quote %(number)s", number=quote.number),
                            summary=_("The customer %(customer)s declined this quote; it cannot be accepted "
                                      "afterwards.", customer=quote.customer_name),
                            items=lines, confirm_label=_("Customer declined"))
    return Confirmation(title=_("Cancel quote %(number)s", number=quote.number),
                        summary=_("The quote is withdrawn; it cannot be sent or accepted afterwards."),
                        items=lines, confirm_label=_("Withdraw the quote"))


def _typed_rows(form) -> list[dict]:
    """The line rows as typed (a refused form shows them again)."""
    columns = ("package_id", "quantity", "unit_price", "discount_percent")
    values = [form.getlist(f"line_{name}") for name in columns]
    rows = [dict(zip(columns, row)) for row in zip(*values)] if values and all(
        len(v) == len(values[0]) for v in values) else []
    return [row for row in rows if any((v or "").strip() for v in row.values())]


def _typed_lines(form, packages: dict) -> list[LineInput]:
    """The non-empty typed rows as LineInputs (a package not offered reads as none; the action names the line)."""
    lines = []
    for row in _typed_rows(form):
        package_id, quantity = row.get("package_id", ""), (row.get("quantity") or "").strip()
        lines.append(LineInput(
            package=packages.get(int(package_id)) if package_id.isdecimal() and len(package_id) < 10 else None,
            quantity=int(quantity) if quantity.isdecimal() and len(quantity) < 10 else None,
            unit_price=row.get("unit_price", ""), discount_percent=row.get("discount_percent", "")))
    return lines


def register(admin, category) -> None:
    admin.add_view(CardQuoteView(CardQuote, name=_l("Sales quotations"), category=category))
