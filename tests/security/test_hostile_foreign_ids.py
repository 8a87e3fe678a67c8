"""A customer administrator (Acme) types another tenant's (Globex's) ids and numbers into every custom
page that takes one — tests/test_scope.py covers the model views' list, details, edit, delete,
actions and export. Each attempt changes nothing and shows none of Globex's names or numbers."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from actions.bank_transfers import submit_receipt
from actions.coins import create_coin_order
from actions.tenants import credit_code_check_char
from actions.wallets import credit, wallet_for
from admin_views import registered_views
from admin_views.base import ScopedModelView
from admin_views.system import InCompanyTree
from conftest import Login, post
from db_snapshot import changed_tables, snapshot
from models import BillingConfig, MemberAccount, Order, db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# What of Globex must never reach Acme's administrator (the world fixture and `foreign` below).
GLOBEX_MARKERS = ("Globex", "GX0001", "GX0002", "globex-member", "organizer@globex.test", "RC-GLOBEX",
                  "billing@globex.test", "Globex Payer Ltd")


def assert_no_globex(answer, where: str):
    assert answer.status_code != 500, where
    text = answer.get_data(as_text=True)
    leaked = [marker for marker in GLOBEX_MARKERS if marker in text]
    assert leaked == [], (where, leaked)


@pytest.fixture
def foreign(app, web_app, world, tmp_path, monkeypatch):
    """More Globex rows: coins, a billing config, a coin order with a receipt file, a one-time
    password workbook; and coins for Acme, so a scope hole would have something to spend."""
    monkeypatch.setattr(web_app, "instance_path", str(tmp_path / "instance"))
    from admin_views.members import keep_once

    with app.test_request_context():
        globex_admin = world.users["globex"]
        credit(db.session, wallet_for(db.session, world.globex.id, "COIN"), Decimal("100000"), "coin_purchase",
               "test:globex-coins")
        credit(db.session, wallet_for(db.session, world.acme.id, "COIN"), Decimal("100000"), "coin_purchase",
               "test:acme-coins")
        db.session.add(BillingConfig(company_id=world.globex.id, push_emails="billing@globex.test"))
        db.session.add(MemberAccount(company_id=world.acme.id, login="acme-member", vip_level="none"))
        coin_order = create_coin_order(db.session, globex_admin, world.globex, "72.00", "bank_transfer")
        receipt = submit_receipt(db.session, globex_admin, coin_order, "Globex Payer Ltd", "6222 9999",
                                 "72.00", "globex.png", PNG, tmp_path / "instance" / "receipts")
        db.session.commit()
    with web_app.test_request_context():
        token = keep_once(b"Globex passwords", globex_admin.id)
    db.session.expire_all()
    return {
        "receipt_id": receipt.id, "coin_order": coin_order.number, "token": token,
        "config_id": db.session.scalar(select(BillingConfig.id).where(BillingConfig.company_id == world.globex.id)),
        "member_id": db.session.scalar(select(MemberAccount.id).where(MemberAccount.login == "globex-member")),
        "acme_member_id": db.session.scalar(select(MemberAccount.id).where(MemberAccount.login == "acme-member")),
    }


@pytest.fixture
def customer(client, login, foreign):
    login("customer")
    return client


def test_renewal_center_refuses_globex_companies_and_devices(customer, world):
    gx, ac = world.devices["GX0001"].id, world.devices["AC0001"].id
    globex, acme = world.globex.id, world.acme.id
    before = snapshot()
    assert_no_globex(customer.get(f"/admin/renewal_center/?company_id={globex}&window=all"), "list")
    attempts = [
        {"company_id": acme, "months": "12", "rowid": gx},  # Acme's order, Globex's device
        {"company_id": acme, "months": "12", "only": gx},
        {"company_id": globex, "months": "12", "rowid": ac},  # Globex's order, Acme's device
        {"company_id": globex, "months": "12", "rowid": gx},
    ]
    for form in attempts:
        assert_no_globex(post(customer, "/admin/renewal_center/renew/", form, follow_redirects=True), str(form))
    assert changed_tables(before) == []


@pytest.mark.parametrize("number_key", ["RC-GLOBEX-0001", "coin_order"])
def test_globex_order_pages_answer_404(customer, foreign, number_key):
    number = foreign.get(number_key, number_key)
    before = snapshot()
    for url in (f"/admin/renewal_center/order/{number}/", f"/admin/renewal_center/order/{number}/pay/",
                f"/sandbox/pay/{number}?method=wechat", f"/admin/bank_transfer/upload/?order={number}"):
        answer = customer.get(url)
        assert answer.status_code == 404, url
        assert_no_globex(answer, url)
    for url, form in ((f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"}),
                      (f"/admin/renewal_center/order/{number}/cancel/", {}),
                      (f"/sandbox/pay/{number}?method=wechat", {"decision": "pay"}),
                      (f"/admin/bank_transfer/upload/?order={number}",
                       {"payer_company": "Acme", "payer_account": "1", "amount": "72.00"})):
        answer = post(customer, url, form)
        assert answer.status_code == 404, url
    assert changed_tables(before) == []


def test_bank_transfer_receipt_file_of_globex_is_not_served(web_app, customer, foreign):
    answer = customer.get(f"/admin/bank_transfer/file/{foreign['receipt_id']}")
    assert answer.status_code == 404 and PNG not in answer.data
    assert_no_globex(customer.get("/admin/bank_transfer/"), "receipts list")
    owner = web_app.test_client()  # the control: Globex's own administrator gets the file
    Login(owner)("globex")
    assert owner.get(f"/admin/bank_transfer/file/{foreign['receipt_id']}").data == PNG


def test_top_up_and_coin_purchase_refuse_a_globex_company(customer, world):
    before = snapshot()
    answer = post(customer, "/admin/recharge_record/top-up/",
                  {"company_id": world.globex.id, "currency": "CNY", "amount": "10.00"})
    assert "choose one of your companies" in answer.get_data(as_text=True)
    assert_no_globex(answer, "top-up")
    answer = post(customer, "/admin/coins/", {"company_id": world.globex.id, "amount": "72.00", "method": "wechat"})
    assert "Choose one of your companies" in answer.get_data(as_text=True)
    assert_no_globex(answer, "coins")
    assert changed_tables(before) == []


def test_member_accounts_refuse_globex_companies_accounts_payers_and_passwords(customer, world, foreign):
    before = snapshot()
    answer = post(customer, "/admin/memberaccount/new/",
                  {"company_id": world.globex.id, "pattern": "hostile{1-3}", "password_kind": "default"})
    assert "Choose one of your companies" in answer.get_data(as_text=True)
    assert_no_globex(answer, "batch create")
    upgrade = "/admin/memberaccount/upgrade/"
    for form in (
        # Globex's account, paid by Acme (which has the coins): the page and the confirmed upgrade.
        [("rowid", foreign["member_id"]), ("level", "vip"), ("years", "1"), ("payer_id", world.acme.id)],
        [("rowid", foreign["member_id"]), ("level", "vip"), ("years", "1"), ("payer_id", world.acme.id),
         ("confirm", "1"), ("expected_coins", "7200")],
        # Acme's account, paid from Globex's coins.
        [("rowid", foreign["acme_member_id"]), ("level", "vip"), ("years", "1"), ("payer_id", world.globex.id)],
        [("rowid", foreign["acme_member_id"]), ("level", "vip"), ("years", "1"), ("payer_id", world.globex.id),
         ("confirm", "1"), ("expected_coins", "7200")],
    ):
        assert_no_globex(post(customer, upgrade, form, follow_redirects=True), str(form))
    answer = post(customer, "/admin/memberaccount/passwords/", {"token": foreign["token"]})
    assert answer.status_code == 404 and b"Globex passwords" not in answer.data
    assert changed_tables(before) == []


def test_seats_refuse_a_globex_company(customer, world):
    before = snapshot()
    answer = post(customer, "/admin/organizer/new/", {"company_id": world.globex.id, "email": "spy@acme.example",
                                                      "first_name": "S", "last_name": "Py", "edition": "enterprise"})
    assert "Choose one of your companies" in answer.get_data(as_text=True)
    assert_no_globex(answer, "organizer")
    answer = post(customer, "/admin/seat_order/buy/", {"company_id": world.globex.id, "edition": "enterprise",
                                                       "quantity": "1"})
    assert "Choose one of your companies" in answer.get_data(as_text=True)
    assert_no_globex(answer, "seat order")
    assert changed_tables(before) == []


def test_account_config_refuses_globex_company_ids_and_config_ids(customer, world, foreign):
    globex = world.globex.id
    before = snapshot()
    for url in (f"/admin/account_config/?company={globex}", f"/admin/account_config/?company={globex}&scope=all",
                f"/admin/account_config/configure/?ids={globex}",
                f"/admin/account_config/configure/?ids={world.acme.id}&ids={globex}"):
        assert_no_globex(customer.get(url, follow_redirects=True), url)
    for url, form in (
        ("/admin/account_config/configure/", [("ids", globex), ("save", "1"), ("billing_cycle", "yearly"),
                                              ("push_language", "en"), ("push_emails", "spy@acme.example")]),
        ("/admin/account_config/configure/", [("ids", world.acme.id), ("ids", globex), ("save", "1"),
                                              ("billing_cycle", "yearly"), ("push_language", "en")]),
        ("/admin/account_config/delete/", {"id": foreign["config_id"]}),
    ):
        assert_no_globex(post(customer, url, form, follow_redirects=True), url)
    assert changed_tables(before) == []


def test_tenant_application_refuses_a_globex_parent(customer, world):
    body = "91310000123456789"
    before = snapshot()
    answer = post(customer, "/admin/tenant_apply/", {
        "company_name": "Acme Spy Branch", "tax_id": body + credit_code_check_char(body), "contact_name": "Spy",
        "contact_phone": "010-1234567", "contact_email": "spy@acme.example", "parent": world.globex.id})
    assert "outside your companies" in answer.get_data(as_text=True)
    assert_no_globex(answer, "apply")
    assert changed_tables(before) == []


def test_batch_suspend_refuses_globex_device_numbers(customer):
    before = snapshot()
    for confirm in ("", "1"):
        answer = post(customer, "/admin/device_batch/", {"numbers": "GX0001\nGX0002", "operation": "suspend",
                                                         "confirm": confirm}, follow_redirects=True)
        assert answer.status_code == 200
        assert "Globex" not in answer.get_data(as_text=True)
    assert changed_tables(before) == []


def test_company_filters_set_to_globex_show_nothing_of_it(app, customer, world):
    """The company-tree filter takes any company id in the URL; the scope still applies."""
    checked = 0
    for view in registered_views(app.extensions["admin"][0]):
        if not isinstance(view, ScopedModelView) or "customer_admin" not in view.roles:
            continue
        args = [arg for arg, (_index, flt) in (view._filter_args or {}).items() if isinstance(flt, InCompanyTree)]
        for arg in args:
            base = view.url.rstrip("/") + "/"
            assert_no_globex(customer.get(f"{base}?flt0_{arg}={world.globex.id}"), view.endpoint)
            if view.can_export:
                assert_no_globex(customer.get(f"{base}export/csv/?flt0_{arg}={world.globex.id}"), view.endpoint)
            checked += 1
    assert checked >= 5


def test_a_subsidiary_administrator_cannot_reach_the_parent(client, login, world):
    login("north")
    before = snapshot()
    page = client.get(f"/admin/renewal_center/?company_id={world.acme.id}&window=all").get_data(as_text=True)
    assert "AC0001" not in page and "SO0001" not in page
    post(client, "/admin/renewal_center/renew/", {"company_id": world.north.id, "months": "12",
                                                  "rowid": world.devices["AC0001"].id})
    page = client.get(f"/admin/account_config/configure/?ids={world.acme.id}", follow_redirects=True)
    assert "Acme South" not in page.get_data(as_text=True)
    assert changed_tables(before) == []


def test_invoices_refuse_globex_orders_companies_and_documents(app, web_app, customer, world, tmp_path):
    from datetime import datetime, timezone

    from actions.invoices import save_invoice_title
    from actions.orders import number_order

    body = "91310000123456789"
    with app.test_request_context():
        title = save_invoice_title(db.session, world.users["globex"], world.globex, "ordinary", title="Globex Title",
                                   tax_id=body + credit_code_check_char(body), document_name="globex.png",
                                   document_data=PNG, folder=tmp_path / "instance" / "invoice_docs")
        paid = Order(kind="recharge", status="paid", company_id=world.globex.id, currency="CNY",
                     total=Decimal("80.00"), paid_at=datetime.now(timezone.utc), payment_method="wechat")
        number_order(db.session, paid)
        db.session.commit()
    title_id, order_id = title.id, paid.id
    before = snapshot()
    answer = customer.get(f"/admin/invoicetitle/document/?id={title_id}")
    assert answer.status_code == 404 and PNG not in answer.data
    body_ = "91310000987654321"
    assert_no_globex(post(customer, f"/admin/invoicetitle/edit/?id={title_id}", {
        "title": "Hijacked", "tax_id": body_ + credit_code_check_char(body_)}, follow_redirects=True), "title edit")
    assert_no_globex(customer.get(f"/admin/invoice_request_customer/new/?company_id={world.globex.id}"), "new")
    for form in ([("company_id", world.acme.id), ("rowid", order_id), ("invoice_type", "electronic_ordinary"),
                  ("email", "spy@acme.example")],
                 [("company_id", world.globex.id), ("rowid", order_id), ("invoice_type", "electronic_ordinary"),
                  ("email", "spy@acme.example")]):
        assert_no_globex(post(customer, "/admin/invoice_request_customer/new/", form), str(form))
    assert changed_tables(before) == []
