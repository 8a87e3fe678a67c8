"""Subscriptions (issue 11): checkout with stacked promotions, the bad-input list, cash maker–checker,
seats, cancellation, renewal job, and concurrency on a capped promotion."""
from __future__ import annotations

import re
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from actions import DomainError
from actions import subscriptions as subs
from actions.wallets import credit, wallet_for
from conftest import post
from models import (
    CashReceipt, MemberAccount, Order, OrderDiscount, PlanAddOn, PlanCycle, Promotion, PromotionCompany,
    PromotionReservation,
    Subscription, SubscriptionEvent, db,
)

D = Decimal
TODAY = date(2026, 12, 1)


def now() -> datetime:
    return datetime.now(timezone.utc)


def by_code(model, code):
    return db.session.scalar(select(model).where(model.code == code))


def cycle_of(plan_code: str, months: int) -> PlanCycle:
    from models import ServicePlan

    plan = by_code(ServicePlan, plan_code)
    return db.session.scalar(select(PlanCycle).where(PlanCycle.plan_id == plan.id, PlanCycle.months == months))


def worked_selection(**changes) -> subs.Selection:
    storage, archive = by_code(PlanAddOn, "OFFICE-STORAGE"), by_code(PlanAddOn, "OFFICE-ARCHIVE")
    values = dict(cycle_id=cycle_of("OFFICE-STD", 12).id, plan_promotion_id=by_code(Promotion, "PLAN15").id,
                  add_on_ids=(storage.id, archive.id),
                  add_on_promotion_ids=((storage.id, by_code(Promotion, "STORAGE50").id),
                                        (archive.id, by_code(Promotion, "ARCHIVE125").id)),
                  invoice_promotion_id=by_code(Promotion, "INVOICE7").id)
    values.update(changes)
    return subs.Selection(**values)


def details(service=None, **changes) -> subs.CheckoutDetails:
    terms = subs.current_terms(db.session, service or cycle_of("OFFICE-STD", 12).plan.service)
    values = dict(invoice_title="Acme Logistics", invoice_tax_id="0100109106", contact_name="Nguyễn Văn A",
                  contact_phone="+84 912 345 678", contact_email="a@acme.example", terms_version_id=terms.id,
                  accepted_terms=True, pay_method="balance")
    values.update(changes)
    return subs.CheckoutDetails(**values)


def counts() -> tuple:
    promotion_counters = tuple(db.session.execute(
        select(Promotion.code, Promotion.reserved, Promotion.redeemed).order_by(Promotion.code)).all())
    return (db.session.scalar(select(func.count()).select_from(Subscription)),
            db.session.scalar(select(func.count()).select_from(Order)),
            db.session.scalar(select(func.count()).select_from(CashReceipt)),
            db.session.scalar(select(func.count()).select_from(PromotionReservation)), promotion_counters)


def checkout(user, company, selection=None, **detail_changes) -> Subscription:
    selection = selection or worked_selection()
    key = subs.new_checkout_key()
    quote = subs.reserve(db.session, user, company, selection, key, now())
    return subs.confirm(db.session, user, company, selection, key, quote.digest,
                        details(quote.service, **detail_changes), now(), TODAY)


# --- the worked example -------------------------------------------------------------------------------------

def test_worked_example_through_the_checkout_functions(world):
    customer = world.users["customer"]
    quote = subs.quote(db.session, customer, world.acme, worked_selection(), now())
    assert [p.net for p in quote.priced.lines] == [D("948.60"), D("288.30"), D("406.06")]
    assert quote.total == D("1642.96")
    subscription = checkout(customer, world.acme)
    order = subs.start_order(db.session, subscription)
    assert order.total == D("1642.96") and order.kind == "subscription" and order.status == "pending"
    assert [line.net for line in order.lines] == [D("948.60"), D("288.30"), D("406.06")]
    shares = db.session.scalars(select(OrderDiscount.amount_minor).where(
        OrderDiscount.order_id == order.id, OrderDiscount.source == "invoice").order_by(OrderDiscount.line_id)).all()
    assert shares == [7140, 2170, 3056]
    assert subscription.status == "pending_payment"
    assert subscription.terms_accepted_by_id == customer.id and subscription.terms_version_id is not None


