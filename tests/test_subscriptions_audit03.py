"""Seed 003 followed step by step (audit 03): what a user of the guide still missed on the real pages."""
from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy import select

from actions import subscriptions as subs
from actions.wallets import credit, wallet_for
from conftest import post
from models import Subscription, db
from test_subscriptions import _hidden, cycle_of
from test_subscriptions_guide import _step2


def _pay(client, world, method: str):
    """Step 2 filled as the guide says, Thanh toán, then Xác nhận: the answer to the confirmation."""
    page = _step2(client, world)
    terms = subs.current_terms(db.session, cycle_of("OFFICE-STD", 12).plan.service)
    filled = [p for p in _hidden(page, "rd-checkout-step2") if p[0] not in ("csrf_token", "stage")] + [
        ("stage", "confirm"), ("invoice_title", "Acme Logistics"), ("invoice_tax_id", "0100109106"),
        ("contact_name", "Nguyễn Văn A"), ("contact_phone", "0912345678"), ("contact_email", "a@acme.example"),
        ("pay_method", method), ("accept_terms", "y"), ("terms_version_id", str(terms.id))]
    return post(client, "/admin/subscribe/checkout/pay/", filled)


def _registered(world) -> Subscription:
    return db.session.scalar(select(Subscription).where(Subscription.company_id == world.acme.id))


def test_paying_online_shows_registration_successful(client, login, world):
    """'Nhập thông tin thanh toán sau đó nhấn nút Thanh toán - Hiển thị màn hình đăng ký thành công': the payer
    came back to the subscription with only "order … is paid", never told the registration succeeded."""
    login("customer")
    answer = _pay(client, world, "online")
    paid = post(client, answer.headers["Location"], {"decision": "pay"})
    page = client.get(paid.headers["Location"]).get_data(as_text=True)
    subscription = _registered(world)
    assert subscription.status == "active"
    assert (f"Registration successful: subscription {subscription.number} of Acme Logistics is active from "
            f"{subscription.period_start.isoformat()} to {subscription.period_end.isoformat()}.") in page


def test_paying_by_balance_shows_registration_successful(client, login, world):
    credit(db.session, wallet_for(db.session, world.acme.id, "CNY"), D("5000.00"), "recharge", "audit03-topup")
    db.session.commit()
    login("customer")
    done = _pay(client, world, "balance")
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    subscription = _registered(world)
    assert subscription.status == "active"
    assert f"Registration successful: subscription {subscription.number} of Acme Logistics" in page
