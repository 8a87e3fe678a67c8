"""An approved 线下充值 is a paid recharge order (payment method "offline") in the customer's 充值记录 and
finance's 订单管理, written with the wallet's one credit; and 余额明细, the customer's own balance movements."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from actions import DomainError
from actions.offline_recharge import AlreadyReviewed, _credit_approved, create_application, review, RechargeTerms
from actions.orders import (
    approve_refunds, cancel_order, mark_paid, pay_with_balance, request_refund,
)
from actions.wallets import balance_of, credit, debit, ledger_differences, wallet_for
from conftest import make_user, post
from models import LedgerEntry, OfflineRecharge, Order, OrderRefund, db

RECORDS = "/admin/recharge_record/"
MANAGEMENT = "/admin/order_management/"
HISTORY = "/admin/balance_history/"


pytestmark = pytest.mark.usefixtures("request_unless_client")  # actions run in a request


def approve(world, company=None, amount="1000.00", currency="CNY", payer="Shenzhen Payer Ltd",
            reference="TT-2026-01") -> OfflineRecharge:
    application = create_application(db.session, world.users["sales"], (company or world.acme).id, payer, currency,
                                     amount, reference, submit=True)
    review(db.session, world.users["finance"], application, "approve")
    db.session.commit()
    db.session.expire_all()
    return db.session.get(OfflineRecharge, application.id)


def offline_orders() -> list[Order]:
    return list(db.session.scalars(select(Order).where(Order.payment_method == "offline").order_by(Order.id)))


def balance(company, currency="CNY") -> Decimal:
    db.session.expire_all()
    return balance_of(db.session, company.id, currency)


# --- approval writes the order -----------------------------------------------------------------------

def test_approval_writes_one_paid_recharge_order_linked_to_the_application_and_the_credit(world):
    application = approve(world, amount="1234.56")
    [order] = offline_orders()
    assert (order.kind, order.status, order.payment_method, order.company_id, order.currency, order.total) == (
        "recharge", "paid", "offline", world.acme.id, "CNY", Decimal("1234.56"))
    assert order.number.startswith("RC") and order.number.endswith(f"-{order.id:06d}")
    assert order.paid_at == application.reviewed_at
    assert order.created_by_id == world.users["finance"].id
    assert application.order_id == order.id
    assert order.note == f"Offline recharge #{application.id} from Shenzhen Payer Ltd, reference TT-2026-01"
    [line] = order.lines
    assert line.net == Decimal("1234.56") and line.refundable
    [entry] = db.session.scalars(select(LedgerEntry).where(LedgerEntry.offline_recharge_id == application.id))
    assert (entry.order_id, entry.kind, entry.amount) == (order.id, "offline_recharge", Decimal("1234.56"))
    assert entry.idempotency_key == f"offline_recharge:{application.id}"
    assert balance(world.acme) == Decimal("1234.56")
    assert ledger_differences(db.session) == []


def test_rejected_and_declined_applications_write_no_order(world):
    for decision in ("reject", "decline"):
        application = create_application(db.session, world.users["sales"], world.acme.id, "Payer", "CNY", "10",
                                         submit=True)
        review(db.session, world.users["finance"], application, decision, "no such transfer")
    db.session.commit()
    assert offline_orders() == []
    assert db.session.scalar(select(func.count()).select_from(OfflineRecharge)
                             .where(OfflineRecharge.order_id.isnot(None))) == 0


def test_a_retried_approval_credits_once_and_writes_one_order(world):
    application = approve(world, amount="500.00")
    for _ in range(3):
        with pytest.raises(AlreadyReviewed):
            review(db.session, world.users["finance"], application, "approve")
        db.session.rollback()
    # Even the credit step itself, run again for the approved application, writes nothing.
    terms = RechargeTerms(world.acme.id, application.payer, "CNY", Decimal("500.00"), application.reference)
    with pytest.raises(AlreadyReviewed, match=rf"#{application.id} was already credited"):
        with db.session.begin_nested():
            _credit_approved(db.session, world.users["finance"], application.id, terms, application.reviewed_at)
    db.session.commit()
    assert len(offline_orders()) == 1
    assert balance(world.acme) == Decimal("500.00")
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)
                             .where(LedgerEntry.offline_recharge_id == application.id)) == 1


def test_the_database_refuses_one_order_for_two_applications_or_for_an_unapproved_one(world):
    first, second = approve(world, reference="A-1"), approve(world, reference="A-2")
    with pytest.raises(sa.exc.IntegrityError):
        with db.session.begin_nested():
            db.session.execute(sa.update(OfflineRecharge).where(OfflineRecharge.id == second.id)
                               .values(order_id=first.order_id))
    other = Order(number="RC-OTHER", kind="recharge", status="paid", company_id=world.acme.id, currency="CNY",
                  total=Decimal("1.00"))
    db.session.add(other)
    db.session.flush()
    pending = create_application(db.session, world.users["sales"], world.acme.id, "Payer", "CNY", "10", submit=True)
    with pytest.raises(sa.exc.IntegrityError):  # only an approved application has an order
        with db.session.begin_nested():
            db.session.execute(sa.update(OfflineRecharge).where(OfflineRecharge.id == pending.id)
                               .values(order_id=other.id))


def test_the_offline_order_cannot_be_paid_again_or_cancelled(world):
    approve(world)
    [order] = offline_orders()
    customer = world.users["customer"]
    with pytest.raises(DomainError, match="cannot be paid from the balance"):
        pay_with_balance(db.session, customer, order, date.today())
    with pytest.raises(DomainError, match="not awaiting payment"):
        mark_paid(db.session, order, "wechat", "WX-1", order.total, order.currency, date.today())
    with pytest.raises(DomainError, match="not awaiting payment"):
        cancel_order(db.session, customer, order)
    db.session.rollback()
    assert offline_orders()[0].status == "paid" and balance(world.acme) == Decimal("1000.00")


# --- refunds -----------------------------------------------------------------------------------------

def test_refunding_an_offline_recharge_takes_the_money_back_once_and_credits_nothing(world):
    approve(world, amount="300.00")
    [order] = offline_orders()
    refund = request_refund(db.session, world.users["finance"], order, None, "paid twice by the customer")
    checker = make_user("finance2", "finance")
    db.session.commit()
    result = approve_refunds(db.session, checker, [refund], date.today())
    db.session.commit()
    assert result.changed == (order.number,) and result.refused == ()
    db.session.expire_all()
    assert balance(world.acme) == Decimal("0.00")
    order = db.session.get(Order, order.id)
    assert (order.status, order.refunded) == ("refunded", Decimal("300.00"))
    assert db.session.get(OrderRefund, refund.id).status == "completed"  # finance pays it back outside
    kinds = db.session.execute(select(LedgerEntry.kind, LedgerEntry.amount_minor).where(
        LedgerEntry.order_id == order.id).order_by(LedgerEntry.id)).all()
    assert kinds == [("offline_recharge", 30000), ("refund", -30000)]
    again = approve_refunds(db.session, checker, [refund], date.today())
    assert again.changed == () and "not awaiting approval" in again.refused[0][1]
    with pytest.raises(DomainError, match="cannot be refunded"):
        request_refund(db.session, world.users["finance"], order)
    db.session.rollback()
    assert balance(world.acme) == Decimal("0.00") and ledger_differences(db.session) == []


def test_a_spent_offline_recharge_cannot_be_refunded_into_a_negative_balance(world):
    approve(world, amount="300.00")
    [order] = offline_orders()
    debit(db.session, wallet_for(db.session, world.acme.id, "CNY"), Decimal("100.00"), "payment", "spent:1")
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asks")
    checker = make_user("finance2", "finance")
    db.session.commit()
    result = approve_refunds(db.session, checker, [refund], date.today())
    db.session.commit()
    assert result.changed == () and "Insufficient CNY balance" in result.refused[0][1]
    assert balance(world.acme) == Decimal("200.00")
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "paid"
    assert db.session.get(OrderRefund, refund.id).status == "requested"
    assert ledger_differences(db.session) == []


# --- the customer's 充值记录 and finance's 订单管理 ----------------------------------------------------

def test_the_customer_of_that_company_sees_the_paid_offline_recharge_and_no_pay_link(client, login, world):
    application = approve(world, amount="888.00", reference="BANK-777")
    [order] = offline_orders()
    login("customer")
    page = client.get(RECORDS).get_data(as_text=True)
    assert order.number in page and "Offline payment" in page and "BANK-777" in page
    assert "CN¥888.00" in page
    assert "rd-pay" not in page  # paid: no online "pay" link
    detail = client.get(f"/admin/renewal_center/order/{order.number}/").get_data(as_text=True)
    assert "Offline payment" in detail and f"Offline recharge #{application.id}" in detail
    assert "rd-confirm-pay" not in detail
    pay = client.get(f"/admin/renewal_center/order/{order.number}/pay/", follow_redirects=True)
    assert "is not awaiting payment" in pay.get_data(as_text=True)
    answer = post(client, f"/admin/renewal_center/order/{order.number}/pay/", {"method": "balance"},
                  follow_redirects=True)
    assert "is not awaiting payment" in answer.get_data(as_text=True)
    assert balance(world.acme) == Decimal("888.00")


@pytest.mark.parametrize("username", ["globex", "north"])
def test_other_customers_do_not_see_it(client, login, world, username):
    """Globex (another tenant) and North (a subsidiary: the application was Acme's) see nothing of it."""
    approve(world, reference="BANK-777")
    [order] = offline_orders()
    login(username)
    page = client.get(RECORDS).get_data(as_text=True)
    assert order.number not in page and "BANK-777" not in page
    assert client.get(f"/admin/renewal_center/order/{order.number}/").status_code == 404
    assert client.get(f"{RECORDS}details/?id={order.id}").status_code in (302, 404)


def test_finance_order_management_lists_it_with_method_and_reference(client, login, world):
    approve(world, amount="66.00", reference="BANK-66")
    [order] = offline_orders()
    login("finance")
    page = client.get(MANAGEMENT + "?flt0_payment_method_equals=offline").get_data(as_text=True)
    assert order.number in page and "Offline payment" in page and "BANK-66" in page
    export = client.get(MANAGEMENT + "export/xlsx/")
    rows = list(openpyxl.load_workbook(io.BytesIO(export.data), read_only=True).active.iter_rows(values_only=True))
    assert any(order.number in row and "Offline payment" in row for row in rows)


def test_the_recharge_records_export_names_the_offline_payment(client, login, world):
    approve(world, payer="=HYPERLINK(\"http://x\")", reference="=1+1")
    login("customer")
    answer = client.get(RECORDS + "export/csv/")
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "Offline payment" in text and "\n=" not in text and ",=" not in text


# --- 余额明细 ------------------------------------------------------------------------------------------

@pytest.fixture
def movements(world):
    """Acme and its subsidiary North move money; Globex (another tenant) too; Acme has a commission wallet."""
    approve(world, amount="1000.00", reference="ACME-1")
    credit(db.session, wallet_for(db.session, world.north.id, "USD"), Decimal("20.00"), "recharge", "t:north",
           memo="North top-up")
    debit(db.session, wallet_for(db.session, world.acme.id, "CNY"), Decimal("10.00"), "payment", "t:pay",
          memo="=SUM(A1:A9)")
    credit(db.session, wallet_for(db.session, world.globex.id, "CNY"), Decimal("77.00"), "recharge", "t:globex",
           memo="Globex secret top-up")
    credit(db.session, wallet_for(db.session, world.acme.id, "CNY", kind="commission"), Decimal("5.00"),
           "commission", "t:commission", memo="Commission entry")
    db.session.commit()


def test_balance_history_is_in_the_customer_menu_and_closed_to_staff(client, login, world):
    login("customer")
    assert HISTORY in client.get("/admin/").get_data(as_text=True)
    assert client.get(HISTORY).status_code == 200
    for username in ("finance", "sales", "support"):
        login.logout()
        login(username)
        assert client.get(HISTORY).status_code == 403, username


def test_balance_history_shows_the_tree_newest_first_and_nothing_else(client, login, world, movements):
    login("customer")
    page = client.get(HISTORY).get_data(as_text=True)
    assert "North top-up" in page and "Offline recharge #" in page and "SUM(A1:A9)" in page
    assert "Globex secret top-up" not in page and "Commission entry" not in page
    [order] = offline_orders()
    assert f'/admin/renewal_center/order/{order.number}/' in page
    # newest first: the payment (written last of Acme's) comes before the offline recharge
    assert page.index("SUM(A1:A9)") < page.index("Offline recharge #")
    assert "CN¥990.00" in page  # the balance after the payment
    login.logout()
    login("north")
    page = client.get(HISTORY).get_data(as_text=True)
    assert "North top-up" in page and "Offline recharge #" not in page


def test_balance_history_refuses_other_tenants_rows_and_filter_tricks(client, login, world, movements):
    globex_entry = db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.idempotency_key == "t:globex"))
    own_entry = db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.idempotency_key == "t:north"))
    login("customer")
    assert client.get(f"{HISTORY}details/?id={own_entry}").status_code == 200
    answer = client.get(f"{HISTORY}details/?id={globex_entry}")
    assert answer.status_code in (302, 404) and "Globex secret" not in answer.get_data(as_text=True)
    for query in (f"flt0_company_in_the_tree_of={world.globex.id}", "flt0_kind_equals=recharge",
                  "flt0_currency_equals=CNY", "search=Globex"):
        page = client.get(f"{HISTORY}?{query}").get_data(as_text=True)
        assert "Globex secret top-up" not in page, query
    page = client.get(f"{HISTORY}?flt0_company_in_the_tree_of={world.north.id}").get_data(as_text=True)
    assert "North top-up" in page and "SUM(A1:A9)" not in page
    page = client.get(f"{HISTORY}?flt0_currency_equals=USD").get_data(as_text=True)
    assert "North top-up" in page and "SUM(A1:A9)" not in page
    page = client.get(f"{HISTORY}?flt0_kind_equals=payment").get_data(as_text=True)
    assert "SUM(A1:A9)" in page and "North top-up" not in page


