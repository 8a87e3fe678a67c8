"""线下充值: sales file offline-recharge applications, finance reviews them.

draft → submitted → approved | rejected (驳回: back to sales to edit and resubmit) | declined
(不通过: final). An application is editable until it is reviewed: by sales while it is a draft,
submitted or rejected, by finance while it is submitted (未审核前 支持修改审核内容).

Every status change is one conditional UPDATE (`… WHERE status = 'submitted'`) checked by
rowcount, so two finance users approving at the same moment credit the wallet once; the
second is told it was already reviewed. Edits are conditional too, so an edit racing an
approval can never change the amount of an approved application. On approval the amount is
taken from the row the UPDATE claimed (RETURNING), and the credit carries the idempotency
key `offline_recharge:<id>`, in the same transaction. The same transaction writes a paid recharge
`Order` (payment method "offline", paid at the approval) linked to the application (its unique
`order_id`) and to the ledger entry: the customer's 充值记录 and finance's 订单管理 list it.

A reference number (编号, e.g. the bank transfer's) is optional; when given it must be unique
within the company among applications that are not declined: the same transfer filed twice
would be credited twice, and a declined application's reference may be filed again.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from actions import ActionResult, DomainError, in_scope, require_role
from actions.audit import record
from actions.money import format_amount, from_minor, parse, to_minor
from actions.orders import record_paid_recharge
from actions.text_input import text_block, text_problem
from actions.texts import change, changes_param, label_param, message, money_param
from actions.unique import unique_or
from actions.wallets import credit, wallet_for
from models import CURRENCIES, RECHARGE_STATUSES, Company, OfflineRecharge, User, utcnow

AUDIT_MODEL = "offline_recharge"
SALES_ROLES = frozenset({"sales"})
FINANCE_ROLES = frozenset({"finance"})
# Who may edit an application in which statuses (admins may whatever either may).
EDITABLE_BY = {
    "sales": ("draft", "submitted", "rejected"),
    "finance": ("submitted",),
    "admin": ("draft", "submitted", "rejected"),
}
SUBMITTABLE = ("draft", "rejected")
REVIEWED = ("approved", "rejected", "declined")
DECISIONS = {"approve": "approved", "reject": "rejected", "decline": "declined"}
MAX_PAYER = 200
MAX_REFERENCE = 100
MAX_COMMENT = 2000


class AlreadyReviewed(DomainError):
    """Somebody reviewed the application first."""


@dataclass(frozen=True)
class RechargeTerms:
    """What an application asks for: who pays how much into which company's wallet."""

    company_id: int
    payer: str
    currency: str
    amount: Decimal
    reference: str = ""

    @property
    def amount_minor(self) -> int:
        return to_minor(self.amount, self.currency)


def _label(application: OfflineRecharge) -> str:
    return f"#{application.id}"


def _status_label(status: str | None) -> str:
    return str(RECHARGE_STATUSES.get(status, status))


def clean_terms(session: Session, actor: User, company_id, payer, currency, amount, reference="") -> RechargeTerms:
    """Validate the fields of an application; one DomainError names every field at fault."""
    problems: list[str] = []
    company = None
    try:
        company = session.get(Company, int(company_id)) if company_id not in (None, "") else None
    except (TypeError, ValueError):
        company = None
    if company_id in (None, ""):
        problems.append(str(_l("Customer company: choose one.")))
    elif company is None:
        problems.append(str(_l("Customer company: #%(id)s does not exist.", id=str(company_id)[:20])))
    elif not in_scope(actor, company.id, session):
        problems.append(str(_l("Customer company: %(name)s is outside your companies.", name=company.name)))
    payer = (payer or "").strip()
    if not payer:
        problems.append(str(_l("Payer: required.")))
    elif (problem := text_problem(payer, MAX_PAYER)) is not None:
        problems.append(str(_l("%(field)s: %(problem)s", field=_l("Payer"), problem=problem)))
    currency = (currency or "").strip().upper()
    if currency not in CURRENCIES:
        problems.append(str(_l("Currency: choose one of %(choices)s.", choices=", ".join(CURRENCIES))))
    try:
        amount = parse(amount, currency if currency in CURRENCIES else "CNY", str(_l("Amount")))
    except DomainError as exc:
        problems.append(str(exc))
    reference = (reference or "").strip()
    if (problem := text_problem(reference, MAX_REFERENCE)) is not None:
        problems.append(str(_l("%(field)s: %(problem)s", field=_l("Reference number"), problem=problem)))
    if problems:
        raise DomainError(" ".join(problems))
    return RechargeTerms(company.id, payer, currency, amount, reference)


