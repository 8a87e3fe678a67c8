"""Bank transfers (seed 000) as finance and the customer meet them: the payee account is shown, a receipt
whose amount differs from the order is flagged (on upload and in finance's list), finance confirms the
amount actually received (the order is paid only when it equals the total; anything else is credited
to the balance), and finance sees the receipt inline through a scoped, role-checked route."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from actions import DomainError
from actions.bank_transfers import AlreadyReviewed, confirm_receipt, payee_for, submit_receipt
from actions.coins import create_coin_order
from actions.wallets import balance_of, ledger_differences
from app import DEMO_BANK_TRANSFER_PAYEE
from conftest import confirm_post, post
from models import AuditEvent, BankTransferReceipt, LedgerEntry, Order, db
import test_invoices

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"0" * 64
TODAY = date(2024, 5, 15)
REVIEW = "/admin/bank_transfer_review/"


# Receipts go to a per-test instance folder; action tests run inside a request (lazy messages).
request_context = test_invoices.request_context


def coin_order(world, company=None, amount="2160.00") -> Order:
    return create_coin_order(db.session, world.users["customer"], company or world.acme, amount, "bank_transfer")


def upload(world, order, folder, amount="2160.00", name="receipt.png", data=PNG, user="customer"):
    return submit_receipt(db.session, world.users[user], order, "Acme Logistics Ltd", "6222 0000 1111", amount,
                          name, data, folder)


def coins(company) -> Decimal:
    return balance_of(db.session, company.id, "COIN")


# --- the payee account ------------------------------------------------------------------------------

def test_payee_comes_from_the_setting_per_currency():
    setting = {"CNY": {"name": "收款公司", "bank": "工商银行", "account": "6222 1234"}, "USD": {"name": "X"}}
    assert payee_for(setting, "CNY")["account"] == "6222 1234"
    assert payee_for(setting, "USD") is None  # incomplete: no bank, no account
    assert payee_for(setting, "VND") is None
    assert payee_for('{"CNY": {"name": "A", "bank": "B", "account": "C"}}', "CNY")["bank"] == "B"
    assert payee_for("not json", "CNY") is None and payee_for(None, "CNY") is None


def test_customer_sees_the_payee_account_where_they_pay(app, client, login, world):
    order = coin_order(world)
    db.session.commit()
    login("customer")
    demo = DEMO_BANK_TRANSFER_PAYEE["CNY"]
    for url in (f"/admin/bank_transfer/upload/?order={order.number}", "/admin/bank_transfer/"):
        page = client.get(url).get_data(as_text=True)
        assert demo["name"] in page and demo["bank"] in page and demo["account"] in page, url
    page = client.get("/admin/bank_transfer/").get_data(as_text=True)
    assert f"/admin/renewal_center/order/{order.number}/" in page  # where it can be paid from the balance too


def test_no_payee_configured_says_ask_finance(app, client, login, world, monkeypatch):
    monkeypatch.setitem(client.application.config, "BANK_TRANSFER_PAYEE", None)
    order = coin_order(world)
    db.session.commit()
    login("customer")
    page = client.get(f"/admin/bank_transfer/upload/?order={order.number}").get_data(as_text=True)
    assert "Ask finance for the bank account" in page


# --- the amount received decides ---------------------------------------------------------------------

def test_the_order_total_received_pays_the_order_once(app, world, tmp_path):
    order = coin_order(world)
    receipt = upload(world, order, tmp_path)
    confirm_receipt(db.session, world.users["finance"], receipt, TODAY, "2,160.00")
    db.session.commit()
    db.session.expire_all()
    assert (order.status, receipt.status, receipt.received) == ("paid", "confirmed", Decimal("2160.00"))
    assert coins(world.acme) == Decimal("216000")
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("0")
    with pytest.raises(AlreadyReviewed):
        confirm_receipt(db.session, world.users["finance"], receipt, TODAY, "2160.00")


@pytest.mark.parametrize("declared, received", [("2100.00", "2100.00"), ("2160.00", "2000.00"),
                                                ("2200.00", "2200.00"), ("2100.00", "2160.01")])
def test_any_other_amount_is_credited_to_the_balance_and_the_order_stays_unpaid(app, world, tmp_path, declared,
                                                                                  received):
    order = coin_order(world)
    receipt = upload(world, order, tmp_path, amount=declared)
    confirm_receipt(db.session, world.users["finance"], receipt, TODAY, received)
    db.session.commit()
    db.session.expire_all()
    assert (order.status, receipt.status, receipt.received) == ("pending", "credited", Decimal(received))
    assert coins(world.acme) == Decimal("0")  # nothing delivered
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal(received)
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.kind == "bank_transfer"))
    assert (entry.amount, entry.order_id, entry.actor_id) == (Decimal(received), order.id,
                                                               world.users["finance"].id)
    assert entry.memo_data["key"] == "ledger.bank_transfer"
    assert ledger_differences(db.session) == []
    with pytest.raises(AlreadyReviewed):  # credited once, never twice
        confirm_receipt(db.session, world.users["finance"], receipt, TODAY, received)
    db.session.rollback()
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal(received)


def test_credited_money_can_pay_the_order_from_the_balance(app, world, tmp_path):
    from actions.orders import pay_with_balance

    order = coin_order(world)
    receipt = upload(world, order, tmp_path, amount="2200.00")
    confirm_receipt(db.session, world.users["finance"], receipt, TODAY, "2200.00")
    pay_with_balance(db.session, world.users["customer"], order, TODAY)
    db.session.commit()
    assert order.status == "paid" and coins(world.acme) == Decimal("216000")
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("40.00")
    assert ledger_differences(db.session) == []


@pytest.mark.parametrize("received, message", [("", "Amount received"), ("0", "Amount received"),
                                               ("-5", "Amount received"), ("12.345", "Amount received"),
                                               ("1e3", "Amount received"), ("abc", "Amount received")])
def test_the_amount_received_is_parsed_and_named_in_errors(app, world, tmp_path, received, message):
    order = coin_order(world)
    receipt = upload(world, order, tmp_path)
    with pytest.raises(DomainError) as caught:
        confirm_receipt(db.session, world.users["finance"], receipt, TODAY, received)
    assert message in str(caught.value)
    db.session.rollback()
    db.session.expire_all()
    assert receipt.status == "submitted" and order.status == "pending"
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_only_finance_confirms_amounts(app, world, tmp_path):
    receipt = upload(world, coin_order(world), tmp_path)
    for user in ("customer", "sales", "support"):
        with pytest.raises(DomainError):
            confirm_receipt(db.session, world.users[user], receipt, TODAY, "2160.00")
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("0")


def test_the_audit_trail_tells_what_arrived_in_the_readers_language(app, world, tmp_path):
    from flask_babel import force_locale

    from actions.texts import render

    receipt = upload(world, coin_order(world), tmp_path, amount="2100.00")
    confirm_receipt(db.session, world.users["finance"], receipt, TODAY, "2100.00")
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.model == "bank_transfer_receipt")
                                .order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["submit", "credit"]
    assert "2,160.00" in events[0].summary and "2,100.00" in events[0].summary  # the flag, in English too
    with force_locale("zh_Hans_CN"):
        text = render(events[1].summary_data, events[1].summary)
    assert "余额" in text and "2,100.00" in text


# --- HTTP: the flag on upload, the list filter, the confirmation, the inline receipt ------------------

def _upload(client, number, amount, data=PNG, name="receipt.png"):
    return post(client, f"/admin/bank_transfer/upload/?order={number}",
                {"payer_company": "Acme Ltd", "payer_account": "6222", "amount": amount,
                 "file": (io.BytesIO(data), name)}, content_type="multipart/form-data", follow_redirects=True)


def test_a_different_amount_is_flagged_on_upload_and_in_finances_list(app, client, login, world):
    odd, even = coin_order(world), coin_order(world, amount="72.00")
    db.session.commit()
    login("customer")
    page = _upload(client, odd.number, "2,100.00").get_data(as_text=True)
    assert "differs from the order total" in page and "alert-warning" in page
    page = _upload(client, even.number, "72.00").get_data(as_text=True)
    assert "finance will confirm" in page and "differs from the order total (" not in page
    login.logout()
    login("finance")
    listing = client.get(REVIEW).get_data(as_text=True)
    assert odd.number in listing and even.number in listing and "≠" in listing
    differs = client.get(REVIEW + "?flt0_amount_vs_order_total_equals=1").get_data(as_text=True)
    assert odd.number in differs and even.number not in differs
    equal = client.get(REVIEW + "?flt0_amount_vs_order_total_equals=0").get_data(as_text=True)
    assert even.number in equal and odd.number not in equal


def test_finance_confirms_the_amount_received_over_http(app, client, login, world):
    order = coin_order(world)
    db.session.commit()
    login("customer")
    _upload(client, order.number, "2100.00")
    receipt = db.session.scalar(select(BankTransferReceipt))
    login.logout()
    login("finance")
    review = f"{REVIEW}review/?id={receipt.id}"
    page = client.get(review).get_data(as_text=True)
    assert "rd-mismatch" in page and 'name="received"' in page and "rd-receipt-image" in page
    asked = post(client, review, {"decision": "confirm", "received": "2,100.00"}).get_data(as_text=True)
    assert "not the order total" in asked  # the confirmation page says where the money goes
    page = confirm_post(client, review, {"decision": "confirm", "received": "2,100.00"},
                        follow_redirects=True).get_data(as_text=True)
    assert "credited to the customer" in page
    db.session.expire_all()
    assert (receipt.status, order.status) == ("credited", "pending")
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("2100.00")
    ledger = client.get("/admin/ledgerentry/").get_data(as_text=True)
    assert f"Bank transfer receipt #{receipt.id}" in ledger


def test_finance_sees_the_receipt_inline_and_safely(app, client, login, world):
    order = coin_order(world)
    db.session.commit()
    login("customer")
    _upload(client, order.number, "2160.00")
    receipt = db.session.scalar(select(BankTransferReceipt))
    login.logout()
    login("finance")
    answer = client.get(f"{REVIEW}file/?id={receipt.id}&inline=1")
    assert answer.status_code == 200 and answer.data == PNG
    assert answer.headers["Content-Type"] == "image/png"
    assert answer.headers["Content-Disposition"].startswith("inline")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert client.get(f"{REVIEW}file/?id={receipt.id}").headers["Content-Disposition"].startswith("attachment")


def test_a_stored_file_that_is_not_what_it_claims_is_never_shown_inline(app, client, login, world):
    """An SVG (or HTML) under an image's name never renders: attachment, octet-stream, nosniff."""
    order = coin_order(world)
    db.session.commit()
    login("customer")
    _upload(client, order.number, "2160.00")
    receipt = db.session.scalar(select(BankTransferReceipt))
    stored = Path(client.application.instance_path) / "receipts" / receipt.file_sha256
    stored.write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')
    login.logout()
    login("finance")
    answer = client.get(f"{REVIEW}file/?id={receipt.id}&inline=1")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["Content-Disposition"].startswith("attachment")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name, data", [
    ("receipt.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ("receipt.png", b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
    ("receipt.html", b"<html><script>alert(1)</script></html>"),
    ("receipt.pdf", b"<html>%PDF-</html>"),
])
def test_hostile_receipt_files_are_refused_at_upload(app, client, login, world, name, data):
    order = coin_order(world)
    db.session.commit()
    login("customer")
    page = _upload(client, order.number, "2160.00", data=data, name=name).get_data(as_text=True)
    assert "not a PNG, JPEG or PDF" in page
    assert db.session.scalar(select(func.count()).select_from(BankTransferReceipt)) == 0


