"""Distribution (seed 002): commission entries of card sales, monthly settlements and withdrawals.

Entries follow actions.commission (pure arithmetic) and are append-only: pending (order paid) →
held (cards received; hold days) → available → settled (on an approved statement) → posted (the
statement credited the commission wallet). A refund adds negative entries proportional to the
refunded cards; they become available at once and are carried into the next statement.

Statements: draft → submitted → approved (not by its preparer) → posted once (a ledger credit of
the company's commission wallet, idempotency key `settlement:<id>`). Withdrawals: submitted (the
amount leaves the commission wallet at once: it cannot be spent twice) → approved (finance, not
the submitter) → paid (bank reference) | rejected | failed | cancelled (the amount comes back,
once: key `withdrawal:<id>:release`). Every transition is a conditional UPDATE checked by rowcount.

Rules (分销设置): the platform (finance, sales, admin) sets any rule (`save_rule`, `set_by_distributor_id`
NULL). A distributor sets the share it passes to each direct sub-distributor (`save_share`: a percent split
rule on the child, `set_by_distributor_id` = the parent), at most its own rate on the package
(`share_ceiling`); at each sale the share comes out of the parent's own rate read then (`record_sale`).
A lowered rate caps the shares below it, audited (`cap_shares`); a rule shares depend on cannot be deleted
(`check_rule_deletable`). One rule per company × package, one for every package: unique keys, and a
concurrent save updates the row the other one inserted (`_claim_rule`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from actions.texts import label_param, message, percent_param, plan_param
from actions.texts import render as render_text
from actions import DomainError, NotAllowed, in_scope, require_role
from actions.audit import record
from actions.cards import DISTRIBUTOR_ROLES, FINANCE_ROLES, check_reveal, distributor_profile, require_verified
from actions.commission import Tier, format_tiers, parse_tiers, reversal, sale_shares, true_up
from actions.crypto import Vault, normalize
from actions.money import format_money, format_percent, from_minor, parse, to_minor, typed_number
from actions.wallets import InsufficientBalance, credit, debit, wallet_for
from models import (
    WITHDRAWAL_STATUSES, CommissionEntry, CommissionRule, CommissionSettlement, Company, DistributorProfile,
    LedgerEntry, Package, User, Wallet, Withdrawal, utcnow,
)

RULE_ROLES = frozenset({"finance", "sales"})
TIERED = ("graduated", "volume")
_BP = Decimal(10000)


def rate_of(bp: int) -> Decimal:
    """A rate from basis points: 800 → 0.08."""
    return Decimal(bp) / _BP


def bp_of(percent_text: str, field: str) -> int:
    """Basis points from a typed percent ("8", "7.5", in Vietnamese "7,5"), at most two decimals, 0–100."""
    text = str(percent_text).strip().rstrip("%").strip()
    value = typed_number(text) if text else Decimal(0)  # as the reader types it: 7.5, in Vietnamese 7,5
    if value is None:
        raise DomainError(_l("%(field)s: %(value)s is not a percent.", field=field, value=percent_text))
    bp = value * 100
    if not value.is_finite() or bp != bp.to_integral_value() or not 0 <= value <= 100:
        raise DomainError(_l("%(field)s: a percent between 0 and 100 with at most two decimals.", field=field))
    return int(bp)


def commission_parent(session: Session, seller_id: int) -> int | None:
    """The seller's parent company when it is a distributor (level 2); never further up."""
    seller = session.get(Company, seller_id)
    if seller is None or seller.parent_id is None:
        return None
    return seller.parent_id if distributor_profile(session, seller.parent_id) is not None else None


def rule_for(session: Session, seller_id: int, package_id: int) -> CommissionRule | None:
    """The seller's rule for the package, else its rule for every package, else None (no commission)."""
    rules = session.scalars(select(CommissionRule).where(
        CommissionRule.company_id == seller_id,
        (CommissionRule.package_id == package_id) | CommissionRule.package_id.is_(None)))
    by_package = {r.package_id: r for r in rules}
    return by_package.get(package_id) or by_package.get(None)


def find_rule(session: Session, company_id: int, package_id: int | None) -> CommissionRule | None:
    """The rule saved for exactly this distributor × package (None = its rule for every package)."""
    return session.scalar(select(CommissionRule).where(
        CommissionRule.company_id == company_id,
        CommissionRule.package_id.is_(None) if package_id is None else CommissionRule.package_id == package_id))


def _claim_rule(session: Session, company_id: int, package_id: int | None) -> tuple[CommissionRule, bool]:
    """The rule of company × package, created when missing: (rule, created).

    Two saves at once both find none and both INSERT; the unique keys (company, package) and (company)
    where the package is NULL refuse the second, which then updates the first's row: one rule, not two."""
    rule = find_rule(session, company_id, package_id)
    if rule is not None:
        return rule, False
    try:
        with session.begin_nested():
            rule = CommissionRule(company_id=company_id, package_id=package_id)
            session.add(rule)
            session.flush()
        return rule, True
    except IntegrityError:
        rule = find_rule(session, company_id, package_id)
        if rule is None:
            raise
        return rule, False


