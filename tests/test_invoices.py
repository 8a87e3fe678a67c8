"""Seed 000 section 5: invoice titles, invoice requests over unbilled orders, finance issues or rejects.

The rules are tested as functions; HTTP tests prove the wiring, roles, scope, uploads and mail.
"""
from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from decimal import Decimal
from itertools import count

import pytest
from sqlalchemy import select, update

from actions import DomainError, NotAllowed
from actions.invoices import (
    AlreadyReviewed, issue_invoice, reject_invoice_request, request_invoice, save_invoice_title,
)
from actions.orders import create_recharge_order, mark_paid, pay_with_balance
from actions.tenants import credit_code_check_char
from actions.wallets import debit, wallet_for
from app import mail
from conftest import confirm_post, post, race
from models import AuditEvent, Company, InvoiceRequest, InvoiceTitle, Order, User, db, utcnow

TITLES = "/admin/invoicetitle/"
REQUESTS = "/admin/invoice_request_customer/"
REVIEW = "/admin/invoice_review/"
TODAY = date(2024, 5, 15)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"0" * 64
_numbers = count(1)


def tax_code(n: int) -> str:
    """A valid 18-character unified social credit code."""
    first = f"91310000{n:09d}"
    return first + credit_code_check_char(first)


@pytest.fixture(autouse=True)
def request_context(request, app, tmp_path, monkeypatch):
    """Action tests run in a request (lazy messages need a locale); HTTP tests use the client's.

    Documents go to a per-test instance folder, not the checkout's."""
    if "client" in request.fixturenames:
        monkeypatch.setattr(request.getfixturevalue("web_app"), "instance_path", str(tmp_path / "instance"))
        yield
        return
    with app.test_request_context():
        yield


def users(world, name) -> User:
    return db.session.get(User, world.users[name].id)


def paid_order(company, total: str = "100.00", currency: str = "CNY", status: str = "paid",
               kind: str = "renewal") -> Order:
    order = Order(number=f"T{next(_numbers):06d}", kind=kind, status=status, company_id=company.id, currency=currency,
                  total=Decimal(total), payment_method="alipay" if status != "pending" else None,
                  paid_at=utcnow() if status != "pending" else None)
    db.session.add(order)
    db.session.commit()
    return order


def ordinary_title(world, company=None, actor="customer", name="Acme Logistics Ltd") -> InvoiceTitle:
    title = save_invoice_title(db.session, users(world, actor), company or world.acme, "ordinary", title=name,
                               tax_id=tax_code(1))
    db.session.commit()
    return title


SPECIAL = {"title": "Acme Logistics Ltd", "tax_id": tax_code(2), "address": "1 Harbour Rd, Shanghai",
           "phone": "021-5555 0000", "bank_name": "Bank of Shanghai", "bank_account": "6222 0000 1111"}


def special_title(world, tmp_path, company=None, actor="customer", **changes) -> InvoiceTitle:
    values = {**SPECIAL, "document_name": "registration.pdf", "document_data": PDF, **changes}
    title = save_invoice_title(db.session, users(world, actor), company or world.acme, "special",
                               folder=tmp_path / "docs", **values)
    db.session.commit()
    return title


