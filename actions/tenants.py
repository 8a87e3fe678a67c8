"""申请开通 and 编辑信息: tenant applications, their review, quick onboarding, the company profile.

Tax IDs accepted (after trimming, dropping spaces and hyphens, full-width characters folded
to ASCII and letters upper-cased):

- the 18-character unified social credit code (统一社会信用代码, GB 32100-2015): characters
  0-9 and A-H J-N P-R T-U W-Y (never I, O, S, V, Z); the 18th is the check character
  ``31 - (sum of value(c_i) * 3^i mod 31) mod 31`` over the first 17;
- the old 15-character tax registration number: 6-digit region code and the 9-character
  organisation code, i.e. 14 digits then a digit or X (the organisation code's check
  character can be X);
- the old 20-character tax registration number of individuals: an 18-character resident ID
  (17 digits, then a digit or X) followed by 2 digits.

Approval and quick onboarding share `create_tenant`: the company, its billing config and a
customer administrator with a one-time password, in the caller's one transaction. The
functions here never send mail: they return what the view needs to send it after commit.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from actions import DomainError, in_scope, require_role
from actions.audit import record
from actions.companies import create_company
from actions.regions import RegionError, check_region
from actions.text_input import text_problem
from actions.texts import change, changes_param, message
from actions.times import check_zone
from actions.passwords import DEFAULT_POLICY, PasswordPolicy
from actions.users import USERNAME_MAX, create_user, generate_password, username_taken
from models import APPLICANT, USER_ROLES, BillingConfig, Company, TenantApplication, User, utcnow

CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_OLD_TAX_ID_15 = re.compile(r"\d{14}[\dX]")
_OLD_TAX_ID_20 = re.compile(r"\d{17}[\dX]\d{2}")
_TAX_ID_NOISE = re.compile(r"[\s\-]+")
# Digits with spaces, brackets, dashes and a leading +, optionally an extension (分机).
_PHONE = re.compile(r"\+?[\d\s()\-]{3,30}(\s*(?:ext\.?|x|#|转|分机|máy lẻ)\s*\d{1,8})?", re.IGNORECASE)
_USERNAME = re.compile(r"[^\s\x00-\x1f\x7f]{1,64}")
REASON_MAX = 2000

FIELDS = {
    "company_name": _l("Company name"),
    "tax_id": _l("Tax ID or unified social credit code"),
    "contact_name": _l("Contact name"),
    "contact_phone": _l("Contact phone"),
    "contact_email": _l("Contact email"),
    "parent": _l("Parent company"),
    "username": _l("Administrator username"),
    "reason": _l("Reason"),
    "phone": _l("Company phone"),
    "fax": _l("Company fax"),
    "province": _l("Province"),
    "city": _l("City"),
    "address": _l("Street address"),
    "full_name": _l("Administrator name"),
    "email": _l("Administrator email"),
    "user_phone": _l("Administrator phone"),
    "mobile": _l("Administrator mobile"),
    "time_zone": _l("Time zone"),
}


class InvalidField(DomainError):
    """A refused form value; `field` names the form field so the view can show it there."""

    def __init__(self, field: str, message) -> None:
        super().__init__(_l("%(field)s: %(problem)s", field=FIELDS[field], problem=message))
        self.field = field


# --- field checks ---------------------------------------------------------------------------


def credit_code_check_char(first17: str) -> str:
    """The GB 32100-2015 check character of the first 17 characters of a credit code."""
    total = sum(CREDIT_CODE_CHARSET.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def validate_credit_code(value: str | None, field: str = "tax_id") -> str:
    """The tax ID normalized (see the module docstring for what is accepted), or InvalidField."""
    code = _TAX_ID_NOISE.sub("", unicodedata.normalize("NFKC", value or "")).upper()
    if not code:
        raise InvalidField(field, _l("required."))
    if len(code) == 18:
        wrong = sorted({c for c in code if c not in CREDIT_CODE_CHARSET})
        if wrong:
            raise InvalidField(field, _l(
                "%(chars)s may not appear in a unified social credit code (it uses 0-9 and the "
                "letters A-Z except I, O, S, V and Z).", chars=", ".join(wrong)))
        if credit_code_check_char(code[:17]) != code[17]:
            raise InvalidField(field, _l(
                "the check character (the 18th) does not match: look for a typo."))
        return code
    if len(code) == 15 and _OLD_TAX_ID_15.fullmatch(code):
        return code
    if len(code) == 20 and _OLD_TAX_ID_20.fullmatch(code):
        return code
    if len(code) in (15, 20):
        raise InvalidField(field, _l(
            "an old %(n)s-character tax ID is made of digits (X allowed only as a check character).",
            n=len(code)))
    raise InvalidField(field, _l(
        "give the 18-character unified social credit code, or an old 15- or 20-character tax ID "
        "(%(n)s characters given).", n=len(code)))


def _text(field: str, value: str | None, max_length: int, required: bool = True) -> str | None:
    """A one-line text value, trimmed; None when empty and optional."""
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidField(field, _l("required."))
        return None
    problem = text_problem(value, max_length)
    if problem is not None:
        raise InvalidField(field, problem)
    return value


def _phone(field: str, value: str | None, required: bool = True) -> str | None:
    # A Chinese input method types （０２１）１２３４５６７８－８０１: kept as (021)12345678-801 (NFKC).
    value = _text(field, unicodedata.normalize("NFKC", value or ""), 40, required)
    if value is not None and (not _PHONE.fullmatch(value) or sum(c.isdigit() for c in value) < 3):
        raise InvalidField(field, _l("not a phone number (digits, spaces, +, -, brackets, an extension)."))
    return value


def _email(field: str, value: str | None) -> str:
    value = _text(field, value, 254)
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidField(field, _l("%(address)s is not a valid email address.", address=value)) from None


def _username(value: str | None) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidField("username", _l("required."))
    if not _USERNAME.fullmatch(value):
        raise InvalidField("username", _l("at most 64 characters, without spaces."))
    return value


@dataclass(frozen=True)
class TenantFields:
    """The checked fields of an application or a quick onboarding."""

    company_name: str
    tax_id: str
    contact_name: str
    contact_phone: str
    contact_email: str


def clean_tenant_fields(
    company_name: str | None, tax_id: str | None, contact_name: str | None,
    contact_phone: str | None, contact_email: str | None,
) -> TenantFields:
    """Check the applicant's fields, naming the first one at fault."""
    return TenantFields(
        company_name=_text("company_name", company_name, 200),
        tax_id=validate_credit_code(tax_id),
        contact_name=_text("contact_name", contact_name, 100),
        contact_phone=_phone("contact_phone", contact_phone),
        contact_email=_email("contact_email", contact_email),
    )


