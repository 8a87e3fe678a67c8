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
    text,
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
    phone: Mapped[str | None] = mapped_column(String(40))
    fax: Mapped[str | None] = mapped_column(String(40))
    province: Mapped[str | None] = mapped_column(String(60))
    city: Mapped[str | None] = mapped_column(String(60))
    address: Mapped[str | None] = mapped_column(String(255))
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
        # company_id included: a customer's status-filtered count never reads the table.
        Index("ix_device_status_expires", "status", "expires_on", "company_id"),
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


# --- money ---------------------------------------------------------------------------------

WALLET_CURRENCIES = {"CNY": _l("CNY"), "USD": _l("USD"), "COIN": _l("Coins")}
ORDER_KINDS = {
    "recharge": _l("Recharge"),
    "coins": _l("Coin purchase"),
    "renewal": _l("Renewal"),
    "value_added": _l("Value-added"),
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
PAYMENT_METHODS = {
    "balance": _l("Balance"),
    "wechat": _l("WeChat Pay"),
    "alipay": _l("Alipay"),
    "paypal": _l("PayPal"),
    "bank_transfer": _l("Bank transfer"),
    "cash": _l("Cash"),
}
INVOICE_STATUSES = {"none": _l("Not invoiced"), "requested": _l("Invoice requested"), "invoiced": _l("Invoiced")}
LEDGER_KINDS = {
    "recharge": _l("Online recharge"),
    "coin_purchase": _l("Coin purchase"),
    "offline_recharge": _l("Offline recharge"),
    "payment": _l("Payment"),
    "refund": _l("Refund"),
}
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
        UniqueConstraint("company_id", "currency"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint(_in("currency", WALLET_CURRENCIES), name="currency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    currency: Mapped[str] = mapped_column(String(4))
    balance: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0.00"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship()

    def __str__(self) -> str:
        return f"{self.company} {self.currency}"


class LedgerEntry(db.Model):
    """One signed movement of a wallet. Append-only; the entries of a wallet sum to its balance."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        Index("ix_ledger_entry_wallet_id_id", "wallet_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallet.id"))
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal]
    balance_after: Mapped[Decimal]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    offline_recharge_id: Mapped[int | None] = mapped_column(ForeignKey("offline_recharge.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # What the movement is for, e.g. "pay:order:17": the same movement can never be written twice.
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    memo: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    wallet: Mapped[Wallet] = relationship()
    order: Mapped[Order | None] = relationship()
    actor: Mapped[User | None] = relationship()


class Order(db.Model):
    """An order: what is bought (its lines), for how much, and how it was paid."""

    __tablename__ = "order"
    __table_args__ = (
        CheckConstraint(_in("kind", ORDER_KINDS), name="kind"),
        CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
        CheckConstraint(_in("currency", WALLET_CURRENCIES), name="currency"),
        CheckConstraint("payment_method IS NULL OR " + _in("payment_method", PAYMENT_METHODS), name="payment_method"),
        CheckConstraint(_in("invoice_status", INVOICE_STATUSES), name="invoice_status"),
        CheckConstraint("total > 0", name="total_positive"),
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
    total: Mapped[Decimal]
    payment_method: Mapped[str | None] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    invoice_status: Mapped[str] = mapped_column(String(20), default="none")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(String(255), default="")
    promotion: Mapped[str | None] = mapped_column(String(100))
    # The open or issued invoice request covering this order: never two at once.
    invoice_request_id: Mapped[int | None] = mapped_column(ForeignKey("invoice_request.id"), index=True)

    company: Mapped[Company] = relationship()
    created_by: Mapped[User | None] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", order_by="OrderLine.id")

    def __str__(self) -> str:
        return self.number


class OrderLine(db.Model):
    """One thing an order buys: a device renewal of N months, a recharge amount, …"""

    __tablename__ = "order_line"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id"), index=True)
    package_id: Mapped[int | None] = mapped_column(ForeignKey("package.id"), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    edition: Mapped[str | None] = mapped_column(String(20))
    months: Mapped[int | None]
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[Decimal]
    amount: Mapped[Decimal]
    # The expiry before and after payment, so a refund can roll it back.
    old_expires_on: Mapped[date | None] = mapped_column(Date)
    new_expires_on: Mapped[date | None] = mapped_column(Date)

    order: Mapped[Order] = relationship(back_populates="lines")
    device: Mapped[Device | None] = relationship()
    package: Mapped[Package | None] = relationship()


class OfflineRecharge(db.Model):
    """线下充值: sales drafts it, finance approves (credits once), rejects (back to sales) or declines."""

    __tablename__ = "offline_recharge"
    __table_args__ = (
        CheckConstraint(_in("status", RECHARGE_STATUSES), name="status"),
        CheckConstraint(_in("currency", CURRENCIES), name="currency"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_offline_recharge_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    payer: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    amount: Mapped[Decimal]
    reference: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[datetime | None]
    review_comment: Mapped[str] = mapped_column(Text, default="")

    company: Mapped[Company] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])

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
SEAT_EDITIONS = {"enterprise": _l("Enterprise"), "standard": _l("Standard"), "basic": _l("Basic")}
INVITATION_STATES = {"none": _l("Not invited"), "sent": _l("Invited"), "accepted": _l("Accepted")}
RECEIPT_STATUSES = {"submitted": _l("Awaiting confirmation"), "confirmed": _l("Confirmed"), "rejected": _l("Rejected")}
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
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    payer_company: Mapped[str] = mapped_column(String(200))
    payer_account: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal]
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
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    title_id: Mapped[int] = mapped_column(ForeignKey("invoice_title.id"))
    invoice_type: Mapped[str] = mapped_column(String(30))
    currency: Mapped[str] = mapped_column(String(4))
    total: Mapped[Decimal]
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