def fresh(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def ask(world, orders, invoice_type="electronic_ordinary", company=None, actor="customer", **contact):
    contact = contact or {"email": "ap@acme.example"}
    orders = [db.session.get(Order, o.id) for o in orders]
    made = request_invoice(db.session, users(world, actor), company or world.acme, orders, invoice_type, **contact)
    db.session.commit()
    return made


# --- titles ---------------------------------------------------------------------------------------

def test_an_ordinary_title_needs_the_company_name_and_a_valid_tax_id(world):
    title = ordinary_title(world)
    assert (title.kind, title.title, title.tax_id, title.address) == ("ordinary", "Acme Logistics Ltd", tax_code(1),
                                                                      None)
    for values, message in (({"title": " ", "tax_id": tax_code(1)}, "Company name on the invoice is required"),
                            ({"title": "Acme", "tax_id": ""}, "Tax ID"),
                            ({"title": "Acme", "tax_id": tax_code(1)[:-1] + "0"}, "check character")):
        with pytest.raises(DomainError, match=message):
            save_invoice_title(db.session, users(world, "customer"), world.acme, "ordinary", **values)
        db.session.rollback()


@pytest.mark.parametrize("field", ["title", "address", "phone", "bank_name", "bank_account"])
def test_a_special_title_needs_every_field(world, tmp_path, field):
    with pytest.raises(DomainError, match="is required"):
        special_title(world, tmp_path, **{field: ""})
    db.session.rollback()
    assert db.session.scalar(select(InvoiceTitle).where(InvoiceTitle.company_id == world.acme.id)) is None


def test_a_registered_phone_typed_with_a_chinese_input_method_is_kept_as_ascii(world, tmp_path):
    """专用发票's 注册电话 typed as （０２１）１２３４５６７８ is the phone (021)12345678; letters are still refused."""
    title = special_title(world, tmp_path, phone="（０２１）１２３４５６７８")
    assert fresh(InvoiceTitle, title.id).phone == "(021)12345678"
    with pytest.raises(DomainError, match="not a phone number"):
        special_title(world, tmp_path, phone="电话")


def test_a_special_title_needs_the_registration_document(world, tmp_path):
    with pytest.raises(DomainError, match="general-taxpayer registration"):
        special_title(world, tmp_path, document_name="", document_data=b"")


@pytest.mark.parametrize("name, data, message", [
    ("registration.pdf", b"MZ\x90\x00 not a document", "is not a PDF, PNG or JPEG file"),
    ("registration.pdf", PNG, "is a image/png file but its name says otherwise"),
    ("registration.exe", PDF, "name says otherwise"),
    ("registration.pdf", PDF + b"0" * 2000, "larger than"),
    ("registration.pdf", b"", "choose the file"),
])
def test_the_document_is_checked_by_its_bytes_and_size(world, tmp_path, name, data, message):
    with pytest.raises(DomainError, match=message):
        save_invoice_title(db.session, users(world, "customer"), world.acme, "special", **SPECIAL,
                           document_name=name, document_data=data or b"", folder=tmp_path, max_bytes=1024)


@pytest.mark.parametrize("name, data", [("reg.pdf", PDF), ("reg.PNG", PNG), ("reg.jpeg", JPEG)])
def test_the_document_is_kept_once_under_its_hash(world, tmp_path, name, data):
    title = special_title(world, tmp_path, document_name=f"C:\\scans\\{name}", document_data=data)
    digest = hashlib.sha256(data).hexdigest()
    assert (title.registration_file_sha256, title.registration_file_name) == (digest, name)
    assert (tmp_path / "docs" / digest).read_bytes() == data


def test_saving_a_title_again_replaces_it_and_keeps_the_document(world, tmp_path):
    first = special_title(world, tmp_path)
    again = special_title(world, tmp_path, bank_account="6222 9999", document_name="", document_data=b"")
    assert again.id == first.id and again.bank_account == "6222 9999"
    assert again.registration_file_sha256 == hashlib.sha256(PDF).hexdigest()
    assert db.session.query(InvoiceTitle).filter_by(company_id=world.acme.id).count() == 1
    ordinary_title(world)
    assert db.session.query(InvoiceTitle).filter_by(company_id=world.acme.id).count() == 2  # one of each kind
    events = db.session.scalars(select(AuditEvent.action).where(AuditEvent.model == "invoice_title")).all()
    assert sorted(events) == ["create", "create", "edit"]


def test_titles_of_other_companies_are_refused(world, tmp_path):
    with pytest.raises(DomainError, match="Choose one of your companies"):
        ordinary_title(world, company=world.globex)
    with pytest.raises(NotAllowed):
        ordinary_title(world, actor="finance")


# --- requests --------------------------------------------------------------------------------------

def test_a_request_takes_paid_unbilled_orders_of_the_tree(world):
    ordinary_title(world)
    orders = [paid_order(world.acme, "100.00"), paid_order(world.north, "50.50"), paid_order(world.fleet, "0.50")]
    made = ask(world, orders, email="ap@acme.example", remark="PO 4711\nproject X")

    made = fresh(InvoiceRequest, made.id)
    assert (made.status, made.invoice_type, made.total, made.currency, made.email) == (
        "requested", "electronic_ordinary", Decimal("151.00"), "CNY", "ap@acme.example")
    assert made.remark == "PO 4711\nproject X" and made.requested_by_id == world.users["customer"].id
    assert made.title.kind == "ordinary" and made.company_id == world.acme.id
    for order in orders:
        order = fresh(Order, order.id)
        assert (order.invoice_request_id, order.invoice_status) == (made.id, "requested")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.model == "invoice_request"))
    assert event.action == "request" and all(o.number in event.summary for o in orders)


