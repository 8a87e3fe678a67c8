"""The one place where access is decided: roles per view, company scope per row.

Every view of the console derives from `RoleView` (plain pages) or `ScopedModelView`
(model pages). A view declares `roles` once; admins may use every view. A model view
that customer administrators may use names its `scope_column` (the column holding the
row's company id), and every query, count, detail page, form, export and action goes
through the scoped query built here.
"""
from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, time, timezone, tzinfo
from decimal import Decimal
from urllib.parse import quote

from flask import Response, abort, flash, g, has_request_context, redirect, request, stream_with_context, url_for
from flask_admin import BaseView, expose
from flask_admin.actions import action
from flask_admin.babel import gettext as admin_gettext
from flask_admin.babel import lazy_gettext as admin_lazy_gettext
from flask_admin.babel import ngettext as admin_ngettext
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.model.form import converts
from flask_admin.model import filters as model_filters
from flask_admin.model.typefmt import DETAIL_FORMATTERS
from flask_admin.contrib.sqla.fields import QuerySelectField
from flask_admin.helpers import get_redirect_target, is_safe_url
from flask_admin.model.template import BaseListRowAction, DeleteRowAction, EndpointLinkRowAction
from flask_wtf.csrf import generate_csrf
from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import func, inspect, literal_column, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import joinedload
from werkzeug.utils import secure_filename
from sqlalchemy import and_, or_
from wtforms import StringField
from wtforms.validators import InputRequired, NumberRange, StopValidation, ValidationError

from actions import ActionResult, DomainError, companies_in_scope, each_in_savepoint, in_scope, scope_filter
from actions.audit import record
from actions.permissions import may_use, may_use_any
from actions.texts import change, changes_param, message, msgid
from admin_views.confirm import Confirmation, ask, is_confirmed
from actions.times import MINUTE, format_minute, reader_zone
from actions.money import EXPONENTS, exponent, format_money, from_minor, parse, round_money, to_minor, typed
from actions.idempotency import FIELD as IDEMPOTENCY_FIELD
from actions.idempotency import AlreadySubmitted, claim
from actions.invoices import invoice_status_label
from importers.xlsx import Amount, formula_safe, stream_xlsx
from models import INVOICE_STATUSES, WALLET_CURRENCIES, Company, db, utcnow

MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys on PostgreSQL
COUNT_BOUND = 10_000  # a list counts its rows up to here and shows "10,000+" beyond


class BoundedCount(int):
    """A list's row count known only to exceed COUNT_BOUND: the pager's number, shown as "10,000+"."""

    def __new__(cls, bound: int):
        value = super().__new__(cls, bound + 1)
        value.bound = bound
        return value

    def __str__(self) -> str:
        return _("%(count)s+", count=format_number(self.bound))

    def __html__(self) -> str:
        return str(escape(str(self)))


def parse_row_id(value) -> int | None:
    """A submitted row id as an int, or None for anything that is not a plain positive id."""
    text = str(value).strip() if value is not None else ""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ROW_ID else None


def company_in_scope(raw) -> Company | None:
    """The company whose id was submitted, if it is one of the signed-in user's companies; else None."""
    pk = parse_row_id(raw)
    company = db.session.get(Company, pk) if pk is not None else None
    if company is None or not in_scope(current_user, company.id, db.session):
        return None
    return company


def flash_result(result: ActionResult, done_message: str) -> None:
    """One flash for what changed, one naming each refused row and why."""
    if result.changed:
        flash(done_message % {"count": len(result.changed)}, "success")
    if result.refused:
        flash(
            _("Not changed: %(rows)s", rows="; ".join(f"{label} ({why})" for label, why in result.refused[:200]))
            + (" …" if len(result.refused) > 200 else ""),
            "error",
        )


class UnitOfWork:
    """One transaction of a view action: commit once on success, roll back on any exception.

    A `DomainError` raised inside is flashed (with its `flash_category`, "error" unless the error
    says otherwise) and kept in `error`; the view then chooses what to render. Any other exception
    rolls back and propagates.
    """

    def __init__(self, flash_error: bool = True):
        self.flash_error = flash_error
        self.error: DomainError | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def already_done(self, fallback_url: str):
        """When the form was sent before (its idempotency key is used), a redirect to what the first
        submit did; else None."""
        if isinstance(self.error, AlreadySubmitted):
            return redirect(self.error.result_url or fallback_url)
        return None

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is None:
            try:
                db.session.commit()
            except BaseException:
                db.session.rollback()  # a failed flush or commit leaves nothing half-written behind
                raise
            return False
        db.session.rollback()
        if not isinstance(exc, DomainError):
            return False
        self.error = exc
        if self.flash_error:
            flash(str(exc), getattr(exc, "flash_category", "error"))
        return True


def claim_form(purpose: str):
    """Claim the submitted form's idempotency key inside the unit of work (see actions.idempotency);
    pass the result to `remember` with the URL of what the form did."""
    return claim(db.session, current_user, request.form.get(IDEMPOTENCY_FIELD), purpose)


def unit_of_work(flash_error: bool = True) -> UnitOfWork:
    """`with unit_of_work() as work:` the action; after the block, `work.failed` says if it was refused."""
    return UnitOfWork(flash_error)


BUSY_MESSAGE = _l("The database is busy with another change; nothing was changed. Try again in a moment.")


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's "database is locked" (the busy timeout ran out)."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig or exc)


@contextmanager
def without_write_lock() -> Iterator[None]:
    """Read and compute outside SQLite's write lock, in a POST that will write afterwards.

    A write request's transactions start with BEGIN IMMEDIATE (app.py), which holds the lock
    from the first statement: long reading or parsing would keep every other writer waiting.
    This ends the request's transaction (nothing may be pending), reads on a deferred one, and
    ends that too; the next statement starts the short writing transaction.
    """
    session = db.session
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("without_write_lock() with unsaved changes: they would be lost")
    session.rollback()
    session.connection(execution_options={"deferred_begin": True})
    try:
        yield
    finally:
        session.rollback()


