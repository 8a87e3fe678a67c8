"""Every table of Renewdesk, typed with SQLAlchemy 2.0 (see DESIGN.md section 3).

Models keep their own invariants (a device knows how to suspend itself) but never
commit, flash or abort: the caller owns the transaction.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as pgettext  # lazy; named so that pybabel extracts it
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    JSON,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    select,
    text,
)
from sqlalchemy.ext.hybrid import Comparator, hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, registry, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from actions.money import from_minor, to_minor

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every database (SQLite keeps no zone, so we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use an aware UTC datetime")
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING),
        type_annotation_map={datetime: UTCDateTime()},
    )


class Money:
    """A `Decimal` attribute over an integer column of minor units, in the row's currency.

    `order.total` reads `total_minor` (12345) as Decimal("123.45") for CNY and Decimal("12345") for
    VND. Assigning keeps the Decimal until the row is flushed, so the final currency decides the
    minor units whatever order the attributes were set in; a value finer than the currency allows
    is refused then. In SQL use the `…_minor` column: `Order.total` is not a column.
    """

    def __init__(self, minor: str, currency_of=lambda row: row.currency):
        self.minor = minor
        self.currency_of = currency_of

    def __set_name__(self, owner, name):
        self.name = name
        owner._money_attributes = {**getattr(owner, "_money_attributes", {}), name: self}

    def __get__(self, row, owner=None):
        if row is None:
            return self
        pending = row.__dict__.get("_money_pending")
        if pending and self.name in pending:
            return pending[self.name]
        minor = getattr(row, self.minor)
        if minor is None:
            return None
        currency = self.currency_of(row)
        return from_minor(minor, currency) if currency else None

    def __set__(self, row, value):
        if isinstance(value, float):
            raise TypeError(f"{type(row).__name__}.{self.name}: money is never a float")
        if value is None:
            row.__dict__.get("_money_pending", {}).pop(self.name, None)
            setattr(row, self.minor, None)
            return
        value = Decimal(value)
        row.__dict__.setdefault("_money_pending", {})[self.name] = value
        currency = _currency_or_none(self.currency_of, row)
        if currency:  # known now: the column is right at once (a later currency change redoes it)
            setattr(row, self.minor, to_minor(value, currency))


def _currency_or_none(currency_of, row):
    try:
        return currency_of(row)
    except AttributeError:
        return None


def _column_default(row, name: str):
    """The Python default of a column not set yet (a new row's currency="CNY" is applied only at insert)."""
    column = type(row).__table__.c.get(name)
    default = getattr(column, "default", None) if column is not None else None
    return default.arg if default is not None and default.is_scalar else None


@event.listens_for(Session, "before_flush")
def _settle_money(session, _context, _instances):
    """Turn assigned Decimals into minor units in each row's final currency before writing."""
    for row in list(session.new) + list(session.dirty):
        pending = row.__dict__.get("_money_pending")
        if not pending:
            continue
        for name, value in list(pending.items()):
            attribute = type(row)._money_attributes[name]
            currency = _currency_or_none(attribute.currency_of, row) or _column_default(row, "currency")
            if not currency:
                raise ValueError(f"{type(row).__name__}.{name}: no currency to store {value} in")
            setattr(row, attribute.minor, to_minor(value, currency))
        pending.clear()


db = SQLAlchemy(model_class=Base)


def _in(column: str, values) -> str:
    """SQL text of a CHECK that `column` is one of `values`."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# --- choices with their labels (labels go through Babel) -------------------------------

ROLES = {
    "admin": _l("Administrator"),
    "tech_support": _l("Tech support"),
    "finance": _l("Finance"),
    "sales": _l("Sales"),
    "customer_admin": _l("Customer administrator"),
}
STAFF_ROLES = frozenset({"admin", "tech_support", "finance", "sales"})
# A visitor who registered from the login page (申请开通) and has no company yet: outside the
# console; approval of their application makes them their new company's customer administrator.
APPLICANT = "applicant"
USER_ROLES = {**ROLES, APPLICANT: _l("Applicant")}

COMPANY_STATUSES = {
    "pending": _l("Pending"),
    "active": _l("Active"),
    "rejected": _l("Rejected"),
    "disabled": _l("Disabled"),
}
DEVICE_STATUSES = {"active": _l("Active"), "suspended": _l("Suspended")}
PACKAGE_KINDS = {
    "renewal": _l("Renewal"),
    "value_added": _l("Value-added"),
    "vip": _l("VIP"),
    "seat": _l("Seat"),
    "plan": _l("Plan"),
    "card": _l("SIM card"),
}
# Product editions of seat packages and organizer accounts (seed 004).
SEAT_EDITIONS = {"enterprise": _l("Enterprise"), "standard": _l("Standard"), "basic": _l("Basic")}
PRICING_METHODS = {
    "per_month": _l("Per month"),
    "per_year": _l("Per year"),
    "per_term": _l("Per term"),
}
CURRENCIES = {"CNY": _l("CNY"), "USD": _l("USD"), "VND": _l("VND")}
BILLING_CYCLES = {
    "monthly": _l("Monthly"),
    "quarterly": _l("Quarterly"),
    "yearly": _l("Yearly"),
}
PUSH_LANGUAGES = {"zh_CN": _l("Chinese"), "en": _l("English"), "vi": _l("Vietnamese")}
LOCALES = {"en": "English", "zh_Hans_CN": "简体中文", "vi": "Tiếng Việt"}


# --- companies and users -----------------------------------------------------------------


def path_ids(path: str) -> list[int]:
    """The company ids of a tree path, top first (/1/7/12/ → [1, 7, 12])."""
    return [int(part) for part in path.strip("/").split("/") if part.isdigit()]


class Company(db.Model):
    """A customer tenant. `path` (/1/7/12/) makes "this company and all below it" one query."""

    __tablename__ = "company"
    __table_args__ = (
        CheckConstraint(_in("status", COMPANY_STATUSES), name="status"),
        # One company per tax ID (empty ones aside); the actions name the holder on conflict.
        Index("uq_company_tax_id", "tax_id", unique=True,
              sqlite_where=text("tax_id <> ''"), postgresql_where=text("tax_id <> ''")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"), index=True)
    path: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    tax_id: Mapped[str | None] = mapped_column(String(32))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    fax: Mapped[str | None] = mapped_column(String(40))
    province: Mapped[str | None] = mapped_column(String(60))
    city: Mapped[str | None] = mapped_column(String(60))
    address: Mapped[str | None] = mapped_column(String(255))
    # An IANA zone (Asia/Shanghai) its users see times in; "" = by each user's language (actions/times.py).
    time_zone: Mapped[str] = mapped_column(String(64), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Company | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Company]] = relationship(back_populates="parent")

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2

    @property
    def path_ids(self) -> list[int]:
        """The ids on the company's path, from the top of its tree down to itself."""
        return path_ids(self.path)

    def subtree_ids(self):
        """A SELECT of the ids of this company and every company below it."""
        return select(Company.id).where(Company.path.startswith(self.path))

    def __str__(self) -> str:
        return self.name


class User(db.Model):
    """A login: staff (no company), or a customer company's administrator or employee (`areas`)."""

    __tablename__ = "user"
    __table_args__ = (
        CheckConstraint(_in("role", USER_ROLES), name="role"),
        CheckConstraint(
            "role <> 'customer_admin' OR company_id IS NOT NULL", name="customer_has_company"
        ),
        # Only a customer login is ever restricted to some permission areas (staff have their roles).
        CheckConstraint("areas IS NULL OR role = 'customer_admin'", name="areas_customer_only"),
        # One login name in any letter case (sign-in and the actions compare names case-insensitively).
        Index("uq_user_username_lower", text("lower(username)"), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    full_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    mobile: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(20))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(16))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    # Bumped on logout, password change and deactivation: older session cookies stop working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The mobile bound for login verification (E.164, e.g. +8613800138000): set once an SMS code
    # sent to it was entered; `phone`/`mobile` above are contact details typed in the profile.
    login_phone: Mapped[str | None] = mapped_column(String(20))
    login_phone_verified_at: Mapped[datetime | None]
    # 员工权限设置: the permission areas (actions.permissions.AREAS) an employee of a customer company may use;
    # NULL = every area (the company's administrators, and every login created before employees existed).
    areas: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))

    company: Mapped[Company | None] = relationship()

    # Flask-Login protocol -------------------------------------------------------------
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    # ----------------------------------------------------------------------------------
    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_applicant(self) -> bool:
        return self.role == APPLICANT

    def set_password(self, password: str, method: str = "scrypt") -> None:
        self.password_hash = generate_password_hash(password, method=method)
        self.session_version = (self.session_version or 0) + 1

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __str__(self) -> str:
        return self.username


class PhoneCode(db.Model):
    """An SMS code sent to verify a login's phone: kept only as a hash, single use, expires, and
    dead after `attempts` reaches the limit (counted by a conditional UPDATE)."""

    __tablename__ = "phone_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PhoneThrottle(db.Model):
    """Per phone: when the last SMS code left and how many left in the current hour. One
    conditional UPDATE claims a send, so two requests at the same moment cannot both pass."""

    __tablename__ = "phone_throttle"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_sent_at: Mapped[datetime]
    window_started_at: Mapped[datetime]
    sent_in_window: Mapped[int] = mapped_column(Integer, default=1)


