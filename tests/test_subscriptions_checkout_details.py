"""Seed 003 step 2 and its confirmation: "thay đổi thông tin tại mục Thông tin xuất hóa đơn … nhấn nút Thanh toán
rồi chọn Xác nhận". The invoice title list shows the saved title that filled the fields; what the user typed
afterwards is what is used; the confirmation repeats the invoice, customer and contact details, escaped."""
from __future__ import annotations

import html

from sqlalchemy import select

from actions import subscriptions as subs
from conftest import post
from models import InvoiceTitle, Subscription, db
from test_subscriptions import _hidden, cycle_of
from test_subscriptions_guide import _step2


def _titles(world) -> tuple[InvoiceTitle, InvoiceTitle]:
    first = InvoiceTitle(company_id=world.acme.id, kind="ordinary", title="Acme Logistics Co., Ltd.",
                         tax_id="91440300MA5DEMX01X", address="1 Harbour Road")
    second = InvoiceTitle(company_id=world.acme.id, kind="special", title="Acme Holdings",
                          tax_id="0100109106", address="9 Hill Street")
    db.session.add_all([first, second])
    world.acme.tax_id = None
    db.session.commit()
    return first, second


def _filled(page: str, **fields) -> list[tuple[str, str]]:
    terms = subs.current_terms(db.session, cycle_of("OFFICE-STD", 12).plan.service)
    values = {"stage": "details", "invoice_title": "Acme Logistics Co., Ltd.", "invoice_tax_id": "91440300MA5DEMX01X",
              "invoice_address": "1 Harbour Road", "contact_name": "Li Lei", "contact_phone": "13800000000",
              "contact_email": "li@acme.example", "pay_method": "balance", "auto_renew": "y", "accept_terms": "y",
              "terms_version_id": str(terms.id), **fields}
    kept = [pair for pair in _hidden(page, "rd-checkout-step2")
            if pair[0] not in ("csrf_token", "stage") and pair[0] not in values]
    return kept + [(key, value) for key, value in values.items() if value is not None]


def _confirm(client, fields) -> tuple[str, list[tuple[str, str]]]:
    page = post(client, "/admin/subscribe/checkout/pay/", fields).get_data(as_text=True)
    assert 'id="rd-checkout-confirm"' in page, page[-2000:]
    return page, [pair for pair in _hidden(page, "rd-checkout-confirm") if pair[0] != "csrf_token"]


def _confirmed(client, world, fields) -> Subscription:
    answer = post(client, "/admin/subscribe/checkout/pay/", fields)
    assert answer.status_code == 302, answer.get_data(as_text=True)[-2000:]
    return db.session.scalar(select(Subscription).where(Subscription.company_id == world.acme.id)
                             .order_by(Subscription.id.desc()).limit(1))


def test_the_title_list_shows_the_saved_title_that_filled_the_fields(client, login, world):
    first, second = _titles(world)
    login("customer")
    page = _step2(client, world)
    assert f'<option value="{first.id}" data-title="Acme Logistics Co., Ltd." data-tax-id="91440300MA5DEMX01X" ' \
           f'data-address="1 Harbour Road" selected>' in page
    assert f'<option value="{second.id}" data-title="Acme Holdings"' in page
    assert ("invoice_title_filled", str(first.id)) in _hidden(page, "rd-checkout-step2")
    assert 'value="Acme Logistics Co., Ltd."' in page and "invoice-title.js" in page


def test_a_company_with_its_own_tax_code_opens_on_a_new_title(client, login, world):
    _titles(world)
    world.acme.tax_id = "0100109106"
    db.session.commit()
    login("customer")
    page = _step2(client, world)
    assert " selected>Acme" not in page
    assert ("invoice_title_filled", "") in _hidden(page, "rd-checkout-step2")


def test_what_is_typed_after_choosing_a_title_is_what_is_used(client, login, world):
    first, _second = _titles(world)
    login("customer")
    page = _step2(client, world)
    fields = _filled(page, invoice_title_id=str(first.id), invoice_title="Acme Logistics (Shenzhen branch)",
                     invoice_address="2 Dock Lane")
    confirm_page, confirm_fields = _confirm(client, fields)
    assert "Acme Logistics (Shenzhen branch)" in confirm_page and "2 Dock Lane" in confirm_page
    assert ("invoice_title", "Acme Logistics (Shenzhen branch)") in confirm_fields
    subscription = _confirmed(client, world, confirm_fields)
    assert (subscription.invoice_title, subscription.invoice_tax_id, subscription.invoice_address) == (
        "Acme Logistics (Shenzhen branch)", "91440300MA5DEMX01X", "2 Dock Lane")


