"""`make bench`: Renewdesk's benchmarks at 2,000 and 200,000 devices.

Each timing is reported as a RATIO to a bare baseline measured in the same run, so the
machine's speed cancels out; statement counts and peak memory are absolute. Prints a table
(metric, value, target, ok / MISSED) and writes bench/results.json. Exits 0 when a target is
missed: these are targets to watch, not tests. bench/README.md explains each figure.
"""
from __future__ import annotations

import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lib import (  # noqa: E402
    PostgresScratch, ServerClock, StatementCounter, Timing, analyze, build_database, copy_database, dispose,
    last_page_ratios, login, make_app, medians, render,
)
from bench import card_lists, imports, subscriptions  # noqa: E402

# BENCH_SMALL=1: the same benchmarks at small sizes, in a minute or two (.ci/run runs it after the
# tests, so that a regression shows). The keys keep their names ("_200k" is then 20,000 devices).
SMALL_RUN = os.environ.get("BENCH_SMALL") == "1"
SMALL, BIG = (2_000, 20_000) if SMALL_RUN else (2_000, 200_000)
LIST_REPEAT = 3 if SMALL_RUN else 9  # timed renders per page and size (after WARMUP untimed ones)
WARMUP = 1 if SMALL_RUN else 2
BATCH_NUMBERS = 500 if SMALL_RUN else 10_000
BATCH_REPEAT = 2 if SMALL_RUN else 5
IMPORT_ROWS = 500 if SMALL_RUN else 100_000
IMPORT_REPEAT = 1 if SMALL_RUN else 3
EXPORT_REPEAT = 1 if SMALL_RUN else 2
RENEW_REPEAT = 1 if SMALL_RUN else 3
# In both databases, of Acme Logistics (inside the customer's scope).
SEARCH_NUMBER = "GT00001001"
SEARCH_CONTAINS = SEARCH_NUMBER[1:].lower()  # "t00001001": a substring, in lower case, of that one number
RENEW_CHUNK = 900  # actions.orders reads the renewed devices 900 ids per SELECT
PAGE_SIZE = 50  # the device list's default page size

# What each benchmark aims for; `check(value, results)` says whether it is met.
TARGETS: dict[str, tuple[str, object]] = {}


def target(key: str, text: str, check) -> None:
    TARGETS[key] = (text, check)


for _who in ("", "customer_admin_"):
    for _db in ("", "_pg"):
        for _page in ("list_page", "filtered_list", "active_filter", "search", "search_contains"):
            for _suffix in ("", "_analyzed"):
                target(f"{_who}{_page}_ratio_200k_vs_2k{_suffix}{_db}", "≤ 1.2", lambda v, r: v <= 1.2)
        target(f"{_who}last_page_ratio_200k{_db}", "≤ 1.5", lambda v, r: v <= 1.5)
        target(f"{_who}list_page_sql_statements_200k{_db}", "= 2k count",
               lambda v, r, w=_who, d=_db: v == r.get(f"{w}list_page_sql_statements_2k{d}"))
target("batch_suspend_ratio", "≤ 3", lambda v, r: v <= 3)
target("export_ratio", "≤ 0.8", lambda v, r: v <= 0.8)
target("export_first_byte_s", "≤ 2", lambda v, r: v <= 2)
target("export_peak_mb", "< 100", lambda v, r: v < 100)
for _db in ("", "_pg"):
    target(f"auto_renew_ratio{_db}", "≤ 3", lambda v, r: v <= 3)
    target(f"longest_write_lock_s{_db}", "≤ 1", lambda v, r: v <= 1)
target("card_import_100k_ratio", "≤ 2", lambda v, r: v <= 2)
target("card_import_peak_mb", "< 300", lambda v, r: v < 300)
target("card_import_longest_write_s", "< 1", lambda v, r: v < 1)
target("renew_1000_sql_statements", "≤ 10-device count + batching",
       lambda v, r: v <= r["renew_10_sql_statements"] + math.ceil(1000 / RENEW_CHUNK) - math.ceil(10 / RENEW_CHUNK))
