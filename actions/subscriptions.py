"""Subscriptions (seed 003): price table, two-step checkout with stacked promotions, delivery,
cash receipts (maker–checker), seats, notes, cancellation, and the renewal job.

Prices come from actions.pricing.price_order and nowhere else. Promotion caps are reserved with
conditional UPDATEs (`… WHERE redeemed + reserved < max_redemptions`, rowcount checked), so any
number of concurrent checkouts never hands out more redemptions than the cap. Every function
flushes; the caller commits once.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from actions import DomainError, in_scope, require_role
from actions.audit import record
from actions.dates import EARLIEST_EXPIRY
from actions.money import format_money, round_money, zero
from actions.text_input import one_line, text_block
from actions.texts import (
    change, changes_param, english, label_param, message, messages_param, money_param, render,
)
from actions.orders import (
    DiscountSpec, LineSpec, add_months, cancel_order, cash_awaiting_confirmation, keep_pending_while, mark_paid,
    open_order, pay_with_balance, register_kind, release_cash_reservation, reserve_for_cash,
)
from actions.pricing import Line, PricedOrder, discount_of, price_order
from actions.pricing import Promotion as PromotionRule
from models import (
    PROMOTION_STATUSES, RENEWAL_METHODS, AppliedPromotion, CashReceipt, Company, InvoiceTitle, MemberAccount, Order,
    PlanAddOn, PlanCycle, Promotion, PromotionCompanyUse, PromotionReservation, PromotionTarget, Service,
    ServicePlan, Subscription, SubscriptionEvent, SubscriptionItem, SubscriptionNote, SubscriptionOrder,
    SubscriptionSeat, TermsVersion, User, utcnow,
)

CHECKOUT_ROLES = {"customer_admin", "sales"}
CASH_ENTRY_ROLES = {"sales"}
CASH_CONFIRM_ROLES = {"finance"}
PROMOTION_DRAFT_ROLES = {"sales"}
PROMOTION_ACTIVATE_ROLES = {"finance"}
VIEW_ROLES = {"customer_admin", "sales", "finance"}
RESERVATION_MINUTES = 30
PAY_METHODS = ("balance", "online", "cash")
MAX_SEATS_PASTED = 500
MAX_RENEWAL_DAYS_BEFORE = 90
MAX_REJECT_REASON = 2000


class QuoteChanged(DomainError):
    """The price shown is no longer the price: carries the new quote so the page can show both."""

    def __init__(self, message, quote: Quote):
        super().__init__(message)
        self.quote = quote


# --- the price table ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CycleOffer:
    cycle: PlanCycle
    price: Decimal
    per_month: Decimal
    saving: Decimal  # against buying the shortest cycle repeatedly; 0 for the shortest itself
    saving_percent: Decimal


def price_table(plan: ServicePlan) -> list[CycleOffer]:
    """Each active cycle of `plan` with its per-month equivalent and its saving against the shortest."""
    cycles = [c for c in plan.cycles if c.active]
    if not cycles:
        return []
    currency = cycles[0].currency
    shortest = min(cycles, key=lambda c: c.months)
    offers = []
    for cycle in cycles:
        per_month = round_money(cycle.price / cycle.months, currency)
        at_shortest = round_money(shortest.price * cycle.months / shortest.months, currency)
        saving = max(at_shortest - cycle.price, zero(currency))
        percent = (saving * 100 / at_shortest).quantize(Decimal("0.1")) if at_shortest else Decimal("0.0")
        offers.append(CycleOffer(cycle, cycle.price, per_month, saving, percent))
    return offers


def chosen_cycle(session: Session, plan_id: int | None, cycle_id: int | None) -> PlanCycle:
    """The cycle Đăng ký opens checkout for: an offered cycle, of `plan_id` when the price table names its plan
    ("Nhấn chọn chu kì muốn đăng ký — Nhấn nút Đăng ký"); none chosen is refused naming the plan."""
    plan = session.get(ServicePlan, plan_id) if plan_id is not None else None
    if cycle_id is None and plan is not None and plan.active and plan.service.active:
        raise DomainError(_l("%(plan)s: choose a billing cycle, then press Subscribe.",
                             plan=f"{plan.service.name} · {plan.name}"))
    cycle = session.get(PlanCycle, cycle_id) if cycle_id is not None else None
    if (cycle is None or not cycle.active or not cycle.plan.active or not cycle.plan.service.active
            or (plan_id is not None and cycle.plan_id != plan_id)):
        raise DomainError(_l("Billing cycle: this plan is not offered in that cycle."))
    return cycle


def add_on_gross(add_on: PlanAddOn, months: int) -> Decimal:
    """An add-on's price for a cycle of `months` (its price covers `add_on.months`)."""
    return round_money(add_on.price * months / add_on.months, add_on.currency)


# --- promotions: rules and eligibility ----------------------------------------------------------------------

def rule_of(promotion: Promotion) -> PromotionRule:
    """The pricing rule of a stored promotion."""
    if promotion.kind == "percent":
        return PromotionRule("percent", promotion.percent, promotion.max_discount)
    return PromotionRule("fixed", promotion.amount, currency=promotion.currency)


def promotion_label(promotion: Promotion) -> str:
    value = (f"−{promotion.percent.normalize():f} %" if promotion.kind == "percent"
             else f"−{format_money(promotion.amount, promotion.currency)}")
    return f"{promotion.code} {promotion.name} ({value})"


@dataclass
class CheckoutContext:
    """What eligibility needs, loaded with a constant number of statements."""

    company: Company
    company_ids_up: set[int]  # the company and its ancestors (allow-lists include subtrees)
    first_subscription: bool
    used_by_company: dict[int, int]  # promotion id → redemptions and live reservations of this company
    promotions: dict[int, Promotion]
    held: set[int] = field(default_factory=set)  # promotions this checkout holds a live reservation of


def checkout_context(session: Session, company: Company, now: datetime,
                     checkout_key: str | None = None) -> CheckoutContext:
    """What eligibility needs for `company` now (a checkout's own reservations count as held)."""
    ancestors = set(company.path_ids)
    first = not session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.company_id == company.id, Subscription.status != "abandoned"))
    live = (PromotionReservation.status == "redeemed") | (
        (PromotionReservation.status == "reserved") & (PromotionReservation.expires_at > now))
    query = select(PromotionReservation.promotion_id, func.count()).where(
        PromotionReservation.company_id == company.id, live)
    if checkout_key:
        query = query.where(PromotionReservation.checkout_key != checkout_key)
    used = dict(session.execute(query.group_by(PromotionReservation.promotion_id)).all())
    held = set(session.scalars(select(PromotionReservation.promotion_id).where(
        PromotionReservation.checkout_key == checkout_key, PromotionReservation.status == "reserved",
        PromotionReservation.expires_at > now))) if checkout_key else set()
    promotions = {p.id: p for p in session.scalars(
        select(Promotion).where(Promotion.status == "active").options(
            selectinload(Promotion.targets), selectinload(Promotion.companies)))}
    return CheckoutContext(company, ancestors, first, used, promotions, held)


def refusal(ctx: CheckoutContext, promotion: Promotion, scope: str, *, currency: str, plan: ServicePlan | None = None,
            cycle: PlanCycle | None = None, add_on: PlanAddOn | None = None, gross_subtotal: Decimal | None = None,
            now: datetime) -> str | None:
    """Why `promotion` may not apply here (a sentence), or None when it may."""
    if promotion.status != "active":
        return str(_l("it is not active"))
    if promotion.scope != scope:
        return str(_l("it is a promotion for %(scope)s", scope=_scope_label(promotion.scope)))
    if promotion.starts_at and now < promotion.starts_at:
        return str(_l("it has not started yet"))
    if promotion.ends_at and now >= promotion.ends_at:
        return str(_l("it has ended"))
    # Every promotion belongs to a currency (its amounts, cap and minimum are in it): a percentage one too,
    # so a promotion made for a CNY service is not offered on a VND one.
    if promotion.currency != currency:
        return str(_l("it is in %(promotion_currency)s and this order is in %(currency)s",
                      promotion_currency=promotion.currency, currency=currency))
    if promotion.targets and scope != "invoice":
        hit = any((t.plan_id is not None and plan is not None and t.plan_id == plan.id)
                  or (t.cycle_id is not None and cycle is not None and t.cycle_id == cycle.id)
                  or (t.add_on_id is not None and add_on is not None and t.add_on_id == add_on.id)
                  for t in promotion.targets)
        if not hit:
            return str(_l("it does not apply to this plan, cycle or add-on"))
    if promotion.companies and not ({c.company_id for c in promotion.companies} & ctx.company_ids_up):
        return str(_l("it is not offered to %(company)s", company=ctx.company.name))
    if promotion.first_subscription_only and not ctx.first_subscription:
        return str(_l("it is for a first subscription only"))
    if promotion.min_subtotal_minor is not None and gross_subtotal is not None \
            and gross_subtotal < promotion.min_subtotal:
        return str(_l("it needs a subtotal of at least %(amount)s",
                      amount=format_money(promotion.min_subtotal, promotion.currency)))
    if promotion.max_redemptions is not None and promotion.id not in ctx.held \
            and promotion.redeemed + promotion.reserved >= promotion.max_redemptions:
        return str(_l("it is sold out"))
    if promotion.max_per_company is not None and ctx.used_by_company.get(promotion.id, 0) >= promotion.max_per_company:
        return str(_l("%(company)s has used it the most times allowed", company=ctx.company.name))
    return None


def _scope_label(scope: str) -> str:
    from models import PROMOTION_SCOPES

    return str(PROMOTION_SCOPES.get(scope, scope))


# --- step 1: the selection and its quote --------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """What step 1 submits: ids only, never amounts."""

    cycle_id: int
    plan_promotion_id: int | None = None
    add_on_ids: tuple[int, ...] = ()
    add_on_promotion_ids: tuple[tuple[int, int], ...] = ()  # (add-on id, promotion id)
    invoice_promotion_id: int | None = None

    def as_dict(self) -> dict:
        return {"cycle": self.cycle_id, "plan_promotion": self.plan_promotion_id, "add_ons": list(self.add_on_ids),
                "add_on_promotions": [list(p) for p in self.add_on_promotion_ids],
                "invoice_promotion": self.invoice_promotion_id}

    @classmethod
    def from_dict(cls, data: dict) -> Selection:
        return cls(int(data["cycle"]), data.get("plan_promotion"), tuple(int(i) for i in data.get("add_ons", ())),
                   tuple((int(a), int(p)) for a, p in data.get("add_on_promotions", ())),
                   data.get("invoice_promotion"))


@dataclass(frozen=True)
class QuoteLine:
    key: str
    label: str
    add_on: PlanAddOn | None
    promotion: Promotion | None
    stored: dict | None = None  # the order line's description as a stored message (shown in the reader's language)