def test_paying_by_balance_starts_the_period_and_redeems_the_promotions(world):
    customer = world.users["customer"]
    credit(db.session, wallet_for(db.session, world.acme.id, "CNY"), D("5000.00"), "recharge", "test-topup")
    subscription = checkout(customer, world.acme)
    subs.pay_by_balance(db.session, customer, subscription, TODAY)
    db.session.commit()
    db.session.refresh(subscription)
    assert subscription.status == "active"
    assert (subscription.period_start, subscription.period_end) == (TODAY, date(2027, 12, 1))
    invoice7 = by_code(Promotion, "INVOICE7")
    assert (invoice7.redeemed, invoice7.reserved) == (1, 0)
    kinds = set(db.session.scalars(select(SubscriptionEvent.kind).where(
        SubscriptionEvent.subscription_id == subscription.id)))
    assert {"created", "paid", "started"} <= kinds


def _form_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _hidden(page: str, form_id: str) -> list[tuple[str, str]]:
    form = page[page.index(f'id="{form_id}"'):]
    form = form[:form.index("</form>")]
    return re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)


def test_worked_example_through_the_pages_in_vietnamese(app, client, login, world):
    world.users["customer"].locale = "vi"
    credit(db.session, wallet_for(db.session, world.acme.id, "CNY"), D("5000.00"), "recharge", "test-topup")
    db.session.commit()
    login("customer")
    table = client.get("/admin/subscribe/").get_data(as_text=True)
    assert "Bảng giá" in table and "Đăng ký" in table
    cycle = cycle_of("OFFICE-STD", 12)
    assert f'name="cycle" value="{cycle.id}" id="rd-cycle-{cycle.id}"' in table
    selection = worked_selection()
    step1 = client.get(f"/admin/subscribe/checkout/?cycle={cycle.id}&company_id={world.acme.id}"
                       + "".join(f"&add_on={a}" for a in selection.add_on_ids)).get_data(as_text=True)
    assert "PLAN15" in step1 and "STORAGE50" in step1 and "INVOICE7" in step1
    assert "ARCHIVE125" in step1.split('name="add_on_promotion_')[2]  # offered on its own add-on
    key = re.search(r'name="checkout_key" value="([0-9a-f]{32})"', step1).group(1)
    chosen = client.get(
        f"/admin/subscribe/checkout/?cycle={cycle.id}&company_id={world.acme.id}"
        f"&plan_promotion={selection.plan_promotion_id}&invoice_promotion={selection.invoice_promotion_id}"
        + "".join(f"&add_on={a}" for a in selection.add_on_ids)
        + "".join(f"&add_on_promotion_{a}={p}" for a, p in selection.add_on_promotion_ids)).get_data(as_text=True)
    assert "1.642,96" in chosen  # the running total on step 1, in Vietnamese number format
    form = [("checkout_key", key), ("company_id", str(world.acme.id)), ("cycle", str(cycle.id)), ("step", "next"),
            ("plan_promotion", str(selection.plan_promotion_id)),
            ("invoice_promotion", str(selection.invoice_promotion_id))]
    form += [("add_on", str(a)) for a in selection.add_on_ids]
    form += [(f"add_on_promotion_{a}", str(p)) for a, p in selection.add_on_promotion_ids]
    step2 = post(client, "/admin/subscribe/checkout/", form).get_data(as_text=True)
    assert "1.642,96" in step2, step2[-3000:]
    assert "bước 2" in step2
    fields = _hidden(step2, "rd-checkout-step2")
    terms_id = str(subs.current_terms(db.session, cycle.plan.service).id)
    filled = [pair for pair in fields if pair[0] not in ("csrf_token", "stage")] + [
        ("stage", "details"), ("invoice_title", "Acme Logistics"), ("invoice_tax_id", "0100109106"),
        ("contact_name", "Nguyễn Văn A"), ("contact_phone", "0912345678"), ("contact_email", "a@acme.example"),
        ("pay_method", "balance"), ("auto_renew", "y"), ("accept_terms", "y"), ("terms_version_id", terms_id)]
    confirm_page = post(client, "/admin/subscribe/checkout/pay/", filled).get_data(as_text=True)
    assert 'id="rd-checkout-confirm"' in confirm_page, confirm_page[-3000:]
    assert "Xác nhận" in confirm_page
    confirm_fields = [pair for pair in _hidden(confirm_page, "rd-checkout-confirm") if pair[0] != "csrf_token"]
    done = post(client, "/admin/subscribe/checkout/pay/", confirm_fields)
    assert done.status_code == 302
    subscription = db.session.scalar(select(Subscription).where(Subscription.company_id == world.acme.id))
    assert subscription.status == "active"
    assert subs.start_order(db.session, subscription).total == D("1642.96")
    # Confirm again (a double click): still one subscription, one order.
    post(client, "/admin/subscribe/checkout/pay/", confirm_fields)
    assert db.session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.company_id == world.acme.id)) == 1
    detail = client.get(done.headers["Location"]).get_data(as_text=True)
    assert subscription.number in detail and "Lịch sử" in detail and "Phương thức thanh toán" in detail
    for tab in subs_tabs():
        page = client.get(f"/admin/subscription/view/{subscription.id}/?tab={tab}")
        assert page.status_code == 200, tab
    invoices = client.get(f"/admin/subscription/view/{subscription.id}/?tab=invoices").get_data(as_text=True)
    assert "INVOICE7" in invoices and "PLAN15" in invoices