@pytest.mark.parametrize("case, message", [
    ("none", "Select at least one paid order"),
    ("pending", "not paid"),
    ("refunded", "not paid"),
    ("foreign", "not orders of Acme Logistics"),
    ("sibling", "not orders of Acme North"),
    ("coins", "paid with coins"),
    ("currencies", "one invoice is in one currency"),
])
def test_a_request_over_the_wrong_orders_is_refused(world, case, message):
    ordinary_title(world)
    ordinary_title(world, company=world.north)
    company = world.acme
    if case == "none":
        orders = []
    elif case == "pending":
        orders = [paid_order(world.acme), paid_order(world.acme, status="pending")]
    elif case == "refunded":
        orders = [paid_order(world.acme, status="refunded")]
    elif case == "foreign":
        orders = [paid_order(world.acme), paid_order(world.globex)]
    elif case == "sibling":
        company, orders = world.north, [paid_order(world.north), paid_order(world.south)]
    elif case == "coins":
        orders = [paid_order(world.acme, currency="COIN", kind="vip_upgrade")]
    else:
        orders = [paid_order(world.acme, currency="CNY"), paid_order(world.acme, currency="USD")]
    with pytest.raises(DomainError, match=message):
        ask(world, orders, company=company)
    db.session.rollback()
    assert db.session.scalar(select(InvoiceRequest).where(InvoiceRequest.company_id != world.globex.id)) is None
    assert all(fresh(Order, o.id).invoice_request_id is None for o in orders)


def test_a_subsidiary_admin_cannot_request_over_the_parents_orders(world):
    ordinary_title(world)
    with pytest.raises(DomainError, match="Choose one of your companies"):
        ask(world, [paid_order(world.acme)], actor="north")


@pytest.mark.parametrize("invoice_type, contact, message", [
    ("electronic_ordinary", {"postal_address": "1 Road"}, "give an email address or a mobile phone"),
    ("electronic_ordinary", {"email": "not-mail"}, "not a valid email address"),
    ("electronic_ordinary", {"phone": "call me"}, "not a phone number"),
    ("paper_ordinary", {"email": "ap@acme.example"}, "give the postal address"),
    ("special", {"email": "ap@acme.example"}, "give the postal address"),
    ("bogus", {"email": "ap@acme.example"}, "Invoice type"),
])
def test_the_invoice_type_decides_where_it_goes(world, tmp_path, invoice_type, contact, message):
    ordinary_title(world)
    special_title(world, tmp_path)
    with pytest.raises(DomainError, match=message):
        ask(world, [paid_order(world.acme)], invoice_type, **contact)


def test_each_invoice_type_accepts_its_contact(world, tmp_path):
    ordinary_title(world)
    special_title(world, tmp_path)
    by_phone = ask(world, [paid_order(world.acme)], "electronic_ordinary", phone="+86 138 0000 0000")
    paper = ask(world, [paid_order(world.acme)], "paper_ordinary", postal_address="1 Harbour Rd")
    special = ask(world, [paid_order(world.acme)], "special", postal_address="1 Harbour Rd")
    assert fresh(InvoiceRequest, by_phone.id).phone == "+86 138 0000 0000"
    assert fresh(InvoiceRequest, paper.id).title.kind == "ordinary"
    assert fresh(InvoiceRequest, special.id).title.kind == "special"


def test_a_request_needs_the_title_of_its_kind(world, tmp_path):
    with pytest.raises(DomainError, match="has no Ordinary invoice title"):
        ask(world, [paid_order(world.acme)])
    db.session.rollback()
    ordinary_title(world)
    with pytest.raises(DomainError, match="has no Special VAT invoice title"):
        ask(world, [paid_order(world.acme)], "special", postal_address="1 Road")
    db.session.rollback()
    title = special_title(world, tmp_path)
    db.session.execute(update(InvoiceTitle).where(InvoiceTitle.id == title.id)
                       .values(registration_file_sha256=None))
    db.session.commit()
    with pytest.raises(DomainError, match="has no general-taxpayer registration document"):
        ask(world, [paid_order(world.acme)], "special", postal_address="1 Road")


def test_an_order_is_never_in_two_open_requests(world):
    ordinary_title(world)
    first, second = paid_order(world.acme), paid_order(world.acme)
    ask(world, [first])
    with pytest.raises(DomainError, match=f"already in an invoice request: {first.number}"):
        ask(world, [first, second])
    db.session.rollback()
    assert fresh(Order, second.id).invoice_request_id is None


def test_an_order_taken_meanwhile_refuses_the_whole_request_naming_it(world):
    """The rows read say "free"; another transaction took one since: the conditional UPDATE notices."""
    ordinary_title(world)
    orders = [paid_order(world.acme), paid_order(world.acme), paid_order(world.acme)]
    loaded = [db.session.get(Order, o.id) for o in orders]
    title_id = db.session.scalar(select(InvoiceTitle.id).where(InvoiceTitle.company_id == world.acme.id))
    other = InvoiceRequest(company_id=world.acme.id, title_id=title_id,
                           invoice_type="electronic_ordinary", currency="CNY", total=Decimal("100.00"),
                           email="x@acme.example")
    db.session.add(other)
    db.session.flush()
    db.session.execute(update(Order).where(Order.id == orders[1].id)
                       .values(invoice_request_id=other.id, invoice_status="requested")
                       .execution_options(synchronize_session=False))
    with pytest.raises(DomainError, match=f"changed meanwhile: {orders[1].number}. Nothing was requested"):
        request_invoice(db.session, users(world, "customer"), world.acme, loaded, "electronic_ordinary",
                        email="ap@acme.example")
    db.session.rollback()
    assert all(fresh(Order, o.id).invoice_request_id is None for o in orders)