def plan_line(service: Service, plan: ServicePlan, months: int, promotion: Promotion | None) -> QuoteLine:
    """The plan's line of a quote: "Cloud Office · Standard · 12 个月" in the reader's language (it read "… · 12")."""
    stored = message("order.line.plan", service=service.name, plan=plan.name, months=months)
    return QuoteLine("plan", render(stored), None, promotion, stored)


@dataclass(frozen=True)
class Quote:
    company: Company
    service: Service
    plan: ServicePlan
    cycle: PlanCycle
    selection: Selection
    lines: tuple[QuoteLine, ...]
    invoice_promotion: Promotion | None
    priced: PricedOrder
    digest: str

    @property
    def currency(self) -> str:
        return self.priced.currency

    @property
    def total(self) -> Decimal:
        return self.priced.total

    def promotions(self) -> list[Promotion]:
        chosen = [line.promotion for line in self.lines if line.promotion is not None]
        return chosen + ([self.invoice_promotion] if self.invoice_promotion is not None else [])

    def rows(self):
        """(quote line, priced line) pairs, in order."""
        return list(zip(self.lines, self.priced.lines))


def _digest(selection: Selection, priced: PricedOrder) -> str:
    payload = {"selection": selection.as_dict(), "currency": priced.currency,
               "lines": [[str(line.key), str(line.gross), str(line.item_discount), str(line.invoice_share),
                          str(line.net)] for line in priced.lines], "total": str(priced.total)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def _check_company(session: Session, actor: User, company: Company | None) -> Company:
    require_role(actor, CHECKOUT_ROLES)
    if company is None or not in_scope(actor, company.id, session):
        raise DomainError(_l("Company: choose one of your companies."))
    if company.status != "active":
        raise DomainError(_l("Company: %(name)s is not active.", name=company.name))
    return company


def quote(session: Session, actor: User, company: Company, selection: Selection, now: datetime,
          checkout_key: str | None = None) -> Quote:
    """Price a selection, refusing anything not offered or not eligible (the error names the field)."""
    company = _check_company(session, actor, company)
    cycle = session.get(PlanCycle, selection.cycle_id) if isinstance(selection.cycle_id, int) else None
    if cycle is None or not cycle.active or not cycle.plan.active or not cycle.plan.service.active:
        raise DomainError(_l("Billing cycle: this plan is not offered in that cycle."))
    plan, service = cycle.plan, cycle.plan.service
    currency = service.currency
    add_ons = []
    for add_on_id in dict.fromkeys(selection.add_on_ids):
        add_on = session.get(PlanAddOn, add_on_id)
        if add_on is None or add_on.service_id != service.id or not add_on.active:
            raise DomainError(_l("Add-on services: #%(id)s is not an add-on of %(service)s.", id=add_on_id,
                                 service=service.name))
        add_ons.append(add_on)
    add_on_promotions = dict(selection.add_on_promotion_ids)
    stray = set(add_on_promotions) - {a.id for a in add_ons}
    if stray:
        raise DomainError(_l("Add-on promotion: add-on #%(id)s is not ticked.", id=sorted(stray)[0]))
    ctx = checkout_context(session, company, now, checkout_key)
    gross_subtotal = cycle.price + sum((add_on_gross(a, cycle.months) for a in add_ons), zero(currency))

    def pick(promotion_id, scope, what, **target) -> Promotion | None:
        if promotion_id is None:
            return None
        promotion = ctx.promotions.get(promotion_id) if isinstance(promotion_id, int) else None
        if promotion is None:
            raise DomainError(_l("%(field)s: promotion #%(id)s does not exist or is not active.", field=what,
                                 id=promotion_id))
        reason = refusal(ctx, promotion, scope, currency=currency, gross_subtotal=gross_subtotal, now=now, **target)
        if reason:
            raise DomainError(_l("%(field)s: %(code)s cannot be used: %(reason)s.", field=what, code=promotion.code,
                                 reason=reason))
        return promotion

    lines = [plan_line(service, plan, cycle.months, pick(selection.plan_promotion_id, "plan", str(_l("Plan promotion")),
                                                         plan=plan, cycle=cycle))]
    for add_on in add_ons:
        promotion = pick(add_on_promotions.get(add_on.id), "add_on",
                         str(_l("Promotion for %(add_on)s", add_on=add_on.name)), add_on=add_on)
        lines.append(QuoteLine(f"add_on:{add_on.id}", add_on.name, add_on, promotion))
    invoice_promotion = pick(selection.invoice_promotion_id, "invoice", str(_l("Invoice promotion")))
    chosen = [line.promotion for line in lines if line.promotion] + ([invoice_promotion] if invoice_promotion else [])
    if len({p.id for p in chosen}) != len(chosen):
        raise DomainError(_l("Promotions: the same promotion is chosen twice."))
    if len(chosen) > 1:
        lone = next((p for p in chosen if not p.combinable), None)
        if lone is not None:
            raise DomainError(_l("Promotions: %(code)s cannot be combined with other promotions.", code=lone.code))
    gross = {"plan": cycle.price, **{f"add_on:{a.id}": add_on_gross(a, cycle.months) for a in add_ons}}
    priced = price_order([Line(line.key, gross[line.key], rule_of(line.promotion) if line.promotion else None)
                          for line in lines],
                         rule_of(invoice_promotion) if invoice_promotion else None, currency=currency)
    return Quote(company, service, plan, cycle, selection, tuple(lines), invoice_promotion, priced,
                 _digest(selection, priced))


@dataclass(frozen=True)
class Offer:
    promotion: Promotion
    takes_off: Decimal


@dataclass
class Offers:
    """The eligible promotions of step 1, each with what it takes off its line."""

    plan: list[Offer] = field(default_factory=list)
    add_ons: dict[int, list[Offer]] = field(default_factory=dict)
    invoice: list[Offer] = field(default_factory=list)


def eligible_offers(session: Session, company: Company, cycle: PlanCycle, add_ons: Sequence[PlanAddOn],
                    now: datetime, chosen: dict[str, int] | None = None) -> Offers:
    """Only the promotions this company may use on this cycle and these add-ons (constant queries), each
    with what it takes off its line; an invoice promotion's amount is taken off the subtotal after the
    line promotions already `chosen` ({"plan": id, "add_on:<id>": id}) that are among the offers."""
    ctx = checkout_context(session, company, now)
    currency = cycle.currency
    gross = {"plan": cycle.price, **{f"add_on:{a.id}": add_on_gross(a, cycle.months) for a in add_ons}}
    gross_subtotal = sum(gross.values(), zero(currency))
    offers = Offers(add_ons={a.id: [] for a in add_ons})
    for promotion in sorted(ctx.promotions.values(), key=lambda p: p.code):
        rule = rule_of(promotion)
        common = {"currency": currency, "gross_subtotal": gross_subtotal, "now": now}
        if refusal(ctx, promotion, "plan", plan=cycle.plan, cycle=cycle, **common) is None:
            offers.plan.append(Offer(promotion, discount_of(rule, cycle.price, currency, promotion.code)))
        for add_on in add_ons:
            if refusal(ctx, promotion, "add_on", add_on=add_on, **common) is None:
                offers.add_ons[add_on.id].append(Offer(promotion, discount_of(rule, gross[f"add_on:{add_on.id}"],
                                                                              currency, promotion.code)))
    line_offers = {"plan": offers.plan, **{f"add_on:{a}": found for a, found in offers.add_ons.items()}}
    after_lines = gross_subtotal
    for key, promotion_id in (chosen or {}).items():
        offer = next((o for o in line_offers.get(key, ()) if o.promotion.id == promotion_id), None)
        if offer is not None:
            after_lines -= offer.takes_off
    for promotion in sorted(ctx.promotions.values(), key=lambda p: p.code):
        if refusal(ctx, promotion, "invoice", currency=currency, gross_subtotal=gross_subtotal, now=now) is None:
            offers.invoice.append(Offer(promotion, discount_of(rule_of(promotion), after_lines, currency,
                                                               promotion.code)))
    return offers


# --- reservations -------------------------------------------------------------------------------------------

def _take(session: Session, promotion_id: int) -> bool:
    """Reserve one redemption if the cap allows (one conditional UPDATE)."""
    result = session.execute(
        update(Promotion).where(
            Promotion.id == promotion_id, Promotion.status == "active",
            (Promotion.max_redemptions.is_(None))
            | (Promotion.redeemed + Promotion.reserved < Promotion.max_redemptions))
        .values(reserved=Promotion.reserved + 1).execution_options(synchronize_session=False))
    return result.rowcount == 1


def _take_for_company(session: Session, promotion: Promotion, company_id: int) -> bool:
    """Count one more use by the company if its cap allows (a row per promotion and company, kept by a
    conditional UPDATE, so two checkouts of one company cannot both take its last use)."""
    exists_ = session.scalar(select(PromotionCompanyUse.id).where(PromotionCompanyUse.promotion_id == promotion.id,
                                                                  PromotionCompanyUse.company_id == company_id))
    if exists_ is None:
        try:
            with session.begin_nested():
                session.add(PromotionCompanyUse(promotion_id=promotion.id, company_id=company_id, used=0))
        except IntegrityError:  # another checkout of the company made it a moment ago
            pass
    cap = promotion.max_per_company
    query = update(PromotionCompanyUse).where(PromotionCompanyUse.promotion_id == promotion.id,
                                              PromotionCompanyUse.company_id == company_id)
    if cap is not None:
        query = query.where(PromotionCompanyUse.used < cap)
    return session.execute(query.values(used=PromotionCompanyUse.used + 1)
                           .execution_options(synchronize_session=False)).rowcount == 1


def _give_back(session: Session, reservation: PromotionReservation) -> None:
    claimed = session.execute(update(PromotionReservation).where(
        PromotionReservation.id == reservation.id, PromotionReservation.status == "reserved")
        .values(status="released").execution_options(synchronize_session=False)).rowcount
    if claimed:
        session.execute(update(Promotion).where(Promotion.id == reservation.promotion_id, Promotion.reserved > 0)
                        .values(reserved=Promotion.reserved - 1).execution_options(synchronize_session=False))
        session.execute(update(PromotionCompanyUse).where(
            PromotionCompanyUse.promotion_id == reservation.promotion_id,
            PromotionCompanyUse.company_id == reservation.company_id, PromotionCompanyUse.used > 0)
            .values(used=PromotionCompanyUse.used - 1).execution_options(synchronize_session=False))


def release_expired_reservations(session: Session, now: datetime) -> int:
    """Give back reservations of checkouts that made no order within 30 minutes."""
    lapsed = list(session.scalars(select(PromotionReservation).where(
        PromotionReservation.status == "reserved", PromotionReservation.order_id.is_(None),
        PromotionReservation.expires_at <= now)))
    for reservation in lapsed:
        _give_back(session, reservation)
    session.flush()
    return len(lapsed)


def reserve(session: Session, actor: User, company: Company, selection: Selection, checkout_key: str,
            now: datetime) -> Quote:
    """Next (step 1 → 2): price the selection and hold each chosen promotion's redemption for 30 minutes."""
    if not re.fullmatch(r"[0-9a-f]{32}", checkout_key or ""):
        raise DomainError(_l("Checkout: this checkout has expired; start again."))
    if session.scalar(select(Subscription.id).where(Subscription.checkout_key == checkout_key)):
        raise DomainError(_l("Checkout: this checkout already made its order; start a new one."))
    result = quote(session, actor, company, selection, now, checkout_key)
    wanted = {p.id: p for p in result.promotions()}
    held = {r.promotion_id: r for r in session.scalars(select(PromotionReservation).where(
        PromotionReservation.checkout_key == checkout_key))}
    for promotion_id, reservation in held.items():
        if promotion_id not in wanted:
            _give_back(session, reservation)
    expires = now + timedelta(minutes=RESERVATION_MINUTES)
    for promotion_id, promotion in wanted.items():
        reservation = held.get(promotion_id)
        if reservation is not None and reservation.status == "reserved":
            reservation.expires_at = expires
            continue
        if not _take(session, promotion_id):
            raise DomainError(_l("%(code)s is sold out.", code=promotion.code))
        if not _take_for_company(session, promotion, company.id):
            raise DomainError(_l("%(code)s: %(company)s has used it the most times allowed.", code=promotion.code,
                                 company=company.name))
        if reservation is None:
            session.add(PromotionReservation(promotion_id=promotion_id, company_id=company.id,
                                             checkout_key=checkout_key, status="reserved", expires_at=expires))
        else:
            reservation.status, reservation.expires_at = "reserved", expires
    session.flush()
    return result


def new_checkout_key() -> str:
    return uuid.uuid4().hex


# --- step 2: details and confirmation -----------------------------------------------------------------------

@dataclass(frozen=True)
class CheckoutDetails:
    """Step 2: who the invoice is made out to, the contact, the payment and the terms."""

    invoice_title: str = ""
    invoice_tax_id: str = ""
    invoice_address: str = ""
    invoice_email: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    contact_email: str = ""
    terms_version_id: int | None = None
    accepted_terms: bool = False
    pay_method: str = "balance"
    auto_renew: bool = True


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9 ()\-]{6,40}")


