"""销售 (sell cards) in a real browser: choosing another distributor narrows "Shipped by" to the holders whose cards
that distributor may sell (the platform, its upstream distributors, itself), read from
/admin/cardorder/place/holders/ by static/renewdesk/holders-follow-seller.js; names arrive as text."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER  # noqa: E402

pytestmark = BROWSER

MARKED = "Aotuo <i>Shenzhen</i>"


def test_the_holder_list_follows_the_chosen_distributor(open_as, live_app):
    parent = live_app.scalar("SELECT id FROM company WHERE name = 'Aotuo Cards'")
    child = live_app.scalar("SELECT id FROM company WHERE name = 'Aotuo Shenzhen'")
    page = open_as("distributor")
    try:
        with live_app.engine.begin() as conn:  # a name with markup: it must come back as text
            conn.execute(sa.text("UPDATE company SET name = :n WHERE id = :c"), {"n": MARKED, "c": child})
        page.goto(live_app.url("/admin/cardorder/place/"))
        holders = page.locator("#holder option")
        expect(page.locator("#seller_id")).to_have_value(str(parent))
        expect(holders).to_have_text(["Platform warehouse", "Aotuo Cards"])

        page.select_option("#seller_id", str(child))
        expect(holders).to_have_text(["Platform warehouse", "Aotuo Cards", MARKED])
        assert page.locator("#holder i").count() == 0
        page.select_option("#holder", str(parent))

        page.select_option("#seller_id", str(parent))
        expect(holders).to_have_text(["Platform warehouse", "Aotuo Cards"])
        expect(page.locator("#holder")).to_have_value(str(parent))  # still a valid holder: kept

        page.select_option("#seller_id", str(child))
        expect(holders).to_have_count(3)
        page.select_option("#holder", str(child))
        page.select_option("#seller_id", str(parent))
        expect(holders).to_have_count(2)
        expect(page.locator("#holder")).to_have_value("0")  # its own stock is no holder for the parent
    finally:
        with live_app.engine.begin() as conn:
            conn.execute(sa.text("UPDATE company SET name = 'Aotuo Shenzhen' WHERE id = :c"), {"c": child})
