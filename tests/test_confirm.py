"""Money moves and irreversible actions ask on a server-rendered page first (admin_views/confirm.py).

For each: the first POST shows the page naming what will happen and changes nothing; a forged or
mismatched confirmation token is refused and changes nothing; the confirmed POST does it. Also the
pages around it: no JavaScript confirm() left, the expiry maintenance form, custom months, the billing
config's inherited start and its delete text, and return URLs that keep filters, search, sort and page.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from actions.coins import create_coin_order
from actions.offline_recharge import create_application
from actions.orders import request_refund
from actions.tenants import apply, credit_code_check_char
from actions.wallets import balance_of, credit, wallet_for
from conftest import confirmation_form, confirm_post, make_device, post
from models import (
    BankTransferReceipt, BillingConfig, Device, InvoiceRequest, OfflineRecharge, Order, OrderLine,
    OrderRefund, Package, TenantApplication, User, db,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def credit_code(body: str) -> str:
    """A unified social credit code: 17 characters and their check character."""
    return body + credit_code_check_char(body)


def text_of(response) -> str:
    return unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


def fresh(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def check_asks_first(client, url: str, data, changed, summary: str):
    """The whole contract of one confirmed action; returns the confirmed POST's answer."""
    first = post(client, url, data)
    assert first.status_code == 200, first.status_code
    assert summary in text_of(first), text_of(first)[:2000]
    assert not changed(), "the first POST changed something"
    action, fields = confirmation_form(first)
    assert any(name == "confirm_token" for name, _v in fields)

    forged = [(k, "forged" + v[6:] if k == "confirm_token" else v) for k, v in fields]
    again = client.post(action, data=MultiDict(forged))
    assert again.status_code == 200 and not changed()
    assert "The confirmation does not match this action any more; nothing was changed." in text_of(again)

    without = [(k, v) for k, v in fields if k != "confirm_token"]
    assert client.post(action, data=MultiDict(without)).status_code == 200 and not changed()

    added = client.post(action, data=MultiDict([*fields, ("months", "12")]))  # a field the page did not confirm
    assert added.status_code == 200 and not changed()
    assert "The confirmation does not match this action any more; nothing was changed." in text_of(added)

    done = client.post(action, data=MultiDict(fields))
    assert done.status_code == 302, text_of(done)[:1000]
    assert changed(), "the confirmed POST did nothing"
    return done


# --- offline recharge review ---------------------------------------------------------------------

@pytest.fixture
def pending(app, world):
    with app.test_request_context():
        application = create_application(db.session, world.users["sales"], world.acme.id, "Shenzhen Payer Ltd", "CNY",
                                          "1000.00", "TT-1", submit=True)
    db.session.commit()
    return application


def test_approve_offline_recharge_asks_naming_amount_company_and_balance(client, login, world, pending):
    login("finance")
    url = f"/admin/recharge_review/review/?id={pending.id}"
    check_asks_first(client, url, {"decision": "approve", "comment": "seen"},
                     lambda: fresh(OfflineRecharge, pending.id).status == "approved",
                     "Approve and credit CN¥1,000.00 to the CNY balance of Acme Logistics.")
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("1000.00")


def test_approve_offline_recharge_in_chinese(client, login, world, pending):
    db.session.get(User, world.users["finance"].id).locale = "zh_Hans_CN"
    db.session.commit()
    login("finance")
    page = text_of(post(client, f"/admin/recharge_review/review/?id={pending.id}", {"decision": "approve"}))
    assert "审核通过并充值 ¥1,000.00 到 Acme Logistics 的人民币余额" in page
    assert "返回" in page and "充值后不能撤销" in page
    assert fresh(OfflineRecharge, pending.id).status == "submitted"


def test_decline_offline_recharge_asks_and_says_it_is_final(client, login, world, pending):
    login("finance")
    url = f"/admin/recharge_review/review/?id={pending.id}"
    check_asks_first(client, url, {"decision": "decline", "comment": "no such transfer"},
                     lambda: fresh(OfflineRecharge, pending.id).status == "declined",
                     "Decline the application of Acme Logistics for CN¥1,000.00: nothing is credited.")


