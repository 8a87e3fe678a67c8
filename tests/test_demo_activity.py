"""The demo world's activity is made through the actions: balances agree with the ledger, and each
role's queue has something in it on a fresh `make run`."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from actions import subscriptions as subs
from actions.demo import seed_demo
from actions.wallets import balance_of, ledger_differences
from actions.orders import add_months
from models import (CashReceipt, Company, DeviceService, InvoiceRequest, LedgerEntry, OfflineRecharge, Order,
                    OrderLine, Subscription, db)
from tests.conftest import FAST_HASH


def test_demo_activity_leaves_work_in_each_queue(app):
    with app.app_context():
        made = seed_demo(db.session, devices=300, method=FAST_HASH)
        db.session.commit()
        statuses = dict(db.session.execute(
            select(OfflineRecharge.status, func.count()).group_by(OfflineRecharge.status)).all())
        assert statuses == {"approved": 1, "submitted": 1, "draft": 1}
        orders = db.session.execute(select(Order.number, Order.kind, Order.status)
                                    .where(Order.kind == "renewal").order_by(Order.id)).all()
        assert [(o.kind, o.status) for o in orders] == [("renewal", "paid"), ("renewal", "pending")]
        assert made["devices"] == 300
        acme = db.session.scalar(select(Company).where(Company.name == "Acme Logistics"))
        paid = db.session.scalar(select(Order).where(Order.number == orders[0].number))
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)
                                 .where(LedgerEntry.order_id == paid.id)) == 1
        assert ledger_differences(db.session) == []
        assert db.session.scalar(select(InvoiceRequest.status)) == "requested"
        assert all(line.new_expires_on > date.today() for line in paid.lines)
        services = db.session.scalar(select(Order).where(Order.kind == "value_added"))
        assert services.status == "paid" and len(services.lines) == 3
        assert db.session.scalar(select(func.count()).select_from(DeviceService)) == 3
        seats = db.session.scalar(select(Order).where(Order.kind == "seats", Order.created_by_id.is_not(None),
                                                      Order.payment_method == "balance"))
        assert seats.status == "paid" and seats.total == 200
        assert balance_of(db.session, acme.id, "CNY") == 20_000 - paid.total - services.total - seats.total
        # 订单到期时间: the basic seats bought last 12 months; the standard ones granted never expire.
        expiries = dict(db.session.execute(select(OrderLine.edition, OrderLine.new_expires_on)
                                           .join(Order).where(Order.kind == "seats")).all())
        assert expiries == {"basic": add_months(date.today(), 12), "standard": None}
        # Seed 003's OS flow: Acme North's e-invoice subscription is paid in cash and active, Acme South's
        # waits for its cash; Acme Logistics itself has none (its first subscription is the worked example's).
        subscriptions = {row.company.name: row for row in db.session.scalars(select(Subscription))}
        assert sorted(subscriptions) == ["Acme North", "Acme South"]
        assert subscriptions["Acme North"].status == "active" and subscriptions["Acme North"].period_end is not None
        assert subscriptions["Acme South"].status == "pending_payment"
        assert db.session.scalars(select(Subscription).where(subs.awaiting_cash())).all() == [
            subscriptions["Acme South"]]
        assert db.session.scalar(select(CashReceipt.status)) == "confirmed"


def test_demo_without_activity_starts_with_empty_queues(app):
    with app.app_context():
        seed_demo(db.session, devices=50, method=FAST_HASH, activity=False)
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(OfflineRecharge)) == 0
        assert db.session.scalar(select(func.count()).select_from(Order).where(Order.kind == "renewal")) == 0



def test_the_demo_distributor_s_finance_page_shows_where_its_balance_came_from(app, client, login):
    """The distributor's 财务管理 opens on its own company: it read "No movements." (only its sub-distributor
    had a prepaid balance)."""
    with app.app_context():
        seed_demo(db.session, devices=50, method=FAST_HASH)
        db.session.commit()
        parent = db.session.scalar(select(Company).where(Company.name == "Aotuo Cards"))
        assert balance_of(db.session, parent.id, "CNY") == 5000
        assert ledger_differences(db.session) == []
    login("distributor", "demo-distributor")
    page = client.get("/admin/card_finance/").get_data(as_text=True)
    assert "No movements." not in page and "5,000.00" in page
    # 分销设置 has a share of its own to change (the platform's rule of the sub-distributor is read-only to it).
    page = client.get("/admin/commissionrule/").get_data(as_text=True)
    assert "SIM-59" in page and "6%" in page and "/admin/commissionrule/share/?" in page