def _package_code(session: Session, package_id: int | None) -> str | None:
    return session.scalar(select(Package.code).where(Package.id == package_id)) if package_id is not None else None


def save_rule(session: Session, actor: User, company: Company, package_id: int | None, *, mode: str, kind: str,
              level1_percent: str = "0", level2_percent: str = "0", fixed_level1: str = "0", fixed_level2: str = "0",
              tiers: str = "", currency: str = "CNY", hold_days: int = 7) -> CommissionRule:
    """分销设置 by the platform: create or replace the rule of a distributor × package (None = every package).

    The platform may set any rule, a share a parent distributor passed down included (it becomes the
    platform's). When the company's own rate drops below a share it passes down, that share is capped
    (see cap_shares)."""
    require_role(actor, RULE_ROLES)
    if distributor_profile(session, company.id) is None:
        raise DomainError(_l("%(company)s is not a distributor.", company=company.name))
    level1 = bp_of(level1_percent, str(_l("Level-1 rate")))
    level2 = bp_of(level2_percent, str(_l("Level-2 rate")))
    if mode == "split" and level1 > level2:
        raise DomainError(_l("Split mode: the sub-distributor's share (%(child)s) cannot exceed its parent's "
                             "rate (%(parent)s).", child=rate_of(level1), parent=rate_of(level2)))
    fixed1 = parse(fixed_level1 or "0", currency, str(_l("Fixed per card, level 1")), allow_zero=True)
    fixed2 = parse(fixed_level2 or "0", currency, str(_l("Fixed per card, level 2")), allow_zero=True)
    tiers_text = ""
    if kind in TIERED:
        tiers_text = format_tiers(parse_tiers(tiers))
    if not 0 <= int(hold_days) <= 365:
        raise DomainError(_l("Hold days: between 0 and 365."))
    rule, created = _claim_rule(session, company.id, package_id)
    old = None if created else rule.level1_rate_bp
    rule.mode, rule.kind, rule.currency = mode, kind, currency
    rule.level1_rate_bp, rule.level2_rate_bp = level1, level2
    rule.fixed_level1_minor, rule.fixed_level2_minor = to_minor(fixed1, currency), to_minor(fixed2, currency)
    rule.tiers, rule.hold_days = tiers_text, int(hold_days)
    rule.set_by_distributor_id, rule.set_by_user_id = None, actor.id
    session.flush()
    record(session, actor, "save", "commission_rule", [rule.id], message(
        "audit.commission_rule.change", company=company.name, package=plan_param(_package_code(session, package_id)),
        mode=label_param("commission_mode", mode), kind=label_param("commission_kind", kind),
        old=percent_param(old), new=percent_param(level1)))
    cap_shares(session, actor, company.id)
    return rule


# --- shares a distributor passes to its direct sub-distributors ---------------------------------


@dataclass(frozen=True)
class Ceiling:
    """The most a distributor may pass down on a package: its own rate there (basis points), and the
    package that sets it (None: its rule for every package)."""

    basis_points: int
    package_id: int | None
    package_code: str | None


def _is_distributor(session: Session, company_id: int | None) -> bool:
    return distributor_profile(session, company_id) is not None


def direct_sub_distributors(session: Session, company_id: int) -> list[Company]:
    """The distributors whose parent is `company_id` (its level below; never further down)."""
    return list(session.scalars(select(Company).join(DistributorProfile, DistributorProfile.company_id == Company.id)
                                .where(Company.parent_id == company_id).order_by(Company.name, Company.id)))


def own_rules(session: Session, company_id: int) -> list[CommissionRule]:
    """The company's own rules (what it earns on its sales), the rule for every package first."""
    rules = session.scalars(select(CommissionRule).where(CommissionRule.company_id == company_id)).all()
    return sorted(rules, key=lambda r: (r.package_id is not None, r.package.code if r.package else ""))


def share_ceiling(session: Session, parent_id: int, package_id: int | None) -> Ceiling | None:
    """What the parent may pass down on `package_id`: its own percent rate for that package (its rule for the
    package, else for every package); for every package, the lowest of its percent rates (its rule for every
    package and each package rule), so that no package's share exceeds its rate there. None when it has
    no percent rate to share (no rule, or fixed per card / monthly tiers, which only the platform splits)."""
    if package_id is not None:
        rule = rule_for(session, parent_id, package_id)
        if rule is None or rule.kind != "percent":
            return None
        return Ceiling(rule.level1_rate_bp, rule.package_id, _package_code(session, rule.package_id))
    rules = own_rules(session, parent_id)
    every = next((r for r in rules if r.package_id is None), None)
    if every is None or every.kind != "percent":
        return None
    lowest = min((r for r in rules if r.kind == "percent"), key=lambda r: (r.level1_rate_bp, r.package_id is not None))
    return Ceiling(lowest.level1_rate_bp, lowest.package_id, _package_code(session, lowest.package_id))