def test_two_sessions_requesting_the_same_orders_give_them_to_exactly_one(app, world):
    ordinary_title(world)
    ids = [paid_order(world.acme).id, paid_order(world.acme).id]
    customer_id, acme_id = world.users["customer"].id, world.acme.id
    db.session.remove()

    def attempt():
        orders = db.session.scalars(select(Order).where(Order.id.in_(ids))).all()
        request_invoice(db.session, db.session.get(User, customer_id), db.session.get(Company, acme_id),
                        orders, "electronic_ordinary", email="ap@acme.example")

    outcomes, errors = race(app, [attempt, attempt])
    assert not errors, errors
    assert sorted(outcomes) == ["refused", "won"]
    requests = db.session.scalars(select(InvoiceRequest).where(InvoiceRequest.company_id == acme_id)).all()
    assert len(requests) == 1
    assert {fresh(Order, i).invoice_request_id for i in ids} == {requests[0].id}


# --- finance review ----------------------------------------------------------------------------------

def test_issuing_records_the_invoice_and_marks_the_orders_invoiced_once(world):
    ordinary_title(world)
    orders = [paid_order(world.acme), paid_order(world.north)]
    made = ask(world, orders)
    issue_invoice(db.session, users(world, "finance"), fresh(InvoiceRequest, made.id), " 04400000001 ",
                  "2024-05-14", TODAY)
    db.session.commit()
    made = fresh(InvoiceRequest, made.id)
    assert (made.status, made.invoice_number, made.invoice_date) == ("issued", "04400000001", date(2024, 5, 14))
    assert made.reviewed_by_id == world.users["finance"].id and made.reviewed_at is not None
    assert {fresh(Order, o.id).invoice_status for o in orders} == {"invoiced"}
    with pytest.raises(AlreadyReviewed, match="reviewed already"):
        issue_invoice(db.session, users(world, "finance"), made, "04400000002", TODAY, TODAY)
    db.session.rollback()
    with pytest.raises(AlreadyReviewed):
        reject_invoice_request(db.session, users(world, "finance"), fresh(InvoiceRequest, made.id), "late")
    db.session.rollback()
    assert fresh(InvoiceRequest, made.id).invoice_number == "04400000001"
    with pytest.raises(DomainError, match="already in an invoice request"):  # invoiced orders stay taken
        ask(world, orders)


@pytest.mark.parametrize("number, day, message", [
    ("", "2024-05-14", "Invoice number is required"),
    ("A1", "14/05/2024", "YYYY-MM-DD"),
    ("A1", "2024-05-16", "is in the future"),
])
def test_issuing_checks_number_and_date(world, number, day, message):
    ordinary_title(world)
    made = ask(world, [paid_order(world.acme)])
    with pytest.raises(DomainError, match=message):
        issue_invoice(db.session, users(world, "finance"), fresh(InvoiceRequest, made.id), number, day, TODAY)
    db.session.rollback()
    assert fresh(InvoiceRequest, made.id).status == "requested"


def test_an_invoice_number_is_given_once_and_refunded_orders_are_not_invoiced(world):
    ordinary_title(world)
    first = ask(world, [paid_order(world.acme)])
    issue_invoice(db.session, users(world, "finance"), fresh(InvoiceRequest, first.id), "N-1", TODAY, TODAY)
    db.session.commit()
    order = paid_order(world.acme)
    second = ask(world, [order])
    with pytest.raises(DomainError, match="N-1 was given to request"):
        issue_invoice(db.session, users(world, "finance"), fresh(InvoiceRequest, second.id), "N-1", TODAY, TODAY)
    db.session.rollback()
    db.session.execute(update(Order).where(Order.id == order.id).values(status="refunded"))
    db.session.commit()
    with pytest.raises(DomainError, match=f"no longer paid \\(refunded\\?\\): {order.number}"):
        issue_invoice(db.session, users(world, "finance"), fresh(InvoiceRequest, second.id), "N-2", TODAY, TODAY)


