"""Seed 000 for customers: member accounts (batch creation, 批量 → 升级vip / 更新), buying coins,
bank transfers with receipt upload; for finance: bank transfer confirmation.

The rules live in actions.members, actions.coins and actions.bank_transfers; these views parse
the request, call them, commit once (or roll back on a DomainError) and flash the result.
"""
from __future__ import annotations

import os
import re
import secrets
import time
import unicodedata
from datetime import date, timedelta
from pathlib import Path

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_admin.helpers import get_redirect_target
from flask_admin.model.template import EndpointLinkRowAction
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import and_, func, select
from sqlalchemy.orm import joinedload
from werkzeug.utils import secure_filename
from wtforms import PasswordField, RadioField, SelectField, StringField
from wtforms.validators import ValidationError

from actions.permissions import ORDER_AREAS
from actions import DomainError, companies_in_scope, scoped
from actions.money import format_amount, format_money, parse, to_minor
from actions.audit import history
from actions.bank_transfers import (
    DEFAULT_MAX_BYTES, TRANSFER_CURRENCIES, AlreadyReviewed, amount_differs_clause, amount_matches,
    confirm_receipt, file_path, may_view, payee_for, reject_receipt, sniff, submit_receipt,
)
from actions.coins import (
    COIN_PAYMENT_METHODS, COINS_PER_CNY, TERM_LABELS, TERM_MONTHS, YEARLY_PRICE_CNY, coin_price, coins_for_cny,
    create_coin_order,
)
from actions.idempotency import remember
from actions.members import (
    DEFAULT_BATCH_MAX, DEFAULT_PASSWORD, RANDOM_HASH_METHOD, clean_member_details, create_members, effective_level,
    quote_digest, quote_upgrade, refresh_levels, upgrade_vip,
)
from actions.orders import scoped_order
from actions.payments import PROVIDER_CURRENCIES, check_method
from admin_views.base import (
    RoleView, ScopedModelView, badge, claim_form, company_in_scope, flash_result, time_cell, unit_of_work,
)
from admin_views.confirm import Confirmation, ask, is_confirmed
from admin_views.payments import enabled_methods, go_to_pay, pay_page_url
from admin_views.system import InCompanyTree
from admin_views.wording import Form
from importers.xlsx import write_xlsx
from models import (
    INVITATION_STATES, ORDER_KINDS, ORDER_STATUSES, PAYMENT_METHODS, RECEIPT_STATUSES, SEAT_EDITIONS, VIP_LEVELS,
    BankTransferReceipt, Company, MemberAccount, Order, Wallet, db,
)

INDENT = "\u00a0\u00a0\u00a0"
ONCE_SECONDS = 15 * 60  # a password workbook can be downloaded once, within 15 minutes
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHOWN_ROWS = 300  # rows of a confirmation table drawn in full; the rest are counted


def _company_choices() -> list[tuple[int, str]]:
    return [(c.id, INDENT * c.depth + c.name) for c in companies_in_scope(db.session, current_user)]




def _coins(value) -> str:
    """A whole number of coins in the reader's locale (216,000)."""
    return format_amount(value or 0, "COIN")


# --- one-time downloads of random passwords ---------------------------------------------------

def _once_folder() -> Path:
    return Path(current_app.instance_path) / "once"


def _sweep(folder: Path) -> None:
    """Delete password workbooks older than ONCE_SECONDS."""
    if not folder.is_dir():
        return
    limit = time.time() - ONCE_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except FileNotFoundError:
            pass


def keep_once(data: bytes, owner_id: int) -> str:
    """Keep `data` for one download by user `owner_id` within ONCE_SECONDS; returns the token."""
    folder = _once_folder()
    folder.mkdir(parents=True, exist_ok=True)
    _sweep(folder)
    token = secrets.token_urlsafe(32)
    path = folder / f"{owner_id}-{token}.xlsx"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    return token


def take_once(token: str, owner_id: int) -> bytes | None:
    """The bytes kept under `token` for `owner_id`, deleted as they are read; None if gone or expired."""
    if not TOKEN.fullmatch(token or ""):
        return None
    folder = _once_folder()
    path = folder / f"{owner_id}-{token}.xlsx"
    taken = folder / f"{owner_id}-{token}.{secrets.token_hex(8)}.taken"
    try:
        os.replace(path, taken)  # atomic: of two simultaneous downloads only one gets the file
    except FileNotFoundError:
        return None
    try:
        if taken.stat().st_mtime < time.time() - ONCE_SECONDS:
            return None
        return taken.read_bytes()
    finally:
        taken.unlink(missing_ok=True)
        _sweep(folder)