REFERENCE_INDEX = "uq_offline_recharge_company_reference"


def _check_reference(session: Session, terms: RechargeTerms, own_id: int | None = None) -> None:
    """Refuse a reference number already filed for the company (declined applications aside)."""
    if not terms.reference:
        return
    query = select(OfflineRecharge.id).where(
        OfflineRecharge.company_id == terms.company_id,
        OfflineRecharge.reference == terms.reference,
        OfflineRecharge.status != "declined",
    )
    if own_id is not None:
        query = query.where(OfflineRecharge.id != own_id)
    other = session.scalar(query.order_by(OfflineRecharge.id).limit(1))
    if other is not None:
        raise DomainError(_l("Reference number: %(reference)s is already used by application #%(other)s "
                             "of the same company.", reference=terms.reference, other=other))


def _reference_taken(terms: RechargeTerms) -> DomainError:
    """The refusal when the unique index finds the reference filed meanwhile (a concurrent request)."""
    return DomainError(_l("Reference number: %(reference)s is already used by another application of the same "
                          "company; nothing was saved.", reference=terms.reference))


FIELD_LABELS = {"company_id": _l("Customer company"), "payer": _l("Payer"), "currency": _l("Currency"),
                "amount": _l("Amount"), "reference": _l("Reference number")}


def _company_name(session: Session, company_id: int) -> str:
    company = session.get(Company, company_id)
    return company.name if company is not None else f"#{company_id}"


def _summary(session: Session, key: str, application_id: int, status: str, terms: RechargeTerms, **extra) -> dict:
    """The audit summary of an application (a stored message: read in the reader's language)."""
    return message(key, id=application_id, status=label_param("recharge_status", status),
                   amount=money_param(terms.amount, terms.currency), payer=terms.payer,
                   company=_company_name(session, terms.company_id), **extra)


def create_application(session: Session, actor: User, company_id, payer, currency, amount, reference="",
                       submit: bool = False) -> OfflineRecharge:
    """Sales file an application, saved as a draft or submitted for review at once."""
    require_role(actor, SALES_ROLES)
    terms = clean_terms(session, actor, company_id, payer, currency, amount, reference)
    _check_reference(session, terms)
    now = utcnow()
    application = OfflineRecharge(
        company_id=terms.company_id, payer=terms.payer, currency=terms.currency, amount=terms.amount,
        reference=terms.reference, status="submitted" if submit else "draft", created_by_id=actor.id,
        created_at=now, submitted_at=now if submit else None,
    )
    session.add(application)
    with unique_or(REFERENCE_INDEX, _reference_taken(terms)):
        session.flush()
    record(session, actor, "create", AUDIT_MODEL, [application.id],
           _summary(session, "audit.recharge.create", application.id, application.status, terms))
    session.flush()
    return application


def _check_editable(application: OfflineRecharge, allowed: Sequence[str]) -> None:
    """Refuse, naming the application, an edit the actor may not make in its current status."""
    status = application.status
    if status in allowed:
        return
    if status in ("approved", "declined"):
        raise DomainError(_l("Application %(label)s is %(status)s: it can no longer be edited.",
                             label=_label(application), status=_status_label(status)))
    raise DomainError(_l("Application %(label)s is %(status)s: your role may not edit it now.",
                         label=_label(application), status=_status_label(status)))


