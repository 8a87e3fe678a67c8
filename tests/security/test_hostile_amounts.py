"""Money typed by hand: negative, zero, three decimals, absurdly large, NaN and Infinity, not a
number, and a currency the wallet does not hold — at the top-up, the offline recharge (create and
edit), the coin purchase, the bank transfer receipt and the catalog's package amount. Each gets a
message naming what is wrong, and nothing changes."""
from __future__ import annotations

import html
import io
from decimal import Decimal


from actions.coins import create_coin_order
from actions.offline_recharge import create_application
from conftest import csrf_token
from db_snapshot import changed_tables, snapshot
from models import db

# Typed amount → what the message must say (lower case).
AMOUNTS = {
    "-1": "greater than zero",
    "-0.01": "greater than zero",
    "0": "greater than zero",
    "0.00": "greater than zero",
    "0.001": "two decimal places",
    "10.005": "two decimal places",
    "100000000.01": "larger than",
    "99999999999999999999999999999": "larger than",
    "1e30": "not an amount",
    "1E+999999": "not an amount",
    "NaN": "not an amount",
    "sNaN": "not an amount",
    "Infinity": "not an amount",
    "-Infinity": "not an amount",
    "abc": "not an amount",
    "1,0000": "not an amount",  # thousands groups of three only (1,000 is accepted: lists show it so)
    "": "enter an amount",
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def poster(client):
    """post(url, form) with the session's CSRF token, read once (conftest.post reads it per call)."""
    token = csrf_token(client)

    def post(url, form, **kwargs):
        return client.post(url, data={**form, "csrf_token": token}, **kwargs)

    return post


def page_of(answer, what="") -> str:
    assert answer.status_code == 200, (what, answer.status_code, answer.headers.get("Location"))
    return html.unescape(answer.get_data(as_text=True)).lower()


def try_amounts(send, amounts=AMOUNTS, expect=None):
    """Send each amount; every one is refused with its message and changes nothing."""
    before = snapshot()
    wrong = []
    for amount, message in amounts.items():
        page = page_of(send(amount), amount)
        wanted = (expect or {}).get(amount, message)
        if wanted not in page:
            wrong.append((amount, wanted))
    assert wrong == []
    assert changed_tables(before) == []


def test_top_up(client, login, world):
    login("customer")
    post = poster(client)

    def send(amount, currency="CNY"):
        return post("/admin/recharge_record/top-up/",
                    {"company_id": world.acme.id, "currency": currency, "amount": amount})

    try_amounts(send)
    before = snapshot()
    for currency in ("COIN", "EUR", "cny", ""):
        assert "currency: choose one of cny, usd, vnd." in page_of(send("10.00", currency)), currency
    assert changed_tables(before) == []


def test_coin_purchase(client, login, world):
    login("customer")
    post = poster(client)
    try_amounts(lambda amount: post("/admin/coins/", {"company_id": world.acme.id, "amount": amount,
                                                              "method": "wechat"}))


def test_offline_recharge_create_and_edit(app, client, login, world):
    login("sales")
    post = poster(client)
    form = {"company_id": world.acme.id, "payer": "Acme Logistics", "currency": "CNY", "reference": "R-1",
            "save": "draft"}
    try_amounts(lambda amount: post("/admin/offline_recharge/new/", {**form, "amount": amount}))
    with app.test_request_context():
        draft = create_application(db.session, world.users["sales"], world.acme.id, "Acme", "CNY", "10.00")
        db.session.commit()
    try_amounts(lambda amount: post(f"/admin/offline_recharge/edit/?id={draft.id}",
                                    {**form, "amount": amount}))
    before = snapshot()
    for currency in ("COIN", "EUR"):
        page = page_of(post("/admin/offline_recharge/new/", {**form, "amount": "10.00",
                                                                     "currency": currency}))
        assert "not a valid choice" in page or "currency" in page, currency
    assert changed_tables(before) == []


def test_bank_transfer_receipt(app, web_app, client, login, world, tmp_path, monkeypatch):
    monkeypatch.setattr(web_app, "instance_path", str(tmp_path / "instance"))
    with app.test_request_context():
        order = create_coin_order(db.session, world.users["customer"], world.acme, "72.00", "bank_transfer")
        db.session.commit()
    login("customer")
    post = poster(client)
    try_amounts(lambda amount: post(
        f"/admin/bank_transfer/upload/?order={order.number}",
        {"payer_company": "Acme", "payer_account": "6222", "amount": amount,
         "file": (io.BytesIO(PNG), "receipt.png")}, content_type="multipart/form-data"))


# A package may cost up to what Numeric(14, 2) holds; Flask-Admin's DecimalField parses the text.
PACKAGE_MESSAGES = {**{a: m for a, m in AMOUNTS.items() if a not in ("abc", "1,0000", "", "100000000.01")},
                    "abc": "not an amount", "1,0000": "not an amount", "": "enter an amount",
                    "1e30": "not an amount", "1E+999999": "not an amount", "1000000000000.00": "larger than any",
                    "99999999999999999999999999999": "larger than any"}


def test_catalog_package_amount(client, login, world):
    login("support")
    post = poster(client)
    category = world.packages["GPS-M"].category_id
    form = {"code": "HOSTILE-1", "name": "Hostile", "category": category, "subcategory_id": "", "kind": "renewal",
            "pricing": "per_month", "term_months": "", "currency": "CNY", "active": "y"}
    try_amounts(lambda amount: post("/admin/package/new/", {**form, "amount": amount}), PACKAGE_MESSAGES)
    package = world.packages["GPS-M"]
    try_amounts(lambda amount: post(f"/admin/package/edit/?id={package.id}",
                                    {**form, "code": package.code, "amount": amount}), PACKAGE_MESSAGES)
    before = snapshot()
    for currency in ("COIN", "EUR"):
        assert "not a valid choice" in page_of(post("/admin/package/new/",
                                                    {**form, "amount": "10.00", "currency": currency}))
    assert changed_tables(before) == []
    assert db.session.get(type(package), package.id).amount == Decimal("10.00")