def _password_workbook(company: Company, passwords: dict[str, str]) -> bytes:
    handle = write_xlsx([_("Company"), _("Login"), _("Password")],
                        ([company.name, login, password] for login, password in passwords.items()),
                        sheet_title=_("Passwords"))
    try:
        return handle.read()
    finally:
        handle.close()


# --- member accounts ----------------------------------------------------------------------------

LABELS = {
    "login": _l("Login"), "company": _l("Company"), "vip_level": _l("VIP level"),
    "vip_expires_on": _l("VIP expires on"), "active": _l("Active"), "created_at": _l("Created"),
    "email": _l("Email"), "first_name": _l("First name"), "last_name": _l("Last name"),
    "seat_edition": _l("Seat edition"), "invitation_state": _l("Invitation"), "invited_at": _l("Invited at"),
}
EXPIRY_WINDOWS = {
    "expired": _l("Expired"),
    "7": _l("Expiring in 7 days"),
    "30": _l("Expiring in 30 days"),
    "90": _l("Expiring in 90 days"),
}


class VipExpiryWindow(BaseSQLAFilter):
    """VIP expired, or expiring within N days."""

    def __init__(self):
        super().__init__(MemberAccount.vip_expires_on, _l("VIP expiry"), options=list(EXPIRY_WINDOWS.items()))

    def validate(self, value):
        return value == "expired" or (str(value).isdecimal() and int(value) <= 3650)

    def apply(self, query, value, alias=None):
        today = date.today()
        if value == "expired":
            return query.filter(MemberAccount.vip_level != "none", MemberAccount.vip_expires_on < today)
        return query.filter(MemberAccount.vip_expires_on.between(today, today + timedelta(days=int(value))))

    def operation(self):
        return _l("is")


def _level_cell(view, context, model, name):
    """The level, with "lapsed" when its expiry has passed (批量 → 更新 resets it)."""
    label = str(VIP_LEVELS.get(model.vip_level, model.vip_level))
    if model.vip_level == "none":
        return label
    if effective_level(model.vip_level, model.vip_expires_on, date.today()) == "none":
        return badge(_("%(level)s (lapsed)", level=label), "warning")
    return badge(label, "success" if model.vip_level == "vip" else "primary")


class BatchCreateForm(Form):
    """新建用户: company, login pattern, password kind (CSRF is checked app-wide)."""

    company_id = SelectField(_l("Company"), coerce=int, validate_choice=False)
    pattern = StringField(_l("Login pattern"), render_kw={"maxlength": 200, "placeholder": "tupp{01-20}"},
                          description=_l("tupp{01-20} creates tupp01, tupp02 … tupp20; {1-3} gives 1, 2, 3; "
                                         "several braces give every combination."))
    password_kind = RadioField(_l("Password"), default="default", choices=[
        ("default", _l("Default password")), ("fixed", _l("Fixed password")), ("random", _l("Random passwords"))])
    fixed_password = PasswordField(_l("Fixed password"), render_kw={"maxlength": 128, "autocomplete": "new-password"},
                                   description=_l("Only for a fixed password: 6 to 128 characters."))


