"""The expiry import as its user meets it: the upload request and the commit request.

    bench_import(bench, app, db_path, folder, target)   called by bench/run.py
    python -m bench.imports DB XLSX RUNS                 the measured child process (prints JSON)
    python -m bench.imports --small ROWS                 a quick run on a fresh database (development)

The child logs in as sales and times, in CPU seconds of its own process, POST /upload plus
POST /commit of the same workbook (each run on a fresh copy of the database, so every run
changes every row), against openpyxl's read-only iteration of the same file, by turns in
the same process. Figures:

- import_ratio: both requests ÷ openpyxl read-only iteration (target ≤ 1.5);
- import_peak_mb: the peak resident size during the first run minus the size after start-up
  (app created, logged in), target < 150; import_startup_mb is that start-up size;
- import_longest_write_lock_s: the longest write transaction of the two requests, wall seconds
  (from BEGIN IMMEDIATE, or the first write, to COMMIT or ROLLBACK): one chunk of the commit
  (importers.expiry.COMMIT_CHUNK devices); longest_write_lock_s keeps the longest of this and any figure measured
  before it in the same run (auto-renew). Wall time: on a loaded machine it grows with the load.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lib import Collector, Timing, build_database, login, make_app, medians, peak_rss_mb, timed  # noqa: E402

IMPORT_ROWS = 100_000
IMPORT_REPEAT = 3
URL = "/admin/expiry_import/"


def write_workbook(path: Path, rows: int) -> None:
    """The import template's first sheet as a user fills it: every second device, a date cell each."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Devices")
    sheet.append(["Device number", "New expiry date"])
    first = date.today() + timedelta(days=500)
    for i in range(rows):
        cell = WriteOnlyCell(sheet, value=first + timedelta(days=i % 365))
        cell.number_format = "yyyy-mm-dd"
        sheet.append([f"GT{2 * i + 1:08d}", cell])
    workbook.save(path)


class WriteLocks:
    """The longest write transaction an engine runs: BEGIN IMMEDIATE (or the first write) → end."""

    def __init__(self, engine):
        self.engine, self.started, self.longest = engine, {}, 0.0

    def _execute(self, conn, cursor, statement, parameters, context, executemany):
        verb = statement.lstrip()[:15].upper()
        if id(conn) not in self.started and (verb.startswith("BEGIN IMMEDIATE") or verb.split(" ", 1)[0] in (
                "INSERT", "UPDATE", "DELETE")):
            self.started[id(conn)] = time.perf_counter()

    def _end(self, conn):
        began = self.started.pop(id(conn), None)
        if began is not None:
            self.longest = max(self.longest, time.perf_counter() - began)

    def __enter__(self):
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._execute)
        event.listen(self.engine, "commit", self._end)
        event.listen(self.engine, "rollback", self._end)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._execute)
        event.remove(self.engine, "commit", self._end)
        event.remove(self.engine, "rollback", self._end)