def edit_application(session: Session, actor: User, application: OfflineRecharge, company_id, payer, currency,
                     amount, reference="") -> OfflineRecharge:
    """Change an application that is not reviewed yet (sales: draft, submitted, rejected; finance: submitted)."""
    require_role(actor, SALES_ROLES | FINANCE_ROLES)
    if not in_scope(actor, application.company_id, session):
        raise DomainError(_l("Application %(label)s is outside your companies.", label=_label(application)))
    allowed = EDITABLE_BY.get(actor.role, ())
    _check_editable(application, allowed)
    terms = clean_terms(session, actor, company_id, payer, currency, amount, reference)
    _check_reference(session, terms, own_id=application.id)
    before = {name: getattr(application, name) for name in ("company_id", "payer", "currency", "amount", "reference")}
    with unique_or(REFERENCE_INDEX, _reference_taken(terms)):
        result = session.execute(
            update(OfflineRecharge)
            .where(OfflineRecharge.id == application.id, OfflineRecharge.status.in_(allowed))
            .values(company_id=terms.company_id, payer=terms.payer, currency=terms.currency, amount_minor=terms.amount_minor,
                    reference=terms.reference)
            .execution_options(synchronize_session=False)
        )
    session.expire(application)
    if result.rowcount != 1:  # reviewed meanwhile
        _check_editable(application, allowed)
        raise DomainError(_l("Application %(label)s changed meanwhile; try again.", label=_label(application)))
    after = {"company_id": terms.company_id, "payer": terms.payer, "currency": terms.currency,
             "amount": terms.amount, "reference": terms.reference}
    def shown(name: str, values: dict):
        if name == "company_id":
            return _company_name(session, values[name])
        return format_amount(values[name], values["currency"]) if name == "amount" else values[name]

    changes = [change(name, FIELD_LABELS[name], shown(name, before), shown(name, after))
               for name in after if before[name] != after[name]]
    record(session, actor, "edit", AUDIT_MODEL, [application.id],
           message("audit.recharge.edit", id=application.id, changes=changes_param(changes)))
    session.flush()
    return application