def validate_tax_code(value: str, field_name: str) -> str:
    """A Vietnamese MST (10 or 13 digits) or a Chinese unified social credit code, compact."""
    from stdnum.cn import uscc
    from stdnum.vn import mst

    text = (value or "").strip()
    for module in (mst, uscc):
        if module.is_valid(text):
            return module.compact(text)
    raise DomainError(_l("%(field)s: %(value)s is not a valid tax code (Vietnamese MST or Chinese unified social "
                         "credit code).", field=field_name, value=text[:40]))


def enters_cash(actor: User) -> bool:
    """Whether `actor` takes cash and enters its receipt (sales; admins may too): it may choose cash for any
    service, and a cash checkout of its enters the receipt at once."""
    return actor.role in CASH_ENTRY_ROLES or actor.role == "admin"


def pay_methods_for(service: Service, actor: User) -> tuple[str, ...]:
    """The payment methods `actor` may choose for `service`, at checkout (step 2 offers them, check_details
    accepts only them) and for renewal. ON: balance and online; cash only through sales (and admins), who
    enter its receipt. OS (seed 003's cash flow, no payment page): cash for everyone who may subscribe, and
    the balance; not online, which is the ON flow."""
    if service.sales_flow == "OS":
        return ("balance", "cash")
    if enters_cash(actor):
        return PAY_METHODS
    return ("balance", "online")


def checkout_defaults(session: Session, company: Company, actor: User, service: Service) -> dict[str, str]:
    """Step 2 as it opens: the company's contact and invoice details, to change where needed. A company
    without a tax code of its own lends its first saved invoice title's name, tax code and address (and names
    it: `invoice_title_id`, the title the list shows). Cash is chosen for an OS service and for sales; the
    balance otherwise."""
    title = None if company.tax_id else session.scalar(
        select(InvoiceTitle).where(InvoiceTitle.company_id == company.id).order_by(InvoiceTitle.id).limit(1))
    return {"contact_name": company.contact_name or "", "contact_phone": company.contact_phone or "",
            "contact_email": company.contact_email or "",
            "invoice_title": title.title if title else company.name,
            "invoice_tax_id": title.tax_id if title else company.tax_id or "",
            "invoice_address": (title.address if title else None) or company.address or "",
            "invoice_title_id": str(title.id) if title else "",
            "pay_method": "cash" if service.sales_flow == "OS" or actor.role in CASH_ENTRY_ROLES else "balance",
            "auto_renew": "y"}


def current_terms(session: Session, service: Service) -> TermsVersion | None:
    return session.scalar(select(TermsVersion).where(TermsVersion.service_id == service.id)
                          .order_by(TermsVersion.published_at.desc(), TermsVersion.id.desc()).limit(1))


def check_details(session: Session, service: Service, details: CheckoutDetails, actor: User) -> dict:
    """Step 2's fields checked, every field at fault named at once (a form refused one field at a time is
    filled in again and again); the values to store."""
    problems: list[str] = []

    def checked(check, *args):
        try:
            return check(*args)
        except DomainError as exc:
            problems.append(str(exc))
            return None

    values = {
        "invoice_title": checked(one_line, details.invoice_title, _l("Invoice title"), 200),
        "invoice_tax_id": checked(validate_tax_code, details.invoice_tax_id, str(_l("Tax code"))),
        "invoice_address": (details.invoice_address or "").strip()[:255],
        "invoice_email": (details.invoice_email or "").strip(),
        "contact_name": checked(one_line, details.contact_name, _l("Contact name"), 100),
        "contact_phone": checked(one_line, details.contact_phone, _l("Contact phone"), 40),
        "contact_email": checked(one_line, details.contact_email, _l("Contact email"), 254),
    }
    if values["invoice_email"] and not _EMAIL.fullmatch(values["invoice_email"]):
        problems.append(str(_l("%(field)s: not an email address.", field=_l("Invoice email"))))
    if values["contact_email"] is not None and not _EMAIL.fullmatch(values["contact_email"]):
        problems.append(str(_l("%(field)s: not an email address.", field=_l("Contact email"))))
    if values["contact_phone"] is not None and not _PHONE.fullmatch(values["contact_phone"]):
        problems.append(str(_l("%(field)s: not a phone number.", field=_l("Contact phone"))))
    terms = current_terms(session, service)
    if not details.accepted_terms:
        problems.append(str(_l("Terms: tick “I agree to the service terms” to subscribe.")))
    elif terms is None or details.terms_version_id != terms.id:
        problems.append(str(_l("Terms: the terms have changed since the page was opened; read and accept version "
                               "%(version)s.", version=terms.version if terms else "—")))
    problem = _pay_method_problem(service, details.pay_method, actor)
    if problem:
        problems.append(problem)
    if problems:
        raise DomainError(" ".join(problems))
    values["terms"] = terms
    return values


def _pay_method_problem(service: Service, method: str, actor: User) -> str | None:
    """Why `actor` may not pay for `service` with `method` (pay_methods_for), or None."""
    offered = pay_methods_for(service, actor)
    if method not in PAY_METHODS:
        return str(_l("Payment: choose balance, online payment or cash."))
    if method not in offered:
        return str(_l("Payment: %(method)s is not offered for %(service)s (%(flow)s service); choose "
                      "%(methods)s.", method=RENEWAL_METHODS[method], service=service.name,
                      flow=service.sales_flow, methods=_method_list(offered)))
    return None


def _method_list(methods: Sequence[str]) -> str:
    return ", ".join(str(RENEWAL_METHODS[m]) for m in methods)


def _cycles_left(promotion: Promotion) -> int | None:
    """Cycles a promotion still applies to after the first one."""
    if promotion.duration == "forever":
        return None
    return (promotion.duration_cycles or 1) - 1 if promotion.duration == "cycles" else 0


def _line_specs(result: Quote, purpose: str) -> list[LineSpec]:
    specs = []
    for line, priced in result.rows():
        discounts = []
        if priced.item_discount:
            discounts.append(DiscountSpec("line", promotion_label(line.promotion), priced.item_discount,
                                          promotion_ref=str(line.promotion.id)))
        if priced.invoice_share:
            discounts.append(DiscountSpec("invoice", promotion_label(result.invoice_promotion), priced.invoice_share,
                                          promotion_ref=str(result.invoice_promotion.id)))
        # An add-on line names its code, so a refund of that line finds the add-on to end.
        description = (f"{line.label} [{line.add_on.code}]"[:255] if line.add_on is not None
                       else line.stored or line.label)
        specs.append(LineSpec(description=description, gross=priced.gross, quantity=1, unit_price=priced.gross,
                              months=result.cycle.months, discounts=discounts))
    return specs


def confirm(session: Session, actor: User, company: Company, selection: Selection, checkout_key: str,
            quote_digest: str, details: CheckoutDetails, now: datetime, today: date) -> Subscription:
    """Pay → Confirm: re-price; if anything changed raise QuoteChanged (nothing written); else make the
    subscription and its one order (a repeated confirm returns the same subscription)."""
    existing = session.scalar(select(Subscription).where(Subscription.checkout_key == (checkout_key or "")))
    if existing is not None:
        if existing.company_id != company.id:
            raise DomainError(_l("Checkout: this checkout belongs to another company."))
        problem = _pay_method_problem(existing.service, details.pay_method, actor)
        if problem:  # a replay pays only as checkout may (no online payment of an OS service)
            raise DomainError(problem)
        return existing
    company = _check_company(session, actor, company)
    current = quote(session, actor, company, selection, now, checkout_key)
    values = check_details(session, current.service, details, actor)
    held = {r.promotion_id: r for r in session.scalars(select(PromotionReservation).where(
        PromotionReservation.checkout_key == checkout_key, PromotionReservation.status == "reserved"))}
    lapsed = [p for p in current.promotions() if p.id not in held or held[p.id].expires_at <= now]
    if current.digest != quote_digest or lapsed:
        if lapsed:  # try to hold them again; if one is gone the quote changes
            try:
                with session.begin_nested():
                    current = reserve(session, actor, company, selection, checkout_key, now)
            except DomainError as exc:
                raise QuoteChanged(exc, current) from None
        if current.digest != quote_digest:
            raise QuoteChanged(_l("The price has changed since you pressed Next: check the new total and confirm "
                                  "again."), current)
    terms = values.pop("terms")
    subscription = Subscription(
        number=f"tmp-{checkout_key}", company_id=company.id, service_id=current.service.id, plan_id=current.plan.id,
        cycle_id=current.cycle.id, currency=current.currency, status="pending_payment", checkout_key=checkout_key,
        auto_renew=details.auto_renew, renewal_method="cash" if details.pay_method == "cash" else (
            "online" if details.pay_method == "online" else "balance"),
        terms_version_id=terms.id, terms_accepted_by_id=actor.id, terms_accepted_at=now,
        terms_accepted_ip=session.info.get("remote_addr"), created_by_id=actor.id, created_at=now, **values)
    try:  # the checkout key's unique index: the same checkout confirmed at the same moment (a double click)
        with session.begin_nested():
            session.add(subscription)
            session.flush()
    except IntegrityError:
        raise DomainError(_l("Checkout: this checkout was confirmed a moment ago; its subscription is in the "
                             "subscription list.")) from None
    subscription.number = f"SUB{subscription.id:07d}"
    for line in current.lines:
        if line.add_on is not None:
            session.add(SubscriptionItem(subscription_id=subscription.id, add_on_id=line.add_on.id))
        if line.promotion is not None:
            session.add(AppliedPromotion(subscription_id=subscription.id, promotion_id=line.promotion.id,
                                         scope=line.promotion.scope, add_on_id=line.add_on.id if line.add_on else None,
                                         cycles_left=_cycles_left(line.promotion)))
    if current.invoice_promotion is not None:
        session.add(AppliedPromotion(subscription_id=subscription.id, promotion_id=current.invoice_promotion.id,
                                     scope="invoice", cycles_left=_cycles_left(current.invoice_promotion)))
    session.flush()
    audit = record(session, actor, "create", "subscription", [subscription.id],
                   message("audit.subscription.create", number=subscription.number, plan=current.plan.name,
                           months=current.cycle.months, company=company.name,
                           total=money_param(current.total, current.currency), terms=terms.version))
    session.flush()
    order = _open_subscription_order(session, actor, subscription, current, "start", None, today)
    event(session, subscription, "created", actor, order=order, audit=audit,
          summary=message("subscription.amount", amount=money_param(current.total, current.currency)))
    for reservation in held.values():
        reservation.order_id = order.id
    session.flush()
    return subscription


