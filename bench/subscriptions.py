"""Subscriptions (seed 003): the subscription list at 100,000 subscriptions against 1,000, and the SQL
statements of the checkout pages at two sizes.

    bench_subscriptions(bench, base_db, folder, target, small)   called by bench/run.py
    python -m bench.subscriptions [--small]                      alone, on a fresh demo database

Two copies of a demo database (migrated, `seed_demo`: the worked example's catalog and promotions)
get subscriptions by bulk INSERT, spread over the seven demo companies, both services, every cycle
and every state: 1,000 in one copy, 100,000 in the other (BENCH_SMALL: 1,000 and 10,000; the keys
keep their names). The bigger copy also gets 200 more active promotions (BENCH_SMALL: 50) of every
scope, some aimed at plans or add-ons, some offered to a company subtree only.

- subscription_list_ratio_100k_vs_1k: median CPU time of GET /admin/subscription/ (first page,
  default sort) as admin, at 100k over 1k (target ≤ 1.2); customer_admin_subscription_list_… the
  same as the customer administrator of Acme Logistics (4 of the 7 companies).
- subscription_list_sql_statements_1k / _100k (customer_admin_… too): statements per render of that
  page, equal at both sizes (target).
- subscription_checkout_sql_statements_<page>_1k / _100k for the price table, step 1 (GET with the
  worked example's plan, add-ons and promotions chosen) and step 2 (POST Next: the promotions
  reserved, step 2 rendered), as the customer administrator: equal at both sizes (target).
"""
from __future__ import annotations

import random
import re
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lib import (  # noqa: E402
    ServerClock, StatementCounter, Timing, analyze, last_page_ratios, login, make_app,
    medians, render, run_alone, sqlite_copies,
)

BATCH = 20_000
# Two years of history: a subscription business keeps every cancelled and expired subscription, so they are a
# good share of the table (and the customer's "cancelled" page is a full page at 1,000 subscriptions too: with
# 1 in 21 it listed 18 rows against 50 at 100,000, a shorter page, not a slower one).
STATES = ("active",) * 14 + ("pending_payment", "past_due", "cancel_scheduled") + ("cancelled",) * 4 + (
    "expired",) * 2 + ("abandoned", "suspended")
PAGES = ("price_table", "step1", "step2")
PAGE_SIZE = 50  # the subscription list's page size (Flask-Admin's default)


def sizes(small: bool) -> dict[str, dict[str, int]]:
    """Subscriptions and extra promotions per database, named by the keys' suffix."""
    return {"1k": {"subscriptions": 1_000, "promotions": 0},
            "100k": {"subscriptions": 10_000 if small else 100_000, "promotions": 50 if small else 200}}


def add_subscriptions(app, count: int, seed: int = 3) -> None:
    """`count` subscriptions by bulk INSERT (one statement per 20,000 rows), then ANALYZE as after any bulk load
    (PostgreSQL: VACUUM ANALYZE, bench.lib.analyze)."""
    from sqlalchemy import insert, select

    from models import Company, PlanCycle, Subscription, User, db

    rng = random.Random(seed)
    today = date.today()
    with app.app_context():
        companies = db.session.scalars(select(Company.id).order_by(Company.id)).all()
        cycles = [(c.id, c.plan_id, c.plan.service_id, c.currency, c.months)
                  for c in db.session.scalars(select(PlanCycle).order_by(PlanCycle.id))]
        creator = db.session.scalar(select(User.id).where(User.username == "sales"))
        start = db.session.scalar(select(Subscription.id).order_by(Subscription.id.desc()).limit(1)) or 0
        rows = []
        for i in range(start + 1, start + count + 1):
            cycle_id, plan_id, service_id, currency, months = cycles[i % len(cycles)]
            status = STATES[rng.randrange(len(STATES))]
            begun = today - timedelta(days=rng.randint(0, 700))
            started = status not in ("pending_payment", "abandoned")
            rows.append({
                "number": f"SUB{i:07d}", "company_id": companies[i % len(companies)], "service_id": service_id,
                "plan_id": plan_id, "cycle_id": cycle_id, "currency": currency, "status": status,
                "period_start": begun if started else None,
                "period_end": begun + timedelta(days=30 * months) if started else None,
                "auto_renew": rng.random() < 0.7, "renewal_method": "balance", "price_locked": False,
                "seats_used": 0, "checkout_key": f"{i:032x}", "contact_name": f"Contact {i}",
                "contact_phone": "+84 24 3825 1234", "contact_email": f"c{i}@example.com",
                "invoice_title": f"Company {i}", "invoice_tax_id": "0100233488", "created_by_id": creator,
                "created_at": datetime.now(timezone.utc) - timedelta(days=rng.randint(0, 700)),
            })
            if len(rows) >= BATCH:
                db.session.execute(insert(Subscription), rows)
                rows = []
        if rows:
            db.session.execute(insert(Subscription), rows)
        db.session.commit()
        db.session.remove()
    analyze(app)


