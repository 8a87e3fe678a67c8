"""What the benchmarks share: a seeded database, a logged-in client, statement counting, clocks.

Ratios compare CPU time (time.process_time: user + system time of this process), not wall time:
the benchmark usually shares two cores with test runs, and waiting for a core would otherwise
land on whichever side of a ratio happened to be running. Wall times are kept alongside.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import re
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import event

FAST_HASH = "scrypt:1024:8:1"  # the demo users' password hash, cheap on purpose (as in the tests)


def database_url(db: Path | str) -> str:
    """A database URL as given, or the SQLite file at a path."""
    return db if isinstance(db, str) and "://" in db else f"sqlite:///{db}"


def make_app(db_path: Path | str):
    """The app on `db_path` (a SQLite file, or a database URL), configured as the test suite configures it."""
    from app import create_app

    return create_app({
        "ENV_NAME": "testing",
        "TESTING": True,
        "SECRET_KEY": "bench-secret",
        "SQLALCHEMY_DATABASE_URI": database_url(db_path),
        "PASSWORD_HASH_METHOD": FAST_HASH,
        "MAIL_SUPPRESS_SEND": True,
    })


def build_database(db_path: Path | str, devices: int) -> float:
    """Migrate a fresh database (SQLite file or empty PostgreSQL database) and seed the demo world
    with `devices` devices; returns seconds."""
    from flask_migrate import upgrade

    from actions.demo import seed_demo
    from models import db

    app = make_app(db_path)
    with app.app_context():
        log = io.StringIO()
        try:
            with contextlib.redirect_stderr(log):  # Alembic's INFO lines, shown only on failure
                upgrade()
        except Exception:
            print(log.getvalue())
            raise
        started = time.perf_counter()
        seed_demo(db.session, devices=devices, method=FAST_HASH)
        db.session.commit()
        seconds = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    return seconds


def analyze(app) -> None:
    """Give the query planner its statistics (ANALYZE); new connections read them. On PostgreSQL
    VACUUM ANALYZE, as autovacuum would after a bulk load (index-only scans need the visibility map)."""
    from models import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        db.session.remove()
        db.engine.dispose()


def login(client, username: str) -> None:
    """Log the test client in as a demo user (password demo-<username>)."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    response = client.post("/login", data={"username": username, "password": f"demo-{username}",
                                           "csrf_token": token.group(1)})
    if response.status_code != 302:
        raise RuntimeError(f"login as {username} failed: HTTP {response.status_code}")