class MemberAccountView(ScopedModelView):
    """用户: member accounts with VIP level and expiry; batch creation, 批量 → 升级vip / 更新."""

    roles = frozenset({"customer_admin"})
    area = "members"
    scope_column = "company_id"
    audit_name = "member_account"
    can_create = True
    can_edit = True
    can_delete = False
    can_export = True
    column_list = ("login", "company", "vip_level", "vip_expires_on", "active", "created_at")
    column_export_list = ("login", "company", "vip_level", "vip_expires_on", "active", "email", "first_name",
                          "last_name", "created_at")
    column_details_list = ("login", "company", "vip_level", "vip_expires_on", "active", "email", "first_name",
                           "last_name", "seat_edition", "invitation_state", "invited_at", "created_at")
    column_labels = LABELS
    column_default_sort = "login"
    column_sortable_list = ("login", "vip_level", "vip_expires_on", "active", "created_at")
    column_searchable_list = ("login",)
    column_select_related_list = (MemberAccount.company,)
    column_formatters = {"vip_level": _level_cell}
    column_formatters_export = {"vip_level": lambda v, c, m, n: str(VIP_LEVELS.get(m.vip_level, m.vip_level))}
    column_formatters_detail = {  # labels, not the stored codes ("none")
        "vip_level": _level_cell,
        "seat_edition": lambda v, c, m, n: str(SEAT_EDITIONS.get(m.seat_edition, m.seat_edition or "")),
        "invitation_state": lambda v, c, m, n: str(INVITATION_STATES.get(m.invitation_state, m.invitation_state)),
    }
    column_filters = (
        InCompanyTree(MemberAccount.company_id, _l("Company"), MemberAccount.company_id),
        sqla_filters.FilterEqual(MemberAccount.vip_level, _l("VIP level"), options=list(VIP_LEVELS.items())),
        VipExpiryWindow(),
        "vip_expires_on",
        "active",
    )
    form_columns = ("email", "first_name", "last_name", "active")
    page_size_options = (20, 50, 100, 500, 1000)
    create_template = "renewdesk/member_create.html"

    def get_query(self):
        # Organizer accounts hold seats: they are managed on the organizer page, where
        # (de)activation keeps the seat count right.
        return super().get_query().filter(MemberAccount.seat_edition.is_(None))

    def get_count_query(self):
        return super().get_count_query().filter(MemberAccount.seat_edition.is_(None))

    def on_model_change(self, form, model, is_created):
        """编辑: the email and names are checked as everywhere (a valid email, one line each) before saving."""
        try:
            model.email, model.first_name, model.last_name = clean_member_details(
                model.email, model.first_name, model.last_name)
        except DomainError as exc:
            raise ValidationError(str(exc)) from exc
        super().on_model_change(form, model, is_created)

    def search_placeholder(self):
        return _("Login (starts with)")

    def _apply_search(self, query, count_query, joins, count_joins, search):
        """Prefix search on the login in any letter case (TUPP finds tupp01), as a range scan of the lower(login)
        index (no LIKE '%…%' table scan)."""
        term = unicodedata.normalize("NFKC", search).strip()[:100].lower()
        if not term:
            return query, count_query, joins, count_joins
        login = func.lower(MemberAccount.login)
        clause = and_(login >= term, login < term + "\U0010ffff")
        query = query.filter(clause)
        if count_query is not None:
            count_query = count_query.filter(clause)
        return query, count_query, joins, count_joins

    # --- 新建用户: batch creation --------------------------------------------------------------
    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """The batch form; on success the result page (random passwords shown here, once)."""
        return_url = self.get_url(".index_view")
        form = BatchCreateForm(request.form if request.method == "POST" else None,
                               data=None if request.method == "POST" else {"company_id": current_user.company_id})
        form.company_id.choices = _company_choices()
        config = current_app.config
        if request.method == "POST" and form.validate():
            company = company_in_scope(form.company_id.data)
            with unit_of_work() as work:
                if company is None:
                    raise DomainError(_l("Choose one of your companies."))
                created = create_members(
                    db.session, current_user, company, form.pattern.data, form.password_kind.data,
                    form.fixed_password.data, max_count=config.get("MEMBER_BATCH_MAX", DEFAULT_BATCH_MAX),
                    default_password=config.get("MEMBER_DEFAULT_PASSWORD", DEFAULT_PASSWORD),
                    hash_method=config["PASSWORD_HASH_METHOD"],
                    random_hash_method=config.get("MEMBER_RANDOM_HASH_METHOD", RANDOM_HASH_METHOD),
                )
            if not work.failed:
                token = None
                if created.passwords:
                    token = keep_once(_password_workbook(company, created.passwords), current_user.id)
                flash(_("%(count)s accounts created in %(company)s.", count=len(created.logins),
                        company=company.name), "success")
                return self.render("renewdesk/member_created.html", created=created, token=token,
                                   return_url=return_url, minutes=ONCE_SECONDS // 60)
        return self.render(self.create_template, form=form, return_url=return_url,
                           default_password=config.get("MEMBER_DEFAULT_PASSWORD", DEFAULT_PASSWORD),
                           max_count=config.get("MEMBER_BATCH_MAX", DEFAULT_BATCH_MAX))

    @expose("/passwords/", methods=("POST",))
    def passwords_view(self):
        """The random passwords of a batch as xlsx: once, for its creator, within 15 minutes."""
        data = take_once(request.form.get("token", ""), current_user.id)
        if data is None:
            abort(404)
        return Response(data, mimetype=XLSX,
                        headers={"Content-Disposition": "attachment; filename=member-passwords.xlsx"})

    # --- 批量 → 升级vip ----------------------------------------------------------------------------
    def _render_upgrade(self, ids, level: str, years: str, payer_id):
        rows = self.scoped_rows(ids)
        refused_ids = self.refused_ids(ids, rows)
        payer = company_in_scope(payer_id) if payer_id else None
        quote, error = None, None
        try:
            quote = quote_upgrade(db.session, current_user, rows, level, years, date.today(), payer)
        except DomainError as exc:
            error = str(exc)
        return self.render(
            "renewdesk/member_upgrade.html", ids=[str(r.id) for r in rows], refused_ids=refused_ids, quote=quote,
            quote_hash=quote_digest(quote, current_app.config["SECRET_KEY"]) if quote else "", error=error, level=level, years=years, payer_id=(quote.payer.id if quote else payer_id),
            companies=_company_choices(), levels=[(k, VIP_LEVELS[k]) for k in YEARLY_PRICE_CNY],
            terms=[(str(t), TERM_LABELS[t]) for t in TERM_MONTHS], shown_rows=SHOWN_ROWS, coins=_coins,
            return_url=self.get_url(".index_view"),
        )

    @action("upgrade_vip", _l("Upgrade to VIP"))
    def action_upgrade_vip(self, ids):
        """Opens the server-side confirmation page: level, term, the coin cost; nothing changes yet."""
        return self._render_upgrade(ids, "vip", "1", current_user.company_id)

    @expose("/upgrade/", methods=("POST",))
    def upgrade_view(self):
        """Recalculate the confirmation page, or (confirm=1) upgrade and debit the coins."""
        ids = request.form.getlist("rowid")
        level, years = request.form.get("level", "vip"), request.form.get("years", "1")
        payer_id = request.form.get("payer_id", "")
        if request.form.get("confirm") != "1":
            return self._render_upgrade(ids, level, years, payer_id)
        rows = self.scoped_rows(ids)
        refused = tuple(self.refused_ids(ids, rows))
        list_url = self.get_url(".index_view")
        with unit_of_work() as work:
            remember(claim_form("vip_upgrade"), list_url)
            payer = company_in_scope(payer_id) if payer_id else None
            if payer_id and payer is None:
                raise DomainError(_l("Choose one of your companies."))
            # Exactly what the confirmation page showed, or nothing (QuoteChanged).
            result = upgrade_vip(db.session, current_user, rows, level, years, date.today(), payer,
                                 expected_quote=request.form.get("quote_hash", ""),
                                 secret=current_app.config["SECRET_KEY"])
        if work.failed:
            return work.already_done(list_url) or self._render_upgrade(ids, level, years, payer_id)
        flash_result(type(result)(result.changed, refused + result.refused),
                     _("%(count)s accounts upgraded.") + " " + _("Order %(number)s: %(coins)s coins paid.",
                                                                  number=result.extra.get("order", ""),
                                                                  coins=_coins(result.extra.get("coins"))))
        return redirect(self.get_url(".index_view"))

    # --- 批量 → 更新 -------------------------------------------------------------------------------
    @action("refresh", _l("Refresh levels"))
    def action_refresh(self, ids):
        rows = self.scoped_rows(ids)
        with unit_of_work() as work:
            result = refresh_levels(db.session, current_user, rows, date.today())
        if work.failed:
            return
        levels = result.extra["levels"]
        flash(_("Levels re-read for %(count)s accounts: %(vip)s VIP, %(svip)s SVIP, %(none)s ordinary.",
                count=result.extra["checked"], vip=levels["vip"], svip=levels["svip"], none=levels["none"]),
              "success")
        if result.changed:
            flash(_("%(count)s lapsed levels reset to ordinary: %(logins)s", count=len(result.changed),
                    logins=", ".join(result.changed[:200])), "info")
        refused = tuple(self.refused_ids(ids, rows)) + result.refused
        if refused:
            flash_result(type(result)((), refused), "")


# --- buying coins ---------------------------------------------------------------------------------

class BuyCoinsView(RoleView):
    """购买奥币: the price calculator (accounts × years × 72 / 216 CNY), then an order paid online or by transfer."""

    roles = frozenset({"customer_admin"})
    area = "members"

    @expose("/", methods=("GET", "POST"))
    def index(self):
        args = request.args
        calc = {"level": args.get("level", "vip"), "accounts": args.get("accounts", ""),
                "years": args.get("years", "1")}
        amount = request.form.get("amount", "")
        calculated = None
        if args.get("accounts"):
            try:
                calculated = coin_price(calc["level"], calc["accounts"], calc["years"])
                amount = amount or str(calculated[0])
            except DomainError as exc:
                flash(str(exc), "error")
        company_id = request.form.get("company_id", str(current_user.company_id or ""))
        method = request.form.get("method", "")
        if request.method == "POST":
            company = company_in_scope(company_id)
            with unit_of_work() as work:
                claimed = claim_form("coins")
                if company is None:
                    raise DomainError(_l("Choose one of your companies."))
                if method in PROVIDER_CURRENCIES:
                    check_method(method, "CNY", enabled_methods())
                order = create_coin_order(db.session, current_user, company, amount, method)
                number = order.number
                remember(claimed, url_for("bank_transfer.upload", order=number) if method == "bank_transfer"
                         else pay_page_url(order, method))
            again = work.already_done(url_for(".index"))
            if again:
                return again
            if not work.failed:
                flash(_("Order %(number)s created: %(coins)s coins for %(amount)s CNY.", number=number,
                        coins=_coins(order.total * COINS_PER_CNY), amount=format_amount(order.total, "CNY")), "success")
                if method == "bank_transfer":
                    return redirect(url_for("bank_transfer.upload", order=number))
                return go_to_pay(order, method)
        coins_preview = None
        try:
            coins_preview = coins_for_cny(amount) if amount else None
        except DomainError:
            pass
        wallets = db.session.execute(
            scoped(select(Company.name, Wallet.balance_minor).join(Wallet, Wallet.company_id == Company.id)
                   .where(Wallet.currency == "COIN"), current_user, Company.id).order_by(Company.path)
        ).all()
        orders = db.session.scalars(
            scoped(select(Order).where(Order.kind == "coins"), current_user, Order.company_id)
            .options(joinedload(Order.company)).order_by(Order.id.desc()).limit(20)
        ).all()
        return self.render(
            "renewdesk/coins_buy.html", calc=calc, calculated=calculated, amount=amount, coins_preview=coins_preview,
            companies=_company_choices(), company_id=company_id, method=method,
            methods=[(m, PAYMENT_METHODS[m]) for m in COIN_PAYMENT_METHODS
                     if m == "bank_transfer" or m in enabled_methods()],
            levels=[(k, VIP_LEVELS[k], YEARLY_PRICE_CNY[k]) for k in YEARLY_PRICE_CNY],
            terms=[(str(t), TERM_LABELS[t]) for t in TERM_MONTHS], rate=COINS_PER_CNY,
            wallets=wallets, orders=orders, statuses=ORDER_STATUSES, coins=_coins,
        )


# --- bank transfer: the customer's side -----------------------------------------------------------

def _receipt_folder() -> Path:
    return Path(current_app.instance_path) / "receipts"


INLINE_TYPES = ("image/png", "image/jpeg", "application/pdf")


def receipt_file_response(receipt: BankTransferReceipt, inline: bool = False) -> Response:
    """The stored receipt file, with the type its first bytes show.

    `inline` shows a PNG, JPEG or PDF in the browser (the review page's image); anything else —
    an SVG or HTML that somehow got stored, a file whose bytes no longer match — is only ever
    sent as an octet-stream attachment, never rendered. `nosniff` keeps browsers from guessing.
    """
    path = file_path(_receipt_folder(), receipt)
    if not path.is_file():
        abort(404)
    data = path.read_bytes()
    found = sniff(data)
    trusted = found is not None and found.content_type == receipt.content_type
    extension = found.extensions[0] if trusted else ".bin"
    name = (secure_filename(os.path.splitext(receipt.file_name)[0]) or f"receipt-{receipt.id}") + extension
    show = inline and trusted and receipt.content_type in INLINE_TYPES
    headers = {"Content-Disposition": f"{'inline' if show else 'attachment'}; filename={name}",
               "X-Content-Type-Options": "nosniff",
               # An image opened on its own may load or run nothing (a PDF keeps the browser's viewer).
               "Content-Security-Policy": ("frame-ancestors 'none'" if receipt.content_type == "application/pdf"
                                           else "default-src 'none'; frame-ancestors 'none'")}
    return Response(data, mimetype=receipt.content_type if trusted else "application/octet-stream", headers=headers)


def _payee(currency: str):
    return payee_for(current_app.config.get("BANK_TRANSFER_PAYEE"), currency)


class BankTransferView(RoleView):
    """银行转账 → 上传转账电子回单: orders awaiting payment, the receipt form, the receipts sent."""

    roles = frozenset({"customer_admin"})
    area = "orders"
    shared_pages = {"upload": ORDER_AREAS}  # the second step of paying any order by bank transfer

    @expose("/")
    def index(self):
        orders = db.session.scalars(
            scoped(select(Order).where(Order.status == "pending", Order.currency.in_(TRANSFER_CURRENCIES)),
                   current_user, Order.company_id)
            .options(joinedload(Order.company)).order_by(Order.id.desc()).limit(200)
        ).all()
        receipts = db.session.scalars(
            scoped(select(BankTransferReceipt).join(Order, Order.id == BankTransferReceipt.order_id),
                   current_user, Order.company_id)
            .options(joinedload(BankTransferReceipt.order).joinedload(Order.company))
            .order_by(BankTransferReceipt.id.desc()).limit(200)
        ).all()
        waiting = {r.order_id for r in receipts if r.status == "submitted"}
        return self.render("renewdesk/bank_transfer.html", orders=orders, receipts=receipts, waiting=waiting,
                           statuses=RECEIPT_STATUSES, kinds=ORDER_KINDS, matches=amount_matches,
                           payees={c: _payee(c) for c in TRANSFER_CURRENCIES})

    @expose("/upload/", methods=("GET", "POST"))
    def upload(self):
        """第二步: 上传转账电子回单 — payer company, payer account, amount and the receipt file."""
        order = scoped_order(db.session, current_user, request.args.get("order", "")[:40])
        if order is None:
            abort(404)
        form = request.form
        if request.method == "POST":
            upload = request.files.get("file")
            max_bytes = current_app.config.get("BANK_RECEIPT_MAX_BYTES", DEFAULT_MAX_BYTES)
            data = upload.stream.read(max_bytes + 1) if upload else b""
            number = order.number
            with unit_of_work() as work:
                remember(claim_form("bank_transfer"), url_for(".index"))
                receipt = submit_receipt(db.session, current_user, order, form.get("payer_company", ""),
                                         form.get("payer_account", ""), form.get("amount", ""),
                                         upload.filename if upload else "", data, _receipt_folder(), max_bytes)
                differs = not amount_matches(receipt)
                declared, total, currency = receipt.amount, order.total, order.currency
            again = work.already_done(url_for(".index"))
            if again:
                return again
            if not work.failed:
                flash(_("Receipt for order %(number)s sent: finance will confirm the payment.", number=number),
                      "success")
                if differs:
                    flash(_("The amount on the receipt (%(amount)s) differs from the order total (%(total)s). "
                            "Finance confirms what arrived: if it is not the order total, it is credited to "
                            "your balance and the order stays unpaid.",
                            amount=format_money(declared, currency), total=format_money(total, currency)),
                          "warning")
                return redirect(url_for(".index"))
        receipts = db.session.scalars(select(BankTransferReceipt).where(BankTransferReceipt.order_id == order.id)
                                      .order_by(BankTransferReceipt.id.desc())).all()
        return self.render(
            "renewdesk/bank_transfer_upload.html", order=order, receipts=receipts, statuses=RECEIPT_STATUSES,
            order_statuses=ORDER_STATUSES, kinds=ORDER_KINDS,
            payer_company=form.get("payer_company", order.company.name), payer_account=form.get("payer_account", ""),
            amount=form.get("amount", ""), payee=_payee(order.currency), matches=amount_matches,
            max_mb=f"{current_app.config.get('BANK_RECEIPT_MAX_BYTES', DEFAULT_MAX_BYTES) / 1048576:g}",
        )

    @expose("/file/<int:receipt_id>")
    def file(self, receipt_id: int):
        receipt = db.session.get(BankTransferReceipt, receipt_id)
        if receipt is None or not may_view(db.session, current_user, receipt):
            abort(404)
        return receipt_file_response(receipt, inline=request.args.get("inline") == "1")


# --- bank transfer: finance confirms ---------------------------------------------------------------

def _receipt_amount_cell(view, context, model, name):
    text = format_money(model.amount, model.order.currency)
    if amount_matches(model):
        return text
    return badge(_("%(amount)s ≠ order total %(total)s", amount=text,
                   total=format_money(model.order.total, model.order.currency)), "danger")


def _receipt_received_cell(view, context, model, name):
    if model.received is None:
        return ""
    text = format_money(model.received, model.order.currency)
    return text if model.received == model.order.total else badge(text, "warning")


def _receipt_status_cell(view, context, model, name):
    kinds = {"submitted": "info", "confirmed": "success", "credited": "warning", "rejected": "secondary"}
    return badge(str(RECEIPT_STATUSES.get(model.status, model.status)), kinds.get(model.status, "secondary"))


def confirm_receipt_decision(view, receipt: BankTransferReceipt, decision: str, reason: str, received: str):
    """The confirmation page of confirming the amount received (the order is paid, or the amount credited) or
    rejecting a receipt; None once confirmed, or when the review itself will refuse and change nothing."""
    order = receipt.order
    total = format_money(order.total, order.currency)
    if receipt.status != "submitted" or decision not in ("confirm", "reject"):
        return None
    if decision == "reject":
        if not reason.strip():
            return None
        purpose = f"{view.endpoint}.reject"
        confirmation = Confirmation(
            title=_("Reject bank transfer receipt #%(id)s", id=receipt.id),
            summary=_("Reject the receipt of order %(number)s of %(company)s (%(amount)s): the order still awaits "
                      "payment.", number=order.number, company=order.company.name, amount=total),
            items=[_("Reason: %(reason)s", reason=reason.strip())],
            confirm_label=_("Reject the receipt"))
    else:
        try:
            amount = parse(received, order.currency, str(_l("Amount received")))
        except DomainError:
            return None
        purpose = f"{view.endpoint}.confirm.{to_minor(amount, order.currency)}"  # bound to the amount typed
        shown = format_money(amount, order.currency)
        if amount == order.total:
            summary = _("Confirm the transfer of %(amount)s from %(payer)s: order %(number)s of %(company)s "
                        "(%(total)s) is paid and delivered.", amount=shown, payer=receipt.payer_company,
                        number=order.number, company=order.company.name, total=total)
        else:
            summary = _("%(amount)s received, not the order total %(total)s: it is credited to the balance of "
                        "%(company)s and order %(number)s still awaits payment.", amount=shown, total=total,
                        company=order.company.name, number=order.number)
        confirmation = Confirmation(
            title=_("Confirm bank transfer receipt #%(id)s", id=receipt.id), summary=summary,
            note=_("Confirming cannot be undone; a mistake is corrected by a refund."),
            confirm_label=_("Confirm the receipt"))
    if is_confirmed(purpose, [receipt.id]):
        return None
    return ask(view, confirmation, purpose, [receipt.id],
               view.get_url(".review_view", id=receipt.id, url=get_redirect_target() or None))


class AmountDiffers(BaseSQLAFilter):
    """Receipts whose declared amount differs from (or equals) their order's total."""

    def __init__(self, column, name):
        super().__init__(column, name, options=(("1", _l("Differs from the order total")),
                                                ("0", _l("Equals the order total"))))

    def apply(self, query, value, alias=None):
        differs = amount_differs_clause()
        return query.filter(differs if value == "1" else ~differs)

    def operation(self):
        return _l("equals")


class ReceiptReviewView(ScopedModelView):
    """银行转账确认 (finance): receipts sent by customers; review → confirm (pays the order) or reject."""

    roles = frozenset({"finance"})
    audit_name = "bank_transfer_receipt"
    can_create = can_edit = can_delete = False
    can_export = True
    column_list = ("id", "order", "order.company", "payer_company", "payer_account", "amount", "order.total",
                   "received", "status", "uploaded_by", "created_at", "reviewed_by", "comment")
    column_export_list = ("id", "order", "order.company", "payer_company", "payer_account", "amount", "order.total",
                          "received", "status", "uploaded_by", "created_at", "reviewed_by", "reviewed_at", "comment")
    column_details_list = ("id", "order", "order.company", "payer_company", "payer_account", "amount", "order.total",
                           "received", "file_name", "content_type", "file_size", "status", "uploaded_by", "created_at",
                           "reviewed_by", "reviewed_at", "comment")
    column_labels = {
        "id": _l("No."), "order": _l("Order"), "order.company": _l("Customer company"),
        "payer_company": _l("Payer company"),
        "payer_account": _l("Payer bank account"), "amount": _l("Amount on the receipt"),
        "order.total": _l("Order total"), "received": _l("Amount received"),
        "status": _l("Status"), "uploaded_by": _l("Uploaded by"), "created_at": _l("Uploaded"),
        "reviewed_by": _l("Reviewed by"), "reviewed_at": _l("Reviewed at"), "comment": _l("Reason"),
        "file_name": _l("File"), "content_type": _l("Type"), "file_size": _l("Size (bytes)"),
    }
    column_default_sort = ("id", True)
    column_sortable_list = ("id", "payer_company", "amount", "status", "created_at")
    column_searchable_list = ("payer_company", "payer_account")
    column_select_related_list = (BankTransferReceipt.uploaded_by, BankTransferReceipt.reviewed_by)
    column_filters = (
        sqla_filters.FilterEqual(BankTransferReceipt.status, _l("Status"), options=list(RECEIPT_STATUSES.items())),
        AmountDiffers(BankTransferReceipt.amount_minor, _l("Amount vs order total")),
        "payer_company",
        "created_at",
    )
    column_formatters = {
        "amount": _receipt_amount_cell, "received": _receipt_received_cell, "status": _receipt_status_cell,
        "created_at": time_cell,
        "reviewed_at": time_cell,
        "order.company": lambda v, c, m, n: m.order.company.name,
        "order.total": lambda v, c, m, n: format_money(m.order.total, m.order.currency),
    }
    column_formatters_export = {
        "status": lambda v, c, m, n: str(RECEIPT_STATUSES.get(m.status, m.status)),
        "order.company": lambda v, c, m, n: m.order.company.name,
        "order.total": lambda v, c, m, n: m.order.total,
        "amount": lambda v, c, m, n: m.amount,
        "received": lambda v, c, m, n: m.received,
    }
    column_extra_row_actions = [EndpointLinkRowAction("fa fa-gavel", ".review_view", title=_l("Review"))]

    def __init__(self, *args, **kwargs):
        super().__init__(BankTransferReceipt, *args, **kwargs)

    def search_placeholder(self):
        return _("Payer company or account")

    def get_query(self):
        return super().get_query().options(joinedload(BankTransferReceipt.order).joinedload(Order.company))

    @expose("/review/", methods=("GET", "POST"))
    def review_view(self):
        list_url = get_redirect_target() or self.get_url(".index_view")
        receipt = self.get_one(request.args.get("id"))
        if receipt is None:
            flash(_("Receipt #%(id)s: not found.", id=request.args.get("id", "")[:20]), "error")
            return redirect(list_url)
        reason = request.form.get("reason", "")
        received = request.form.get("received", "")
        if request.method == "POST":
            decision = request.form.get("decision", "")
            receipt_id, number = receipt.id, receipt.order.number
            asked = confirm_receipt_decision(self, receipt, decision, reason, received)
            if asked is not None:
                return asked
            with unit_of_work() as work:
                if decision == "confirm":
                    confirm_receipt(db.session, current_user, receipt, date.today(), received)
                    credited = receipt.status == "credited"
                    shown = format_money(receipt.received, receipt.order.currency)
                elif decision == "reject":
                    reject_receipt(db.session, current_user, receipt, reason)
                else:
                    raise DomainError(_l("Choose confirm or reject."))
            if isinstance(work.error, AlreadyReviewed):
                return redirect(list_url)
            if work.failed:
                receipt = self.get_one(str(receipt_id))
            else:
                if decision == "confirm" and credited:
                    flash(_("Receipt #%(id)s: %(amount)s received, not the order total: credited to the customer's "
                            "balance; order %(number)s still awaits payment.", id=receipt_id, amount=shown,
                            number=number), "warning")
                elif decision == "confirm":
                    flash(_("Receipt #%(id)s confirmed: order %(number)s is paid.", id=receipt_id, number=number),
                          "success")
                else:
                    flash(_("Receipt #%(id)s rejected: order %(number)s still awaits payment.", id=receipt_id,
                            number=number), "success")
                return redirect(list_url)
        return self.render("renewdesk/bank_transfer_review.html", receipt=receipt, order=receipt.order,
                           matches=amount_matches(receipt), reason=reason, received=received,
                           statuses=RECEIPT_STATUSES,
                           order_statuses=ORDER_STATUSES, kinds=ORDER_KINDS, return_url=list_url,
                           events=history(db.session, "bank_transfer_receipt", receipt.id))

    @expose("/file/")
    def file_view(self):
        receipt = self.get_one(request.args.get("id"))
        if receipt is None or not may_view(db.session, current_user, receipt):
            abort(404)
        return receipt_file_response(receipt, inline=request.args.get("inline") == "1")


def register(admin, customer, finance) -> None:
    """Add this area's views: member accounts, buy coins, bank transfers (customer); confirmation (finance)."""
    admin.add_view(MemberAccountView(MemberAccount, name=_l("Member accounts"), category=customer))
    admin.add_view(BuyCoinsView(name=_l("Buy coins"), category=customer, endpoint="coins"))
    admin.add_view(BankTransferView(name=_l("Bank transfer receipts"), category=customer, endpoint="bank_transfer"))
    admin.add_view(ReceiptReviewView(name=_l("Bank transfer confirmation"), category=finance,
                                     endpoint="bank_transfer_review"))