def _check_child(session: Session, actor: User, child: Company) -> int:
    """The actor's company id when `child` is one of its direct sub-distributors; else NotAllowed naming it."""
    require_role(actor, DISTRIBUTOR_ROLES)
    parent_id = actor.company_id
    if actor.is_staff or parent_id is None or not _is_distributor(session, parent_id):
        raise NotAllowed(_l("Only a distributor passes shares to its sub-distributors."))
    if child.id == parent_id:
        raise NotAllowed(_l("Your own rate is set by the platform or by your parent distributor; you cannot "
                            "change it."))
    if child.parent_id != parent_id or not _is_distributor(session, child.id):
        raise NotAllowed(_l("%(company)s is not one of your direct sub-distributors.", company=child.name))
    return parent_id


def _check_share_rule(rule: CommissionRule, parent_id: int, package_label: str) -> None:
    if rule.set_by_distributor_id != parent_id:
        raise NotAllowed(_l("The platform set the rate of %(company)s for %(package)s; only the platform can "
                            "change or delete it.", company=rule.company.name, package=package_label))


def _package_label(code: str | None) -> str:
    return code or str(_l("Every plan"))


def save_share(session: Session, actor: User, child: Company, package_id: int | None,
               percent_text: str) -> CommissionRule:
    """分销设置 by a distributor: set or change the share (a percent of the net paid) it passes to one of its
    direct sub-distributors on a package (None = every package). The share comes out of the distributor's own
    rate on the sub-distributor's sales, so it may not exceed that rate (share_ceiling); the refusal names the
    package and the ceiling. A rule the platform set on that sub-distributor stays the platform's."""
    parent_id = _check_child(session, actor, child)
    code = session.scalar(select(Package.code).where(Package.id == package_id, Package.kind == "card")) \
        if package_id is not None else None
    if package_id is not None and code is None:
        raise DomainError(_l("Package: choose one."))
    label = _package_label(code)
    share = bp_of(percent_text, str(_l("Share")))
    existing = find_rule(session, child.id, package_id)
    if existing is not None:
        _check_share_rule(existing, parent_id, label)
    ceiling = share_ceiling(session, parent_id, package_id)
    if ceiling is None:
        raise DomainError(_l("%(package)s: you have no commission rate in percent there to share (the platform "
                             "sets it).", package=label))
    if share > ceiling.basis_points:
        raise DomainError(_l("%(package)s: the share %(share)s is above your own rate %(ceiling)s (your rule for "
                             "%(ceiling_package)s); it can be at most that.", package=label, share=_percent(share),
                             ceiling=_percent(ceiling.basis_points),
                             ceiling_package=_package_label(ceiling.package_code)))
    own = rule_for(session, parent_id, package_id) if package_id is not None else find_rule(session, parent_id, None)
    rule, created = _claim_rule(session, child.id, package_id)
    if not created:  # a concurrent save by the platform may have won the row meanwhile
        _check_share_rule(rule, parent_id, label)
    old = None if created else rule.level1_rate_bp
    rule.mode, rule.kind, rule.currency = "split", "percent", own.currency
    rule.level1_rate_bp, rule.level2_rate_bp = share, 0  # the parent's rate is read from its own rule at each sale
    rule.fixed_level1_minor = rule.fixed_level2_minor = 0
    rule.tiers, rule.hold_days = "", own.hold_days
    rule.set_by_distributor_id, rule.set_by_user_id = parent_id, actor.id
    session.flush()
    record(session, actor, "save", "commission_rule", [rule.id], message(
        "audit.commission_rule.share", company=child.name, package=plan_param(code), parent=actor.company.name,
        old=percent_param(old), new=percent_param(share)))
    cap_shares(session, actor, child.id)  # a lowered share lowers what the child passes down in turn
    return rule


def _percent(bp: int) -> str:
    return format_percent(Decimal(bp) / 100)


@dataclass(frozen=True)
class ShareRow:
    """One rule of a direct sub-distributor as its parent reads it: what the parent keeps of its sales there
    (None for fixed per card and monthly tiers), and whether the parent set it (it may change and delete it)."""

    rule: CommissionRule
    keeps_bp: int | None
    editable: bool


