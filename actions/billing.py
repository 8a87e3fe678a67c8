"""收费账户配置 / 账户配置: a company's billing config, inherited down the company tree.

A company without its own BillingConfig inherits its nearest ancestor's (DESIGN.md
section 3). Sales configure any company; a customer administrator only the companies of
their own tree.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from actions import ActionResult, DomainError, in_scope, require_role, scope_company_ids
from actions.audit import record
from actions.texts import change, changes_param, message, setting
from models import BILLING_CYCLES, PUSH_LANGUAGES, BillingConfig, Company, User

BILLING_ROLES = frozenset({"sales", "customer_admin"})
SCOPES = ("direct", "all")
MAX_PUSH_EMAILS = 20
SETTINGS = ("billing_cycle", "auto_renew", "push_enabled", "push_language", "push_emails")
_CHUNK = 900  # stays under SQLite's bound-parameter limit
_SEPARATORS = re.compile(r"[\s,;，；]+")


@dataclass(frozen=True)
class ConfigRow:
    """One listed company: its own config, the config in effect and where that comes from."""

    company: Company
    own: BillingConfig | None
    effective: BillingConfig | None
    source: Company | None

    @property
    def inherited(self) -> bool:
        return self.own is None and self.effective is not None


def normalize_emails(text: str | Iterable[str] | None) -> list[str]:
    """Push emails typed one per line or separated by commas or semicolons, validated, no duplicates."""
    if text is None:
        return []
    parts = _SEPARATORS.split(text) if isinstance(text, str) else [p.strip() for p in text]
    emails: list[str] = []
    seen: set[str] = set()
    problems: list[str] = []
    for part in (p for p in parts if p):
        try:
            address = validate_email(part, check_deliverability=False).normalized
        except EmailNotValidError:
            problems.append(str(_l("%(address)s is not a valid email address", address=part)))
            continue
        if address.lower() in seen:
            problems.append(str(_l("%(address)s is listed twice", address=part)))
            continue
        seen.add(address.lower())
        emails.append(address)
    if problems:
        raise DomainError(_l("Push emails: %(problems)s.", problems="; ".join(problems)))
    if len(emails) > MAX_PUSH_EMAILS:
        raise DomainError(_l("At most %(n)s push emails; you gave %(m)s.", n=MAX_PUSH_EMAILS, m=len(emails)))
    return emails


def _nearest(path_ids: Sequence[int], configs: Mapping[int, BillingConfig]) -> BillingConfig | None:
    for company_id in reversed(path_ids):
        config = configs.get(company_id)
        if config is not None:
            return config
    return None


def effective_config(session: Session, company: Company) -> tuple[BillingConfig | None, Company | None]:
    """The config in effect for `company` and the company it belongs to (itself or an ancestor)."""
    path_ids = company.path_ids
    configs = session.scalars(
        select(BillingConfig)
        .where(BillingConfig.company_id.in_(path_ids))
        .options(joinedload(BillingConfig.company))
    ).all()
    config = _nearest(path_ids, {c.company_id: c for c in configs})
    return (config, config.company) if config else (None, None)


def _check_scope(session: Session, actor: User, companies: Collection[Company]) -> None:
    """Refuse the whole operation, naming the ids, when any company is outside the actor's tree."""
    if actor.is_staff:
        return
    allowed = scope_company_ids(session, actor) if actor.company is not None else set()
    outside = sorted({c.id for c in companies if c.id not in allowed})
    if outside:
        raise DomainError(_l("Not found or outside your companies: %(ids)s.", ids=_name_ids(outside)))


def default_company(actor: User) -> Company | None:
    """The company the page opens on: a customer's own; none (top-level companies) for staff."""
    return None if actor.is_staff else actor.company


def list_configs(
    session: Session, actor: User, company: Company | None, scope: str = "direct", limit: int | None = None,
) -> list[ConfigRow]:
    """The company and its direct (or all) subsidiaries with their configs, in two queries.

    Without a company (staff only), "direct" lists the top-level companies and "all" every
    company.
    """
    require_role(actor, BILLING_ROLES)
    if scope not in SCOPES:
        raise DomainError(_l("Unknown listing: %(scope)s.", scope=scope))
    if company is None and not actor.is_staff:
        company = actor.company
    if company is not None:
        _check_scope(session, actor, [company])
    if company is None:
        where = Company.parent_id.is_(None) if scope == "direct" else Company.id.isnot(None)
    elif scope == "direct":
        where = or_(Company.id == company.id, Company.parent_id == company.id)
    else:
        where = Company.path.startswith(company.path)
    query = select(Company).where(where).order_by(Company.path)
    if limit is not None:
        query = query.limit(limit)
    companies = session.scalars(query).all()
    if not companies:
        return []
    # Every listed company's ancestors are the chosen company's ancestors or listed rows.
    listed_ids = select(Company.id).where(where)
    ancestor_ids = company.path_ids if company is not None else []
    configs = session.scalars(
        select(BillingConfig)
        .where(or_(BillingConfig.company_id.in_(listed_ids), BillingConfig.company_id.in_(ancestor_ids)))
        .options(joinedload(BillingConfig.company))
    ).all()
    by_company = {c.company_id: c for c in configs}
    rows = []
    for listed in companies:
        effective = _nearest(listed.path_ids, by_company)
        rows.append(ConfigRow(listed, by_company.get(listed.id), effective,
                              effective.company if effective else None))
    return rows


def parse_id(raw: object) -> int | None:
    """A submitted row id as an int, or None when it is not a plain positive 32-bit number."""
    text = str(raw).strip()
    if text.isascii() and text.isdigit() and 0 < int(text) < 2**31:
        return int(text)
    return None