class RoleMixin:
    """`roles` lists who may use the view; admins always may. Anonymous users go to login.

    A view customers use names its permission `area` too (actions.permissions.AREAS): an employee of a
    customer company limited to some areas sees the view's menu and opens its URLs (every page of it: lists,
    forms, exports, ajax look-ups, actions) only with that area. `shared_pages` opens some pages of the view
    to further areas (the order pages of the renewal center, for every area that makes orders); the menu
    follows `area` alone."""

    roles: frozenset[str] = frozenset()
    area: str | None = None
    shared_pages: dict[str, frozenset[str]] = {}

    def _run_view(self, fn, *args, **kwargs):
        # The one place a lock timeout becomes a message instead of an error page.
        try:
            return super()._run_view(fn, *args, **kwargs)
        except OperationalError as exc:
            if not is_lock_timeout(exc):
                raise
            db.session.rollback()
            if request.method == "GET":
                return Response(str(BUSY_MESSAGE), status=503, mimetype="text/plain")
            flash(str(BUSY_MESSAGE), "error")
            back = request.referrer
            return redirect(back if back and is_safe_url(back) else url_for(".index_view" if isinstance(
                self, ModelView) else ".index"))

    def role_allows(self, user) -> bool:
        """Whether `user`'s role may use the view (whatever its areas)."""
        return bool(
            user.is_authenticated
            and user.is_active
            and not user.must_change_password
            and (user.role == "admin" or user.role in self.roles)
        )

    def allows(self, user) -> bool:
        """Whether `user` may use the view: its role, and its permission areas."""
        return self.role_allows(user) and may_use(user, self.area)

    def _shared_page_areas(self) -> frozenset[str] | None:
        """The further areas that open the page being requested, when it is one of `shared_pages`."""
        if not self.shared_pages or not has_request_context() or not request.endpoint:
            return None
        endpoint, _dot, page = request.endpoint.rpartition(".")
        return self.shared_pages.get(page) if endpoint == self.endpoint else None

    def is_accessible(self) -> bool:
        user = current_user
        if self.allows(user):
            return True
        shared = self._shared_page_areas()
        return shared is not None and self.role_allows(user) and may_use_any(user, shared)

    def is_visible(self) -> bool:
        return self.allows(current_user)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        if current_user.must_change_password:
            return redirect(url_for("auth.change_password"))
        abort(403)


class RoleView(RoleMixin, BaseView):
    """A plain console page (a form, a report) with declared roles."""


def require_areas(areas):
    """A `before_request` for a blueprint customers use outside the console's views (paying an order): a signed-in
    employee with none of `areas` is answered 403, as the views answer it (RoleMixin)."""
    areas = frozenset(areas)

    def check():
        if current_user.is_authenticated and not may_use_any(current_user, areas):
            abort(403)

    return check


def current_zone() -> tzinfo:
    """The reader's time zone: their company's choice, else their language's (actions/times.py).
    Worked out once per request."""
    if not has_request_context():
        return timezone.utc
    zone = g.get("renewdesk_zone")
    if zone is None:
        # By id, not through current_user.company: a streamed export runs with the user detached.
        reader = current_user if current_user and current_user.is_authenticated else None
        zone = g.renewdesk_zone = reader_zone(db.session, reader)
    return zone


def local_time(value: datetime | None, pattern: str = MINUTE) -> str:
    """A time as the reader reads it: in their zone, to the minute (the `datetime` Jinja filter)."""
    return format_minute(value, current_zone(), pattern=pattern)


def local_day_start(day: date) -> datetime:
    """The first instant of `day` in the reader's zone, aware (filters by day compare with it)."""
    return datetime.combine(day, time.min, tzinfo=current_zone())


def local_today() -> date:
    """Today in the reader's zone (their calendar day)."""
    return utcnow().astimezone(current_zone()).date()


def time_cell(view, context, model, name):
    """A list or details cell of a time column, in the reader's zone, to the minute."""
    return local_time(getattr(model, name))


def page_label(context, model, attribute: str, key_column, label_column):
    """The label (`label_column`) of the row whose key (`key_column`) `model.<attribute>` holds.

    For list cells naming another row by its id (a user, a company): the keys of the whole page are
    looked up by one query on its first cell (the rows are in the template's `data`; an export has
    no context and looks up each new key) and kept for the request. Not a query per row. None when
    the key is empty or names no row."""
    key = getattr(model, attribute)
    if key is None:
        return None
    cache = g.setdefault("page_labels", {}).setdefault((key_column, label_column), {})
    if key not in cache:
        rows = (context.get("data") if context is not None else None) or [model]
        wanted = {getattr(row, attribute) for row in rows} - {None} - cache.keys() | {key}
        cache.update(dict.fromkeys(wanted))
        cache.update(db.session.execute(select(key_column, label_column).where(key_column.in_(wanted))).all())
    return cache[key]


class LocalFilterValue:
    """Typed filter times are in the reader's zone: Flask-Admin parses them naive, our columns hold
    aware UTC."""

    def clean(self, value):
        cleaned = super().clean(value)
        zone = current_zone()
        if isinstance(cleaned, list):
            return [v.replace(tzinfo=zone) if isinstance(v, datetime) else v for v in cleaned]
        return cleaned.replace(tzinfo=zone) if isinstance(cleaned, datetime) else cleaned


# Filter operations whose words in Flask-Admin's own catalogs read wrong: Vietnamese "empty" is "sản phẩm nào"
# ("which product"), "not contains" "không có" ("has not"), "not between" "không giữa"; Chinese "not between" is
# 不是之间. These operations say our catalog's words; the msgids stay Flask-Admin's, so each filter's address
# (…_empty, …_not_between) is unchanged. The "not between" filters subclass the "between" ones: they come first.
_NOT_BETWEEN = (sqla_filters.DateNotBetweenFilter, sqla_filters.DateTimeNotBetweenFilter,
                sqla_filters.TimeNotBetweenFilter)
_OUR_WORDS = (
    (sqla_filters.FilterEmpty, _l("empty")),
    (sqla_filters.FilterNotLike, _l("not contains")),
    (_NOT_BETWEEN, _l("not between")),
    ((model_filters.BaseDateBetweenFilter, model_filters.BaseDateTimeBetweenFilter,
      model_filters.BaseTimeBetweenFilter), _l("between")),
)


def _in_our_words(kinds: tuple) -> tuple:
    def ours(kind):
        word = next((word for bases, word in _OUR_WORDS if issubclass(kind, bases)), None)
        return kind if word is None else type(kind.__name__, (kind,), {"operation": lambda self, word=word: word})
    return tuple(ours(kind) for kind in kinds)