def test_a_confirmed_decline_cannot_carry_another_comment(client, login, world, pending):
    """The token covers the posted fields: the comment the page showed is the one recorded."""
    login("finance")
    url = f"/admin/recharge_review/review/?id={pending.id}"
    action, fields = confirmation_form(post(client, url, {"decision": "decline", "comment": "no such transfer"}))
    edited = [(k, "paid twice, refund it" if k == "comment" else v) for k, v in fields]
    answer = client.post(action, data=MultiDict(edited))
    assert "does not match" in text_of(answer)
    assert fresh(OfflineRecharge, pending.id).status == "submitted"
    assert client.post(action, data=MultiDict(fields)).status_code == 302
    assert fresh(OfflineRecharge, pending.id).status == "declined"


def test_a_token_for_one_application_does_not_approve_another(client, login, world, pending, app):
    with app.test_request_context():
        other = create_application(db.session, world.users["sales"], world.north.id, "Other Payer", "CNY", "5.00",
                                   "TT-2", submit=True)
    db.session.commit()
    login("finance")
    _action, fields = confirmation_form(post(client, f"/admin/recharge_review/review/?id={pending.id}",
                                             {"decision": "approve"}))
    answer = client.post(f"/admin/recharge_review/review/?id={other.id}", data=MultiDict(fields))
    assert "does not match" in text_of(answer)
    assert fresh(OfflineRecharge, other.id).status == "submitted"
    assert fresh(OfflineRecharge, pending.id).status == "submitted"


def test_a_token_for_approving_does_not_decline(client, login, world, pending):
    login("finance")
    url = f"/admin/recharge_review/review/?id={pending.id}"
    _action, fields = confirmation_form(post(client, url, {"decision": "approve"}))
    swapped = [(k, "decline" if k == "decision" else v) for k, v in fields] + [("comment", "x")]
    client.post(url, data=MultiDict(swapped))
    assert fresh(OfflineRecharge, pending.id).status == "submitted"


def test_another_users_token_is_refused(client, login, world, pending):
    login("finance")
    url = f"/admin/recharge_review/review/?id={pending.id}"
    _action, fields = confirmation_form(post(client, url, {"decision": "approve"}))
    token = dict(fields)["confirm_token"]
    login.logout()
    login("admin")
    answer = post(client, url, {"decision": "approve", "confirm_token": token})
    assert "does not match" in text_of(answer)
    assert fresh(OfflineRecharge, pending.id).status == "submitted"


# --- bank transfers, invoices, tenant applications -----------------------------------------------

@pytest.fixture
def receipt(app, world, tmp_path):
    from actions.bank_transfers import submit_receipt

    with app.test_request_context():
        order = create_coin_order(db.session, world.users["customer"], world.acme, "2160.00", "bank_transfer")
        made = submit_receipt(db.session, world.users["customer"], order, "Acme Logistics Ltd", "6222 0000 1111",
                              "2160.00", "receipt.png", PNG, tmp_path, 5 * 1024 * 1024)
    db.session.commit()
    return made


def test_confirming_a_bank_transfer_asks_first(client, login, world, receipt):
    login("finance")
    check_asks_first(client, f"/admin/bank_transfer_review/review/?id={receipt.id}",
                     {"decision": "confirm", "received": "2,160.00"},
                     lambda: fresh(BankTransferReceipt, receipt.id).status == "confirmed",
                     "Confirm the transfer of CN¥2,160.00 from Acme Logistics Ltd")


def test_a_confirmation_of_one_amount_does_not_confirm_another(client, login, world, receipt):
    login("finance")
    url = f"/admin/bank_transfer_review/review/?id={receipt.id}"
    _action, fields = confirmation_form(post(client, url, {"decision": "confirm", "received": "2,160.00"}))
    changed = [(k, "1.00" if k == "received" else v) for k, v in fields]
    assert "does not match" in text_of(client.post(url, data=MultiDict(changed)))
    assert fresh(BankTransferReceipt, receipt.id).status == "submitted"