def add_promotions(app, count: int) -> None:
    """`count` more active promotions of both currencies and all scopes; a third aimed at a plan, cycle
    or add-on, a fifth offered to one company subtree only (bulk INSERTs)."""
    from sqlalchemy import insert, select

    from models import Company, PlanAddOn, PlanCycle, Promotion, PromotionCompany, PromotionTarget, User, db

    if not count:
        return
    with app.app_context():
        sales = db.session.scalar(select(User.id).where(User.username == "sales"))
        finance = db.session.scalar(select(User.id).where(User.username == "finance"))
        companies = db.session.scalars(select(Company.id).order_by(Company.id)).all()
        cycles = db.session.scalars(select(PlanCycle).order_by(PlanCycle.id)).all()
        add_ons = db.session.scalars(select(PlanAddOn).order_by(PlanAddOn.id)).all()
        now = datetime.now(timezone.utc)
        # Targets and companies name their promotion by code until the INSERT gives it an id (from the
        # table's own sequence: explicit ids would leave PostgreSQL's behind).
        promotions, targets, allowed = [], [], []
        for n in range(count):
            pid, currency = f"BENCH{n:04d}", ("CNY", "VND")[n % 2]
            scope = ("plan", "add_on", "invoice")[n % 3]
            percent = n % 4 != 3 or scope == "invoice"
            promotions.append({
                "code": pid, "name": f"Bench promotion {n}", "scope": scope,
                "kind": "percent" if percent else "fixed", "currency": currency,
                "percent_hundredths": 100 + 25 * (n % 40) if percent else None,
                "amount_minor": None if percent else (1000 if currency == "CNY" else 10000),
                "max_discount_minor": None, "max_redemptions": 1000 if n % 5 == 0 else None,
                "max_per_company": 3 if n % 7 == 0 else None, "redeemed": 0, "reserved": 0,
                "first_subscription_only": n % 11 == 0, "min_subtotal_minor": None, "combinable": True,
                "duration": "once", "duration_cycles": None, "status": "active", "created_by_id": sales,
                "activated_by_id": finance, "activated_at": now, "created_at": now,
                "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=90),
            })
            if scope != "invoice" and n % 3 == 0:
                of_currency = [c for c in cycles if c.currency == currency]
                cycle = of_currency[n % len(of_currency)]
                if scope == "plan":
                    targets.append({"promotion_id": pid, "plan_id": cycle.plan_id} if n % 2 else
                                   {"promotion_id": pid, "cycle_id": cycle.id})
                else:
                    fitting = [a for a in add_ons if a.currency == currency]
                    targets.append({"promotion_id": pid, "add_on_id": fitting[n % len(fitting)].id})
            if n % 5 == 1:
                allowed.append({"promotion_id": pid, "company_id": companies[n % len(companies)]})
        db.session.execute(insert(Promotion), promotions)
        ids = dict(db.session.execute(select(Promotion.code, Promotion.id).where(Promotion.code.like("BENCH%"))).all())
        targets = [{**t, "promotion_id": ids[t["promotion_id"]]} for t in targets]
        allowed = [{**a, "promotion_id": ids[a["promotion_id"]]} for a in allowed]
        if targets:
            db.session.execute(insert(PromotionTarget), [{"plan_id": None, "cycle_id": None, "add_on_id": None, **t}
                                                         for t in targets])
        if allowed:
            db.session.execute(insert(PromotionCompany), allowed)
        db.session.commit()
        db.session.remove()


