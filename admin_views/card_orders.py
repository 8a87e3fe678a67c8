"""订单管理 for cards: tabs 所有订单 / 待发货 / 已发货 / 已收货 / 退款中 / 已退款; place and pay, ship, receive, refund.

Thin views over actions.card_orders and the order core (pay_with_balance, request_refund,
approve_refund). Distributors' administrators see their company tree's orders (DistributorAccess,
scope by seller); staff see all by their roles.
"""
from __future__ import annotations

from datetime import date

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import exists, select, true

from actions import DomainError
from actions.card_orders import (
    SELL_ROLES, cards_to_ship, confirm_receipt, lines_for_refund, open_refund, order_cards, place_order,
    sellers_in_scope, ship, valid_holders,
)
from actions.cards import PLATFORM, parse_numbers
from actions.money import format_money
from actions.orders import approve_refund, pay_with_balance, request_refund
from actions.idempotency import remember
from admin_views.base import ScopedModelView, badge, claim_form, confirm_first, unit_of_work
from admin_views.cards import DistributorAccess, holder_cell, int_arg, refused
from admin_views.confirm import Confirmation
from models import (
    CARD_ORDER_STATUSES, CARD_STATUSES, CardCustomer, CardFulfillment, CardOrder, Order,
    OrderRefund, Package, db,
)

TABS = {
    "all": _l("All orders"),  # 所有订单: where the page opens
    "awaiting": _l("Awaiting shipment"),  # 待发货
    "shipped": _l("Shipped"),  # 已发货
    "received": _l("Received"),  # 已收货
    "refunding": _l("Refund in progress"),  # 退款中
    "refunded": _l("Refunded"),  # 已退款
}
_OPEN_REFUND = exists().where(OrderRefund.order_id == CardOrder.order_id, OrderRefund.status == "requested")


def _tab_clause(tab: str):
    if tab == "all":
        return true()
    if tab == "refunding":
        return _OPEN_REFUND
    status = {"awaiting": "awaiting_shipment", "shipped": "shipped", "received": "received",
              "refunded": "refunded"}[tab]
    return (CardOrder.status == status) & ~_OPEN_REFUND


def _order_cell(view, context, model, name):
    return model.order.number


def _total_cell(view, context, model, name):
    return format_money(model.order.total, model.order.currency)


def _status_cell(view, context, model, name):
    return badge(str(CARD_ORDER_STATUSES.get(model.status, model.status)),
                 {"awaiting_shipment": "warning", "shipped": "info", "received": "success"}.get(model.status,
                                                                                                "secondary"))