class PostgresScratch:
    """Scratch databases on the PostgreSQL server of `base_url`, beside its database: created empty or
    as a copy of another (CREATE DATABASE … TEMPLATE, PostgreSQL's copy of a seeded database), each
    dropped by `drop_all` (WITH (FORCE): connections left open are closed)."""

    def __init__(self, base_url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.base = make_url(base_url)
        self.server = create_engine(base_url, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def name(self, label: str) -> str:
        return f"renewdesk_bench_{label}_{os.getpid()}"

    def url(self, label: str) -> str:
        return self.base.set(database=self.name(label)).render_as_string(hide_password=False)

    def create(self, label: str, template: str | None = None) -> str:
        """The URL of a new database `label` (empty, or a copy of the scratch database `template`)."""
        from sqlalchemy.exc import OperationalError

        name = self.name(label)
        copy = f' TEMPLATE "{self.name(template)}"' if template else ""
        with self.server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            self.names.append(name)
            for attempt in range(10):
                try:
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
                    break
                except OperationalError:  # the template still in use (a closing connection, autovacuum)
                    if attempt == 9:
                        raise
                    time.sleep(0.5)
        return self.url(label)

    def drop_all(self) -> None:
        with self.server.connect() as conn:
            for name in self.names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.names = []
        self.server.dispose()


def dispose(app) -> None:
    """Close an app's database connections (a PostgreSQL database is copied only when nobody is connected)."""
    from models import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class StatementCounter:
    """Counts the SQL statements an engine sends (SQLAlchemy's before_cursor_execute event)."""

    def __init__(self, engine):
        self.engine = engine
        self.count = 0
        self.statements: list[str] = []

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        self.statements.append(statement)

    def __enter__(self):
        self.count = 0
        self.statements = []
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._on_execute)


class ServerClock:
    """CPU seconds spent so far by a local PostgreSQL server's processes serving one database.

    On PostgreSQL a page's queries run in the server's backend processes, outside this process's
    CPU time. Their CPU time is read from Linux (/proc/<pid>/schedstat, nanoseconds) for the
    backends connected to the app's database, so that a ratio counts the database's work too.
    Returns None for SQLite or a server on another machine.
    """

    def __init__(self, engine):
        self.engine = engine

    @classmethod
    def for_app(cls, app):
        from models import db

        with app.app_context():
            engine = db.engine
        if engine.dialect.name != "postgresql":
            return None
        clock = cls(engine)
        return clock if clock.read() is not None else None

    def read(self) -> float | None:
        with self.engine.connect() as conn:
            pids = [row[0] for row in conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
        total = 0
        for pid in pids:
            try:
                total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                return None
        return total / 1e9


class Timing:
    """CPU and wall seconds of one measured stretch: `with Timing() as t: …`, then t.cpu, t.wall.

    With a ServerClock, t.cpu also counts the database server's CPU time."""

    cpu = wall = 0.0

    def __init__(self, server: ServerClock | None = None):
        self.server = server

    def __enter__(self):
        self._server = self.server.read() if self.server else 0.0
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall
        if self.server:
            self.cpu += (self.server.read() or 0.0) - self._server


def timed(run: Callable[[], object]) -> Timing:
    with Timing() as timing:
        run()
    return timing


def render(client, url: str, server=None) -> Timing:
    """GET a page through the test client, timed (the server's CPU too, with a ServerClock); must answer 200."""
    with Timing(server) as timing:
        response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered HTTP {response.status_code}")
    return timing


def first_and_last_pages(client, url: str, rows: int, page_size: int, listed: Callable[[str], list],
                         repeat: int, warmup: int, server=None) -> tuple[int, tuple, tuple]:
    """A list's first and last pages rendered by turns, after checking that the last lists the rows left.

    Returns the last page's index and the (CPU, wall) medians of the first and of the last page."""
    last = math.ceil(rows / page_size) - 1
    urls = {"first": url, "last": f"{url}?page={last}"}
    for page in urls.values():
        for _ in range(warmup):
            render(client, page)
    shown = len(listed(client.get(urls["last"]).get_data(as_text=True)))
    if shown != rows - last * page_size:
        raise RuntimeError(f"the last page (page {last}) of {url} listed {shown} rows, not {rows - last * page_size}")
    times: dict[str, list[Timing]] = {"first": [], "last": []}
    for _ in range(repeat):
        for which, page in urls.items():
            times[which].append(render(client, page, server))
    return last, medians(times["first"]), medians(times["last"])


def medians(timings: list[Timing]) -> tuple[float, float]:
    """(median CPU seconds, median wall seconds)."""
    return statistics.median(t.cpu for t in timings), statistics.median(t.wall for t in timings)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    Linux's VmHWM (/proc/self/status) is the peak of this process image alone; getrusage's
    ru_maxrss would also count the parent's size at the fork that started us.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Collector:
    """A stand-in for bench.run.Bench when a benchmark module runs alone (`run_alone`)."""

    def __init__(self):
        self.results: dict = {}
        self.targets: dict = {}

    def keep(self, key, value):
        self.results[key] = round(value, 4) if isinstance(value, float) else value

    def put(self, key, value):
        self.keep(key, value)
        text, check = self.targets.get(key, ("", None))
        verdict = "" if check is None else ("ok" if check(value, self.results) else "MISSED")
        print(f"  {key} = {self.results[key]}  {text} {verdict}", flush=True)

    def section(self, title):
        print(f"== {title}", flush=True)

    def target(self, key, text, check):
        self.targets[key] = (text, check)


def run_alone(measure: Callable, name: str, small: bool) -> None:
    """Run `measure(bench, base_db, folder, target, small)` on a fresh demo database in a scratch folder."""
    import shutil
    import tempfile

    collector = Collector()
    work = Path(tempfile.mkdtemp(prefix=f"renewdesk-bench-{name}-"))
    try:
        measure(collector, None, work, collector.target, small)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def copy_database(source: Path, path: Path) -> None:
    """A consistent copy of a SQLite database in WAL mode (the backup API reads the -wal file too)."""
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def sqlite_copies(base_db: Path | None, folder: Path, name: str) -> Callable[[str], Path]:
    """`copy(label)`: a new copy of `base_db` in `folder` (<label>.db), its path; without `base_db`, a migrated demo
    database with 100 devices is built first (<name>-base.db)."""
    if base_db is None:
        base_db = folder / f"{name}-base.db"
        build_database(base_db, 100)

    def copy(label: str) -> Path:
        copy_database(base_db, folder / f"{label}.db")
        return folder / f"{label}.db"

    return copy


def last_page_ratios(bench, app, readers, url: str, in_scope: dict[str, int], page_size: int, listed: Callable[[str], list],
                     repeat: int, warmup: int, *, stem: str, size: str, noun: str, target=None, suffix: str = "") -> None:
    """For each (username, prefix) of `readers`: the last page of `url` against its first (first_and_last_pages) as
    `{prefix}{stem}last_page_ratio_{size}{suffix}` (≤ 1.5, registered with `target` when given), with its
    `…last_page_cpu_ms_…` and `…last_page_wall_ratio_…` kept."""
    server = ServerClock.for_app(app)
    for username, prefix in readers:
        def name(what: str) -> str:
            return f"{prefix}{stem}last_page_{what}_{size}{suffix}"

        if target is not None:
            target(name("ratio"), "≤ 1.5", lambda v, r: v <= 1.5)
        client = app.test_client()
        login(client, username)
        rows = in_scope[prefix]
        last, (first_cpu, first_wall), (last_cpu, last_wall) = first_and_last_pages(
            client, url, rows, page_size, listed, repeat, warmup, server)
        bench.keep(name("cpu_ms"), last_cpu * 1000)
        bench.keep(name("wall_ratio"), last_wall / first_wall)
        bench.put(name("ratio"), last_cpu / first_cpu)
        print(f"     (page {last + 1} of {rows:,} {noun}: CPU {last_cpu * 1000:.1f} ms, first page "
              f"{first_cpu * 1000:.1f} ms; wall {last_wall * 1000:.1f} / {first_wall * 1000:.1f} ms)", flush=True)
