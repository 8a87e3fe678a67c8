"""Subscriptions: upgrade now (credit for unused days of what was paid), downgrade at period end, cancel
now with a refund approved by another person of finance, and the list, export and cash-receipt pages."""
from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import select

from actions import DomainError
from actions import subscriptions as subs
from actions.orders import approve_refund
from actions.wallets import balance_of
from conftest import confirm_post, post
from models import CashReceipt, LedgerEntry, Promotion, PromotionReservation, Service, Subscription, User, db
from test_subscriptions import TODAY, _active, by_code, checkout, cycle_of, now, worked_selection

D = Decimal


def test_upgrade_credits_the_unused_days_of_the_net_paid(world):
    subscription = _active(world)  # 1,642.96 paid for 2026-12-01 → 2027-12-01 (365 days)
    before = balance_of(db.session, world.acme.id, "CNY")
    day = TODAY + timedelta(days=73)
    assert subs.unused_credit(db.session, subscription, day) == D("1314.37")  # 1,642.96 × 292 / 365
    order = subs.upgrade_now(db.session, world.users["customer"], subscription, cycle_of("OFFICE-BIZ", 12).id, day)
    assert [line.gross for line in order.lines] == [D("3600.00"), D("360.00"), D("499.00")]
    with pytest.raises(DomainError, match="awaiting payment"):
        subs.upgrade_now(db.session, world.users["customer"], subscription, cycle_of("OFFICE-BIZ", 12).id, day)
    subs.pay_by_balance(db.session, world.users["customer"], subscription, day)
    db.session.commit()
    db.session.refresh(subscription)
    assert subscription.plan.code == "OFFICE-BIZ" and subscription.period_start == day
    assert balance_of(db.session, world.acme.id, "CNY") == before - D("4459.00") + D("1314.37")
    credits = db.session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order.id,
                                                           LedgerEntry.kind == "refund")).all()
    assert [c.amount for c in credits] == [D("1314.37")]


def test_downgrade_waits_for_the_period_end(world):
    subscription = _active(world)
    business = cycle_of("OFFICE-BIZ", 12)
    with pytest.raises(DomainError, match="upgrade"):
        subs.schedule_downgrade(db.session, world.users["customer"], subscription, business.id)
    monthly = cycle_of("OFFICE-STD", 1)
    subs.schedule_downgrade(db.session, world.users["customer"], subscription, monthly.id)
    db.session.commit()
    assert subscription.cycle.months == 12 and subscription.next_cycle_id == monthly.id
    assert subs.renewal_quote(db.session, subscription).priced.lines[0].gross == D("120.00")
    report = subs.run_billing(db.session, subscription.period_end - timedelta(days=7), now())
    db.session.commit()
    db.session.refresh(subscription)
    assert report.auto_paid and subscription.cycle_id == monthly.id and subscription.next_cycle_id is None


def test_cancel_now_needs_a_second_person_of_finance(world):
    subscription = _active(world)
    before = balance_of(db.session, world.acme.id, "CNY")
    refund = subs.request_cancel_now(db.session, world.users["finance"], subscription, "customer asked")
    db.session.commit()
    with pytest.raises(DomainError):
        approve_refund(db.session, world.users["finance"], refund, TODAY)
    db.session.rollback()
    with pytest.raises(DomainError):
        subs.request_cancel_now(db.session, world.users["customer"], subscription, "")
    db.session.rollback()
    from conftest import make_user

    second = make_user("finance2", "finance")
    approve_refund(db.session, second, refund, TODAY)
    db.session.commit()
    db.session.refresh(subscription)
    assert subscription.status == "cancelled"
    assert balance_of(db.session, world.acme.id, "CNY") == before + D("1642.96")


def test_list_filters_and_exports_only_the_customers_tree(app, client, login, world):
    mine = checkout(world.users["customer"], world.acme)
    db.session.commit()
    login("customer")
    page = client.get("/admin/subscription/").get_data(as_text=True)
    assert mine.number in page and "SUB-GLOBEX-0001" not in page
    answer = client.get("/admin/subscription/export/xlsx/")
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.data), read_only=True)
    cells = {c for row in book.active.iter_rows(values_only=True) for c in row}
    assert mine.number in cells and "SUB-GLOBEX-0001" not in cells
    filtered = client.get("/admin/subscription/?flt1_status_equals=active").get_data(as_text=True)
    assert filtered.count(mine.number) == 0