def sub_distributor_shares(session: Session, company_id: int) -> list[tuple[Company, list[ShareRow]]]:
    """分销设置 of a distributor: each direct sub-distributor with its rules (none yet: an empty list)."""
    children = direct_sub_distributors(session, company_id)
    rules = session.scalars(select(CommissionRule).where(CommissionRule.company_id.in_([c.id for c in children]))
                            ).all() if children else []
    by_child: dict[int, list[CommissionRule]] = {}
    for rule in rules:
        by_child.setdefault(rule.company_id, []).append(rule)
    result = []
    for child in children:
        rows = []
        for rule in sorted(by_child.get(child.id, []), key=lambda r: (r.package_id is not None,
                                                                      r.package.code if r.package else "")):
            keeps = None
            if rule.kind == "percent":
                if rule.set_by_distributor_id == company_id:
                    own = (rule_for(session, company_id, rule.package_id) if rule.package_id is not None
                           else find_rule(session, company_id, None))
                    keeps = max(own.level1_rate_bp - rule.level1_rate_bp, 0) if own is not None else 0
                elif rule.mode == "split":
                    keeps = rule.level2_rate_bp - rule.level1_rate_bp
                else:
                    keeps = rule.level2_rate_bp
            rows.append(ShareRow(rule, keeps, rule.set_by_distributor_id == company_id))
        result.append((child, rows))
    return result


def dependent_shares(session: Session, rule: CommissionRule) -> list[CommissionRule]:
    """The shares its company passed down that take their ceiling from `rule`: on the same package, or, for a
    rule for every package, on every package and on each package the company has no rule of its own for."""
    shares = session.scalars(select(CommissionRule).join(Company, Company.id == CommissionRule.company_id).where(
        CommissionRule.set_by_distributor_id == rule.company_id, Company.parent_id == rule.company_id)).all()
    if rule.package_id is not None:
        return [s for s in shares if s.package_id == rule.package_id]
    own_packages = {r.package_id for r in own_rules(session, rule.company_id) if r.package_id is not None}
    return [s for s in shares if s.package_id not in own_packages]


def check_rule_deletable(session: Session, rule: CommissionRule) -> None:
    """DomainError naming the sub-distributors (and packages) whose shares depend on `rule`: delete those first."""
    dependents = dependent_shares(session, rule)
    if dependents:
        names = ", ".join(f"{s.company.name} ({_package_label(s.package.code if s.package else None)})"
                          for s in sorted(dependents, key=lambda s: (s.company.name, s.package_id or 0)))
        raise DomainError(_l("The rule of %(company)s for %(package)s cannot be deleted: the shares it passes down "
                             "depend on it: %(shares)s. Delete or change those first.", company=rule.company.name,
                             package=_package_label(rule.package.code if rule.package else None), shares=names))


def delete_rule(session: Session, actor: User, rule: CommissionRule) -> None:
    """Delete a rule: the platform any rule, a distributor only a share it passed to a direct sub-distributor;
    refused while shares passed down depend on it (check_rule_deletable). Audited with the rate it had."""
    if actor.is_staff:
        require_role(actor, RULE_ROLES)
    else:
        parent_id = _check_child(session, actor, rule.company)
        _check_share_rule(rule, parent_id, _package_label(rule.package.code if rule.package else None))
    check_rule_deletable(session, rule)
    record(session, actor, "delete", "commission_rule", [rule.id], message(
        "audit.commission_rule.delete", company=rule.company.name,
        package=plan_param(rule.package.code if rule.package else None), old=percent_param(rule.level1_rate_bp)))
    company_id = rule.company_id
    session.delete(rule)
    session.flush()
    cap_shares(session, actor, company_id)


def cap_shares(session: Session, actor: User, company_id: int) -> list[CommissionRule]:
    """Lower each share `company_id` passes to its direct sub-distributors to its ceiling, when its own rate
    was lowered below it (by the platform or by its own parent), and so on down the tree; each capped share is
    audited. We cap rather than refuse the lowering: the platform's (or the parent's) decision on a rate is
    theirs, and the sub-distributor's share can never be paid out of money its parent no longer earns."""
    capped = []
    shares = session.scalars(select(CommissionRule).join(Company, Company.id == CommissionRule.company_id).where(
        CommissionRule.set_by_distributor_id == company_id, Company.parent_id == company_id)
        .order_by(CommissionRule.id)).all()
    parent = session.get(Company, company_id)
    for share in shares:
        ceiling = share_ceiling(session, company_id, share.package_id)
        top = ceiling.basis_points if ceiling is not None else 0
        if share.level1_rate_bp <= top:
            continue
        old, share.level1_rate_bp = share.level1_rate_bp, top
        session.flush()
        record(session, actor, "edit", "commission_rule", [share.id], message(
            "audit.commission_rule.capped", company=share.company.name,
            package=plan_param(share.package.code if share.package else None), parent=parent.name,
            old=percent_param(old), new=percent_param(top)))
        capped.append(share)
        capped += cap_shares(session, actor, share.company_id)
    return capped


def _rule_tiers(rule: CommissionRule) -> tuple[Tier, ...]:
    return parse_tiers(rule.tiers, locale="en")  # stored as format_tiers writes them: machine forms