def _open_subscription_order(session: Session, actor: User | None, subscription: Subscription, result: Quote,
                             purpose: str, period_start: date | None, today: date) -> Order:
    """The subscription's order for `purpose`; the link's unique key (subscription, purpose, period) makes a
    second one for the same period fail, so each checkout and each renewal has one order."""
    # The link is written before open_order (a zero total is paid and delivered inside it), without
    # its order id yet: deliver() finds it by the subscription number and purpose the order's note names.
    link = SubscriptionOrder(subscription_id=subscription.id, purpose=purpose, period_start=period_start,
                             plan_id=result.plan.id, cycle_id=result.cycle.id)
    session.add(link)
    session.flush()
    order = open_order(session, actor, kind="subscription", company_id=subscription.company_id,
                       currency=result.currency, lines=_line_specs(result, purpose),
                       note=message(f"order.note.subscription_{purpose}", subscription=subscription.number,
                                    purpose=purpose), today=today,
                       promotion=", ".join(p.code for p in result.promotions())[:100] or None)
    if link.order_id is None:
        link.order_id = order.id
        session.flush()
    if purpose != "start":
        event(session, subscription, "renewal_ordered" if purpose == "renewal" else "upgrade_ordered", actor,
              order=order,
              summary=message("subscription.amount", amount=money_param(order.total, order.currency)))
    return order


def subscription_of_order(session: Session, order: Order) -> Subscription | None:
    """The subscription an order was made for (its start, renewal or change), or None."""
    return session.scalar(select(Subscription).join(SubscriptionOrder, SubscriptionOrder.subscription_id
                                                    == Subscription.id).where(SubscriptionOrder.order_id == order.id))


def _link_of(session: Session, order: Order) -> SubscriptionOrder | None:
    link = session.scalar(select(SubscriptionOrder).where(SubscriptionOrder.order_id == order.id))
    if link is None and order.note:
        # Its note names the subscription and purpose (before migration 0037: as the text "SUB… start").
        params = (order.note_data or {}).get("params") or {}
        number, purpose = params.get("subscription"), params.get("purpose")
        if not (number and purpose):
            number, _space, purpose = order.note.partition(" ")
        link = session.scalar(select(SubscriptionOrder).join(Subscription).where(
            Subscription.number == number, SubscriptionOrder.purpose == purpose,
            SubscriptionOrder.order_id.is_(None)))
        if link is not None:
            link.order_id = order.id
            session.flush()
    return link


def event(session: Session, subscription: Subscription, kind: str, actor: User | None, *, order: Order | None = None,
          audit=None, summary: str | dict = "") -> SubscriptionEvent:
    """Append one history event (never edited); `summary` is text or a stored message (actions.texts)."""
    data = summary if isinstance(summary, dict) else None
    row = SubscriptionEvent(subscription_id=subscription.id, kind=kind, actor_id=actor.id if actor else None,
                            order_id=order.id if order else None, audit_event_id=audit.id if audit else None,
                            summary=english(data) if data else summary, summary_data=data, at=utcnow())
    session.add(row)
    return row


def start_order(session: Session, subscription: Subscription) -> Order | None:
    return session.scalar(select(Order).join(SubscriptionOrder, SubscriptionOrder.order_id == Order.id).where(
        SubscriptionOrder.subscription_id == subscription.id, SubscriptionOrder.purpose == "start"))


def pay_by_balance(session: Session, actor: User, subscription: Subscription, today: date) -> Order:
    """ON flow, balance: debit the wallet and start the subscription (one transaction)."""
    order = _pending_order(session, subscription)
    pay_with_balance(session, actor, order, today)
    return order


def _pending_order(session: Session, subscription: Subscription) -> Order:
    order = session.scalar(select(Order).join(SubscriptionOrder, SubscriptionOrder.order_id == Order.id).where(
        SubscriptionOrder.subscription_id == subscription.id, Order.status == "pending").order_by(Order.id.desc()))
    if order is None:
        raise DomainError(_l("Subscription %(number)s has no order awaiting payment.", number=subscription.number))
    return order


# --- delivery (registered with the order core) --------------------------------------------------------------

def deliver(session: Session, order: Order, today: date) -> None:
    """A subscription order is paid: start, renew or upgrade the period; redeem its promotions."""
    link = _link_of(session, order)
    if link is None:
        raise DomainError(_l("Order %(number)s belongs to no subscription.", number=order.number))
    subscription = link.subscription
    if link.purpose == "upgrade":
        _credit_unused_days(session, subscription, order, today)
    # A renewal continues the paid period without a gap (even when paid during the grace period);
    # a first period and an upgrade start on the day of payment.
    start = (link.period_start or today) if link.purpose == "renewal" else today
    subscription.plan_id, subscription.cycle_id = link.plan_id, link.cycle_id
    session.flush()
    session.refresh(subscription)
    months = subscription.cycle.months  # read first: loading the cycle flushes, and start < end must hold then
    subscription.period_start = start
    subscription.period_end = add_months(start, months)
    subscription.grace_until = None
    if link.purpose == "renewal":
        subscription.next_plan_id = subscription.next_cycle_id = None
    # A scheduled cancellation stays scheduled; a suspended, cancelled or abandoned one is not revived.
    if subscription.status in ("pending_payment", "active", "past_due", "expired"):
        subscription.status = "active"
    for reservation in session.scalars(select(PromotionReservation).where(
            PromotionReservation.order_id == order.id, PromotionReservation.status == "reserved")):
        claimed = session.execute(update(PromotionReservation).where(
            PromotionReservation.id == reservation.id, PromotionReservation.status == "reserved")
            .values(status="redeemed").execution_options(synchronize_session=False)).rowcount
        if claimed:
            session.execute(update(Promotion).where(Promotion.id == reservation.promotion_id, Promotion.reserved > 0)
                            .values(reserved=Promotion.reserved - 1, redeemed=Promotion.redeemed + 1)
                            .execution_options(synchronize_session=False))
    kind = {"start": "started", "renewal": "renewed", "upgrade": "upgraded"}[link.purpose]
    event(session, subscription, "paid", None, order=order,
          summary=message("subscription.paid", order=order.number, amount=money_param(order.total, order.currency),
                          method=label_param("payment_method", order.payment_method)))
    event(session, subscription, kind, None, order=order,
          summary=f"{subscription.period_start.isoformat()} → {subscription.period_end.isoformat()}")
    session.flush()


def undo(session: Session, order: Order, lines) -> None:
    """A refund of subscription lines was approved: the plan line ends the subscription, add-on lines end
    their add-on."""
    link = _link_of(session, order)
    if link is None:
        return
    subscription = link.subscription
    plan_refunded = any(_is_plan_line(order, line) for line in lines)
    if plan_refunded:
        subscription.status = "cancelled"
        subscription.cancelled_at = utcnow()
    else:
        for item in subscription.items:
            if any(line.description.endswith(f"[{item.add_on.code}]") for line in lines):
                item.active = False
    event(session, subscription, "refunded", None, order=order,
          summary=message("subscription.refunded",
                          lines=messages_param(line.description_data or line.description for line in lines)))
    session.flush()


def _is_plan_line(order: Order, line) -> bool:
    return bool(order.lines) and order.lines[0].id == line.id


def refuses_online(session: Session, order: Order):
    """Why a subscription's order may not be paid online: its service is sold offline (OS), which is paid from
    the balance or in cash (pay_methods_for); None for an ON service."""
    subscription = subscription_of_order(session, order)
    if subscription is None or subscription.service.sales_flow != "OS":
        return None
    return _l("Order %(number)s is for %(service)s, which is sold offline (OS): pay it from the balance or in cash "
              "to sales, not online.", number=order.number, service=subscription.service.name)


register_kind("subscription", prefix="SB", deliver=deliver, undo=undo, refuses_online=refuses_online)
# The stale-order job (billing expire-orders, ORDER_PENDING_HOURS) leaves alone, besides an order whose cash
# awaits finance (actions.orders):
# - a renewal order, made renewal_days_before the period ends: it waits through the grace days, and
#   run_billing cancels it when the subscription expires unpaid;
keep_pending_while(lambda now: exists().where(SubscriptionOrder.order_id == Order.id,
                                              SubscriptionOrder.purpose == "renewal"))
# - the order of a subscription paid in cash (seed 003's OS flow) for CASH_WAIT: the customer brings the
#   cash to sales, who enters it.
CASH_WAIT = timedelta(days=7)
keep_pending_while(lambda now: exists().where(
    SubscriptionOrder.order_id == Order.id, Subscription.id == SubscriptionOrder.subscription_id,
    Subscription.renewal_method == "cash", Order.created_at >= now - CASH_WAIT))


def cash_pay_by(order: Order, pending: timedelta) -> datetime:
    """When a cash subscription's unpaid order is cancelled as stale (`pending`: ORDER_PENDING_HOURS)."""
    return order.created_at + max(pending, CASH_WAIT)


# --- OS flow: cash receipts (maker–checker) -----------------------------------------------------------------