def test_rejecting_releases_the_orders_for_another_request_once(world):
    ordinary_title(world)
    orders = [paid_order(world.acme), paid_order(world.acme)]
    made = ask(world, orders)
    with pytest.raises(DomainError, match="Reason is required"):
        reject_invoice_request(db.session, users(world, "finance"), fresh(InvoiceRequest, made.id), "  ")
    db.session.rollback()
    reject_invoice_request(db.session, users(world, "finance"), fresh(InvoiceRequest, made.id),
                           "Tax ID does not match the licence")
    db.session.commit()
    made = fresh(InvoiceRequest, made.id)
    assert (made.status, made.reject_reason) == ("rejected", "Tax ID does not match the licence")
    for order in orders:
        order = fresh(Order, order.id)
        assert (order.invoice_request_id, order.invoice_status) == (None, "none")
    with pytest.raises(AlreadyReviewed):
        reject_invoice_request(db.session, users(world, "finance"), made, "again")
    db.session.rollback()
    with pytest.raises(AlreadyReviewed):
        issue_invoice(db.session, users(world, "finance"), fresh(InvoiceRequest, made.id), "N-9", TODAY, TODAY)
    db.session.rollback()
    again = ask(world, orders)
    assert {fresh(Order, o.id).invoice_request_id for o in orders} == {again.id}


def test_only_finance_reviews(world):
    ordinary_title(world)
    made = ask(world, [paid_order(world.acme)])
    for name in ("customer", "sales"):
        with pytest.raises(NotAllowed):
            issue_invoice(db.session, users(world, name), fresh(InvoiceRequest, made.id), "N", TODAY, TODAY)
        with pytest.raises(NotAllowed):
            reject_invoice_request(db.session, users(world, name), fresh(InvoiceRequest, made.id), "no")


# --- HTTP ---------------------------------------------------------------------------------------------

def _upload(client, url, fields, document=None):
    from io import BytesIO

    from conftest import csrf_token

    data = {**fields, "csrf_token": csrf_token(client)}
    if document is not None:
        data["document"] = (BytesIO(document[1]), document[0])
    return client.post(url, data=data, content_type="multipart/form-data", follow_redirects=True)


def test_titles_over_http_upload_the_document_and_only_its_company_downloads_it(client, login, world, web_app):
    login("customer")
    page = client.get(TITLES + "new/?kind=special").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'name="csrf_token"' in page
    answer = _upload(client, TITLES + "new/", {"company_id": str(world.acme.id), "kind": "special",
                                               **{**SPECIAL, "title": "Acme <b>Ltd</b>"}},
                     ("scan.pdf", PDF))
    text = answer.get_data(as_text=True)
    assert "Acme &lt;b&gt;Ltd&lt;/b&gt;" in text and "<b>Ltd" not in text
    title = db.session.scalar(select(InvoiceTitle).where(InvoiceTitle.company_id == world.acme.id))
    assert title.registration_file_name == "scan.pdf"
    download = client.get(f"{TITLES}document/?id={title.id}")
    assert download.status_code == 200 and download.data == PDF and download.mimetype == "application/pdf"

    refused = _upload(client, TITLES + "new/", {"company_id": str(world.acme.id), "kind": "special", **SPECIAL},
                      ("scan.pdf", b"<html>not a pdf</html>"))
    assert "scan.pdf is not a PDF, PNG or JPEG file" in refused.get_data(as_text=True)
    no_token = client.post(TITLES + "new/", data={"company_id": str(world.acme.id), "kind": "ordinary",
                                                  "title": "X", "tax_id": tax_code(5)})
    assert no_token.status_code == 400
    login.logout()

    login("globex")
    assert client.get(f"{TITLES}document/?id={title.id}").status_code == 404
    assert client.get(f"{TITLES}edit/?id={title.id}").status_code in (302, 404)
    foreign = _upload(client, TITLES + "new/", {"company_id": str(world.acme.id), "kind": "ordinary",
                                                "title": "Mine now", "tax_id": tax_code(7)})
    assert "Choose one of your companies" in foreign.get_data(as_text=True)
    login.logout()
    login("finance")
    assert client.get(f"{REVIEW}document/?id={title.id}").data == PDF


def test_the_document_size_limit_comes_from_the_config(client, login, world, web_app, monkeypatch):
    monkeypatch.setitem(web_app.config, "INVOICE_DOC_MAX_BYTES", 100)
    login("customer")
    answer = _upload(client, TITLES + "new/", {"company_id": str(world.acme.id), "kind": "special", **SPECIAL},
                     ("scan.pdf", PDF + b"0" * 200))
    assert "larger than" in answer.get_data(as_text=True)
    assert db.session.scalar(select(InvoiceTitle).where(InvoiceTitle.company_id == world.acme.id)) is None


