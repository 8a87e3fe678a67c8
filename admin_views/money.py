"""财务操作 → 余额 / 流水: finance's read-only wallets and ledger, with filters and export; 客户中心 → 余额明细:
a customer's own balance movements (the same ledger, scoped to its company tree)."""
from __future__ import annotations

from flask import url_for
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import false, select
from sqlalchemy.orm import joinedload

from actions.texts import render as render_text
from actions.billing import parse_id
from admin_views.base import ScopedModelView, label_formatter, scoped_company_options
from models import LEDGER_KINDS, WALLET_CURRENCIES, Company, LedgerEntry, Wallet, db

FINANCE = frozenset({"finance"})


class CompanyTreeFilter(BaseSQLAFilter):
    """Rows of the chosen company and every company below it; a value that is no company id finds nothing."""

    def __init__(self, column, within):
        super().__init__(column, _l("Company"), options=scoped_company_options)
        self.within = within  # the SELECT of the tree's company ids → the WHERE clause

    def validate(self, value):
        return parse_id(value) is not None

    def apply(self, query, value, alias=None):
        company_id = parse_id(value)
        company = db.session.get(Company, company_id) if company_id is not None else None
        if company is None:
            return query.filter(false())
        return query.filter(self.within(company.subtree_ids()))

    def operation(self):
        return _l("in the tree of")


class WalletCurrencyFilter(BaseSQLAFilter):
    """Ledger entries of the wallets in one currency (a subquery: no join to clash with eager loads)."""

    def __init__(self):
        super().__init__(LedgerEntry.wallet_id, _l("Currency"), options=list(WALLET_CURRENCIES.items()))

    def validate(self, value):
        return value in WALLET_CURRENCIES

    def apply(self, query, value, alias=None):
        return query.filter(LedgerEntry.wallet_id.in_(select(Wallet.id).where(Wallet.currency == value)))

    def operation(self):
        return _l("equals")


def _actor(view, context, model, name):
    return model.actor.username if model.actor is not None else _("system")


class WalletView(ScopedModelView):
    """余额: every company's balance per currency (read-only; balances move only through the ledger)."""

    roles = FINANCE
    can_create = can_edit = can_delete = False
    can_export = True
    column_list = ("company", "currency", "balance", "updated_at")
    column_export_list = ("company", "currency", "balance", "updated_at")
    column_details_list = ("id", "company", "currency", "balance", "updated_at")
    column_labels = {"id": _l("Wallet"), "company": _l("Company"), "currency": _l("Currency"),
                     "balance": _l("Balance"), "updated_at": _l("Updated")}
    column_sortable_list = (("company", "company.name"), "currency", "balance", "updated_at")
    column_default_sort = [("currency", False), ("balance", True)]
    column_select_related_list = (Wallet.company,)
    column_filters = (
        CompanyTreeFilter(Wallet.company_id, Wallet.company_id.in_),
        sqla_filters.FilterEqual(Wallet.currency, _l("Currency"), options=list(WALLET_CURRENCIES.items())),
        "balance",
    )
    column_formatters = {"currency": label_formatter(WALLET_CURRENCIES)}


class LedgerEntryView(ScopedModelView):
    """流水: every movement of every wallet, newest first (append-only: nothing to create, edit or delete)."""

    roles = FINANCE
    can_create = can_edit = can_delete = False
    can_export = True
    column_list = ("created_at", "wallet.company", "currency", "kind", "amount", "balance_after",
                   "order", "memo", "actor")
    column_export_list = column_list
    column_details_list = ("id", "created_at", "wallet.company", "currency", "kind", "amount",
                           "balance_after", "order", "offline_recharge_id", "memo", "actor", "idempotency_key")
    column_labels = {
        "id": _l("Entry"), "created_at": _l("Time"), "wallet.company": _l("Company"),
        "currency": _l("Currency"), "kind": _l("Kind"), "amount": _l("Amount"),
        "balance_after": _l("Balance after"), "order": _l("Order number"), "memo": _l("Memo"),
        "actor": _l("Actor"), "offline_recharge_id": _l("Offline recharge"), "idempotency_key": _l("Reference"),
    }
    column_sortable_list = ("created_at", "kind", "amount", "balance_after")
    column_default_sort = [("created_at", True), ("id", True)]
    column_searchable_list = ("memo",)
    # The company is two hops away (entry → wallet → company): get_query adds that nested load.
    column_select_related_list = (LedgerEntry.wallet, LedgerEntry.order, LedgerEntry.actor)
    column_filters = (
        "created_at",  # typed in the reader's zone (admin_views.base.FilterConverter)
        sqla_filters.FilterEqual(LedgerEntry.kind, _l("Kind"), options=list(LEDGER_KINDS.items())),
        WalletCurrencyFilter(),
        # Through the wallet as a subquery: no join to clash with the eager loads.
        CompanyTreeFilter(LedgerEntry.wallet_id, lambda tree: LedgerEntry.wallet_id.in_(
            select(Wallet.id).where(Wallet.company_id.in_(tree)))),
        "amount",
    )
    column_formatters = {"kind": label_formatter(LEDGER_KINDS), "actor": _actor,
                         "memo": lambda v, c, m, n: render_text(m.memo_data, m.memo)}
    column_formatters_export = column_formatters

    def search_placeholder(self):
        return _("Memo (order number)")

    def get_query(self):
        return super().get_query().options(joinedload(LedgerEntry.wallet).joinedload(Wallet.company))