def subs_tabs():
    from admin_views.subscriptions import TABS

    return TABS


# --- bad input: a message naming the field, nothing written -------------------------------------------------

def _refused(user, company, selection=None, detail_changes=None, match=""):
    before = counts()
    with pytest.raises(DomainError) as caught:
        checkout(user, company, selection, **(detail_changes or {}))
    db.session.rollback()
    assert counts() == before
    assert match in str(caught.value), str(caught.value)
    return str(caught.value)


def test_unknown_promotion_names_the_field(world):
    _refused(world.users["customer"], world.acme, worked_selection(plan_promotion_id=999999), match="Plan promotion")


def test_ineligible_promotion_names_the_field_and_the_reason(world):
    message = _refused(world.users["customer"], world.acme,
                       worked_selection(plan_promotion_id=by_code(Promotion, "ARCHIVE125").id),
                       match="Plan promotion")
    assert "ARCHIVE125" in message


def test_fixed_promotion_in_another_currency_is_refused(world):
    vnd = Promotion(code="VND50K", name="50k", scope="add_on", kind="fixed", currency="VND", amount_minor=50000,
                    status="active")
    db.session.add(vnd)
    db.session.commit()
    storage = by_code(PlanAddOn, "OFFICE-STORAGE")
    message = _refused(world.users["customer"], world.acme,
                       worked_selection(add_on_promotion_ids=((storage.id, vnd.id),)),
                       match="Extra storage 1 TB")
    assert "VND" in message and "CNY" in message


def test_cycle_not_offered_is_refused(world):
    cycle = cycle_of("OFFICE-STD", 6)
    cycle.active = False
    db.session.commit()
    _refused(world.users["customer"], world.acme, worked_selection(cycle_id=cycle.id), match="Billing cycle")


def test_terms_not_accepted_is_refused(world):
    _refused(world.users["customer"], world.acme, detail_changes={"accepted_terms": False}, match="Terms")


def test_bad_tax_code_is_refused(world):
    _refused(world.users["customer"], world.acme, detail_changes={"invoice_tax_id": "0100109107"}, match="Tax code")


def test_changed_quote_is_shown_again_and_nothing_written(world):
    customer = world.users["customer"]
    selection = worked_selection()
    key = subs.new_checkout_key()
    quote = subs.reserve(db.session, customer, world.acme, selection, key, now())
    db.session.commit()
    cycle = cycle_of("OFFICE-STD", 12)
    cycle.price_minor = 130000
    db.session.commit()
    before = counts()
    with pytest.raises(subs.QuoteChanged) as caught:
        subs.confirm(db.session, customer, world.acme, selection, key, quote.digest, details(), now(), TODAY)
    db.session.rollback()
    assert counts() == before
    assert caught.value.quote.total != quote.total and "price has changed" in str(caught.value)
    fresh = caught.value.quote
    subscription = subs.confirm(db.session, customer, world.acme, selection, key, fresh.digest, details(), now(),
                                TODAY)
    assert subs.start_order(db.session, subscription).total == fresh.total