def listed(body: str) -> list[str]:
    return re.findall(r">(SUB\d{7})</a>", body)


def checkout_urls(app) -> dict[str, str]:
    """Step 1 of the worked example: Standard × 12, both add-ons, each with its promotion, and INVOICE7."""
    from sqlalchemy import select

    from models import PlanAddOn, PlanCycle, Promotion, ServicePlan, db

    with app.app_context():
        cycle = db.session.scalar(select(PlanCycle.id).join(ServicePlan).where(
            ServicePlan.code == "OFFICE-STD", PlanCycle.months == 12))
        add_on = {code: db.session.scalar(select(PlanAddOn.id).where(PlanAddOn.code == code))
                  for code in ("OFFICE-STORAGE", "OFFICE-ARCHIVE")}
        promotion = {code: db.session.scalar(select(Promotion.id).where(Promotion.code == code))
                     for code in ("PLAN15", "STORAGE50", "ARCHIVE125", "INVOICE7")}
        db.session.remove()
    storage, archive = add_on["OFFICE-STORAGE"], add_on["OFFICE-ARCHIVE"]
    step1 = (f"/admin/subscribe/checkout/?cycle={cycle}&add_on={storage}&add_on={archive}"
             f"&plan_promotion={promotion['PLAN15']}&add_on_promotion_{storage}={promotion['STORAGE50']}"
             f"&add_on_promotion_{archive}={promotion['ARCHIVE125']}&invoice_promotion={promotion['INVOICE7']}")
    return {"price_table": "/admin/subscribe/", "step1": step1}