def test_rejecting_a_bank_transfer_asks_first(client, login, world, receipt):
    login("finance")
    check_asks_first(client, f"/admin/bank_transfer_review/review/?id={receipt.id}",
                     {"decision": "reject", "reason": "blurred"},
                     lambda: fresh(BankTransferReceipt, receipt.id).status == "rejected",
                     "the order still awaits payment.")


def test_rejecting_an_invoice_request_asks_first(app, client, login, world):
    from actions.invoices import request_invoice, save_invoice_title

    order = Order(number="RN-INV-1", kind="renewal", status="paid", company_id=world.acme.id, currency="CNY",
                  total=Decimal("100.00"), payment_method="alipay")
    db.session.add(order)
    db.session.flush()
    with app.test_request_context():
        save_invoice_title(db.session, world.users["customer"], world.acme, "ordinary", title="Acme Logistics Ltd",
                           tax_id=credit_code("91310000MA1FL0001"))
        made = request_invoice(db.session, world.users["customer"], world.acme, [order], "electronic_ordinary",
                               email="ap@acme.example")
    db.session.commit()
    login("finance")
    check_asks_first(client, "/admin/invoice_review/reject/", {"id": str(made.id), "reason": "wrong title"},
                     lambda: fresh(InvoiceRequest, made.id).status == "rejected",
                     f"Reject the invoice request #{made.id} of Acme Logistics for CN¥100.00")


def test_rejecting_a_tenant_application_asks_first(app, client, login, world):
    with app.test_request_context():
        application = apply(db.session, world.users["sales"], company_name="Initech Rentals",
                            tax_id=credit_code("91110108MA01ABCD0"), contact_name="Peter", contact_phone="010-62908030",
                            contact_email="peter@initech.example")
    db.session.commit()
    login("admin")
    check_asks_first(client, "/admin/tenantapplication/reject/", {"id": application.id, "reason": "unreadable"},
                     lambda: fresh(TenantApplication, application.id).status == "rejected",
                     "Reject the application of Initech Rentals")


# --- refunds ------------------------------------------------------------------------------------------

@pytest.fixture
def paid_order(world):
    order = Order(number="RN-PAID-1", kind="renewal", status="paid", company_id=world.acme.id, currency="CNY",
                  total=Decimal("120.00"), payment_method="balance")
    db.session.add(order)
    db.session.flush()
    db.session.add(OrderLine(order_id=order.id, description="AC0001 × 12", unit_price=Decimal("120.00"),
                             amount=Decimal("120.00")))
    credit(db.session, wallet_for(db.session, world.acme.id, "CNY"), Decimal("120.00"), "offline_recharge",
           "test:paid", None)
    db.session.commit()
    return order


def refunds() -> int:
    return db.session.scalar(select(func.count()).select_from(OrderRefund))


def test_requesting_a_refund_needs_the_confirmation_pages_token(client, login, world, paid_order):
    login("finance")
    ask = post(client, "/admin/order_management/action/", [("action", "refund"), ("rowid", str(paid_order.id))])
    assert "Request refunds of these orders?" in text_of(ask) and refunds() == 0
    token = re.search(r'name="confirm_token" value="([^"]+)"', ask.get_data(as_text=True)).group(1)
    assert "Request refunds" in text_of(post(client, "/admin/order_management/refund/",
                                             [("rowid", str(paid_order.id))]))
    assert refunds() == 0
    post(client, "/admin/order_management/refund/", [("rowid", str(paid_order.id)), ("confirm_token", "x" + token)])
    assert refunds() == 0
    other = Order(number="RN-PAID-2", kind="renewal", status="paid", company_id=world.acme.id, currency="CNY",
                  total=Decimal("1.00"), payment_method="balance")
    db.session.add(other)
    db.session.commit()
    post(client, "/admin/order_management/refund/", [("rowid", str(other.id)), ("confirm_token", token)])
    assert refunds() == 0  # the token names other orders
    done = post(client, "/admin/order_management/refund/", [("rowid", str(paid_order.id)), ("confirm_token", token),
                                                            ("reason", "asked")], follow_redirects=True)
    assert "1 refunds requested" in text_of(done) and refunds() == 1


