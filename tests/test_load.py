"""The server under load: gunicorn with several workers, parallel clients for a bounded time mixing
device lists (filters, sorting, pages), prefix searches, the renewal center and renewals paid
from the balance, on a few thousand devices. No request may fail; the money must add up.

RENEWDESK_LOAD_SECONDS (default 20) and RENEWDESK_LOAD_CLIENTS (default 8) size the run; the
figures (requests per second, latencies per kind) are printed (`pytest -rP` shows them).
"""
from __future__ import annotations

import os
import random
import time
import urllib.error
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select

from actions.wallets import credit, ledger_differences, wallet_for
from live_server import Browser, flashes, shared_gunicorn
from models import Device, LedgerEntry, Order, Wallet, db

pytestmark = pytest.mark.xdist_group("gunicorn")

LOAD_SECONDS = float(os.environ.get("RENEWDESK_LOAD_SECONDS", "20"))
CLIENTS = int(os.environ.get("RENEWDESK_LOAD_CLIENTS", "8"))
DEVICES = 3000
FUNDS = Decimal("1000000.00")
# How often each kind of request is made (relative weights).
MIX = {"device_list": 35, "search": 20, "renewal_center": 25, "renewal": 20}


@pytest.fixture(scope="session")
def server(database_url):
    """gunicorn (4 workers) on this pytest worker's database, shared with the other gunicorn module."""
    with shared_gunicorn(database_url) as live:
        yield live


def seed_devices(world) -> list[int]:
    """DEVICES devices over Acme's tree (numbers AC000001…) and Globex (GX…); returns the renewable ones."""
    rng = random.Random(20240601)
    today = date.today()
    tree = [world.acme, world.north, world.fleet, world.south]
    packages = [world.packages["GPS-M"].id] * 7 + [world.packages["GPS-Y"].id] * 2 + [None]
    rows = []
    for i in range(1, DEVICES + 1):
        company = world.globex if i % 5 == 0 else tree[i % len(tree)]
        prefix = "GX" if company is world.globex else "AC"
        rows.append({
            "number": f"{prefix}{i:06d}", "name": f"Load truck {i}", "device_type": rng.choice(
                ["GPS tracker", "OBD dongle", "Asset tag"]),
            "company_id": company.id, "status": "suspended" if rng.random() < 0.05 else "active",
            "expires_on": today + timedelta(days=rng.randint(-120, 400)), "package_id": rng.choice(packages),
        })
    for start in range(0, len(rows), 500):
        db.session.execute(insert(Device), rows[start:start + 500])
    db.session.commit()
    acme_tree = {c.id for c in tree}
    return list(db.session.scalars(
        select(Device.id).where(Device.company_id.in_(acme_tree), Device.status == "active",
                                Device.package_id.isnot(None), Device.number.like("AC0%")).order_by(Device.id)))