def _hidden(body: str) -> list[tuple[str, str]]:
    """The form fields of step 1 as the browser posts them (hidden inputs, checked boxes, selected options)."""
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body)
    fields += re.findall(r'name="(add_on)" value="(\d+)"[^>]*checked', body)
    for name, options in re.findall(r'<select class="form-control" name="([^"]+)"[^>]*>(.*?)</select>', body, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        if chosen and name != "company_id":
            fields.append((name, chosen.group(1)))
    company = re.search(r'name="company_id"[^>]*>.*?<option value="(\d+)" selected', body, re.S)
    fields.append(("company_id", company.group(1)))
    return fields


def count_checkout(bench, apps: dict[str, object], target, suffix: str = "") -> None:
    """The statements of the price table, step 1 and step 2 as the customer, at both sizes."""
    from werkzeug.datastructures import MultiDict

    from models import db

    urls = checkout_urls(apps["1k"])
    for page in PAGES:
        target(f"subscription_checkout_sql_statements_{page}_100k{suffix}", "= 1k count",
               lambda v, r, p=page: v == r.get(f"subscription_checkout_sql_statements_{p}_1k{suffix}"))
    totals = {}
    for size, app in apps.items():
        client = app.test_client()
        login(client, "customer")
        with app.app_context():
            engine = db.engine
        for page in PAGES:
            if page == "step2":
                body = client.get(urls["step1"]).get_data(as_text=True)
                fields = _hidden(body)
                with StatementCounter(engine) as counter:
                    response = client.post("/admin/subscribe/checkout/", data=MultiDict([*fields, ("step", "next")]))
                text = response.get_data(as_text=True)
                found = re.search(r'id="rd-total">([^<]+)<', text)
                if response.status_code != 200 or found is None:
                    raise RuntimeError(f"step 2 at {size} did not render (HTTP {response.status_code})")
                totals[size] = found.group(1)
            else:
                render(client, urls[page])  # warm-up
                with StatementCounter(engine) as counter:
                    render(client, urls[page])
            bench.put(f"subscription_checkout_sql_statements_{page}_{size}{suffix}", counter.count)
        # Step 1's time as well (not a target: its work grows with the promotions to check, not the rows).
        times = [render(client, urls["step1"]) for _ in range(3)]
        bench.keep(f"subscription_checkout_step1_cpu_ms_{size}{suffix}", medians(times)[0] * 1000)
        print(f"     (step 1 at {size}: CPU {medians(times)[0] * 1000:.1f} ms)", flush=True)
    if len(set(totals.values())) != 1 or "1,642.96" not in next(iter(totals.values())):
        raise RuntimeError(f"step 2 totals differ from the worked example's 1,642.96: {totals}")


USERS = (("admin", ""), ("customer", "customer_admin_"))


def list_pages(app) -> dict[str, str]:
    """The subscription list's pages, named as the keys name them: the first page (key
    subscription_list_…), status cancelled (1 in 6) and active (7 in 12), one plan, half a year of period ends,
    one whole number (of Acme Logistics, so in both readers' scope; the same row at both sizes)."""
    from sqlalchemy import select

    from models import Company, ServicePlan, Subscription, db

    admin = app.extensions["admin"][0]
    view = next(v for v in admin._views if getattr(v, "endpoint", None) == "subscription")
    args = {key: key for key in view._filter_args}
    with app.app_context():
        plan = db.session.scalar(select(ServicePlan.id).order_by(ServicePlan.id))
        acme = db.session.scalar(select(Company).where(Company.name == "Acme Logistics"))
        number = db.session.scalar(select(Subscription.number).where(
            Subscription.company_id.in_(acme.subtree_ids())).order_by(Subscription.id).offset(100).limit(1))
        db.session.remove()
    # Half a year of period ends around today: enough for a full page at 1k for the customer too (a
    # month listed 12 rows there, a cheaper page than the 50 at 100k: not the same work compared).
    start = date.today() - timedelta(days=91)
    window = f"{start:%Y-%m-%d} to {start + timedelta(days=182):%Y-%m-%d}"
    return {
        "list": "/admin/subscription/",
        "filtered_list": f"/admin/subscription/?flt0_{args['status_equals']}=cancelled",
        "active_filter": f"/admin/subscription/?flt0_{args['status_equals']}=active",
        "plan_filter": f"/admin/subscription/?flt0_{args['plan_equals']}={plan}",
        "period_end_filter": f"/admin/subscription/?flt0_{args['period_end_between']}={window}",
        "search": f"/admin/subscription/?search={number}",
    }


def time_lists(bench, apps: dict[str, object], target, repeat: int, warmup: int, suffix: str = "") -> None:
    """The pages of /admin/subscription/ (`list_pages`) as admin and as the customer, medians of CPU time
    (the database server's too on PostgreSQL), both sizes by turns."""
    from models import db

    urls = list_pages(apps["1k"])
    servers = {size: ServerClock.for_app(app) for size, app in apps.items()}
    for username, prefix in USERS:
        clients = {}
        for size, app in apps.items():
            clients[size] = app.test_client()
            login(clients[size], username)
        for page, url in urls.items():
            key = f"{prefix}subscription_{page}_ratio_100k_vs_1k{suffix}"
            target(key, "≤ 1.2", lambda v, r: v <= 1.2)
            shown = {}
            for size, client in clients.items():
                for _ in range(warmup):
                    render(client, url)
                shown[size] = listed(client.get(url).get_data(as_text=True))
            if page == "search" and not all(found == [url.rsplit("=", 1)[1]] for found in shown.values()):
                raise RuntimeError(f"the search as {username} listed {shown}: {url}")
            if page == "list" and any(len(found) < 20 for found in shown.values()):
                raise RuntimeError(f"the list as {username} showed {shown}")
            if not all(shown.values()):
                raise RuntimeError(f"{page} as {username} listed no subscription: {url}")
            if len(shown["1k"]) != len(shown["100k"]):  # fewer rows rendered: a cheaper page at 1k
                bench.note(f"{prefix}subscription_{page}{suffix}: {len(shown['1k'])} rows at 1k, "
                           f"{len(shown['100k'])} at 100k")
            if page == "list":
                for size, client in clients.items():
                    with apps[size].app_context():
                        engine = db.engine
                    with StatementCounter(engine) as counter:
                        render(client, url)
                    statements = f"{prefix}subscription_list_sql_statements_{size}{suffix}"
                    if size == "100k":
                        target(statements, "= 1k count",
                               lambda v, r, k=statements: v == r.get(k.replace("_100k", "_1k")))
                    bench.put(statements, counter.count)
            times: dict[str, list[Timing]] = {size: [] for size in apps}
            for _ in range(repeat):
                for size, client in clients.items():
                    times[size].append(render(client, url, servers[size]))
            (small_cpu, small_wall), (big_cpu, big_wall) = medians(times["1k"]), medians(times["100k"])
            bench.keep(f"{prefix}subscription_{page}_cpu_ms_1k{suffix}", small_cpu * 1000)
            bench.keep(f"{prefix}subscription_{page}_cpu_ms_100k{suffix}", big_cpu * 1000)
            bench.keep(f"{prefix}subscription_{page}_wall_ratio_100k_vs_1k{suffix}", big_wall / small_wall)
            bench.put(key, big_cpu / small_cpu)
            print(f"     ({page}, {username}: CPU {small_cpu * 1000:.1f} ms at 1k, {big_cpu * 1000:.1f} ms at 100k; "
                  f"wall {small_wall * 1000:.1f} / {big_wall * 1000:.1f} ms)", flush=True)


def time_last_page(bench, app, target, repeat: int, warmup: int, suffix: str = "") -> None:
    """The last page of the default sort against the first, at the big size, as admin and customer."""
    from sqlalchemy import func, select

    from models import Company, Subscription, db

    with app.app_context():
        acme = db.session.scalar(select(Company).where(Company.name == "Acme Logistics"))
        in_scope = {"": db.session.scalar(select(func.count()).select_from(Subscription)),
                    "customer_admin_": db.session.scalar(select(func.count()).select_from(Subscription).where(
                        Subscription.company_id.in_(acme.subtree_ids())))}
        db.session.remove()
    last_page_ratios(bench, app, USERS, "/admin/subscription/", in_scope, PAGE_SIZE, listed, repeat, warmup,
                     stem="subscription_", size="100k", noun="subscriptions", target=target, suffix=suffix)


def bench_subscriptions(bench, base_db: Path | None, folder: Path | None, target, small: bool, suffix: str = "",
                        copy: Callable[[str], Path | str] | None = None) -> None:
    """Build the two databases (copies of `base_db`, a migrated demo database, in `folder`; or
    `copy(label)`, a new copy's path or URL: bench.run's PostgreSQL part), then measure; keys end in `suffix`."""
    where = " on PostgreSQL" if suffix == "_pg" else ""
    bench.section(f"subscriptions{where}: list at 100k vs 1k subscriptions, SQL statements of the checkout pages")
    if copy is None:
        copy = sqlite_copies(base_db, folder, "subscriptions")
    apps = {}
    started = time.perf_counter()
    for size, counts in sizes(small).items():
        apps[size] = make_app(copy(f"subscriptions_{size}"))
        add_promotions(apps[size], counts["promotions"])
        add_subscriptions(apps[size], counts["subscriptions"])
    bench.keep(f"subscription_build_seconds{suffix}", time.perf_counter() - started)
    repeat, warmup = (3, 1) if small else (9, 2)
    time_lists(bench, apps, target, repeat, warmup, suffix)
    time_last_page(bench, apps["100k"], target, repeat, warmup, suffix)
    count_checkout(bench, apps, target, suffix)


if __name__ == "__main__":
    run_alone(bench_subscriptions, "subs", "--small" in sys.argv)
