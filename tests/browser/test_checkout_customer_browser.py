"""Seed 003 step 2 (Thông tin khách hàng): "Edit details" opens the company profile in another tab; when the
payer comes back, the details shown on step 2 are those just saved, not the ones the page opened with."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER, shot  # noqa: E402
from .test_subscriptions_browser import VALID_MST, ids, submit  # noqa: E402

pytestmark = BROWSER


def test_step2_reads_the_customer_details_again_after_editing_them(open_as, live_app):
    row = ids(live_app)
    before = live_app.rows("SELECT address FROM company WHERE id = :c", c=row["Acme Logistics"])[0].address
    page = open_as("customer")
    try:
        page.goto(live_app.url(f"/admin/subscribe/checkout/?cycle={row['std12']}&company_id={row['Acme Logistics']}"))
        submit(page, "#rd-next")
        details = page.locator("#rd-customer-details")
        expect(details).to_contain_text("Acme Logistics")
        with page.context.expect_page() as opened:
            page.click("#rd-edit-customer")
        profile = opened.value
        profile.wait_for_load_state()
        assert "/company_profile" in profile.url or "profile" in profile.url
        # What the profile's Save does, then back to the checkout's tab.
        with live_app.engine.begin() as conn:
            conn.execute(sa.text("UPDATE company SET address = :a WHERE id = :c"),
                         {"a": "88 <Harbour> Road", "c": row["Acme Logistics"]})
        profile.close()
        page.bring_to_front()
        page.evaluate("window.dispatchEvent(new Event('focus'))")
        expect(details).to_contain_text("88 <Harbour> Road")  # as text: nothing typed is markup
        assert page.locator("#rd-customer-details harbour").count() == 0
    finally:
        with live_app.engine.begin() as conn:
            conn.execute(sa.text("UPDATE company SET address = :a WHERE id = :c"),
                         {"a": before, "c": row["Acme Logistics"]})


def test_step2_invoice_title_list_follows_what_fills_the_fields(open_as, live_app):
    """Thông tin xuất hóa đơn: the list shows the saved title the fields were filled from; picking another fills
    them from it; typing over them turns the list to a new title, and the confirmation shows what was typed."""
    row = ids(live_app)
    acme = row["Acme Logistics"]
    tax_before = live_app.scalar("SELECT tax_id FROM company WHERE id = :c", c=acme)
    with live_app.engine.begin() as conn:
        conn.execute(sa.text("UPDATE company SET tax_id = NULL WHERE id = :c"), {"c": acme})
        for kind, title, tax_id, address in (("ordinary", "Acme Logistics Co., Ltd.", VALID_MST, "1 Harbour Road"),
                                             ("special", "Acme Holdings", "0100109106", "9 Hill Street")):
            conn.execute(sa.text("INSERT INTO invoice_title (company_id, kind, title, tax_id, address, updated_at) "
                                 "VALUES (:c, :k, :t, :x, :a, CURRENT_TIMESTAMP)"),
                         {"c": acme, "k": kind, "t": title, "x": tax_id, "a": address})
    first = live_app.scalar("SELECT id FROM invoice_title WHERE company_id = :c AND kind = 'ordinary'", c=acme)
    second = live_app.scalar("SELECT id FROM invoice_title WHERE company_id = :c AND kind = 'special'", c=acme)
    page = open_as("customer")
    try:
        page.goto(live_app.url(f"/admin/subscribe/checkout/?cycle={row['std12']}&company_id={acme}"))
        submit(page, "#rd-next")
        expect(page.locator("#rd-invoice-title-id")).to_have_value(str(first))  # it filled the fields
        expect(page.locator("#rd-invoice-title")).to_have_value("Acme Logistics Co., Ltd.")
        page.select_option("#rd-invoice-title-id", str(second))
        expect(page.locator("#rd-invoice-title")).to_have_value("Acme Holdings")
        expect(page.locator("#rd-invoice-tax-id")).to_have_value("0100109106")
        expect(page.locator("#rd-invoice-address")).to_have_value("9 Hill Street")
        page.fill("#rd-invoice-title", "Acme Holdings <Hanoi branch>")
        expect(page.locator("#rd-invoice-title-id")).to_have_value("")  # typed over: a new title
        page.fill("#rd-contact-name", "Nguyễn Văn An")
        page.fill("#rd-contact-phone", "+84 24 3825 1234")
        page.fill("#rd-contact-email", "an.nguyen@acme.example")
        page.check("#rd-accept-terms")
        submit(page, "#rd-pay")
        invoice = page.locator("#rd-confirm-invoice")
        expect(invoice).to_contain_text("Acme Holdings <Hanoi branch>")  # as text: nothing typed is markup
        expect(invoice).to_contain_text("0100109106")
        expect(invoice).to_contain_text("9 Hill Street")
        expect(page.locator("#rd-confirm-contact")).to_contain_text("Nguyễn Văn An")
        expect(page.locator("#rd-confirm-customer")).to_contain_text("Acme Logistics")
        shot(page, "subscription-checkout-confirm-details")
    finally:
        with live_app.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM invoice_title WHERE id IN (:a, :b)"), {"a": first, "b": second})
            conn.execute(sa.text("UPDATE company SET tax_id = :t WHERE id = :c"), {"t": tax_before, "c": acme})