class CaptchaChallenge(db.Model):
    """An image captcha shown once: its answer hashed (HMAC), consumed by one DELETE whatever the answer."""

    __tablename__ = "captcha_challenge"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuditEvent(db.Model):
    """Who did what to which rows, when, from where. Written, never edited."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_model_at", "model", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    actor_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(40))
    ids: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    # The summary as a message key and parameters (actions/texts.py), shown in the reader's language.
    summary_data: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))

    actor: Mapped[User | None] = relationship()


# --- catalog -----------------------------------------------------------------------------


class PackageCategory(db.Model):
    """套餐大类."""

    __tablename__ = "package_category"
    __table_args__ = (CheckConstraint(_in("kind", PACKAGE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))

    subcategories: Mapped[list[PackageSubcategory]] = relationship(back_populates="category")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PackageSubcategory(db.Model):
    """套餐小类, always inside one category."""

    __tablename__ = "package_subcategory"
    __table_args__ = (
        CheckConstraint(_in("kind", PACKAGE_KINDS), name="kind"),
        UniqueConstraint("id", "category_id", name="uq_package_subcategory_id_category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    category_id: Mapped[int] = mapped_column(ForeignKey("package_category.id"), index=True)

    category: Mapped[PackageCategory] = relationship(back_populates="subcategories")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Package(db.Model):
    """套餐: what a device renewal, a value-added service, a VIP level or a seat costs."""

    __tablename__ = "package"
    __table_args__ = (
        CheckConstraint(_in("kind", PACKAGE_KINDS), name="kind"),
        CheckConstraint(_in("pricing", PRICING_METHODS), name="pricing"),
        CheckConstraint(_in("currency", CURRENCIES), name="currency"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        # A seat package prices one seat of one product edition; no other kind has an edition.
        CheckConstraint(
            f"edition IS NULL OR (kind = 'seat' AND {_in('edition', SEAT_EDITIONS)})",
            name="seat_edition",
        ),
        # One seat package on sale per edition: buying and granting seats find it by its edition.
        Index("uq_package_active_seat_edition", "edition", unique=True,
              sqlite_where=text("kind = 'seat' AND active"), postgresql_where=text("kind = 'seat' AND active")),
        CheckConstraint(
            "(pricing = 'per_term' AND term_months > 0) OR "
            "(pricing <> 'per_term' AND term_months IS NULL)",
            name="term_months",
        ),
        # The subcategory must belong to the package's category, checked by the database.
        ForeignKeyConstraint(
            ["subcategory_id", "category_id"],
            ["package_subcategory.id", "package_subcategory.category_id"],
            name="fk_package_subcategory_in_category",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    category_id: Mapped[int] = mapped_column(ForeignKey("package_category.id"), index=True)
    subcategory_id: Mapped[int | None] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(20), default="renewal")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    amount = Money("amount_minor")
    pricing: Mapped[str] = mapped_column(String(20), default="per_month")
    term_months: Mapped[int | None]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The product edition a seat package sells (SEAT_EDITIONS); None for every other kind.
    edition: Mapped[str | None] = mapped_column(String(20))

    category: Mapped[PackageCategory] = relationship()
    subcategory: Mapped[PackageSubcategory | None] = relationship(
        primaryjoin="Package.subcategory_id == PackageSubcategory.id",
        foreign_keys=[subcategory_id],
        viewonly=True,
    )

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


# --- billing config and devices -----------------------------------------------------------


class BillingConfig(db.Model):
    """收费账户配置: a company's billing cycle, auto-renew and push settings."""

    __tablename__ = "billing_config"
    __table_args__ = (
        CheckConstraint(_in("billing_cycle", BILLING_CYCLES), name="billing_cycle"),
        CheckConstraint(_in("push_language", PUSH_LANGUAGES), name="push_language"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), unique=True)
    billing_cycle: Mapped[str] = mapped_column(String(20), default="monthly")
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=False)
    push_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    push_language: Mapped[str] = mapped_column(String(8), default="zh_CN")
    # One address per line, validated and de-duplicated by actions.billing.
    push_emails: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    company: Mapped[Company] = relationship()

    @property
    def email_list(self) -> list[str]:
        return [e for e in self.push_emails.splitlines() if e]


# Search structures the migrations build by hand, per database: SQLite's FTS5 trigram table of
# device numbers and names (and its shadow tables), PostgreSQL's pg_trgm indexes.
UNMODELLED_SEARCH = ("device_fts", "ix_device_number_trgm", "ix_device_name_trgm")