class Client:
    """One user clicking through the console; every answer is recorded."""

    def __init__(self, index: int, browser: Browser, acme: int, tree: list[int], devices: list[int]):
        self.name = f"client-{index}"
        self.rng = random.Random(index)
        self.browser, self.acme, self.tree, self.devices = browser, acme, tree, devices
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.failures: list[tuple[str, str, str]] = []
        self.paid: list[str] = []
        self.refused: list[tuple[str, str]] = []

    def warm_up(self):
        """One request of each kind: every worker compiles its templates before the clock starts."""
        self._guarded(lambda: [getattr(self, kind)() for kind in MIX])
        self.timings.clear()

    def run_until(self, deadline: float):
        kinds, weights = zip(*MIX.items())

        def loop():
            while time.monotonic() < deadline:
                kind = self.rng.choices(kinds, weights)[0]
                getattr(self, kind if kind != "renewal" or self.devices else "device_list")()

        self._guarded(loop)

    def _guarded(self, work):
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - any surprise is a failure of the run
            self.failures.append(("client", self.name, repr(exc)))

    def _call(self, kind: str, path: str, data=None, follow: bool = True, expect: int = 200, must: str = ""):
        started = time.monotonic()
        try:
            answer = self.browser.request(path, data, follow=follow, timeout=60)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            self.failures.append((kind, path, f"connection error: {exc!r}"))
            return None
        finally:
            self.timings[kind].append(time.monotonic() - started)
        if answer.status != expect:
            self.failures.append((kind, path, f"{answer.status}: {answer.body[:200]}"))
            return None
        if must and must not in answer.body:
            self.failures.append((kind, path, f"no {must!r} on the page"))
            return None
        return answer

    def device_list(self):
        rng = self.rng
        query = rng.choice([
            f"flt0_company_in_the_tree_of={rng.choice(self.tree)}",
            "flt0_status_equals=active",
            f"flt0_status_equals=active&flt1_expiry_is={rng.choice(['expired', '7', '30', '90'])}",
            "flt0_renewal_package_is=no",
            "flt0_package_renewal_package_code_equals=GPS-Y",
            f"flt0_device_type_equals={rng.choice(['GPS+tracker', 'OBD+dongle', 'Asset+tag'])}",
            "",
        ])
        sort = f"&sort={rng.randrange(7)}" + ("&desc=1" if rng.random() < 0.5 else "")
        page = f"&page={rng.randrange(5)}&page_size={rng.choice([20, 50, 100])}"
        self._call("device_list", f"/admin/device/?{query}{sort}{page}")

    def search(self):
        term = self.rng.choice(["AC00", "AC001", "AC0012", "Load+truck+1", "AC0029"])
        self._call("search", f"/admin/device/?search={term}&page={self.rng.randrange(3)}", must="AC00")

    def renewal_center(self):
        rng = self.rng
        window = rng.choice(["30", "expired", "90", "all"])
        months = rng.choice(["6", "12", "24"])
        self._call("renewal_center", f"/admin/renewal_center/?company_id={rng.choice(self.tree)}&window={window}"
                   f"&months={months}&page={rng.randrange(4)}&page_size={rng.choice([20, 50, 100])}")

    def renewal(self):
        device = self.devices.pop()
        created = self._call("renewal", "/admin/renewal_center/renew/", [
            ("company_id", str(self.acme)), ("months", "12"), ("custom_months", ""), ("only", str(device))],
            follow=False, expect=302)
        if created is None:
            return
        number = created.location.rstrip("/").rsplit("/", 1)[-1]
        if "/admin/renewal_center/order/" not in created.location:
            self.failures.append(("renewal", "renew", f"not sent to an order page: {created.location}"))
            return
        paid = self._call("renewal", f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"})
        if paid is None:
            return
        if f"Order {number} is paid:" in paid.body:
            self.paid.append(number)
        else:
            self.refused.append((number, flashes(paid.body)))


def test_the_server_under_parallel_load(server, world, record_property):
    renewable = seed_devices(world)
    wallet = wallet_for(db.session, world.acme.id, "CNY")
    credit(db.session, wallet, FUNDS, "offline_recharge", "test:load:fund")
    db.session.commit()
    errors_before = len(server.errors())
    tree = [world.acme.id, world.north.id, world.fleet.id, world.south.id]

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        browsers = list(pool.map(lambda i: Browser(server.base).login("customer"), range(CLIENTS)))
        clients = [Client(i, browsers[i], world.acme.id, tree, renewable[i::CLIENTS]) for i in range(CLIENTS)]
        list(pool.map(Client.warm_up, clients))
        started = time.monotonic()
        deadline = started + LOAD_SECONDS
        list(pool.map(lambda client: client.run_until(deadline), clients))
        elapsed = time.monotonic() - started

    timings: dict[str, list[float]] = defaultdict(list)
    for client in clients:
        for kind, values in client.timings.items():
            timings[kind] += values
    total = sum(len(v) for v in timings.values())
    rate = total / elapsed
    paid = [n for client in clients for n in client.paid]
    refused = [r for client in clients for r in client.refused]
    failures = [f for client in clients for f in client.failures]

    lines = [f"load: {CLIENTS} clients, {elapsed:.1f} s, {total} requests, {rate:.1f} requests/s, "
             f"{len(paid)} renewals paid, {len(failures)} failures ({db.engine.dialect.name}, {DEVICES} devices)"]
    for kind, values in sorted(timings.items()):
        ordered = sorted(values)
        lines.append(f"  {kind:15} {len(values):5} requests  mean {1000 * sum(values) / len(values):7.1f} ms  "
                     f"p95 {1000 * ordered[int(0.95 * (len(ordered) - 1))]:7.1f} ms  max {1000 * ordered[-1]:7.1f} ms")
    print("\n".join(lines))
    record_property("requests_per_second", round(rate, 1))
    record_property("requests", total)
    record_property("renewals_paid", len(paid))

    assert failures == [], "\n".join(map(str, failures[:20]))
    assert refused == [], refused[:5]
    assert total >= CLIENTS and len(paid) >= CLIENTS, lines[0]  # the warm-up renews once per client
    server_errors = server.errors()[errors_before:]
    assert server_errors == [], "\n".join(server_errors[:20])

    # The money adds up: one paid order and one ledger debit per renewal that answered success.
    db.session.expire_all()
    paid_orders = list(db.session.scalars(select(Order).where(Order.kind == "renewal", Order.status == "paid")))
    assert sorted(o.number for o in paid_orders) == sorted(paid)
    assert db.session.scalar(select(func.count()).select_from(Order).where(Order.kind == "renewal",
                                                                             Order.status == "pending")) == 0
    debits = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment"))
    assert debits == len(paid)
    spent = sum((o.total for o in paid_orders), Decimal("0.00"))
    assert db.session.scalar(select(Wallet.balance_minor).where(Wallet.id == wallet.id)) == (FUNDS - spent) * 100
    assert ledger_differences(db.session) == []