def test_cash_confirmed_by_the_person_who_entered_it_is_refused(world):
    admin = world.users["admin"]
    subscription = checkout(world.users["sales"], world.acme, pay_method="cash")
    receipt = subs.enter_cash_receipt(db.session, admin, subscription, TODAY)
    db.session.commit()
    before = counts()
    with pytest.raises(DomainError, match=f"Cash receipt #{receipt.id}"):
        subs.confirm_cash_receipt(db.session, admin, receipt, TODAY)
    db.session.rollback()
    assert counts() == before
    assert db.session.get(CashReceipt, receipt.id).status == "submitted"


def test_cash_flow_sales_enters_finance_confirms_then_it_starts(world):
    subscription = checkout(world.users["sales"], world.acme, pay_method="cash")
    receipt = subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY)
    db.session.commit()
    assert subscription.status == "pending_payment"
    subs.confirm_cash_receipt(db.session, world.users["finance"], receipt, TODAY)
    db.session.commit()
    db.session.refresh(subscription)
    assert subscription.status == "active" and subscription.period_end == date(2027, 12, 1)
    order = subs.start_order(db.session, subscription)
    assert order.status == "paid" and order.payment_method == "cash"


def test_an_order_whose_cash_awaits_finance_is_not_cancelled_as_stale(world):
    """The stale-order job leaves an order alone while its cash receipt waits for finance."""
    from actions.orders import cancel_stale_orders

    subscription = checkout(world.users["sales"], world.acme, pay_method="cash")
    receipt = subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY)
    forgotten = checkout(world.users["sales"], world.acme, pay_method="cash")  # no receipt entered
    db.session.commit()
    later = now() + timedelta(days=30)
    assert cancel_stale_orders(db.session, timedelta(hours=24), later) >= 1
    db.session.commit()
    assert subs.start_order(db.session, forgotten).status == "cancelled"
    assert subs.start_order(db.session, subscription).status == "pending"
    subs.confirm_cash_receipt(db.session, world.users["finance"], receipt, TODAY)
    db.session.commit()
    assert subs.start_order(db.session, subscription).status == "paid"


def test_customer_may_not_pay_cash(world):
    _refused(world.users["customer"], world.acme, detail_changes={"pay_method": "cash"}, match="Payment")


def test_first_subscription_only_and_allow_list(world):
    meet = by_code(Promotion, "MEET10")
    selection = subs.Selection(cycle_of("MEET-BASIC", 12).id, plan_promotion_id=meet.id)
    first = checkout(world.users["customer"], world.acme, selection)
    assert subs.start_order(db.session, first).total == D("1840000")  # 1,990,000 − min(199,000, 150,000)
    db.session.commit()
    _refused(world.users["customer"], world.acme, selection, match="first subscription")
    db.session.add(PromotionCompany(promotion_id=meet.id, company_id=world.south.id))
    db.session.commit()
    _refused(world.users["north"], world.north, selection, match="not offered")


# --- concurrency: a promotion capped at 10, 50 checkouts at once --------------------------------------------