def submit(session: Session, actor: User, application: OfflineRecharge) -> None:
    """Send a draft or a rejected application to finance for review."""
    require_role(actor, SALES_ROLES)
    if not in_scope(actor, application.company_id, session):
        raise DomainError(_l("Application %(label)s is outside your companies.", label=_label(application)))
    label = _label(application)
    if application.status not in SUBMITTABLE:
        raise DomainError(_l("Application %(label)s cannot be submitted: it is %(status)s.",
                             label=label, status=_status_label(application.status)))
    _check_reference(session, RechargeTerms(application.company_id, application.payer, application.currency,
                                            application.amount, application.reference), own_id=application.id)
    result = session.execute(
        update(OfflineRecharge)
        .where(OfflineRecharge.id == application.id, OfflineRecharge.status.in_(SUBMITTABLE))
        .values(status="submitted", submitted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.expire(application)
    if result.rowcount != 1:
        raise DomainError(_l("Application %(label)s cannot be submitted: it is %(status)s.",
                             label=label, status=_status_label(application.status)))
    record(session, actor, "submit", AUDIT_MODEL, [application.id],
           message("audit.recharge.submit", id=application.id,
                   amount=money_param(application.amount, application.currency), payer=application.payer))
    session.flush()


def submit_applications(session: Session, actor: User, applications: Sequence[OfflineRecharge]) -> ActionResult:
    """Submit each application that can be; report the others by number and reason."""
    require_role(actor, SALES_ROLES)
    changed, refused = [], []
    for application in applications:
        try:
            submit(session, actor, application)
        except DomainError as exc:  # refused before anything was written for this row
            refused.append((_label(application), str(exc)))
        else:
            changed.append(_label(application))
    return ActionResult(tuple(changed), tuple(refused))


def _credit_approved(session: Session, actor: User, application_id: int, terms: RechargeTerms,
                     reviewed_at) -> None:
    """The approval's money: a paid recharge order (payment method "offline", paid at the approval; the
    customer's 充值记录 and finance's 订单管理 list it) and the wallet's credit, linked to both. The credit's key
    `offline_recharge:<id>` and the application's unique order_id make it once, whatever is retried."""
    memo = message("ledger.offline_recharge_ref" if terms.reference else "ledger.offline_recharge",
                   id=application_id, payer=terms.payer, **({"reference": terms.reference} if terms.reference else {}))
    order = record_paid_recharge(session, actor, company_id=terms.company_id, currency=terms.currency,
                                 amount=terms.amount, method="offline", paid_at=reviewed_at, note=memo)
    linked = session.execute(
        update(OfflineRecharge)
        .where(OfflineRecharge.id == application_id, OfflineRecharge.status == "approved",
               OfflineRecharge.order_id.is_(None))
        .values(order_id=order.id)
        .execution_options(synchronize_session=False)
    )
    if linked.rowcount != 1:
        raise AlreadyReviewed(_l("Application %(label)s was already credited.", label=f"#{application_id}"))
    wallet = wallet_for(session, terms.company_id, terms.currency)
    credit(session, wallet, terms.amount, "offline_recharge", f"offline_recharge:{application_id}", actor,
           order_id=order.id, recharge_id=application_id, memo=memo)


def review(session: Session, actor: User, application: OfflineRecharge, decision: str, comment: str = "",
           expected: RechargeTerms | None = None) -> OfflineRecharge:
    """Finance approve (credits the wallet once), reject (back to sales) or decline (final) a submitted application.

    `expected` is what the reviewer saw: if the application was edited since, nothing happens.
    """
    require_role(actor, FINANCE_ROLES)
    label = _label(application)
    if not in_scope(actor, application.company_id, session):
        raise DomainError(_l("Application %(label)s is outside your companies.", label=label))
    if decision not in DECISIONS:
        raise DomainError(_l("Decision: choose approve, reject or decline."))
    comment = text_block(comment, _l("Review comment"), MAX_COMMENT)
    if decision != "approve" and not comment:
        raise DomainError(_l("Review comment: required to reject or decline application %(label)s.", label=label))
    status = DECISIONS[decision]
    reviewed_at = utcnow()
    conditions = [OfflineRecharge.id == application.id, OfflineRecharge.status == "submitted"]
    if expected is not None:
        conditions += [
            OfflineRecharge.company_id == expected.company_id, OfflineRecharge.payer == expected.payer,
            OfflineRecharge.currency == expected.currency, OfflineRecharge.amount_minor == expected.amount_minor,
            OfflineRecharge.reference == expected.reference,
        ]
    claimed = session.execute(
        update(OfflineRecharge).where(*conditions)
        .values(status=status, reviewed_by_id=actor.id, reviewed_at=reviewed_at, review_comment=comment)
        .returning(OfflineRecharge.company_id, OfflineRecharge.currency, OfflineRecharge.amount_minor,
                   OfflineRecharge.payer, OfflineRecharge.reference)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    session.expire(application)
    if claimed is None:
        current = session.execute(
            select(OfflineRecharge.status, OfflineRecharge.reviewed_by_id).where(OfflineRecharge.id == application.id)
        ).one_or_none()
        if current is not None and current.status in REVIEWED and current.reviewed_by_id is not None:
            reviewer = session.get(User, current.reviewed_by_id)
            raise AlreadyReviewed(_l("Application %(label)s was already reviewed: %(status)s by %(reviewer)s.",
                                     label=label, status=_status_label(current.status),
                                     reviewer=reviewer.username if reviewer else "?"))
        if current is not None and current.status == "submitted":
            raise DomainError(_l("Application %(label)s was changed while you were reviewing it; "
                                 "check it again.", label=label))
        raise DomainError(_l("Application %(label)s is not waiting for review: it is %(status)s.",
                             label=label, status=_status_label(current.status if current else None)))
    company_id, currency, amount_minor, payer, reference = claimed
    amount = from_minor(amount_minor, currency)
    terms = RechargeTerms(company_id, payer, currency, amount, reference)
    summary = (_summary(session, "audit.recharge.review_comment", application.id, status, terms, comment=comment)
               if comment else _summary(session, "audit.recharge.review", application.id, status, terms))
    if decision == "approve":
        _credit_approved(session, actor, application.id, terms, reviewed_at)
    record(session, actor, decision, AUDIT_MODEL, [application.id], summary)
    session.flush()
    return application