class FilterConverter(sqla_filters.FilterConverter):
    """Flask-Admin's filters, plus our aware UTC datetime column type (typed in the reader's zone)."""

    _parent = sqla_filters.FilterConverter
    strings = _in_our_words(_parent.strings)
    string_key_filters = _in_our_words(_parent.string_key_filters)
    int_filters = _in_our_words(_parent.int_filters)
    float_filters = _in_our_words(_parent.float_filters)
    enum = _in_our_words(_parent.enum)
    date_filters = _in_our_words(_parent.date_filters)
    datetime_filters = _in_our_words(_parent.datetime_filters)
    time_filters = _in_our_words(_parent.time_filters)
    utc_datetime_filters = tuple(type(f"Local{f.__name__}", (LocalFilterValue, f), {}) for f in datetime_filters)
    del _parent

    @model_filters.convert("utcdatetime")
    def conv_utc_datetime(self, column, name, **kwargs):
        return [f(column, name, **kwargs) for f in self.utc_datetime_filters]

    def conv_string(self, column, name, **kwargs):
        """A stored code with choices (the view's column_choices) is picked by its label, equal or not: as text it
        offered "contains"/"in list" on a box where only the code ("suspended") matched, whatever the reader's
        language."""
        if kwargs.get("options"):
            return [kind(column, name, **kwargs) for kind in (sqla_filters.FilterEqual, sqla_filters.FilterNotEqual)]
        return super().conv_string(column, name, **kwargs)

    conv_string._converter_for = sqla_filters.FilterConverter.conv_string._converter_for


class ModelConverter(AdminModelConverter):
    """Flask-Admin's form fields, with every whole-number field held to its column's range.

    A number past it (3000000000 typed into a cap) was a DataError on PostgreSQL and an OverflowError
    on SQLite beyond 64 bits: the page answered "not found" instead of naming the field. A view that
    sets its own NumberRange (form_args) keeps it."""

    INTEGER_RANGES = {"SmallInteger": 2**15, "BigInteger": 2**63}

    @converts("Integer")
    def handle_integer_types(self, column, field_args, **extra):
        if not any(isinstance(v, NumberRange) for v in field_args["validators"]):
            bound = integer_bound(column.type)
            field_args["validators"].append(NumberRange(min=-bound, max=bound - 1))
        return super().handle_integer_types(column, field_args, **extra)


def integer_bound(column_type) -> int:
    """2**15, 2**31 or 2**63: the magnitude a whole-number column type cannot reach."""
    names = {t.__name__ for t in type(column_type).__mro__}
    return next((bound for name, bound in ModelConverter.INTEGER_RANGES.items() if name in names), 2**31)


def integer_filter_out_of_range(flt, value: str) -> bool:
    """Whether an integer filter's typed value (or one of a list's) lies outside its column's range."""
    if not isinstance(flt, (model_filters.BaseIntFilter, model_filters.BaseIntListFilter)):
        return False
    column_type = getattr(getattr(flt, "column", None), "type", None)
    try:
        cleaned = flt.clean(value)
    except (ValueError, TypeError):
        return False  # Flask-Admin's own validation refuses it
    bound = integer_bound(column_type)  # no column type: a plain integer's 2**31
    return any(not -bound <= number < bound for number in (cleaned if isinstance(cleaned, list) else [cleaned]))


# --- money columns: shown by the one formatter, sorted and filtered on their minor units ----------

def money_cell(view, context, model, name):
    """A money attribute of a row (or of a row it points to: "package.amount"), formatted in the reader's locale
    and its owner's currency."""
    owner = model
    while "." in name:
        relation, name = name.split(".", 1)
        owner = getattr(owner, relation)
        if owner is None:
            return ""
    attribute = type(owner)._money_attributes[name]
    return format_money(getattr(owner, name), attribute.currency_of(owner))


def _related_money(model, name: str) -> bool:
    """Whether a dotted column ("package.amount") ends on a money attribute of the related model."""
    mapper = model.__mapper__
    *relations, last = name.split(".")
    for relation in relations:
        if relation not in mapper.relationships:
            return False
        mapper = mapper.relationships[relation].mapper
    return last in getattr(mapper.class_, "_money_attributes", {})


class MoneyField(StringField):
    """An amount typed as people type it (12,800.00), checked in the currency chosen on the same form."""

    def __init__(self, label=None, validators=None, currency_field: str = "currency", required: bool = False,
                 **kwargs):
        # required: starred on the form and asked for by the browser; an empty amount is refused by
        # pre_validate's parse (its own words), which stops the chain before InputRequired speaks.
        validators = [*(validators or ()), *((InputRequired(),) if required else ())]
        super().__init__(label, validators, **kwargs)
        self.currency_field = currency_field

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return typed(self.data) if isinstance(self.data, Decimal) else "" if self.data is None else str(self.data)

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = valuelist[0]

    def pre_validate(self, form):
        currency_field = form._fields.get(self.currency_field)
        currency = getattr(currency_field, "data", None) or "CNY"
        if currency not in EXPONENTS:
            return  # the currency field reports its own error
        try:
            self.data = parse(self.data, currency, str(self.label.text))
        except DomainError as exc:
            self.data = None
            raise StopValidation(str(exc)) from None


class _MoneyFilter(sqla_filters.BaseSQLAFilter):
    """Compare a money attribute with a typed amount, in each row's own currency's minor units."""

    def __init__(self, minor_column, currency_column, name, compare, operation):
        super().__init__(minor_column, name)
        self.currency_column, self.compare, self._operation = currency_column, compare, operation

    def clean(self, value):
        return parse(value, "CNY", allow_zero=True) if value else value

    def validate(self, value):
        try:
            parse(value, "CNY", allow_zero=True)
        except DomainError:
            return False
        return True

    def apply(self, query, value, alias=None):
        clauses = []
        for currency in EXPONENTS:
            minor = to_minor(round_money(Decimal(value), currency), currency)
            clauses.append(and_(self.currency_column == currency, self.compare(self.column, minor)))
        return query.filter(or_(*clauses))

    def operation(self):
        return self._operation