def record_sale(session: Session, *, order_id: int, seller_id: int, package_id: int, cards: int, base: Decimal,
                currency: str, month: str) -> list[CommissionEntry]:
    """The pending entries of one paid card sale (seller level 1, distributor parent level 2); once per order."""
    rule = rule_for(session, seller_id, package_id)
    if rule is None:
        return []
    parent_id = commission_parent(session, seller_id)
    level1_rate = rate_of(rule.level1_rate_bp)
    level2_bp = rule.level2_rate_bp
    if rule.set_by_distributor_id is not None:
        # A share its parent passed down: it comes out of the parent's own rate on this package, read now (the
        # parent keeps its rate less the share). cap_shares keeps shares within it; this is the last guard.
        own = rule_for(session, parent_id, package_id) if parent_id == rule.set_by_distributor_id else None
        level2_bp = own.level1_rate_bp if own is not None and own.kind == "percent" else 0
        level1_rate = min(level1_rate, rate_of(level2_bp))
    if rule.kind in TIERED:  # provisional at the first tier's rate; the month is trued up
        level1_rate = _rule_tiers(rule)[0].rate
        if rule.mode == "split" and level1_rate > rate_of(level2_bp):
            level1_rate = rate_of(level2_bp)
    shares = sale_shares(base=base, cards=cards, currency=currency, kind="fixed" if rule.kind == "fixed" else "percent",
                         mode=rule.mode, level1_rate=level1_rate, level2_rate=rate_of(level2_bp),
                         fixed_per_card=from_minor(rule.fixed_level1_minor, currency),
                         fixed_per_card_level2=from_minor(rule.fixed_level2_minor, currency),
                         has_parent=parent_id is not None)
    entries = []
    for share in shares:
        entry = CommissionEntry(
            company_id=seller_id if share.level == 1 else parent_id, seller_company_id=seller_id, level=share.level,
            kind="sale", order_id=order_id, package_id=package_id, cards=cards, currency=currency,
            base_minor=to_minor(base, currency),
            rate_bp=int(share.rate * _BP) if share.rate is not None else None,
            amount_minor=to_minor(share.amount, currency), month=month, state="pending",
            idempotency_key=f"sale:order:{order_id}:level:{share.level}")
        session.add(entry)
        entries.append(entry)
    session.flush()
    return entries


def record_refund(session: Session, *, order_id: int, refund_key: str, refunded_cards: int,
                  month: str) -> list[CommissionEntry]:
    """Negative entries for the refunded cards of an order's sale entries (available at once, once per refund)."""
    entries = []
    for sale in session.scalars(select(CommissionEntry).where(CommissionEntry.order_id == order_id,
                                                              CommissionEntry.kind == "sale")
                                .order_by(CommissionEntry.level)):
        amount = reversal(from_minor(sale.amount_minor, sale.currency), refunded_cards, sale.cards, sale.currency)
        if not amount:
            continue
        entry = CommissionEntry(
            company_id=sale.company_id, seller_company_id=sale.seller_company_id, level=sale.level, kind="reversal",
            order_id=order_id, package_id=sale.package_id, cards=-refunded_cards, currency=sale.currency,
            base_minor=-round(sale.base_minor * refunded_cards / sale.cards), rate_bp=sale.rate_bp,
            amount_minor=to_minor(amount, sale.currency), month=month, state="available", reverses_id=sale.id,
            idempotency_key=f"reversal:{refund_key}:level:{sale.level}")
        session.add(entry)
        entries.append(entry)
    session.flush()
    return entries


def hold_received(session: Session, order_id: int, today: date) -> int:
    """Cards received: the order's pending entries are held for the rule's hold days."""
    count = 0
    for entry in session.scalars(select(CommissionEntry).where(CommissionEntry.order_id == order_id,
                                                               CommissionEntry.state == "pending")):
        rule = rule_for(session, entry.seller_company_id, entry.package_id)
        entry.state = "held"
        entry.hold_until = today + timedelta(days=rule.hold_days if rule else 0)
        count += 1
    session.flush()
    return count


def release_held(session: Session, today: date) -> int:
    """Held entries whose hold ended become available (a cron-safe, repeatable step)."""
    return session.execute(
        update(CommissionEntry).where(CommissionEntry.state == "held", CommissionEntry.hold_until <= today)
        .values(state="available").execution_options(synchronize_session=False)).rowcount


