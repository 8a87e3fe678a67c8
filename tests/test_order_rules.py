"""Order rules that cut across areas: stale orders awaiting a transfer, what a refund can undo."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from actions import DomainError
from actions.orders import cancel_stale_orders, request_refund
from models import BankTransferReceipt, Order, db, utcnow


def _order(world, kind="renewal", status="pending", method=None, hours_old=48) -> Order:
    order = Order(number=f"T-{kind}-{status}-{hours_old}", kind=kind, status=status, company_id=world.acme.id,
                  currency="CNY", total=Decimal("10.00"), payment_method=method,
                  created_at=utcnow() - timedelta(hours=hours_old))
    db.session.add(order)
    db.session.flush()
    return order


def test_a_stale_order_whose_transfer_awaits_finance_is_not_cancelled(app, world):
    waiting = _order(world, kind="coins")
    forgotten = _order(world, kind="coins", hours_old=49)
    db.session.add(BankTransferReceipt(order_id=waiting.id, payer_company="Acme", payer_account="6222",
                                       amount=Decimal("10.00"), file_name="r.pdf", content_type="application/pdf",
                                       file_sha256="0" * 64, file_size=10))
    db.session.commit()
    assert cancel_stale_orders(db.session, timedelta(hours=24), utcnow()) == 1
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Order, waiting.id).status == "pending"
    assert db.session.get(Order, forgotten.id).status == "cancelled"


@pytest.mark.parametrize("kind", ["value_added"])  # every kind registers today: one is unregistered here
def test_refund_refuses_orders_of_kinds_that_registered_nothing(app, world, kind, monkeypatch):
    import actions.orders

    monkeypatch.delitem(actions.orders._KINDS, kind)
    order = _order(world, kind=kind, status="paid", method="balance")
    db.session.commit()
    with pytest.raises(DomainError, match="nothing is registered"):
        request_refund(db.session, world.users["finance"], order)
    db.session.rollback()
    assert db.session.get(Order, order.id).status == "paid"