def csrf_token(client) -> str:
    page = client.get(URL).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def run_child(db_path: Path, xlsx_path: Path, runs: int) -> dict:
    """Both requests on fresh copies of the database, against openpyxl's read-only iteration."""
    from openpyxl import load_workbook

    from models import db

    data = xlsx_path.read_bytes()
    folder = Path(tempfile.mkdtemp(prefix="renewdesk-import-bench-"))
    found: dict[str, float] = {"longest_write_lock_s": 0.0}
    copies = iter(range(runs + 1))

    def fresh_client():
        copy = folder / f"run{next(copies)}.db"
        with sqlite3.connect(db_path) as source, sqlite3.connect(copy) as target:
            source.backup(target)  # consistent, WAL included
        app = make_app(copy)
        app.config["IMPORT_FOLDER"] = str(folder / "imports")
        client = app.test_client()
        login(client, "sales")
        return app, client

    def both_requests(app, client):
        token = csrf_token(client)
        with app.app_context():
            engine = db.engine
        with WriteLocks(engine) as locks:
            with Timing() as timing:
                import io

                answer = client.post(URL + "upload", data={"file": (io.BytesIO(data), xlsx_path.name),
                                                           "csrf_token": token},
                                     content_type="multipart/form-data")
                if answer.status_code != 200:
                    raise RuntimeError(f"the upload answered HTTP {answer.status_code}")
                page = answer.get_data(as_text=True)
                import_id = re.search(r"/commit/(\d+)", page).group(1)
                changes = int(re.search(r'data-count="changes">(\d+)<', page).group(1))
                answer = client.post(URL + f"commit/{import_id}", data={"csrf_token": token})
                if answer.status_code != 302:
                    raise RuntimeError(f"the commit answered HTTP {answer.status_code}")
        found["longest_write_lock_s"] = max(found["longest_write_lock_s"], locks.longest)
        found["rows_changed"] = changes
        with app.app_context():
            found["committed"] = db.session.execute(
                db.text("SELECT rows_changed FROM expiry_import WHERE id = :id"), {"id": int(import_id)}).scalar()
            db.session.remove()
            db.engine.dispose()
        return timing

    def baseline():
        workbook = load_workbook(xlsx_path, read_only=True)
        found["rows_read"] = sum(1 for _row in workbook.worksheets[0].iter_rows(values_only=True)) - 1
        workbook.close()

    try:
        app, client = fresh_client()
        startup = peak_rss_mb()
        job_times = [both_requests(app, client)]
        peak = peak_rss_mb()
        base_times = []
        for turn in range(runs):
            base_times.append(timed(baseline))
            if turn < runs - 1:
                job_times.append(both_requests(*fresh_client()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    cpu, wall = medians(job_times)
    base_cpu, base_wall = medians(base_times)
    return {"cpu": cpu, "wall": wall, "baseline_cpu": base_cpu, "baseline_wall": base_wall,
            "startup_mb": startup, "peak_mb": peak, **found}


def child(*args: str) -> dict:
    completed = subprocess.run([sys.executable, "-m", "bench.imports", *args], cwd=ROOT, capture_output=True,
                               text=True, env={**os.environ, "ENV_NAME": "testing"})
    if completed.returncode != 0:
        raise RuntimeError(f"bench.imports failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def bench_import(bench, app, db_path: Path, folder: Path, target, rows: int = IMPORT_ROWS,
                 runs: int = IMPORT_REPEAT) -> None:
    """Measure the import's two requests (child process) and put its figures into `bench`."""
    target("import_ratio", "≤ 1.5", lambda v, r: v <= 1.5)
    target("import_peak_mb", "< 150 above start-up", lambda v, r: v < 150)
    xlsx = folder / f"expiry-{rows}.xlsx"
    write_workbook(xlsx, rows)
    result = child(str(db_path), str(xlsx), str(runs))
    if result["rows_changed"] != rows or result["committed"] != rows or result["rows_read"] != rows:
        raise RuntimeError(f"the import previewed {result['rows_changed']} changes, committed {result['committed']}, "
                           f"openpyxl read {result['rows_read']} rows; expected {rows}")
    bench.keep("import_seconds", result["wall"])
    bench.keep("import_baseline_seconds", result["baseline_wall"])
    bench.keep("import_cpu_seconds", result["cpu"])
    bench.keep("import_baseline_cpu_seconds", result["baseline_cpu"])
    bench.keep("import_startup_mb", result["startup_mb"])
    bench.put("import_ratio", result["cpu"] / result["baseline_cpu"])
    bench.put("import_peak_mb", result["peak_mb"] - result["startup_mb"])
    bench.put("import_longest_write_lock_s", result["longest_write_lock_s"])
    bench.keep("longest_write_lock_s", max(result["longest_write_lock_s"],
                                           bench.results.get("longest_write_lock_s", 0.0)))
    print(f"     (both requests CPU {result['cpu']:.2f} s vs openpyxl read-only iteration {result['baseline_cpu']:.2f} s;"
          f" wall {result['wall']:.2f} / {result['baseline_wall']:.2f} s; {xlsx.stat().st_size / 1e6:.1f} MB file;"
          f" peak {result['peak_mb']:.0f} MB, {result['startup_mb']:.0f} MB after start-up)")


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--small":
        rows = int(argv[1]) if len(argv) > 1 else 2000
        folder = Path(tempfile.mkdtemp(prefix="renewdesk-import-small-"))
        try:
            build_database(folder / "small.db", 2 * rows)
            collector = Collector()
            bench_import(collector, None, folder / "small.db", folder, collector.target, rows=rows, runs=2)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    print(json.dumps(run_child(Path(argv[0]), Path(argv[1]), int(argv[2]))))


if __name__ == "__main__":
    main(sys.argv[1:])