def month_true_up(session: Session, seller_id: int, package_id: int | None, month: str) -> CommissionEntry | None:
    """The seller's month on tiered rates: one entry bringing its level-1 entries to the tiered amount."""
    rule = session.scalar(select(CommissionRule).where(
        CommissionRule.company_id == seller_id,
        CommissionRule.package_id.is_(None) if package_id is None else CommissionRule.package_id == package_id))
    if rule is None or rule.kind not in TIERED:
        return None
    scope = [CommissionEntry.company_id == seller_id, CommissionEntry.level == 1, CommissionEntry.month == month,
             CommissionEntry.currency == rule.currency]
    if package_id is not None:
        scope.append(CommissionEntry.package_id == package_id)
    sales_minor, paid_minor, done = session.execute(
        select(func.coalesce(func.sum(CommissionEntry.base_minor).filter(CommissionEntry.kind != "true_up"), 0),
               func.coalesce(func.sum(CommissionEntry.amount_minor), 0),
               func.count().filter(CommissionEntry.kind == "true_up")).where(*scope)).one()
    owed = true_up(from_minor(sales_minor, rule.currency), _rule_tiers(rule), rule.kind,
                   from_minor(paid_minor, rule.currency), rule.currency)
    if not owed:
        return None
    entry = CommissionEntry(company_id=seller_id, seller_company_id=seller_id, level=1, kind="true_up",
                            package_id=package_id, cards=0, currency=rule.currency, base_minor=0,
                            amount_minor=to_minor(owed, rule.currency), month=month, state="available",
                            idempotency_key=f"true_up:{seller_id}:{package_id or 'all'}:{month}:{done + 1}")
    session.add(entry)
    session.flush()
    return entry


def true_up_month(session: Session, month: str) -> list[CommissionEntry]:
    """Every seller on monthly tiers gets its month trued up (safe to repeat: a settled month owes 0)."""
    made = []
    for seller_id, package_id in session.execute(select(CommissionRule.company_id, CommissionRule.package_id)
                                                 .where(CommissionRule.kind.in_(TIERED))).all():
        entry = month_true_up(session, seller_id, package_id, month)
        if entry is not None:
            made.append(entry)
    return made


# --- settlements -------------------------------------------------------------------------------


def prepare_settlement(session: Session, actor: User, company: Company, month: str,
                       currency: str = "CNY") -> CommissionSettlement:
    """结算: a draft statement of the company's available entries up to `month` (reversals carried in)."""
    require_role(actor, FINANCE_ROLES)
    if session.scalar(select(CommissionSettlement.id).where(CommissionSettlement.company_id == company.id,
                                                            CommissionSettlement.month == month,
                                                            CommissionSettlement.currency == currency)):
        raise DomainError(_l("%(company)s already has a statement for %(month)s; later commission goes into the "
                             "next month's.", company=company.name, month=month))
    settlement = CommissionSettlement(company_id=company.id, month=month, currency=currency, status="draft",
                                      prepared_by_id=actor.id)
    session.add(settlement)
    session.flush()
    claimed = session.execute(
        update(CommissionEntry).where(CommissionEntry.company_id == company.id, CommissionEntry.currency == currency,
                                      CommissionEntry.state == "available", CommissionEntry.month <= month,
                                      CommissionEntry.settlement_id.is_(None))
        .values(settlement_id=settlement.id).execution_options(synchronize_session=False)).rowcount
    total = session.scalar(select(func.coalesce(func.sum(CommissionEntry.amount_minor), 0))
                           .where(CommissionEntry.settlement_id == settlement.id))
    if claimed == 0 or total <= 0:
        raise DomainError(_l("%(company)s has no available commission to settle up to %(month)s.",
                             company=company.name, month=month))
    settlement.entries, settlement.total_minor = claimed, total
    session.flush()
    record(session, actor, "prepare", "commission_settlement", [settlement.id], f"{company.name} {month}")
    return settlement


def _transition(session: Session, model, row, from_status: str, **values) -> bool:
    changed = session.execute(update(model).where(model.id == row.id, model.status == from_status)
                              .values(**values).execution_options(synchronize_session=False)).rowcount
    session.expire(row)
    return changed == 1


def submit_settlement(session: Session, actor: User, settlement: CommissionSettlement) -> None:
    require_role(actor, FINANCE_ROLES)
    if not _transition(session, CommissionSettlement, settlement, "draft", status="submitted", submitted_at=utcnow()):
        raise DomainError(_l("Statement %(id)s is not a draft.", id=settlement.id))
    record(session, actor, "submit", "commission_settlement", [settlement.id])


def approve_settlement(session: Session, actor: User, settlement: CommissionSettlement) -> LedgerEntry:
    """Approve a submitted statement (not its preparer) and post it once to the commission wallet."""
    require_role(actor, FINANCE_ROLES)
    if actor.id == settlement.prepared_by_id:
        raise NotAllowed(_l("Statement %(id)s: whoever prepared it cannot approve it.", id=settlement.id))
    if not _transition(session, CommissionSettlement, settlement, "submitted", status="approved",
                       approved_by_id=actor.id, approved_at=utcnow()):
        raise DomainError(_l("Statement %(id)s was already reviewed.", id=settlement.id))
    session.execute(update(CommissionEntry).where(CommissionEntry.settlement_id == settlement.id)
                    .values(state="settled").execution_options(synchronize_session=False))
    entry = post_settlement(session, actor, settlement)
    return entry