def test_a_pdf_receipt_is_a_link_not_an_image(app, client, login, world):
    order = coin_order(world)
    db.session.commit()
    login("customer")
    _upload(client, order.number, "2160.00", data=PDF, name="receipt.pdf")
    receipt = db.session.scalar(select(BankTransferReceipt))
    login.logout()
    login("finance")
    page = client.get(f"{REVIEW}review/?id={receipt.id}").get_data(as_text=True)
    assert "rd-receipt-pdf" in page and "rd-receipt-image" not in page
    answer = client.get(f"{REVIEW}file/?id={receipt.id}&inline=1")
    assert answer.headers["Content-Type"] == "application/pdf" and answer.headers["Content-Disposition"].startswith(
        "inline")


def test_a_customer_cannot_see_another_companys_receipt_image(app, client, login, world):
    order = coin_order(world)
    db.session.commit()
    login("customer")
    _upload(client, order.number, "2160.00")
    receipt = db.session.scalar(select(BankTransferReceipt))
    own = f"/admin/bank_transfer/file/{receipt.id}?inline=1"
    answer = client.get(own)
    assert answer.status_code == 200 and answer.data == PNG
    login.logout()
    login("globex")
    assert client.get(own).status_code == 404
    assert client.get(f"{REVIEW}file/?id={receipt.id}&inline=1").status_code == 403
    assert client.get(f"{REVIEW}review/?id={receipt.id}").status_code == 403
    login.logout()
    login("north")  # a subsidiary's administrator does not see its parent's receipts
    assert client.get(own).status_code == 404


@pytest.mark.parametrize("user", ["sales", "support"])
def test_other_staff_cannot_open_receipts_or_confirm(app, client, login, world, user):
    order = coin_order(world)
    receipt = upload(world, order, Path(client.application.instance_path) / "receipts")
    db.session.commit()
    login(user)
    assert client.get(f"{REVIEW}file/?id={receipt.id}&inline=1").status_code == 403
    answer = post(client, f"{REVIEW}review/?id={receipt.id}", {"decision": "confirm", "received": "2160.00"})
    assert answer.status_code == 403
    db.session.expire_all()
    assert receipt.status == "submitted"
