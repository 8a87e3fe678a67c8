"""Demo activity: what a week of work leaves behind, so that each role's home and queues have something in them.

Everything is made through the same actions the pages call (sales draft and submit offline recharges,
finance approves one, the customer renews devices and pays from the balance, asks for an invoice), so
the demo's balances, ledger, orders and audit trail agree exactly as real ones do.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.invoices import request_invoice, save_invoice_title
from actions.offline_recharge import create_application, review
from actions.orders import create_renewal_order, pay_with_balance, quote_renewal
from actions.seats import create_seat_order, grant_seats
from actions.subscriptions import (
    CheckoutDetails, Selection, checkout_defaults, confirm, confirm_cash_receipt, current_terms, enter_cash_receipt,
    new_checkout_key, reserve,
)
from actions.tenants import credit_code_check_char
from actions.value_added import create_service_order, quote_services
from models import Company, Device, Package, PlanCycle, ServicePlan, Subscription, User

ACME_TAX_BODY = "91440300MA5DEMX01"  # 17 characters; the 18th is its check character


def _user(session: Session, username: str) -> User:
    return session.scalar(select(User).where(User.username == username))


def _renewable(session: Session, company: Company, count: int, offset: int = 0) -> list[Device]:
    """Active devices of `company` itself with an active CNY renewal package bound, soonest expiry first."""
    return list(session.scalars(
        select(Device).join(Package, Package.id == Device.package_id)
        .where(Device.company_id == company.id, Device.status == "active", Package.active.is_(True),
               Package.currency == "CNY")
        .order_by(Device.expires_on, Device.id).offset(offset).limit(count)
    ))


def seed_activity(session: Session, companies: dict[str, Company], today: date) -> dict:
    """Recharges (approved, waiting for review, draft), a paid and a pending renewal, SMS alerts bought for
    three devices (增值订单), an invoice request, seats granted and bought (账号增加)."""
    sales, finance, customer = (_user(session, name) for name in ("sales", "finance", "customer"))
    acme, globex = companies["Acme Logistics"], companies["Globex Trading"]

    approved = create_application(session, sales, acme.id, "Acme Logistics Co., Ltd.", "CNY", "20,000.00",
                                  "DEMO-2026-0001", submit=True)
    review(session, finance, approved, "approve")
    create_application(session, sales, globex.id, "Globex Trading Ltd.", "USD", "500.00", "DEMO-2026-0002",
                       submit=True)
    create_application(session, sales, acme.id, "Acme North Co., Ltd.", "CNY", "3,000.00", "DEMO-2026-0003")

    made = {}
    to_renew, to_quote = _renewable(session, acme, 5), _renewable(session, acme, 2, offset=5)
    if to_renew and to_quote:  # a tiny demo (a few devices) has no orders
        paid = create_renewal_order(session, customer, quote_renewal(session, customer, acme, to_renew, 12, today))
        pay_with_balance(session, customer, paid, today)
        pending = create_renewal_order(session, customer, quote_renewal(session, customer, acme, to_quote, 3, today))
        save_invoice_title(session, customer, acme, "ordinary", title="Acme Logistics Co., Ltd.",
                           tax_id=ACME_TAX_BODY + credit_code_check_char(ACME_TAX_BODY))
        request_invoice(session, customer, acme, [paid], "electronic_ordinary", email="billing@acme.example")
        sms = session.scalar(select(Package).where(Package.code == "VAS-SMS"))
        services = create_service_order(session, customer, quote_services(session, customer, acme, to_renew[:3],
                                                                          sms, 12, today))
        pay_with_balance(session, customer, services, today)
        # 账号增加 (seed 004 §6): sales grants standard seats paid in cash (they never expire); the customer
        # buys basic seats, which last a 12-month term, and pays them from the balance.
        grant_seats(session, sales, acme, "standard", 3, "Demo: paid in cash at the office", today)
        seats = create_seat_order(session, customer, acme, "basic", 2)
        pay_with_balance(session, customer, seats, today)
        made = {"paid_order": paid.number, "pending_order": pending.number, "value_added_order": services.number,
                "seat_order": seats.number}
    made.update(_subscriptions(session, companies, customer, sales, finance, today))
    session.flush()
    return made


def _subscriptions(session: Session, companies: dict[str, Company], customer: User, sales: User, finance: User,
                   today: date) -> dict:
    """Seed 003's OS flow, twice, on the subsidiaries (Acme Logistics itself keeps its first subscription for
    the worked example and MEET10): Acme North's e-invoice subscription, paid in cash and confirmed by finance,
    is active; Acme South's waits for its cash (sales' "Awaiting cash")."""
    tax_id = ACME_TAX_BODY + credit_code_check_char(ACME_TAX_BODY)

    def register(company: Company, plan_code: str) -> Subscription | None:
        cycle = session.scalar(select(PlanCycle).join(ServicePlan, ServicePlan.id == PlanCycle.plan_id)
                               .where(ServicePlan.code == plan_code).order_by(PlanCycle.months))
        if cycle is None:
            return None
        selection, key, now = Selection(cycle.id), new_checkout_key(), datetime.now(timezone.utc)
        quote = reserve(session, customer, company, selection, key, now)
        defaults = checkout_defaults(session, companies["Acme Logistics"], customer, quote.service)
        details = CheckoutDetails(
            invoice_title=f"{company.name} Co., Ltd.", invoice_tax_id=tax_id,
            invoice_email="billing@acme.example", contact_name=defaults["contact_name"] or "Li Wei",
            contact_phone=defaults["contact_phone"] or "+86 21 5555 0100",
            contact_email=defaults["contact_email"] or "ops@acme.example",
            terms_version_id=current_terms(session, quote.service).id, accepted_terms=True, pay_method="cash")
        return confirm(session, customer, company, selection, key, quote.digest, details, now, today)

    made = {}
    north, south = companies.get("Acme North"), companies.get("Acme South")
    if north is not None and (active := register(north, "EINV-BASIC")) is not None:
        receipt = enter_cash_receipt(session, sales, active, today, "DEMO-CASH-0001")
        confirm_cash_receipt(session, finance, receipt, today)
        made["active_subscription"] = active.number
    if south is not None and (waiting := register(south, "EINV-PRO")) is not None:
        made["awaiting_cash_subscription"] = waiting.number
    return made