def test_cash_receipt_page_confirms_through_the_action(app, client, login, world):
    subscription = checkout(world.users["sales"], world.acme, pay_method="cash")
    receipt = subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY)
    db.session.commit()
    login("sales")
    post(client, "/admin/cashreceipt/action/", [("action", "confirm"), ("rowid", str(receipt.id))])
    assert db.session.get(CashReceipt, receipt.id).status == "submitted"  # sales may not confirm
    login.logout()
    login("finance")
    assert client.get("/admin/cashreceipt/").status_code == 200
    confirm_post(client, "/admin/cashreceipt/action/", [("action", "confirm"), ("rowid", str(receipt.id))])
    db.session.expire_all()
    assert db.session.get(CashReceipt, receipt.id).status == "confirmed"
    assert db.session.get(Subscription, subscription.id).status == "active"


def test_promotion_drafted_by_sales_activated_by_finance(app, client, login, world):
    login("sales")
    answer = post(client, "/admin/promotion/new/", {
        "code": "SPRING10", "name": "Spring", "scope": "invoice", "kind": "percent", "currency": "CNY",
        "percent_value": "10", "duration": "once", "combinable": "y"}, follow_redirects=True)
    assert answer.status_code == 200
    promotion = by_code(Promotion, "SPRING10")
    assert promotion.status == "draft" and promotion.percent_hundredths == 1000
    assert promotion.created_by_id == world.users["sales"].id
    post(client, "/admin/promotion/action/", [("action", "activate"), ("rowid", str(promotion.id))])
    db.session.expire_all()
    assert by_code(Promotion, "SPRING10").status == "draft"
    login.logout()
    login("finance")
    post(client, "/admin/promotion/action/", [("action", "activate"), ("rowid", str(promotion.id))])
    db.session.expire_all()
    assert by_code(Promotion, "SPRING10").status == "active"


def test_redeemed_promotion_values_are_frozen(world):
    invoice7 = by_code(Promotion, "INVOICE7")
    invoice7.redeemed = 1
    with pytest.raises(DomainError, match="INVOICE7"):
        subs.check_promotion_edit(invoice7, ["percent_hundredths"])
    subs.check_promotion_edit(invoice7, ["name", "ends_at"])


def test_promotion_pages_render_with_targets(app, client, login, world):
    login("sales")
    assert client.get("/admin/promotion/new/").status_code == 200
    plan15 = by_code(Promotion, "PLAN15")
    page = client.get(f"/admin/promotion/edit/?id={plan15.id}")
    assert page.status_code == 200 and "targets-0-plan" in page.get_data(as_text=True)


def test_online_flow_pays_at_the_provider_and_starts_the_subscription(app, client, login, world):
    """ON flow: Confirm sends the payer to the provider's pay page; its signed notification pays the order."""
    from test_subscriptions import _hidden

    login("customer")
    selection = worked_selection()
    key = "a" * 32
    form = [("checkout_key", key), ("company_id", str(world.acme.id)), ("cycle", str(selection.cycle_id)),
            ("step", "next"), ("plan_promotion", str(selection.plan_promotion_id)),
            ("invoice_promotion", str(selection.invoice_promotion_id))]
    form += [("add_on", str(a)) for a in selection.add_on_ids]
    form += [(f"add_on_promotion_{a}", str(p)) for a, p in selection.add_on_promotion_ids]
    step2 = post(client, "/admin/subscribe/checkout/", form).get_data(as_text=True)
    assert 'id="rd-edit-customer"' in step2
    terms = subs.current_terms(db.session, cycle_of("OFFICE-STD", 12).plan.service)
    filled = [p for p in _hidden(step2, "rd-checkout-step2") if p[0] not in ("csrf_token", "stage")] + [
        ("stage", "confirm"), ("invoice_title", "Acme Logistics"), ("invoice_tax_id", "91310000MA1FL8LQ47"),
        ("contact_name", "Li Lei"), ("contact_phone", "13800000000"), ("contact_email", "li@acme.example"),
        ("pay_method", "online"), ("accept_terms", "y"), ("terms_version_id", str(terms.id))]
    answer = post(client, "/admin/subscribe/checkout/pay/", filled)  # a Chinese unified social credit code
    assert answer.status_code == 302 and "/sandbox/pay/" in answer.headers["Location"]
    subscription = db.session.scalar(select(Subscription).where(Subscription.checkout_key == key))
    assert subscription.status == "pending_payment"
    paid = post(client, answer.headers["Location"], {"decision": "pay"})
    assert paid.status_code == 302
    db.session.expire_all()
    subscription = db.session.get(Subscription, subscription.id)
    assert subscription.status == "active"
    order = subs.start_order(db.session, subscription)
    assert order.payment_method == "wechat" and order.total == D("1642.96")