def test_balance_history_exports_the_tree_formula_safe(client, login, world, movements):
    login("customer")
    answer = client.get(HISTORY + "export/xlsx/")
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.data))
    cells = [c.value for row in book.active.iter_rows() for c in row]
    texts = [c for c in cells if isinstance(c, str)]
    assert any("North top-up" in t for t in texts) and not any("Globex" in t for t in texts)
    assert not any(t.startswith("=") for t in texts)
    assert any(t.endswith("=SUM(A1:A9)") for t in texts)  # kept, but as text
    [order] = offline_orders()
    assert order.number in cells
    csv = client.get(HISTORY + "export/csv/").get_data(as_text=True)
    assert "North top-up" in csv and "Globex" not in csv and ",=SUM" not in csv


# --- the migration's backfill ------------------------------------------------------------------------

def test_the_migration_gives_applications_approved_before_it_their_order():
    """0032 writes the order of each application approved before it (on the database under test)."""
    from actions.texts import render
    from conftest import database_at, migrate

    with database_at("backfill", "0030_payment_attempt_qr") as app:
        utc = "+00" if db.engine.dialect.name == "postgresql" else ""
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO company (id, name, path, status, created_at) VALUES (1, 'Acme', '/1/', 'active', "
                f"'2026-01-01 00:00:00{utc}')"))
            conn.execute(sa.text(
                "INSERT INTO wallet (id, company_id, currency, kind, balance_minor, updated_at) VALUES "
                f"(1, 1, 'CNY', 'prepaid', 12345, '2026-03-04 05:06:07{utc}')"))
            conn.execute(sa.text(
                "INSERT INTO offline_recharge (id, company_id, payer, currency, amount_minor, reference, status, "
                "created_at, reviewed_at, review_comment) VALUES "
                f"(7, 1, 'Old Payer', 'CNY', 12345, 'OLD-1', 'approved', '2026-03-01 00:00:00{utc}', "
                f"'2026-03-04 05:06:07{utc}', ''), "
                f"(8, 1, 'Waiting', 'CNY', 500, '', 'submitted', '2026-03-01 00:00:00{utc}', NULL, '')"))
            conn.execute(sa.text(
                "INSERT INTO ledger_entry (id, wallet_id, kind, currency, amount_minor, balance_after_minor, "
                "offline_recharge_id, idempotency_key, memo, created_at) VALUES "
                "(1, 1, 'offline_recharge', 'CNY', 12345, 12345, 7, 'offline_recharge:7', 'old', "
                f"'2026-03-04 05:06:07{utc}')"))
        migrate(app, "head")
        with app.test_request_context():
            [order] = db.session.scalars(select(Order)).all()
            assert (order.kind, order.status, order.payment_method, order.total, order.company_id) == (
                "recharge", "paid", "offline", Decimal("123.45"), 1)
            assert order.number == f"RC20260304-{order.id:06d}"
            assert order.paid_at.isoformat() == "2026-03-04T05:06:07+00:00"
            assert order.note == "Offline recharge #7 from Old Payer, reference OLD-1"
            [line] = order.lines
            assert line.net == Decimal("123.45") and line.description == "Recharge 123.45 CNY"
            assert render(line.description_data) == "Recharge CN¥123.45"
            assert db.session.get(OfflineRecharge, 7).order_id == order.id
            assert db.session.get(OfflineRecharge, 8).order_id is None
            assert db.session.get(LedgerEntry, 1).order_id == order.id
            assert ledger_differences(db.session) == []