# The movements of a prepaid balance (a distributor's commission wallet has its own page, 收入提现).
PREPAID_KINDS = {code: label for code, label in LEDGER_KINDS.items()
                 if code not in ("commission", "withdrawal", "withdrawal_release")}


def _order_link(view, context, model, name):
    """The order number, linked to the order's page (which looks it up in the reader's scope again)."""
    if model.order is None:
        return ""
    return Markup('<a href="{}">{}</a>').format(url_for("renewal_center.order_view", number=model.order.number),
                                                model.order.number)


class BalanceHistoryView(ScopedModelView):
    """余额明细: every movement of the prepaid balances of the reader's company tree, newest first: top-ups
    (online and 线下充值), payments, refunds, with the balance after each and the order it belongs to."""

    roles = frozenset({"customer_admin"})
    area = "orders"  # 订单、充值与支付: the recharge records' area
    scope_column = "company_id"  # the wallet's company (models.LedgerEntry.company_id)
    can_create = can_edit = can_delete = False
    can_export = True
    column_list = ("created_at", "wallet.company", "currency", "kind", "amount", "balance_after", "order", "memo")
    column_export_list = column_list
    column_details_list = column_list
    column_labels = {
        "created_at": _l("Time"), "wallet.company": _l("Company"), "currency": _l("Currency"), "kind": _l("Kind"),
        "amount": _l("Amount"), "balance_after": _l("Balance after"), "order": _l("Order number"),
        "memo": _l("Memo"),
    }
    column_sortable_list = ("created_at", "kind", "amount", "balance_after")
    column_default_sort = [("created_at", True), ("id", True)]
    column_select_related_list = (LedgerEntry.wallet, LedgerEntry.order)
    column_filters = (
        CompanyTreeFilter(LedgerEntry.wallet_id, lambda tree: LedgerEntry.wallet_id.in_(
            select(Wallet.id).where(Wallet.company_id.in_(tree)))),
        WalletCurrencyFilter(),
        sqla_filters.FilterEqual(LedgerEntry.kind, _l("Kind"), options=list(PREPAID_KINDS.items())),
        "created_at",  # typed in the reader's zone (admin_views.base.FilterConverter)
    )
    column_formatters = {"kind": label_formatter(LEDGER_KINDS), "order": _order_link,
                         "memo": lambda v, c, m, n: render_text(m.memo_data, m.memo)}
    column_formatters_export = {"kind": label_formatter(LEDGER_KINDS),
                                "order": lambda v, c, m, n: m.order.number if m.order is not None else "",
                                "memo": lambda v, c, m, n: render_text(m.memo_data, m.memo)}

    def _prepaid(self, query):
        return query.filter(LedgerEntry.wallet_id.in_(select(Wallet.id).where(Wallet.kind == "prepaid")))

    def get_query(self):
        return self._prepaid(super().get_query()).options(joinedload(LedgerEntry.wallet).joinedload(Wallet.company))

    def get_count_query(self):
        return self._prepaid(super().get_count_query())


def register(admin, finance, customer) -> None:
    """Add the wallet and ledger views (finance) and the balance history (customers)."""
    admin.add_view(WalletView(Wallet, name=_l("Wallets"), category=finance))
    admin.add_view(LedgerEntryView(LedgerEntry, name=_l("Ledger"), category=finance))
    admin.add_view(BalanceHistoryView(LedgerEntry, name=_l("Balance history"), category=customer,
                                      endpoint="balance_history"))
