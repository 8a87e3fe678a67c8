"""Every money string on the list pages comes from the one formatter, in each language."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from actions.orders import LineSpec, open_order, pay_with_balance
from actions.wallets import credit, wallet_for
from models import db

# What a hand-formatted or raw amount looks like: a Decimal or float repr, or "12.50 CNY".
RAW = re.compile(r"Decimal\(|\d\.\d{6,}|\d\.\d{2}\s*(?:CNY|USD|VND|COIN)\b")


@pytest.fixture
def money_rows(app, world):
    wallet = wallet_for(db.session, world.acme.id, "CNY")
    credit(db.session, wallet, Decimal("1234.50"), "recharge", "display:fund")
    order = open_order(db.session, world.users["customer"], kind="renewal", company_id=world.acme.id,
                       currency="CNY", lines=[LineSpec(description="AC0001", gross=Decimal("10.10"),
                                                       device_id=world.devices["AC0001"].id, months=1)])
    pay_with_balance(db.session, world.users["customer"], order, date.today())
    db.session.commit()


@pytest.mark.parametrize("language", ["zh_Hans_CN", "vi", "en"])
@pytest.mark.parametrize("username", ["admin", "customer"])
def test_list_pages_show_no_raw_amounts(app, client, login, world, money_rows, language, username):
    from admin_views import registered_views

    user = world.users[username]
    user.locale = language
    db.session.commit()
    login(username)
    checked = 0
    for view in registered_views(app.extensions["admin"][0]):
        if not hasattr(view, "column_list") or not view.allows(user):
            continue
        answer = client.get(view.url.rstrip("/") + "/")
        if answer.status_code != 200:
            continue
        page = answer.get_data(as_text=True)
        assert not RAW.search(page), (view.endpoint, RAW.search(page).group(0))
        checked += 1
    assert checked >= (10 if username == "admin" else 4)


def test_the_formatter_is_what_the_lists_show(app, client, login, world, money_rows):
    user = world.users["admin"]
    user.locale = "zh_Hans_CN"
    db.session.commit()
    login("admin")
    assert "¥1,224.40" in client.get("/admin/wallet/").get_data(as_text=True)
    assert "¥10.10" in client.get("/admin/ledgerentry/").get_data(as_text=True)
