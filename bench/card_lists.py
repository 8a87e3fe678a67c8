"""SIM cards (seed 002): the card list (号卡管理, /admin/simcard/) at 200,000 cards against 2,000, as tech
support and as a distributor's administrator.

    bench_card_lists(bench, base_db, folder, target, small)   called by bench/run.py
    python -m bench.card_lists [--small]                      alone, on a fresh demo database

Two copies of the small demo database get cards by bulk INSERT (20,000 rows per statement, then
ANALYZE, as after any bulk load): 2,000 in one, 200,000 in the other (BENCH_SMALL: 20,000; the keys
keep their names). The cards are spread as a card business holds them: half in the platform's
warehouse, 30 % with the distributor Aotuo Cards, 20 % with its subsidiary Aotuo Shenzhen; 80 % in
stock, 10 % voided, 5 % reserved, 5 % returned; both card plans; valid until a day of the next
2½ years. The PIN columns hold one real token (the list never decrypts).

Measured like the device list (bench/run.py): medians of CPU time, both sizes by turns, as `support`
(tech support: every card) and `distributor` (customer administrator of Aotuo Cards: its cards and
its subsidiary's, 50 % of them). Keys, with `customer_admin_` in front for the distributor:
card_<page>_ratio_200k_vs_2k for the first page, each filter the list offers (status returned 5 %,
status in stock 80 %, one plan, a month of "valid until"), a search for one whole ICCID and one for
the first nine digits of a phone number (≤ 1.2); card_last_page_ratio_200k, the last page over the
first at 200,000 (≤ 1.5); card_list_page_sql_statements_2k / _200k (equal). In results.json only:
card_search_tail_ratio_200k_vs_2k, a phone's last four digits, which no index answers (the table
is read, see actions.cards.search_clause).
"""
from __future__ import annotations

import random
import re
import sys
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
SMALL, BIG = "2k", "200k"
HOLDERS = (0,) * 5 + (9,) * 3 + (10,) * 2  # platform, Aotuo Cards, Aotuo Shenzhen (the demo's ids)
STATUSES = ("in_stock",) * 16 + ("voided",) * 2 + ("reserved", "returned")
WHOLE = 1005  # the card searched for by its whole ICCID, and by a part of its phone number
USERS = (("support", ""), ("distributor", "customer_admin_"))
# search_tail has no index by design (actions.cards.search_clause): measured, not a target.
UNTARGETED = ("search_tail",)


def sizes(small: bool) -> dict[str, int]:
    return {SMALL: 2_000, BIG: 20_000 if small else 200_000}


def iccid(i: int) -> str:
    return f"8986009{i:013d}"


def phone(i: int) -> str:
    return f"139{i:08d}"


def add_cards(app, count: int, seed: int = 2) -> None:
    """`count` cards by bulk INSERT (one statement per 20,000 rows), then ANALYZE (PostgreSQL: VACUUM ANALYZE)."""
    from sqlalchemy import insert, select

    from models import Package, SimCard, db

    rng = random.Random(seed)
    today = date.today()
    created = datetime.now(timezone.utc)
    with app.app_context():
        plans = db.session.scalars(select(Package.id).where(Package.kind == "card").order_by(Package.id)).all()
        token = db.session.scalar(select(SimCard.pin_enc).limit(1))
        rows = []
        for i in range(count):
            rows.append({
                "iccid": iccid(i), "phone": phone(i), "pin_enc": token, "pin_index": f"{i:064x}",
                "pin_hint": f"{i % 100:02d}", "package_id": plans[i % len(plans)],
                "valid_until": today + timedelta(days=rng.randint(0, 900)),
                "status": STATUSES[rng.randrange(len(STATUSES))], "holder_key": HOLDERS[i % len(HOLDERS)],
                "warehouse": "", "created_at": created - timedelta(seconds=count - i),
            })
            if len(rows) >= BATCH:
                db.session.execute(insert(SimCard), rows)
                rows = []
        if rows:
            db.session.execute(insert(SimCard), rows)
        db.session.commit()
        db.session.remove()
    analyze(app)


def card_view(app):
    admin = app.extensions["admin"][0]
    return next(v for v in admin._views if getattr(v, "endpoint", None) == "simcard")


def pages(app) -> dict[str, str]:
    """The card list's pages: plain, each filter it offers, a whole ICCID, a part of a phone number."""
    from sqlalchemy import select

    from models import Package, db

    view = card_view(app)
    args = {key: key for key in view._filter_args}
    with app.app_context():
        plan = db.session.scalar(select(Package.id).where(Package.kind == "card").order_by(Package.id))
        db.session.remove()
    month = date.today() + timedelta(days=300)
    window = f"{month:%Y-%m-%d} to {month + timedelta(days=30):%Y-%m-%d}"
    return {
        "list_page": "/admin/simcard/",
        "filtered_list": f"/admin/simcard/?flt0_{args['status_equals']}=returned",
        "active_filter": f"/admin/simcard/?flt0_{args['status_equals']}=in_stock",
        "plan_filter": f"/admin/simcard/?flt0_{args.get('plan_equals') or args['package_equals']}={plan}",
        "valid_until_filter": f"/admin/simcard/?flt0_{args['valid_until_between']}={window}",
        "search": f"/admin/simcard/?search={iccid(WHOLE)}",
        "search_prefix": f"/admin/simcard/?search={phone(WHOLE)[:9]}",
        "search_tail": f"/admin/simcard/?search={phone(WHOLE)[-4:]}",
    }