def test_billing_command_is_safe_to_repeat(app, world):
    subscription = _active(world)
    day = (subscription.period_end - timedelta(days=7)).isoformat()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["billing", "subscriptions", "--today", day])
    assert first.exit_code == 0, first.output
    assert "1 renewal orders, 1 paid from the balance" in first.output
    again = runner.invoke(args=["billing", "subscriptions", "--today", day])
    assert "0 renewal orders, 0 paid from the balance" in again.output


def test_demo_data_holds_the_worked_example(app):
    from actions.demo import seed_demo

    seed_demo(db.session, devices=5, method="scrypt:1024:8:1")
    db.session.commit()
    customer = db.session.scalar(select(User).where(User.username == "customer"))
    quote = subs.quote(db.session, customer, customer.company, worked_selection(), now())
    assert quote.total == D("1642.96")
    assert by_code(Promotion, "INVOICE7").status == "active"
    assert db.session.scalar(select(Service).where(Service.currency == "VND")) is not None


def test_per_company_cap_counts_live_reservations(world):
    plan15 = by_code(Promotion, "PLAN15")
    plan15.max_per_company = 1
    db.session.commit()
    checkout(world.users["customer"], world.acme)
    db.session.commit()
    with pytest.raises(DomainError, match="Acme Logistics"):
        checkout(world.users["customer"], world.acme)
    db.session.rollback()
    checkout(world.users["north"], world.north)  # another company of the tree has its own count
    db.session.commit()


def test_only_eligible_promotions_are_offered_each_with_what_it_takes_off(world):
    from models import PlanAddOn

    meet = cycle_of("MEET-BASIC", 12)
    offers = subs.eligible_offers(db.session, world.acme, meet, [], now())
    assert [o.promotion.code for o in offers.plan] == ["MEET10"] and offers.invoice == []  # no CNY ones
    assert offers.plan[0].takes_off == D("150000")
    office = cycle_of("OFFICE-STD", 12)
    archive = by_code(PlanAddOn, "OFFICE-ARCHIVE")
    offers = subs.eligible_offers(db.session, world.acme, office, [archive], now())
    assert [o.promotion.code for o in offers.plan] == ["PLAN15"]
    assert [(o.promotion.code, o.takes_off) for o in offers.add_ons[archive.id]] == [("ARCHIVE125", D("62.38"))]
    assert [(o.promotion.code, o.takes_off) for o in offers.invoice] == [("INVOICE7", D("118.93"))]


def test_suspend_and_resume_are_staff_actions(app, client, login, world):
    subscription = _active(world)
    login("customer")
    post(client, "/admin/subscription/action/", [("action", "suspend"), ("rowid", str(subscription.id))])
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).status == "active"
    login.logout()
    login("sales")
    confirm_post(client, "/admin/subscription/action/", [("action", "suspend"), ("rowid", str(subscription.id))])
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).status == "suspended"
    report = subs.run_billing(db.session, subscription.period_end, now())
    assert report.renewal_orders == [] and report.past_due == []
    post(client, "/admin/subscription/action/", [("action", "resume"), ("rowid", str(subscription.id))])
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).status == "active"


def _statements(client, url: str) -> int:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return len(seen)


