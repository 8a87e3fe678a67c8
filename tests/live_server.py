"""The real application under gunicorn (several worker processes) for the concurrency and load
tests, and a small cookie-jar HTTP client that logs in like a browser (CSRF token included).

The server is started with the production entry point, `gunicorn -c gunicorn.conf.py wsgi:app`,
configured only through the environment (BIND, WEB_CONCURRENCY, DATABASE_URL, SECRET_KEY,
ENV_NAME, PAYMENT_SANDBOX_SECRET), against the test database of this pytest worker. It keeps no
state of its own, so the `app` fixture emptying every table after each test does not disturb it.
"""
from __future__ import annotations

import copy
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "live-server-test-secret"
SANDBOX_SECRET = "live-server-sandbox-secret"
WORKERS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gunicorn() -> list[str]:
    script = Path(sys.executable).parent / "gunicorn"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]


@dataclass
class LiveServer:
    base: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def errors(self) -> list[str]:
        """Lines of the server log that tell of a failure (tracebacks, locked database, dead workers)."""
        bad = re.compile(r"Traceback|database is locked|OperationalError|\[ERROR\]|WORKER TIMEOUT|"
                         r"Worker \(pid:\d+\) was sent|Exception on ")
        return [line for line in self.log().splitlines() if bad.search(line)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: workers finish their request
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.log_path.parent, ignore_errors=True)


_SHARED: dict[str, list] = {}


@contextmanager
def shared_gunicorn(database_url: str):
    """One server per database (so per pytest worker) for every module that asks; stopped by the last user.

    Each module's session fixture enters this; session fixtures end together at the end of the run,
    before the database is dropped, and the last one out stops gunicorn."""
    entry = _SHARED.get(database_url)
    if entry is None:
        entry = _SHARED[database_url] = [start_gunicorn(database_url), 0]
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            del _SHARED[database_url]
            entry[0].stop()


def start_gunicorn(database_url: str, workers: int = WORKERS, timeout: float = 90, target: str = "wsgi:app",
                   extra_env: dict | None = None) -> LiveServer:
    """Start gunicorn on a free loopback port and wait until it serves the login page."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENEWDESK_") and k != "TEST_DATABASE_URL"}
    env.update({
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "ENV_NAME": "testing",
        "PAYMENT_SANDBOX_SECRET": SANDBOX_SECRET,
        "WEB_CONCURRENCY": str(workers),
        "THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env or {})
    last_log = ""
    for _attempt in range(3):  # the free port may be taken between the probe and the bind
        port = _free_port()
        env["BIND"] = f"127.0.0.1:{port}"
        log_path = Path(tempfile.mkdtemp(prefix="renewdesk-gunicorn-")) / "gunicorn.log"
        # --no-control-socket: gunicorn 27 otherwise opens ~/.gunicorn/gunicorn.ctl, one path for
        # every instance of the user (two pytest workers would fight over it).
        command = _gunicorn() + ["-c", "gunicorn.conf.py", "--no-control-socket", target]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(server.base + "/login", timeout=5) as response:
                    if response.status == 200:
                        _wait_for_workers(server, workers, deadline)
                        return server
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        last_log = server.log()
        server.stop()
        if "in use" not in last_log:
            break
    raise RuntimeError(f"gunicorn did not start:\n{last_log[-4000:]}")


def _wait_for_workers(server: LiveServer, workers: int, deadline: float) -> None:
    """Wait until every worker has booted, so the first burst meets them all."""
    while time.monotonic() < deadline:
        if server.log().count("Booting worker with pid") >= workers:
            return
        time.sleep(0.1)


# --- the client -----------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


@dataclass
class Answer:
    status: int
    body: str
    location: str = ""
    url: str = ""


class Browser:
    """One user's cookie jar against the live server: log in, GET, POST with the CSRF token."""

    def __init__(self, base: str):
        self.base = base
        self.jar = jar = http.cookiejar.CookieJar()
        self.follow = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        self.stay = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
        self.token = ""

    def request(self, path: str, data=None, follow: bool = True, timeout: float = 120) -> Answer:
        """GET (data None) or POST (data: dict or pairs; the CSRF token added); 4xx/5xx are answers too."""
        body = None
        if data is not None:
            pairs = list(data.items()) if isinstance(data, dict) else list(data)
            if self.token and not any(k == "csrf_token" for k, _v in pairs):
                pairs.append(("csrf_token", self.token))
            body = urllib.parse.urlencode(pairs).encode()
        opener = self.follow if follow else self.stay
        try:
            with opener.open(self.base + path, data=body, timeout=timeout) as response:
                return Answer(response.status, response.read().decode(errors="replace"), url=response.url)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace") if exc.fp else ""
            return Answer(exc.code, text, exc.headers.get("Location", "") if exc.headers else "", exc.url)

    def get(self, path: str, **kwargs) -> Answer:
        return self.request(path, None, **kwargs)

    def post(self, path: str, data, **kwargs) -> Answer:
        return self.request(path, data, **kwargs)

    def clone(self) -> Browser:
        """Another cookie jar holding the same session (a second tab, or another machine's browser)."""
        twin = Browser(self.base)
        for cookie in self.jar:
            twin.jar.set_cookie(copy.copy(cookie))
        twin.token = self.token
        return twin

    def login(self, username: str, password: str = PASSWORD) -> Browser:
        page = self.get("/login")
        assert page.status == 200, (page.status, page.body[:500])
        token = csrf_from(page.body)
        answer = self.post("/login", {"username": username, "password": password, "csrf_token": token},
                           follow=False)
        assert answer.status == 302, (username, answer.status, answer.body[:500])
        # Logging in starts a new session: take the token of that session for every later POST.
        page = self.get("/password")
        assert page.status == 200, (username, page.status)
        self.token = csrf_from(page.body)
        return self


def csrf_from(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


FLASH = re.compile(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', re.S)


def flashes(page: str) -> str:
    """The flashed messages of a page as plain text (enough to tell paid from refused)."""
    return " ".join(re.sub(r"<[^>]+>|&times;|\s+", " ", m).strip() for m in FLASH.findall(page))