def test_refund_lines_and_refund_rejection_ask_first(app, client, login, world, paid_order):
    login("finance")
    line_id = db.session.scalar(select(OrderLine.id).where(OrderLine.order_id == paid_order.id))
    check_asks_first(client, "/admin/order_management/refund-lines/",
                     [("id", str(paid_order.id)), ("line", str(line_id)), ("reason", "asked")],
                     lambda: refunds() == 1, "Request a refund of 1 lines of order RN-PAID-1 of Acme Logistics:")
    refund_id = db.session.scalar(select(OrderRefund.id))
    check_asks_first(client, "/admin/orderrefund/reject/", {"id": str(refund_id), "reason": "not due"},
                     lambda: fresh(OrderRefund, refund_id).status == "rejected",
                     "Reject the refund of CN¥120.00 for order RN-PAID-1 of Acme Logistics: no money is paid back.")


def test_approving_a_refund_needs_the_token(app, client, login, world, paid_order):
    with app.test_request_context():
        lines = list(db.session.scalars(select(OrderLine.id).where(OrderLine.order_id == paid_order.id)))
        refund = request_refund(db.session, world.users["finance"], paid_order, lines, "asked")
    db.session.commit()
    login("admin")
    assert "Approve these refunds?" in text_of(post(client, "/admin/orderrefund/approve/", [("rowid", str(refund.id))]))
    assert fresh(OrderRefund, refund.id).status == "requested"
    ask = post(client, "/admin/orderrefund/action/", [("action", "approve"), ("rowid", str(refund.id))])
    token = re.search(r'name="confirm_token" value="([^"]+)"', ask.get_data(as_text=True)).group(1)
    post(client, "/admin/orderrefund/approve/", [("rowid", str(refund.id)), ("confirm_token", token)])
    assert fresh(OrderRefund, refund.id).status == "completed"


# --- deletes --------------------------------------------------------------------------------------

def test_the_delete_button_names_the_record(client, login, world):
    gps_y = world.packages["GPS-Y"].id
    login("support")
    done = check_asks_first(client, "/admin/package/delete/", {"id": gps_y, "url": "/admin/package/?search=GPS"},
                            lambda: db.session.get(Package, gps_y) is None or fresh(Package, gps_y) is None,
                            "Delete 1 records from Packages:")
    assert done.headers["Location"] == "/admin/package/?search=GPS"


def test_the_delete_action_lists_every_record(client, login, world):
    ids = [world.packages["GPS-Y"].id, world.packages["VAS-SMS"].id]
    login("support")
    page = text_of(post(client, "/admin/package/action/", [("action", "delete")] + [("rowid", i) for i in ids]
                        + [("rowid", "999999")]))
    assert "Delete 2 records from Packages:" in page
    assert "GPS-Y GPS yearly" in page and "VAS-SMS SMS" in page
    assert "#999999 (not found or outside your companies)" in page
    assert all(fresh(Package, i) is not None for i in ids)
    confirm_post(client, "/admin/package/action/", [("action", "delete")] + [("rowid", i) for i in ids])
    assert all(fresh(Package, i) is None for i in ids)


def test_delete_buttons_and_action_menus_carry_no_javascript_confirm(client, login, world):
    login("support")
    page = client.get("/admin/package/").get_data(as_text=True)
    assert "safeConfirm" not in page
    assert 'action="/admin/package/delete/"' in page
    page = client.get("/admin/device/").get_data(as_text=True)
    assert "Suspend the selected devices?" not in page and "Enable the selected devices?" in page


def test_billing_config_delete_of_a_top_level_company_says_it_then_has_none(client, login, world):
    config = BillingConfig(company_id=world.acme.id, billing_cycle="monthly", push_language="zh_CN",
                           push_emails="ops@acme.example")
    db.session.add(config)
    db.session.commit()
    login("sales")
    check_asks_first(client, "/admin/billing_config/delete/", {"id": config.id, "company": "", "scope": "direct"},
                     lambda: fresh(BillingConfig, config.id) is None,
                     "Acme Logistics is a top-level company: without its own config it has no billing config at all.")