def test_checkout_pages_run_a_constant_number_of_statements(app, client, login, world):
    """The price table and step 1 cost the same SQL with 5 or 45 promotions and 1 or 41 subscriptions."""
    from models import PlanAddOn, PromotionTarget

    cycle = cycle_of("OFFICE-STD", 12)
    add_ons = [by_code(PlanAddOn, "OFFICE-STORAGE"), by_code(PlanAddOn, "OFFICE-ARCHIVE")]
    step1 = f"/admin/subscribe/checkout/?cycle={cycle.id}&company_id={world.acme.id}" + "".join(
        f"&add_on={a.id}" for a in add_ons)
    login("customer")
    client.get("/admin/subscribe/")  # warm caches (locale, session user)
    before = (_statements(client, "/admin/subscribe/"), _statements(client, step1))
    assert all(count > 0 for count in before)
    for i in range(40):
        promotion = Promotion(code=f"BULK{i:02d}", name=f"Bulk {i}", scope=("plan", "add_on", "invoice")[i % 3],
                              kind="percent", currency="CNY", percent_hundredths=100 + i, status="active")
        if i % 3 == 0:
            promotion.targets = [PromotionTarget(plan_id=cycle.plan_id)]
        db.session.add(promotion)
        db.session.add(Subscription(number=f"SUB-BULK-{i:03d}", company_id=world.acme.id,
                                    service_id=cycle.plan.service_id, plan_id=cycle.plan_id, cycle_id=cycle.id,
                                    currency="CNY", checkout_key=f"bulk{i:028d}"))
    db.session.commit()
    after = (_statements(client, "/admin/subscribe/"), _statements(client, step1))
    assert after == before
    assert "BULK39" in client.get(step1).get_data(as_text=True)


def test_invoice_offer_takes_off_the_subtotal_after_the_chosen_line_promotions(world):
    from models import PlanAddOn

    office = cycle_of("OFFICE-STD", 12)
    storage, archive = by_code(PlanAddOn, "OFFICE-STORAGE"), by_code(PlanAddOn, "OFFICE-ARCHIVE")
    chosen = {"plan": by_code(Promotion, "PLAN15").id, f"add_on:{storage.id}": by_code(Promotion, "STORAGE50").id,
              f"add_on:{archive.id}": by_code(Promotion, "ARCHIVE125").id}
    offers = subs.eligible_offers(db.session, world.acme, office, [storage, archive], now(), chosen)
    assert [(o.promotion.code, o.takes_off) for o in offers.invoice] == [("INVOICE7", D("123.66"))]


def test_detail_page_forms_post_through_the_scoped_view(app, client, login, world):
    from models import MemberAccount, SubscriptionEvent, SubscriptionNote

    subscription = _active(world)
    db.session.add(MemberAccount(company_id=world.acme.id, login="driver-01"))
    db.session.commit()
    login("customer")
    base = f"/admin/subscription/view/{subscription.id}"
    post(client, f"{base}/seats/", {"logins": "driver-01"})
    post(client, f"{base}/notes/", {"body": "Please call before renewal", "visibility": "internal", "pinned": "y"})
    post(client, f"{base}/renewal/", {"renewal_method": "online"})
    confirm_post(client, f"{base}/cancel/", {})
    db.session.expire_all()
    fresh = db.session.get(Subscription, subscription.id)
    assert fresh.seats_used == 1 and fresh.renewal_method == "online" and fresh.auto_renew is False
    assert fresh.status == "cancel_scheduled"
    note = db.session.scalar(select(SubscriptionNote).where(SubscriptionNote.subscription_id == subscription.id))
    assert note.visibility == "customer" and note.pinned  # customers write customer-visible notes only
    history = client.get(f"{base}/?tab=history&kind=seat_assigned").get_data(as_text=True)
    assert "driver-01" in history
    kinds = set(db.session.scalars(select(SubscriptionEvent.kind).where(
        SubscriptionEvent.subscription_id == subscription.id)))
    assert {"seat_assigned", "note", "settings", "cancel_scheduled"} <= kinds
    employees = client.get(f"{base}/?tab=employees").get_data(as_text=True)
    assert "driver-01" in employees and "1 of 20 seats taken." in employees


def test_customer_abandons_a_pending_checkout_and_the_promotions_come_back(app, client, login, world):
    subscription = checkout(world.users["customer"], world.acme)
    db.session.commit()
    assert by_code(Promotion, "INVOICE7").reserved == 1
    login("customer")
    confirm_post(client, f"/admin/subscription/view/{subscription.id}/abandon/", {})
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).status == "abandoned"
    assert subs.start_order(db.session, subscription).status == "cancelled"
    assert by_code(Promotion, "INVOICE7").reserved == 0