target("members_1000_sql_statements", "= 10-account count",
       lambda v, r: v == r["members_10_sql_statements"])


class Bench:
    """Collects figures and notes while the benchmarks run; `put` figures are also in the table."""

    def __init__(self):
        self.results: dict[str, object] = {}
        self.shown: list[str] = []
        self.notes: list[str] = []
        self.started = time.perf_counter()

    def keep(self, key: str, value) -> None:
        """A figure for results.json only."""
        if isinstance(value, float):
            value = round(value, 4 if value < 10 else 2)
        self.results[key] = value

    def put(self, key: str, value) -> None:
        """A figure for results.json and the table."""
        self.keep(key, value)
        self.shown.append(key)
        print(f"  {key} = {self.results[key]}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def section(self, title: str) -> None:
        print(f"== {title} [{time.perf_counter() - self.started:.0f} s]", flush=True)


# --- the device list --------------------------------------------------------------------------


def device_view(app):
    """The DeviceView instance registered at /admin/device/."""
    admin = app.extensions["admin"][0]
    return next(v for v in admin._views if getattr(v, "endpoint", None) == "device")


def list_pages(app) -> dict[str, str]:
    """The list pages measured: plain; status suspended (few rows) and active (most rows), sorted by
    expiry; a whole device number; a substring of it in lower case."""
    view = device_view(app)
    status_filter = next(key for key in view._filter_args if key == "status_equals")
    expiry_column = [name for name, _label in view._list_columns].index("expires_on")
    return {
        "list_page": "/admin/device/",
        "filtered_list": f"/admin/device/?flt0_{status_filter}=suspended&sort={expiry_column}",
        "active_filter": f"/admin/device/?flt0_{status_filter}=active&sort={expiry_column}",
        "search": f"/admin/device/?search={SEARCH_NUMBER}",
        "search_contains": f"/admin/device/?search={SEARCH_CONTAINS}",
    }


def listed_numbers(body: str) -> list[str]:
    """The device numbers in the rows of a rendered list page."""
    return re.findall(r'<td class="col-number">\s*([^<\s]+)\s*</td>', body)


def bench_list_pages(bench: Bench, apps: dict[int, object], suffix: str = "") -> None:
    """Median render times at both sizes, interleaved so that load on the machine hits both alike."""
    from models import db

    pages = list_pages(apps[SMALL])
    servers = {size: ServerClock.for_app(app) for size, app in apps.items()}
    for username, prefix in (("support", ""), ("customer", "customer_admin_")):
        clients = {}
        for size, app in apps.items():
            clients[size] = app.test_client()
            login(clients[size], username)
        for page, url in pages.items():
            shown = {}
            for size, client in clients.items():
                for _ in range(WARMUP):
                    render(client, url)
                shown[size] = listed_numbers(client.get(url).get_data(as_text=True))
                if page.startswith("search") and shown[size] != [SEARCH_NUMBER]:
                    raise RuntimeError(f"the search for {SEARCH_NUMBER} at {size} devices listed {shown[size]}")
            if len(shown[SMALL]) != len(shown[BIG]):
                bench.note(f"{prefix}{page}{suffix}: {len(shown[SMALL])} rows at 2k, {len(shown[BIG])} at 200k")
            for size, client in clients.items():
                with apps[size].app_context():
                    engine = db.engine
                with StatementCounter(engine) as counter:
                    render(client, url)
                key = f"{prefix}{page}_sql_statements_{'2k' if size == SMALL else '200k'}{suffix}"
                if page == "list_page" and not suffix.startswith("_analyzed"):
                    bench.put(key, counter.count)
                else:
                    bench.keep(key, counter.count)
            times: dict[int, list[Timing]] = {SMALL: [], BIG: []}
            for _ in range(LIST_REPEAT):
                for size, client in clients.items():
                    times[size].append(render(client, url, servers[size]))
            (small_cpu, small_wall), (big_cpu, big_wall) = medians(times[SMALL]), medians(times[BIG])
            bench.keep(f"{prefix}{page}_cpu_ms_2k{suffix}", small_cpu * 1000)
            bench.keep(f"{prefix}{page}_cpu_ms_200k{suffix}", big_cpu * 1000)
            bench.keep(f"{prefix}{page}_wall_ratio_200k_vs_2k{suffix}", big_wall / small_wall)
            bench.put(f"{prefix}{page}_ratio_200k_vs_2k{suffix}", big_cpu / small_cpu)
            print(f"     (CPU {small_cpu * 1000:.1f} ms at 2k, {big_cpu * 1000:.1f} ms at 200k; "
                  f"wall {small_wall * 1000:.1f} / {big_wall * 1000:.1f} ms)", flush=True)


def bench_last_page(bench: Bench, app, suffix: str = "") -> None:
    """The last page of the default sort against the first, both at the big size, as admin and customer."""
    from sqlalchemy import func, select

    from models import Company, Device, db

    with app.app_context():
        acme = db.session.scalar(select(Company).where(Company.name == "Acme Logistics"))
        in_scope = {
            "": BIG,
            "customer_admin_": db.session.scalar(
                select(func.count()).select_from(Device).where(Device.company_id.in_(acme.subtree_ids()))),
        }
        db.session.remove()
    last_page_ratios(bench, app, (("support", ""), ("customer", "customer_admin_")), "/admin/device/", in_scope,
                     PAGE_SIZE, listed_numbers, LIST_REPEAT, WARMUP, stem="", size="200k", noun="devices", suffix=suffix)


# --- batch suspend -------------------------------------------------------------------------------


def bench_batch_suspend(bench: Bench, app) -> None:
    """10,000 pasted numbers through plan + apply, against bare chunked UPDATEs; rolled back each time."""
    from sqlalchemy import select

    from actions.devices import IDS_PER_QUERY, apply_status_change, parse_numbers, plan_status_change
    from models import Device, User, db

    with app.app_context():
        active = db.session.scalars(select(Device.number).where(Device.status == "active")
                                    .order_by(Device.id)).all()
        numbers = random.Random(3).sample(active, BATCH_NUMBERS)
        pasted = "\n".join(numbers)
        suspended_before = db.session.query(Device).filter(Device.status == "suspended").count()
        db.session.rollback()

        def action() -> Timing:
            actor = db.session.scalar(select(User).where(User.username == "support"))
            with Timing() as timing:
                plan = plan_status_change(db.session, actor, parse_numbers(pasted), "suspend")
                result = apply_status_change(db.session, actor, plan, datetime.now(timezone.utc))
            if len(result.changed) != BATCH_NUMBERS or result.refused:
                raise RuntimeError(f"batch suspend changed {len(result.changed)}, refused {len(result.refused)}")
            db.session.rollback()
            return timing

        def bare() -> Timing:
            connection = db.session.connection()
            changed = 0
            with Timing() as timing:
                for start in range(0, len(numbers), IDS_PER_QUERY):
                    chunk = numbers[start:start + IDS_PER_QUERY]
                    sql = f"UPDATE device SET status = 'suspended' WHERE number IN ({', '.join('?' * len(chunk))})"
                    changed += connection.exec_driver_sql(sql, tuple(chunk)).rowcount
            if changed != BATCH_NUMBERS:
                raise RuntimeError(f"bare UPDATE changed {changed} rows")
            db.session.rollback()
            return timing

        action(), bare()  # warm-up
        timed_action, timed_bare = [], []
        for _ in range(BATCH_REPEAT):
            timed_action.append(action())
            timed_bare.append(bare())
        with StatementCounter(db.engine) as counter:
            action()
        after = db.session.query(Device).filter(Device.status == "suspended").count()
        db.session.rollback()
        if after != suspended_before:
            raise RuntimeError("batch suspend left devices suspended")
        db.session.remove()
    (cpu, wall), (base_cpu, base_wall) = medians(timed_action), medians(timed_bare)
    bench.keep("batch_suspend_seconds", wall)
    bench.keep("batch_suspend_baseline_seconds", base_wall)
    bench.keep("batch_suspend_sql_statements", counter.count)
    bench.put("batch_suspend_ratio", cpu / base_cpu)
    print(f"     (CPU {cpu * 1000:.0f} ms vs bare {base_cpu * 1000:.0f} ms; wall {wall * 1000:.0f} / "
          f"{base_wall * 1000:.0f} ms; {counter.count} statements)")


# --- renewal order: quote, create, pay by balance ----------------------------------------------------


def bench_renewals(bench: Bench, app) -> None:
    """Statements and time of quote + create + pay for 10 and 1,000 devices of one company."""
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from actions.orders import create_renewal_order, pay_with_balance, quote_renewal
    from actions.wallets import credit, wallet_for
    from models import Company, Device, User, db

    months, today = 12, date.today()
    with app.app_context():
        company_id = db.session.scalar(select(Company.id).where(Company.name == "Initech Rentals"))
        ids = db.session.scalars(
            select(Device.id).where(Device.company_id == company_id, Device.status == "active",
                                    Device.package_id.isnot(None)).order_by(Device.id).limit(1000)
        ).all()
        db.session.rollback()

        def renew(count: int) -> tuple[Timing, int]:
            db.session.remove()
            actor = db.session.scalar(select(User).where(User.username == "support"))
            company = db.session.get(Company, company_id)
            credit(db.session, wallet_for(db.session, company_id, "CNY"), Decimal("1000000"), "recharge",
                   f"bench:renew:{time.time_ns()}")
            # As the renewal center loads them: one SELECT, packages joined.
            devices = list(db.session.scalars(
                select(Device).options(joinedload(Device.package)).where(Device.id.in_(ids[:count]))
                .order_by(Device.id)
            ).unique())
            with StatementCounter(db.engine) as counter, Timing() as timing:
                quote = quote_renewal(db.session, actor, company, devices, months, today)
                order = create_renewal_order(db.session, actor, quote)
                pay_with_balance(db.session, actor, order, today)
            db.session.rollback()
            return timing, counter.count

        renew(10)  # warm-up
        small = [renew(10) for _ in range(RENEW_REPEAT)]
        big = [renew(1000) for _ in range(RENEW_REPEAT)]
        db.session.remove()
    bench.put("renew_10_sql_statements", small[-1][1])
    bench.put("renew_1000_sql_statements", big[-1][1])
    bench.keep("renew_10_seconds", medians([t for t, _ in small])[1])
    bench.put("renew_1000_seconds", medians([t for t, _ in big])[1])


def bench_members(bench: Bench, app) -> None:
    """Statements and time of creating N member accounts from a pattern and upgrading them to VIP."""
    from sqlalchemy import select

    from actions.members import create_members, upgrade_vip
    from actions.wallets import credit, wallet_for
    from models import Company, MemberAccount, User, db

    today = date.today()
    with app.app_context():
        company_id = db.session.scalar(select(Company.id).where(Company.name == "Acme Logistics"))

        def run(count: int) -> tuple[Timing, int]:
            db.session.remove()
            actor = db.session.scalar(select(User).where(User.username == "customer"))
            company = db.session.get(Company, company_id)
            credit(db.session, wallet_for(db.session, company_id, "COIN"), Decimal(count * 7200), "coin_purchase",
                   f"bench:coins:{time.time_ns()}")
            prefix = f"b{time.time_ns() % 10**9}x"
            pattern = f"{prefix}{{{1:0{len(str(count))}d}-{count}}}"
            with StatementCounter(db.engine) as counter, Timing() as timing:
                create_members(db.session, actor, company, pattern, "default", hash_method="scrypt:1024:8:1")
                accounts = list(db.session.scalars(select(MemberAccount).where(MemberAccount.login.startswith(prefix))))
                upgrade_vip(db.session, actor, accounts, "vip", Decimal("1"), today, payer=company)
            db.session.rollback()
            return timing, counter.count

        run(10)  # warm-up
        small = [run(10) for _ in range(RENEW_REPEAT)]
        big = [run(1000) for _ in range(RENEW_REPEAT)]
        db.session.remove()
    bench.put("members_10_sql_statements", small[-1][1])
    bench.put("members_1000_sql_statements", big[-1][1])
    bench.put("members_1000_seconds", medians([t for t, _ in big])[1])


# --- export (a child process, for its peak memory) ------------------------------------------


def child_module(module: str, *args: str) -> dict:
    """Run `python -m MODULE ARGS` and return the JSON it prints last."""
    completed = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                               text=True, env={**os.environ, "ENV_NAME": "testing"})
    if completed.returncode != 0:
        raise RuntimeError(f"{module} {args[:1]} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def child(*args: str) -> dict:
    """Run `python -m bench.jobs ARGS` (a job in a fresh process) and return the JSON it prints last."""
    return child_module("bench.jobs", *args)


def bench_export(bench: Bench, db_path: Path) -> None:
    result = child("export", str(db_path), str(EXPORT_REPEAT))
    if result["rows"] != BIG:
        raise RuntimeError(f"the bare export wrote {result['rows']} rows")
    bench.keep("export_seconds", result["wall"])
    bench.keep("export_baseline_seconds", result["baseline_wall"])
    bench.keep("export_cpu_seconds", result["cpu"])
    bench.keep("export_baseline_cpu_seconds", result["baseline_cpu"])
    bench.keep("export_baseline_select_cpu_seconds", result["baseline_select_cpu"])
    bench.keep("export_startup_mb", result["startup_mb"])
    bench.keep("export_bytes", result["bytes"])
    bench.keep("export_baseline_bytes", result["baseline_bytes"])
    bench.put("export_ratio", result["cpu"] / result["baseline_cpu"])
    bench.put("export_first_byte_s", result["first_byte_s"])
    bench.put("export_peak_mb", result["peak_mb"])
    bench.keep("export_peak_above_startup_mb", result["peak_mb"] - result["startup_mb"])
    print(f"     (CPU {result['cpu']:.1f} s vs bare {result['baseline_cpu']:.1f} s, of which its SELECT "
          f"{result['baseline_select_cpu']:.1f} s; wall {result['wall']:.1f} / {result['baseline_wall']:.1f} s; "
          f"{result['bytes'] / 1e6:.1f} MB vs {result['baseline_bytes'] / 1e6:.1f} MB; "
          f"{result['startup_mb']:.0f} MB after start-up)")


# --- auto-renewal -----------------------------------------------------------------------------------


def bench_auto_renew(bench: Bench, app, suffix: str = "") -> None:
    """auto_renew over the 200k world (wallets topped up), against one bare UPDATE of the same devices.

    On PostgreSQL (suffix "_pg") both sides count the server's CPU time too (ServerClock)."""
    try:
        from actions.billing_jobs import auto_renew
    except ImportError as exc:
        bench.note(f"auto-renew not measured: {exc}")
        return
    from sqlalchemy import select

    from actions.wallets import credit, wallet_for
    from app import WRITE_INTENT
    from models import Company, OrderLine, db

    today = date.today()
    server = ServerClock.for_app(app)
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
        for company_id in db.session.scalars(select(Company.id)).all():
            credit(db.session, wallet_for(db.session, company_id, "CNY"), Decimal("10000000"), "recharge",
                   f"bench:auto-renew:{company_id}")
        db.session.commit()
        # As `flask billing auto-renew` runs it: BEGIN IMMEDIATE, one commit per batch. Each write
        # transaction lasts from the previous commit to its own.
        ended = [time.perf_counter()]

        def commit() -> None:
            db.session.commit()
            ended.append(time.perf_counter())

        token = WRITE_INTENT.set(True)
        try:
            with StatementCounter(db.engine) as counter, Timing(server) as timing:
                summary = auto_renew(db.session, today, commit=commit)
                commit()
        finally:
            WRITE_INTENT.reset(token)
        locks = [b - a for a, b in zip(ended, ended[1:])]
        # The devices it renewed: an auto-renewal's order line is the renewed device's claim.
        renewed = db.session.scalars(select(OrderLine.device_id).where(OrderLine.auto_renew_from.isnot(None))).all()
        db.session.rollback()
        if not summary.renewed:
            raise RuntimeError("auto_renew renewed nothing")
        # Bare: the same devices' expiries moved by one UPDATE (a month on from max(expiry, today)).
        connection = db.session.connection()
        connection.exec_driver_sql("CREATE TEMP TABLE bench_renewed (id INTEGER PRIMARY KEY)")
        if postgresql:
            connection.exec_driver_sql("INSERT INTO bench_renewed (id) SELECT unnest(%s::int[])", (list(renewed),))
            bare_sql = ("UPDATE device SET expires_on = (greatest(expires_on, %s::date) + interval '1 month')::date "
                        "WHERE id IN (SELECT id FROM bench_renewed)")
        else:
            connection.exec_driver_sql("INSERT INTO bench_renewed (id) VALUES (?)", [(i,) for i in renewed])
            bare_sql = ("UPDATE device SET expires_on = date(max(expires_on, ?), '+1 month') "
                        "WHERE id IN (SELECT id FROM bench_renewed)")
        with Timing(server) as bare:
            changed = connection.exec_driver_sql(bare_sql, (today.isoformat(),)).rowcount
        db.session.rollback()
        db.session.remove()
    if changed != len(renewed):
        raise RuntimeError(f"bare UPDATE changed {changed} of {len(renewed)} devices")
    bench.keep(f"auto_renew_renewed{suffix}", summary.renewed)
    bench.keep(f"auto_renew_orders{suffix}", len(summary.orders))
    bench.keep(f"auto_renew_no_package{suffix}", summary.no_package)
    bench.keep(f"auto_renew_failed{suffix}", summary.failed)
    bench.keep(f"auto_renew_sql_statements{suffix}", counter.count)
    bench.keep(f"auto_renew_cpu_seconds{suffix}", timing.cpu)
    bench.keep(f"auto_renew_baseline_seconds{suffix}", bare.wall)
    bench.keep(f"auto_renew_baseline_cpu_seconds{suffix}", bare.cpu)
    bench.put(f"auto_renew_200k_seconds{suffix}", timing.wall)
    bench.put(f"auto_renew_ratio{suffix}", timing.cpu / bare.cpu)
    bench.keep(f"auto_renew_transactions{suffix}", len(locks))
    bench.put(f"longest_write_lock_s{suffix}", max(locks + ([bench.results.get("longest_write_lock_s", 0.0)]
                                                          if not suffix else [])))
    bench.keep(f"auto_renew_longest_write_s{suffix}", max(locks))
    print(f"     ({summary.renewed} devices renewed in {len(summary.orders)} orders, {summary.no_package} without "
          f"a package, {summary.failed} refused; {counter.count} statements; CPU {timing.cpu:.1f} s vs bare "
          f"UPDATE {bare.cpu * 1000:.0f} ms; {len(locks)} transactions, the longest {max(locks):.2f} s)")


# --- PostgreSQL ----------------------------------------------------------------------------------------

PG_BENCHMARKS = ("lists", "auto_renew", "card_lists", "subscriptions")  # what `postgresql` runs again there


def bench_postgresql(bench: Bench, base_url: str, only: set[str] | None = None) -> None:
    """The device list, auto-renewal, card list and subscription benchmarks again on PostgreSQL (keys with
    a _pg suffix), in scratch databases created beside TEST_DATABASE_URL's and dropped afterwards: two
    seeded with devices, and copies of the small one (CREATE DATABASE … TEMPLATE) for the cards and the
    subscriptions, as the SQLite run copies its small database."""
    only = set(PG_BENCHMARKS) if only is None else only
    scratch = PostgresScratch(base_url)
    # The big device database only for the device benchmarks; the small one is also the copies' template.
    labels = {SMALL: str(SMALL), BIG: str(BIG)} if only & {"lists", "auto_renew"} else {SMALL: str(SMALL)}
    apps = {}
    try:
        urls = {size: scratch.create(label) for size, label in labels.items()}
        bench.section(f"PostgreSQL: seeding {' and '.join(f'{size:,}' for size in urls)} devices, then VACUUM ANALYZE")
        with ProcessPoolExecutor(max_workers=2) as pool:
            seconds = dict(zip(urls, pool.map(build_database, urls.values(), urls.keys())))
        if BIG in seconds:
            bench.keep("seed_200k_seconds_pg", seconds[BIG])
        apps = {size: make_app(url) for size, url in urls.items()}
        for app in apps.values():
            analyze(app)
        if "lists" in only:
            bench.section(f"PostgreSQL: device list, {BIG:,} devices over {SMALL:,}")
            bench_list_pages(bench, apps, suffix="_pg")
            bench.section(f"PostgreSQL: last page against first page ({BIG:,} devices)")
            bench_last_page(bench, apps[BIG], suffix="_pg")
        if "auto_renew" in only:
            bench.section(f"PostgreSQL: auto-renewal over {BIG:,} devices")
            bench_auto_renew(bench, apps[BIG], suffix="_pg")
        dispose(apps[SMALL])  # the small database is the template of the copies below

        def copy(label: str) -> str:
            return scratch.create(label, template=labels[SMALL])

        if "card_lists" in only:
            card_lists.bench_card_lists(bench, None, None, target, SMALL_RUN, suffix="_pg", copy=copy)
        if "subscriptions" in only:
            subscriptions.bench_subscriptions(bench, None, None, target, SMALL_RUN, suffix="_pg", copy=copy)
    finally:
        for app in apps.values():
            dispose(app)
        scratch.drop_all()


# --- the table -----------------------------------------------------------------------------------------


def verdicts(results: dict) -> dict[str, bool]:
    found = {}
    for key, (_text, check) in TARGETS.items():
        if key in results:
            found[key] = bool(check(results[key], results))
    return found


def print_table(bench: Bench, passed: dict[str, bool]) -> None:
    rows = []
    for key in bench.shown:
        value = bench.results[key]
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        goal = TARGETS.get(key, ("",))[0]
        rows.append((key, text, goal, ("ok" if passed[key] else "MISSED") if key in passed else ""))
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'metric':<{width}}  {'value':>9}  {'target':<29}  result")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 29}  ------")
    for key, text, goal, verdict in rows:
        print(f"{key:<{width}}  {text:>9}  {goal:<29}  {verdict}")