def test_billing_config_delete_of_a_subsidiary_names_what_it_inherits(client, login, world):
    db.session.add(BillingConfig(company_id=world.acme.id, billing_cycle="yearly", push_language="zh_CN",
                                 push_emails="ops@acme.example", auto_renew=True))
    own = BillingConfig(company_id=world.north.id, billing_cycle="monthly", push_language="zh_CN", push_emails="")
    db.session.add(own)
    db.session.commit()
    login("customer")
    page = text_of(post(client, "/admin/account_config/delete/", {"id": own.id}))
    assert "Acme North then inherits the billing config of Acme Logistics:" in page
    assert "Billing cycle: Yearly" in page and "Auto-renew: Yes" in page and "ops@acme.example" in page
    assert fresh(BillingConfig, own.id) is not None
    page = client.get("/admin/account_config/").get_data(as_text=True)
    assert "return confirm(" not in page


# --- suspensions --------------------------------------------------------------------------------

def test_suspending_devices_from_the_list_names_each_device(client, login, world):
    ids = [world.devices["AC0001"].id, world.devices["NO0001"].id]
    login("customer")
    status = lambda: {fresh(Device, i).status for i in ids}  # noqa: E731
    check_asks_first(client, "/admin/device/action/", [("action", "suspend")] + [("rowid", str(i)) for i in ids],
                     lambda: status() == {"suspended"}, "Suspend 2 devices:")


def test_the_suspension_page_lists_devices_by_number_name_and_company(client, login, world):
    login("customer")
    page = text_of(post(client, "/admin/device/action/", [("action", "suspend"),
                                                         ("rowid", str(world.devices["NO0001"].id)),
                                                         ("rowid", str(world.devices["GX0001"].id))]))
    assert "NO0001 Truck NO0001 (Acme North)" in page
    assert f"#{world.devices['GX0001'].id} (not found or outside your companies)" in page
    assert "left out of auto-renewal and expiry reminders" in page


def test_a_suspension_token_does_not_suspend_other_devices(client, login, world):
    login("customer")
    first = post(client, "/admin/device/action/", [("action", "suspend"), ("rowid", str(world.devices["AC0001"].id))])
    action, fields = confirmation_form(first)
    other = [(k, str(world.devices["AC0002"].id) if k == "rowid" else v) for k, v in fields]
    client.post(action, data=MultiDict(other))
    assert fresh(Device, world.devices["AC0002"].id).status == "active"
    assert fresh(Device, world.devices["AC0001"].id).status == "active"


def test_enabling_needs_no_confirmation(client, login, world):
    device = db.session.get(Device, world.devices["AC0001"].id)
    device.status = "suspended"
    db.session.commit()
    login("customer")
    post(client, "/admin/device/action/", [("action", "enable"), ("rowid", str(device.id))])
    assert fresh(Device, device.id).status == "active"


def test_batch_suspend_asks_with_the_number_of_devices(client, login, world):
    login("support")
    numbers = {"numbers": "AC0001\nAC0002\nNO-SUCH", "operation": "suspend", "confirm": "1"}
    status = lambda: {fresh(Device, world.devices[n].id).status for n in ("AC0001", "AC0002")}  # noqa: E731
    check_asks_first(client, "/admin/device_batch/", numbers, lambda: status() == {"suspended"}, "Suspend 2 devices:")


def test_a_batch_token_does_not_carry_over_to_other_numbers(client, login, world):
    login("support")
    first = post(client, "/admin/device_batch/", {"numbers": "AC0001", "operation": "suspend", "confirm": "1"})
    action, fields = confirmation_form(first)
    other = [(k, "AC0001\nAC0002" if k == "numbers" else v) for k, v in fields]
    client.post(action, data=MultiDict(other))
    assert {fresh(Device, world.devices[n].id).status for n in ("AC0001", "AC0002")} == {"active"}