def test_unbilled_orders_can_be_narrowed_to_one_order_type(client, login, world):
    """5.2 申请发票: 未开票订单 → 选择【vip/奥币/云服务】 → 勾选订单 → 申请开票."""
    ordinary_title(world)
    renewal = paid_order(world.acme, "100.00")
    coins = paid_order(world.north, "2160.00", kind="coins")
    foreign = paid_order(world.globex, "72.00", kind="vip_upgrade")
    login("customer")
    form = client.get(f"{REQUESTS}new/?company_id={world.acme.id}").get_data(as_text=True)
    assert renewal.number in form and coins.number in form
    options = re.findall(r'<option value="(\w*)"[^>]*>', form.split('id="rd-kind"')[1].split("</select>")[0])
    assert options == ["", "coins", "renewal"]  # the types its unbilled orders have; none of another tenant's
    only_coins = client.get(f"{REQUESTS}new/?company_id={world.acme.id}&kind=coins").get_data(as_text=True)
    assert coins.number in only_coins and renewal.number not in only_coins
    assert '<option value="coins" selected>' in only_coins and 'name="kind" value="coins"' in only_coins
    anything = client.get(f"{REQUESTS}new/?company_id={world.acme.id}&kind=bogus").get_data(as_text=True)
    assert renewal.number in anything and coins.number in anything and foreign.number not in anything
    answer = post(client, REQUESTS + "new/", [("company_id", str(world.acme.id)), ("kind", "coins"),
                                              ("rowid", str(coins.id)), ("invoice_type", "electronic_ordinary"),
                                              ("email", "ap@acme.example")], follow_redirects=True)
    assert "2,160.00 CNY over 1 orders" in answer.get_data(as_text=True)


def _empty_wallet(company):
    wallet = wallet_for(db.session, company.id, "CNY")
    if wallet.balance:
        debit(db.session, wallet, wallet.balance, "payment", f"empty-{company.id}")
    db.session.commit()


def _recharged(world, company, amount: str) -> Order:
    """A top-up paid online: the recharge order, and the wallet credited by its delivery."""
    order = create_recharge_order(db.session, users(world, "customer"), company, "CNY", amount)
    mark_paid(db.session, order, "alipay", f"ALI-{order.number}", order.total, "CNY", date.today())
    db.session.commit()
    return order


def _paid_from_balance(world, company, amount: str) -> Order:
    order = paid_order(company, amount, status="pending")
    pay_with_balance(db.session, users(world, "customer"), order, date.today())
    db.session.commit()
    return order


@pytest.mark.parametrize("first", ["recharge", "spending"])
def test_money_of_the_balance_is_invoiced_once_by_its_recharge_or_its_spending(world, first):
    """500 put on the balance, 300 of it spent on a renewal: either the 500 recharge or the 300 renewal is
    invoiced, not both (whichever comes first); an order paid online is invoiced on its own."""
    ordinary_title(world)
    _empty_wallet(world.acme)
    recharge = _recharged(world, world.acme, "500.00")
    renewal = _paid_from_balance(world, world.acme, "300.00")
    online = paid_order(world.acme, "80.00")
    first_orders, second = ([recharge], renewal) if first == "recharge" else ([renewal], recharge)
    ask(world, first_orders + [online])
    db.session.commit()
    with pytest.raises(DomainError, match=rf"balance received 500\.00, of which {first_orders[0].total:,.2f} is "
                                          rf"invoiced already .*invoicing {second.number} too would invoice the same "
                                          r"money twice"):
        ask(world, [second])
    db.session.rollback()
    assert fresh(Order, second.id).invoice_status == "none" and fresh(Order, second.id).invoice_request_id is None


def test_a_rejected_request_gives_the_balance_back_to_invoice(world):
    ordinary_title(world)
    _empty_wallet(world.acme)
    recharge = _recharged(world, world.acme, "500.00")
    renewal = _paid_from_balance(world, world.acme, "300.00")
    made = ask(world, [recharge])
    db.session.commit()
    reject_invoice_request(db.session, users(world, "finance"), made, "wrong title")
    db.session.commit()
    ask(world, [renewal])  # the recharge's request is gone: the spending may be invoiced instead
    db.session.commit()
    with pytest.raises(DomainError, match="would invoice the same money twice"):
        ask(world, [recharge])