def listed(body: str) -> list[str]:
    """The ICCIDs in the rows of a rendered card list."""
    return re.findall(r'<td class="col-iccid">\s*(\d+)\s*</td>', body)


def time_pages(bench, apps: dict[str, object], target, repeat: int, warmup: int, suffix: str = "") -> None:
    from models import db

    urls = pages(apps[SMALL])
    servers = {size: ServerClock.for_app(app) for size, app in apps.items()}
    for username, prefix in USERS:
        clients = {}
        for size, app in apps.items():
            clients[size] = app.test_client()
            login(clients[size], username)
        for page, url in urls.items():
            key = f"{prefix}card_{page}_ratio_200k_vs_2k{suffix}"
            if page not in UNTARGETED:
                target(key, "≤ 1.2", lambda v, r: v <= 1.2)
            shown = {}
            for size, client in clients.items():
                for _ in range(warmup):
                    render(client, url)
                shown[size] = listed(client.get(url).get_data(as_text=True))
            if page == "search" and not all(found == [iccid(WHOLE)] for found in shown.values()):
                raise RuntimeError(f"the search for {iccid(WHOLE)} as {username} listed {shown}")
            if not all(shown.values()) and page != "search":
                raise RuntimeError(f"{page} as {username} listed no card: {url}")
            for size, client in clients.items():
                with apps[size].app_context():
                    engine = db.engine
                with StatementCounter(engine) as counter:
                    render(client, url)
                if page == "list_page":
                    statements = f"{prefix}card_list_page_sql_statements_{size}{suffix}"
                    if size == BIG:
                        target(statements, "= 2k count",
                               lambda v, r, k=statements: v == r.get(k.replace(f"_{BIG}", f"_{SMALL}")))
                    bench.put(statements, counter.count)
            times: dict[str, list[Timing]] = {size: [] for size in apps}
            for _ in range(repeat):
                for size, client in clients.items():
                    times[size].append(render(client, url, servers[size]))
            (small_cpu, small_wall), (big_cpu, big_wall) = medians(times[SMALL]), medians(times[BIG])
            bench.keep(f"{prefix}card_{page}_cpu_ms_2k{suffix}", small_cpu * 1000)
            bench.keep(f"{prefix}card_{page}_cpu_ms_200k{suffix}", big_cpu * 1000)
            (bench.keep if page in UNTARGETED else bench.put)(key, big_cpu / small_cpu)
            print(f"     ({page}: CPU {small_cpu * 1000:.1f} ms at 2k, {big_cpu * 1000:.1f} ms at 200k; "
                  f"wall {small_wall * 1000:.1f} / {big_wall * 1000:.1f} ms)", flush=True)


def time_last_page(bench, app, target, repeat: int, warmup: int, suffix: str = "") -> None:
    from sqlalchemy import func, select

    from models import SimCard, db

    with app.app_context():
        in_scope = {"": db.session.scalar(select(func.count()).select_from(SimCard)),
                    "customer_admin_": db.session.scalar(
                        select(func.count()).select_from(SimCard).where(SimCard.holder_key.in_((9, 10))))}
        db.session.remove()
    last_page_ratios(bench, app, USERS, "/admin/simcard/", in_scope, card_view(app).page_size, listed, repeat, warmup,
                     stem="card_", size="200k", noun="cards", target=target, suffix=suffix)


def bench_card_lists(bench, base_db: Path | None, folder: Path | None, target, small: bool, suffix: str = "",
                     copy: Callable[[str], Path | str] | None = None) -> None:
    """Build the two databases (copies of `base_db`, a migrated demo database, in `folder`; or
    `copy(label)`, a new copy's path or URL: bench.run's PostgreSQL part), then measure; keys end in `suffix`."""
    counts = sizes(small)
    where = " on PostgreSQL" if suffix == "_pg" else ""
    bench.section(f"card list /admin/simcard/{where}: {counts[BIG]:,} cards over {counts[SMALL]:,}")
    if copy is None:
        copy = sqlite_copies(base_db, folder, "cards")
    apps = {}
    for size, count in counts.items():
        apps[size] = make_app(copy(f"cards_{size}"))
        add_cards(apps[size], count)
    repeat, warmup = (3, 1) if small else (9, 2)
    time_pages(bench, apps, target, repeat, warmup, suffix)
    time_last_page(bench, apps[BIG], target, repeat, warmup, suffix)


if __name__ == "__main__":
    run_alone(bench_card_lists, "cards", "--small" in sys.argv)