def test_suspending_a_subscription_asks_first(client, login, world):
    from models import Subscription

    subscription = db.session.scalar(select(Subscription))
    subscription.status = "active"
    db.session.commit()
    login("admin")
    check_asks_first(client, "/admin/subscription/action/", [("action", "suspend"), ("rowid", str(subscription.id))],
                     lambda: fresh(Subscription, subscription.id).status == "suspended", "Suspend 1 subscriptions:")


# --- the expiry maintenance form, custom months, billing config's start --------------------------

def test_expiry_maintenance_form_names_the_device_and_takes_any_year(client, login, world):
    device = world.devices["NO0002"]
    login("support")
    page = client.get(f"/admin/device_expiry/edit/?id={device.id}").get_data(as_text=True)
    text = text_of(client.get(f"/admin/device_expiry/edit/?id={device.id}"))
    assert "Expiry date of device NO0002" in text
    assert "Truck NO0002" in text and "Acme North" in text
    years = re.search(r'<select[^>]*name="expires_on-year"[^>]*>(.*?)</select>', page, re.S).group(1)
    this_year = date.today().year
    assert re.findall(r'value="(\d+)"', years) == [str(y) for y in range(this_year - 1, this_year + 21)]
    expires_on = fresh(Device, device.id).expires_on
    assert f'value="{expires_on.year}" selected' in years
    assert 'data-role="datepicker"' not in page.split('id="rd-expiry-device"')[1]
    answer = post(client, f"/admin/device_expiry/edit/?id={device.id}",
                  {"expires_on-year": str(this_year + 20), "expires_on-month": "6", "expires_on-day": "30"})
    assert answer.status_code == 302
    assert fresh(Device, device.id).expires_on == date(this_year + 20, 6, 30)
    answer = post(client, f"/admin/device_expiry/edit/?id={device.id}",
                  {"expires_on-year": str(this_year), "expires_on-month": "2", "expires_on-day": "31"})
    assert answer.status_code == 200  # no such day: the form again, nothing saved
    assert fresh(Device, device.id).expires_on == date(this_year + 20, 6, 30)


def test_expiry_years_include_a_date_beyond_the_list(client, login, world):
    device = db.session.get(Device, world.devices["NO0002"].id)
    device.expires_on = date(2090, 1, 1)
    db.session.commit()
    login("support")
    page = client.get(f"/admin/device_expiry/edit/?id={device.id}").get_data(as_text=True)
    assert 'value="2090" selected' in page


def test_inline_expiry_editor_offers_twenty_years_ahead(client, login, world):
    login("support")
    page = unescape(client.get("/admin/device_expiry/").get_data(as_text=True))
    year = date.today().year
    assert f'"maxYear": {year + 20}' in page and "2030" not in page.split('"maxYear"')[1][:10]


def test_custom_months_wait_for_the_number(client, login, world):
    login("customer")
    page = client.get(f"/admin/renewal_center/?company_id={world.acme.id}").get_data(as_text=True)
    # The length's select reloads the list unless "custom" waits for the number (static/renewdesk/
    # renewal-length.js; the browser test walks it).
    assert "renewdesk/renewal-length.js" in page
    custom = re.search(r'<input[^>]*id="rd-custom-months"[^>]*>', page, re.S).group(0)
    assert " hidden" in custom
    page = client.get(f"/admin/renewal_center/?company_id={world.acme.id}&months=custom&custom_months=3"
                      ).get_data(as_text=True)
    custom = re.search(r'<input[^>]*id="rd-custom-months"[^>]*>', page, re.S).group(0)
    assert " hidden" not in custom and " required" in custom


def test_configuring_several_subsidiaries_starts_from_what_they_inherit(client, login, world):
    db.session.add(BillingConfig(company_id=world.acme.id, billing_cycle="yearly", push_language="vi",
                                 push_emails="ops@acme.example", auto_renew=True))
    db.session.commit()
    login("customer")
    page = client.get(f"/admin/account_config/configure/?ids={world.north.id}&ids={world.south.id}"
                      ).get_data(as_text=True)
    assert re.search(r'<option selected value="yearly">|<option value="yearly" selected', page)
    assert "ops@acme.example" in page
    assert "starts from the config inherited from Acme Logistics" in text_of(
        client.get(f"/admin/account_config/configure/?ids={world.north.id}&ids={world.south.id}"))


