"""Benchmarks that run in a fresh child process, so that its peak memory is theirs alone.

    python -m bench.jobs export DB RUNS        the device list's xlsx export, and a bare openpyxl loop

Each prints one JSON object as its last line. The measured job runs first, then the peak
resident set size is read (VmHWM, see bench.lib.peak_rss_mb), then the bare baseline and the
job alternate for the remaining runs (so a change of load on the machine hits both). The peak
includes the interpreter and the app's imports: `startup_mb` says how much that is.
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lib import login, make_app, medians, peak_rss_mb, timed  # noqa: E402


def alternate(job, baseline, runs: int) -> dict:
    """Run job once, read the peak, then baseline and job by turns; medians of each."""
    job_times, base_times = [timed(job)], []
    peak = peak_rss_mb()
    for turn in range(runs):
        base_times.append(timed(baseline))
        if turn < runs - 1:
            job_times.append(timed(job))
    cpu, wall = medians(job_times)
    base_cpu, base_wall = medians(base_times)
    return {"cpu": cpu, "wall": wall, "baseline_cpu": base_cpu, "baseline_wall": base_wall, "peak_mb": peak}


EXPORT_SQL = (
    "SELECT d.number, d.name, d.device_type, c.name, d.status, d.expires_on, p.code || ' ' || p.name "
    "FROM device d JOIN company c ON c.id = d.company_id LEFT JOIN package p ON p.id = d.package_id "
    "ORDER BY d.expires_on, d.id"
)


def run_export(db_path: Path, runs: int) -> dict:
    """GET /admin/device/export/xlsx/ as tech support; baseline: one SELECT, then a bare write-only loop."""
    from models import DEVICE_STATUSES, db

    app = make_app(db_path)
    client = app.test_client()
    login(client, "support")
    startup = peak_rss_mb()
    found: dict[str, int] = {}

    first_bytes: list[float] = []

    def job():
        started = time.perf_counter()
        response = client.get("/admin/device/export/xlsx/", buffered=False)
        if response.status_code != 200:
            raise RuntimeError(f"the export answered HTTP {response.status_code}")
        size = 0
        for chunk in response.response:
            if chunk and not size:
                first_bytes.append(time.perf_counter() - started)
            size += len(chunk)
        found["bytes"] = size
        response.close()

    # The requests push their own app contexts; the baseline pushes one itself, as they do.
    with app.app_context():
        labels = {code: str(label) for code, label in DEVICE_STATUSES.items()}
    headers = ["Device number", "Device name", "Device type", "Company", "Status", "Expires on", "Renewal package"]

    def fetch() -> list:
        with app.app_context(), db.engine.connect() as conn:
            return conn.exec_driver_sql(EXPORT_SQL).fetchall()

    def baseline():
        # Imported here, after the peak is read: openpyxl is the baseline's, not the serving process's.
        from openpyxl import Workbook

        fetched = fetch()
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("Devices")
        sheet.append(headers)
        for number, name, kind, company, status, expires_on, package in fetched:
            sheet.append([number, name, kind, company, labels[status], date.fromisoformat(expires_on), package])
        with tempfile.TemporaryFile() as out:
            workbook.save(out)
            found["baseline_bytes"] = out.tell()
        found["rows"] = len(fetched)

    result = alternate(job, baseline, runs)
    select_cpu, _wall = medians([timed(fetch)])
    return {**result, **found, "startup_mb": startup, "baseline_select_cpu": select_cpu,
            "first_byte_s": statistics.median(first_bytes)}


def main(argv: list[str]) -> None:
    job = argv[0]
    if job == "export":
        result = run_export(Path(argv[1]), int(argv[2]))
    else:
        raise SystemExit(f"unknown job {job!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