class CardOrderView(DistributorAccess, ScopedModelView):
    """Card orders by tab; the row icons ship (holder), and the actions receive and refund."""

    roles = frozenset({"tech_support", "finance", "sales"})
    area = "card_orders"
    scope_column = "seller_company_id"
    can_create = can_edit = can_delete = False
    list_template = "renewdesk/cards/order_list.html"
    column_list = ("order", "seller", "package", "quantity", "total", "customer_name", "holder_key", "status",
                   "created_at")
    column_labels = {"order": _l("Order"), "seller": _l("Distributor"), "package": _l("Package"),
                     "quantity": _l("Cards"), "total": _l("Total"), "customer_name": _l("Customer"),
                     "customer_phone": _l("Phone number"),
                     "holder_key": _l("Shipped by"), "status": _l("Status"), "created_at": _l("Created"),
                     "customer": _l("Customer"), "reserved": _l("Reserved"), "shipping_address": _l("Shipping address")}
    column_formatters = {"order": _order_cell, "total": _total_cell, "holder_key": holder_cell,
                         "status": _status_cell}
    column_formatters_export = {"order": _order_cell, "total": _total_cell, "holder_key": holder_cell,
                                "status": lambda v, c, m, n: str(CARD_ORDER_STATUSES.get(m.status, m.status))}
    # The order, its customer as shipped to, and (in details_table) the shipment and the cards: 号卡信息.
    column_details_list = ("order", "status", "seller", "package", "quantity", "total", "customer_name",
                           "customer_phone", "shipping_address", "holder_key", "created_at")
    details_template = "renewdesk/cards/order_details.html"
    column_searchable_list = ("customer_name", "customer_phone")
    column_select_related_list = (CardOrder.order, CardOrder.seller, CardOrder.package)
    column_default_sort = ("id", True)

    def _tab(self) -> str:
        tab = request.args.get("tab", "all") if request else "all"
        return tab if tab in TABS else "all"

    def _paid_only(self, query):
        return query.filter(CardOrder.order_id.in_(select(Order.id).where(Order.status.in_(("paid", "refunded")))))

    def get_query(self):
        query = self._paid_only(super().get_query())
        if request and request.endpoint == f"{self.endpoint}.index_view":
            query = query.filter(_tab_clause(self._tab()))
        return query

    def get_count_query(self):
        return self._paid_only(super().get_count_query()).filter(_tab_clause(self._tab()))

    def render(self, template, **kwargs):
        kwargs.setdefault("tabs", TABS)
        kwargs.setdefault("tab", self._tab())
        return super().render(template, **kwargs)

    def is_action_allowed(self, name):
        if name == "refund":
            return current_user.role in ("finance", "admin")
        return super().is_action_allowed(name)

    @action("receive", _l("Confirm receipt"), _l("Confirm that the customers received the selected orders?"))
    def action_receive(self, ids):
        for card_order in self.scoped_rows(ids):
            with unit_of_work() as work:
                confirm_receipt(db.session, current_user, card_order, date.today())
            if not work.failed:
                flash(_("Order %(number)s received.", number=card_order.order.number), "success")

    @action("refund", _l("Approve the refund"))
    @confirm_first(lambda view, rows: Confirmation(
        title=_("Approve card order refunds"),
        summary=_("Approve the refunds awaiting approval of %(count)s orders: the money goes back the way it was "
                  "paid.", count=len(rows)),
        items=[row.order.number for row in rows],
        confirm_label=_("Approve %(count)s refunds", count=len(rows))))
    def action_refund(self, ids):
        for card_order in self.scoped_rows(ids):
            refund = open_refund(db.session, card_order)
            with unit_of_work() as work:
                if refund is None:
                    raise DomainError(_l("Order %(number)s has no refund awaiting approval.",
                                         number=card_order.order.number))
                approve_refund(db.session, current_user, refund, date.today())
            if not work.failed:
                flash(_("Refund of order %(number)s approved.", number=card_order.order.number), "success")

    @expose("/place/", methods=("GET", "POST"))
    def place(self):
        """A distributor (or sales for one) sells cards and pays from the distributor's balance, one transaction."""
        if not self._may_sell():
            return refused()
        sellers = sellers_in_scope(db.session, current_user)
        packages = db.session.scalars(select(Package).where(Package.kind == "card", Package.active)
                                      .order_by(Package.code)).all()
        customers = db.session.scalars(select(CardCustomer).where(
            CardCustomer.company_id.in_([c.id for c in sellers])).order_by(CardCustomer.name)).all()
        if request.method == "POST":
            form = request.form
            seller = next((c for c in sellers if c.id == int_arg("seller_id")), None)
            package = next((p for p in packages if p.id == int_arg("package_id")), None)
            done_url = url_for(".index_view")
            with unit_of_work() as work:  # the order is paid at once: a form sent twice is applied once
                remember(claim_form("card_order"), done_url)
                if seller is None or package is None:
                    raise DomainError(_l("Choose a verified distributor and a card plan."))
                card_order = place_order(db.session, current_user, seller=seller, package=package,
                                         quantity=int_arg("quantity", 0) or 0,
                                         holder_key=int_arg("holder", PLATFORM),
                                         customer=next((c for c in customers if c.id == int_arg("customer_id")),
                                                       None),
                                         customer_name=form.get("customer_name", ""),
                                         customer_phone=form.get("customer_phone", ""),
                                         shipping_address=form.get("shipping_address", ""),
                                         promotion_percent=form.get("promotion_percent", ""),
                                         promotion_label=form.get("promotion_label", ""))
                order = card_order.order
                pay_with_balance(db.session, current_user, order, date.today())
                number, total = order.number, format_money(order.total, order.currency)
            again = work.already_done(done_url)
            if again:
                return again
            if not work.failed:
                flash(_("Order %(number)s paid (%(total)s); the cards are reserved.", number=number, total=total),
                      "success")
                return redirect(done_url)
        chosen = next((c for c in sellers if c.id == int_arg("seller_id")), sellers[0] if sellers else None)
        holders = valid_holders(db.session, chosen) if chosen is not None else [(PLATFORM, _("Platform warehouse"))]
        return self.render("renewdesk/cards/order_place.html", sellers=sellers, packages=packages, customers=customers,
                           seller_id=chosen.id if chosen is not None else None, holders=holders)

    @expose("/place/holders/")
    def place_holders(self):
        """The "Shipped by" choices of the sell form for one of the actor's sellers (`seller_id`), as JSON: the form
        narrows its list when the seller changes; placing the order checks the holder again. A role that does not
        sell has no seller here: 404, like a seller outside the user's companies (a 403 is for roles the view
        does not list)."""
        sellers = sellers_in_scope(db.session, current_user) if self._may_sell() else []
        seller = next((c for c in sellers if c.id == int_arg("seller_id")), None)
        if seller is None:
            abort(404)
        return jsonify(seller_id=seller.id,
                       holders=[{"id": key, "name": name} for key, name in valid_holders(db.session, seller)])

    @staticmethod
    def _may_sell() -> bool:
        return current_user.role == "admin" or current_user.role in SELL_ROLES

    @expose("/details/")
    def details_view(self):
        card_order = self.get_one(request.args.get("id", ""))
        if card_order is not None:
            self._template_args.update(
                fulfillment=db.session.scalar(select(CardFulfillment).where(
                    CardFulfillment.card_order_id == card_order.id)),
                cards=order_cards(db.session, card_order), card_statuses=CARD_STATUSES)
        return super().details_view()

    @expose("/ship/", methods=("GET", "POST"))
    def ship_view(self):
        card_order = self.get_one(request.values.get("id", ""))
        if card_order is None:
            abort(404)
        if request.method == "POST":
            with unit_of_work() as work:
                ship(db.session, current_user, card_order, parse_numbers(request.form.get("numbers", "")),
                     request.form.get("carrier", ""), request.form.get("tracking_number", ""), date.today())
            if not work.failed:
                flash(_("Order %(number)s shipped.", number=card_order.order.number), "success")
                return redirect(url_for(".index_view", tab="shipped"))
        fulfillment = db.session.scalar(select(CardFulfillment).where(CardFulfillment.card_order_id == card_order.id))
        # A refused form keeps what was typed; the cards in stock the shipper may pick are listed beside it.
        available = cards_to_ship(db.session, current_user, card_order, date.today())
        return self.render("renewdesk/cards/order_ship.html", card_order=card_order, fulfillment=fulfillment,
                           sent=request.form, available=available)

    @expose("/refund/", methods=("GET", "POST"))
    def refund_view(self):
        """Finance asks to refund some cards (or the whole order); another finance user approves it."""
        if current_user.role not in ("finance", "admin"):
            return refused()
        card_order = self.get_one(request.values.get("id", ""))
        if card_order is None:
            abort(404)
        if request.method == "POST":
            with unit_of_work() as work:
                line_ids = lines_for_refund(db.session, card_order, parse_numbers(request.form.get("numbers", "")),
                                            int_arg("count"))
                request_refund(db.session, current_user, card_order.order, line_ids, request.form.get("reason", ""))
            if not work.failed:
                flash(_("Refund requested; another finance user approves it."), "success")
                return redirect(url_for(".index_view", tab="refunding"))
        return self.render("renewdesk/cards/order_refund.html", card_order=card_order, sent=request.form)


def register(admin, category) -> None:
    admin.add_view(CardOrderView(CardOrder, name=_l("Card orders"), category=category))
