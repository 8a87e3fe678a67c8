"""财务管理 (income and expenses): actions.distribution.company_statement, the ledger of a company's prepaid and
commission wallets, called directly (rules, scope) and through /admin/card_finance/ (wiring, statements per page)."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from actions import NotAllowed
from actions.distribution import company_statement
from actions.wallets import credit, debit, wallet_for
from conftest import make_user
from models import db
from tests.test_list_speed import counted

pytest_plugins = ("card_fixtures",)


def _move(company, amount: str, kind: str, key: str, wallet: str = "prepaid", memo: str = ""):
    """A credit (positive `amount`) or a debit (negative) of the company's CNY wallet of kind `wallet`."""
    target = wallet_for(db.session, company.id, "CNY", wallet)
    value = D(amount)
    if value > 0:
        return credit(db.session, target, value, kind, key, memo=memo)
    return debit(db.session, target, -value, kind, key, memo=memo)


@pytest.fixture
def ledger(cards):
    """A: a recharge, a payment and a commission credit; B (A's sub-distributor): a recharge of its own."""
    a, b = cards["a"], cards["b"]
    _move(a, "100.00", "offline_recharge", "t:a:1", memo="opening")
    _move(a, "-30.50", "payment", "t:a:2", memo="order 1")
    _move(a, "12.34", "commission", "t:a:3", wallet="commission", memo="settlement 1")
    _move(b, "70.00", "offline_recharge", "t:b:1", memo="b opening")
    db.session.commit()
    return cards


def test_statement_lists_the_companys_movements_newest_first_with_totals_by_kind_and_wallet(ledger):
    statement = company_statement(db.session, ledger["users"]["finance"], ledger["a"])
    assert [(line.kind, line.wallet, line.currency, line.amount, line.memo) for line in statement.lines] == [
        ("commission", "commission", "CNY", D("12.34"), "settlement 1"),
        ("payment", "prepaid", "CNY", D("-30.50"), "order 1"),
        ("offline_recharge", "prepaid", "CNY", D("100.00"), "opening"),
    ]
    assert {(t.kind, t.wallet, t.currency): t.amount for t in statement.totals} == {
        ("commission", "commission", "CNY"): D("12.34"),
        ("payment", "prepaid", "CNY"): D("-30.50"),
        ("offline_recharge", "prepaid", "CNY"): D("100.00"),
    }


def test_statement_lists_the_newest_lines_up_to_the_limit_but_totals_every_line(ledger):
    a = ledger["a"]
    for n in range(4):
        _move(a, "1.00", "offline_recharge", f"t:a:more:{n}", memo=f"more {n}")
    statement = company_statement(db.session, ledger["users"]["finance"], a, limit=2)
    assert [line.memo for line in statement.lines] == ["more 3", "more 2"]
    totals = {(t.kind, t.wallet): t.amount for t in statement.totals}
    assert totals[("offline_recharge", "prepaid")] == D("104.00")


def test_a_distributor_sees_its_own_trees_statements_only(ledger):
    """A's administrator reads its sub-distributor B's figures; B's administrator may not read its parent A's."""
    users = ledger["users"]
    below = company_statement(db.session, users["a_admin"], ledger["b"])
    assert [(line.memo, line.amount) for line in below.lines] == [("b opening", D("70.00"))]
    own = company_statement(db.session, users["b_admin"], ledger["b"])
    assert own == below
    with pytest.raises(NotAllowed) as refused:
        company_statement(db.session, users["b_admin"], ledger["a"])
    assert "Distributor A" in str(refused.value)


def test_statement_is_refused_to_roles_without_the_finance_pages(ledger):
    sales = make_user("seller", "sales")
    with pytest.raises(NotAllowed):
        company_statement(db.session, sales, ledger["a"])


def test_finance_page_refuses_a_company_above_the_distributor(ledger, client, login):
    login("b_admin")
    assert client.get(f"/admin/card_finance/?company_id={ledger['a'].id}").status_code == 404
    page = client.get(f"/admin/card_finance/?company_id={ledger['b'].id}").get_data(as_text=True)
    assert "<td>b opening</td>" in page and "<td>opening</td>" not in page


def test_finance_page_runs_as_many_statements_however_many_movements(ledger, client, login):
    login("a_admin")
    client.get("/admin/card_finance/")
    with counted() as before:
        client.get("/admin/card_finance/")
    for n in range(25):
        _move(ledger["a"], "1.00", "commission" if n % 2 else "offline_recharge", f"t:a:bulk:{n}",
              wallet="commission" if n % 2 else "prepaid", memo=f"bulk {n}")
    db.session.commit()
    with counted() as after:
        page = client.get("/admin/card_finance/").get_data(as_text=True)
    assert "bulk 0" in page and "bulk 24" in page
    assert len(after) == len(before), after