def post_settlement(session: Session, actor: User, settlement: CommissionSettlement) -> LedgerEntry:
    """Credit an approved statement's total to the company's commission wallet, exactly once."""
    if not _transition(session, CommissionSettlement, settlement, "approved", status="posted", posted_at=utcnow()):
        raise DomainError(_l("Statement %(id)s is not approved, or already posted.", id=settlement.id))
    wallet = wallet_for(session, settlement.company_id, settlement.currency, kind="commission")
    entry = credit(session, wallet, from_minor(settlement.total_minor, settlement.currency), "commission",
                   f"settlement:{settlement.id}", actor, memo=message("ledger.commission", month=settlement.month))
    settlement.ledger_entry_id = entry.id
    session.execute(update(CommissionEntry).where(CommissionEntry.settlement_id == settlement.id)
                    .values(state="posted").execution_options(synchronize_session=False))
    session.flush()
    record(session, actor, "post", "commission_settlement", [settlement.id],
           f"{settlement.total_minor} {settlement.currency} minor")
    return entry


# --- withdrawals -------------------------------------------------------------------------------


def commission_balance(session: Session, company_id: int, currency: str = "CNY") -> Decimal:
    """What the company may withdraw: its commission wallet's balance."""
    wallet = session.scalar(select(Wallet).where(Wallet.company_id == company_id, Wallet.currency == currency,
                                                 Wallet.kind == "commission"))
    return wallet.balance if wallet is not None else from_minor(0, currency)


def submit_withdrawal(session: Session, actor: User, vault: Vault, company: Company, *, amount: str,
                      bank_name: str, account_name: str, account_number: str, currency: str = "CNY") -> Withdrawal:
    """提现: ask to be paid commission; the amount leaves the commission wallet now (held)."""
    require_role(actor, DISTRIBUTOR_ROLES)
    if not in_scope(actor, company.id, session):
        raise NotAllowed(_l("Company %(name)s is outside your companies.", name=company.name))
    profile = require_verified(session, company.id)
    value = parse(amount, currency, str(_l("Amount")))
    number = normalize(account_number or "")
    if not number.isdigit() or not 8 <= len(number) <= 30:
        raise DomainError(_l("Bank account number: 8 to 30 digits."))
    bank_name = " ".join((bank_name or "").split())
    if not bank_name:
        raise DomainError(_l("Bank: enter the bank and branch."))
    if " ".join((account_name or "").split()) != profile.legal_name:
        raise DomainError(_l("Account name: withdrawals go only to an account in the verified legal name "
                             "%(name)s.", name=profile.legal_name))
    withdrawal = Withdrawal(company_id=company.id, currency=currency, amount_minor=to_minor(value, currency),
                            status="submitted", bank_name=bank_name[:100], account_name=profile.legal_name,
                            account_enc=vault.encrypt(number), account_index=vault.blind_index(number, "bank"),
                            account_hint=number[-2:], submitted_by_id=actor.id)
    session.add(withdrawal)
    session.flush()
    wallet = wallet_for(session, company.id, currency, kind="commission")
    try:
        debit(session, wallet, value, "withdrawal", f"withdrawal:{withdrawal.id}:hold", actor,
              memo=message("ledger.withdrawal", id=withdrawal.id))
    except InsufficientBalance:
        raise DomainError(_l("Amount: %(amount)s is more than the available commission %(held)s.",
                             amount=format_money(value, currency),
                             held=format_money(commission_balance(session, company.id, currency), currency))) from None
    record(session, actor, "submit", "withdrawal", [withdrawal.id], f"{value} {currency}")
    return withdrawal


def _release(session: Session, actor: User, withdrawal: Withdrawal) -> None:
    wallet = wallet_for(session, withdrawal.company_id, withdrawal.currency, kind="commission")
    credit(session, wallet, from_minor(withdrawal.amount_minor, withdrawal.currency), "withdrawal_release",
           f"withdrawal:{withdrawal.id}:release", actor, memo=message("ledger.withdrawal_release", id=withdrawal.id))


def approve_withdrawal(session: Session, actor: User, withdrawal: Withdrawal) -> None:
    """Finance approves a submitted withdrawal it did not submit."""
    require_role(actor, FINANCE_ROLES)
    if actor.id == withdrawal.submitted_by_id:
        raise NotAllowed(_l("Withdrawal %(id)s: whoever submitted it cannot approve it.", id=withdrawal.id))
    if not _transition(session, Withdrawal, withdrawal, "submitted", status="approved", approved_by_id=actor.id,
                       decided_at=utcnow()):
        raise DomainError(_l("Withdrawal %(id)s was already reviewed.", id=withdrawal.id))
    record(session, actor, "approve", "withdrawal", [withdrawal.id])


