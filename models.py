"""Every table of Renewdesk, typed with SQLAlchemy 2.0 (see DESIGN.md section 3).

Models keep their own invariants (a device knows how to suspend itself) but never
commit, flash or abort: the caller owns the transaction.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship
from werkzeug.security import check_password_hash, generate_password_hash

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
        type_annotation_map={datetime: UTCDateTime(), Decimal: Numeric(14, 2)},
    )


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
}
PRICING_METHODS = {
    "per_month": _l("Per month"),
    "per_year": _l("Per year"),
    "per_term": _l("Per term"),
}
CURRENCIES = {"CNY": _l("CNY"), "USD": _l("USD")}
BILLING_CYCLES = {
    "monthly": _l("Monthly"),
    "quarterly": _l("Quarterly"),
    "yearly": _l("Yearly"),
}
PUSH_LANGUAGES = {"zh_CN": _l("Chinese"), "en": _l("English"), "vi": _l("Vietnamese")}
LOCALES = {"en": "English", "zh_Hans_CN": "简体中文", "vi": "Tiếng Việt"}


# --- companies and users -----------------------------------------------------------------


class Company(db.Model):
    """A customer tenant. `path` (/1/7/12/) makes "this company and all below it" one query."""

    __tablename__ = "company"
    __table_args__ = (CheckConstraint(_in("status", COMPANY_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"), index=True)
    path: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    tax_id: Mapped[str | None] = mapped_column(String(32))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Company | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Company]] = relationship(back_populates="parent")

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2

    def subtree_ids(self):
        """A SELECT of the ids of this company and every company below it."""
        return select(Company.id).where(Company.path.startswith(self.path))

    def __str__(self) -> str:
        return self.name


class User(db.Model):
    """A login: staff (no company) or a customer company's administrator."""

    __tablename__ = "user"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint(
            "role <> 'customer_admin' OR company_id IS NOT NULL", name="customer_has_company"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
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

    def set_password(self, password: str, method: str = "scrypt") -> None:
        self.password_hash = generate_password_hash(password, method=method)
        self.session_version = (self.session_version or 0) + 1

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __str__(self) -> str:
        return self.username


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
        CheckConstraint("amount > 0", name="amount_positive"),
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
    amount: Mapped[Decimal]
    pricing: Mapped[str] = mapped_column(String(20), default="per_month")
    term_months: Mapped[int | None]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

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


class Device(db.Model):
    """A tracked thing whose service runs until `expires_on`."""

    __tablename__ = "device"
    __table_args__ = (
        CheckConstraint(_in("status", DEVICE_STATUSES), name="status"),
        Index("ix_device_company_expires", "company_id", "expires_on"),
        Index("ix_device_status_expires", "status", "expires_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="", index=True)
    device_type: Mapped[str] = mapped_column(String(40), default="", index=True)
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


class ExpiryImport(db.Model):
    """One uploaded expiry workbook and what became of it."""

    __tablename__ = "expiry_import"
    __table_args__ = (
        CheckConstraint(_in("status", ("previewed", "committed", "failed")), name="status"),
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
    # The per-row errors, one "row N: reason" per line (the first thousand).
    errors: Mapped[str] = mapped_column(Text, default="")
    committed_at: Mapped[datetime | None]

    actor: Mapped[User] = relationship()