def _refuse_duplicates(session: Session, tax_id: str, pending_too: bool = True) -> None:
    """Refuse a tax ID that a company already has, or (pending_too) a pending application."""
    company = session.scalar(select(Company).where(func.upper(Company.tax_id) == tax_id).limit(1))
    if company is not None:
        raise InvalidField("tax_id", _l("company %(name)s already has the tax ID %(tax_id)s.",
                                        name=company.name, tax_id=tax_id))
    if pending_too:
        pending = session.scalar(select(TenantApplication.id).where(
            TenantApplication.tax_id == tax_id, TenantApplication.status == "pending").limit(1))
        if pending is not None:
            raise InvalidField("tax_id", _l("application #%(id)s for %(tax_id)s is already waiting for review.",
                                            id=pending, tax_id=tax_id))


def _check_parent(session: Session, actor: User, parent: Company | None) -> None:
    if parent is None:
        return
    if not in_scope(actor, parent.id, session):
        raise InvalidField("parent", _l("company #%(id)s: not found or outside your companies.", id=parent.id))
    if parent.status != "active":
        raise InvalidField("parent", _l("company %(name)s is not active.", name=parent.name))


# --- apply, approve, reject, onboard ----------------------------------------------------------


def apply(
    session: Session, actor: User, *, company_name: str | None, tax_id: str | None,
    contact_name: str | None, contact_phone: str | None, contact_email: str | None,
    parent: Company | None = None,
) -> TenantApplication:
    """申请开通: record a pending application (any signed-in role; a customer's parent stays in their tree;
    an applicant who registered from the login page applies for a top-level company, one at a time)."""
    require_role(actor, USER_ROLES)
    if actor.is_applicant:
        parent = None
        waiting = session.scalar(select(TenantApplication.id).where(
            TenantApplication.applicant_id == actor.id, TenantApplication.status == "pending").limit(1))
        if waiting is not None:
            raise DomainError(_l("Your application #%(id)s is waiting for review.", id=waiting))
    fields = clean_tenant_fields(company_name, tax_id, contact_name, contact_phone, contact_email)
    _check_parent(session, actor, parent)
    _refuse_duplicates(session, fields.tax_id)
    application = TenantApplication(
        company_name=fields.company_name, tax_id=fields.tax_id, contact_name=fields.contact_name,
        contact_phone=fields.contact_phone, contact_email=fields.contact_email,
        parent_id=parent.id if parent else None, status="pending", applicant_id=actor.id,
    )
    session.add(application)
    try:
        session.flush()
    except IntegrityError:  # a concurrent application with the same tax ID won (unique index)
        raise DomainError(_l("Tax ID %(tax_id)s already has a pending application.", tax_id=fields.tax_id)) from None
    record(session, actor, "apply", "tenant_application", [application.id],
           message("audit.tenant.apply", company=fields.company_name, tax_id=fields.tax_id,
                   parent=parent.name if parent else "—"))
    session.flush()
    return application


