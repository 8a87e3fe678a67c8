"""Seed 003 step 2 (Thông tin khách hàng): "Edit details" opens the company profile in another tab; when the
payer comes back, the details shown on step 2 are those just saved, not the ones the page opened with."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER  # noqa: E402
from .test_subscriptions_browser import ids, submit  # noqa: E402

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