BENCHMARKS = ("lists", "suspend", "renewals", "members", "import", "cards", "card_lists", "export", "auto_renew",
              "subscriptions", "analyzed", "postgresql")


def parse_args(argv: list[str]):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", metavar="NAME[,NAME…]",
                        help=f"run only these benchmarks (of: {', '.join(BENCHMARKS)})")
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="seed the two SQLite databases into DIR once and copy them from there on later runs")
    parser.add_argument("--pg", default="", metavar="NAME[,NAME…]",
                        help=f"with postgresql, run only these there (of: {', '.join(PG_BENCHMARKS)}; default all)")
    args = parser.parse_args(argv)
    on_pg = [name for name in args.pg.split(",") if name]
    if any(name not in PG_BENCHMARKS for name in on_pg):
        parser.error(f"--pg takes {', '.join(PG_BENCHMARKS)}")
    args.pg = set(on_pg or PG_BENCHMARKS)
    chosen = [name for name in args.only.split(",") if name]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    args.only = set(chosen or BENCHMARKS)
    return args


def seed(bench: Bench, folder: Path, keep: Path | None) -> dict[int, Path]:
    """The two seeded SQLite databases in `folder`: built there, or copied from `keep` (built into it once)."""
    paths = {SMALL: folder / "small.db", BIG: folder / "big.db"}
    kept = {size: keep / f"{size}.db" for size in paths} if keep else None
    if kept and all(path.exists() for path in kept.values()):
        bench.section(f"copying the seeded databases from {keep}")
    else:
        bench.section(f"seeding {SMALL:,} and {BIG:,} devices (migrate + actions.demo.seed_demo), in parallel")
        built = kept or paths
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(max_workers=2) as pool:
            seconds = dict(zip(built, pool.map(build_database, built.values(), built.keys())))
        bench.keep("seed_200k_seconds", seconds[BIG])
        print(f"     (seeding 200k took {seconds[BIG]:.1f} s)")
    if kept:
        for size, path in paths.items():
            copy_database(kept[size], path)  # consistent, WAL included
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    only = args.only
    bench = Bench()
    load_before = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="renewdesk-bench-"))
    try:
        paths = seed(bench, folder, args.keep)
        apps = {size: make_app(path) for size, path in paths.items()}

        if "lists" in only:
            bench.section(f"device list /admin/device/ through the test client: {BIG:,} devices over {SMALL:,}")
            bench_list_pages(bench, apps)
            bench.section(f"device list: last page against first page ({BIG:,} devices)")
            bench_last_page(bench, apps[BIG])

        if "suspend" in only:
            bench.section(f"batch suspend of {BATCH_NUMBERS:,} pasted numbers ({BIG:,} devices)")
            bench_batch_suspend(bench, apps[BIG])

        if "renewals" in only:
            bench.section(f"renewal order: quote + create + pay by balance ({BIG:,} devices)")
            bench_renewals(bench, apps[BIG])

        if "members" in only:
            bench.section("member accounts: create from a pattern + bulk VIP upgrade, 10 vs 1,000")
            bench_members(bench, apps[BIG])

        if "import" in only:
            bench.section(f"expiry import of {IMPORT_ROWS:,} rows (child process)")
            imports.bench_import(bench, apps[BIG], paths[BIG], folder, target, IMPORT_ROWS, IMPORT_REPEAT)

        if "cards" in only:
            bench.section(f"card import of {IMPORT_ROWS:,} cards: preview + chunked commit (child process)")
            from bench.cards import bench_card_import

            bench_card_import(bench, paths[BIG], folder, lambda *args: child_module("bench.cards", *args),
                              rows=IMPORT_ROWS)

        if "card_lists" in only:
            card_lists.bench_card_lists(bench, paths[SMALL], folder, target, SMALL_RUN)

        if "export" in only:
            bench.section(f"xlsx export of {BIG:,} devices (child process)")
            bench_export(bench, paths[BIG])

        if "auto_renew" in only:
            bench.section(f"auto-renewal over {BIG:,} devices")
            bench_auto_renew(bench, apps[BIG])
        if "subscriptions" in only:
            subscriptions.bench_subscriptions(bench, paths[SMALL], folder, target, SMALL_RUN)

        if "analyzed" in only:
            bench.section("device list again, after ANALYZE (SQLite planner statistics)")
            for app in apps.values():
                analyze(app)
            bench_list_pages(bench, apps, suffix="_analyzed")

        if "postgresql" not in only:
            pass
        elif os.environ.get("TEST_DATABASE_URL"):
            bench_postgresql(bench, os.environ["TEST_DATABASE_URL"], args.pg)
        else:
            bench.note("PostgreSQL not measured: set TEST_DATABASE_URL=postgresql+psycopg://… to add the _pg figures")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    passed = verdicts(bench.results)
    print_table(bench, passed)
    missed = [k for k, ok in passed.items() if not ok]
    total = time.perf_counter() - bench.started
    for text in bench.notes:
        print(f"NOTE: {text}")
    print(f"\n{len(passed) - len(missed)} of {len(passed)} targets met" + (
        f"; MISSED: {', '.join(missed)}" if missed else "") + f". ({total:.0f} s; ratios are of CPU time; "
        f"load average {load_before[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)")
    out = {
        **bench.results,
        "targets": {k: TARGETS[k][0] for k in passed},
        "missed": missed,
        "notes": bench.notes,
        "measured": {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "python": platform.python_version(), "machine": platform.machine(),
                     "cpus": os.cpu_count(), "load_average_start": load_before,
                     "load_average_end": os.getloadavg(), "seconds": round(total)},
    }
    out["measured"]["sizes"] = [SMALL, BIG]
    name = "results-small" if SMALL_RUN else "results"
    if only != set(BENCHMARKS):  # a partial run must not overwrite the full run's figures
        out["measured"]["only"] = sorted(only)
        name += "-partial"
    (HERE / f"{name}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