def test_two_requests_over_the_same_balance_at_once_invoice_it_once(app, world):
    """The recharge and its spending requested by two sessions at the same moment: the wallet row is locked,
    the second sees the first and is refused."""
    ordinary_title(world)
    _empty_wallet(world.acme)
    ids = [_recharged(world, world.acme, "500.00").id, _paid_from_balance(world, world.acme, "300.00").id]
    customer_id, acme_id = world.users["customer"].id, world.acme.id
    db.session.remove()

    def attempt(order_id):
        return lambda: request_invoice(db.session, db.session.get(User, customer_id), db.session.get(Company, acme_id),
                                       [db.session.get(Order, order_id)], "electronic_ordinary",
                                       email="ap@acme.example")

    outcomes, errors = race(app, [attempt(order_id) for order_id in ids])
    assert not errors, errors
    assert sorted(outcomes) == ["refused", "won"]
    assert len([i for i in ids if fresh(Order, i).invoice_request_id is not None]) == 1


def test_orders_paid_with_coins_say_their_purchase_is_invoiced(client, login, world):
    ordinary_title(world)
    coins = paid_order(world.acme, "2160.00", kind="coins")
    with_coins = paid_order(world.acme, "72.00", currency="COIN", kind="vip_upgrade")
    login("customer")
    post(client, "/language", {"locale": "zh_Hans_CN", "next": "/admin/"})
    form = client.get(f"{REQUESTS}new/?company_id={world.acme.id}").get_data(as_text=True)
    assert coins.number in form and with_coins.number not in form
    assert "奥币" in form.split('id="rd-invoiced-once"')[1].split("</p>")[0]
    login.logout()
    login("finance")
    post(client, "/language", {"locale": "en", "next": "/admin/"})
    listed = client.get("/admin/order_management/?page_size=100").get_data(as_text=True)
    assert "Invoiced with the coin purchase" in listed.split(with_coins.number)[1].split("</tr>")[0]
    assert "Not invoiced" in listed.split(coins.number)[1].split("</tr>")[0]
    vnd = paid_order(world.acme, "990000", currency="VND", kind="subscription")
    listed = client.get("/admin/order_management/?page_size=100").get_data(as_text=True)
    assert "Not invoiced" in listed.split(vnd.number)[1].split("</tr>")[0]  # not a coin order


def test_invoice_request_message_reads_the_total_in_the_readers_format(client, login, world):
    ordinary_title(world)
    order = paid_order(world.acme, "12800.00")
    login("customer")
    answer = post(client, REQUESTS + "new/", [("company_id", str(world.acme.id)), ("rowid", str(order.id)),
                                              ("invoice_type", "electronic_ordinary"), ("email", "ap@acme.example")],
                  follow_redirects=True)
    assert "12,800.00 CNY over 1 orders" in answer.get_data(as_text=True)


def test_request_review_and_issue_over_http_mail_the_customer(client, login, world):
    ordinary_title(world)
    mine, foreign = paid_order(world.north, "80.00"), paid_order(world.globex, "999.00")
    login("customer")
    form = client.get(f"{REQUESTS}new/?company_id={world.acme.id}").get_data(as_text=True)
    assert mine.number in form and foreign.number not in form

    refused = post(client, REQUESTS + "new/", [("company_id", str(world.acme.id)), ("rowid", str(mine.id)),
                                               ("rowid", str(foreign.id)), ("invoice_type", "electronic_ordinary"),
                                               ("email", "ap@acme.example")])
    text = refused.get_data(as_text=True)
    assert f"Orders not found or outside your companies: #{foreign.id}" in text and foreign.number not in text
    answer = post(client, REQUESTS + "new/", [("company_id", str(world.acme.id)), ("rowid", str(mine.id)),
                                              ("invoice_type", "electronic_ordinary"), ("email", "ap@acme.example"),
                                              ("remark", "<script>x</script>")], follow_redirects=True)
    assert "80.00 CNY over 1 orders" in answer.get_data(as_text=True)
    made = db.session.scalar(select(InvoiceRequest).where(InvoiceRequest.company_id == world.acme.id))
    listing = client.get(REQUESTS).get_data(as_text=True)
    assert "Requested" in listing
    details = client.get(f"{REQUESTS}details/?id={made.id}").get_data(as_text=True)
    assert mine.number in details and "&lt;script&gt;" in details and "<script>x" not in details
    again = post(client, REQUESTS + "new/", [("company_id", str(world.acme.id)), ("rowid", str(mine.id)),
                                             ("invoice_type", "electronic_ordinary"), ("email", "ap@acme.example")])
    assert "already in an invoice request" in again.get_data(as_text=True)
    assert client.get(REVIEW).status_code == 403
    login.logout()

    db.session.execute(update(User).where(User.id == world.users["customer"].id).values(locale="zh_Hans_CN"))
    db.session.commit()
    login("finance")
    pending = client.get(REVIEW).get_data(as_text=True)
    assert f"{REVIEW}review/?id={made.id}" in pending
    review = client.get(f"{REVIEW}review/?id={made.id}").get_data(as_text=True)
    assert mine.number in review and 'name="csrf_token"' in review
    with mail.record_messages() as outbox:
        post(client, REVIEW + "issue/", {"id": str(made.id), "invoice_number": "04400001",
                                         "invoice_date": date.today().isoformat()}, follow_redirects=True)
        twice = post(client, REVIEW + "issue/", {"id": str(made.id), "invoice_number": "04400002",
                                                 "invoice_date": date.today().isoformat()}, follow_redirects=True)
        assert "reviewed already" in twice.get_data(as_text=True)
    assert len(outbox) == 1
    assert sorted(outbox[0].recipients) == ["ap@acme.example", "customer@example.test"]
    assert outbox[0].subject == "已为 Acme Logistics 开具发票 04400001"  # in the customer's language
    assert "04400001" in outbox[0].body
    assert fresh(InvoiceRequest, made.id).status == "issued"
    assert fresh(Order, mine.id).invoice_status == "invoiced"
    assert f"review/?id={made.id}" not in client.get(REVIEW).get_data(as_text=True)  # no longer pending
    assert "04400001" in client.get(REVIEW + "?show=all").get_data(as_text=True)
    login.logout()

    db.session.execute(update(User).where(User.id == world.users["customer"].id).values(locale=None))
    db.session.commit()
    login("customer")
    assert "Issued" in client.get(REQUESTS).get_data(as_text=True)