def test_a_title_picked_without_javascript_fills_the_invoice(client, login, world):
    """The list changed to another title but the fields still hold the first one (no script filled them): the
    picked title is used, and the confirmation says so before anything is ordered."""
    first, second = _titles(world)
    login("customer")
    page = _step2(client, world)
    fields = _filled(page, invoice_title_id=str(second.id), invoice_title_filled=str(first.id))
    confirm_page, confirm_fields = _confirm(client, fields)
    invoice = confirm_page[confirm_page.index('id="rd-confirm-invoice"'):]
    invoice = invoice[:invoice.index("</dl>")]
    assert "Acme Holdings" in invoice and "0100109106" in invoice and "9 Hill Street" in invoice
    assert "Acme Logistics Co., Ltd." not in invoice
    subscription = _confirmed(client, world, confirm_fields)
    assert (subscription.invoice_title, subscription.invoice_tax_id) == ("Acme Holdings", "0100109106")


def test_a_title_of_another_company_is_still_refused(client, login, world):
    _titles(world)
    foreign = db.session.scalar(select(InvoiceTitle).where(InvoiceTitle.company_id == world.globex.id))
    login("customer")
    page = _step2(client, world)
    answer = post(client, "/admin/subscribe/checkout/pay/", _filled(
        page, invoice_title_id=str(foreign.id), invoice_title_filled=str(foreign.id))).get_data(as_text=True)
    assert f"Invoice title: #{foreign.id} is not a title of {world.acme.name}." in answer
    assert 'id="rd-checkout-confirm"' not in answer


def test_the_confirmation_repeats_invoice_customer_and_contact_escaped(client, login, world):
    world.acme.address = "1 <i>Harbour</i> Road"
    db.session.commit()
    login("customer")
    page = _step2(client, world)
    hostile = '<script>alert("x")</script>'
    fields = _filled(page, invoice_title=f"Acme {hostile}", invoice_tax_id="0100109106",
                     invoice_address="<b>Dock</b> 2", invoice_email="ap@acme.example", contact_name=f"An {hostile}",
                     contact_phone="0912 345 678", contact_email="an@acme.example")
    confirm_page, _fields = _confirm(client, fields)
    assert hostile not in confirm_page and "<b>Dock</b>" not in confirm_page and "<i>Harbour</i>" not in confirm_page

    def section(name: str) -> str:
        part = confirm_page[confirm_page.index(f'id="rd-confirm-{name}"'):]
        return html.unescape(part[:part.index("</dl>")])

    assert all(shown in section("invoice") for shown in (
        f"Acme {hostile}", "0100109106", "<b>Dock</b> 2", "ap@acme.example"))
    assert all(shown in section("customer") for shown in (world.acme.name, "1 <i>Harbour</i> Road"))
    assert all(shown in section("contact") for shown in (f"An {hostile}", "0912 345 678", "an@acme.example"))
    assert "Balance" in section("payment")
    # …next to the plan and the total it showed before
    assert 'id="rd-total"' in confirm_page and "Pay " in confirm_page


def test_the_confirmation_shows_the_customer_details_sales_edited(client, login, world):
    """Sales edits the customer's phone and address on step 2 (Sửa thông tin): the confirmation shows them."""
    from test_subscriptions_os import _step2 as os_step2

    login("sales")
    cycle = cycle_of("OFFICE-STD", 12)
    page = os_step2(client, world, cycle)
    fields = _filled(page, pay_method="cash", customer_phone="+84 24 3999 0000",
                     customer_address="5 <New> Street")
    confirm_page, confirm_fields = _confirm(client, fields)
    customer = confirm_page[confirm_page.index('id="rd-confirm-customer"'):]
    customer = html.unescape(customer[:customer.index("</dl>")])
    assert "+84 24 3999 0000" in customer and "5 <New> Street" in customer
    assert ("customer_address", "5 &lt;New&gt; Street") in confirm_fields


def test_unticking_renew_automatically_holds_through_the_confirmation(client, login, world):
    login("customer")
    page = _step2(client, world)
    confirm_page, confirm_fields = _confirm(client, _filled(page, auto_renew=None, invoice_tax_id="0100109106"))
    payment = confirm_page[confirm_page.index('id="rd-confirm-payment"'):]
    assert "<dd>No</dd>" in payment[:payment.index("</dl>")]
    assert "auto_renew" not in dict(confirm_fields)
    assert _confirmed(client, world, confirm_fields).auto_renew is False