@dataclass(frozen=True)
class Onboarded:
    """A new tenant and what its welcome mail needs (the password exists nowhere else)."""

    company: Company
    user: User
    password: str | None  # None: an applicant who keeps their own password
    email: str
    contact_name: str


def create_tenant(
    session: Session, actor: User, fields: TenantFields, parent: Company | None,
    username: str | None, method: str = "scrypt", policy: PasswordPolicy = DEFAULT_POLICY,
    applicant: User | None = None,
) -> Onboarded:
    """The company under `parent`, its billing config and its customer administrator (admins only).

    With `applicant` (a user who registered from the login page) that user becomes the
    administrator and keeps the password they chose; otherwise a new login is created with a
    one-time password."""
    require_role(actor, {"admin"})
    if applicant is None:
        username = _username(username or fields.contact_email)
        if session.scalar(select(User.id).where(User.username == username)):
            raise InvalidField("username", _l("%(name)s is taken; give another username.", name=username))
    company = create_company(
        session, actor, fields.company_name, parent, status="active", tax_id=fields.tax_id,
        contact_name=fields.contact_name, contact_phone=fields.contact_phone,
        contact_email=fields.contact_email,
    )
    config = BillingConfig(company_id=company.id, push_emails=fields.contact_email)
    session.add(config)
    session.flush()
    record(session, actor, "create", "billing_config", [config.id],
           f"{company.name} (#{company.id}): defaults, push_emails={fields.contact_email}")
    if applicant is not None:
        promoted = session.execute(
            update(User).where(User.id == applicant.id, User.role == APPLICANT)
            .values(role="customer_admin", company_id=company.id).execution_options(synchronize_session="fetch")
        ).rowcount
        if promoted != 1:
            raise DomainError(_l("User %(name)s is no longer an applicant.", name=applicant.username))
        session.refresh(applicant)
        applicant.email = applicant.email or fields.contact_email
        applicant.full_name = applicant.full_name or fields.contact_name
        applicant.phone = applicant.phone or fields.contact_phone
        record(session, actor, "edit", "user", [applicant.id], message("audit.changes", changes=changes_param([
            change("role", _l("Role"), "applicant", "customer_admin", USER_ROLES),
            change("company", _l("Company"), None, company.name)])))
        session.flush()
        return Onboarded(company, applicant, None, applicant.email, fields.contact_name)
    password = generate_password(policy)
    try:
        user = create_user(session, actor, username, "customer_admin", password, company=company,
                           email=fields.contact_email, method=method, must_change_password=True,
                           policy=policy)
    except IntegrityError as exc:  # taken by a concurrent request since the check above
        raise InvalidField("username", _l("%(name)s is taken; give another username.", name=username)) from exc
    user.full_name = fields.contact_name
    user.phone = fields.contact_phone
    session.flush()
    return Onboarded(company, user, password, fields.contact_email, fields.contact_name)