def money_filters(minor_column, currency_column, name):
    """Equal / greater / smaller filters over a money column (amounts typed in major units)."""
    return [
        _MoneyFilter(minor_column, currency_column, name, lambda c, v: c == v, admin_lazy_gettext("equals")),
        _MoneyFilter(minor_column, currency_column, name, lambda c, v: c > v, admin_lazy_gettext("greater than")),
        _MoneyFilter(minor_column, currency_column, name, lambda c, v: c < v, admin_lazy_gettext("smaller than")),
    ]


def _money_sort_key(model, entry):
    """A sortable-list entry naming a money attribute becomes (name, its minor column)."""
    money = getattr(model, "_money_attributes", {})
    if isinstance(entry, str) and entry in money:
        return (entry, getattr(model, money[entry].minor))
    return entry


def local_minute(view, value, name=None):
    """A time on screen: in the reader's zone, to the minute, never with microseconds and an offset."""
    return local_time(value)


def yes_no_icon(view, value, name=None):
    """A boolean in a list: Flask-Admin's icon, its tooltip in the reader's language (not "active: true")."""
    fa, word = ("fa-check-circle", _("Yes")) if value else ("fa-minus-circle", _("No"))
    return Markup('<span class="fa {}" title="{}"></span>').format(fa, word)


def yes_no(view, value, name=None):
    """A boolean on a details page: 是 / 否, not "True"."""
    return _("Yes") if value else _("No")


def attachment(filename: str) -> str:
    """The Content-Disposition of a download named `filename`, whatever its script: an ASCII fallback
    for old clients and the exact name as UTF-8 (RFC 6266, RFC 5987 `filename*`)."""
    stem, dot, extension = filename.rpartition(".")
    ascii_stem = secure_filename(unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode())
    if not re.search(r"[A-Za-z]", ascii_stem):
        ascii_stem = "export" + (f"_{ascii_stem}" if ascii_stem else "")
    fallback = f"{ascii_stem}{dot}{secure_filename(extension)}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def row_label(row) -> str:
    """A record as a person names it on a confirmation page."""
    return str(row) if type(row).__str__ is not object.__str__ else f"#{row.id}"


def describe_delete(view, rows) -> Confirmation:
    """The confirmation of deleting `rows` of `view`'s list: each record named."""
    return Confirmation(
        title=_("Delete records"),
        summary=_("Delete %(count)s records from %(list)s:", count=len(rows), list=view.name),
        items=[row_label(row) for row in rows],
        note=_("Deleted records cannot be restored."),
        confirm_label=_("Delete %(count)s records", count=len(rows)),
    )


def confirm_first(describe):
    """Mark a list action as needing the server's confirmation page first: `describe(view, rows)`
    returns the Confirmation naming what the action will do to the (scoped) rows, or None when it
    would change none of them."""

    def mark(handler):
        handler._confirm = describe
        return handler

    return mark


class ConfirmedDeleteRowAction(BaseListRowAction):
    """The row's delete button, without JavaScript confirm(): the server asks (delete_view)."""

    def render(self, context, row_id, row):
        view = context["admin_view"]
        return Markup(
            '<form class="icon" method="POST" action="{url}">'
            '<input type="hidden" name="id" value="{id}"><input type="hidden" name="url" value="{back}">'
            '<input type="hidden" name="csrf_token" value="{csrf}">'
            '<button type="submit" title="{title}" aria-label="{title}"><span class="fa fa-trash"></span></button>'
            "</form>"
        ).format(url=view.get_url(".delete_view"), id=row_id, back=context.get("return_url") or "",
                 csrf=generate_csrf(), title=admin_gettext("Delete Record"))


class ReturningLinkRowAction(EndpointLinkRowAction):
    """A row's link to another page of the view (review, …) that carries the list's URL (`url`), so
    that the page leads back to the same filters, search, sort and page."""

    def __init__(self, link: EndpointLinkRowAction):
        super().__init__(link.icon_class, link.endpoint, link.title, link.id_arg, link.url_args)

    def render(self, context, row_id, row):
        kwargs = {self.id_arg: row_id, **(self.url_args or {})}
        kwargs.setdefault("url", context.get("return_url"))
        return self._resolve_symbol(context, "row_actions.link")(self, self._resolve_symbol(context, "get_url")(
            self.endpoint, **{k: v for k, v in kwargs.items() if v}))


DETAILS_HIDDEN = ("idempotency_key", "percent_hundredths")  # (a percentage is shown by the view's "value")
DETAILS_HIDDEN_SUFFIXES = ("_data", "_enc", "_index", "_hash", "_sha256")
BLANK_CHOICE = "—"  # the empty choice of an optional select (no word to translate)


