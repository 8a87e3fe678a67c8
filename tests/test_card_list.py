"""The card list (号卡管理): 号卡查询 by number as support and as a distributor (actions.cards.search_clause),
and the same number of statements per page however many holders its cards have.

A whole ICCID or phone number and their first digits are index range scans; a part from the middle
or the end (a phone's last digits) is still found, by reading the table, when no number starts with it."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from actions.cards import CardInput, _starting_with, add_card, post_stock_document
from conftest import make_company
from models import SimCard, db
from tests.test_list_speed import counted

pytest_plugins = ("card_fixtures",)


def listed(body: str) -> list[str]:
    return re.findall(r'<td class="col-iccid">\s*(\d+)\s*</td>', body)


@pytest.fixture
def stock(cards, vault):
    """Six cards: two ICCID batches (898600…, 898611…) and phones 1370000000–1370000005; card 5 held by A."""
    support = cards["users"]["support"]
    rows = []
    for n in range(6):
        batch = "898600" if n < 3 else "898611"
        rows.append(add_card(db.session, support, vault,
                             CardInput(f"{batch}{n:014d}", f"1370000{n:04d}", f"Q{n:05d}", "SIM-39",
                                       date.today() + timedelta(days=365)), date.today()))
    post_stock_document(db.session, support, "transfer", [rows[5].iccid], to_holder=cards["a"].id)
    db.session.commit()
    return [r.iccid for r in rows]


def search(client, term: str) -> list[str]:
    response = client.get("/admin/simcard/", query_string={"search": term})
    assert response.status_code == 200
    return sorted(listed(response.get_data(as_text=True)))


def test_a_whole_iccid_or_phone_number_finds_its_card(stock, client, login):
    login("support")
    assert search(client, stock[4]) == [stock[4]]
    assert search(client, "13700000002") == [stock[2]]


def test_first_digits_find_a_batch_of_iccids_or_a_phone_segment(stock, client, login):
    login("support")
    assert search(client, "898611") == sorted(stock[3:])
    assert search(client, "898600") == sorted(stock[:3])
    assert search(client, "1370000") == sorted(stock)


def test_digits_typed_in_groups_are_one_number(stock, client, login):
    login("support")
    assert search(client, "137 0000 0003") == [stock[3]]


def test_a_phones_last_digits_are_found_too(stock, client, login):
    """Nothing starts with 0004: the table is searched for it."""
    login("support")
    assert search(client, "0004") == [stock[4]]
    assert search(client, "00000000005") == [stock[5]]


def test_nothing_found_and_wildcards_match_themselves(stock, client, login):
    login("support")
    assert search(client, "898699") == []
    assert search(client, "%") == []
    assert search(client, "_") == []
    page = client.get("/admin/simcard/", query_string={"search": "<b>x</b>"}).get_data(as_text=True)
    assert "<b>x</b>" not in page and listed(page) == []


def test_a_distributor_finds_only_cards_it_holds(stock, client, login):
    login("a_admin")
    assert search(client, "898611") == [stock[5]]
    assert search(client, stock[3]) == []
    assert search(client, "0003") == []


def test_the_range_of_first_digits_carries_over_nines(app):
    """1299 → [1299, 13); 999 → everything from 999 on (a number starting with 999 is never left out)."""
    def bounds(term):
        clause = _starting_with(SimCard.phone, term)
        compiled = clause.compile(compile_kwargs={"literal_binds": True})
        return str(compiled)

    assert "'1299'" in bounds("1299") and "'13'" in bounds("1299")
    assert "'2'" in bounds("1999")
    assert bounds("999").count("'") == 2  # one bound only


def test_holders_are_named_by_one_query_per_page(cards, vault, stock, client, login):
    """Ten more cards, each held by a company of its own: the page runs as many statements as before."""
    login("support")
    client.get("/admin/simcard/")
    with counted() as before:
        client.get("/admin/simcard/")
    token = db.session.scalar(db.select(SimCard.pin_enc).limit(1))
    for n in range(10):
        holder = make_company(f"Holder {n}", cards["a"])
        db.session.add(SimCard(iccid=f"8986220000000000{n:04d}", phone=f"1390000{n:04d}", pin_enc=token,
                               pin_index=f"test-{n}", pin_hint="00", package_id=cards["package"].id,
                               valid_until=date.today(), status="in_stock", holder_key=holder.id))
    db.session.commit()
    with counted() as after:
        page = client.get("/admin/simcard/").get_data(as_text=True)
    assert "Holder 0" in page and "Holder 9" in page
    assert len(after) == len(before), after


def test_a_distributors_status_filter_is_one_range_of_the_stock_index(cards, stock, client, login):
    """Holder and status lead ix_sim_card_stock: the bounded count of a distributor's in-stock cards
    reads (holder, status) ranges, not every plan's entries of the holder."""
    from sqlalchemy import inspect

    indexes = {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes("sim_card")}
    assert indexes["ix_sim_card_stock"] == ["holder_key", "status", "package_id", "valid_until"]
    login("a_admin")
    with counted() as statements:
        assert client.get("/admin/simcard/?flt0_status_equals=in_stock").status_code == 200
    count = next(s for s in statements if s.startswith("SELECT count(*)"))
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL plans a table this small with a sequential scan: the index is what counts there
    plan = " | ".join(row[3] for row in db.session.connection().exec_driver_sql(
        "EXPLAIN QUERY PLAN " + count, (cards["a"].path, "in_stock", 10001, 0)))
    assert "holder_key=? AND status=?" in plan, plan


def test_a_distributors_valid_until_filter_is_one_range_per_holder(cards, stock, client, login):
    """ix_sim_card_holder_valid: the count of a distributor's cards valid until a day of a month reads
    (holder, valid_until) ranges, not each status and plan of the stock index; the page lists them."""
    from sqlalchemy import inspect

    indexes = {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes("sim_card")}
    assert indexes["ix_sim_card_holder_valid"] == ["holder_key", "valid_until"]
    login("a_admin")
    start = date.today() + timedelta(days=350)
    window = f"{start:%Y-%m-%d} to {start + timedelta(days=30):%Y-%m-%d}"
    with counted() as statements:
        response = client.get("/admin/simcard/", query_string={"flt0_valid_until_between": window})
    assert response.status_code == 200
    assert listed(response.get_data(as_text=True)) == [stock[5]]
    count = next(s for s in statements if s.startswith("SELECT count(*)"))
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL plans a table this small with a sequential scan
    plan = " | ".join(row[3] for row in db.session.connection().exec_driver_sql(
        "EXPLAIN QUERY PLAN " + count, (cards["a"].path, start.isoformat(),
                                        (start + timedelta(days=30)).isoformat(), 10001, 0)))
    assert "ix_sim_card_holder_valid (holder_key=? AND valid_until>? AND valid_until<?)" in plan, plan
