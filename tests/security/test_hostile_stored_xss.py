"""Stored XSS: markup typed into every text field a user can fill comes back escaped on every page
that shows it — `<script>alert(1)</script>` never appears raw, `&lt;script&gt;` does."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from actions.coins import create_coin_order
from actions.tenants import credit_code_check_char
from admin_views import registered_views
from conftest import Login, confirm_post, post
from models import (
    BankTransferReceipt, Company, MemberAccount, OfflineRecharge, Package, PackageCategory, TenantApplication, db,
)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOAD = SCRIPT + IMG
RAW = ("<script>alert(1)", "<img src=x onerror")
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
ROLE_USERS = {"admin": "admin", "tech_support": "support", "finance": "finance", "sales": "sales",
              "customer_admin": "customer"}


def page(client, url: str, shown: bool = True) -> str:
    """The page at `url`: never the raw markup; when `shown`, the escaped markup."""
    answer = client.get(url)
    assert answer.status_code == 200, (url, answer.status_code)
    text = answer.get_data(as_text=True)
    raw = [r for r in RAW if r in text]
    assert raw == [], (url, raw)
    if shown:
        assert all(e in text for e in ESCAPED), (url, "the payload is not shown (escaped) here")
    return text


def as_user(web_app, username: str):
    other = web_app.test_client()
    Login(other)(username)
    return other


def crawl(app, client, role: str) -> None:
    """Every console index page the role may open: none shows raw markup."""
    for view in registered_views(app.extensions["admin"][0]):
        if role == "admin" or role in view.roles:
            page(client, view.url.rstrip("/") + "/", shown=False)


def test_company_name_and_contact_everywhere_they_appear(app, web_app, client, login, world):
    login("admin")
    acme = world.acme
    answer = post(client, f"/admin/company/edit/?id={acme.id}", {
        "name": "Acme " + PAYLOAD, "parent": "__None", "status": "active", "tax_id": "", "contact_name": PAYLOAD,
        "contact_phone": "", "contact_email": ""})
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.get(Company, acme.id).name == "Acme " + PAYLOAD
    page(client, "/admin/company/")
    page(client, f"/admin/company/details/?id={acme.id}")
    page(client, f"/admin/company/edit/?id={acme.id}")
    page(client, "/admin/device/")
    for role, username in ROLE_USERS.items():
        crawl(app, as_user(web_app, username) if role != "admin" else client, role)
    customer = as_user(web_app, "customer")
    page(customer, "/admin/device/")
    page(customer, f"/admin/renewal_center/?company_id={acme.id}&window=all")
    page(customer, "/admin/account_config/")
    page(customer, "/admin/recharge_record/top-up/")
    page(as_user(web_app, "sales"), f"/admin/billing_config/?company={acme.id}")
    page(as_user(web_app, "support"), "/admin/device_package/")


def test_catalog_names(client, login, world):
    login("support")
    package = world.packages["GPS-M"]
    category = db.session.get(PackageCategory, package.category_id)
    assert post(client, f"/admin/packagecategory/edit/?id={category.id}",
                {"code": category.code, "name": PAYLOAD, "kind": category.kind}).status_code == 302
    assert post(client, f"/admin/package/edit/?id={package.id}", {
        "code": package.code, "name": PAYLOAD, "category": category.id, "subcategory_id": package.subcategory_id,
        "kind": "renewal", "amount": "10.00", "pricing": "per_month", "term_months": "", "currency": "CNY",
        "active": "y"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Package, package.id).name == PAYLOAD
    for url in ("/admin/packagecategory/", "/admin/package/", f"/admin/package/details/?id={package.id}",
                "/admin/packagesubcategory/", "/admin/device/", "/admin/device_package/",
                f"/admin/device/details/?id={world.devices['AC0001'].id}"):
        page(client, url)
    page(client, "/admin/device_package/bind-type/", shown=False)


def test_offline_recharge_payer_reference_and_review_comment(web_app, client, login, world):
    login("sales")
    answer = post(client, "/admin/offline_recharge/new/", {
        "company_id": world.acme.id, "payer": PAYLOAD, "currency": "CNY", "amount": "10.00",
        "reference": SCRIPT, "save": "submit"})
    assert answer.status_code == 302
    application = db.session.scalar(select(OfflineRecharge))
    assert application.payer == PAYLOAD
    page(client, "/admin/offline_recharge/")
    page(client, f"/admin/offline_recharge/details/?id={application.id}")
    page(client, f"/admin/offline_recharge/edit/?id={application.id}")
    finance = as_user(web_app, "finance")
    page(finance, "/admin/recharge_review/")
    page(finance, f"/admin/recharge_review/review/?id={application.id}")
    answer = post(finance, f"/admin/recharge_review/review/?id={application.id}", {
        "decision": "reject", "comment": PAYLOAD, "seen_company_id": world.acme.id, "seen_payer": PAYLOAD,
        "seen_currency": "CNY", "seen_amount": "10.00", "seen_reference": SCRIPT})
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.get(OfflineRecharge, application.id).review_comment == PAYLOAD
    page(finance, "/admin/recharge_reviewed/")
    page(client, "/admin/offline_recharge/")


@pytest.fixture
def seat_catalog(world):
    category = PackageCategory(code="SEAT", name="Seats", kind="seat")
    db.session.add(category)
    db.session.flush()
    db.session.add(Package(code="SEAT-ENTERPRISE", name="Enterprise seat", category_id=category.id, kind="seat", edition="enterprise",
                           amount=12, pricing="per_year", currency="CNY"))
    db.session.commit()


def test_member_and_organizer_names_and_seat_notes(web_app, client, login, world, seat_catalog):
    sales = as_user(web_app, "sales")
    shown = re.search(r'name="quote_hash" value="(\w+)"', sales.get("/admin/seat_grant/").get_data(as_text=True))
    answer = post(sales, "/admin/seat_grant/", {"company_id": world.acme.id, "edition": "enterprise",
                                                "quantity": "2", "note": PAYLOAD, "promotion": SCRIPT + "x",
                                                "quote_hash": shown[1]})
    assert answer.status_code == 302, answer.get_data(as_text=True)[-3000:]
    page(sales, "/admin/seat_grant/")
    login("customer")
    member = MemberAccount(company_id=world.acme.id, login="acme-member", vip_level="none")
    db.session.add(member)
    db.session.commit()
    assert post(client, f"/admin/memberaccount/edit/?id={member.id}", {
        "email": "", "first_name": PAYLOAD, "last_name": SCRIPT, "active": "y"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(MemberAccount, member.id).first_name == PAYLOAD
    page(client, f"/admin/memberaccount/details/?id={member.id}")
    page(client, f"/admin/memberaccount/edit/?id={member.id}")
    answer = post(client, "/admin/organizer/new/", {"company_id": world.acme.id, "email": "org@acme.example",
                                                    "first_name": PAYLOAD[:60], "last_name": SCRIPT,
                                                    "edition": "enterprise"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[-3000:]
    page(client, "/admin/organizer/")
    text = page(client, "/admin/seat_order/", shown=False)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;x" in text  # the promotion column


def test_tenant_application_fields_and_rejection_reason(web_app, client, login, world):
    login("customer")
    body = "91310000123456789"
    answer = post(client, "/admin/tenant_apply/", {
        "company_name": PAYLOAD, "tax_id": body + credit_code_check_char(body), "contact_name": PAYLOAD,
        "contact_phone": "010-1234567", "contact_email": "x@acme.example", "parent": world.acme.id})
    assert answer.status_code == 302
    application = db.session.scalar(select(TenantApplication))
    assert application.company_name == PAYLOAD
    page(client, "/admin/tenant_apply/")
    admin = as_user(web_app, "admin")
    page(admin, "/admin/tenantapplication/")
    page(admin, f"/admin/tenantapplication/review/?id={application.id}")
    page(admin, f"/admin/tenantapplication/details/?id={application.id}")
    from app import mail

    with mail.record_messages() as outbox:
        asked = post(admin, "/admin/tenantapplication/reject/", {"id": application.id, "reason": PAYLOAD})
        assert not any(r in asked.get_data(as_text=True) for r in RAW)  # the confirmation page escapes it
        answer = confirm_post(admin, "/admin/tenantapplication/reject/", {"id": application.id, "reason": PAYLOAD})
    assert answer.status_code == 302
    assert outbox and all(not any(r in (m.html or "") for r in RAW) for m in outbox)
    assert ESCAPED[0] in outbox[0].html
    page(admin, "/admin/tenantapplication/?show=all")
    page(client, "/admin/tenant_apply/")


def test_company_profile_fields(client, login, world):
    # Province and city come from lists now; hostile values stored before them stay (and are shown escaped).
    company = db.session.get(Company, world.acme.id)
    company.province = company.city = SCRIPT
    db.session.commit()
    login("customer")
    answer = post(client, "/admin/company_profile/", {
        "phone": "010-1234567", "fax": "", "province": SCRIPT, "city": SCRIPT, "address": PAYLOAD,
        "full_name": PAYLOAD, "email": "customer@acme.example", "user_phone": "010-7654321", "mobile": ""})
    assert answer.status_code == 302, answer.get_data(as_text=True)[-2000:]
    db.session.expire_all()
    assert db.session.get(Company, world.acme.id).address == PAYLOAD
    page(client, "/admin/company_profile/")
    page(client, "/admin/", shown=False)


def test_bank_transfer_payer_fields_and_file_name(app, web_app, client, login, world, tmp_path, monkeypatch):
    monkeypatch.setattr(web_app, "instance_path", str(tmp_path / "instance"))
    with app.test_request_context():
        order = create_coin_order(db.session, world.users["customer"], world.acme, "72.00", "bank_transfer")
        db.session.commit()
    login("customer")
    answer = post(client, f"/admin/bank_transfer/upload/?order={order.number}", {
        "payer_company": PAYLOAD, "payer_account": SCRIPT, "amount": "72.00",
        "file": (io.BytesIO(PNG), SCRIPT + ".png")}, content_type="multipart/form-data")
    assert answer.status_code == 302
    receipt = db.session.scalar(select(BankTransferReceipt))
    assert receipt.payer_company == PAYLOAD
    page(client, "/admin/bank_transfer/")
    page(client, f"/admin/bank_transfer/upload/?order={order.number}")
    finance = as_user(web_app, "finance")
    page(finance, "/admin/bank_transfer_review/")
    page(finance, f"/admin/bank_transfer_review/details/?id={receipt.id}")
    page(finance, f"/admin/bank_transfer_review/review/?id={receipt.id}")
    assert confirm_post(finance, f"/admin/bank_transfer_review/review/?id={receipt.id}",
                        {"decision": "reject", "reason": PAYLOAD}).status_code == 302
    page(finance, "/admin/bank_transfer_review/")
    page(client, "/admin/bank_transfer/")


def test_expiry_import_file_name(client, login, world, tmp_path, monkeypatch):
    monkeypatch.setitem(client.application.config, "IMPORT_FOLDER", str(tmp_path / "imports"))
    login("sales")
    name = SCRIPT + "<img src=x onerror=alert(1)>.xlsx"  # no '"': a browser would not send one in a file name
    answer = post(client, "/admin/expiry_import/upload", {"file": (io.BytesIO(b"not a workbook"), name)},
                  content_type="multipart/form-data")
    assert answer.status_code == 302
    page(client, "/admin/expiry_import/")  # the flash and the recent imports name the file


def test_billing_push_emails_are_refused_and_the_message_is_escaped(client, login, world):
    login("sales")
    answer = post(client, "/admin/billing_config/configure/", [
        ("ids", world.acme.id), ("save", "1"), ("billing_cycle", "monthly"), ("push_language", "en"),
        ("push_enabled", "y"), ("push_emails", PAYLOAD + "@x.example")])
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert not any(r in text for r in RAW)
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(db.metadata.tables["billing_config"])) == 0


def test_invoice_titles_requests_and_rejections(web_app, client, login, world):
    from datetime import datetime, timezone
    from decimal import Decimal

    from actions.orders import number_order
    from app import mail
    from models import InvoiceRequest, Order

    login("customer")
    body = "91310000123456789"
    answer = post(client, "/admin/invoicetitle/new/", {
        "company_id": world.acme.id, "kind": "ordinary", "title": PAYLOAD,
        "tax_id": body + credit_code_check_char(body), "address": PAYLOAD, "bank_name": SCRIPT, "bank_account": "",
        "phone": ""}, content_type="multipart/form-data")
    assert answer.status_code == 302, answer.get_data(as_text=True)[-2000:]
    page(client, "/admin/invoicetitle/")
    title_id = re.search(r'/admin/invoicetitle/edit/\?id=(\d+)', client.get("/admin/invoicetitle/").get_data(
        as_text=True)).group(1)
    page(client, f"/admin/invoicetitle/edit/?id={title_id}")
    page(client, f"/admin/invoicetitle/details/?id={title_id}")

    paid = Order(kind="recharge", status="paid", company_id=world.acme.id, currency="CNY", total=Decimal("80.00"),
                 paid_at=datetime.now(timezone.utc), payment_method="wechat")
    number_order(db.session, paid)
    db.session.commit()
    answer = post(client, "/admin/invoice_request_customer/new/", [
        ("company_id", world.acme.id), ("rowid", paid.id), ("invoice_type", "electronic_ordinary"),
        ("email", "billing@acme.example"), ("postal_address", PAYLOAD), ("remark", PAYLOAD)])
    assert answer.status_code == 302, answer.get_data(as_text=True)[-2000:]
    request_id = db.session.scalar(select(InvoiceRequest.id).order_by(InvoiceRequest.id.desc()))  # ours, not the world's
    page(client, f"/admin/invoice_request_customer/details/?id={request_id}")
    finance = as_user(web_app, "finance")
    page(finance, "/admin/invoice_review/", shown=False)
    page(finance, f"/admin/invoice_review/review/?id={request_id}")
    page(finance, f"/admin/invoice_review/details/?id={request_id}")
    with mail.record_messages() as outbox:
        assert confirm_post(finance, "/admin/invoice_review/reject/", {"id": request_id, "reason": PAYLOAD}
                            ).status_code == 302
    page(client, "/admin/invoice_request_customer/")
    for message in outbox:  # the rejection mail quotes the reason
        assert not any(r in (message.html or "") for r in RAW)


@pytest.mark.parametrize("url", [
    "/admin/device/?search=" + SCRIPT,
    "/admin/renewal_center/?company_id=" + SCRIPT + "&custom_months=" + SCRIPT,
    "/admin/memberaccount/?search=" + IMG,
    "/admin/order_record/?search=" + IMG,
])
def test_reflected_query_values_are_escaped(client, login, world, url):
    login("customer")
    page(client, url, shown=False)


def test_batch_status_echoes_pasted_numbers_escaped(client, login, world):
    login("support")
    answer = post(client, "/admin/device_batch/", {"numbers": PAYLOAD, "operation": "suspend"})
    assert answer.status_code == 200
    assert not any(r in answer.get_data(as_text=True) for r in RAW)