class ScopedModelView(RoleMixin, ModelView):
    """A model page whose rows a customer administrator sees only inside their company tree."""

    filter_converter = FilterConverter()
    model_form_converter = ModelConverter
    # On screen, every time column reads to the minute; exports keep them typed.
    column_type_formatters = {**ModelView.column_type_formatters, datetime: local_minute, bool: yes_no_icon}
    # Details pages too (Flask-Admin's own show "True" and "2026-12-02 06:36:53.329060+00:00").
    column_type_formatters_detail = {**DETAIL_FORMATTERS, datetime: local_minute, bool: yes_no}

    scope_column: str | None = None  # e.g. "company_id"; "id" on Company itself
    audit_name: str | None = None  # the AuditEvent.model; defaults to the table name
    # search_clause(session, text) -> a WHERE clause, or None for no search: replaces Flask-Admin's
    # LIKE over every column_searchable_list column (set it with staticmethod(...)).
    search_clause = None

    named_filter_urls = True
    can_set_page_size = True
    page_size = 50
    can_view_details = True
    column_display_actions = True

    def __init__(self, model, *args, **kwargs):
        if "customer_admin" in self.roles and self.scope_column is None:
            raise TypeError(f"{type(self).__name__} lets customers in but declares no scope_column")
        self._adapt_money_columns(model)
        self._currency_by_label(model)
        self._choices_from_labels()
        super().__init__(model, db, *args, **kwargs)

    def _choices_from_labels(self) -> None:
        """A filtered column shown by its labels (label_formatter) is filtered by them too: its filter picks a
        label instead of asking for the stored code."""
        choices = dict(self.column_choices or {})
        formatters = self.column_formatters or {}
        for name in self.column_filters or ():
            labels = getattr(formatters.get(name), "choices", None) if isinstance(name, str) else None
            if labels and name not in choices:
                choices[name] = list(labels.items())
        if choices:
            self.column_choices = choices

    def _currency_by_label(self, model) -> None:
        """A currency column reads as its filter does (人民币, Đô la Mỹ), not as the stored code, unless the
        view formats it itself."""
        shown = {*(self.column_list or ()), *(self.column_details_list or ())}
        formatters = dict(self.column_formatters or {})
        if "currency" in shown and "currency" not in formatters and hasattr(model, "currency"):
            formatters["currency"] = label_formatter(WALLET_CURRENCIES)
            self.column_formatters = formatters
            if self.column_formatters_export is not None:  # exports name the currency as the list does
                self.column_formatters_export = {"currency": formatters["currency"], **self.column_formatters_export}

    def _adapt_money_columns(self, model) -> None:
        """Money attributes (models.Money) are not columns: show them through the one formatter, sort
        and filter them on their minor-unit column, edit them with a MoneyField; exports stay typed."""
        money = getattr(model, "_money_attributes", {})
        shown = {*(self.column_list or ()), *(self.column_details_list or ())}
        related = [name for name in shown if isinstance(name, str) and "." in name and _related_money(model, name)]
        if not money and not related:
            return
        if self.column_formatters_export is None:
            self.column_formatters_export = dict(self.column_formatters or {})
        formatters = dict(self.column_formatters or {})
        for name in [*money, *related]:
            formatters.setdefault(name, money_cell)
        self.column_formatters = formatters
        if self.column_formatters_detail is not None:  # a view's own details formatters: money reads the same there
            detail = dict(self.column_formatters_detail)
            for name in [*money, *related]:
                detail.setdefault(name, money_cell)
            self.column_formatters_detail = detail
        if not money:
            return
        if self.column_sortable_list:
            self.column_sortable_list = [_money_sort_key(model, entry) for entry in self.column_sortable_list]
        if self.column_default_sort:
            sorts = self.column_default_sort if isinstance(self.column_default_sort, list) else [self.column_default_sort]
            self.column_default_sort = [
                ((getattr(model, money[s[0]].minor), s[1]) if isinstance(s, tuple) and s[0] in money else s)
                for s in sorts
            ]
        if self.column_filters:
            currency = getattr(model, "currency", None)
            filters = []
            for entry in self.column_filters:
                if isinstance(entry, str) and entry in money:
                    label = (self.column_labels or {}).get(entry, entry)
                    filters += money_filters(getattr(model, money[entry].minor), currency, label)
                else:
                    filters.append(entry)
            self.column_filters = filters
        if self.form_columns:
            extra = dict(self.form_extra_fields or {})
            for name in self.form_columns:
                if isinstance(name, str) and name in money and name not in extra:
                    extra[name] = MoneyField((self.column_labels or {}).get(name, name))
            self.form_extra_fields = extra

    def get_details_columns(self):
        """Flask-Admin's details page shows every column: money as its amount (not `amount_minor`), and
        never the machinery (stored-message JSON, idempotency keys, ciphertexts and blind indexes, hashes)."""
        money = {m.minor: name for name, m in getattr(self.model, "_money_attributes", {}).items()}
        columns = []
        for name, label in super().get_details_columns():
            if name in money:
                name = money[name]
                label = self.get_column_name(name)
            elif name in DETAILS_HIDDEN or name.endswith(DETAILS_HIDDEN_SUFFIXES):
                continue
            columns.append((name, label))
        return columns

    # --- scope ---------------------------------------------------------------------------
    def scope_clause(self):
        """The WHERE clause for the current user, or None when they see every company."""
        if self.scope_column is None:
            return None
        return scope_filter(current_user, getattr(self.model, self.scope_column))

    def get_query(self):
        query = super().get_query()
        clause = self.scope_clause()
        return query if clause is None else query.filter(clause)

    def get_count_query(self):
        query = super().get_count_query()
        clause = self.scope_clause()
        return query if clause is None else query.filter(clause)

    def get_one(self, id):
        pk = parse_row_id(id)
        if pk is None:
            return None
        return self.get_query().filter(self.model.id == pk).one_or_none()

    @expose("/ajax/update/", methods=("POST",))
    def ajax_update(self):
        """Flask-Admin's inline edit: 400 without a plain row id, 404 for a row not in the scoped query
        (Flask-Admin answers 500 "Record does not exist")."""
        if not self.column_editable_list:
            abort(404)
        pk = parse_row_id(request.form.get("list_form_pk"))
        if pk is None:
            abort(400)
        if self.get_one(str(pk)) is None:
            abort(404)
        return super().ajax_update()

    def scoped_rows(self, ids: Iterable[str]) -> list:
        """The rows behind submitted ids, through the scoped query; unknown ids drop out."""
        clean = sorted({pk for pk in map(parse_row_id, ids) if pk is not None})
        if not clean:
            return []
        return self.get_query().filter(self.model.id.in_(clean)).all()

    def refused_ids(self, ids: Iterable[str], rows: list) -> list[tuple[str, str]]:
        """Each submitted id that the scoped query did not return, named as refused."""
        found = {str(r.id) for r in rows}
        return [(f"#{i}", _("not found or outside your companies")) for i in ids if str(i) not in found]

    # --- forms: company pickers offer only the actor's companies ---------------------------
    def _scope_company_fields(self, form):
        for field in form:
            if getattr(field, "allow_blank", False) and not getattr(field, "blank_text", None):
                # WTForms 3.3 labels an option without text by its value: the blank choice of an optional
                # relation read "__None" in every language.
                field.blank_text = BLANK_CHOICE
            if isinstance(field, QuerySelectField) and getattr(field, "query_factory", None):
                sample = field.query_factory()
                entity = getattr(sample, "column_descriptions", [{}])[0].get("entity")
                if entity is Company:
                    field.query_factory = lambda: companies_in_scope(db.session, current_user)
        return form

    def create_form(self, obj=None):
        return self._scope_company_fields(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._scope_company_fields(super().edit_form(obj))

    # --- audit and scope on every write -----------------------------------------------------
    @property
    def _audit_model(self) -> str:
        return self.audit_name or self.model.__tablename__

    def on_model_change(self, form, model, is_created):
        if self.scope_column is not None and not current_user.is_staff:
            company_id = getattr(model, self.scope_column)
            allowed = db.session.scalar(
                current_user.company.subtree_ids().where(Company.id == company_id)
            )
            if company_id is None or allowed is None:
                raise ValidationError(_("That company is outside your companies."))
        summary = describe_changes(model, self.column_labels, self.form_choices)
        db.session.flush()
        record(
            db.session, current_user, "create" if is_created else "edit",
            self._audit_model, [model.id], summary,
        )

    def on_model_delete(self, model):
        record(db.session, current_user, "delete", self._audit_model, [model.id], str(model))

    def act_on_each(self, ids, operation, label, done: str) -> None:
        """Apply `operation` to each submitted row (through the scoped query) in its own savepoint, commit
        once, and flash what changed and each refusal by `label(row)`."""
        rows = self.scoped_rows(ids)
        with unit_of_work() as work:
            result = each_in_savepoint(db.session, rows, operation, label)
        if not work.failed:
            flash_result(ActionResult(result.changed, tuple(self.refused_ids(ids, rows)) + result.refused), done)

    # --- confirmation: money moves and irreversible actions ask first, on a page of their own -------
    def _confirmation_of(self, name: str):
        """The describer of action `name` when it must be confirmed (every "delete" must), else None."""
        handler = (self._actions_data.get(name) or (None,))[0]
        describe = getattr(handler, "_confirm", None)
        if describe is None and name == "delete":
            describe = describe_delete
        return describe

    def get_actions_list(self):
        # Confirmed actions ask on the server: no JavaScript confirm() before that page.
        actions, confirmations = super().get_actions_list()
        return actions, {name: text for name, text in confirmations.items() if self._confirmation_of(name) is None}

    def handle_action(self, return_view=None):
        """Flask-Admin's action handling, with a confirmation page first for the actions that need one."""
        name = request.form.get("action", "")
        describe = self._confirmation_of(name)
        if describe is not None and self.is_action_allowed(name) and self.validate_form(self.action_form()):
            ids = request.form.getlist("rowid")
            purpose = f"{self.endpoint}.action.{name}"
            if not is_confirmed(purpose, ids):
                rows = self.scoped_rows(ids)
                # Nothing found, or nothing the action would change (the describer says None): the action
                # itself refuses and changes nothing, without a confirmation page first.
                confirmation = describe(self, rows) if rows else None
                if confirmation is not None:
                    refused = [f"{label} ({why})" for label, why in self.refused_ids(ids, rows)]
                    if refused:
                        confirmation = replace(confirmation, refused=tuple(confirmation.refused) + tuple(refused))
                    return ask(self, confirmation, purpose, ids, get_redirect_target() or self.get_url(".index_view"),
                               action_url=self.get_url(".action_view"))
        return super().handle_action(return_view)

    @expose("/delete/", methods=("POST",))
    def delete_view(self):
        """Flask-Admin's delete button, after a confirmation page naming the record."""
        if self.can_delete:
            model = self.get_one(request.form.get("id"))
            purpose = f"{self.endpoint}.delete"
            if model is not None and not is_confirmed(purpose, [model.id]):
                return ask(self, describe_delete(self, [model]), purpose, [model.id],
                           get_redirect_target() or self.get_url(".index_view"))
        return super().delete_view()

    def get_list_row_actions(self):
        actions = []
        for row_action in super().get_list_row_actions():
            if isinstance(row_action, DeleteRowAction):
                row_action = ConfirmedDeleteRowAction()
            elif type(row_action) is EndpointLinkRowAction:
                row_action = ReturningLinkRowAction(row_action)
            actions.append(row_action)
        return actions

    @action("delete", admin_lazy_gettext("Delete"))
    def action_delete(self, ids):
        """Flask-Admin's bulk delete, with rows looked up by integer id through the scoped query
        (PostgreSQL refuses integer = varchar) and every id not found named."""
        rows = self.scoped_rows(ids)
        count = sum(1 for row in rows if self.delete_model(row))
        if count:
            flash(admin_ngettext("Record was successfully deleted.",
                                 "%(count)s records were successfully deleted.", count, count=count), "success")
        flash_result(ActionResult(refused=tuple(self.refused_ids(ids, rows))), "")

    def delete_model(self, model):
        """Flask-Admin's delete; a row other rows still point at (a customer with orders) is refused with
        its name, not the database's message (handle_view_exception reads g.rd_deleting)."""
        g.rd_deleting = str(model)
        try:
            return super().delete_model(model)
        finally:
            g.pop("rd_deleting", None)

    def handle_view_exception(self, exc):
        if isinstance(exc, DomainError):
            flash(str(exc), "error")
            return True
        if isinstance(exc, IntegrityError) and g.get("rd_deleting") is not None:
            flash(_("%(row)s cannot be deleted: other records (orders, history) still refer to it.",
                    row=g.rd_deleting), "error")
            return True
        if is_lock_timeout(exc):
            flash(str(BUSY_MESSAGE), "error")
            return True
        return super().handle_view_exception(exc)

    # --- the list: a unique order, a bounded count, pages read by id --------------------------------
    count_bound = COUNT_BOUND

    def _sort_keys(self, sort_column, sort_desc) -> list[tuple]:
        """(field, joins, descending) of the list's order, ending on the id unless the last key is unique.

        Without a unique last key, rows that tie (same expiry, same date) may swap places between
        two page views: a row shows on two pages, another on none.
        """
        if sort_column is not None and sort_column in self._sortable_columns:
            field, joins = self._sortable_columns[sort_column], self._sortable_joins.get(sort_column)
            keys = ([(f, j, sort_desc) for f, j in zip(field, joins, strict=False)] if isinstance(field, list)
                    else [(field, joins, sort_desc)])
        else:
            keys = list(self._get_default_order())
        if not keys or not self._is_unique(keys[-1][0]):
            keys.append((self.model.id, [], keys[-1][2] if keys else False))
        return keys

    def _is_unique(self, field) -> bool:
        if getattr(field, "class_", None) is not self.model:
            return False  # a column of a joined table: many rows of ours share it
        columns = getattr(getattr(field, "property", None), "columns", [])
        return bool(columns) and (columns[0].primary_key or bool(columns[0].unique))

    def _apply_keys(self, query, joins, keys, reverse: bool = False):
        for field, sort_joins, descending in keys:
            query, joins = self._order_by(query, joins, sort_joins, field, descending != reverse)
        return query, joins

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        return self._apply_keys(query, joins, self._sort_keys(sort_column, sort_desc))

    def _count_rows(self, count_query, bound: int | None) -> int:
        """The rows of the filtered list; with `bound`, counting stops past it (BoundedCount)."""
        if bound is None:
            return count_query.scalar() or 0
        # One pass over at most bound + 1 index entries. (A probe for a row past the bound first, then
        # the count, read a list just under the bound twice: a customer's 9,000 suspended devices.)
        rows = count_query.with_entities(literal_column("1"))
        found = count_query.session.scalar(select(func.count()).select_from(rows.limit(bound + 1).subquery())) or 0
        return BoundedCount(bound) if found > bound else found

    def _apply_search(self, query, count_query, joins, count_joins, search):
        if self.search_clause is None:
            return super()._apply_search(query, count_query, joins, count_joins, search)
        clause = self.search_clause(db.session, search)
        if clause is None:
            return query, count_query, joins, count_joins
        query = query.filter(clause)
        if count_query is not None:
            count_query = count_query.filter(clause)
        return query, count_query, joins, count_joins

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """Flask-Admin's list query, made to hold at hundreds of thousands of rows.

        - The count stops at `count_bound` (shown "10,000+"); only a page past it counts exactly.
        - A page is read as ids first (`SELECT id … ORDER BY … LIMIT … OFFSET …`, which the
          indexes answer without the table), then its rows by id with their related rows joined,
          so OFFSET skips index entries, never joined rows.
        - A page in the back half of the list reads the order backwards from the end: the last
          page costs what the first does.
        """
        joins: dict = {}
        count_joins: dict = {}
        query = self.get_query()
        count_query = self.get_count_query() if not self.simple_list_pager else None
        if self._search_supported and search:
            query, count_query, joins, count_joins = self._apply_search(query, count_query, joins, count_joins,
                                                                        search)
        if filters and self._filters:
            query, count_query, joins, count_joins = self._apply_filters(query, count_query, joins, count_joins,
                                                                         filters)
        page_size = self.page_size if page_size is None else page_size
        keys = self._sort_keys(sort_column, sort_desc)
        if not execute or not page_size:
            # The export (and unlimited pages): one sorted query, related rows joined, nothing counted.
            for relation in self._auto_joins:
                query = query.options(joinedload(relation))
            query, _joins = self._apply_keys(query, dict(joins), keys)
            query = self._apply_pagination(query, page, page_size)
            count = self._count_rows(count_query, self.count_bound) if count_query is not None and execute else None
            return count, (query.all() if execute else query)

        start = (page or 0) * page_size
        count = None
        if count_query is not None:
            count = self._count_rows(count_query, None if start >= self.count_bound else self.count_bound)
        ids_query = query.with_entities(self.model.id)
        if count is not None and not isinstance(count, BoundedCount) and start * 2 > count:
            end = min(start + page_size, count)
            ordered, _joins = self._apply_keys(ids_query, dict(joins), keys, reverse=True)
            ids = [] if start >= end else [i for (i,) in ordered.limit(end - start).offset(count - end)][::-1]
        else:
            ordered, _joins = self._apply_keys(ids_query, dict(joins), keys)
            ids = [i for (i,) in ordered.limit(page_size).offset(start)]
        if not ids:
            return count, []
        rows_query = self.get_query().filter(self.model.id.in_(ids))
        for relation in self._auto_joins:
            rows_query = rows_query.options(joinedload(relation))
        by_id = {row.id: row for row in rows_query}
        return count, [by_id[i] for i in ids if i in by_id]

    def _get_list_extra_args(self):
        """The list's query string, a page before the first read as the first: PostgreSQL refuses a
        negative OFFSET (a DataError, which answered "not found"), SQLite read it as 0."""
        args = super()._get_list_extra_args()
        args.page = max(args.page or 0, 0)
        return args

    # --- filters: options are computed per request, inside the actor's scope ------------------
    def _get_list_filter_args(self):
        """The filters of the query string, but whole numbers past their column's range: flashed as an
        invalid value (as Flask-Admin does text typed for a number), where the database's DataError
        (PostgreSQL past 2**31, SQLite past 2**63) made the list answer "not found"."""
        filters = super()._get_list_filter_args()
        if not filters:
            return filters
        kept = []
        for index, name, value in filters:
            flt = self._filters[index]
            if integer_filter_out_of_range(flt, value):
                flash(self.get_invalid_value_msg(value, flt), "error")
            else:
                kept.append((index, name, value))
        return kept

    def get_filter_arg(self, index, flt):
        """A filter's URL argument as computed at start-up, whatever the reader's language.

        Flask-Admin makes it from the filter's translated name on each request: in Chinese the name's
        letters are stripped ("flt0__equals"), so every return URL (edit, details, actions) lost its
        filters and led back to the unfiltered list."""
        known = getattr(self, "_filter_arg_of", None)
        if known is not None and index in known:
            return known[index]
        return super().get_filter_arg(index, flt)

    def _refresh_filters_cache(self):
        self._filter_arg_of = None
        super()._refresh_filters_cache()
        self._filter_arg_of = {index: arg for arg, (index, _flt) in (self._filter_args or {}).items()}

    def _get_filter_groups(self):
        if not self._filters:
            return None
        # URL arguments as computed at start-up (untranslated), whatever the user's language.
        args = {index: arg for arg, (index, _flt) in (self._filter_args or {}).items()}
        groups: OrderedDict[str, list] = OrderedDict()
        for index, flt in enumerate(self._filters):
            options = flt.get_options(self) or None
            groups.setdefault(str(flt.name), []).append(
                {
                    "index": index,
                    "arg": args[index],
                    "operation": str(flt.operation()),
                    "options": [(key, str(label)) for key, label in options] if options else None,
                    "type": flt.data_type,
                }
            )
        return groups

    # --- exports never carry formulas; xlsx streams in bounded memory ---------------------------
    export_types = ["xlsx", "csv"]
    export_batch_rows = 2000

    def get_export_name(self, export_type: str = "csv") -> str:
        """订单管理_2026-12-01.xlsx: the list's name in the reader's language and today in their zone."""
        name = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", str(self.name)).strip() or "export"
        return f"{name}_{utcnow().astimezone(current_zone()).date().isoformat()}.{export_type}"

    def export_value(self, model, name):
        """The value of one exported cell: money as a number in its currency's format, numbers and
        dates typed, yes/no in the reader's words, the rest text."""
        money = getattr(type(model), "_money_attributes", {}).get(name)
        if money is not None:
            amount, currency = getattr(model, name), money.currency_of(model)
            return None if amount is None or not currency else Amount(round_money(amount, currency), exponent(currency))
        value = ModelView.get_export_value(self, model, name)
        if isinstance(value, bool):  # 是 / 否 as on screen: a CSV read "True", a sheet TRUE
            return _("Yes") if value else _("No")
        if value is None or isinstance(value, (str, int, Decimal, date)):
            if isinstance(value, datetime) and value.tzinfo is not None:
                # Excel has no zones: the reader's wall-clock time, as on screen.
                return value.astimezone(current_zone()).replace(tzinfo=None, microsecond=0)
            return value
        return str(value)

    def get_export_value(self, model, name):
        return formula_safe(self.export_value(model, name))

    def export_rows(self):
        """The exported rows of the current list (scope, search, filters and sort applied)."""
        columns = [c for c, _label in self._export_columns]
        for model in self.export_query().yield_per(self.export_batch_rows):
            yield [self.export_value(model, c) for c in columns]

    def _streamed_rows(self, zone: tzinfo | None = None):
        """export_rows(), run while the response streams. By then the request's session has been
        removed (stream_with_context pushes the contexts again after their teardown): db.session is
        a fresh one, and the signed-in user, cached by Flask-Login, is attached to it again so that
        scope_clause can read the user's company."""
        user = current_user._get_current_object()
        if getattr(user, "is_authenticated", False) and inspect(user).detached:
            db.session.add(user)
        if zone is not None:
            g.renewdesk_zone = zone  # the reader's zone, found while the request was whole
        yield from self.export_rows()

    def export_query(self):
        """The current list's query for an export: scope, search, filters and sort applied, unpaged."""
        args = self._get_list_extra_args()
        sort = self._get_column_by_idx(args.sort)
        _, query = self.get_list(
            0, sort[0] if sort else None, args.sort_desc, args.search, args.filters,
            execute=False, page_size=self.export_max_rows or False,
        )
        return query

    def _export_tablib(self, export_type, return_url):
        if export_type != "xlsx":
            return super()._export_tablib(export_type, return_url)
        # Written while it is sent: the first bytes leave before the first row is read.
        body = stream_xlsx([label for _c, label in self._export_columns], self._streamed_rows(current_zone()),
                           sheet_title=str(self.name), batch_rows=self.export_batch_rows)
        return Response(
            stream_with_context(body),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": attachment(self.get_export_name("xlsx"))},
        )

    def _export_csv(self, return_url):
        response = super()._export_csv(return_url)
        response.headers["Content-Disposition"] = attachment(self.get_export_name("csv"))  # Chinese kept
        return response


class OpenRowsFirst:
    """A list that opens on the rows awaiting someone (`open_clause`); ?show=all lists every row."""

    def open_clause(self):
        raise NotImplementedError

    def showing_all(self) -> bool:
        return request.args.get("show") == "all"

    def _open_only(self) -> bool:
        return (has_request_context() and request.endpoint == f"{self.endpoint}.index_view"
                and not self.showing_all())

    def get_query(self):
        query = super().get_query()
        return query.filter(self.open_clause()) if self._open_only() else query

    def get_count_query(self):
        query = super().get_count_query()
        return query.filter(self.open_clause()) if self._open_only() else query


PASSWORD_LABEL = _l("Password")


def changed_fields(model, labels: dict | None = None, choices: dict | None = None) -> list[dict]:
    """Each changed column of a pending model as an audit `change` (actions.texts): the field's label from
    `labels` (a view's column labels; "category" stands for "category_id"), a choice's label from
    `choices` (a view's form_choices), money in major units."""
    labels, choices = labels or {}, {key: dict(options) for key, options in (choices or {}).items()}
    state = inspect(model)
    money = {m.minor: name for name, m in getattr(type(model), "_money_attributes", {}).items()}
    changes = []
    for attr in state.mapper.column_attrs:
        history = state.attrs[attr.key].history
        if not history.has_changes():
            continue
        key = attr.key
        if key == "password_hash":
            changes.append({"field": key, "label": msgid(PASSWORD_LABEL), "changed": True})
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old == new:
            continue
        if key in money:  # say "amount: 100.00 → 99.00", not the minor units
            currency = type(model)._money_attributes[money[key]].currency_of(model)
            old = from_minor(old, currency) if old is not None else None
            new = from_minor(new, currency) if new is not None else None
            key = money[key]
        name = key.removesuffix("_id") if key.endswith("_id") and key not in labels else key
        changes.append(change(key, labels.get(name, key), old, new, choices.get(name)))
    return changes


def describe_changes(model, labels: dict | None = None, choices: dict | None = None) -> dict | str:
    """The audit summary of a pending model's changes: a stored message read in the reader's language
    ("金额：100.00 → 99.00"), or "" when nothing changed."""
    changes = changed_fields(model, labels, choices)
    return message("audit.changes", changes=changes_param(changes)) if changes else ""


def scoped_company_options():
    """Filter options for "company": the companies the current user may see (per request)."""
    if not has_request_context() or not current_user.is_authenticated:
        return []
    return [(str(c.id), c.name) for c in companies_in_scope(db.session, current_user)]


def label_formatter(choices: dict):
    """A column formatter that shows a stored code by its translated label (its `choices` also give the column's
    filter its options, see ScopedModelView._choices_from_labels)."""

    def format_(view, context, model, name):
        value = getattr(model, name)
        return str(choices.get(value, value))

    format_.choices = choices
    return format_


def invoice_status_formatter():
    """An order's invoice column (actions.invoices.invoice_status_label), filtered by INVOICE_STATUSES."""
    def format_(view, context, model, name):
        return invoice_status_label(model)

    format_.choices = INVOICE_STATUSES
    return format_


def badge(text: str, kind: str = "secondary") -> Markup:
    return Markup('<span class="badge badge-{}">{}</span>').format(kind, escape(text))


__all__ = [
    "RoleView", "ScopedModelView", "confirm_first", "flash_result", "label_formatter", "unit_of_work", "claim_form",
    "scoped_company_options", "admin_gettext", "_l",
]