def _close_application(
    session: Session, actor: User, application: TenantApplication, status: str, reason: str = "",
) -> None:
    """pending → status in one conditional UPDATE: of two concurrent reviews only one gets the row."""
    result = session.execute(
        update(TenantApplication)
        .where(TenantApplication.id == application.id, TenantApplication.status == "pending")
        .values(status=status, reviewed_by_id=actor.id, reviewed_at=utcnow(), reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:
        raise DomainError(_l("Application #%(id)s was already reviewed.", id=application.id))


_KEEP = object()


def approve(
    session: Session, actor: User, application: TenantApplication, *, parent=_KEEP,
    username: str | None = None, method: str = "scrypt", policy: PasswordPolicy = DEFAULT_POLICY,
) -> Onboarded:
    """Approve a pending application: create the tenant (parent: the applicant's choice unless given).

    An application from a registered applicant makes that applicant the administrator."""
    require_role(actor, {"admin"})
    _close_application(session, actor, application, "approved")
    if parent is _KEEP:
        parent = application.parent
    _check_parent(session, actor, parent)
    fields = clean_tenant_fields(application.company_name, application.tax_id, application.contact_name,
                                 application.contact_phone, application.contact_email)
    _refuse_duplicates(session, fields.tax_id, pending_too=False)
    applicant = application.applicant if application.applicant and application.applicant.is_applicant else None
    onboarded = create_tenant(session, actor, fields, parent, username, method=method, policy=policy,
                              applicant=applicant)
    application.company_id = onboarded.company.id
    session.flush()
    record(session, actor, "approve", "tenant_application", [application.id],
           message("audit.tenant.approve", company=f"{onboarded.company.name} (#{onboarded.company.id})",
                   username=onboarded.user.username, parent=parent.name if parent else "—"))
    session.flush()
    return onboarded


def reject(session: Session, actor: User, application: TenantApplication, reason: str | None) -> TenantApplication:
    """Reject a pending application; the reason (required) is mailed to the contact by the caller."""
    require_role(actor, {"admin"})
    reason = (reason or "").replace("\r\n", "\n").strip()
    if not reason:
        raise InvalidField("reason", _l("required: the applicant reads it."))
    if (problem := text_problem(reason, REASON_MAX, lines=True)) is not None:
        raise InvalidField("reason", problem)
    _close_application(session, actor, application, "rejected", reason)
    record(session, actor, "reject", "tenant_application", [application.id],
           message("audit.tenant.reject", reason=reason))
    session.flush()
    return application


def onboard(
    session: Session, actor: User, *, company_name: str | None, tax_id: str | None,
    contact_name: str | None, contact_phone: str | None, contact_email: str | None,
    parent: Company | None = None, username: str | None = None, method: str = "scrypt",
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> Onboarded:
    """Quick onboarding: an admin creates a tenant in one step, as an approval would."""
    require_role(actor, {"admin"})
    fields = clean_tenant_fields(company_name, tax_id, contact_name, contact_phone, contact_email)
    _check_parent(session, actor, parent)
    _refuse_duplicates(session, fields.tax_id)
    onboarded = create_tenant(session, actor, fields, parent, username, method=method, policy=policy)
    record(session, actor, "onboard", "company", [onboarded.company.id],
           f"name={fields.company_name} tax_id={fields.tax_id} user={onboarded.user.username}")
    session.flush()
    return onboarded


# --- 编辑信息: the customer administrator's company profile ----------------------------------

COMPANY_PROFILE_FIELDS = ("phone", "fax", "province", "city", "address")
ADMIN_PROFILE_FIELDS = ("full_name", "email", "phone", "mobile")


def company_administrator(session: Session, company: Company) -> User | None:
    """The company's administrator login: its first full-access customer login (`areas` NULL, lowest id).

    That is the login onboarding created with the company (create_tenant: a new login, or the promoted
    applicant), since employees come later; for a company set up by hand under System, its first administrator."""
    return session.scalar(
        select(User).where(User.company_id == company.id, User.role == "customer_admin", User.areas.is_(None))
        .order_by(User.id).limit(1))


def username_follows_email(user: User) -> bool:
    """Whether `user`'s login name is its email (编辑信息: 用户名 与管理员邮箱同步), so it follows a new one."""
    return bool(user.email) and user.username.lower() == user.email.lower()


@dataclass(frozen=True)
class ProfileChange:
    """What a profile edit changed; `new_email` is set when mail now goes elsewhere, `new_username` when the
    administrator now signs in with another name; `administrator` is the login whose details were edited."""

    company_changes: tuple[str, ...]
    user_changes: tuple[str, ...]
    old_email: str | None = None
    new_email: str | None = None
    new_username: str | None = None
    administrator: User | None = None

    @property
    def changed(self) -> bool:
        return bool(self.company_changes or self.user_changes)


def update_profile(
    session: Session, actor: User, *, phone: str | None = None, fax: str | None = None,
    province: str | None = None, city: str | None = None, address: str | None = None,
    full_name: str | None = None, email: str | None = None, user_phone: str | None = None,
    mobile: str | None = None, time_zone: str | None = None,
) -> ProfileChange:
    """编辑信息: a customer login edits its company's details and the company administrator's contact.

    The company name stays as registered; `time_zone` (None: unchanged) is an IANA name or "" (by language).
    The administrator is `company_administrator` (the actor itself when it is that login). A new
    administrator email becomes the address of that login's mail and the company's contact email, and
    replaces the old one among the push emails; when the login name was the old email (用户名 与管理员邮箱
    同步) it becomes the new one, in the same transaction: the old name stops signing in. Refused, naming the
    email field, when another login already has that name, and for an employee limited to some areas (the
    administrator's email is where its password mail goes).
    """
    require_role(actor, {"customer_admin"})
    company = actor.company
    if company is None:
        raise DomainError(_l("Only a customer administrator has a company profile."))
    admin = company_administrator(session, company) or actor
    company_values = {
        "phone": _phone("phone", phone, required=False),
        "fax": _phone("fax", fax, required=False),
        "address": _text("address", address, 255, required=False),
    }
    try:  # chosen from the lists (actions/regions.py); stored values off the list stay while unchanged
        company_values["province"], company_values["city"] = check_region(
            _text("province", province, 60, required=False), _text("city", city, 60, required=False),
            keep=(company.province, company.city))
    except RegionError as exc:
        raise InvalidField(exc.field, exc.problem) from None
    user_values = {
        "full_name": _text("full_name", full_name, 100),
        "email": _email("email", email),
        "phone": _phone("user_phone", user_phone),
        "mobile": _phone("mobile", mobile, required=False),
    }
    new_username = None
    if (admin.email or None) != user_values["email"]:
        if admin.id != actor.id and actor.areas is not None:
            raise InvalidField("email", _l("only the company's administrator changes it (it is where their "
                                           "password and order mail goes)."))
        if username_follows_email(admin) and admin.username != user_values["email"]:
            new_username = username_for_email(session, admin, user_values["email"])
    company_changes = _assign(company, company_values)
    if time_zone is not None:  # "" = by each user's language (actions/times.py)
        try:
            zone = check_zone(time_zone)
        except DomainError as exc:
            raise InvalidField("time_zone", str(exc)) from None
        if company.time_zone != zone:
            company_changes["time_zone"] = (company.time_zone, zone)
            company.time_zone = zone
    user_changes = _assign(admin, user_values)
    if new_username is not None:
        user_changes["username"] = (admin.username, new_username)
        admin.username = new_username
        try:  # the unique index: another login took the name since username_for_email looked
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise _username_taken(new_username) from None
    old_email = new_email = None
    if "email" in user_changes:
        old_email, new_email = user_changes["email"]
        if company.contact_email != new_email:
            company_changes["contact_email"] = (company.contact_email, new_email)
            company.contact_email = new_email
        _replace_push_email(session, actor, company, old_email, new_email)
    if company_changes:
        record(session, actor, "edit", "company", [company.id], _describe(company_changes))
    if user_changes:
        record(session, actor, "edit", "user", [admin.id], _describe(user_changes, {"phone": FIELDS["user_phone"]}))
    session.flush()
    return ProfileChange(tuple(company_changes), tuple(user_changes), old_email, new_email, new_username, admin)


CUSTOMER_DETAIL_ROLES = frozenset({"customer_admin", "sales"})


def check_customer_details(phone: str | None, address: str | None) -> dict[str, str | None]:
    """Thông tin khách hàng → Sửa thông tin (checkout step 2): the company's phone and street address, checked
    as the company profile checks them; InvalidField names the field at fault."""
    return {"phone": _phone("phone", phone, required=False), "address": _text("address", address, 255, required=False)}


def update_customer_details(session: Session, actor: User, company: Company, phone: str | None,
                            address: str | None) -> dict[str, tuple]:
    """Save the customer details edited at checkout on `company` (of the actor's scope): {field: (old, new)}.

    Sales and the customer's administrators (of the company or a parent) may; a customer login limited to some
    areas needs the company profile's. Each change is in the audit log.
    """
    require_role(actor, CUSTOMER_DETAIL_ROLES)
    if actor.role == "customer_admin" and actor.areas is not None and "company" not in actor.areas:
        raise DomainError(_l("Your role may not do this."))
    if not in_scope(actor, company.id, session):
        raise DomainError(_l("Company %(name)s is outside your companies.", name=company.name))
    changes = _assign(company, check_customer_details(phone, address))
    if changes:
        record(session, actor, "edit", "company", [company.id], _describe(changes))
    session.flush()
    return changes


def username_for_email(session: Session, admin: User, name: str) -> str:
    """`name` as the administrator's new login name; InvalidField (the email field) when it cannot be one."""
    if len(name) > USERNAME_MAX:
        raise InvalidField("email", _l("the administrator's username follows this email and has at most "
                                       "%(n)s characters: give a shorter address.", n=USERNAME_MAX))
    if any(_mixes_look_alike_scripts(part) for part in re.split(r"[@.]", name)):
        raise InvalidField("email", _l("the administrator's username follows this email, whose letters mix "
                                       "alphabets that look alike (Latin, Cyrillic, Greek): give another address."))
    if username_taken(session, name, other_than=admin.id):
        raise _username_taken(name)
    return name


_LOOK_ALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def _mixes_look_alike_scripts(part: str) -> bool:
    """Whether one part of an address (before the @, or one label of the domain) has letters of two of the
    alphabets whose letters look alike: аdmin (a Cyrillic а) reads as admin in every list and log."""
    scripts = {unicodedata.name(c, "").split(" ", 1)[0] for c in part if c.isalpha()}
    return len(scripts & set(_LOOK_ALIKE_SCRIPTS)) > 1


def follow_new_email(session: Session, user: User, old_email: str | None) -> str | None:
    """A customer administrator's email changed from `old_email` elsewhere than the profile (System → Users):
    the login name follows as update_profile makes it follow (用户名 与管理员邮箱同步) — when it was the old
    email and the new one is an email address. Sets and returns the new name (None: unchanged); InvalidField
    (the email field) when it cannot be the login name."""
    if user.role != "customer_admin" or not old_email or not user.email or user.email == old_email:
        return None
    if user.username.lower() != old_email.lower():
        return None
    user.email = _email("email", user.email)  # normalised as the profile stores it
    user.username = username_for_email(session, user, user.email)
    return user.username


def _username_taken(name: str) -> InvalidField:
    return InvalidField("email", _l("%(name)s is already the username of another login, and the administrator's "
                                    "username follows this email: give another address.", name=name))


def _assign(row, values: dict) -> dict[str, tuple]:
    """Set the values on `row`; return {attribute: (old, new)} for those that changed."""
    changes = {}
    for key, value in values.items():
        old = getattr(row, key)
        if (old or None) != value:
            changes[key] = (old, value)
            setattr(row, key, value)
    return changes


def _describe(changes: dict[str, tuple], labels: dict | None = None) -> dict:
    """The audit summary of a profile edit, its fields named in the reader's language."""
    labels = {**FIELDS, **(labels or {})}
    return message("audit.changes", changes=changes_param(
        change(key, labels.get(key, key), old, new) for key, (old, new) in changes.items()))


def _replace_push_email(session: Session, actor: User, company: Company, old: str | None, new: str) -> None:
    """The company's own push list follows the administrator's address."""
    config = session.scalar(select(BillingConfig).where(BillingConfig.company_id == company.id))
    if config is None or not old:
        return
    emails = config.email_list
    if old.lower() not in {e.lower() for e in emails}:
        return
    updated: list[str] = []
    for address in emails:
        address = new if address.lower() == old.lower() else address
        if address.lower() not in {e.lower() for e in updated}:
            updated.append(address)
    config.push_emails = "\n".join(updated)
    record(session, actor, "edit", "billing_config", [config.id], message("audit.billing.push_email", old=old, new=new))