def enter_cash_receipt(session: Session, actor: User, subscription: Subscription, received_on: date,
                       reference: str = "", today: date | None = None) -> CashReceipt:
    """Sales records the cash paid for the subscription's pending order (the whole total), received on a
    day from EARLIEST_EXPIRY to `today` (default: the server's today)."""
    require_role(actor, CASH_ENTRY_ROLES)
    today = today or date.today()
    if not EARLIEST_EXPIRY <= received_on <= today:
        raise DomainError(_l("Cash received on: a day from %(first)s to today (%(date)s is not).",
                             first=EARLIEST_EXPIRY.isoformat(), date=received_on.isoformat()))
    order = _pending_order(session, subscription)
    if session.scalar(select(CashReceipt.id).where(CashReceipt.order_id == order.id,
                                                   CashReceipt.status != "rejected")):
        raise DomainError(_l("Order %(number)s already has a cash receipt.", number=order.number))
    receipt = CashReceipt(subscription_id=subscription.id, order_id=order.id, company_id=subscription.company_id,
                          currency=order.currency, amount_minor=order.total_minor, received_on=received_on,
                          reference=(reference or "").strip()[:100], entered_by_id=actor.id, status="submitted")
    number = order.number
    try:  # one receipt an order (its unique key): two people entering the same cash at once
        with session.begin_nested():
            session.add(receipt)
            session.flush()
            # the order waits for this cash: paid by finance's confirmation only, not cancelled meanwhile
            if not reserve_for_cash(session, order):
                raise DomainError(_l("Order %(number)s is not awaiting payment any more: no cash is entered.",
                                     number=number))
    except IntegrityError:
        raise DomainError(_l("Order %(number)s already has a cash receipt.", number=number)) from None
    audit = record(session, actor, "create", "cash_receipt", [receipt.id],
                   message("audit.cash.entered", order=order.number, amount=money_param(order.total, order.currency),
                           date=received_on.isoformat()))
    event(session, subscription, "cash_entered", actor, order=order, audit=audit,
          summary=message("subscription.amount", amount=money_param(order.total, order.currency)))
    session.flush()
    return receipt


def awaiting_cash():
    """A WHERE clause on Subscription: paid in cash (its renewal method), with an order awaiting payment for
    which no cash receipt is entered yet — the subscriptions whose cash sales is to take and enter."""
    pending = select(SubscriptionOrder.id).join(Order, Order.id == SubscriptionOrder.order_id).where(
        SubscriptionOrder.subscription_id == Subscription.id, Order.status == "pending",
        ~exists().where(CashReceipt.order_id == Order.id, CashReceipt.status != "rejected"))
    return and_(Subscription.renewal_method == "cash", pending.exists())


