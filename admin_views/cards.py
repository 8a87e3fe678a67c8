"""Cards (seed 002): 号卡管理, 库存管理, 分销管理, 财务管理 — thin views over actions.cards,
actions.distribution and importers.cards.

Staff reach these views by their declared `roles`. A customer administrator reaches them only
when their company is a distributor (it has a DistributorProfile): `DistributorAccess` adds that
one rule to the role check, and the rows they see are scoped to their company tree through the
view's `scope_column` like every customer view. Real-name verification (实名认证) is open to every
customer administrator: filing it is how a company becomes a distributor.
"""
from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

from flask import Response, abort, current_app, flash, g, has_request_context, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from wtforms.validators import DataRequired, Length

from actions import DomainError, companies_in_scope, scope_company_ids
from actions.cards import (
    CARD_ADMIN_ROLES, PLATFORM, REVEAL_PIN_ROLES, CardInput, add_card, distributor_profile, find_by_pin,
    search_clause as card_search_clause,
    is_distributor_user, may_export_pins, parse_numbers, post_stock_document, reveal_id_number, reveal_pin,
    review_verification, stock_summary, submit_verification,
)
from actions.crypto import vault
from actions.distribution import (
    RULE_ROLES, approve_settlement, approve_withdrawal, close_withdrawal, commission_balance, company_statement,
    delete_rule, find_rule,
    pay_withdrawal, prepare_settlement, reveal_account, save_rule, save_share, sub_distributor_shares,
    submit_settlement, submit_withdrawal, own_rules,
)
from actions.money import format_money, format_percent, from_minor, typed
from actions.idempotency import remember
from admin_views.base import (
    RoleView, ScopedModelView, badge, claim_form, company_in_scope, confirm_first, label_formatter, page_label,
    unit_of_work,
)
from admin_views.confirm import Confirmation, ask, is_confirmed
from importers.cards import CHUNK as IMPORT_CHUNK
from importers.cards import (
    build_template, commit_chunk, error_workbook, existing_keys, export_cards, first_errors, read_upload,
    rollback_import, sort_upload, stage_rows,
)
from importers.xlsx import iter_file, write_xlsx
from models import (
    CARD_IMPORT_STATUSES, CARD_STATUSES, COMMISSION_ENTRY_KINDS, LEDGER_KINDS, COMMISSION_KINDS, COMMISSION_MODES,
    COMMISSION_STATES, ID_TYPES, DISTRIBUTOR_STATUSES, SETTLEMENT_STATUSES, STOCK_DOCUMENT_KINDS, WITHDRAWAL_STATUSES,
    CardImport, CardMovement, CardCustomer, CommissionEntry, CommissionRule, CommissionSettlement, Company,
    DistributorProfile, Order, Package, SimCard, Withdrawal, db,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LICENCE_TYPES = {".pdf", ".jpg", ".jpeg", ".png"}
LICENCE_MAX_BYTES = 5 * 1024 * 1024


def _is_distributor(user) -> bool:
    """Cached per request: every menu entry of this area asks."""
    key = f"_distributor_{user.id}"
    if key not in g:
        setattr(g, key, is_distributor_user(db.session, user))
    return getattr(g, key)


class DistributorAccess:
    """Staff by `roles`; customer administrators only when their company is a distributor (and, for an employee,
    when it has the view's `area`: RoleMixin.allows)."""

    def role_allows(self, user) -> bool:
        if super().role_allows(user):
            return True
        return bool(user.is_authenticated and user.is_active and not user.must_change_password
                    and user.role == "customer_admin" and _is_distributor(user))


def _money_cell(minor_name: str):
    def cell(view, context, model, name):
        return format_money(from_minor(getattr(model, minor_name), model.currency), model.currency)

    return cell


def _holder_name(key: int) -> str:
    if key == PLATFORM:
        return str(_l("Platform warehouse"))
    company = db.session.get(Company, key)
    return company.name if company else f"#{key}"


def holder_cell(view, context, model, name):
    """A list cell naming a card holder (the platform or a company): one query per page (page_label)."""
    key = getattr(model, name)
    if key == PLATFORM:
        return _holder_name(key)
    return page_label(context, model, name, Company.id, Company.name) or f"#{key}"


def _status_badges(choices, kinds):
    def cell(view, context, model, name):
        value = getattr(model, name)
        return badge(str(choices.get(value, value)), kinds.get(value, "secondary"))

    return cell


def holders() -> list[tuple[int, str]]:
    """Holders the current user may pick: staff see the platform and every distributor."""
    rows = db.session.execute(select(Company.id, Company.name).join(
        DistributorProfile, DistributorProfile.company_id == Company.id).order_by(Company.path)).all()
    if not current_user.is_staff:
        allowed = scope_company_ids(db.session, current_user)
        return [(i, n) for i, n in rows if i in allowed]
    return [(PLATFORM, str(_l("Platform warehouse")))] + [(i, n) for i, n in rows]


def int_arg(name: str, default: int | None = None) -> int | None:
    """A small non-negative integer from the request, else `default`."""
    value = request.values.get(name, "")
    return int(value) if value.isdecimal() and len(value) < 10 else default


def refused(endpoint: str = ".index_view"):
    """A page of a view the user may open but whose action their role may not take: say so, go back."""
    flash(_("Your role may not do this."), "error")
    return redirect(url_for(endpoint))


# --- 实名认证 -------------------------------------------------------------------------------------


class VerificationView(RoleView):
    """实名认证: a customer administrator files the company's legal identity; an admin verifies it."""

    roles = frozenset({"customer_admin"})
    area = "company"

    @expose("/", methods=("GET", "POST"))
    def index(self):
        company = current_user.company
        if company is None:  # staff: the verifications wait in the distributors list
            pending = db.session.scalar(select(func.count()).select_from(DistributorProfile)
                                        .where(DistributorProfile.status == "pending"))
            return self.render("renewdesk/cards/verification.html", profile=None, company=None, pending=pending,
                               id_types=ID_TYPES, statuses=DISTRIBUTOR_STATUSES)
        profile = distributor_profile(db.session, company.id)
        if request.method == "POST":
            licence = request.files.get("licence")
            name = digest = None
            if licence is not None and licence.filename:
                data = licence.stream.read(LICENCE_MAX_BYTES + 1)
                suffix = Path(licence.filename).suffix.lower()
                if len(data) > LICENCE_MAX_BYTES or suffix not in LICENCE_TYPES:
                    flash(_("Licence file: a PDF, JPG or PNG of at most 5 MB."), "error")
                    return self.render("renewdesk/cards/verification.html", profile=profile, id_types=ID_TYPES,
                                       statuses=DISTRIBUTOR_STATUSES, company=company, sent=request.form)
                digest = hashlib.sha256(data).hexdigest()
                folder = Path(current_app.instance_path) / "licences"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{digest}{suffix}").write_bytes(data)
                name = licence.filename[-255:]
            with unit_of_work() as work:
                submit_verification(db.session, current_user, vault(), company,
                                    legal_name=request.form.get("legal_name", ""),
                                    id_type=request.form.get("id_type", ""),
                                    id_number=request.form.get("id_number", ""),
                                    licence_file_name=name, licence_sha256=digest)
            if not work.failed:
                flash(_("Submitted: an administrator will verify it."), "success")
                return redirect(url_for(".index"))
        # A refused form keeps what was typed (the licence file is chosen again).
        return self.render("renewdesk/cards/verification.html", profile=profile, id_types=ID_TYPES,
                           statuses=DISTRIBUTOR_STATUSES, company=company, sent=request.form)


class DistributorProfileView(ScopedModelView):
    """Distributors and their verification: an administrator verifies or rejects (with a reason)."""

    roles = frozenset({"admin"})
    scope_column = "company_id"
    can_create = can_edit = can_delete = False
    column_list = ("company", "legal_name", "id_type", "id_number_hint", "licence_file_name", "status", "reason",
                   "reviewed_at", "created_at")
    column_details_list = column_list
    column_export_list = column_list
    column_labels = {"company": _l("Company"), "legal_name": _l("Legal name"), "id_type": _l("ID type"),
                     "id_number_hint": _l("ID number"), "licence_file_name": _l("Licence file"),
                     "status": _l("Status"), "reason": _l("Reason"), "reviewed_at": _l("Reviewed at"),
                     "created_at": _l("Submitted")}
    column_formatters = {"id_type": label_formatter(ID_TYPES),
                         "id_number_hint": lambda v, c, m, n: m.id_number_masked,
                         "status": _status_badges(DISTRIBUTOR_STATUSES, {"verified": "success", "rejected": "danger",
                                                                         "pending": "info"})}
    column_formatters_export = {"id_number_hint": lambda v, c, m, n: m.id_number_masked}
    column_searchable_list = ("legal_name",)
    column_filters = (sqla_filters.FilterEqual(DistributorProfile.status, _l("Status"),
                                               options=list(DISTRIBUTOR_STATUSES.items())),)
    column_select_related_list = (DistributorProfile.company,)
    column_default_sort = ("id", True)

    @action("verify", _l("Verify"), _l("Verify the selected distributors?"))
    def action_verify(self, ids):
        done = []
        for profile in self.scoped_rows(ids):
            try:
                review_verification(db.session, current_user, profile, approve=True)
                done.append(profile.legal_name)
            except DomainError as exc:
                flash(f"{profile.legal_name}: {exc}", "error")
        db.session.commit()
        if done:
            flash(_("Verified: %(names)s", names=", ".join(done)), "success")

    @expose("/reject/", methods=("GET", "POST"))
    def reject(self):
        profile = self.get_one(request.values.get("id", ""))
        if profile is None:
            abort(404)
        if request.method == "POST":
            with unit_of_work() as work:
                review_verification(db.session, current_user, profile, approve=False,
                                    reason=request.form.get("reason", ""))
            if not work.failed:
                flash(_("Verification of %(name)s rejected.", name=profile.legal_name), "success")
                return redirect(url_for(".index_view"))
        return self.render("renewdesk/cards/reason.html", title=_("Reject the verification of %(name)s",
                                                                   name=profile.legal_name),
                           button=_("Reject"), row_id=profile.id)

    @expose("/reveal/", methods=("GET", "POST"))
    def reveal(self):
        profile = self.get_one(request.values.get("id", ""))
        if profile is None:
            abort(404)
        secret = None
        if request.method == "POST":
            with unit_of_work():
                secret = reveal_id_number(db.session, current_user, vault(), profile, request.form.get("reason", ""))
        return self.render("renewdesk/cards/reason.html", title=_("Reveal the ID number of %(name)s",
                                                                   name=profile.legal_name),
                           button=_("Reveal"), row_id=profile.id, secret=secret)


# --- 号卡管理 -------------------------------------------------------------------------------------


def _pin_cell(view, context, model, name):
    return model.pin_masked


class SimCardView(DistributorAccess, ScopedModelView):
    """号卡: query by number, PIN (exact), plan, status; add, import, export; reveal one PIN with a reason."""

    roles = frozenset({"tech_support", "finance", "sales"})
    area = "cards"
    scope_column = "holder_key"
    can_create = can_edit = can_delete = False
    list_template = "renewdesk/cards/card_list.html"
    column_list = ("iccid", "phone", "pin_hint", "package", "valid_until", "status", "holder_key", "created_at")
    column_details_list = column_list + ("warehouse", "order_line_id", "import_id")
    column_export_list = ("iccid", "phone", "pin_hint", "package", "valid_until", "status", "holder_key")
    column_labels = {"iccid": "ICCID", "phone": _l("Phone number"), "pin_hint": "PIN", "package": _l("Package"),
                     "valid_until": _l("Valid until"), "status": _l("Status"), "holder_key": _l("Holder"),
                     "created_at": _l("Added"), "warehouse": _l("Warehouse"), "order_line_id": _l("Order line"),
                     "import_id": _l("Import")}
    column_formatters = {"pin_hint": _pin_cell, "holder_key": holder_cell,
                         "status": label_formatter(CARD_STATUSES)}
    column_formatters_export = {"pin_hint": _pin_cell, "holder_key": holder_cell,
                                "status": label_formatter(CARD_STATUSES)}
    column_searchable_list = ("iccid", "phone")
    # Whole numbers and their first digits through the unique indexes, else a part of one.
    search_clause = staticmethod(card_search_clause)
    column_sortable_list = ("iccid", "phone", "valid_until", "status", "created_at")
    column_select_related_list = (SimCard.package,)
    column_default_sort = ("id", True)
    export_types = ["xlsx"]
    can_export = True

    def __init__(self, *args, **kwargs):
        self.column_filters = (
            sqla_filters.FilterEqual(SimCard.status, _l("Status"), options=list(CARD_STATUSES.items())),
            sqla_filters.IntEqualFilter(SimCard.package_id, _l("Package"), options=self._plan_options),
            sqla_filters.DateBetweenFilter(SimCard.valid_until, _l("Valid until")),
        )
        super().__init__(SimCard, *args, **kwargs)

    @staticmethod
    def _plan_options():
        if not has_request_context():
            return []  # computed per request (admin_views.base), never at start-up
        return [(str(p.id), f"{p.code} {p.name}") for p in db.session.scalars(
            select(Package).where(Package.kind == "card").order_by(Package.code))]

    def search_placeholder(self):
        return _("ICCID or phone number")

    @expose("/find_pin/", methods=("POST",))
    def find_pin(self):
        """Exact search by PIN through its blind index; posted, so the PIN never sits in a URL or a log."""
        pin = request.form.get("pin", "")
        card = self.get_query().filter(find_by_pin(db.session, vault(), pin)).first() if pin.strip() else None
        if card is None:
            flash(_("No card of yours has this PIN."), "error")
            return redirect(url_for(".index_view"))
        return redirect(url_for(".details_view", id=card.id))

    def render(self, template, **kwargs):
        kwargs.setdefault("may_add", current_user.role in CARD_ADMIN_ROLES | {"admin"})
        kwargs.setdefault("may_export_pins", may_export_pins(current_user))
        return super().render(template, **kwargs)

    @expose("/add/", methods=("GET", "POST"))
    def add(self):
        """添加号卡."""
        if current_user.role not in CARD_ADMIN_ROLES | {"admin"}:
            return refused()
        packages = db.session.scalars(select(Package).where(Package.kind == "card", Package.active)
                                      .order_by(Package.code)).all()
        if request.method == "POST":
            form = request.form
            try:
                valid_until = date.fromisoformat(form.get("valid_until", ""))
            except ValueError:
                valid_until = None
            with unit_of_work() as work:
                card = add_card(db.session, current_user, vault(),
                                CardInput(form.get("iccid", ""), form.get("phone", ""), form.get("pin", ""),
                                          form.get("plan", ""), valid_until),
                                date.today(), holder_key=int_arg("holder", PLATFORM))
            if not work.failed:
                flash(_("Card %(iccid)s added to the stock.", iccid=card.iccid), "success")
                return redirect(url_for(".add"))
        return self.render("renewdesk/cards/card_add.html", packages=packages, holders=holders())

    @expose("/timeline/")
    def timeline(self):
        card = self.get_one(request.args.get("id", ""))
        if card is None:
            abort(404)
        movements = db.session.scalars(select(CardMovement).where(CardMovement.card_id == card.id)
                                       .order_by(CardMovement.id)).all()
        return self.render("renewdesk/cards/card_timeline.html", card=card, movements=movements,
                           statuses=CARD_STATUSES, holder_name=_holder_name)

    @expose("/reveal/", methods=("GET", "POST"))
    def reveal(self):
        """Show one PIN to a reveal role that typed why (audited, the PIN never in the audit row)."""
        if current_user.role not in REVEAL_PIN_ROLES:
            return refused()
        card = self.get_one(request.values.get("id", ""))
        if card is None:
            abort(404)
        secret = None
        if request.method == "POST":
            with unit_of_work():
                secret = reveal_pin(db.session, current_user, vault(), card, request.form.get("reason", ""))
        return self.render("renewdesk/cards/reason.html", title=_("Reveal the PIN of %(iccid)s", iccid=card.iccid),
                           button=_("Reveal"), row_id=card.id, secret=secret)

    @expose("/export_pins/", methods=("POST",))
    def export_pins(self):
        """The whole (scoped) list with PINs: a separate permission, audited."""
        if not may_export_pins(current_user):
            return refused()
        query = select(SimCard).order_by(SimCard.id)
        clause = self.scope_clause()
        if clause is not None:
            query = query.where(clause)
        handle = export_cards(db.session, current_user, vault(), query, with_pins=True)
        db.session.commit()
        return Response(iter_file(handle), mimetype=XLSX,
                        headers={"Content-Disposition": "attachment; filename=cards-with-pins.xlsx"})

    # --- 批量导入 ---
    @expose("/import/", methods=("GET", "POST"))
    def import_view(self):
        if not self._may_import():
            return refused()
        if request.method == "POST":
            file = request.files.get("file")
            if file is None or not file.filename:
                flash(_("Choose an .xlsx file to upload."), "error")
                return redirect(url_for(".import_view"))
            limit = current_app.config["IMPORT_MAX_BYTES"]
            data = file.stream.read(limit + 1)
            # Three phases, each its own short transaction: read (no database), sort and record, stage in chunks.
            db.session.commit()  # end the transaction loading the user: reading the workbook holds no lock
            with unit_of_work() as work:  # refusals (ImportRejected too) roll back and are flashed
                upload = read_upload(vault(), data, file.filename[-255:], date.today(), max_bytes=limit)
                in_db = existing_keys(db.session, upload, release=db.session.rollback)
                db.session.rollback()  # reads done: the sorting below holds no lock
                batch, rows = sort_upload(db.session, current_user, upload, date.today(),
                                          holder_key=int_arg("holder", PLATFORM), in_db=in_db)
            if work.failed:
                return redirect(url_for(".import_view"))
            for start in range(0, len(rows), IMPORT_CHUNK):
                with unit_of_work():
                    stage_rows(db.session, vault(), rows[start:start + IMPORT_CHUNK])
            return redirect(url_for(".import_batch", id=batch.id))
        batches = db.session.scalars(select(CardImport).order_by(CardImport.id.desc()).limit(30)).all()
        return self.render("renewdesk/cards/import.html", batches=batches, holders=holders(),
                           statuses=CARD_IMPORT_STATUSES)

    @expose("/import/template/")
    def import_template(self):
        return Response(build_template(str(get_locale() or "en")), mimetype=XLSX,
                        headers={"Content-Disposition": "attachment; filename=card-import-template.xlsx"})

    @staticmethod
    def _may_import() -> bool:
        return current_user.role in CARD_ADMIN_ROLES | {"admin"}

    def _batch(self) -> CardImport:
        batch = db.session.get(CardImport, int_arg("id", 0) or 0)
        if batch is None:
            abort(404)
        return batch

    @expose("/import/batch/")
    def import_batch(self):
        if not self._may_import():
            return refused()
        batch = self._batch()
        return self.render("renewdesk/cards/import_batch.html", batch=batch, errors=first_errors(batch))

    @expose("/import/errors/")
    def import_errors(self):
        if not self._may_import():
            return refused()
        handle = error_workbook(self._batch())
        return Response(iter_file(handle), mimetype=XLSX,
                        headers={"Content-Disposition": "attachment; filename=card-import-errors.xlsx"})

    @expose("/import/commit/", methods=("POST",))
    def import_commit(self):
        """Commit the next chunk (its own short transaction); the page posts again until done."""
        if not self._may_import():
            return {"error": _("Your role may not do this.")}, 403
        batch = self._batch()
        with unit_of_work(flash_error=False) as work:  # answered as JSON, not flashed
            done, total = commit_chunk(db.session, current_user, batch)
        if work.failed:
            return {"error": str(work.error)}, 409
        return {"done": done, "total": total, "status": batch.status}

    @expose("/import/rollback/", methods=("POST",))
    def import_rollback(self):
        if not self._may_import():
            return refused()
        batch = self._batch()
        purpose = f"{self.endpoint}.import_rollback"
        if not is_confirmed(purpose, [batch.id]):
            return ask(self, Confirmation(
                title=_("Roll back import %(id)s", id=batch.id),
                summary=_("Remove every card of import %(id)s (%(file)s) from the inventory.", id=batch.id,
                          file=batch.filename),
                note=_("Removed cards cannot be restored; import the file again to add them back."),
                confirm_label=_("Remove the cards")), purpose, [batch.id], url_for(".import_batch", id=batch.id))
        with unit_of_work() as work:
            removed = rollback_import(db.session, current_user, batch)
        if not work.failed:
            flash(_("Import %(id)s rolled back: %(n)s cards removed.", id=batch.id, n=removed), "success")
        return redirect(url_for(".import_batch", id=batch.id))


# --- 客户管理 -------------------------------------------------------------------------------------


class CardCustomerView(DistributorAccess, ScopedModelView):
    """客户管理: each distributor's customers, in categories it names itself."""

    roles = frozenset({"sales"})
    area = "card_customers"
    scope_column = "company_id"
    column_list = ("company", "name", "category", "contact_name", "phone", "address", "created_at")
    # 客户分类: the distributor's own classes of customers ("Category" reads 套餐大类, the catalog's, in Chinese).
    column_labels = {"company": _l("Distributor"), "name": _l("Customer"), "category": _l("Customer type"),
                     "contact_name": _l("Contact"), "phone": _l("Phone number"), "address": _l("Address"),
                     "note": _l("Note"), "created_at": _l("Created")}
    form_columns = ("company", "name", "category", "contact_name", "phone", "address", "note")
    column_searchable_list = ("name", "contact_name", "phone")
    column_filters = (sqla_filters.FilterEqual(CardCustomer.category, _l("Customer type")),
                      sqla_filters.FilterLike(CardCustomer.category, _l("Customer type")))
    column_select_related_list = (CardCustomer.company,)
    column_default_sort = ("id", True)
    form_args = {"name": {"validators": [DataRequired(), Length(max=200)]},
                 "category": {"validators": [Length(max=60)]}, "contact_name": {"validators": [Length(max=100)]},
                 "phone": {"validators": [Length(max=40)]}, "address": {"validators": [Length(max=255)]}}

    def create_form(self, obj=None):
        return self._distributor_companies(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._distributor_companies(super().edit_form(obj))

    def on_model_change(self, form, model, is_created):
        if model.company is not None:  # the form set the relationship; the scope check reads the column
            model.company_id = model.company.id
        super().on_model_change(form, model, is_created)

    def _distributor_companies(self, form):
        """Customers belong to distributors: the company picker offers the actor's distributor companies."""
        scoped = form.company.query_factory
        form.company.query_factory = lambda: [c for c in scoped() if distributor_profile(db.session, c.id)]
        return form


# --- 库存管理 -------------------------------------------------------------------------------------


class CardStockView(RoleView):
    """库存: cards in stock per plan and holder; post stock-out, transfer and adjustment documents."""

    roles = frozenset({"tech_support"})

    @expose("/", methods=("GET", "POST"))
    def index(self):
        if request.method == "POST":
            with unit_of_work() as work:
                document = post_stock_document(
                    db.session, current_user, request.form.get("kind", ""), parse_numbers(request.form.get("numbers")),
                    from_holder=int_arg("from_holder", PLATFORM), to_holder=int_arg("to_holder"),
                    note=request.form.get("note", ""))
            if not work.failed:
                flash(_("Document %(id)s posted: %(n)s cards.", id=document.id, n=document.cards), "success")
                return redirect(url_for(".index"))
        return self.render("renewdesk/cards/stock.html", rows=stock_summary(db.session), holders=holders(),
                           holder_name=_holder_name, kinds={k: v for k, v in STOCK_DOCUMENT_KINDS.items()
                                                            if k != "stock_in"})


# --- 分销管理 -------------------------------------------------------------------------------------


def _rate(bp: int | None) -> str:
    """A rate stored in basis points, as the reader writes a percent (8%, 12,5% in Vietnamese)."""
    return "" if bp is None else format_percent(Decimal(bp) / 100)


def _parents_share_hidden(rule: CommissionRule) -> bool:
    """A distributor reads its own rule without its parent's level-2 share (what the parent keeps of its sales)."""
    return not current_user.is_staff and rule.company_id == current_user.company_id


def _rule_fixed(rule: CommissionRule) -> str:
    """A fixed-per-card rule's own amount per card."""
    return format_money(from_minor(rule.fixed_level1_minor, rule.currency), rule.currency)


def _may_set_rules() -> bool:
    return current_user.role in RULE_ROLES | {"admin"}


def _set_by(rule: CommissionRule) -> str:
    """Who set a rule: the parent distributor (and its user), or the platform."""
    who = rule.set_by_distributor.name if rule.set_by_distributor is not None else _("Platform")
    return f"{who} ({rule.set_by_user.username})" if rule.set_by_user is not None else who


class CommissionRuleView(DistributorAccess, ScopedModelView):
    """分销设置: each distributor × package rule (percent, fixed per card or monthly tiers; two levels).
    Finance and sales set any rule (the platform's override); a distributor reads its own rates and sets,
    changes and deletes the shares it passes to its direct sub-distributors (actions.distribution.save_share)."""

    roles = frozenset({"finance", "sales"})
    area = "distribution"
    scope_column = "company_id"
    can_create = can_edit = False
    column_list = ("company", "package", "mode", "kind", "level1_rate_bp", "level2_rate_bp", "tiers", "hold_days",
                   "set_by", "updated_at")
    column_labels = {"company": _l("Distributor"), "package": _l("Package"), "mode": _l("Mode"), "kind": _l("Kind"),
                     "level1_rate_bp": _l("Level-1 rate"), "level2_rate_bp": _l("Level-2 rate"),
                     "tiers": _l("Monthly tiers"), "hold_days": _l("Hold days"), "updated_at": _l("Updated"),
                     "currency": _l("Currency"), "fixed_level1_minor": _l("Level-1 fixed amount"),
                     "fixed_level2_minor": _l("Level-2 fixed amount"), "set_by": _l("Set by"),
                     "set_by_distributor": _l("Set by"), "set_by_user": _l("Saved by")}
    column_formatters = {"mode": label_formatter(COMMISSION_MODES), "kind": label_formatter(COMMISSION_KINDS),
                         "set_by": lambda v, c, m, n: _set_by(m),
                         "package": lambda v, c, m, n: m.package or _("Every plan"),
                         "level1_rate_bp": lambda v, c, m, n: _rate(m.level1_rate_bp),
                         "level2_rate_bp": lambda v, c, m, n: ("—" if _parents_share_hidden(m)
                                                               else _rate(m.level2_rate_bp)),
                         "fixed_level1_minor": _money_cell("fixed_level1_minor"),
                         "fixed_level2_minor": lambda v, c, m, n: "—" if _parents_share_hidden(m) else format_money(
                             from_minor(m.fixed_level2_minor, m.currency), m.currency)}
    column_select_related_list = (CommissionRule.company, CommissionRule.package, CommissionRule.set_by_distributor,
                                  CommissionRule.set_by_user)
    list_template = "renewdesk/cards/rule_list.html"

    @expose("/")
    def index_view(self):
        """Staff read every rule; a distributor its own rates and the shares of its direct sub-distributors."""
        if current_user.is_staff:
            return super().index_view()
        company_id = current_user.company_id
        return self.render("renewdesk/cards/rates.html", own=own_rules(db.session, company_id),
                           children=sub_distributor_shares(db.session, company_id), rate=_rate,
                           kinds=COMMISSION_KINDS, money=_rule_fixed)

    def delete_model(self, model):
        """The platform deletes a rule through actions.distribution.delete_rule (refused while shares depend on it)."""
        with unit_of_work() as work:
            delete_rule(db.session, current_user, model)
        return not work.failed

    def _direct_child(self, raw) -> Company:
        """A sub-distributor named by the request: 404 outside the user's tree (its own company and its
        direct sub-distributors are refused by the action, with a message)."""
        company = company_in_scope(raw)
        if company is None:
            abort(404)
        return company

    @expose("/share/", methods=("GET", "POST"))
    def share(self):
        """分销设置 by a distributor: the share passed to one direct sub-distributor on a package (or every one)."""
        if current_user.is_staff:
            return redirect(url_for(".set_rule", **request.args))
        children = [c for c, _rows in sub_distributor_shares(db.session, current_user.company_id)]
        packages = db.session.scalars(select(Package).where(Package.kind == "card").order_by(Package.code)).all()
        if request.method == "POST":
            form = request.form
            child = self._direct_child(form.get("company_id"))
            with unit_of_work() as work:
                save_share(db.session, current_user, child, int_arg("package_id"), form.get("share", ""))
            if not work.failed:
                flash(_("Share saved for %(company)s.", company=child.name), "success")
                return redirect(url_for(".index_view"))
            values = form.to_dict()  # refused: the form again as it was typed
        else:
            values = {name: request.args.get(name, "") for name in ("company_id", "package_id")}
            if values["company_id"]:
                child = self._direct_child(values["company_id"])
                rule = find_rule(db.session, child.id, int_arg("package_id"))
                if rule is not None:
                    values["share"] = typed(Decimal(rule.level1_rate_bp) / 100)
        return self.render("renewdesk/cards/share_form.html", children=children, packages=packages, values=values,
                           own=own_rules(db.session, current_user.company_id), rate=_rate, kinds=COMMISSION_KINDS)

    @expose("/share/delete/", methods=("POST",))
    def delete_share(self):
        """A distributor deletes a share it passed down, after a confirmation page naming it."""
        rule = self.get_one(request.form.get("id"))  # scoped: another tree's rule is not found
        if rule is None or current_user.is_staff:
            abort(404)
        purpose = f"{self.endpoint}.share.delete"
        if not is_confirmed(purpose, [rule.id]):
            package = rule.package.code if rule.package else _("Every plan")
            return ask(self, Confirmation(
                title=_("Delete the share"),
                summary=_("Delete the share %(share)s passed to %(company)s on %(package)s?",
                          share=_rate(rule.level1_rate_bp), company=rule.company.name, package=package),
                note=_("Its sales then earn it no commission until a share is set again."),
                confirm_label=_("Delete")), purpose, [rule.id], self.get_url(".index_view"))
        with unit_of_work() as work:
            delete_rule(db.session, current_user, rule)
        if not work.failed:
            flash(_("Share deleted."), "success")
        return redirect(url_for(".index_view"))

    @property
    def can_delete(self) -> bool:
        return has_request_context() and current_user.is_authenticated and _may_set_rules()

    def render(self, template, **kwargs):
        kwargs.setdefault("may_set", _may_set_rules())
        return super().render(template, **kwargs)

    @staticmethod
    def _form_values(rule: CommissionRule | None) -> dict:
        """A saved rule as the form shows it (percents and amounts as the reader types them), else the defaults."""
        if rule is None:
            return {"level1": "0", "level2": "0", "fixed1": "0", "fixed2": "0", "hold_days": 7, "tiers": ""}
        return {"company_id": rule.company_id, "package_id": rule.package_id, "mode": rule.mode, "kind": rule.kind,
                "level1": typed(Decimal(rule.level1_rate_bp) / 100),
                "level2": typed(Decimal(rule.level2_rate_bp) / 100),
                "fixed1": typed(from_minor(rule.fixed_level1_minor, rule.currency)),
                "fixed2": typed(from_minor(rule.fixed_level2_minor, rule.currency)),
                "hold_days": rule.hold_days, "tiers": rule.tiers}

    @expose("/set/", methods=("GET", "POST"))
    def set_rule(self):
        """分销设置: a new rule, or a saved one (`company_id`, `package_id`) to change."""
        if not _may_set_rules():
            return refused()
        companies = db.session.scalars(select(Company).join(
            DistributorProfile, DistributorProfile.company_id == Company.id).order_by(Company.path)).all()
        packages = db.session.scalars(select(Package).where(Package.kind == "card").order_by(Package.code)).all()
        if request.method == "POST":
            form = request.form
            company = db.session.get(Company, int_arg("company_id", 0) or 0)
            with unit_of_work() as work:
                if company is None:
                    raise DomainError(_l("Distributor: choose one."))
                save_rule(db.session, current_user, company, int_arg("package_id"), mode=form.get("mode", ""),
                          kind=form.get("kind", ""), level1_percent=form.get("level1", "0"),
                          level2_percent=form.get("level2", "0"), fixed_level1=form.get("fixed1", "0"),
                          fixed_level2=form.get("fixed2", "0"), tiers=form.get("tiers", ""),
                          hold_days=int_arg("hold_days", 7))
            if not work.failed:
                flash(_("Commission rule saved for %(company)s.", company=company.name), "success")
                return redirect(url_for(".index_view"))
        if request.method == "POST":  # refused: the form again as it was typed
            values = request.form.to_dict()
        else:
            company_id = int_arg("company_id")
            values = self._form_values(find_rule(db.session, company_id, int_arg("package_id")) if company_id else None)
        return self.render("renewdesk/cards/rule_form.html", companies=companies, packages=packages,
                           modes=COMMISSION_MODES, kinds=COMMISSION_KINDS, values=values)


class CommissionEntryView(DistributorAccess, ScopedModelView):
    """分销订单: each commission entry with its order, base, rate and amount (reversals negative)."""

    roles = frozenset({"finance"})
    area = "distribution"
    scope_column = "company_id"
    can_create = can_edit = can_delete = False
    column_list = ("created_at", "company", "seller", "level", "kind", "order_id", "cards", "base_minor", "rate_bp",
                   "amount_minor", "month", "state")
    column_labels = {"created_at": _l("Created"), "company": _l("Earned by"), "seller": _l("Sold by"),
                     "level": _l("Level"), "kind": _l("Kind"), "order_id": _l("Order number"), "cards": _l("Cards"),
                     "base_minor": _l("Base (net paid)"), "rate_bp": _l("Rate"), "amount_minor": _l("Commission"),
                     "month": _l("Month"), "state": _l("State"), "currency": _l("Currency"),
                     "hold_until": _l("Held until")}
    column_formatters = {"base_minor": _money_cell("base_minor"), "amount_minor": _money_cell("amount_minor"),
                         "order_id": lambda v, c, m, n: page_label(c, m, "order_id", Order.id, Order.number) or "",
                         "rate_bp": lambda v, c, m, n: _rate(m.rate_bp),
                         "kind": label_formatter(COMMISSION_ENTRY_KINDS), "state": label_formatter(COMMISSION_STATES)}
    column_filters = (sqla_filters.FilterEqual(CommissionEntry.state, _l("State"),
                                               options=list(COMMISSION_STATES.items())),
                      sqla_filters.FilterEqual(CommissionEntry.month, _l("Month")))
    column_select_related_list = (CommissionEntry.company, CommissionEntry.seller)
    column_default_sort = ("id", True)


class CommissionSettlementView(DistributorAccess, ScopedModelView):
    """结算: monthly statements draft → submitted → approved (not by the preparer) → posted once."""

    roles = frozenset({"finance"})
    area = "distribution"
    scope_column = "company_id"
    can_create = can_edit = can_delete = False
    column_list = ("id", "company", "month", "total_minor", "entries", "status", "created_at", "approved_at",
                   "posted_at")
    column_labels = {"id": _l("No."), "company": _l("Distributor"), "month": _l("Month"),
                     "total_minor": _l("Total"), "entries": _l("Entries"), "status": _l("Status"),
                     "created_at": _l("Prepared"), "approved_at": _l("Approved"), "posted_at": _l("Posted"),
                     "currency": _l("Currency"), "submitted_at": _l("Submitted")}
    column_formatters = {"total_minor": _money_cell("total_minor"),
                         "status": _status_badges(SETTLEMENT_STATUSES, {"posted": "success", "submitted": "info",
                                                                        "approved": "primary"})}
    column_select_related_list = (CommissionSettlement.company,)
    column_default_sort = ("id", True)
    list_template = "renewdesk/cards/settlement_list.html"

    def is_action_allowed(self, name):
        return current_user.is_staff and super().is_action_allowed(name)

    def _each(self, ids, operation, message):
        done = []
        for row in self.scoped_rows(ids):
            with unit_of_work() as work:
                operation(db.session, current_user, row)
            if not work.failed:
                done.append(str(row.id))
        if done:
            flash(message % {"ids": ", ".join(done)}, "success")

    @action("submit", _l("Submit"), _l("Submit the selected statements for approval?"))
    def action_submit(self, ids):
        self._each(ids, submit_settlement, _("Submitted: %(ids)s"))

    @action("approve", _l("Approve and post"))
    @confirm_first(lambda view, rows: describe_posting(rows))
    def action_approve(self, ids):
        self._each(ids, approve_settlement, _("Approved and posted: %(ids)s"))

    @expose("/prepare/", methods=("POST",))
    def prepare(self):
        if not current_user.is_staff:
            return refused()
        company = db.session.get(Company, int_arg("company_id", 0) or 0)
        month = request.form.get("month", "").strip()
        with unit_of_work() as work:
            if company is None or len(month) != 7:
                raise DomainError(_l("Choose a distributor and a month (yyyy-mm)."))
            settlement = prepare_settlement(db.session, current_user, company, month)
        if not work.failed:
            flash(_("Statement %(id)s prepared.", id=settlement.id), "success")
        return redirect(url_for(".index_view"))

    def render(self, template, **kwargs):
        if current_user.is_staff:
            kwargs.setdefault("distributors", db.session.scalars(select(Company).join(
                DistributorProfile, DistributorProfile.company_id == Company.id).order_by(Company.path)).all())
        return super().render(template, **kwargs)


# --- 财务管理: withdrawals, the statement ----------------------------------------------------------


def describe_posting(statements) -> Confirmation:
    """What approving statements does: each one's total goes to its distributor's commission wallet."""
    return Confirmation(
        title=_("Approve and post statements"),
        summary=_("Approve %(count)s statements and post them to the commission wallets:", count=len(statements)),
        items=[f"#{s.id} {s.company.name} {s.month} · {format_money(from_minor(s.total_minor, s.currency), s.currency)}"
               for s in statements],
        confirm_label=_("Approve and post %(count)s statements", count=len(statements)))


def withdrawal_label(row: Withdrawal) -> str:
    """A withdrawal as a confirmation page names it: number, distributor, amount and the account paid to."""
    return (f"#{row.id} · {row.company.name} · {format_money(from_minor(row.amount_minor, row.currency), row.currency)}"
            f" · {row.bank_name} {row.account_name} {row.account_masked}")


def describe_approval(view, rows) -> Confirmation | None:
    """Approving withdrawals: each named with its amount; what finance does next."""
    submitted = [row for row in rows if row.status == "submitted"]
    if not submitted:
        return None  # the action names each one as already reviewed
    return Confirmation(
        title=_("Approve withdrawals"),
        summary=_("Approve %(count)s withdrawals, %(amount)s in all:", count=len(submitted), amount=" + ".join(
            format_money(from_minor(sum(r.amount_minor for r in submitted if r.currency == currency), currency),
                         currency) for currency in sorted({r.currency for r in submitted}))),
        items=[withdrawal_label(row) for row in submitted],
        note=_("The amounts stay held from the distributors' commission; finance then transfers them by bank and "
               "marks each one paid (or failed, which gives the amount back)."),
        confirm_label=_("Approve %(count)s withdrawals", count=len(submitted)),
        refused=[_("#%(id)s: already reviewed (%(status)s)", id=row.id,
                   status=WITHDRAWAL_STATUSES.get(row.status, row.status)) for row in rows if row.status != "submitted"])


def describe_cancellation(view, rows) -> Confirmation | None:
    """A distributor cancelling its submitted withdrawals: each named; the amount comes back."""
    submitted = [row for row in rows if row.status == "submitted"]
    if not submitted:
        return None  # the action names each one as no longer submitted
    return Confirmation(
        title=_("Cancel withdrawals"),
        summary=_("Cancel %(count)s withdrawals:", count=len(submitted)),
        items=[withdrawal_label(row) for row in submitted],
        note=_("Nothing is paid: the held amounts go back to your commission balance, available again."),
        confirm_label=_("Cancel %(count)s withdrawals", count=len(submitted)),
        refused=[_("#%(id)s: already reviewed (%(status)s)", id=row.id,
                   status=WITHDRAWAL_STATUSES.get(row.status, row.status)) for row in rows if row.status != "submitted"])


def describe_decision(row: Withdrawal, outcome: str, text: str) -> Confirmation:
    """Paying, rejecting or failing one withdrawal: its amount and where the money goes."""
    amount = format_money(from_minor(row.amount_minor, row.currency), row.currency)
    if outcome == "paid":
        return Confirmation(
            title=_("Mark withdrawal %(id)s paid", id=row.id),
            summary=_("Withdrawal %(id)s of %(company)s: %(amount)s was transferred to %(account)s.", id=row.id,
                      company=row.company.name, amount=amount,
                      account=f"{row.bank_name} {row.account_name} {row.account_masked}"),
            items=[_("Bank reference: %(reference)s", reference=text.strip())],
            note=_("The held amount leaves the commission for good; this cannot be undone."),
            confirm_label=_("Mark paid"))
    return Confirmation(
        title=_("Withdrawal %(id)s: %(status)s", id=row.id, status=WITHDRAWAL_STATUSES.get(outcome, outcome)),
        summary=_("Close withdrawal %(id)s of %(company)s (%(amount)s) as %(status)s.", id=row.id,
                  company=row.company.name, amount=amount, status=WITHDRAWAL_STATUSES.get(outcome, outcome)),
        items=[_("Reason: %(reason)s", reason=text.strip())],
        note=_("Nothing is paid: the held %(amount)s goes back to the distributor's commission balance.", amount=amount),
        confirm_label=_("Confirm"))


class WithdrawalView(DistributorAccess, ScopedModelView):
    """提现: distributors submit (held at once) or cancel; finance approves, pays, rejects or fails."""

    roles = frozenset({"finance"})
    area = "card_finance"
    scope_column = "company_id"
    can_create = can_edit = can_delete = False
    list_template = "renewdesk/cards/withdrawal_list.html"
    column_list = ("id", "company", "amount_minor", "bank_name", "account_name", "account_hint", "status",
                   "bank_reference", "reason", "created_at", "paid_at")
    column_export_list = column_list
    column_labels = {"id": _l("No."), "company": _l("Distributor"), "amount_minor": _l("Amount"),
                     "bank_name": _l("Bank"), "account_name": _l("Account name"), "account_hint": _l("Account"),
                     "status": _l("Status"), "bank_reference": _l("Bank reference"), "reason": _l("Reason"),
                     "created_at": _l("Submitted"), "paid_at": _l("Paid"), "currency": _l("Currency"),
                     "submitted_by": _l("Submitted by"), "approved_by": _l("Approved by"),
                     "decided_at": _l("Decided")}
    column_formatters = {"amount_minor": _money_cell("amount_minor"),
                         "account_hint": lambda v, c, m, n: m.account_masked,
                         "status": _status_badges(WITHDRAWAL_STATUSES, {"paid": "success", "submitted": "info",
                                                                        "approved": "primary", "rejected": "danger",
                                                                        "failed": "danger"})}
    column_formatters_export = {"account_hint": lambda v, c, m, n: m.account_masked,
                                "amount_minor": lambda v, c, m, n: str(from_minor(m.amount_minor, m.currency))}
    column_filters = (sqla_filters.FilterEqual(Withdrawal.status, _l("Status"),
                                               options=list(WITHDRAWAL_STATUSES.items())),)
    column_select_related_list = (Withdrawal.company,)
    column_default_sort = ("id", True)

    def is_action_allowed(self, name):
        if name == "cancel":
            return current_user.role == "customer_admin"
        return current_user.is_staff and super().is_action_allowed(name)

    @action("approve", _l("Approve"))
    @confirm_first(describe_approval)
    def action_approve(self, ids):
        for row in self.scoped_rows(ids):
            with unit_of_work() as work:
                approve_withdrawal(db.session, current_user, row)
            if not work.failed:
                flash(_("Withdrawal %(id)s approved.", id=row.id), "success")

    @action("cancel", _l("Cancel"))
    @confirm_first(describe_cancellation)
    def action_cancel(self, ids):
        for row in self.scoped_rows(ids):
            with unit_of_work() as work:
                close_withdrawal(db.session, current_user, row, "cancelled")
            if not work.failed:
                flash(_("Withdrawal %(id)s cancelled; the amount is available again.", id=row.id), "success")

    @expose("/decide/", methods=("GET", "POST"))
    def decide(self):
        """Pay (bank reference), reject or fail (reason) one withdrawal; reveal its account number."""
        if not current_user.is_staff:
            return refused()
        row = self.get_one(request.values.get("id", ""))
        if row is None:
            abort(404)
        secret = None
        if request.method == "POST":
            outcome, text = request.form.get("outcome", ""), request.form.get("text", "")
            purpose = f"{self.endpoint}.decide.{outcome}"
            if (outcome in ("paid", "rejected", "failed") and text.strip()
                    and not is_confirmed(purpose, [row.id])):  # an empty text is refused below, without asking
                return ask(self, describe_decision(row, outcome, text), purpose, [row.id],
                           url_for(".decide", id=row.id))
            with unit_of_work() as work:
                if outcome == "paid":
                    pay_withdrawal(db.session, current_user, row, text)
                elif outcome == "reveal":
                    secret = reveal_account(db.session, current_user, vault(), row, text)
                else:
                    close_withdrawal(db.session, current_user, row, outcome, text)
            if not work.failed:
                if outcome != "reveal":
                    flash(_("Withdrawal %(id)s: %(status)s.", id=row.id,
                            status=WITHDRAWAL_STATUSES.get(row.status, row.status)), "success")
                    return redirect(url_for(".index_view"))
        return self.render("renewdesk/cards/withdrawal_decide.html", row=row, secret=secret,
                           statuses=WITHDRAWAL_STATUSES, amount=format_money(from_minor(row.amount_minor, row.currency),
                                                                             row.currency))

    @expose("/withdraw/", methods=("GET", "POST"))
    def withdraw(self):
        """A distributor asks for a withdrawal to its account in the verified legal name."""
        if current_user.role != "customer_admin":
            return refused()
        company = current_user.company
        if request.method == "POST":
            form, done_url = request.form, url_for(".index_view")
            with unit_of_work() as work:  # the amount leaves the wallet: a form sent twice is applied once
                remember(claim_form("withdrawal"), done_url)
                withdrawal = submit_withdrawal(db.session, current_user, vault(), company,
                                               amount=form.get("amount", ""), bank_name=form.get("bank_name", ""),
                                               account_name=form.get("account_name", ""),
                                               account_number=form.get("account_number", ""))
                number = withdrawal.id
            again = work.already_done(done_url)
            if again:
                return again
            if not work.failed:
                flash(_("Withdrawal %(id)s submitted; the amount is held until finance pays it.", id=number),
                      "success")
                return redirect(done_url)
        profile = distributor_profile(db.session, company.id)
        return self.render("renewdesk/cards/withdrawal_new.html", profile=profile,
                           available=format_money(commission_balance(db.session, company.id), "CNY"))


class CardFinanceView(DistributorAccess, RoleView):
    """财务管理: a company's income and expenses (order income, recharges, withdrawals, commission), from the ledger."""

    roles = frozenset({"finance"})
    area = "card_finance"

    @expose("/")
    def index(self):
        companies = list(companies_in_scope(db.session, current_user))
        company_id = int_arg("company_id") or (current_user.company_id if not current_user.is_staff else None)
        company = next((c for c in companies if c.id == company_id), None)
        if company_id is not None and company is None:
            abort(404)
        statement = company_statement(db.session, current_user, company) if company is not None else None
        return self.render("renewdesk/cards/finance.html", companies=companies, company_id=company_id,
                           statement=statement, kinds=LEDGER_KINDS)


# --- 分销报表 -------------------------------------------------------------------------------------


def report_rows(company_ids: set[int] | None, group: str):
    """Order count, cards, sales (net) and commission by distributor, level, package or month."""
    columns = {"distributor": Company.name, "level": CommissionEntry.level, "package": Package.code,
               "month": CommissionEntry.month}
    key = columns[group]
    query = (select(key, CommissionEntry.currency,
                    func.count(func.distinct(CommissionEntry.order_id)).filter(CommissionEntry.kind == "sale"),
                    func.coalesce(func.sum(CommissionEntry.cards).filter(CommissionEntry.level == 1), 0),
                    func.coalesce(func.sum(CommissionEntry.base_minor).filter(CommissionEntry.level == 1), 0),
                    func.coalesce(func.sum(CommissionEntry.amount_minor), 0))
             .join(Company, Company.id == CommissionEntry.company_id)
             .outerjoin(Package, Package.id == CommissionEntry.package_id)
             .group_by(key, CommissionEntry.currency).order_by(key))
    if company_ids is not None:
        query = query.where(CommissionEntry.company_id.in_(company_ids))
    return [{"key": str(k if k is not None else "—"), "currency": cur, "orders": orders, "cards": cards,
             "sales": from_minor(sales, cur), "commission": from_minor(commission, cur)}
            for k, cur, orders, cards, sales, commission in db.session.execute(query)]


class CardReportView(DistributorAccess, RoleView):
    """分销报表: count, sales and commission by distributor, level, package and month; charts and xlsx."""

    roles = frozenset({"finance", "sales"})
    area = "distribution"
    groups = {"distributor": _l("Distributor"), "level": _l("Level"), "package": _l("Package"), "month": _l("Month")}

    def _rows(self):
        group = request.args.get("group", "month")
        if group not in self.groups:
            group = "month"
        scope = None if current_user.is_staff else scope_company_ids(db.session, current_user)
        return group, report_rows(scope, group)

    @expose("/")
    def index(self):
        group, rows = self._rows()
        chart = {"keys": [r["key"] for r in rows], "sales": [str(r["sales"]) for r in rows],
                 "commission": [str(r["commission"]) for r in rows], "orders": [r["orders"] for r in rows]}
        shown = [{**r, "sales": format_money(r["sales"], r["currency"]),
                  "commission": format_money(r["commission"], r["currency"])} for r in rows]
        return self.render("renewdesk/cards/report.html", group=group, groups=self.groups, rows=shown, chart=chart)

    @expose("/export/")
    def export(self):
        group, rows = self._rows()
        handle = write_xlsx([str(self.groups[group]), _("Currency"), _("Orders"), _("Cards"), _("Sales"),
                             _("Commission")],
                            ([r["key"], r["currency"], r["orders"], r["cards"], r["sales"], r["commission"]]
                             for r in rows), sheet_title=str(self.name))
        return Response(iter_file(handle), mimetype=XLSX,
                        headers={"Content-Disposition": f"attachment; filename=card-report-{group}.xlsx"})


def register(admin, *, cards, distribution, finance, system) -> None:
    """The card area's menus: 号卡管理 and 分销管理 groups, withdrawals under finance."""
    admin.add_view(VerificationView(name=_l("Real-name verification"), category=cards, endpoint="card_verification"))
    admin.add_view(SimCardView(name=_l("Cards"), category=cards))
    admin.add_view(CardCustomerView(CardCustomer, name=_l("Customers"), category=cards))
    admin.add_view(CardStockView(name=_l("Card stock"), category=cards, endpoint="card_stock"))
    admin.add_view(CommissionRuleView(CommissionRule, name=_l("Commission settings"), category=distribution))
    admin.add_view(CommissionEntryView(CommissionEntry, name=_l("Distribution orders"), category=distribution))
    admin.add_view(CommissionSettlementView(CommissionSettlement, name=_l("Commission settlement"),
                                            category=distribution))
    admin.add_view(CardReportView(name=_l("Distribution reports"), category=distribution, endpoint="card_report"))
    admin.add_view(WithdrawalView(Withdrawal, name=_l("Withdrawals"), category=finance))
    admin.add_view(CardFinanceView(name=_l("Income and expenses"), category=finance, endpoint="card_finance"))
    admin.add_view(DistributorProfileView(DistributorProfile, name=_l("Distributors"), category=system))
