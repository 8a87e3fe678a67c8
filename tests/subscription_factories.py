"""Rows of the subscriptions area for tests: the demo catalog and a subscription of another tenant."""
from __future__ import annotations

from actions.subscriptions import seed_subscriptions
from models import Subscription, db


def add_foreign_subscription(company) -> Subscription:
    """The catalog, and a pending subscription of `company` (the world's other tenant) for the scope tests."""
    made = seed_subscriptions(db.session)
    cycle = made["cycles"]["std-12"]
    row = Subscription(number="SUB-GLOBEX-0001", company_id=company.id, service_id=made["services"]["office"].id,
                       plan_id=cycle.plan_id, cycle_id=cycle.id, currency="CNY", status="pending_payment",
                       checkout_key="0" * 32, contact_name="Globex Contact")
    db.session.add(row)
    db.session.flush()
    return row