def _review_receipt(session: Session, actor: User, receipt: CashReceipt, **values) -> None:
    """Finance's decision on a submitted receipt (never by who entered it), once: one conditional UPDATE."""
    require_role(actor, CASH_CONFIRM_ROLES)
    if receipt.entered_by_id == actor.id:
        raise DomainError(_l("Cash receipt #%(id)s: it was entered by you; another person of finance must "
                             "confirm it.", id=receipt.id))
    claimed = session.execute(update(CashReceipt).where(
        CashReceipt.id == receipt.id, CashReceipt.status == "submitted", CashReceipt.entered_by_id != actor.id)
        .values(confirmed_by_id=actor.id, confirmed_at=utcnow(), **values)
        .execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise DomainError(_l("Cash receipt #%(id)s is not awaiting confirmation.", id=receipt.id))
    session.refresh(receipt)


def confirm_cash_receipt(session: Session, actor: User, receipt: CashReceipt, today: date) -> None:
    """Finance confirms the cash (never the person who entered it); the subscription starts."""
    _review_receipt(session, actor, receipt, status="confirmed")
    order = receipt.order
    mark_paid(session, order, "cash", f"cash-{receipt.id}", order.total, order.currency, today, reserved=True)
    audit = record(session, actor, "confirm", "cash_receipt", [receipt.id],
                   message("audit.cash.confirmed", order=order.number))
    event(session, receipt.subscription, "cash_confirmed", actor, order=order, audit=audit,
          summary=message("subscription.amount", amount=money_param(order.total, order.currency)))
    session.flush()


def reject_cash_receipt(session: Session, actor: User, receipt: CashReceipt, reason: str) -> None:
    """Finance rejects a cash receipt sales entered (the customer had not paid, the wrong amount or day), naming
    why: the order is released (no longer waiting for that cash: payable another way, or cancelled by its
    rules) and sales may enter the right receipt. Each step is a conditional UPDATE, so it happens once."""
    require_role(actor, CASH_CONFIRM_ROLES)
    reason = text_block(reason, _l("Reason"), MAX_REJECT_REASON)
    if not reason:
        raise DomainError(_l("Cash receipt #%(id)s: give the reason for rejecting it.", id=receipt.id))
    _review_receipt(session, actor, receipt, status="rejected", reject_reason=reason)
    order = receipt.order
    release_cash_reservation(session, order)
    audit = record(session, actor, "reject", "cash_receipt", [receipt.id],
                   message("audit.cash.rejected", order=order.number, reason=reason))
    event(session, receipt.subscription, "cash_rejected", actor, order=order, audit=audit, summary=reason[:200])
    session.flush()


# --- seats, notes, settings ---------------------------------------------------------------------------------

def _check_subscription(session: Session, actor: User, subscription: Subscription) -> None:
    require_role(actor, VIEW_ROLES)
    if not in_scope(actor, subscription.company_id, session):
        raise DomainError(_l("Subscription %(number)s is outside your companies.", number=subscription.number))


def seats_of(session: Session, subscription: Subscription) -> list[SubscriptionSeat]:
    return list(session.scalars(select(SubscriptionSeat).where(SubscriptionSeat.subscription_id == subscription.id)
                                .options(selectinload(SubscriptionSeat.member_account))
                                .order_by(SubscriptionSeat.id)))


def assign_seats(session: Session, actor: User, subscription: Subscription, text: str) -> list[str]:
    """Give seats to member accounts named by login (one per line or comma); all or nothing."""
    _check_subscription(session, actor, subscription)
    if actor.role not in ("customer_admin", "sales", "admin"):
        raise DomainError(_l("Your role may not do this."))
    # a login is one login in any letter case (TUPP01 is tupp01): the first spelling pasted names it
    named = {}
    for part in re.split(r"[\s,;]+", text or ""):
        if part.strip():
            named.setdefault(part.strip().lower(), part.strip())
    logins = list(named.values())
    if not logins:
        raise DomainError(_l("Employees: paste at least one login."))
    if len(logins) > MAX_SEATS_PASTED:
        raise DomainError(_l("Employees: at most %(n)s logins at once.", n=MAX_SEATS_PASTED))
    found = {a.login.lower(): a for a in session.scalars(select(MemberAccount).where(
        func.lower(MemberAccount.login).in_(list(named)),
        MemberAccount.company_id.in_(subscription.company.subtree_ids())))}
    accounts = {login: found[key] for key, login in named.items() if key in found}
    unknown = [login for login in logins if login not in accounts]
    if unknown:
        raise DomainError(_l("Employees: no member account of %(company)s named %(logins)s.",
                             company=subscription.company.name, logins=", ".join(unknown[:20])))
    held = {s.member_account_id for s in seats_of(session, subscription)}
    new = [accounts[login] for login in logins if accounts[login].id not in held]
    limit = subscription.plan.seat_limit
    if not new:
        return []
    seat_limit = select(ServicePlan.seat_limit).where(ServicePlan.id == Subscription.plan_id).scalar_subquery()
    taken = session.execute(update(Subscription).where(
        Subscription.id == subscription.id, Subscription.seats_used + len(new) <= seat_limit)
        .values(seats_used=Subscription.seats_used + len(new)).execution_options(synchronize_session=False)).rowcount
    if not taken:
        raise DomainError(_l("Employees: %(plan)s has %(limit)s seats, %(used)s taken; %(n)s more do not fit.",
                             plan=subscription.plan.name, limit=limit, used=len(held), n=len(new)))
    session.expire(subscription, ["seats_used"])
    try:
        with session.begin_nested():
            for account in new:
                session.add(SubscriptionSeat(subscription_id=subscription.id, member_account_id=account.id,
                                             assigned_by_id=actor.id))
    except IntegrityError:  # the same account was given a seat a moment ago
        raise DomainError(_l("Employees: someone assigned these seats meanwhile; reload the page.")) from None
    audit = record(session, actor, "assign_seats", "subscription", [subscription.id],
                   ", ".join(a.login for a in new))
    event(session, subscription, "seat_assigned", actor, audit=audit, summary=", ".join(a.login for a in new))
    session.flush()
    return [a.login for a in new]


def remove_seat(session: Session, actor: User, subscription: Subscription, seat_id: int) -> None:
    _check_subscription(session, actor, subscription)
    seat = session.scalar(select(SubscriptionSeat).where(SubscriptionSeat.id == seat_id,
                                                         SubscriptionSeat.subscription_id == subscription.id))
    if seat is None:
        raise DomainError(_l("Employees: seat #%(id)s is not a seat of %(number)s.", id=seat_id,
                             number=subscription.number))
    login = seat.member_account.login
    session.delete(seat)
    session.flush()
    session.execute(update(Subscription).where(Subscription.id == subscription.id, Subscription.seats_used > 0)
                    .values(seats_used=Subscription.seats_used - 1).execution_options(synchronize_session=False))
    session.expire(subscription, ["seats_used"])
    audit = record(session, actor, "remove_seat", "subscription", [subscription.id], login)
    event(session, subscription, "seat_removed", actor, audit=audit, summary=login)
    session.flush()


def add_note(session: Session, actor: User, subscription: Subscription, body: str, visibility: str,
             pinned: bool) -> SubscriptionNote:
    _check_subscription(session, actor, subscription)
    body = text_block(body, _l("Note"), 4000)
    if not body:
        raise DomainError(_l("Note: write something."))
    if visibility not in ("internal", "customer") or (not actor.is_staff and visibility != "customer"):
        visibility = "customer"
    note = SubscriptionNote(subscription_id=subscription.id, author_id=actor.id, body=body, visibility=visibility,
                            pinned=bool(pinned))
    session.add(note)
    session.flush()
    event(session, subscription, "note", actor, summary=body[:200] if visibility == "customer" else "")
    session.flush()
    return note


def notes_for(session: Session, actor: User, subscription: Subscription) -> list[SubscriptionNote]:
    query = select(SubscriptionNote).where(SubscriptionNote.subscription_id == subscription.id)
    if not actor.is_staff:
        query = query.where(SubscriptionNote.visibility == "customer")
    return list(session.scalars(query.order_by(SubscriptionNote.pinned.desc(), SubscriptionNote.created_at.desc())))


def renewal_methods_for(actor: User, subscription: Subscription) -> tuple[str, ...]:
    """The renewal methods `actor` may choose: those of checkout (pay_methods_for: cash on an OS service, or
    through sales), and the one set now, kept choosable (cash set by sales on an ON service)."""
    offered = set(pay_methods_for(subscription.service, actor)) | {subscription.renewal_method}
    return tuple(m for m in PAY_METHODS if m in offered)


def update_renewal(session: Session, actor: User, subscription: Subscription, auto_renew: bool, method: str) -> None:
    _check_subscription(session, actor, subscription)
    if method not in PAY_METHODS:
        raise DomainError(_l("Renewal method: choose balance, online payment or cash."))
    offered = renewal_methods_for(actor, subscription)
    if method not in offered:
        raise DomainError(_l("Renewal method: %(method)s is not offered for %(service)s (%(flow)s service); choose "
                             "%(methods)s.", method=RENEWAL_METHODS[method], service=subscription.service.name,
                             flow=subscription.service.sales_flow, methods=_method_list(offered)))
    before = (subscription.auto_renew, subscription.renewal_method)
    subscription.auto_renew, subscription.renewal_method = bool(auto_renew), method
    audit = record(session, actor, "edit", "subscription", [subscription.id],
                   message("audit.changes", changes=changes_param([
                       change("auto_renew", _l("Auto-renew"), before[0], subscription.auto_renew),
                       change("renewal_method", _l("Renewal method"), before[1], method, RENEWAL_METHODS)])))
    session.flush()
    event(session, subscription, "settings", actor, audit=audit,
          summary=message("subscription.renewal_on" if subscription.auto_renew else "subscription.renewal_off",
                          method=label_param("renewal_method", method)))
    session.flush()


# --- cancel -------------------------------------------------------------------------------------------------

def schedule_cancel(session: Session, actor: User, subscription: Subscription) -> None:
    """Cancel at the end of the paid period (undoable until then); a pending renewal order is cancelled."""
    _check_subscription(session, actor, subscription)
    if subscription.status != "active":
        raise DomainError(_l("Subscription %(number)s is not active.", number=subscription.number))
    claimed = session.execute(update(Subscription).where(Subscription.id == subscription.id,
                                                         Subscription.status == "active")
                              .values(status="cancel_scheduled").execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise DomainError(_l("Subscription %(number)s is not active.", number=subscription.number))
    session.refresh(subscription)
    for order in _pending_renewals(session, subscription):
        cancel_order(session, actor, order)
    audit = record(session, actor, "cancel_scheduled", "subscription", [subscription.id], subscription.number)
    event(session, subscription, "cancel_scheduled", actor, audit=audit,
          summary=subscription.period_end.isoformat() if subscription.period_end else "")
    session.flush()


def undo_cancel(session: Session, actor: User, subscription: Subscription) -> None:
    _check_subscription(session, actor, subscription)
    claimed = session.execute(update(Subscription).where(Subscription.id == subscription.id,
                                                         Subscription.status == "cancel_scheduled")
                              .values(status="active").execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise DomainError(_l("Subscription %(number)s has no scheduled cancellation.", number=subscription.number))
    session.refresh(subscription)
    audit = record(session, actor, "cancel_undone", "subscription", [subscription.id], subscription.number)
    event(session, subscription, "cancel_undone", actor, audit=audit)
    session.flush()


SUSPEND_ROLES = {"sales"}


def suspend(session: Session, actor: User, subscription: Subscription, at: datetime) -> None:
    """Staff suspend an active or past-due subscription (left out of renewals until resumed)."""
    require_role(actor, SUSPEND_ROLES)
    claimed = session.execute(update(Subscription).where(
        Subscription.id == subscription.id, Subscription.status.in_(("active", "past_due")))
        .values(status="suspended").execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise DomainError(_l("Subscription %(number)s is not active.", number=subscription.number))
    session.refresh(subscription)
    audit = record(session, actor, "suspend", "subscription", [subscription.id], subscription.number)
    event(session, subscription, "settings", actor, audit=audit, summary=message("subscription.suspended"))
    session.flush()


def resume(session: Session, actor: User, subscription: Subscription) -> None:
    """A suspended subscription is active again (the renewal job then treats it as any other)."""
    require_role(actor, SUSPEND_ROLES)
    claimed = session.execute(update(Subscription).where(
        Subscription.id == subscription.id, Subscription.status == "suspended")
        .values(status="active").execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise DomainError(_l("Subscription %(number)s is not suspended.", number=subscription.number))
    session.refresh(subscription)
    audit = record(session, actor, "resume", "subscription", [subscription.id], subscription.number)
    event(session, subscription, "settings", actor, audit=audit, summary=message("subscription.resumed"))
    session.flush()


def abandon(session: Session, actor: User, subscription: Subscription) -> None:
    """A checkout whose order will not be paid: cancel the order, give back the promotions."""
    _check_subscription(session, actor, subscription)
    if subscription.status != "pending_payment":
        raise DomainError(_l("Subscription %(number)s is not awaiting payment.", number=subscription.number))
    for order in session.scalars(select(Order).join(SubscriptionOrder, SubscriptionOrder.order_id == Order.id).where(
            SubscriptionOrder.subscription_id == subscription.id, Order.status == "pending")):
        cancel_order(session, actor, order)
    _release_for_subscription(session, subscription)
    subscription.status = "abandoned"
    event(session, subscription, "abandoned", actor)
    session.flush()


def _release_for_subscription(session: Session, subscription: Subscription) -> None:
    order_ids = select(SubscriptionOrder.order_id).where(SubscriptionOrder.subscription_id == subscription.id)
    for reservation in session.scalars(select(PromotionReservation).where(
            PromotionReservation.status == "reserved", PromotionReservation.order_id.in_(order_ids))):
        _give_back(session, reservation)


def _cancel_by_job(session: Session, order: Order, now: datetime) -> None:
    """The scheduled job cancels an unpaid renewal order of an expired subscription (the core's
    cancel_order wants a person; this is the same conditional UPDATE, audited as the system)."""
    done = session.execute(update(Order).where(Order.id == order.id, Order.status == "pending",
                                               Order.payment_method.is_(None))  # not one whose cash awaits
                           .values(status="cancelled", cancelled_at=now)
                           .execution_options(synchronize_session=False)).rowcount
    session.expire(order)
    if done:
        record(session, None, "cancel", "order", [order.id], message("audit.subscription.expired_unpaid",
                                                                       order=order.number))


def pending_orders(session: Session, subscription: Subscription, purpose: str | None = None) -> list[Order]:
    """The subscription's orders awaiting payment (only those for `purpose` when given), oldest first."""
    query = select(Order).join(SubscriptionOrder, SubscriptionOrder.order_id == Order.id).where(
        SubscriptionOrder.subscription_id == subscription.id, Order.status == "pending")
    if purpose is not None:
        query = query.where(SubscriptionOrder.purpose == purpose)
    return list(session.scalars(query.order_by(Order.id)))


def _pending_renewals(session: Session, subscription: Subscription) -> list[Order]:
    return pending_orders(session, subscription, "renewal")


def request_cancel_now(session: Session, actor: User, subscription: Subscription, reason: str):
    """Cancel now with a refund of the current period's order: finance requests it, another person of
    finance approves it (the order core's refunds); approval ends the subscription (undo above)."""
    from actions.orders import request_refund

    _check_subscription(session, actor, subscription)
    if subscription.status not in ("active", "cancel_scheduled", "past_due"):
        raise DomainError(_l("Subscription %(number)s is not active.", number=subscription.number))
    order = current_period_order(session, subscription)
    if order is None:
        raise DomainError(_l("Subscription %(number)s has no paid order for its current period.",
                             number=subscription.number))
    refund = request_refund(session, actor, order, None, (reason or "").strip() or "cancel now")
    audit = record(session, actor, "cancel_now_requested", "subscription", [subscription.id],
                   message("audit.subscription.cancel_now", number=subscription.number, refund=refund.id,
                           order=order.number))
    event(session, subscription, "cancel_scheduled", actor, order=order, audit=audit,
          summary=message("subscription.cancel_now", id=refund.id))
    session.flush()
    return refund


def current_period_order(session: Session, subscription: Subscription, before: Order | None = None) -> Order | None:
    """The paid order that paid for the current period (the latest paid one, older than `before`)."""
    query = select(Order).join(SubscriptionOrder, SubscriptionOrder.order_id == Order.id).where(
        SubscriptionOrder.subscription_id == subscription.id, Order.status == "paid")
    if before is not None:
        query = query.where(Order.id < before.id)
    return session.scalar(query.order_by(Order.id.desc()))


# --- upgrade and downgrade ----------------------------------------------------------------------------------

def _other_cycle(session: Session, subscription: Subscription, cycle_id) -> PlanCycle:
    cycle = session.get(PlanCycle, cycle_id) if isinstance(cycle_id, int) else None
    if cycle is None or not cycle.active or not cycle.plan.active or cycle.plan.service_id != subscription.service_id:
        raise DomainError(_l("Billing cycle: this plan is not offered in that cycle."))
    if cycle.id == subscription.cycle_id:
        raise DomainError(_l("Plan: the subscription is on this plan and cycle already."))
    return cycle


def unused_credit(session: Session, subscription: Subscription, today: date, upgrade: Order | None = None) -> Decimal:
    """What the unused days of the current period are worth: the net actually paid for it (after every
    promotion) × unused days / days of the period, rounded half up."""
    order = current_period_order(session, subscription, before=upgrade)
    if order is None or subscription.period_start is None or subscription.period_end is None:
        return zero(subscription.currency)
    days = (subscription.period_end - subscription.period_start).days
    unused = max(0, min(days, (subscription.period_end - today).days))
    paid = order.total - order.refunded
    return round_money(paid * unused / days, order.currency) if days else zero(order.currency)


def _credit_unused_days(session: Session, subscription: Subscription, order: Order, today: date) -> None:
    from actions.wallets import credit, wallet_for

    amount = unused_credit(session, subscription, today, upgrade=order)
    if amount > 0:
        wallet = wallet_for(session, subscription.company_id, subscription.currency)
        credit(session, wallet, amount, "refund", f"subscription-upgrade-credit:{order.id}", None, order_id=order.id,
               memo=message("ledger.upgrade_credit", subscription=subscription.number))
        event(session, subscription, "upgraded", None, order=order,
              summary=message("subscription.upgrade_credit", amount=money_param(amount, subscription.currency)))


def upgrade_now(session: Session, actor: User, subscription: Subscription, cycle_id: int, today: date) -> Order:
    """Upgrade to a higher plan from today: an order for the new plan's cycle and the add-ons at catalog
    prices; paying it starts the new period and credits the unused days of the old one to the wallet."""
    _check_subscription(session, actor, subscription)
    if actor.role not in ("customer_admin", "sales", "admin"):
        raise DomainError(_l("Your role may not do this."))
    if subscription.status not in ("active", "cancel_scheduled"):
        raise DomainError(_l("Subscription %(number)s is not active.", number=subscription.number))
    cycle = _other_cycle(session, subscription, cycle_id)
    if cycle.plan.rank <= subscription.plan.rank:
        raise DomainError(_l("Plan: %(plan)s is not an upgrade of %(current)s; downgrades wait for the period end.",
                             plan=cycle.plan.name, current=subscription.plan.name))
    if session.scalar(select(SubscriptionOrder.id).join(Order, Order.id == SubscriptionOrder.order_id).where(
            SubscriptionOrder.subscription_id == subscription.id, SubscriptionOrder.purpose == "upgrade",
            Order.status == "pending")):
        raise DomainError(_l("Subscription %(number)s has an upgrade order awaiting payment already.",
                             number=subscription.number))
    currency = subscription.currency
    lines = [plan_line(subscription.service, cycle.plan, cycle.months, None)]
    gross = {"plan": cycle.price}
    for item in subscription.items:
        if item.active and item.add_on.active:
            key = f"add_on:{item.add_on_id}"
            lines.append(QuoteLine(key, item.add_on.name, item.add_on, None))
            gross[key] = add_on_gross(item.add_on, cycle.months)
    priced = price_order([Line(line.key, gross[line.key]) for line in lines], currency=currency)
    selection = Selection(cycle.id)
    result = Quote(subscription.company, subscription.service, cycle.plan, cycle, selection, tuple(lines), None,
                   priced, _digest(selection, priced))
    order = _open_subscription_order(session, actor, subscription, result, "upgrade", today, today)
    record(session, actor, "upgrade", "subscription", [subscription.id],
           message("audit.subscription.upgrade", number=subscription.number, old=subscription.plan.name,
                   new=cycle.plan.name, order=order.number))
    session.flush()
    return order


def schedule_downgrade(session: Session, actor: User, subscription: Subscription, cycle_id: int) -> None:
    """Move to a lower plan (or another cycle) from the next period; the renewal is priced on it."""
    _check_subscription(session, actor, subscription)
    if subscription.status not in ("active", "past_due"):
        raise DomainError(_l("Subscription %(number)s is not active.", number=subscription.number))
    cycle = _other_cycle(session, subscription, cycle_id)
    if cycle.plan.rank > subscription.plan.rank:
        raise DomainError(_l("Plan: %(plan)s is an upgrade; upgrade now instead.", plan=cycle.plan.name))
    if _pending_renewals(session, subscription):
        raise DomainError(_l("Subscription %(number)s already has its renewal order; change the plan after it "
                             "is paid or cancelled.", number=subscription.number))
    seats = len(seats_of(session, subscription))
    if seats > cycle.plan.seat_limit:
        raise DomainError(_l("Plan: %(plan)s has %(limit)s seats and %(used)s are taken; remove seats first.",
                             plan=cycle.plan.name, limit=cycle.plan.seat_limit, used=seats))
    subscription.next_plan_id, subscription.next_cycle_id = cycle.plan_id, cycle.id
    summary = message("audit.subscription.downgrade", number=subscription.number, old=subscription.plan.name,
                      new=cycle.plan.name, months=cycle.months, date=str(subscription.period_end))
    audit = record(session, actor, "downgrade", "subscription", [subscription.id], summary)
    session.flush()
    # The history says what changes and when ("Basic × 1 months from …"), not "Basic · 1".
    event(session, subscription, "downgrade_scheduled", actor, audit=audit, summary=summary)
    session.flush()


def undo_downgrade(session: Session, actor: User, subscription: Subscription) -> None:
    """Withdraw a plan change scheduled for the next period: the subscription renews on its plan and cycle."""
    _check_subscription(session, actor, subscription)
    claimed = session.execute(update(Subscription).where(
        Subscription.id == subscription.id, Subscription.next_cycle_id.is_not(None),
        Subscription.status.in_(("active", "past_due", "cancel_scheduled")))
        .values(next_plan_id=None, next_cycle_id=None).execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise DomainError(_l("Subscription %(number)s has no scheduled plan change.", number=subscription.number))
    session.refresh(subscription)
    summary = message("subscription.change_withdrawn", plan=subscription.plan.name, months=subscription.cycle.months)
    audit = record(session, actor, "edit", "subscription", [subscription.id], summary)
    event(session, subscription, "settings", actor, audit=audit, summary=summary)
    session.flush()


# --- renewal ------------------------------------------------------------------------------------------------

def renewal_quote(session: Session, subscription: Subscription) -> Quote:
    """The next cycle priced in advance: catalog (or locked) prices, promotions that have cycles left,
    a scheduled downgrade applied."""
    cycle = subscription.next_cycle or subscription.cycle
    plan, service = cycle.plan, cycle.plan.service
    currency = service.currency
    applied = [a for a in subscription.promotions if a.cycles_left is None or a.cycles_left > 0]
    by_scope = {(a.scope, a.add_on_id): a.promotion for a in applied}
    plan_price = cycle.price
    if subscription.price_locked and subscription.next_cycle_id is None:
        last = session.scalar(select(Order).join(SubscriptionOrder, SubscriptionOrder.order_id == Order.id).where(
            SubscriptionOrder.subscription_id == subscription.id, Order.status == "paid").order_by(Order.id.desc()))
        if last is not None and last.lines:
            plan_price = last.lines[0].gross
    lines = [plan_line(service, plan, cycle.months, by_scope.get(("plan", None)))]
    gross = {"plan": plan_price}
    for item in subscription.items:
        if item.active and item.add_on.active:
            key = f"add_on:{item.add_on_id}"
            lines.append(QuoteLine(key, item.add_on.name, item.add_on, by_scope.get(("add_on", item.add_on_id))))
            gross[key] = add_on_gross(item.add_on, cycle.months)
    invoice_promotion = by_scope.get(("invoice", None))
    priced = price_order([Line(line.key, gross[line.key], rule_of(line.promotion) if line.promotion else None)
                          for line in lines], rule_of(invoice_promotion) if invoice_promotion else None,
                         currency=currency)
    selection = Selection(cycle.id)
    return Quote(subscription.company, service, plan, cycle, selection, tuple(lines), invoice_promotion, priced,
                 _digest(selection, priced))


@dataclass
class BillingReport:
    renewal_orders: list[str] = field(default_factory=list)
    auto_paid: list[str] = field(default_factory=list)
    unpaid: list[str] = field(default_factory=list)
    past_due: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    released: int = 0


def run_billing(session: Session, today: date, now: datetime) -> BillingReport:
    """Renewal orders N days ahead, auto-renew from the wallet, past due, expiry, scheduled cancellations.
    Safe to repeat: one renewal order per subscription and period (a unique key)."""
    from actions.wallets import InsufficientBalance

    report = BillingReport(released=release_expired_reservations(session, now))
    due = session.scalars(select(Subscription).join(Service, Service.id == Subscription.service_id).where(
        Subscription.status.in_(("active", "past_due")), Subscription.period_end.is_not(None),
        Subscription.period_end <= today + timedelta(days=MAX_RENEWAL_DAYS_BEFORE))).all()
    for subscription in due:
        days = subscription.service.renewal_days_before
        if subscription.period_end - timedelta(days=days) > today:
            continue
        link = session.scalar(select(SubscriptionOrder).where(
            SubscriptionOrder.subscription_id == subscription.id, SubscriptionOrder.purpose == "renewal",
            SubscriptionOrder.period_start == subscription.period_end))
        if link is None:
            result = renewal_quote(session, subscription)
            order = _open_subscription_order(session, None, subscription, result, "renewal",
                                             subscription.period_end, today)
            for applied in subscription.promotions:
                if applied.cycles_left:
                    applied.cycles_left -= 1
            report.renewal_orders.append(order.number)
        else:
            order = link.order
        if (order.status == "pending" and subscription.auto_renew and subscription.renewal_method == "balance"
                and cash_awaiting_confirmation(session, order) is None):  # cash entered: finance confirms it
            try:
                with session.begin_nested():
                    pay_with_balance(session, None, order, today)
                report.auto_paid.append(order.number)
            except InsufficientBalance:
                report.unpaid.append(order.number)
    session.flush()
    for subscription in session.scalars(select(Subscription).where(
            Subscription.status == "active", Subscription.period_end <= today)):
        subscription.status = "past_due"
        subscription.grace_until = subscription.period_end + timedelta(days=subscription.service.grace_days)
        event(session, subscription, "past_due", None, summary=subscription.grace_until.isoformat())
        report.past_due.append(subscription.number)
    cash_awaited = select(SubscriptionOrder.id).join(Order, Order.id == SubscriptionOrder.order_id).where(
        SubscriptionOrder.subscription_id == Subscription.id, Order.status == "pending",
        Order.payment_method.is_not(None))  # sales holds the cash: it stays past due until finance confirms
    for subscription in session.scalars(select(Subscription).where(
            Subscription.status == "past_due", Subscription.grace_until <= today, ~cash_awaited.exists())):
        for order in _pending_renewals(session, subscription):
            _cancel_by_job(session, order, now)
        subscription.status = "expired"
        event(session, subscription, "expired", None)
        report.expired.append(subscription.number)
    for subscription in session.scalars(select(Subscription).where(
            Subscription.status == "cancel_scheduled", Subscription.period_end <= today)):
        subscription.status = "cancelled"
        subscription.cancelled_at = now
        event(session, subscription, "cancelled", None)
        report.cancelled.append(subscription.number)
    for subscription in session.scalars(select(Subscription).join(
            SubscriptionOrder, (SubscriptionOrder.subscription_id == Subscription.id)
            & (SubscriptionOrder.purpose == "start")).join(Order, Order.id == SubscriptionOrder.order_id).where(
            Subscription.status == "pending_payment", Order.status == "cancelled")):
        _release_for_subscription(session, subscription)
        subscription.status = "abandoned"
        event(session, subscription, "abandoned", None)
        report.abandoned.append(subscription.number)
    session.flush()
    return report


# --- promotions: lifecycle ----------------------------------------------------------------------------------

FROZEN_FIELDS = ("scope", "kind", "currency", "percent_hundredths", "amount_minor", "max_discount_minor",
                 "duration", "duration_cycles", "min_subtotal_minor")


def activate_promotion(session: Session, actor: User, promotion: Promotion) -> None:
    """Finance activates a draft (or paused) promotion someone else created."""
    require_role(actor, PROMOTION_ACTIVATE_ROLES)
    if promotion.created_by_id == actor.id:
        raise DomainError(_l("Promotion %(code)s: you created it; another person of finance must activate it.",
                             code=promotion.code))
    claimed = session.execute(update(Promotion).where(
        Promotion.id == promotion.id, Promotion.status.in_(("draft", "paused")),
        (Promotion.created_by_id.is_(None)) | (Promotion.created_by_id != actor.id))
        .values(status="active", activated_by_id=actor.id, activated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise DomainError(_l("Promotion %(code)s is not a draft or paused.", code=promotion.code))
    record(session, actor, "activate", "promotion", [promotion.id], promotion.code)
    session.flush()


def set_promotion_status(session: Session, actor: User, promotion: Promotion, status: str) -> None:
    """Pause (active → paused) or archive (any → archived)."""
    require_role(actor, PROMOTION_ACTIVATE_ROLES | PROMOTION_DRAFT_ROLES)
    allowed_from = {"paused": ("active",), "archived": ("draft", "active", "paused")}[status]
    claimed = session.execute(update(Promotion).where(Promotion.id == promotion.id,
                                                      Promotion.status.in_(allowed_from))
                              .values(status=status).execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise DomainError(_l("Promotion %(code)s cannot go from %(old)s to %(new)s.", code=promotion.code,
                             old=PROMOTION_STATUSES.get(promotion.status, promotion.status),
                             new=PROMOTION_STATUSES[status]))
    record(session, actor, status, "promotion", [promotion.id], promotion.code)
    session.flush()


def check_promotion_terms(promotion: Promotion) -> None:
    """A promotion's terms as typed: how many cycles a per-cycle discount lasts (none for other durations), a
    redemptions cap no lower than what is already redeemed or reserved, one plan, cycle or add-on per target."""
    if promotion.duration != "cycles":
        promotion.duration_cycles = None
    elif not promotion.duration_cycles:
        raise DomainError(_l("Cycles: enter how many billing cycles the discount lasts."))
    taken = (promotion.redeemed or 0) + (promotion.reserved or 0)
    if promotion.max_redemptions is not None and promotion.max_redemptions < taken:
        raise DomainError(_l("Redemptions cap: at least %(count)s (already redeemed or reserved).", count=taken))
    for target in promotion.targets:
        if sum(x is not None for x in (target.plan, target.cycle, target.add_on)) != 1:
            raise DomainError(_l("Applies only to: choose exactly one plan, cycle or add-on in each row."))


def check_promotion_edit(promotion: Promotion, changed: Sequence[str]) -> None:
    """Values are frozen once a promotion has been redeemed."""
    frozen = [name for name in changed if name in FROZEN_FIELDS]
    if promotion.redeemed and frozen:
        raise DomainError(_l("Promotion %(code)s has been redeemed; its values (%(fields)s) can no longer change.",
                             code=promotion.code, fields=", ".join(frozen)))



# --- demo data ----------------------------------------------------------------------------------------------

def seed_subscriptions(session: Session) -> dict:
    """The worked example's catalog (CNY) and promotions, a VND service (both ON) and a VND service sold in
    the OS flow (cash), for the demo and the tests.

    Promotions are drafted by the user `sales` and activated by `finance` when those exist.
    """
    from actions.money import to_minor as minor

    creator = session.scalar(select(User).where(User.username == "sales"))
    activator = session.scalar(select(User).where(User.username == "finance"))
    made: dict = {}
    office = Service(code="CLOUD-OFFICE", name="Cloud Office", currency="CNY", renewal_days_before=7, grace_days=7,
                     description="Văn phòng điện tử: email, lịch, lưu trữ. 云办公：邮箱、日历、存储。")
    meeting = Service(code="MEET-VN", name="Hội nghị truyền hình", currency="VND", renewal_days_before=7,
                      grace_days=5, description="Phòng họp trực tuyến cho doanh nghiệp.")
    # Seed 003's OS flow: the customer registers and pays cash to sales (no payment page).
    einvoice = Service(code="EINVOICE-VN", name="Hóa đơn điện tử", currency="VND", renewal_days_before=7,
                       grace_days=5, sales_flow="OS",
                       description="Phát hành và lưu trữ hóa đơn điện tử. Thanh toán tiền mặt (dịch vụ OS).")
    session.add_all([office, meeting, einvoice])
    session.flush()
    standard = ServicePlan(service_id=office.id, code="OFFICE-STD", name="Standard", seat_limit=20, rank=1)
    business = ServicePlan(service_id=office.id, code="OFFICE-BIZ", name="Business", seat_limit=100, rank=2)
    meet = ServicePlan(service_id=meeting.id, code="MEET-BASIC", name="Cơ bản", seat_limit=10, rank=1)
    einvoice_basic = ServicePlan(service_id=einvoice.id, code="EINV-BASIC", name="Cơ bản", seat_limit=5, rank=1)
    einvoice_pro = ServicePlan(service_id=einvoice.id, code="EINV-PRO", name="Nâng cao", seat_limit=20, rank=2)
    session.add_all([standard, business, meet, einvoice_basic, einvoice_pro])
    session.flush()
    cycles = {
        "std-1": PlanCycle(plan_id=standard.id, months=1, currency="CNY", price_minor=minor(Decimal("120.00"), "CNY")),
        "std-6": PlanCycle(plan_id=standard.id, months=6, currency="CNY", price_minor=minor(Decimal("650.00"), "CNY")),
        "std-12": PlanCycle(plan_id=standard.id, months=12, currency="CNY",
                            price_minor=minor(Decimal("1200.00"), "CNY")),
        "biz-12": PlanCycle(plan_id=business.id, months=12, currency="CNY",
                            price_minor=minor(Decimal("3600.00"), "CNY")),
        "meet-1": PlanCycle(plan_id=meet.id, months=1, currency="VND", price_minor=199000),
        "meet-12": PlanCycle(plan_id=meet.id, months=12, currency="VND", price_minor=1990000),
        # A plan of one cycle and a plan of several (the seed's "gói có 1 chu kì" / "nhiều chu kì").
        "einv-basic-12": PlanCycle(plan_id=einvoice_basic.id, months=12, currency="VND", price_minor=990000),
        "einv-pro-12": PlanCycle(plan_id=einvoice_pro.id, months=12, currency="VND", price_minor=2400000),
        "einv-pro-24": PlanCycle(plan_id=einvoice_pro.id, months=24, currency="VND", price_minor=4320000),
    }
    add_ons = {
        "storage": PlanAddOn(service_id=office.id, code="OFFICE-STORAGE", name="Extra storage 1 TB", currency="CNY",
                             price_minor=minor(Decimal("360.00"), "CNY"), months=12),
        "archive": PlanAddOn(service_id=office.id, code="OFFICE-ARCHIVE", name="Mail archiving", currency="CNY",
                             price_minor=minor(Decimal("499.00"), "CNY"), months=12),
        "record": PlanAddOn(service_id=meeting.id, code="MEET-RECORD", name="Ghi hình cuộc họp", currency="VND",
                            price_minor=600000, months=12),
    }
    session.add_all([*cycles.values(), *add_ons.values()])
    session.add_all([
        TermsVersion(service_id=office.id, version="2026.1",
                     body="Điều khoản đăng ký dịch vụ Cloud Office. Terms of the Cloud Office subscription."),
        TermsVersion(service_id=meeting.id, version="2026.1", body="Điều khoản đăng ký dịch vụ hội nghị truyền hình."),
        TermsVersion(service_id=einvoice.id, version="2026.1",
                     body="Điều khoản đăng ký dịch vụ hóa đơn điện tử. Thanh toán tiền mặt cho nhân viên kinh doanh; "
                          "thuê bao bắt đầu khi kế toán xác nhận."),
    ])
    session.flush()
    status = "active" if creator is not None and activator is not None else "draft"

    def promotion(code, name, scope, kind, currency, *, percent=None, amount=None, targets=(), **extra):
        row = Promotion(code=code, name=name, scope=scope, kind=kind, currency=currency,
                        percent_hundredths=int(Decimal(percent) * 100) if percent is not None else None,
                        amount_minor=minor(Decimal(amount), currency) if amount is not None else None,
                        status=status, created_by_id=creator.id if creator else None,
                        activated_by_id=activator.id if activator and status == "active" else None,
                        activated_at=utcnow() if status == "active" else None, **extra)
        row.targets = [PromotionTarget(**target) for target in targets]
        session.add(row)
        return row

    promotions = {
        "plan15": promotion("PLAN15", "Khuyến mại gói 15%", "plan", "percent", "CNY", percent="15",
                            targets=[{"plan_id": standard.id}, {"plan_id": business.id}], duration="once"),
        "storage50": promotion("STORAGE50", "Giảm 50 tệ dung lượng", "add_on", "fixed", "CNY", amount="50.00",
                               targets=[{"add_on_id": add_ons["storage"].id}], duration="forever"),
        "archive125": promotion("ARCHIVE125", "Lưu trữ thư giảm 12,5%", "add_on", "percent", "CNY", percent="12.5",
                                targets=[{"add_on_id": add_ons["archive"].id}], duration="cycles",
                                duration_cycles=2),
        "invoice7": promotion("INVOICE7", "Giảm 7% tổng hóa đơn", "invoice", "percent", "CNY", percent="7",
                              max_redemptions=100, duration="once"),
        "meet10": promotion("MEET10", "Giảm 10% gói họp", "plan", "percent", "VND", percent="10",
                            max_discount_minor=150000, targets=[{"plan_id": meet.id}], first_subscription_only=True),
    }
    session.flush()
    made.update(services={"office": office, "meeting": meeting, "einvoice": einvoice},
                plans={"standard": standard, "business": business, "meet": meet, "einvoice_basic": einvoice_basic,
                       "einvoice_pro": einvoice_pro},
                cycles=cycles, add_ons=add_ons, promotions=promotions)
    return made


# --- the subscription list's search -------------------------------------------------------------------

SEARCH_MAX = 40  # characters of a search term that count (a number is at most 40)
_FEW = 500  # matches looked up once, by id


def search_clause(session: Session, text: str):
    """Subscriptions whose number starts with the term, in any case; when none does, those containing it.

    What users type is a whole number (SUB0001234) or its first characters: looked up as a range of
    the unique index on `number` ([TERM, TERM with its last character the next one), numbers being
    stored in capitals; the LIKE keeps the range exact in any collation), at any size of the list. A
    part from the middle (the digits 1234) has no index: only when no number starts with it is the
    table read for it, once. The ids found are used for the page and its count alike. Spaces typed
    inside a number are ignored; `%` and `_` match themselves. None for an empty term.
    """
    term = "".join((text or "").split())[:SEARCH_MAX]
    if not term:
        return None

    def escaped(value: str) -> str:
        return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    number = Subscription.number
    upper = term.upper()
    after = ord(upper[-1]) + 1
    after += 0x800 if 0xD800 <= after <= 0xDFFF else 0  # no surrogate: the next character that can be stored
    starting = and_(number >= upper, number.like(escaped(upper) + "%", escape="\\"))
    if after <= 0x10FFFF:  # else nothing sorts after the term's last character: no upper bound
        starting = and_(starting, number < upper[:-1] + chr(after))
    found = session.scalars(select(Subscription.id).where(starting).limit(_FEW + 1)).all()
    if not found:
        starting = number.ilike("%" + escaped(term) + "%", escape="\\")
        found = session.scalars(select(Subscription.id).where(starting).limit(_FEW + 1)).all()
    return Subscription.id.in_(found) if len(found) <= _FEW else starting
