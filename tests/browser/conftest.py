"""The real Renewdesk in a subprocess, and Debian's Chromium driven by Playwright (sync API).

- `live_app` (session): a fresh database (a temporary SQLite file, or a dedicated database on
  TEST_DATABASE_URL's PostgreSQL server), migrated with `flask --app app db upgrade`, loaded with
  `flask --app app seed-demo --no-activity --devices 300` (queues empty: each test makes its own work), served by `flask --app app run` on a free loopback
  port (ENV_NAME=testing, its own SECRET_KEY); stopped and dropped at the end. The commands run
  as one shell chain started by `_boot`, so the server prepares while Chromium starts.
  `live_app.scalar(sql)` / `.rows(sql)` read the server's database to pick rows and check results.
  `booting(extra_env, tag)` prepares such a server with more environment (test_providers_browser.py:
  the payment providers' credentials, pointed at local fakes) on a database of its own.
- `chromium` (session): one headless Chromium for every test of this pytest worker.
- `open_as(username)`: a new browser context (its own cookies) logged in as a demo user; every
  page records uncaught JavaScript errors and 5xx answers, and the test fails on any of them.
- `shot(page, name)`: a full-page screenshot in tests/artifacts/ (git-ignored).

Playwright's sync API drives its own event loop: it must never run inside an asyncio loop, and
pytest-xdist (`make test` runs two workers) must keep these tests on one worker: the module is
marked `xdist_group("browser")`, which `--dist loadgroup` honours (without it each worker that
gets a browser test starts its own server and browser — slower, still correct).
"""
from __future__ import annotations

import os
import re
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--no-first-run",
]
# Every browser test module: `pytestmark = BROWSER` (one pytest worker, skipped without Chromium).
BROWSER = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                       reason=f"{CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM_PATH)"),
]
SECRET_KEY = "browser-test-secret"
DEMO_DEVICES = 300
START_TIMEOUT = 90  # seconds: migrate + seed + first answer on a slow CI machine
VIEWPORT = {"width": 1366, "height": 900}
SCREEN = {"width": 1366, "height": 768}  # the laptop screen, for the Chinese walks


def demo_password(username: str) -> str:
    return f"demo-{username}"


# --- the server --------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database(tag: str = "") -> tuple[str, object]:
    """A fresh database for this pytest worker's server (`tag` tells two servers apart), and a function that drops it."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        folder = tempfile.mkdtemp(prefix="renewdesk-browser-")
        return f"sqlite:///{Path(folder) / 'browser.db'}", lambda: shutil.rmtree(folder, ignore_errors=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"renewdesk_browser{tag}_{worker}_{os.getpid()}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def _environment(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RENEWDESK_", "FLASK_")) and k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update({"ENV_NAME": "testing", "SECRET_KEY": SECRET_KEY, "DATABASE_URL": database_url,
                "PYTHONUNBUFFERED": "1"})
    return env


def _flask(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


@dataclass
class LiveApp:
    base: str
    database_url: str
    log_path: Path
    engine: sa.Engine

    def url(self, path: str) -> str:
        return self.base + path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))


def _wait_until_serving(base: str, process: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(base + "/login", timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen) -> None:
    """Stop the process group this fixture started (the shell chain and whichever command it runs)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass


@dataclass
class _Boot:
    """The server being prepared: migrate, seed, serve, in one chain of commands."""

    database_url: str
    drop: object
    folder: Path
    log_path: Path
    env: dict
    process: subprocess.Popen | None = None
    base: str = ""

    def start(self) -> None:
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        # `--if-empty`: a retry on another port does not seed twice; `exec`: the pid is the server's.
        chain = " && ".join([
            shlex.join(_flask("db", "upgrade")),
            shlex.join(_flask("seed-demo", "--if-empty", "--no-activity", "--devices", str(DEMO_DEVICES))),
            "exec " + shlex.join(_flask("run", "--host", "127.0.0.1", "--port", str(port), "--no-reload",
                                        "--no-debugger", "--with-threads")),
        ])
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(["sh", "-c", chain], cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def wait(self) -> str:
        """The base URL once the server answers (a second try on another port if this one was taken)."""
        for _attempt in range(3):
            if _wait_until_serving(self.base, self.process, time.monotonic() + START_TIMEOUT):
                return self.base
            _stop(self.process)
            if "in use" not in self.log_path.read_text(errors="replace"):
                break
            self.start()
        raise RuntimeError(f"the app did not start:\n{self.log_path.read_text(errors='replace')[-4000:]}")


@contextmanager
def booting(extra_env: dict | None = None, tag: str = ""):
    """A server being prepared on a fresh database, its environment plus `extra_env` (e.g. payment
    provider credentials); stopped and its database dropped on leaving."""
    database_url, drop = _database(tag)
    folder = Path(tempfile.mkdtemp(prefix="renewdesk-browser-log-"))
    boot = _Boot(database_url, drop, folder, folder / "server.log",
                 {**_environment(database_url), **(extra_env or {})})
    try:
        boot.start()
        yield boot
    finally:
        if boot.process is not None:
            _stop(boot.process)
        drop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def _boot():
    """Start preparing the server at once (Chromium starts meanwhile); stop it and drop its database at the end."""
    with booting() as boot:
        yield boot


def serving(boot):
    """The LiveApp of a prepared server (a module with a server of its own yields from it in its live_app)."""
    base = boot.wait()
    engine = sa.create_engine(boot.database_url)
    yield LiveApp(base, boot.database_url, boot.log_path, engine)
    engine.dispose()


@pytest.fixture(scope="session")
def live_app(_boot):
    """The real app on a migrated, demo-seeded database, served on a free loopback port."""
    yield from serving(_boot)


# --- the browser -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium(_boot):
    """Headless Chromium; it asks for `_boot` only so that the server prepares while the browser starts."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        manager.stop()


@dataclass
class Problems:
    """What went wrong in the pages of one test, besides its assertions."""

    js_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    def watch(self, page) -> None:
        page.on("pageerror", lambda error: self.js_errors.append(f"{page.url}: {error}"))
        page.on("response", lambda response: self.server_errors.append(f"{response.status} {response.url}")
                if response.status >= 500 else None)


@pytest.fixture
def problems():
    return Problems()


@pytest.fixture
def open_as(chromium, live_app, problems):
    """open_as(username[, password]) → a page of a new browser context, logged in at /admin/."""
    contexts = []

    def new_page(username: str | None = None, password: str | None = None, expect_home: bool = True):
        context = chromium.new_context(locale="en-US", viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        problems.watch(page)
        if username is not None:
            login(page, live_app, username, password or demo_password(username), expect_home=expect_home)
        return page

    yield new_page
    for context in contexts:
        context.close()
    assert not problems.js_errors, f"JavaScript errors: {problems.js_errors}"
    assert not problems.server_errors, f"server errors: {problems.server_errors}\n{live_app.log_tail()}"


@pytest.fixture
def chinese_page(chromium, live_app, problems):
    """chinese_page(username) → a page of a new zh-CN browser context at 1366×768, logged in as a user
    whose language is Chinese for the test (their stored choice is put back afterwards). The page's
    requests that leave the app are kept in `page.outside_requests` (no CDN: the app ships its scripts)."""
    contexts = []
    chosen: dict[str, str | None] = {}

    def new_page(username: str):
        chosen.setdefault(username, live_app.scalar('SELECT locale FROM "user" WHERE username = :u', u=username))
        with live_app.engine.begin() as conn:
            conn.execute(sa.text('UPDATE "user" SET locale = :l WHERE username = :u'), {"l": "zh_Hans_CN", "u": username})
        context = chromium.new_context(locale="zh-CN", viewport=SCREEN)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        problems.watch(page)
        outside = []
        page.on("request", lambda request: outside.append(request.url)
                if not request.url.startswith((live_app.base, "data:", "blob:")) else None)
        page.outside_requests = outside
        login(page, live_app, username, demo_password(username))
        return page

    yield new_page
    for context in contexts:
        context.close()
    with live_app.engine.begin() as conn:
        for username, locale in chosen.items():
            conn.execute(sa.text('UPDATE "user" SET locale = :l WHERE username = :u'), {"l": locale, "u": username})
    assert not problems.js_errors, f"JavaScript errors: {problems.js_errors}"
    assert not problems.server_errors, f"server errors: {problems.server_errors}\n{live_app.log_tail()}"


def login(page, live_app: LiveApp, username: str, password: str, expect_home: bool = True) -> None:
    page.goto(live_app.url("/login"))
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    if expect_home:
        assert re.search(r"/admin/?$", page.url), f"{username} landed on {page.url}: {flashes(page)}"


def flashes(page) -> str:
    """The flashed messages on the page, as one string."""
    return " | ".join(text.strip() for text in page.locator(".alert").all_inner_texts())


def shot(page, name: str) -> Path:
    """A full-page screenshot, tests/artifacts/<name>.png."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
