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
              "drafts", "rejected", "awaiting_cash", "applications", "companies", "locked"},
    "support": {"expiring_30", "expired", "suspended", "unbound"},
    "finance": {"pending_review", "bank_transfers", "invoice_requests", "refunds", "cash_receipts", "pending_orders"},
    "sales": {"imports", "drafts", "rejected", "awaiting_cash"},
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


def test_sales_see_the_subscriptions_awaiting_their_cash(client, login, world):
    """Seed 003's OS flow: a customer registered in cash; sales' home counts it and links to the list filtered
    to it; once sales entered the receipt it is off their to-do list."""
    from actions import subscriptions as subs
    from test_subscriptions import TODAY, cycle_of, details, now

    selection, key = subs.Selection(cycle_of("EINV-BASIC", 12).id), subs.new_checkout_key()
    quote = subs.reserve(db.session, world.users["customer"], world.acme, selection, key, now())
    subscription = subs.confirm(db.session, world.users["customer"], world.acme, selection, key, quote.digest,
                                details(quote.service, pay_method="cash"), now(), TODAY)
    db.session.commit()
    login("sales")
    page = client.get("/admin/").get_data(as_text=True)
    assert re.search(r'data-card="awaiting_cash">1<', page)
    link = re.search(r'<a href="([^"]*flt0_cash_is=y[^"]*)" class="stretched-link', page).group(1)
    assert subscription.number in client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY)
    db.session.commit()
    assert re.search(r'data-card="awaiting_cash">0<', client.get("/admin/").get_data(as_text=True))
