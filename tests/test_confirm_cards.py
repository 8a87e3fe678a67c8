"""Rolling back a card import (every card of it removed) asks on the confirmation page first."""
from __future__ import annotations

from sqlalchemy import func, select

from importers.cards import commit_chunk, preview_import
from conftest import confirm_post, confirmation_form, post
from models import SimCard, Withdrawal, db
from test_cards import TODAY
from test_cards_import import good, workbook
from test_confirm import check_asks_first

pytest_plugins = ("card_fixtures",)


def test_rolling_back_a_card_import_asks_first(app, client, login, cards, vault):
    support = cards["users"]["support"]
    with app.test_request_context():
        batch = preview_import(db.session, support, vault, workbook([good(n) for n in range(3)]), "三张.xlsx", TODAY)
        commit_chunk(db.session, support, batch)
    db.session.commit()
    login("support")
    cards_left = lambda: db.session.scalar(select(func.count()).select_from(SimCard))  # noqa: E731
    assert cards_left() == 3
    check_asks_first(client, f"/admin/simcard/import/rollback/?id={batch.id}", {},
                     lambda: cards_left() == 0, f"Remove every card of import {batch.id} (三张.xlsx) from the inventory.")


# --- withdrawals: approving and paying ask first ------------------------------------------------------

def submitted_withdrawal(cards, vault, amount: str = "60.00"):
    from decimal import Decimal

    from actions.distribution import submit_withdrawal
    from actions.wallets import credit, wallet_for

    b, users = cards["b"], cards["users"]
    credit(db.session, wallet_for(db.session, b.id, "CNY", kind="commission"), Decimal("100.00"), "commission",
           f"test:seed:{amount}", users["admin"])
    row = submit_withdrawal(db.session, users["b_admin"], vault, b, amount=amount, bank_name="ICBC",
                            account_name="Beta Zhang", account_number="6222020200112233445")
    db.session.commit()
    return row


def withdrawal_status(row_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Withdrawal, row_id).status


def test_approving_a_withdrawal_asks_naming_the_amount_and_account(app, client, login, cards, vault):
    row = submitted_withdrawal(cards, vault)
    login("finance")
    page = client.get("/admin/withdrawal/").get_data(as_text=True)
    assert "Approve the selected withdrawals?" not in page
    check_asks_first(client, "/admin/withdrawal/action/", [("action", "approve"), ("rowid", str(row.id))],
                     lambda: withdrawal_status(row.id) == "approved",
                     "Approve 1 withdrawals, CN¥60.00 in all:")


def test_paying_a_withdrawal_asks_and_says_it_cannot_be_undone(app, client, login, cards, vault):
    row = submitted_withdrawal(cards, vault)
    login("finance")
    confirm_post(client, "/admin/withdrawal/action/", [("action", "approve"), ("rowid", str(row.id))])
    assert withdrawal_status(row.id) == "approved"
    form = {"id": str(row.id), "outcome": "paid", "text": "ICBC-778899"}
    first = check_asks_first(client, f"/admin/withdrawal/decide/?id={row.id}", form,
                             lambda: withdrawal_status(row.id) == "paid",
                             f"Withdrawal {row.id} of Distributor B: CN¥60.00 was transferred to ICBC Beta Zhang")
    assert first.status_code == 302


def test_a_payment_token_does_not_mark_another_withdrawal_paid(app, client, login, cards, vault):
    one, two = submitted_withdrawal(cards, vault, "30.00"), submitted_withdrawal(cards, vault, "20.00")
    login("finance")
    for row in (one, two):
        confirm_post(client, "/admin/withdrawal/action/", [("action", "approve"), ("rowid", str(row.id))])
    asked = post(client, "/admin/withdrawal/decide/", {"id": str(one.id), "outcome": "paid", "text": "REF-1"})
    _action, fields = confirmation_form(asked)
    other = [(k, str(two.id) if k == "id" else v) for k, v in fields]
    post(client, "/admin/withdrawal/decide/", other)
    assert withdrawal_status(two.id) == "approved" and withdrawal_status(one.id) == "approved"


def test_rejecting_a_withdrawal_asks_and_says_the_amount_comes_back(app, client, login, cards, vault):
    row = submitted_withdrawal(cards, vault)
    login("finance")
    check_asks_first(client, "/admin/withdrawal/decide/", {"id": str(row.id), "outcome": "rejected",
                                                           "text": "account closed"},
                     lambda: withdrawal_status(row.id) == "rejected",
                     "the held CN¥60.00 goes back to the distributor's commission balance.")


def test_an_empty_bank_reference_is_refused_without_a_confirmation_page(app, client, login, cards, vault):
    row = submitted_withdrawal(cards, vault)
    login("finance")
    confirm_post(client, "/admin/withdrawal/action/", [("action", "approve"), ("rowid", str(row.id))])
    answer = post(client, "/admin/withdrawal/decide/", {"id": str(row.id), "outcome": "paid", "text": " "})
    assert confirmation_form(answer) is None and "enter the transfer" in answer.get_data(as_text=True)
    assert withdrawal_status(row.id) == "approved"


def test_the_withdrawal_confirmation_is_translated(app, client, login, cards, vault):
    row = submitted_withdrawal(cards, vault)
    cards["users"]["finance"].locale = "zh_Hans_CN"
    db.session.commit()
    login("finance")
    page = post(client, "/admin/withdrawal/action/", [("action", "approve"), ("rowid", str(row.id))])
    assert "审核通过 1 笔提现，合计 ¥60.00：" in page.get_data(as_text=True)


def test_a_distributor_cancelling_its_withdrawal_is_asked_first(app, client, login, cards, vault):
    row = submitted_withdrawal(cards, vault)
    login("b_admin")
    check_asks_first(client, "/admin/withdrawal/action/", [("action", "cancel"), ("rowid", str(row.id))],
                     lambda: withdrawal_status(row.id) == "cancelled", "Cancel 1 withdrawals:")