def test_fifty_concurrent_checkouts_on_a_cap_of_ten(app, world):
    from app import WRITE_INTENT

    invoice7 = by_code(Promotion, "INVOICE7")
    invoice7.max_redemptions = 10
    db.session.commit()
    customer_id, company_id, promotion_id = world.users["customer"].id, world.acme.id, invoice7.id
    selection = subs.Selection(cycle_of("OFFICE-STD", 1).id, invoice_promotion_id=promotion_id)
    outcomes: list[str] = []
    barrier = threading.Barrier(50)

    def one():
        with app.app_context():
            WRITE_INTENT.set(True)
            from models import Company, User

            user, company = db.session.get(User, customer_id), db.session.get(Company, company_id)
            checkout_details = details()
            db.session.commit()
            barrier.wait()
            try:
                key = subs.new_checkout_key()
                quote = subs.reserve(db.session, user, company, selection, key, now())
                db.session.commit()
                subs.confirm(db.session, user, company, selection, key, quote.digest, checkout_details, now(), TODAY)
                db.session.commit()
                outcomes.append("ok")
            except DomainError as exc:
                db.session.rollback()
                outcomes.append(f"refused: {exc}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    assert outcomes.count("ok") == 10, outcomes
    assert all("sold out" in o for o in outcomes if o != "ok")
    carrying = db.session.scalar(select(func.count(func.distinct(OrderDiscount.order_id))).where(
        OrderDiscount.promotion_ref == str(promotion_id)))
    assert carrying == 10
    promotion = db.session.get(Promotion, promotion_id)
    assert promotion.reserved + promotion.redeemed == 10


# --- access and scope ---------------------------------------------------------------------------------------

def test_customer_of_another_company_gets_404(app, client, login, world):
    subscription = checkout(world.users["customer"], world.acme)
    db.session.commit()
    login("globex")
    assert client.get(f"/admin/subscription/view/{subscription.id}/").status_code == 404
    answer = post(client, f"/admin/subscription/view/{subscription.id}/notes/", {"body": "hi"})
    assert answer.status_code == 404
    assert client.get("/admin/subscription/").get_data(as_text=True).count(subscription.number) == 0


def test_checkout_for_another_tenant_is_refused(world):
    _refused(world.users["customer"], world.globex, match="Company")


def test_tech_support_may_not_subscribe(app, client, login, world):
    login("support")
    assert client.get("/admin/subscribe/").status_code == 403
    assert client.get("/admin/subscription/").status_code == 403


# --- seats, notes, cancellation -----------------------------------------------------------------------------

def test_seats_within_the_plan_limit(world):
    customer = world.users["customer"]
    subscription = checkout(customer, world.acme)
    for i in range(22):
        db.session.add(MemberAccount(company_id=world.north.id, login=f"acme-user-{i:02d}"))
    db.session.flush()
    added = subs.assign_seats(db.session, customer, subscription, "\n".join(f"acme-user-{i:02d}" for i in range(20)))
    assert len(added) == 20
    with pytest.raises(DomainError, match="20 seats"):
        subs.assign_seats(db.session, customer, subscription, "acme-user-20, acme-user-21")
    with pytest.raises(DomainError, match="globex-member"):
        subs.assign_seats(db.session, customer, subscription, "globex-member")


def test_seats_are_given_by_login_in_any_letter_case(world):
    """A member login is one login in any letter case: ACME-USER-01 pasted is acme-user-01; pasted twice in two
    cases it takes one seat."""
    customer = world.users["customer"]
    subscription = checkout(customer, world.acme)
    db.session.add_all([MemberAccount(company_id=world.north.id, login="acme-user-01"),
                        MemberAccount(company_id=world.north.id, login="acme-user-02")])
    db.session.flush()
    added = subs.assign_seats(db.session, customer, subscription, "ACME-USER-01\nacme-user-01, Acme-User-02")
    assert added == ["acme-user-01", "acme-user-02"]  # the accounts, as they are named
    assert sorted(s.member_account.login for s in subs.seats_of(db.session, subscription)) == [
        "acme-user-01", "acme-user-02"]


def test_customer_sees_only_customer_notes(world):
    subscription = checkout(world.users["customer"], world.acme)
    subs.add_note(db.session, world.users["sales"], subscription, "internal only", "internal", True)
    subs.add_note(db.session, world.users["sales"], subscription, "for the customer", "customer", False)
    seen = [n.body for n in subs.notes_for(db.session, world.users["customer"], subscription)]
    assert seen == ["for the customer"]
    assert [n.body for n in subs.notes_for(db.session, world.users["sales"], subscription)][0] == "internal only"


def _active(world) -> Subscription:
    credit(db.session, wallet_for(db.session, world.acme.id, "CNY"), D("10000.00"), "recharge", "test-topup")
    subscription = checkout(world.users["customer"], world.acme)
    subs.pay_by_balance(db.session, world.users["customer"], subscription, TODAY)
    db.session.commit()
    db.session.refresh(subscription)
    return subscription


def test_cancel_at_period_end_is_undoable_and_then_happens(world):
    subscription = _active(world)
    subs.schedule_cancel(db.session, world.users["customer"], subscription)
    assert subscription.status == "cancel_scheduled"
    subs.undo_cancel(db.session, world.users["customer"], subscription)
    assert subscription.status == "active"
    subs.schedule_cancel(db.session, world.users["customer"], subscription)
    db.session.commit()
    report = subs.run_billing(db.session, subscription.period_end, now())
    db.session.commit()
    assert subscription.number in report.cancelled
    db.session.refresh(subscription)
    assert subscription.status == "cancelled"



def test_a_subscription_orders_note_is_shown_in_the_readers_language(app, client, login, world):
    subscription = _active(world)
    renewal = subs.run_billing(db.session, subscription.period_end - timedelta(days=7), now()).renewal_orders[0]
    db.session.commit()
    start = subs.start_order(db.session, subscription)
    assert start.note == f"Registration of subscription {subscription.number}"
    assert start.note_data == {"key": "order.note.subscription_start",
                               "params": {"subscription": subscription.number, "purpose": "start"}}
    login("finance")
    post(client, "/language", {"locale": "zh_Hans_CN", "next": "/admin/"})
    page = client.get("/admin/order_management/").get_data(as_text=True)
    assert f"订阅 {subscription.number} 开通" in page and f"订阅 {subscription.number} 续费" in page
    post(client, "/language", {"locale": "vi", "next": "/admin/"})
    page = client.get(f"/admin/order_management/?search={renewal}").get_data(as_text=True)
    assert renewal in page and f"Gia hạn thuê bao {subscription.number}" in page


def test_an_order_noted_before_the_stored_message_still_finds_its_subscription(world):
    """A link without its order id is found by the note: the message's params, or the old text "SUB… start"."""
    from models import SubscriptionOrder

    subscription = checkout(world.users["customer"], world.acme)
    order = subs.start_order(db.session, subscription)
    link = db.session.scalar(select(SubscriptionOrder).where(SubscriptionOrder.order_id == order.id))
    for note, data in ((f"Registration of subscription {subscription.number}", order.note_data),
                       (f"{subscription.number} start", None)):
        link.order_id = None
        order.note, order.note_data = note, data
        db.session.flush()
        assert subs._link_of(db.session, order) is link and link.order_id == order.id


def test_the_history_shows_amounts_and_refunded_lines_in_the_readers_language(client, login, world):
    from flask_babel import force_locale

    from actions.orders import approve_refunds, request_refund
    from actions.money import format_money
    from actions.texts import render

    subscription = _active(world)
    order = subs.start_order(db.session, subscription)
    refund = request_refund(db.session, world.users["finance"], order, [order.lines[1].id], reason="not used")
    approve_refunds(db.session, world.users["admin"], [refund], TODAY)
    db.session.commit()
    created, refunded = (db.session.scalar(select(SubscriptionEvent).where(
        SubscriptionEvent.subscription_id == subscription.id, SubscriptionEvent.kind == kind))
        for kind in ("created", "refunded"))
    assert created.summary == "Amount CN¥1,642.96"
    assert refunded.summary == f"Refunded: {order.lines[1].description}"
    with force_locale("zh_Hans_CN"):
        line = render(order.lines[1].description_data, order.lines[1].description)
        assert render(refunded.summary_data) == f"已退款：{line}"
    world.users["customer"].locale = "vi"
    db.session.commit()
    login("customer")
    history = client.get(f"/admin/subscription/view/{subscription.id}/?tab=history").get_data(as_text=True)
    with force_locale("vi"):
        amount = format_money(D("1642.96"), "CNY")
    assert f"Số tiền {amount}" in history and "1.642,96" in amount

# --- the renewal job ----------------------------------------------------------------------------------------

def test_renewal_order_auto_paid_once_however_often_the_job_runs(world):
    subscription = _active(world)
    end = subscription.period_end
    early = subs.run_billing(db.session, end - timedelta(days=8), now())
    assert early.renewal_orders == []
    first = subs.run_billing(db.session, end - timedelta(days=7), now())
    db.session.commit()
    again = subs.run_billing(db.session, end - timedelta(days=6), now())
    db.session.commit()
    assert len(first.renewal_orders) == 1 and first.auto_paid == first.renewal_orders
    assert again.renewal_orders == [] and again.auto_paid == []
    db.session.refresh(subscription)
    assert subscription.period_start == end and subscription.period_end == date(2028, 12, 1)
    renewal = db.session.scalar(select(Order).where(Order.number == first.renewal_orders[0]))
    # PLAN15 and INVOICE7 were for the first cycle only; STORAGE50 is forever, ARCHIVE125 for two cycles.
    assert [line.gross for line in renewal.lines] == [D("1200.00"), D("360.00"), D("499.00")]
    assert renewal.total == D("1200.00") + D("310.00") + D("436.62")


def test_unpaid_renewal_goes_past_due_then_expires(world):
    subscription = _active(world)
    wallet = wallet_for(db.session, world.acme.id, "CNY")
    from actions.wallets import debit

    debit(db.session, wallet, wallet.balance, "payment", "test-empty")
    db.session.commit()
    end = subscription.period_end
    report = subs.run_billing(db.session, end - timedelta(days=7), now())
    db.session.commit()
    assert report.unpaid == report.renewal_orders and len(report.unpaid) == 1
    subs.run_billing(db.session, end, now())
    db.session.commit()
    db.session.refresh(subscription)
    assert subscription.status == "past_due" and subscription.grace_until == end + timedelta(days=7)
    subs.run_billing(db.session, end + timedelta(days=7), now())
    db.session.commit()
    db.session.refresh(subscription)
    assert subscription.status == "expired"
    assert db.session.scalar(select(Order).where(Order.number == report.unpaid[0])).status == "cancelled"


def test_the_stale_order_job_leaves_an_unpaid_renewal_order_to_the_subscription(world):
    """billing expire-orders cancels orders left pending for ORDER_PENDING_HOURS, but a renewal order is made
    days before the period ends and waits through the grace days: only the subscription job cancels it, when
    the subscription expires unpaid. Until then the customer can still pay it."""
    from actions.orders import cancel_stale_orders
    from actions.wallets import debit

    subscription = _active(world)
    wallet = wallet_for(db.session, world.acme.id, "CNY")
    debit(db.session, wallet, wallet.balance, "payment", "test-empty")
    end = subscription.period_end
    report = subs.run_billing(db.session, end - timedelta(days=7), now())
    db.session.commit()
    renewal = db.session.scalar(select(Order).where(Order.number == report.unpaid[0]))
    cancel_stale_orders(db.session, timedelta(hours=24), now() + timedelta(days=10))
    db.session.commit()
    db.session.refresh(renewal)
    assert renewal.status == "pending"


def test_a_cash_checkout_waits_a_week_for_the_cash(world):
    """A subscription paid in cash (seed 003's OS flow): its first order stays payable for CASH_WAIT, not
    ORDER_PENDING_HOURS, so the customer can bring the cash to sales; then it is cancelled as stale."""
    from actions.orders import cancel_stale_orders

    cash = checkout(world.users["sales"], world.acme, pay_method="cash")
    online = checkout(world.users["customer"], world.acme, pay_method="online")
    db.session.commit()
    cancel_stale_orders(db.session, timedelta(hours=24), now() + timedelta(days=3))
    db.session.commit()
    assert subs.start_order(db.session, cash).status == "pending"
    assert subs.start_order(db.session, online).status == "cancelled"
    created = subs.start_order(db.session, cash).created_at
    assert subs.cash_pay_by(subs.start_order(db.session, cash), timedelta(hours=24)) == created + subs.CASH_WAIT
    cancel_stale_orders(db.session, timedelta(hours=24), now() + subs.CASH_WAIT + timedelta(hours=1))
    db.session.commit()
    assert subs.start_order(db.session, cash).status == "cancelled"


def test_abandoned_checkout_gives_the_promotions_back(world):
    from actions.orders import cancel_order

    subscription = checkout(world.users["customer"], world.acme)
    cancel_order(db.session, world.users["customer"], subs.start_order(db.session, subscription))
    db.session.commit()
    assert by_code(Promotion, "INVOICE7").reserved == 1
    report = subs.run_billing(db.session, TODAY, now())
    db.session.commit()
    assert subscription.number in report.abandoned
    db.session.expire_all()
    assert by_code(Promotion, "INVOICE7").reserved == 0


def test_lapsed_reservations_are_released(world):
    key = subs.new_checkout_key()
    subs.reserve(db.session, world.users["customer"], world.acme, worked_selection(), key, now() - timedelta(hours=1))
    db.session.commit()
    assert by_code(Promotion, "INVOICE7").reserved == 1
    assert subs.release_expired_reservations(db.session, now()) == 4
    db.session.commit()
    db.session.expire_all()
    assert by_code(Promotion, "INVOICE7").reserved == 0


def test_promotion_needs_another_person_of_finance(world):
    draft = Promotion(code="NEW5", name="5%", scope="invoice", kind="percent", currency="CNY", percent_hundredths=500,
                      status="draft", created_by_id=world.users["finance"].id)
    db.session.add(draft)
    db.session.commit()
    with pytest.raises(DomainError, match="NEW5"):
        subs.activate_promotion(db.session, world.users["finance"], draft)
    with pytest.raises(DomainError):
        subs.activate_promotion(db.session, world.users["sales"], draft)


def test_the_plan_line_names_its_months(app, client, login, world):
    """The plan's line read "Cloud Office · Standard · 12" (a bare 12) in the quote, on the order and in the cycle
    filter; the order line is now a stored message read in each reader's language, the filter says 12 个月."""
    import json

    with app.test_request_context():
        subscription = checkout(world.users["customer"], world.acme)
        db.session.commit()
    line = subscription_order_lines(subscription)[0]
    assert line.description_data and line.description_data["key"] == "order.line.plan", line.description_data
    assert line.description == "Cloud Office · Standard · 12 months"
    world.users["customer"].locale = "zh_Hans_CN"
    db.session.commit()
    login("customer")
    page = client.get("/admin/subscription/").get_data(as_text=True)
    groups = json.loads(page.split('id="filter-groups-data"', 1)[1].split(">", 1)[1].split("</div>", 1)[0])
    labels = [label for f in groups["周期"] for _code, label in f["options"]]
    assert "Standard · 12 个月" in labels and "Standard · 12" not in labels, labels


def subscription_order_lines(subscription):
    from models import OrderLine, SubscriptionOrder

    return db.session.scalars(select(OrderLine).join(SubscriptionOrder, SubscriptionOrder.order_id == OrderLine.order_id)
                              .where(SubscriptionOrder.subscription_id == subscription.id)
                              .order_by(OrderLine.id)).all()


def test_the_migration_gives_older_subscription_orders_their_note_message():
    """0037 turns the notes "SUB… start/renewal/upgrade" written before it into the stored message."""
    import sqlalchemy as sa

    from actions.texts import render
    from conftest import database_at, migrate

    with database_at("subnotes", "0036_cash_receipt_reject") as app:
        utc = "+00" if db.engine.dialect.name == "postgresql" else ""
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO company (id, name, path, status, created_at) VALUES (1, 'Acme', '/1/', 'active', "
                f"'2026-01-01 00:00:00{utc}')"))
            for id_, kind, note in ((1, "subscription", "SUB0000007 start"), (2, "subscription", "SUB0000007 upgrade"),
                                    (3, "recharge", "SUB0000007 start"), (4, "subscription", "typed by hand")):
                conn.execute(sa.text(
                    'INSERT INTO "order" (id, number, kind, status, company_id, currency, total_minor, '
                    "refunded_minor, invoice_status, created_at, note) VALUES "
                    f"({id_}, 'N{id_}', '{kind}', 'pending', 1, 'CNY', 100, 0, 'none', "
                    f"'2026-01-01 00:00:00{utc}', '{note}')"))
        migrate(app, "head")
        with app.test_request_context():
            notes = {o.id: (o.note, o.note_data) for o in db.session.scalars(select(Order))}
            assert notes[1] == ("Registration of subscription SUB0000007", {
                "key": "order.note.subscription_start", "params": {"subscription": "SUB0000007", "purpose": "start"}})
            assert render(notes[2][1]) == "Plan change of subscription SUB0000007"
            assert notes[3] == ("SUB0000007 start", None) and notes[4] == ("typed by hand", None)
        db.session.remove()
        migrate(app, "0036_cash_receipt_reject", down=True)
        with db.engine.begin() as conn:
            assert conn.execute(sa.text('SELECT note FROM "order" WHERE id = 1')).scalar_one() == "SUB0000007 start"
