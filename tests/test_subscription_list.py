"""The subscription list at any size (bench/subscriptions.py): a number is found through the unique
index of `number` (actions.subscriptions.search_clause), the service, plan and cycle filters compare
integers (PostgreSQL refused them), and a customer's plan or period-end filter is counted from an
index that carries the company (migration 0024)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, insert, select

from actions.subscriptions import seed_subscriptions
from models import PlanCycle, Subscription, User, db
from tests.test_list_speed import counted

TODAY = date.today()
STATES = ("active", "active", "cancelled", "expired", "suspended")


def listed(body: str) -> list[str]:
    return sorted(re.findall(r">(SUB\d{7})</a>", body))


@pytest.fixture
def rows(world):
    """40 subscriptions SUB0000001…SUB0000040: by turns of Acme, Acme North and Globex, of every cycle,
    states by turns, period ends a week apart. Returns {number: (company_id, plan_id, service_id,
    cycle_id, status, period_end)}."""
    if db.session.scalar(select(PlanCycle.id).limit(1)) is None:
        seed_subscriptions(db.session)
    cycles = db.session.scalars(select(PlanCycle).order_by(PlanCycle.id)).all()
    creator = db.session.scalar(select(User.id).where(User.username == "sales"))
    companies = (world.acme.id, world.north.id, world.globex.id)
    made, values = {}, []
    for i in range(1, 41):
        cycle = cycles[i % len(cycles)]
        end = TODAY + timedelta(days=7 * i)
        row = {"number": f"SUB{i:07d}", "company_id": companies[i % 3], "service_id": cycle.plan.service_id,
               "plan_id": cycle.plan_id, "cycle_id": cycle.id, "currency": cycle.currency,
               "status": STATES[i % len(STATES)], "period_start": end - timedelta(days=30), "period_end": end,
               "checkout_key": f"{i:032x}", "contact_name": f"Contact {i}", "created_by_id": creator,
               "created_at": datetime.now(timezone.utc)}
        values.append(row)
        made[row["number"]] = row
    db.session.execute(insert(Subscription), values)
    db.session.commit()
    return made


def search(client, term: str) -> list[str]:
    response = client.get("/admin/subscription/", query_string={"search": term})
    assert response.status_code == 200
    return listed(response.get_data(as_text=True))


def containing(rows, term: str, companies=None) -> list[str]:
    """What a LIKE '%term%' in any case (Flask-Admin's search before) lists."""
    wanted = "".join(term.split()).lower()
    return sorted(n for n, r in rows.items()
                  if wanted in n.lower() and (companies is None or r["company_id"] in companies))


@pytest.mark.parametrize("term", ["SUB0000012", "sub0000012", "SUB000001", "Sub00000", "SUB 0000 012", "00012",
                                  "12", "B00000", "40", "SUB0000041", "%", "_", "zzz"])
def test_search_lists_what_a_substring_search_listed(rows, client, login, term):
    login("admin")
    assert search(client, term) == containing(rows, term)


def test_a_customer_finds_only_its_companies_subscriptions(rows, world, client, login):
    login("customer")
    tree = {world.acme.id, world.north.id, world.fleet.id, world.south.id}
    assert search(client, "SUB000001") == containing(rows, "SUB000001", tree)
    globex = next(n for n, r in rows.items() if r["company_id"] == world.globex.id)
    assert search(client, globex) == []


def test_a_whole_number_is_a_range_of_the_unique_index(rows, client, login):
    """The number is looked up once, as [SUB0000012, SUB0000013); the page and its count use the id found."""
    login("admin")
    with counted() as statements:
        assert search(client, "sub0000012") == ["SUB0000012"]
    lookups = [s for s in statements if re.search(r"subscription\.number >=", s)]
    assert len(lookups) == 1
    assert not any(re.search(r"lower\(subscription\.number\)|subscription\.number I?LIKE", s, re.I)
                   and "subscription.number >=" not in s for s in statements)
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL plans a table this small with a sequential scan
    plan = " | ".join(row[3] for row in db.session.connection().exec_driver_sql(
        "EXPLAIN QUERY PLAN " + lookups[0], ("SUB0000012", "SUB0000013", "SUB0000012%", 501, 0)))
    assert "number>? AND number<?" in plan, plan


@pytest.mark.parametrize("column", ["service", "plan", "cycle"])
def test_service_plan_and_cycle_filters_list_their_subscriptions(rows, client, login, column):
    login("admin")
    value = rows["SUB0000005"][f"{column}_id"]
    response = client.get("/admin/subscription/", query_string={f"flt0_{column}_equals": str(value),
                                                               "page_size": "100"})
    assert response.status_code == 200
    assert listed(response.get_data(as_text=True)) == sorted(
        n for n, r in rows.items() if r[f"{column}_id"] == value)


def test_a_customers_plan_and_period_end_filters_are_counted_from_the_index(rows, world, client, login):
    """ix_subscription_plan_company and ix_subscription_company_period_end carry the company: the
    customer's bounded count reads no row of the table; the pages list the same subscriptions."""
    indexes = {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes("subscription")}
    assert indexes["ix_subscription_plan_company"] == ["plan_id", "company_id"]
    assert indexes["ix_subscription_company_period_end"] == ["company_id", "period_end"]
    assert "ix_subscription_plan_id" not in indexes
    login("customer")
    tree = {world.acme.id, world.north.id, world.fleet.id, world.south.id}
    plan = rows["SUB0000005"]["plan_id"]
    start, end = TODAY + timedelta(days=60), TODAY + timedelta(days=120)
    pages = {
        "plan": ({"flt0_plan_equals": str(plan)},
                 [n for n, r in rows.items() if r["plan_id"] == plan and r["company_id"] in tree],
                 "ix_subscription_plan_company (plan_id=? AND company_id=?)"),
        "period_end": ({"flt0_period_end_between": f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"},
                       [n for n, r in rows.items() if start <= r["period_end"] <= end and r["company_id"] in tree],
                       "ix_subscription_company_period_end (company_id=? AND period_end>? AND period_end<?)"),
    }
    for name, (query, wanted, index) in pages.items():
        with counted() as statements:
            response = client.get("/admin/subscription/", query_string=query)
        assert response.status_code == 200
        assert listed(response.get_data(as_text=True)) == sorted(wanted), name
        if db.engine.dialect.name != "sqlite":
            continue  # PostgreSQL plans a table this small with a sequential scan: the index is what counts there
        count = next(s for s in statements if s.startswith("SELECT count(*)"))
        params = ((world.acme.path, plan, 10001, 0) if name == "plan"
                  else (world.acme.path, start.isoformat(), end.isoformat(), 10001, 0))
        plan_text = " | ".join(row[3] for row in db.session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + count, params))
        assert f"COVERING INDEX {index}" in plan_text, plan_text


@pytest.mark.parametrize("term", ["\U0010ffff", "SUB\ud7ff", "ퟻ", "\x7f"])
def test_a_term_ending_in_the_last_characters_there_are_is_searched_not_a_server_error(rows, client, login, term):
    """The range's upper bound is the term with its last character the next one: past U+10FFFF there is none,
    and after U+D7FF comes a surrogate, which no database stores (the page answered 500)."""
    login("admin")
    assert search(client, term) == []
