"""The home page shows each role the numbers it acts on, and each number links to its list."""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest

from models import OfflineRecharge, db

CARDS = {
    "admin": {"expiring_30", "expired", "suspended", "unbound", "imports", "pending_review", "pending_orders",
              "bank_transfers", "invoice_requests", "refunds", "cash_receipts",
              "drafts", "rejected", "applications", "companies", "locked"},
    "support": {"expiring_30", "expired", "suspended", "unbound"},
    "finance": {"pending_review", "bank_transfers", "invoice_requests", "refunds", "cash_receipts", "pending_orders"},
    "sales": {"imports", "drafts", "rejected"},
    "customer": {"expiring_30", "expired", "suspended", "unpaid", "invoices"},
}


@pytest.mark.parametrize("username", sorted(CARDS))
def test_each_role_sees_its_cards_and_every_link_opens(client, login, world, username):
    login(username)
    page = client.get("/admin/").get_data(as_text=True)
    shown = set(re.findall(r'data-card="([a-z_0-9]+)"', page))
    assert shown == CARDS[username]
    for link in re.findall(r'<a href="([^"]+)" class="stretched-link', page):
        assert client.get(link.replace("&amp;", "&")).status_code == 200, link


def test_numbers_count_what_the_role_acts_on(client, login, world):
    world.devices["AC0001"].expires_on = date.today() - timedelta(days=1)
    world.devices["GX0001"].expires_on = date.today() - timedelta(days=1)
    db.session.add(OfflineRecharge(company_id=world.acme.id, payer="Acme", amount=Decimal("10.00"),
                                   status="submitted"))
    db.session.commit()
    login("customer")
    page = client.get("/admin/").get_data(as_text=True)
    assert re.search(r'data-card="expired">1<', page)  # Globex's expired device is not theirs
    login.logout()
    login("finance")
    assert re.search(r'data-card="pending_review">1<', client.get("/admin/").get_data(as_text=True))