def test_rejecting_over_http_mails_the_reason_and_frees_the_orders(client, login, world):
    ordinary_title(world)
    order = paid_order(world.acme)
    made = ask(world, [order], "paper_ordinary", postal_address="1 Harbour Rd")
    login("finance")
    with mail.record_messages() as outbox:
        empty = post(client, REVIEW + "reject/", {"id": str(made.id), "reason": ""})
        assert "Reason is required" in empty.get_data(as_text=True)
        confirm_post(client, REVIEW + "reject/", {"id": str(made.id), "reason": "Wrong <title>"}, follow_redirects=True)
    assert len(outbox) == 1
    assert outbox[0].recipients == ["customer@example.test"]
    assert "Wrong <title>" in outbox[0].body and "Wrong &lt;title&gt;" in outbox[0].html
    assert fresh(Order, order.id).invoice_request_id is None
    login.logout()
    login("customer")
    listing = client.get(REQUESTS).get_data(as_text=True)
    assert "Rejected" in listing and "Wrong &lt;title&gt;" in listing


def test_customers_see_only_their_trees_requests(client, login, world):
    ordinary_title(world)
    ordinary_title(world, company=world.globex, actor="globex", name="Globex Invoice Title")
    ours = ask(world, [paid_order(world.acme)])
    theirs = ask(world, [paid_order(world.globex, "777.00")], company=world.globex, actor="globex")
    login("customer")
    listing = client.get(REQUESTS).get_data(as_text=True)
    assert "Globex Invoice Title" not in listing and "777.00" not in listing
    assert client.get(f"{REQUESTS}details/?id={theirs.id}").status_code in (302, 404)
    assert client.get(f"{REQUESTS}details/?id={ours.id}").status_code == 200
    assert "Globex Invoice Title" not in client.get(TITLES).get_data(as_text=True)


def test_another_tenants_company_on_the_request_form_is_named_as_not_yours(client, login, world):
    ordinary_title(world)
    foreign = paid_order(world.globex, "72.00")
    login("customer")
    page = client.get(f"{REQUESTS}new/?company_id={world.globex.id}").get_data(as_text=True)
    assert "Choose one of your companies." in page and foreign.number not in page
    assert "Choose one of your companies." not in client.get(f"{REQUESTS}new/?company_id={world.acme.id}").get_data(
        as_text=True)


def test_finance_issues_an_invoice_dated_its_own_today(client, login, world, monkeypatch):
    """Finance in China at 01:00 (17:00 UTC the day before) dates the invoice today: its own calendar day is
    offered and accepted, not refused as a day in the future."""
    import admin_views.invoices as views

    ordinary_title(world)
    made = ask(world, [paid_order(world.acme, "80.00")])
    tomorrow = date.today() + timedelta(days=1)  # finance's day, a day ahead of the server's
    monkeypatch.setattr(views, "local_today", lambda: tomorrow)
    login("finance")
    review = client.get(f"{REVIEW}review/?id={made.id}").get_data(as_text=True)
    assert f'value="{tomorrow.isoformat()}"' in review
    post(client, REVIEW + "issue/", {"id": str(made.id), "invoice_number": "04400009",
                                     "invoice_date": tomorrow.isoformat()}, follow_redirects=True)
    issued = fresh(InvoiceRequest, made.id)
    assert (issued.status, issued.invoice_date) == ("issued", tomorrow)