def include_in_autogenerate(object_, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object: leave the hand-built search structures out of the comparison."""
    return not (reflected and compare_to is None and name and name.startswith(UNMODELLED_SEARCH))


class Device(db.Model):
    """A tracked thing whose service runs until `expires_on`."""

    __tablename__ = "device"
    __table_args__ = (
        CheckConstraint(_in("status", DEVICE_STATUSES), name="status"),
        Index("ix_device_company_expires", "company_id", "expires_on"),
        # A status filter sorted by expiry is read in index order, the id breaking ties (every list
        # sort ends on it); company_id included: a customer's status-filtered page and count never
        # read the table.
        Index("ix_device_status_expires", "status", "expires_on", "id", "company_id"),
        # The types devices carry, one probe per type (actions.device_types.device_type_names), and
        # whether a company of a scope has a device of a type: an entry per (type, company).
        Index("ix_device_type_company", "device_type", "company_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="", index=True)
    device_type: Mapped[str] = mapped_column(String(40), default="")
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    status: Mapped[str] = mapped_column(String(20), default="active")
    expires_on: Mapped[date] = mapped_column(Date, index=True)
    package_id: Mapped[int | None] = mapped_column(ForeignKey("package.id"), index=True)
    suspended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship()
    package: Mapped[Package | None] = relationship()

    def suspend(self, at: datetime) -> None:
        self.status = "suspended"
        self.suspended_at = at

    def enable(self) -> None:
        self.status = "active"
        self.suspended_at = None

    def __str__(self) -> str:
        return self.number


class DeviceType(db.Model):
    """设备类型: the list a device's type is chosen from; technical support maintains it.

    `Device.device_type` keeps the name (a device of a type taken off the list keeps its value)."""

    __tablename__ = "device_type"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return self.name


class CompanyPackage(db.Model):
    """客户增值配置: a value-added package offered to a company."""

    __tablename__ = "company_package"
    __table_args__ = (UniqueConstraint("company_id", "package_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship()
    package: Mapped[Package] = relationship()


class DeviceService(db.Model):
    """A value-added service a customer bought for a device (增值订单), running until `expires_on`."""

    __tablename__ = "device_service"
    __table_args__ = (UniqueConstraint("device_id", "package_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id"), index=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"), index=True)
    expires_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    device: Mapped[Device] = relationship()
    package: Mapped[Package] = relationship()


EXPIRY_IMPORT_STATUSES = ("previewed", "committing", "committed", "failed")


class ExpiryImport(db.Model):
    """One uploaded expiry workbook and what became of it.

    A commit applies its changes a chunk at a time (importers.expiry.commit): while it runs, or
    after it was interrupted, the import is "committing" with `rows_applied` of `rows_changed`
    devices set, `progress_at` the last chunk's time; committing it again resumes from there."""

    __tablename__ = "expiry_import"
    __table_args__ = (
        CheckConstraint(_in("status", EXPIRY_IMPORT_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="previewed")
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_changed: Mapped[int] = mapped_column(Integer, default=0)
    rows_failed: Mapped[int] = mapped_column(Integer, default=0)
    # The per-row errors, one "row N: reason" per line (the first thousand), or why the file was refused: in
    # English; `errors_data` holds the same lines as stored messages (actions.texts), shown in the reader's
    # language (importers.expiry.error_lines). Imports stored before it have none: their text is shown.
    errors: Mapped[str] = mapped_column(Text, default="")
    errors_data: Mapped[list | None] = mapped_column(JSON)
    committed_at: Mapped[datetime | None]
    rows_applied: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    progress_at: Mapped[datetime | None]

    actor: Mapped[User] = relationship()


# --- money ---------------------------------------------------------------------------------

WALLET_CURRENCIES = {"CNY": _l("CNY"), "USD": _l("USD"), "VND": _l("VND"), "COIN": _l("Coins")}
ORDER_KINDS = {
    "recharge": _l("Recharge"),
    "coins": _l("Coin purchase"),
    "renewal": _l("Renewal"),
    "value_added": _l("Value-added order"),
    "vip_upgrade": _l("VIP upgrade"),
    "seats": _l("Account increase"),
    "subscription": _l("Subscription"),
    "card_sale": _l("Card sale"),
}
ORDER_STATUSES = {
    "pending": _l("Pending payment"),
    "paid": _l("Paid"),
    "cancelled": _l("Cancelled"),
    "refunded": _l("Refunded"),
}
REFUND_STATUSES = {
    "requested": _l("Refund requested"),
    "approved": _l("Refund approved"),
    "processing": _l("Refund on its way"),
    "completed": _l("Refunded"),
    "not_paid_out": _l("Refund not paid out"),
    "rejected": _l("Refund rejected"),
    "failed": _l("Refund failed"),
}
# OrderLine.seat_state: seats counted in the quota, taken back at their expiry, or by a refund.
SEAT_STATES = ("active", "expired", "returned")
DISCOUNT_SOURCES = {"line": _l("Line promotion"), "invoice": _l("Invoice promotion")}
PAYMENT_METHODS = {
    "balance": _l("Balance"),
    "wechat": _l("WeChat Pay"),
    "alipay": _l("Alipay"),
    "paypal": _l("PayPal"),
    "vnptpay": _l("VNPT Pay"),
    "bank_transfer": _l("Bank transfer"),
    "cash": _l("Cash"),
    # An approved offline recharge (线下充值): finance saw the money arrive outside the system.
    "offline": _l("Offline payment"),
}
# What a payment attempt may name: never "offline" (an approved application, no provider to ask).
ATTEMPT_METHODS = tuple(method for method in PAYMENT_METHODS if method != "offline")
INVOICE_STATUSES = {"none": _l("Not invoiced"), "requested": _l("Invoice requested"), "invoiced": _l("Invoiced")}
LEDGER_KINDS = {
    "recharge": _l("Online recharge"),
    "coin_purchase": _l("Coin purchase"),
    "offline_recharge": _l("Offline recharge"),
    "payment": _l("Payment"),
    "refund": _l("Refund"),
    "bank_transfer": _l("Bank transfer"),
    # cards (seed 002): the commission wallet's movements
    "commission": _l("Commission"),
    "withdrawal": _l("Withdrawal"),
    "withdrawal_release": _l("Withdrawal released"),
}
# A company's prepaid balance, and (cards, seed 002) the commission it earned, kept apart.
WALLET_KINDS = {"prepaid": _l("Prepaid balance"), "commission": _l("Commission")}
RECHARGE_STATUSES = {
    "draft": _l("Draft"),
    "submitted": _l("Pending review"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected (back to sales)"),
    "declined": _l("Declined"),
}


class Wallet(db.Model):
    """A company's balance in one currency; the database refuses a negative balance."""

    __tablename__ = "wallet"
    __table_args__ = (
        UniqueConstraint("company_id", "currency", "kind"),
        CheckConstraint("balance_minor >= 0", name="balance_not_negative"),
        CheckConstraint(_in("currency", WALLET_CURRENCIES), name="currency"),
        CheckConstraint(_in("kind", WALLET_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    currency: Mapped[str] = mapped_column(String(4))
    # "commission" wallets hold posted commission (cards); only withdrawals spend them.
    kind: Mapped[str] = mapped_column(String(12), default="prepaid", server_default="prepaid")
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    balance = Money("balance_minor")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship()

    def __str__(self) -> str:
        return f"{self.company} {self.currency}" + (" (commission)" if self.kind == "commission" else "")


class LedgerEntry(db.Model):
    """One signed movement of a wallet. Append-only; the entries of a wallet sum to its balance."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind"),
        CheckConstraint(_in("currency", WALLET_CURRENCIES), name="currency"),
        CheckConstraint("amount_minor <> 0", name="amount_not_zero"),
        CheckConstraint("balance_after_minor >= 0", name="balance_after_not_negative"),
        Index("ix_ledger_entry_wallet_id_id", "wallet_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallet.id"))
    kind: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(4))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    balance_after_minor: Mapped[int] = mapped_column(BigInteger)
    amount = Money("amount_minor")
    balance_after = Money("balance_after_minor")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    offline_recharge_id: Mapped[int | None] = mapped_column(ForeignKey("offline_recharge.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # What the movement is for, e.g. "pay:order:17": the same movement can never be written twice.
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    memo: Mapped[str] = mapped_column(String(255), default="")
    # The memo as a message key and parameters (actions/texts.py), shown in the reader's language.
    memo_data: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    wallet: Mapped[Wallet] = relationship()
    order: Mapped[Order | None] = relationship()
    actor: Mapped[User | None] = relationship()

    @hybrid_property
    def company_id(self) -> int:
        """The company whose wallet moved (what scopes an entry: admin_views.base reads `scope_column`)."""
        return self.wallet.company_id

    @company_id.comparator
    def company_id(cls):
        return _WalletCompany(cls.wallet_id)

    def __str__(self) -> str:
        return self.memo or self.idempotency_key


class _WalletCompany(Comparator):
    """`LedgerEntry.company_id <op> x` as "its wallet's company <op> x", by the wallet_id index:
    `wallet_id IN (SELECT id FROM wallet WHERE company_id <op> x)` (never a join, never correlated)."""

    def operate(self, op, *other, **kwargs):
        return LedgerEntry.wallet_id.in_(
            select(Wallet.id).where(op(Wallet.company_id, *other, **kwargs)).correlate(None))


class Order(db.Model):
    """An order: what is bought (its lines), for how much, and how it was paid."""

    __tablename__ = "order"
    __table_args__ = (
        CheckConstraint(_in("kind", ORDER_KINDS), name="kind"),
        CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
        CheckConstraint(_in("currency", WALLET_CURRENCIES), name="currency"),
        CheckConstraint("payment_method IS NULL OR " + _in("payment_method", PAYMENT_METHODS), name="payment_method"),
        CheckConstraint(_in("invoice_status", INVOICE_STATUSES), name="invoice_status"),
        # 0.00 is a real total (fully discounted): paid at once, with no ledger movement.
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        CheckConstraint("refunded_minor >= 0 AND refunded_minor <= total_minor", name="refunded_within_total"),
        Index("ix_order_company_created", "company_id", "created_at"),
        Index("ix_order_status_created", "status", "created_at"),
        # The order lists' default sort, newest first, id breaking ties: read from the index end.
        Index("ix_order_created_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    currency: Mapped[str] = mapped_column(String(4))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    total = Money("total_minor")
    # What completed refunds gave back; kept by conditional UPDATEs, never above the total.
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded = Money("refunded_minor")
    payment_method: Mapped[str | None] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    invoice_status: Mapped[str] = mapped_column(String(20), default="none")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(String(255), default="")
    note_data: Mapped[dict | None] = mapped_column(JSON)  # the note as a stored message (actions.texts), if any
    promotion: Mapped[str | None] = mapped_column(String(100))
    # The open or issued invoice request covering this order: never two at once.
    invoice_request_id: Mapped[int | None] = mapped_column(ForeignKey("invoice_request.id"), index=True)

    company: Mapped[Company] = relationship()
    created_by: Mapped[User | None] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", order_by="OrderLine.id")

    @property
    def discount(self) -> Decimal:
        return sum((line.discount for line in self.lines), from_minor(0, self.currency))

    def __str__(self) -> str:
        return self.number


def _order_currency(row) -> str | None:
    """The currency of an order line, refund or receipt: its order's."""
    if row.order is not None:
        return row.order.currency
    session = Session.object_session(row)
    if session is None or row.order_id is None:
        return None
    return session.scalar(select(Order.currency).where(Order.id == row.order_id))


class OrderLine(db.Model):
    """One thing an order buys: a device renewal of N months, a recharge amount, …"""

    __tablename__ = "order_line"
    __table_args__ = (
        CheckConstraint("gross_minor >= 0 AND discount_minor >= 0", name="amounts_not_negative"),
        CheckConstraint("net_minor = gross_minor - discount_minor AND net_minor >= 0", name="net_is_gross_less_discount"),
        CheckConstraint("refunded_minor >= 0 AND refunded_minor <= net_minor", name="refunded_within_net"),
        # An auto-renewal line is the device's claim for the expiry it renews from: never twice (NULLs,
        # every other line, never collide). It also serves the look-ups by device.
        Index("uq_order_line_device_auto_renew", "device_id", "auto_renew_from", unique=True),
        CheckConstraint("seat_state IS NULL OR " + _in("seat_state", SEAT_STATES), name="seat_state"),
        # The seat expiry job's look-up: seats still counted whose term ended before a day.
        # Partial: the many other lines (renewals) write no entry.
        Index("ix_order_line_seat_expires", "new_expires_on", sqlite_where=text("seat_state = 'active'"),
              postgresql_where=text("seat_state = 'active'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id"))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("package.id"), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    # The description as a message key and parameters (actions/texts.py); `description` is its English.
    description_data: Mapped[dict | None] = mapped_column(JSON)
    edition: Mapped[str | None] = mapped_column(String(20))
    months: Mapped[int | None]
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    # What refunds gave back of this line (a line is refunded at most once, whole).
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    unit_price = Money("unit_price_minor", _order_currency)
    gross = Money("gross_minor", _order_currency)
    discount = Money("discount_minor", _order_currency)
    net = Money("net_minor", _order_currency)
    refunded = Money("refunded_minor", _order_currency)
    # The expiry before and after payment, so a refund can roll it back (devices, member accounts).
    old_expires_on: Mapped[date | None] = mapped_column(Date)
    new_expires_on: Mapped[date | None] = mapped_column(Date)
    # Auto-renewal lines only: the expiry the run claimed the device for (its old_expires_on), unique per
    # device (actions.billing_jobs). NULL on every other line.
    auto_renew_from: Mapped[date | None] = mapped_column(Date)
    # A VIP upgrade's account and its level before, so a refund can put it back.
    member_account_id: Mapped[int | None] = mapped_column(ForeignKey("member_account.id"), index=True)
    old_level: Mapped[str | None] = mapped_column(String(20))
    # Seat lines only (actions.seats): whether their seats count in the company's SeatQuota.purchased.
    # "active" from payment; "expired" once the expiry job took them back (new_expires_on, paid day + the
    # package's term, had passed; `months` is that term, None: the seats never expire); "returned" once a
    # refund did. Both leave "active" by a conditional UPDATE, so seats are taken back once. NULL elsewhere.
    seat_state: Mapped[str | None] = mapped_column(String(10))

    order: Mapped[Order] = relationship(back_populates="lines")
    device: Mapped[Device | None] = relationship()
    package: Mapped[Package | None] = relationship()
    discounts: Mapped[list[OrderDiscount]] = relationship(back_populates="line", order_by="OrderDiscount.id")

    @property
    def amount(self) -> Decimal:
        """What the line costs after its discounts (its net)."""
        return self.net

    @amount.setter
    def amount(self, value: Decimal) -> None:
        """An undiscounted line: gross and net are both `value`."""
        self.gross = value
        self.net = value
        self.discount_minor = 0

    @property
    def refundable(self) -> bool:
        return self.refunded_minor == 0 and self.net_minor > 0


class OrderDiscount(db.Model):
    """One discount's share of one order line: a line promotion, or a line's part of an invoice one."""

    __tablename__ = "order_discount"
    __table_args__ = (
        CheckConstraint(_in("source", DISCOUNT_SOURCES), name="source"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), index=True)
    source: Mapped[str] = mapped_column(String(10))
    # What granted it: a promotion's code and name as shown then (areas may add their own key).
    label: Mapped[str] = mapped_column(String(200), default="")
    promotion_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    amount = Money("amount_minor", _order_currency)

    order: Mapped[Order] = relationship()
    line: Mapped[OrderLine] = relationship(back_populates="discounts")


class OrderRefund(db.Model):
    """A refund of some lines of a paid order: requested → approved → completed | rejected | failed.

    It goes back the way the order was paid (the wallet for balance payments, the provider for
    online ones); whoever approves it did not request it.
    """

    __tablename__ = "order_refund"
    __table_args__ = (
        CheckConstraint(_in("status", REFUND_STATUSES), name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("approved_by_id IS NULL OR approved_by_id <> requested_by_id", name="four_eyes"),
        Index("ix_order_refund_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    amount = Money("amount_minor", _order_currency)
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    provider_refund_id: Mapped[str | None] = mapped_column(String(100))
    failure_reason: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order] = relationship()
    lines: Mapped[list[OrderRefundLine]] = relationship(back_populates="refund", order_by="OrderRefundLine.id")
    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])

    @property
    def currency(self) -> str:
        return self.order.currency

    def __str__(self) -> str:
        return f"{self.order.number} #{self.id}"


class OrderRefundLine(db.Model):
    """One order line a refund gives back, with the amount (the line's net)."""

    __tablename__ = "order_refund_line"
    __table_args__ = (
        UniqueConstraint("refund_id", "line_id"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("order_refund.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    refund: Mapped[OrderRefund] = relationship(back_populates="lines")
    line: Mapped[OrderLine] = relationship()


class OfflineRecharge(db.Model):
    """线下充值: sales drafts it, finance approves (credits once), rejects (back to sales) or declines."""

    __tablename__ = "offline_recharge"
    __table_args__ = (
        CheckConstraint(_in("status", RECHARGE_STATUSES), name="status"),
        CheckConstraint(_in("currency", CURRENCIES), name="currency"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index("ix_offline_recharge_status_created", "status", "created_at"),
        # A reference (the bank transfer's) is filed once per company; declined applications aside.
        Index("uq_offline_recharge_company_reference", "company_id", "reference", unique=True,
              sqlite_where=text("reference <> '' AND status <> 'declined'"),
              postgresql_where=text("reference <> '' AND status <> 'declined'")),
        # Only an approved application has its paid recharge order (充值记录 / 订单管理), and one at most.
        CheckConstraint("order_id IS NULL OR status = 'approved'", name="order_only_when_approved"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    payer: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    amount = Money("amount_minor")
    reference: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[datetime | None]
    review_comment: Mapped[str] = mapped_column(Text, default="")
    # The paid recharge order approval wrote (payment method "offline"): the customer's 充值记录 lists it.
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), unique=True)

    company: Mapped[Company] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    order: Mapped[Order | None] = relationship()

    def __str__(self) -> str:
        return f"#{self.id} {self.payer}"


class AutoRenewAttempt(db.Model):
    """One auto-renewal of one device for one period (the expiry it started from): never twice."""

    __tablename__ = "auto_renew_attempt"
    __table_args__ = (
        UniqueConstraint("device_id", "period_start"),
        CheckConstraint(_in("outcome", ("renewed", "insufficient_balance", "no_package", "failed")), name="outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id"))
    period_start: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(30))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"))
    message: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReminderLog(db.Model):
    """One expiry reminder sent to one company for one billing period: never twice."""

    __tablename__ = "reminder_log"
    __table_args__ = (UniqueConstraint("company_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    period: Mapped[str] = mapped_column(String(20))
    devices: Mapped[int] = mapped_column(Integer, default=0)
    recipients: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- tenants, member accounts, seats, invoices (seeds 000 and 004) ---------------------------

APPLICATION_STATUSES = {"pending": _l("Pending review"), "approved": _l("Approved"), "rejected": _l("Rejected")}
VIP_LEVELS = {"none": _l("Ordinary"), "vip": _l("VIP"), "svip": _l("SVIP")}
INVITATION_STATES = {"none": _l("Not invited"), "sent": _l("Invited"), "accepted": _l("Accepted")}
RECEIPT_STATUSES = {"submitted": _l("Awaiting confirmation"), "confirmed": _l("Confirmed"),
                    "credited": _l("Credited to balance"), "rejected": _l("Rejected")}
INVOICE_TITLE_KINDS = {"ordinary": _l("Ordinary invoice"), "special": _l("Special VAT invoice")}
INVOICE_TYPES = {
    "electronic_ordinary": _l("Electronic ordinary invoice"),
    "paper_ordinary": _l("Paper ordinary invoice"),
    "special": _l("Special VAT invoice"),
}
INVOICE_REQUEST_STATUSES = {"requested": _l("Requested"), "issued": _l("Issued"), "rejected": _l("Rejected")}


class TenantApplication(db.Model):
    """申请开通: a company asks to join; an admin approves (creating the tenant) or rejects."""

    __tablename__ = "tenant_application"
    __table_args__ = (
        CheckConstraint(_in("status", APPLICATION_STATUSES), name="status"),
        # One pending application per tax ID, even when two arrive at the same moment.
        Index("uq_tenant_application_pending_tax_id", "tax_id", unique=True,
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_name: Mapped[str] = mapped_column(String(200))
    tax_id: Mapped[str] = mapped_column(String(32), index=True)
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_phone: Mapped[str] = mapped_column(String(40))
    contact_email: Mapped[str] = mapped_column(String(254))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    applicant_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Company | None] = relationship(foreign_keys=[parent_id])
    company: Mapped[Company | None] = relationship(foreign_keys=[company_id])
    applicant: Mapped[User | None] = relationship(foreign_keys=[applicant_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])


class MemberAccount(db.Model):
    """An end-user account a customer manages: VIP level and expiry, or an organizer seat."""

    __tablename__ = "member_account"
    __table_args__ = (
        CheckConstraint(_in("vip_level", VIP_LEVELS), name="vip_level"),
        CheckConstraint("seat_edition IS NULL OR " + _in("seat_edition", SEAT_EDITIONS), name="seat_edition"),
        CheckConstraint(_in("invitation_state", INVITATION_STATES), name="invitation_state"),
        Index("ix_member_account_company_login", "company_id", "login"),
        # One login in any letter case: tupp01 and TUPP01, or two spellings of one organizer's email, are one.
        Index("uq_member_account_login_lower", text("lower(login)"), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    login: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(254))
    first_name: Mapped[str | None] = mapped_column(String(60))
    last_name: Mapped[str | None] = mapped_column(String(60))
    vip_level: Mapped[str] = mapped_column(String(10), default="none")
    vip_expires_on: Mapped[date | None] = mapped_column(Date)
    seat_edition: Mapped[str | None] = mapped_column(String(20))
    invitation_state: Mapped[str] = mapped_column(String(20), default="none")
    invited_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship()

    def __str__(self) -> str:
        return self.login


class SeatQuota(db.Model):
    """Seats a company bought per product edition; used seats are its active organizer accounts."""

    __tablename__ = "seat_quota"
    __table_args__ = (
        UniqueConstraint("company_id", "edition"),
        CheckConstraint(_in("edition", SEAT_EDITIONS), name="edition"),
        CheckConstraint("purchased >= 0 AND used >= 0 AND used <= purchased", name="used_within_purchased"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    edition: Mapped[str] = mapped_column(String(20))
    purchased: Mapped[int] = mapped_column(Integer, default=0)
    # Kept by conditional UPDATEs (used < purchased) so two creations can't take the last seat.
    used: Mapped[int] = mapped_column(Integer, default=0)

    company: Mapped[Company] = relationship()

    @property
    def left(self) -> int:
        return self.purchased - self.used


class BankTransferReceipt(db.Model):
    """The electronic receipt of a bank transfer paying a pending order; finance confirms it."""

    __tablename__ = "bank_transfer_receipt"
    __table_args__ = (
        CheckConstraint(_in("status", RECEIPT_STATUSES), name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("received_minor IS NULL OR received_minor > 0", name="received_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    payer_company: Mapped[str] = mapped_column(String(200))
    payer_account: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    amount = Money("amount_minor", _order_currency)
    # What finance saw arrive on the bank statement (set on review): the order is paid only when it
    # equals the total; any other amount is credited to the company's balance (actions/bank_transfers.py).
    received_minor: Mapped[int | None] = mapped_column(BigInteger)
    received = Money("received_minor", _order_currency)
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[datetime | None]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship()
    uploaded_by: Mapped[User | None] = relationship(foreign_keys=[uploaded_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])


class InvoiceTitle(db.Model):
    """发票抬头: what an invoice is made out to; special ones need the general-taxpayer document."""

    __tablename__ = "invoice_title"
    __table_args__ = (
        UniqueConstraint("company_id", "kind"),
        CheckConstraint(_in("kind", INVOICE_TITLE_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    tax_id: Mapped[str] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(40))
    bank_name: Mapped[str | None] = mapped_column(String(100))
    bank_account: Mapped[str | None] = mapped_column(String(64))
    registration_file_name: Mapped[str | None] = mapped_column(String(255))
    registration_file_sha256: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    company: Mapped[Company] = relationship()

    def __str__(self) -> str:
        return self.title


class InvoiceRequest(db.Model):
    """申请开票 over paid, not-yet-invoiced orders; finance issues it (number, date) or rejects it."""

    __tablename__ = "invoice_request"
    __table_args__ = (
        CheckConstraint(_in("invoice_type", INVOICE_TYPES), name="invoice_type"),
        CheckConstraint(_in("status", INVOICE_REQUEST_STATUSES), name="status"),
        # An issued invoice's number is given once.
        Index("uq_invoice_request_issued_number", "invoice_number", unique=True,
              sqlite_where=text("status = 'issued'"), postgresql_where=text("status = 'issued'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    title_id: Mapped[int] = mapped_column(ForeignKey("invoice_title.id"))
    invoice_type: Mapped[str] = mapped_column(String(30))
    currency: Mapped[str] = mapped_column(String(4))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    total = Money("total_minor")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    postal_address: Mapped[str | None] = mapped_column(String(255))
    remark: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="requested")
    invoice_number: Mapped[str | None] = mapped_column(String(64))
    invoice_date: Mapped[date | None] = mapped_column(Date)
    reject_reason: Mapped[str] = mapped_column(Text, default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship()
    title: Mapped[InvoiceTitle] = relationship()
    orders: Mapped[list[Order]] = relationship(foreign_keys="Order.invoice_request_id")


# --- payment notifications and the mail outbox ---------------------------------------------

NOTIFICATION_REFUSALS = {
    "malformed": _l("Malformed"),
    "unknown_method": _l("Unknown or disabled method"),
    "bad_signature": _l("Bad signature"),
    "unknown_order": _l("Unknown order"),
    "amount_mismatch": _l("Amount mismatch"),
    "currency_mismatch": _l("Currency mismatch"),
    "stale": _l("Order no longer awaiting payment"),
    "repeated": _l("Repeated transaction"),
}


class RefusedNotification(db.Model):
    """A payment notification the callback refused: why, for which method, from where. Never edited.

    The rows of one source in the last minute are also its rate limit (index on source, at).
    """

    __tablename__ = "refused_notification"
    __table_args__ = (
        CheckConstraint(_in("reason", NOTIFICATION_REFUSALS), name="reason"),
        Index("ix_refused_notification_source_at", "source", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(45))
    method: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(20))
    order_number: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(255), default="")
    body_excerpt: Mapped[str] = mapped_column(Text, default="")


class PaymentAttempt(db.Model):
    """A payment opened at a provider for an order, with the provider's reference for it (PayPal's
    order id; the order number for the others): what the payer's return and `billing
    reconcile-payments` ask the provider about, and the QR code the pay page shows again."""

    __tablename__ = "payment_attempt"
    __table_args__ = (
        UniqueConstraint("method", "reference"),
        CheckConstraint(_in("method", ATTEMPT_METHODS), name="method"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    method: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The QR code's text the provider gave (WeChat Pay's code_url, Alipay's pre-created qr_code) and when:
    # the pay page shows it again on a reload or the payer's return instead of opening another payment.
    qr_text: Mapped[str | None] = mapped_column(Text)
    qr_given_at: Mapped[datetime | None]


MAIL_STATUSES = {
    "queued": _l("Queued"),
    "sending": _l("Sending"),
    "sent": _l("Sent"),
    "failed": _l("Failed"),
}


class OutboxMail(db.Model):
    """A mail written in the business transaction and sent after the commit (actions.outbox).

    `dedupe_key` names what the mail is about (one reminder per company and period, one welcome
    per user): queuing the same key twice keeps one mail. A `sensitive` mail (an initial
    password) loses its body once sent.
    """

    __tablename__ = "outbox_mail"
    __table_args__ = (
        CheckConstraint(_in("status", MAIL_STATUSES), name="status"),
        Index("ix_outbox_mail_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipients: Mapped[str] = mapped_column(Text)  # one address a line
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]

    @property
    def recipient_list(self) -> list[str]:
        return [r for r in self.recipients.splitlines() if r]


# --- subscriptions (seed 003) ------------------------------------------------------------------
# Service → ServicePlan → PlanCycle (its own whole-cycle price), PlanAddOn, TermsVersion; Promotion
# with its targets, allowed companies and reservations; Subscription with items, applied
# promotions, seats, notes, events, orders and cash receipts. Money is integer minor units in the
# currency of the service (`…_minor`); prices come from actions.pricing.price_order only.

SUBSCRIPTION_CURRENCIES = ("CNY", "USD", "VND")
SUBSCRIPTION_STATES = {
    "pending_payment": _l("Pending payment"),
    "active": _l("Active"),
    "past_due": _l("Past due"),
    "cancel_scheduled": _l("Cancels at period end"),
    "cancelled": _l("Cancelled"),
    "expired": _l("Expired"),
    "abandoned": _l("Abandoned"),
    "suspended": _l("Suspended"),
}
PROMOTION_SCOPES = {"plan": _l("Plan"), "add_on": _l("Add-on"), "invoice": _l("Invoice total")}
PROMOTION_KINDS = {"percent": _l("Percentage"), "fixed": _l("Fixed amount")}
PROMOTION_STATUSES = {"draft": _l("Draft"), "active": _l("Active"), "paused": _l("Paused"), "archived": _l("Archived")}
PROMOTION_DURATIONS = {"once": _l("First cycle only"), "cycles": _l("Several cycles"), "forever": _l("Every cycle")}
RESERVATION_STATUSES = {"reserved": _l("Reserved"), "redeemed": _l("Redeemed"), "released": _l("Released")}
RENEWAL_METHODS = {"balance": _l("Balance"), "online": _l("Online payment"), "cash": _l("Cash")}
# Seed 003's two registration flows: ON (the customer pays online or from the balance) and OS (the customer
# pays cash to sales, who enters the receipt; finance confirms it). Shown as the codes, explained by these.
SALES_FLOWS = {"ON": _l("Paid online or from the balance"),
               "OS": _l("Cash accepted: pay cash to sales (or from the balance); the subscription starts when "
                        "finance confirms the cash")}
NOTE_VISIBILITIES = {"internal": _l("Internal"), "customer": _l("Visible to the customer")}
SUBSCRIPTION_ORDER_PURPOSES = {"start": _l("Subscription"), "renewal": _l("Renewal"), "upgrade": _l("Upgrade")}
SUBSCRIPTION_EVENT_KINDS = {
    "created": pgettext("subscription event", "Created"),  # an event (已创建), not the column "Created" (创建时间)
    "paid": _l("Paid"),
    "started": _l("Started"),
    "renewal_ordered": _l("Renewal ordered"),
    "renewed": _l("Renewed"),
    "past_due": _l("Past due"),
    "expired": _l("Expired"),
    "abandoned": _l("Abandoned"),
    "cancel_scheduled": _l("Cancellation scheduled"),
    "cancel_undone": _l("Cancellation withdrawn"),
    "cancelled": _l("Cancelled"),
    "refunded": _l("Refunded"),
    "upgrade_ordered": _l("Upgrade ordered"),
    "upgraded": _l("Upgraded"),
    "downgrade_scheduled": _l("Downgrade scheduled"),
    "downgraded": _l("Downgraded"),
    "seat_assigned": _l("Seat assigned"),
    "seat_removed": _l("Seat removed"),
    "note": _l("Note"),
    "settings": _l("Settings changed"),
    "cash_entered": _l("Cash receipt entered"),
    "cash_confirmed": _l("Cash receipt confirmed"),
    "cash_rejected": _l("Cash receipt rejected"),
}
CASH_RECEIPT_STATUSES = {"submitted": _l("Awaiting confirmation"), "confirmed": _l("Confirmed"),
                         "rejected": _l("Rejected")}


class Service(db.Model):
    """A service sold by subscription (its price table lists its plans and their cycles)."""

    __tablename__ = "service"
    __table_args__ = (
        CheckConstraint(_in("currency", SUBSCRIPTION_CURRENCIES), name="currency"),
        CheckConstraint("renewal_days_before >= 0 AND grace_days >= 0", name="days_not_negative"),
        CheckConstraint(_in("sales_flow", SALES_FLOWS), name="sales_flow"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(4))
    # The renewal order is made this many days before a period ends; unpaid, it is past due
    # for `grace_days` and then expires.
    renewal_days_before: Mapped[int] = mapped_column(Integer, default=7)
    grace_days: Mapped[int] = mapped_column(Integer, default=7)
    # ON or OS (SALES_FLOWS): the payment methods checkout and renewal offer (subscriptions.pay_methods_for).
    sales_flow: Mapped[str] = mapped_column(String(2), default="ON", server_default="ON")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    plans: Mapped[list[ServicePlan]] = relationship(back_populates="service", order_by="ServicePlan.rank")
    add_ons: Mapped[list[PlanAddOn]] = relationship(back_populates="service", order_by="PlanAddOn.id")

    def __str__(self) -> str:
        return self.name


class ServicePlan(db.Model):
    """A plan (gói) of a service; `rank` orders plans for upgrade and downgrade."""

    __tablename__ = "service_plan"
    __table_args__ = (CheckConstraint("seat_limit >= 0", name="seat_limit_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    seat_limit: Mapped[int] = mapped_column(Integer, default=0)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    service: Mapped[Service] = relationship(back_populates="plans")
    cycles: Mapped[list[PlanCycle]] = relationship(back_populates="plan", order_by="PlanCycle.months")

    def __str__(self) -> str:
        return self.name


class PlanCycle(db.Model):
    """A billing cycle a plan is offered in, with its own whole-cycle price (not months × monthly)."""

    __tablename__ = "plan_cycle"
    __table_args__ = (
        UniqueConstraint("plan_id", "months"),
        CheckConstraint("months > 0 AND months <= 120", name="months_range"),
        CheckConstraint("price_minor > 0", name="price_positive"),
        CheckConstraint(_in("currency", SUBSCRIPTION_CURRENCIES), name="currency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("service_plan.id"), index=True)
    months: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(4))  # the service's
    price_minor: Mapped[int] = mapped_column(BigInteger)
    price = Money("price_minor")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    plan: Mapped[ServicePlan] = relationship(back_populates="cycles")

    def __str__(self) -> str:
        return f"{self.plan.name} · {self.months}"


class PlanAddOn(db.Model):
    """An add-on service (dịch vụ bổ sung); its price covers `months` and is prorated to the cycle."""

    __tablename__ = "plan_add_on"
    __table_args__ = (
        CheckConstraint("price_minor > 0", name="price_positive"),
        CheckConstraint("months > 0", name="months_positive"),
        CheckConstraint(_in("currency", SUBSCRIPTION_CURRENCIES), name="currency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(4))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    price = Money("price_minor")
    months: Mapped[int] = mapped_column(Integer, default=12)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    service: Mapped[Service] = relationship(back_populates="add_ons")

    def __str__(self) -> str:
        return self.name


class TermsVersion(db.Model):
    """A published version of a service's subscription terms; a checkout records the one agreed to."""

    __tablename__ = "terms_version"
    __table_args__ = (UniqueConstraint("service_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"), index=True)
    version: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime] = mapped_column(default=utcnow)

    service: Mapped[Service] = relationship()

    def __str__(self) -> str:
        return self.version


class Promotion(db.Model):
    """A promotion on a plan, an add-on or the invoice total; finance activates what others drafted.

    `redeemed` and `reserved` are kept by conditional UPDATEs (`… WHERE redeemed + reserved <
    max_redemptions`), so concurrent checkouts never sell more than the cap. Its values are
    frozen once `redeemed` > 0.
    """

    __tablename__ = "promotion"
    __table_args__ = (
        CheckConstraint(_in("scope", PROMOTION_SCOPES), name="scope"),
        CheckConstraint(_in("kind", PROMOTION_KINDS), name="kind"),
        CheckConstraint(_in("status", PROMOTION_STATUSES), name="status"),
        CheckConstraint(_in("duration", PROMOTION_DURATIONS), name="duration"),
        CheckConstraint(_in("currency", SUBSCRIPTION_CURRENCIES), name="currency"),
        CheckConstraint("(kind = 'percent' AND percent_hundredths > 0 AND percent_hundredths <= 10000 "
                        "AND amount_minor IS NULL) OR (kind = 'fixed' AND amount_minor > 0 "
                        "AND percent_hundredths IS NULL AND max_discount_minor IS NULL)", name="value"),
        CheckConstraint("max_discount_minor IS NULL OR max_discount_minor > 0", name="cap_positive"),
        CheckConstraint("(duration = 'cycles' AND duration_cycles > 0) OR "
                        "(duration <> 'cycles' AND duration_cycles IS NULL)", name="duration_cycles"),
        CheckConstraint("redeemed >= 0 AND reserved >= 0", name="counters_not_negative"),
        CheckConstraint("max_redemptions IS NULL OR redeemed + reserved <= max_redemptions",
                        name="within_max_redemptions"),
        CheckConstraint("max_per_company IS NULL OR max_per_company > 0", name="per_company_positive"),
        CheckConstraint("activated_by_id IS NULL OR activated_by_id <> created_by_id", name="four_eyes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(4))
    # 1250 = 12.50 %; fixed promotions use amount_minor instead.
    percent_hundredths: Mapped[int | None] = mapped_column(Integer)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    max_discount_minor: Mapped[int | None] = mapped_column(BigInteger)
    amount = Money("amount_minor")
    max_discount = Money("max_discount_minor")
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    max_per_company: Mapped[int | None] = mapped_column(Integer)
    redeemed: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    first_subscription_only: Mapped[bool] = mapped_column(Boolean, default=False)
    min_subtotal_minor: Mapped[int | None] = mapped_column(BigInteger)
    min_subtotal = Money("min_subtotal_minor")
    combinable: Mapped[bool] = mapped_column(Boolean, default=True)
    duration: Mapped[str] = mapped_column(String(10), default="once")
    duration_cycles: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    activated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    activated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    targets: Mapped[list[PromotionTarget]] = relationship(back_populates="promotion", order_by="PromotionTarget.id",
                                                          cascade="all, delete-orphan")
    companies: Mapped[list[PromotionCompany]] = relationship(back_populates="promotion",
                                                             cascade="all, delete-orphan")
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    activated_by: Mapped[User | None] = relationship(foreign_keys=[activated_by_id])

    @property
    def percent(self) -> Decimal | None:
        return None if self.percent_hundredths is None else Decimal(self.percent_hundredths) / 100


    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PromotionTarget(db.Model):
    """What a plan or add-on promotion applies to: a plan (any cycle), one cycle, or an add-on."""

    __tablename__ = "promotion_target"
    __table_args__ = (
        CheckConstraint("(CASE WHEN plan_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN cycle_id IS NULL THEN 0 ELSE 1 END)"
                        " + (CASE WHEN add_on_id IS NULL THEN 0 ELSE 1 END) = 1", name="one_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotion.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("service_plan.id"))
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("plan_cycle.id"))
    add_on_id: Mapped[int | None] = mapped_column(ForeignKey("plan_add_on.id"))

    promotion: Mapped[Promotion] = relationship(back_populates="targets")
    plan: Mapped[ServicePlan | None] = relationship()
    cycle: Mapped[PlanCycle | None] = relationship()
    add_on: Mapped[PlanAddOn | None] = relationship()


class PromotionCompany(db.Model):
    """The allow-list of a promotion: these companies and their subsidiaries (none listed: everyone)."""

    __tablename__ = "promotion_company"
    __table_args__ = (UniqueConstraint("promotion_id", "company_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotion.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))

    promotion: Mapped[Promotion] = relationship(back_populates="companies")
    company: Mapped[Company] = relationship()


class PromotionCompanyUse(db.Model):
    """How many redemptions and live reservations of a promotion one company holds (its per-company cap is
    checked on this counter by a conditional UPDATE)."""

    __tablename__ = "promotion_company_use"
    __table_args__ = (
        UniqueConstraint("promotion_id", "company_id"),
        CheckConstraint("used >= 0", name="used_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotion.id"))
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class PromotionReservation(db.Model):
    """One checkout's hold on one redemption of a promotion: reserved → redeemed | released."""

    __tablename__ = "promotion_reservation"
    __table_args__ = (
        UniqueConstraint("promotion_id", "checkout_key"),
        CheckConstraint(_in("status", RESERVATION_STATUSES), name="status"),
        Index("ix_promotion_reservation_status_expires", "status", "expires_at"),
        Index("ix_promotion_reservation_promotion_company", "promotion_id", "company_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotion.id"))
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    checkout_key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(10), default="reserved")
    expires_at: Mapped[datetime]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    promotion: Mapped[Promotion] = relationship()


class Subscription(db.Model):
    """A company's subscription to a plan in a cycle; its state is a column, never a hidden flag."""

    __tablename__ = "subscription"
    __table_args__ = (
        CheckConstraint(_in("status", SUBSCRIPTION_STATES), name="status"),
        CheckConstraint(_in("renewal_method", RENEWAL_METHODS), name="renewal_method"),
        CheckConstraint(_in("currency", SUBSCRIPTION_CURRENCIES), name="currency"),
        CheckConstraint("period_end IS NULL OR period_end > period_start", name="period_order"),
        CheckConstraint("seats_used >= 0", name="seats_used_not_negative"),
        Index("ix_subscription_company_status", "company_id", "status"),
        Index("ix_subscription_status_period_end", "status", "period_end"),
        # A customer's list filtered by plan or by period end counts its rows from an index alone, one
        # range per company of its tree (migration 0024).
        Index("ix_subscription_plan_company", "plan_id", "company_id"),
        Index("ix_subscription_company_period_end", "company_id", "period_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("service_plan.id"))  # ix_subscription_plan_company
    cycle_id: Mapped[int] = mapped_column(ForeignKey("plan_cycle.id"))
    currency: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(20), default="pending_payment")
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date, index=True)
    grace_until: Mapped[date | None] = mapped_column(Date)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    renewal_method: Mapped[str] = mapped_column(String(10), default="balance")
    # A locked subscription renews at the price of its last cycle, not the catalog's.
    price_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Seats held (SubscriptionSeat rows), kept by a conditional UPDATE against the plan's seat limit.
    seats_used: Mapped[int] = mapped_column(Integer, default=0)
    # A downgrade waits for the period end.
    next_plan_id: Mapped[int | None] = mapped_column(ForeignKey("service_plan.id"))
    next_cycle_id: Mapped[int | None] = mapped_column(ForeignKey("plan_cycle.id"))
    checkout_key: Mapped[str] = mapped_column(String(64), unique=True)
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    # The invoice details as they were at checkout (the title may change later).
    invoice_title: Mapped[str] = mapped_column(String(200), default="")
    invoice_tax_id: Mapped[str] = mapped_column(String(32), default="")
    invoice_address: Mapped[str] = mapped_column(String(255), default="")
    invoice_email: Mapped[str] = mapped_column(String(254), default="")
    terms_version_id: Mapped[int | None] = mapped_column(ForeignKey("terms_version.id"))
    terms_accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    terms_accepted_at: Mapped[datetime | None]
    terms_accepted_ip: Mapped[str | None] = mapped_column(String(45))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]

    company: Mapped[Company] = relationship()
    service: Mapped[Service] = relationship()
    plan: Mapped[ServicePlan] = relationship(foreign_keys=[plan_id])
    cycle: Mapped[PlanCycle] = relationship(foreign_keys=[cycle_id])
    next_plan: Mapped[ServicePlan | None] = relationship(foreign_keys=[next_plan_id])
    next_cycle: Mapped[PlanCycle | None] = relationship(foreign_keys=[next_cycle_id])
    terms_version: Mapped[TermsVersion | None] = relationship()
    terms_accepted_by: Mapped[User | None] = relationship(foreign_keys=[terms_accepted_by_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    items: Mapped[list[SubscriptionItem]] = relationship(back_populates="subscription", order_by="SubscriptionItem.id")
    promotions: Mapped[list[AppliedPromotion]] = relationship(back_populates="subscription",
                                                              order_by="AppliedPromotion.id")

    def __str__(self) -> str:
        return self.number


class SubscriptionItem(db.Model):
    """An add-on ticked on a subscription."""

    __tablename__ = "subscription_item"
    __table_args__ = (UniqueConstraint("subscription_id", "add_on_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id"))
    add_on_id: Mapped[int] = mapped_column(ForeignKey("plan_add_on.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    subscription: Mapped[Subscription] = relationship(back_populates="items")
    add_on: Mapped[PlanAddOn] = relationship()


class AppliedPromotion(db.Model):
    """A promotion a subscription carries on its plan, an add-on or its invoice, and the cycles left
    (None: every cycle)."""

    __tablename__ = "applied_promotion"
    __table_args__ = (
        CheckConstraint(_in("scope", PROMOTION_SCOPES), name="scope"),
        CheckConstraint("cycles_left IS NULL OR cycles_left >= 0", name="cycles_left_not_negative"),
        UniqueConstraint("subscription_id", "scope", "add_on_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id"))
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotion.id"), index=True)
    scope: Mapped[str] = mapped_column(String(10))
    add_on_id: Mapped[int | None] = mapped_column(ForeignKey("plan_add_on.id"))
    cycles_left: Mapped[int | None] = mapped_column(Integer)

    subscription: Mapped[Subscription] = relationship(back_populates="promotions")
    promotion: Mapped[Promotion] = relationship()


class SubscriptionOrder(db.Model):
    """An order of a subscription and the period it pays for (its first, a renewal, an upgrade)."""

    __tablename__ = "subscription_order"
    __table_args__ = (
        CheckConstraint(_in("purpose", SUBSCRIPTION_ORDER_PURPOSES), name="purpose"),
        # One renewal order per subscription and period, however often the job runs.
        UniqueConstraint("subscription_id", "purpose", "period_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id"), index=True)
    # Set once open_order returned (NULL only inside the checkout's transaction).
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), unique=True)
    purpose: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date | None] = mapped_column(Date)
    plan_id: Mapped[int] = mapped_column(ForeignKey("service_plan.id"))
    cycle_id: Mapped[int] = mapped_column(ForeignKey("plan_cycle.id"))

    subscription: Mapped[Subscription] = relationship()
    order: Mapped[Order | None] = relationship()
    plan: Mapped[ServicePlan] = relationship()
    cycle: Mapped[PlanCycle] = relationship()


class SubscriptionSeat(db.Model):
    """A member account holding a seat of a subscription (at most the plan's seat limit)."""

    __tablename__ = "subscription_seat"
    __table_args__ = (UniqueConstraint("subscription_id", "member_account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id"), index=True)
    member_account_id: Mapped[int] = mapped_column(ForeignKey("member_account.id"), index=True)
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)

    member_account: Mapped[MemberAccount] = relationship()


class SubscriptionNote(db.Model):
    """A note on a subscription: internal (staff only) or visible to the customer; pinned ones first."""

    __tablename__ = "subscription_note"
    __table_args__ = (CheckConstraint(_in("visibility", NOTE_VISIBILITIES), name="visibility"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    body: Mapped[str] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(10), default="internal")
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship()


class SubscriptionEvent(db.Model):
    """The append-only history of a subscription, each event linked to its order and audit row."""

    __tablename__ = "subscription_event"
    __table_args__ = (
        CheckConstraint(_in("kind", SUBSCRIPTION_EVENT_KINDS), name="kind"),
        Index("ix_subscription_event_subscription_at", "subscription_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"))
    audit_event_id: Mapped[int | None] = mapped_column(ForeignKey("audit_event.id"))
    summary: Mapped[str] = mapped_column(Text, default="")
    # The summary as a message key and parameters (actions/texts.py), shown in the reader's language.
    summary_data: Mapped[dict | None] = mapped_column(JSON)

    actor: Mapped[User | None] = relationship()
    order: Mapped[Order | None] = relationship()


class CashReceipt(db.Model):
    """Cash paid for a subscription order (OS flow): sales enters it, finance (someone else) confirms it."""

    __tablename__ = "cash_receipt"
    __table_args__ = (
        CheckConstraint(_in("status", CASH_RECEIPT_STATUSES), name="status"),
        CheckConstraint(_in("currency", SUBSCRIPTION_CURRENCIES), name="currency"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("confirmed_by_id IS NULL OR confirmed_by_id <> entered_by_id", name="maker_checker"),
        Index("ix_cash_receipt_status_created", "status", "created_at"),
        # One receipt an order (two people entering the same cash at once: one wins); a receipt finance
        # rejected leaves room for sales to enter the right one.
        Index("uq_cash_receipt_order_open", "order_id", unique=True, sqlite_where=text("status <> 'rejected'"),
              postgresql_where=text("status <> 'rejected'")),
        CheckConstraint("status <> 'rejected' OR reject_reason <> ''", name="rejected_with_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    currency: Mapped[str] = mapped_column(String(4))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    amount = Money("amount_minor")
    received_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(10), default="submitted")
    entered_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    # Who of finance confirmed or rejected it, and when (never who entered it).
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    confirmed_at: Mapped[datetime | None]
    reject_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    order: Mapped[Order] = relationship()
    company: Mapped[Company] = relationship()
    entered_by: Mapped[User] = relationship(foreign_keys=[entered_by_id])
    confirmed_by: Mapped[User | None] = relationship(foreign_keys=[confirmed_by_id])

    def __str__(self) -> str:
        return f"#{self.id} {self.order.number if self.order else ''}"


# --- forms that create an order or move money are applied once per key ----------------------


class IdempotencyKey(db.Model):
    """The one-time key of a submitted form (per user): a second submit finds it and is shown the
    first one's result instead of creating a second order. The unique index is the guard."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    key: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(40))
    result_url: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# === cards (seed 002): distributors, SIM cards, stock, card orders, commission, withdrawals ===
# Money columns are integers of minor units (`…_minor`) with their currency; rates are integers of
# basis points (8 % = 800). Secrets (PIN, ID number, bank account) are Fernet tokens (`…_enc`)
# with an HMAC blind index (`…_index`) for exact search and the last characters (`…_hint`) for
# masked display; see actions/crypto.py.

DISTRIBUTOR_STATUSES = {"pending": _l("Pending verification"), "verified": _l("Verified"), "rejected": _l("Rejected")}
ID_TYPES = {
    "resident_id": _l("Resident ID card"),
    "passport": _l("Passport"),
    "business_licence": _l("Business licence (unified social credit code)"),
}
CARD_STATUSES = {
    "in_stock": _l("In stock"),
    "reserved": _l("Reserved"),
    "allocated": _l("Allocated"),
    "shipped": _l("Shipped"),
    "received": _l("Received"),
    "returned": _l("Returned"),
    "voided": _l("Voided"),
}
CARD_ON_ORDER_STATUSES = ("allocated", "shipped", "received")
STOCK_DOCUMENT_KINDS = {
    "stock_in": _l("Stock-in"),
    "stock_out": _l("Stock-out"),
    "transfer": _l("Transfer"),
    "adjustment": _l("Adjustment"),
}
STOCK_DOCUMENT_STATUSES = {"draft": _l("Draft"), "posted": _l("Posted")}
# A card's fields by their names in stored messages (label_param("card_field", name)), in the reader's language.
CARD_FIELDS = {"iccid": "ICCID", "phone": _l("phone number"), "pin": "PIN", "plan": _l("Package"),
               "valid_until": _l("Valid until")}
CARD_IMPORT_STATUSES = {
    "previewed": _l("Previewed"),
    "committing": _l("Committing"),
    "committed": _l("Committed"),
    "rolled_back": _l("Rolled back"),
}
CARD_ORDER_STATUSES = {
    "awaiting_shipment": _l("Awaiting shipment"),  # 待发货
    "shipped": _l("Shipped"),  # 已发货
    "received": _l("Received"),  # 已收货
    "refunded": _l("Refunded"),  # 已退款
}
# 退款中 is not a status: an order is in that tab while one of its refunds awaits approval.
CARD_QUOTE_STATUSES = {
    "draft": _l("Draft"),  # 草稿: editable, not shown to the customer yet
    "sent": _l("Sent"),  # 已发送: awaiting the customer's answer until valid_until
    "accepted": _l("Accepted"),  # 已接受: converted into card orders, once
    "declined": pgettext("quote status", "Declined"),  # 已拒绝 (the customer said no)
    "expired": _l("Expired"),  # 已到期: valid_until passed while sent
    "cancelled": _l("Cancelled"),  # 已取消 (by the seller)
}
COMMISSION_MODES = {"override": _l("Override (platform sets both levels)"), "split": _l("Split (parent shares its rate)")}
COMMISSION_KINDS = {
    "percent": _l("Percent of net paid"),
    "fixed": _l("Fixed per card"),
    "graduated": _l("Monthly tiers, graduated"),
    "volume": _l("Monthly tiers, volume"),
}
COMMISSION_STATES = {
    "pending": _l("Pending (paid)"),
    "held": _l("Held (received)"),
    "available": _l("Available"),
    "settled": _l("Settled"),
    "posted": _l("Posted"),
}
COMMISSION_ENTRY_KINDS = {"sale": _l("Sale"), "reversal": _l("Reversal"), "true_up": _l("Month true-up")}
SETTLEMENT_STATUSES = {
    "draft": _l("Draft"),
    "submitted": _l("Pending review"),  # not "Submitted": in Chinese that msgid is the column "提交时间"
    "approved": _l("Approved"),
    "posted": _l("Posted"),
}
WITHDRAWAL_STATUSES = {
    "submitted": _l("Pending review"),
    "approved": _l("Approved"),
    "paid": _l("Paid"),
    "rejected": _l("Rejected"),
    "failed": _l("Failed"),
    "cancelled": _l("Cancelled"),
}


class DistributorProfile(db.Model):
    """实名认证: a company that distributes cards, with its verified legal identity."""

    __tablename__ = "distributor_profile"
    __table_args__ = (
        CheckConstraint(_in("status", DISTRIBUTOR_STATUSES), name="status"),
        CheckConstraint(_in("id_type", ID_TYPES), name="id_type"),
        CheckConstraint("status <> 'rejected' OR reason <> ''", name="rejection_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), unique=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    id_type: Mapped[str] = mapped_column(String(20))
    id_number_enc: Mapped[str] = mapped_column(Text)
    id_number_index: Mapped[str] = mapped_column(String(64), index=True)
    id_number_hint: Mapped[str] = mapped_column(String(4))
    licence_file_name: Mapped[str | None] = mapped_column(String(255))
    licence_sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str] = mapped_column(Text, default="")
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship()

    @property
    def id_number_masked(self) -> str:
        return "****" + self.id_number_hint

    def __str__(self) -> str:
        return self.legal_name


class CardStock(db.Model):
    """How many cards of a package a holder has in stock and how many paid orders reserved.

    Orders reserve by `UPDATE … SET reserved = reserved + n WHERE on_hand - reserved >= n`: never
    oversold, on SQLite and PostgreSQL. `holder_key` is the holder company's id, 0 for the platform.
    """

    __tablename__ = "card_stock"
    __table_args__ = (
        UniqueConstraint("package_id", "holder_key"),
        CheckConstraint("reserved >= 0 AND on_hand >= reserved", name="reserved_within_on_hand"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"))
    holder_key: Mapped[int] = mapped_column(Integer)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)

    package: Mapped[Package] = relationship()


class CardImport(db.Model):
    """One uploaded card workbook: previewed, committed in chunks (resumable), or rolled back whole."""

    __tablename__ = "card_import"
    __table_args__ = (CheckConstraint(_in("status", CARD_IMPORT_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    holder_company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"))
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="previewed")
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_new: Mapped[int] = mapped_column(Integer, default=0)
    rows_duplicate_in_file: Mapped[int] = mapped_column(Integer, default=0)
    rows_duplicate_in_db: Mapped[int] = mapped_column(Integer, default=0)
    rows_invalid: Mapped[int] = mapped_column(Integer, default=0)
    rows_committed: Mapped[int] = mapped_column(Integer, default=0)
    # The first errors, one "row N: reason" per line (the first thousand), in English; `errors_data` holds the
    # same lines as stored messages (actions.texts), shown in the reader's language (importers.cards.first_errors).
    # Imports stored before it have none: their text (in the uploader's language) is shown.
    errors: Mapped[str] = mapped_column(Text, default="")
    errors_data: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    committed_at: Mapped[datetime | None]
    rolled_back_at: Mapped[datetime | None]

    actor: Mapped[User | None] = relationship()


class CardImportRow(db.Model):
    """A valid row of a previewed import, staged (PIN already encrypted) until a chunk commits it."""

    __tablename__ = "card_import_row"
    __table_args__ = (UniqueConstraint("import_id", "row_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("card_import.id"))
    row_no: Mapped[int] = mapped_column(Integer)
    iccid: Mapped[str] = mapped_column(String(22))
    phone: Mapped[str] = mapped_column(String(20))
    pin_enc: Mapped[str] = mapped_column(Text)
    pin_index: Mapped[str] = mapped_column(String(64))
    pin_hint: Mapped[str] = mapped_column(String(4))
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"))
    valid_until: Mapped[date] = mapped_column(Date)


class SimCard(db.Model):
    """号卡: one SIM card, held in stock by the platform or a distributor until an order takes it."""

    __tablename__ = "sim_card"
    __table_args__ = (
        CheckConstraint(_in("status", CARD_STATUSES), name="status"),
        CheckConstraint(f"status NOT IN {tuple(CARD_ON_ORDER_STATUSES)!r} OR order_line_id IS NOT NULL",
                        name="on_order_has_line"),
        # Holder and status first: stock look-ups (holder, status, plan, oldest validity first) and a
        # distributor's list filtered by status are each one range of it.
        Index("ix_sim_card_stock", "holder_key", "status", "package_id", "valid_until"),
        # A holder's cards by validity: the list's "valid until" filter counted and paged in one range
        # per holder of the scope, whatever their status or plan.
        Index("ix_sim_card_holder_valid", "holder_key", "valid_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    iccid: Mapped[str] = mapped_column(String(22), unique=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    pin_enc: Mapped[str] = mapped_column(Text)
    pin_index: Mapped[str] = mapped_column(String(64), unique=True)
    pin_hint: Mapped[str] = mapped_column(String(4))
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"), index=True)
    valid_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="in_stock")
    # The holder company's id, 0 for the platform's own warehouse.
    holder_key: Mapped[int] = mapped_column(Integer, default=0)
    warehouse: Mapped[str] = mapped_column(String(60), default="")
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_line.id"), index=True)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("card_import.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    package: Mapped[Package] = relationship()

    @property
    def pin_masked(self) -> str:
        return "****" + self.pin_hint

    def __str__(self) -> str:
        return self.iccid


class StockDocument(db.Model):
    """A posted stock-in, stock-out, transfer or adjustment: the reason behind card movements."""

    __tablename__ = "stock_document"
    __table_args__ = (
        CheckConstraint(_in("kind", STOCK_DOCUMENT_KINDS), name="kind"),
        CheckConstraint(_in("status", STOCK_DOCUMENT_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    from_holder_key: Mapped[int | None] = mapped_column(Integer)
    to_holder_key: Mapped[int | None] = mapped_column(Integer)
    cards: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    posted_at: Mapped[datetime | None]

    created_by: Mapped[User | None] = relationship()


class CardMovement(db.Model):
    """One status or holder change of one card. Append-only: the card's timeline."""

    __tablename__ = "card_movement"
    __table_args__ = (Index("ix_card_movement_card_id_id", "card_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("sim_card.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    from_holder_key: Mapped[int | None] = mapped_column(Integer)
    to_holder_key: Mapped[int | None] = mapped_column(Integer)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("stock_document.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_line.id"))
    note: Mapped[str] = mapped_column(String(255), default="")
    # The note as a stored message (actions.texts) when the system wrote it ("Refund of order …"); typed notes
    # (a document's note, a carrier and tracking number) are kept as typed, in `note` only.
    note_data: Mapped[dict | None] = mapped_column(JSON)


class CardOrder(db.Model):
    """The card side of a `card_sale` order: who sold it, who ships, and where it is (the tabs)."""

    __tablename__ = "card_order"
    __table_args__ = (
        CheckConstraint(_in("status", CARD_ORDER_STATUSES), name="status"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_card_order_seller_status", "seller_company_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), unique=True)
    seller_company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    holder_key: Mapped[int] = mapped_column(Integer, default=0)
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="awaiting_shipment")
    # Set once the reservation is taken (paid), so it is released exactly once.
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    # The distributor's customer (客户管理) when picked; name, phone and address are kept as shipped.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("card_customer.id"), index=True)
    customer_name: Mapped[str] = mapped_column(String(200), default="")
    customer_phone: Mapped[str] = mapped_column(String(40), default="")
    shipping_address: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The accepted quote line this order was converted from: unique, so a quote is converted exactly once.
    quote_line_id: Mapped[int | None] = mapped_column(ForeignKey("card_quote_line.id"), unique=True)

    order: Mapped[Order] = relationship()
    seller: Mapped[Company] = relationship()
    package: Mapped[Package] = relationship()
    customer: Mapped[CardCustomer | None] = relationship()


class CardFulfillment(db.Model):
    """发货: one shipment of a card order (carrier, tracking number), and its receipt."""

    __tablename__ = "card_fulfillment"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_order_id: Mapped[int] = mapped_column(ForeignKey("card_order.id"), unique=True)
    carrier: Mapped[str] = mapped_column(String(60))
    tracking_number: Mapped[str] = mapped_column(String(60))
    shipped_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    shipped_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime | None]
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    auto_received: Mapped[bool] = mapped_column(Boolean, default=False)

    card_order: Mapped[CardOrder] = relationship()


class CardCustomer(db.Model):
    """客户管理: a distributor's own customer (who its card orders go to), in a category of its choosing."""

    __tablename__ = "card_customer"
    __table_args__ = (Index("ix_card_customer_company_category", "company_id", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(60), default="")
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship()

    def __str__(self) -> str:
        return self.name


class CardQuote(db.Model):
    """销售报价: a distributor's offer of card packages to a customer at negotiated prices, valid until a day.

    draft → sent → accepted (converted into card orders) | declined | expired; draft or sent → cancelled."""

    __tablename__ = "card_quote"
    __table_args__ = (
        CheckConstraint(_in("status", CARD_QUOTE_STATUSES), name="status"),
        CheckConstraint(_in("currency", WALLET_CURRENCIES), name="currency"),
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        Index("ix_card_quote_seller_status", "seller_company_id", "status"),
        Index("ix_card_quote_created_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    seller_company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    # The distributor's saved customer (客户管理) when picked; name, phone and address as quoted.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("card_customer.id"), index=True)
    customer_name: Mapped[str] = mapped_column(String(200), default="")
    customer_phone: Mapped[str] = mapped_column(String(40), default="")
    customer_address: Mapped[str] = mapped_column(String(255), default="")
    currency: Mapped[str] = mapped_column(String(4), default="CNY")
    valid_until: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    total_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    total = Money("total_minor")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]  # accepted, declined, expired or cancelled

    seller: Mapped[Company] = relationship()
    customer: Mapped[CardCustomer | None] = relationship()
    created_by: Mapped[User | None] = relationship()
    lines: Mapped[list[CardQuoteLine]] = relationship(back_populates="quote", order_by="CardQuoteLine.id",
                                                      cascade="all, delete-orphan")

    def __str__(self) -> str:
        return self.number


def _quote_currency(row) -> str | None:
    """The currency of a quote line: its quote's."""
    if row.quote is not None:
        return row.quote.currency
    session = Session.object_session(row)
    if session is None or row.quote_id is None:
        return None
    return session.scalar(select(CardQuote.currency).where(CardQuote.id == row.quote_id))


class CardQuoteLine(db.Model):
    """One line of a quote: N cards of a package at a negotiated unit price, less an optional discount."""

    __tablename__ = "card_quote_line"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_minor >= 0 AND gross_minor >= 0 AND discount_minor >= 0",
                        name="amounts_not_negative"),
        CheckConstraint("discount_bp >= 0 AND discount_bp < 10000", name="discount_in_range"),
        CheckConstraint("net_minor = gross_minor - discount_minor AND net_minor >= 0",
                        name="net_is_gross_less_discount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("card_quote.id", ondelete="CASCADE"), index=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    discount_bp: Mapped[int] = mapped_column(Integer, default=0)  # the discount in hundredths of a percent
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    unit_price = Money("unit_price_minor", _quote_currency)
    gross = Money("gross_minor", _quote_currency)
    discount = Money("discount_minor", _quote_currency)
    net = Money("net_minor", _quote_currency)

    quote: Mapped[CardQuote] = relationship(back_populates="lines")
    package: Mapped[Package] = relationship()

    @property
    def discount_percent(self) -> Decimal:
        return Decimal(self.discount_bp or 0) / 100


class CommissionRule(db.Model):
    """分销设置: what a distributor (level 1) and its parent (level 2) earn on a package (or all)."""

    __tablename__ = "commission_rule"
    __table_args__ = (
        CheckConstraint(_in("mode", COMMISSION_MODES), name="mode"),
        CheckConstraint(_in("kind", COMMISSION_KINDS), name="kind"),
        CheckConstraint("level1_rate_bp >= 0 AND level1_rate_bp <= 10000 AND "
                        "level2_rate_bp >= 0 AND level2_rate_bp <= 10000", name="rates_in_range"),
        CheckConstraint("fixed_level1_minor >= 0 AND fixed_level2_minor >= 0", name="fixed_not_negative"),
        UniqueConstraint("company_id", "package_id"),
        # NULLs differ in a unique constraint: one rule "for every package" per company needs its own index.
        Index("uq_commission_rule_company_every", "company_id", unique=True,
              sqlite_where=text("package_id IS NULL"), postgresql_where=text("package_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("package.id"))
    # Who set it: the parent distributor passing a share down (actions.distribution.save_share), or the
    # platform (NULL: finance, sales, admin); and the user who saved it last.
    set_by_distributor_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"), index=True)
    set_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    mode: Mapped[str] = mapped_column(String(10), default="override")
    kind: Mapped[str] = mapped_column(String(12), default="percent")
    level1_rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    level2_rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(4), default="CNY")
    fixed_level1_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    fixed_level2_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Monthly tiers, one per line: "0-10000:6" (see actions.commission.parse_tiers).
    tiers: Mapped[str] = mapped_column(Text, default="")
    hold_days: Mapped[int] = mapped_column(Integer, default=7)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    company: Mapped[Company] = relationship(foreign_keys=[company_id])
    package: Mapped[Package | None] = relationship()
    set_by_distributor: Mapped[Company | None] = relationship(foreign_keys=[set_by_distributor_id])
    set_by_user: Mapped[User | None] = relationship()


class CommissionEntry(db.Model):
    """One commission amount earned by one company. Append-only: a refund adds a negative entry."""

    __tablename__ = "commission_entry"
    __table_args__ = (
        CheckConstraint(_in("state", COMMISSION_STATES), name="state"),
        CheckConstraint(_in("kind", COMMISSION_ENTRY_KINDS), name="kind"),
        CheckConstraint("level IN (1, 2)", name="level"),
        CheckConstraint("amount_minor <> 0", name="amount_not_zero"),
        Index("ix_commission_entry_company_month", "company_id", "month", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    seller_company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    level: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10), default="sale")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    package_id: Mapped[int | None] = mapped_column(ForeignKey("package.id"))
    cards: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(4))
    base_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    rate_bp: Mapped[int | None] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    month: Mapped[str] = mapped_column(String(7))
    state: Mapped[str] = mapped_column(String(12), default="pending")
    hold_until: Mapped[date | None] = mapped_column(Date)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("commission_entry.id"))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("commission_settlement.id"), index=True)
    # What the entry is for ("sale:order:17:level:1"): never written twice.
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship(foreign_keys=[company_id])
    seller: Mapped[Company] = relationship(foreign_keys=[seller_company_id])


class CommissionSettlement(db.Model):
    """结算: one month's available commission of one company, posted once to its commission wallet."""

    __tablename__ = "commission_settlement"
    __table_args__ = (
        CheckConstraint(_in("status", SETTLEMENT_STATUSES), name="status"),
        CheckConstraint("approved_by_id IS NULL OR approved_by_id <> prepared_by_id", name="four_eyes"),
        UniqueConstraint("company_id", "month", "currency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    month: Mapped[str] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(4))
    total_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    prepared_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    posted_at: Mapped[datetime | None]
    ledger_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))

    company: Mapped[Company] = relationship()

    def __str__(self) -> str:
        return f"{self.company} {self.month}"


class Withdrawal(db.Model):
    """提现: commission paid out to the distributor's bank account in its verified legal name.

    The amount leaves the commission wallet on submit (a ledger debit), so it cannot be spent
    twice; a rejection, failure or cancellation credits it back once.
    """

    __tablename__ = "withdrawal"
    __table_args__ = (
        CheckConstraint(_in("status", WITHDRAWAL_STATUSES), name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("approved_by_id IS NULL OR approved_by_id <> submitted_by_id", name="four_eyes"),
        CheckConstraint("status <> 'paid' OR bank_reference <> ''", name="paid_has_reference"),
        Index("ix_withdrawal_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    currency: Mapped[str] = mapped_column(String(4))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="submitted")
    bank_name: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str] = mapped_column(String(200))
    account_enc: Mapped[str] = mapped_column(Text)
    account_index: Mapped[str] = mapped_column(String(64), index=True)
    account_hint: Mapped[str] = mapped_column(String(4))
    bank_reference: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]

    company: Mapped[Company] = relationship()
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])

    @property
    def account_masked(self) -> str:
        return "****" + self.account_hint

    def __str__(self) -> str:
        return f"#{self.id}"