def test_the_reviewed_list_names_each_approved_applications_order(client, login, world):
    approve(world, reference="BANK-9")
    [order] = offline_orders()
    login("finance")
    page = client.get("/admin/recharge_reviewed/").get_data(as_text=True)
    assert order.number in page
    rows = list(openpyxl.load_workbook(io.BytesIO(client.get("/admin/recharge_reviewed/export/xlsx/").data),
                                       read_only=True).active.iter_rows(values_only=True))
    assert any(order.number in row for row in rows)



def test_balance_history_filters_by_date_and_offers_only_the_readers_companies(client, login, world, movements):
    login("customer")
    page = client.get(HISTORY).get_data(as_text=True)
    assert "Acme North" in page and "Globex" not in page  # the company filter's options: the reader's tree
    before = client.get(f"{HISTORY}?flt0_time_smaller_than=2020-01-01+00:00:00").get_data(as_text=True)
    assert "North top-up" not in before and "SUM(A1:A9)" not in before
    after = client.get(f"{HISTORY}?flt0_time_greater_than=2020-01-01+00:00:00").get_data(as_text=True)
    assert "North top-up" in after and "SUM(A1:A9)" in after and "Globex" not in after


def test_refunding_an_offline_recharge_over_http_asks_first_and_takes_the_money_back_once(client, login, world):
    import re

    approve(world, amount="40.00", reference="BANK-40")
    [order] = offline_orders()
    make_user("finance2", "finance")
    db.session.commit()
    login("finance")
    ask = post(client, MANAGEMENT + "action/", [("action", "refund"), ("rowid", str(order.id))])
    assert "Offline payment" in ask.get_data(as_text=True) and "rd-offline-refund-note" in ask.get_data(as_text=True)
    token = re.search(r'name="confirm_token" value="([^"]+)"', ask.get_data(as_text=True)).group(1)
    done = post(client, MANAGEMENT + "refund/", [("rowid", str(order.id)), ("confirm_token", token),
                                                 ("reason", "transfer returned")], follow_redirects=True)
    assert "1 refunds requested" in done.get_data(as_text=True)
    refund_id = db.session.scalar(select(OrderRefund.id).where(OrderRefund.order_id == order.id))
    login.logout()
    login("finance2")
    ask = post(client, "/admin/orderrefund/action/", [("action", "approve"), ("rowid", str(refund_id))])
    assert "finance pays the money back to the payer outside Renewdesk" in ask.get_data(as_text=True)
    token = re.search(r'name="confirm_token" value="([^"]+)"', ask.get_data(as_text=True)).group(1)
    for _ in range(2):  # a second post of the same confirmation pays nothing back again
        post(client, "/admin/orderrefund/approve/", [("rowid", str(refund_id)), ("confirm_token", token)])
    db.session.expire_all()
    assert db.session.get(OrderRefund, refund_id).status == "completed"
    assert db.session.get(Order, order.id).status == "refunded"
    assert balance(world.acme) == Decimal("0.00") and ledger_differences(db.session) == []