def test_refunding_an_add_on_line_ends_only_that_add_on(world):
    from actions.orders import request_refund
    from conftest import make_user

    subscription = _active(world)
    order = subs.start_order(db.session, subscription)
    archive_line = next(line for line in order.lines if line.description == "Mail archiving [OFFICE-ARCHIVE]")
    refund = request_refund(db.session, world.users["finance"], order, [archive_line.id], "not used")
    approve_refund(db.session, make_user("finance2", "finance"), refund, TODAY)
    db.session.commit()
    db.session.refresh(subscription)
    assert subscription.status == "active"
    assert {item.add_on.code: item.active for item in subscription.items} == {
        "OFFICE-STORAGE": True, "OFFICE-ARCHIVE": False}
    assert [line.gross for line in subs.renewal_quote(db.session, subscription).priced.lines] == [
        D("1200.00"), D("360.00")]


def test_confirm_after_the_promotion_sold_out_sends_back_to_step_1(app, client, login, world):
    """The reservation lapsed and another company took the last redemption: Confirm changes nothing and
    asks to choose again."""
    import re

    from test_subscriptions import _hidden

    invoice7 = by_code(Promotion, "INVOICE7")
    invoice7.max_redemptions = 1
    db.session.commit()
    login("customer")
    selection = subs.Selection(cycle_of("OFFICE-STD", 12).id, invoice_promotion_id=invoice7.id)
    form = [("checkout_key", "b" * 32), ("company_id", str(world.acme.id)), ("cycle", str(selection.cycle_id)),
            ("step", "next"), ("invoice_promotion", str(invoice7.id))]
    step2 = post(client, "/admin/subscribe/checkout/", form).get_data(as_text=True)
    db.session.execute(PromotionReservation.__table__.update().values(
        expires_at=now() - timedelta(minutes=1)))
    db.session.commit()
    assert subs.release_expired_reservations(db.session, now()) == 1
    db.session.commit()
    checkout(world.users["north"], world.north, selection)  # takes the only redemption
    db.session.commit()
    terms = subs.current_terms(db.session, cycle_of("OFFICE-STD", 12).plan.service)
    filled = [p for p in _hidden(step2, "rd-checkout-step2") if p[0] not in ("csrf_token", "stage")] + [
        ("stage", "confirm"), ("invoice_title", "Acme Logistics"), ("invoice_tax_id", "0100109106"),
        ("contact_name", "A"), ("contact_phone", "0912345678"), ("contact_email", "a@acme.example"),
        ("pay_method", "balance"), ("accept_terms", "y"), ("terms_version_id", str(terms.id))]
    answer = post(client, "/admin/subscribe/checkout/pay/", filled)
    assert answer.status_code == 302 and "/admin/subscribe/checkout/?" in answer.headers["Location"]
    assert db.session.scalar(select(Subscription).where(Subscription.checkout_key == "b" * 32)) is None
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "sold out" in page and not re.search(r'<option value="\d+"[^>]*>INVOICE7', page)


def test_a_customer_cannot_switch_its_renewal_to_cash_which_sales_arranges(app, client, login, world):
    """Checkout refuses cash from a customer on an ON service (sales records it); the renewal settings did not."""
    subscription = _active(world)
    db.session.commit()
    login("customer")
    base = f"/admin/subscription/view/{subscription.id}"
    page = client.get(f"{base}/?tab=payments").get_data(as_text=True)
    assert 'name="renewal_method"' in page and 'value="cash"' not in page
    answer = post(client, f"{base}/renewal/", {"renewal_method": "cash", "auto_renew": "y"}, follow_redirects=True)
    assert ("Renewal method: Cash is not offered for Cloud Office (ON service); choose Balance, Online payment."
            in answer.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).renewal_method != "cash"
    # Sales may set it; the customer then keeps it (and may move away from it).
    login.logout()
    login("sales")
    post(client, f"{base}/renewal/", {"renewal_method": "cash", "auto_renew": "y"})
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).renewal_method == "cash"
    login.logout()
    login("customer")
    assert 'value="cash"' in client.get(f"{base}/?tab=payments").get_data(as_text=True)
    post(client, f"{base}/renewal/", {"renewal_method": "cash", "auto_renew": ""})
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).renewal_method == "cash"