def load_companies(session: Session, actor: User, ids: Iterable[object]) -> list[Company]:
    """The companies behind submitted ids; unknown or out-of-scope ids are refused by number."""
    wanted: dict[int, None] = {}  # ordered, without repeats
    bad: list[str] = []
    for raw in ids:
        company_id = parse_id(raw)
        if company_id is not None:
            wanted[company_id] = None
        elif str(raw).strip():
            bad.append(str(raw).strip()[:20])
    found: dict[int, Company] = {}
    ordered = list(wanted)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start:start + _CHUNK]
        found.update((c.id, c) for c in session.scalars(select(Company).where(Company.id.in_(chunk))))
    allowed: set[int] | None = None
    if not actor.is_staff:
        allowed = scope_company_ids(session, actor) if actor.company is not None else set()
    bad += [str(i) for i in ordered if i not in found or (allowed is not None and i not in allowed)]
    if bad:
        raise DomainError(_l("Not found or outside your companies: %(ids)s.", ids=_name_ids(bad)))
    return [found[i] for i in ordered]


def _name_ids(ids: Sequence[object], shown: int = 20) -> str:
    """"#3, #5, …" naming at most `shown` ids."""
    text = ", ".join(f"#{i}" for i in ids[:shown])
    return text + (", …" if len(ids) > shown else "")


def clean_settings(values: Mapping[str, object]) -> dict[str, object]:
    """The five settings checked and normalized (emails one per line)."""
    cycle = values.get("billing_cycle")
    if cycle not in BILLING_CYCLES:
        raise DomainError(_l("Unknown billing cycle: %(value)s.", value=cycle))
    language = values.get("push_language")
    if language not in PUSH_LANGUAGES:
        raise DomainError(_l("Unknown push email language: %(value)s.", value=language))
    emails = normalize_emails(values.get("push_emails"))
    push_enabled = bool(values.get("push_enabled"))
    if push_enabled and not emails:
        raise DomainError(_l("Push is on: give at least one push email address."))
    return {
        "billing_cycle": cycle,
        "auto_renew": bool(values.get("auto_renew")),
        "push_enabled": push_enabled,
        "push_language": language,
        "push_emails": "\n".join(emails),
    }


SETTING_LABELS = {"billing_cycle": _l("Billing cycle"), "auto_renew": _l("Auto-renew"), "push_enabled": _l("Push on"),
                  "push_language": _l("Push email language"), "push_emails": _l("Push emails")}
SETTING_CHOICES = {"billing_cycle": BILLING_CYCLES, "push_language": PUSH_LANGUAGES}


def _shown_setting(values: Mapping[str, object], key: str):
    value = values.get(key)
    return value.replace("\n", ", ") if isinstance(value, str) and key == "push_emails" else value


def _setting_changes(old: Mapping[str, object], new: Mapping[str, object]) -> dict:
    """The settings that differ, as a stored list of changes (read in the reader's language)."""
    return changes_param([change(key, SETTING_LABELS[key], _shown_setting(old, key), _shown_setting(new, key),
                                 SETTING_CHOICES.get(key)) for key in SETTINGS if old.get(key) != new.get(key)])


def _settings(values: Mapping[str, object]) -> dict:
    """Every setting with its value, as a stored list (a config created or deleted)."""
    return changes_param([setting(key, SETTING_LABELS[key], _shown_setting(values, key), SETTING_CHOICES.get(key))
                          for key in SETTINGS])


def configure_companies(
    session: Session, actor: User, companies: Sequence[Company], values: Mapping[str, object],
) -> ActionResult:
    """Give each selected company its own config with the same settings (created or updated)."""
    require_role(actor, BILLING_ROLES)
    unique = list({c.id: c for c in companies}.values())
    if not unique:
        raise DomainError(_l("Select at least one company."))
    _check_scope(session, actor, unique)
    settings = clean_settings(values)
    existing: dict[int, BillingConfig] = {}
    ids = [c.id for c in unique]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        existing.update(
            (c.company_id, c)
            for c in session.scalars(select(BillingConfig).where(BillingConfig.company_id.in_(chunk)))
        )
    summaries: list[tuple[BillingConfig, dict]] = []  # one audit event per company, in the reader's language
    created = 0
    for company in unique:
        config = existing.get(company.id)
        if config is None:
            config = BillingConfig(company=company, **settings)
            session.add(config)
            created += 1
            summary = message("audit.billing.create", company=company.name, changes=_settings(settings))
        else:
            before = {key: getattr(config, key) for key in SETTINGS}
            for key in SETTINGS:
                setattr(config, key, settings[key])
            summary = (message("audit.billing.configure", company=company.name,
                               changes=_setting_changes(before, settings))
                       if before != dict(settings) else message("audit.billing.unchanged", company=company.name))
        summaries.append((config, summary))
    try:
        session.flush()
    except IntegrityError as exc:
        # Another request gave one of these companies a config meanwhile.
        raise DomainError(_l("The billing config changed meanwhile; please try again.")) from exc
    for config, summary in summaries:
        record(session, actor, "configure", "billing_config", [config.id], summary)
    session.flush()
    return ActionResult(changed=tuple(c.name for c in unique), extra={"created": created})


def delete_config(session: Session, actor: User, config: BillingConfig) -> ActionResult:
    """Delete a company's own config; the company then inherits its nearest ancestor's again."""
    require_role(actor, BILLING_ROLES)
    company = config.company
    if not in_scope(actor, company.id, session):
        raise DomainError(_l("Billing config #%(id)s: not found or outside your companies.", id=config.id))
    record(session, actor, "delete", "billing_config", [config.id],
           message("audit.billing.delete", company=company.name,
                   changes=_settings({k: getattr(config, k) for k in SETTINGS})))
    session.delete(config)
    session.flush()
    return ActionResult(changed=(company.name,))