def pay_withdrawal(session: Session, actor: User, withdrawal: Withdrawal, bank_reference: str) -> None:
    """The bank paid it: record the bank's reference."""
    require_role(actor, FINANCE_ROLES)
    reference = (bank_reference or "").strip()
    if not reference or len(reference) > 100:
        raise DomainError(_l("Bank reference: enter the transfer's reference (at most 100 characters)."))
    if not _transition(session, Withdrawal, withdrawal, "approved", status="paid", bank_reference=reference,
                       paid_at=utcnow()):
        raise DomainError(_l("Withdrawal %(id)s is not approved.", id=withdrawal.id))
    record(session, actor, "pay", "withdrawal", [withdrawal.id], reference)


def close_withdrawal(session: Session, actor: User, withdrawal: Withdrawal, outcome: str, reason: str = "") -> None:
    """Reject (submitted), fail (approved) or cancel (submitted, by its company): the held amount comes back once."""
    if outcome == "cancelled":
        require_role(actor, DISTRIBUTOR_ROLES)
        if not in_scope(actor, withdrawal.company_id, session):
            raise NotAllowed(_l("Withdrawal %(id)s is outside your companies.", id=withdrawal.id))
        from_status = "submitted"
    elif outcome in ("rejected", "failed"):
        require_role(actor, FINANCE_ROLES)
        if len((reason or "").strip()) < 4:
            raise DomainError(_l("Reason: say why (at least 4 characters)."))
        from_status = "submitted" if outcome == "rejected" else "approved"
    else:
        raise DomainError(_l("Unknown outcome %(outcome)s.", outcome=outcome))
    if not _transition(session, Withdrawal, withdrawal, from_status, status=outcome, reason=(reason or "").strip(),
                       decided_at=utcnow()):
        raise DomainError(_l("Withdrawal %(id)s is no longer %(status)s.", id=withdrawal.id,
                                             status=WITHDRAWAL_STATUSES[from_status]))
    _release(session, actor, withdrawal)
    record(session, actor, outcome, "withdrawal", [withdrawal.id], (reason or "")[:200])


def reveal_account(session: Session, actor: User, vault: Vault, withdrawal: Withdrawal, reason: str) -> str:
    """The plain bank account number for finance paying it; audited with the reason only."""
    check_reveal(actor, reason)
    record(session, actor, "reveal", "withdrawal", [withdrawal.id], message("audit.reveal.bank_account",
                                                                                    reason=reason.strip()[:200]))
    return vault.decrypt(withdrawal.account_enc)


# --- 财务管理: a company's income and expenses -----------------------------------------------------

STATEMENT_ROLES = FINANCE_ROLES | DISTRIBUTOR_ROLES
STATEMENT_LINES = 500  # the newest movements listed; the totals cover them all


@dataclass(frozen=True)
class StatementLine:
    """One movement of a company's wallets: positive is income, negative an expense."""

    at: datetime
    kind: str  # a LEDGER_KINDS key
    wallet: str  # a WALLET_KINDS key
    currency: str
    amount: Decimal
    memo: str  # in the current locale


@dataclass(frozen=True)
class StatementTotal:
    """The sum of one kind of movement of one wallet, over the whole ledger."""

    kind: str
    wallet: str
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class Statement:
    lines: list[StatementLine]
    totals: list[StatementTotal]


def company_statement(session: Session, actor: User, company: Company, limit: int = STATEMENT_LINES) -> Statement:
    """财务管理: the newest `limit` movements of the company's wallets (prepaid and commission), newest first,
    and the totals by kind and wallet; the company must be in the actor's tree."""
    require_role(actor, STATEMENT_ROLES)
    if not in_scope(actor, company.id, session):
        raise NotAllowed(_l("Company %(name)s is outside your companies.", name=company.name))
    lines = [StatementLine(at=entry.created_at, kind=entry.kind, wallet=wallet_kind, currency=currency,
                           amount=from_minor(entry.amount_minor, currency),
                           memo=render_text(entry.memo_data, entry.memo))
             for entry, currency, wallet_kind in session.execute(
                 select(LedgerEntry, Wallet.currency, Wallet.kind).join(Wallet, Wallet.id == LedgerEntry.wallet_id)
                 .where(Wallet.company_id == company.id).order_by(LedgerEntry.id.desc()).limit(limit))]
    groups = (LedgerEntry.kind, Wallet.currency, Wallet.kind)
    totals = [StatementTotal(kind=kind, wallet=wallet_kind, currency=currency, amount=from_minor(total, currency))
              for kind, currency, wallet_kind, total in session.execute(
                  select(*groups, func.sum(LedgerEntry.amount_minor)).join(Wallet, Wallet.id == LedgerEntry.wallet_id)
                  .where(Wallet.company_id == company.id).group_by(*groups).order_by(*groups))]
    return Statement(lines, totals)