# --- filters, search, sort and page survive actions, edits and details ---------------------------

@pytest.fixture
def many(world):
    for i in range(30):
        make_device(f"FLT{i:03d}", world.acme, date.today() + timedelta(days=i + 1))
    db.session.commit()


def same_list(url: str, expected: str) -> bool:
    got, want = urlsplit(url), urlsplit(expected)
    return got.path == want.path and parse_qs(got.query) == parse_qs(want.query)


LIST = "/admin/device_expiry/?flt0_status_equals=active&search=FLT&sort=0&desc=1&page=1&page_size=20"


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi", "en"])
def test_edit_and_details_lead_back_to_the_same_filtered_page(client, login, world, many, locale):
    db.session.get(User, world.users["support"].id).locale = locale
    db.session.commit()
    login("support")
    page = client.get(LIST).get_data(as_text=True)
    edits = [unescape(u) for u in re.findall(r'href="(/admin/device_expiry/edit/\?[^"]+)"', page)]
    assert len(edits) == 10  # page 2 of 30 at 20 a page
    back = parse_qs(urlsplit(edits[0]).query)["url"][0]
    assert same_list(back, LIST), back
    answer = post(client, edits[0], {"expires_on": "2040-01-01", "url": back})
    assert answer.status_code == 302 and same_list(answer.headers["Location"], LIST), answer.headers["Location"]
    details = unescape(re.search(r'href="(/admin/device_expiry/details/\?[^"]+)"', page).group(1))
    details_page = client.get(details).get_data(as_text=True)
    links = [unescape(u) for u in re.findall(r'href="(/admin/device_expiry/\?[^"]+)"', details_page)]
    assert any(same_list(link, LIST) for link in links), links


def test_an_action_leads_back_to_the_same_filtered_page(client, login, world, many):
    db.session.get(User, world.users["support"].id).locale = "zh_Hans_CN"
    db.session.commit()
    login("support")
    url = "/admin/device/?flt0_status_equals=active&search=FLT&sort=0&page=1&page_size=20"
    page = client.get(url).get_data(as_text=True)
    back = unescape(re.search(r'class="d-inline rd-row-toggle">.*?name="url" value="([^"]+)"', page, re.S).group(1))
    assert same_list(back, url), back
    row_id = db.session.scalar(select(Device.id).where(Device.number == "FLT025"))
    done = confirm_post(client, "/admin/device/action/", {"action": "suspend", "rowid": str(row_id), "url": back})
    assert same_list(done.headers["Location"], url)
    confirm = post(client, "/admin/device/action/", {"action": "suspend", "rowid": str(row_id), "url": back})
    assert confirm.status_code == 302  # already suspended: nothing to confirm, refused at once


def test_review_links_carry_the_list_and_lead_back_to_it(client, login, world, pending):
    login("finance")
    url = "/admin/recharge_review/?search=Shenzhen&page_size=20"
    page = client.get(url).get_data(as_text=True)
    review = unescape(re.search(r'href="(/admin/recharge_review/review/\?[^"]+)"', page).group(1))
    assert same_list(parse_qs(urlsplit(review).query)["url"][0], url)
    done = confirm_post(client, review, {"decision": "approve"})
    assert same_list(done.headers["Location"], url)


def test_withdrawing_value_added_offers_asks_first(app, client, login, world):
    from actions.bindings import offer_packages
    from models import CompanyPackage

    with app.test_request_context():
        offer_packages(db.session, world.users["support"], world.acme, [world.packages["VAS-SMS"]])
    db.session.commit()
    offer = db.session.scalar(select(CompanyPackage.id))
    login("support")
    check_asks_first(client, "/admin/company_package/action/", [("action", "delete"), ("rowid", str(offer))],
                     lambda: fresh(CompanyPackage, offer) is None, "Stop offering 1 value-added packages:")
