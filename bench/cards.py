"""The card import benchmark (seed 002), run in a fresh child process for its peak memory.

    python -m bench.cards DB XLSX RUNS

The job is what the console does for one upload of 100,000 cards as tech support: read the
workbook (no database), sort the rows against the inventory and record the import, stage the
new rows a chunk per transaction (PINs encrypted), then commit chunk after chunk; each phase is
its own transaction and the longest one is reported (the console stays usable while it runs).
The baseline is a bare openpyxl read of the same rows plus one bulk INSERT of them. The cards
are removed again (rollback_import) between runs, untimed. Prints one JSON object last.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lib import medians, make_app, peak_rss_mb, timed  # noqa: E402

ROWS = 100_000


def write_card_workbook(path: Path, rows: int = ROWS, plan: str = "SIM-39") -> None:
    """A filled card template: unique ICCIDs, phones and PINs none of the demo's cards use."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Cards")
    sheet.append(["ICCID", "Phone number", "PIN", "Plan", "Valid until"])
    valid = date.today() + timedelta(days=730)
    for n in range(rows):
        sheet.append([f"8986{22_000_000_000_000 + n:016d}", f"18{n:09d}", f"B{n:06d}", plan, valid])
    workbook.save(path)


def run_card_import(db_path: Path, xlsx_path: Path, runs: int) -> dict:
    from openpyxl import load_workbook
    from sqlalchemy import event, select, text

    from actions.crypto import vault
    from extensions import WRITE_INTENT
    from importers.cards import (
        CHUNK, commit_chunk, existing_keys, read_upload, rollback_import, sort_upload, stage_rows,
    )
    from models import CardImport, User, db

    app = make_app(db_path)
    data = xlsx_path.read_bytes()
    found: dict[str, float] = {"longest_write_s": 0.0}
    WRITE_INTENT.set(True)  # as a POST request: every transaction begins immediately on SQLite
    with app.app_context():
        support_id = db.session.scalar(select(User.id).where(User.username == "support"))
        startup = peak_rss_mb()
        keys = vault()

        opened: list[float] = []
        measuring = [False]  # the job's transactions only (not the baseline's, nor the cleanup's)

        @event.listens_for(db.engine, "begin")
        def began(_connection):  # every transaction of the job begins immediately: each one holds the lock
            opened.append(time.perf_counter())

        @event.listens_for(db.engine, "commit")
        @event.listens_for(db.engine, "rollback")
        def ended(_connection):
            started = opened.pop() if opened else None
            if started is not None and measuring[0]:
                found["longest_write_s"] = max(found["longest_write_s"], time.perf_counter() - started)

        def write(step):
            result = step()
            db.session.commit()
            return result

        def job():
            measuring[0] = True
            db.session.remove()
            support = db.session.get(User, support_id)
            db.session.commit()  # as the console does: reading the workbook holds no lock
            upload = read_upload(keys, data, xlsx_path.name, date.today(), max_bytes=64 * 1024 * 1024)
            in_db = write(lambda: existing_keys(db.session, upload, release=db.session.rollback))
            batch, rows = write(lambda: sort_upload(db.session, support, upload, date.today(), in_db=in_db))
            for start in range(0, len(rows), CHUNK):
                write(lambda: stage_rows(db.session, keys, rows[start:start + CHUNK]))
            done = 0
            while done < batch.rows_new:
                done, _total = write(lambda: commit_chunk(db.session, support, batch))
            found["rows_committed"] = done
            found["batch_id"] = batch.id
            measuring[0] = False

        def cleanup():
            db.session.remove()
            batch = db.session.get(CardImport, int(found["batch_id"]))
            rollback_import(db.session, db.session.get(User, support_id), batch)
            db.session.commit()

        def baseline():
            workbook = load_workbook(xlsx_path, read_only=True)
            rows = [tuple(str(v) for v in row) for row in workbook.worksheets[0].iter_rows(min_row=2, values_only=True)]
            workbook.close()
            with db.engine.begin() as connection:
                connection.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS bench_cards "
                                           "(iccid TEXT, phone TEXT, pin TEXT, plan TEXT, valid_until TEXT)")
                connection.exec_driver_sql("INSERT INTO bench_cards VALUES (?, ?, ?, ?, ?)", rows)
                connection.execute(text("DELETE FROM bench_cards"))
            found["rows_read"] = len(rows)

        job_times, base_times = [timed(job)], []
        peak = peak_rss_mb()
        cleanup()
        for turn in range(runs):
            base_times.append(timed(baseline))
            if turn < runs - 1:
                job_times.append(timed(job))
                cleanup()
        cpu, wall = medians(job_times)
        base_cpu, base_wall = medians(base_times)
    return {"cpu": cpu, "wall": wall, "baseline_cpu": base_cpu, "baseline_wall": base_wall, "peak_mb": peak,
            "startup_mb": startup, **found}


def bench_card_import(bench, db_path: Path, folder: Path, child, runs: int = 2, rows: int = ROWS) -> None:
    """The card import section of `make bench` (run.py passes its Bench, its child-process runner and the size)."""
    xlsx = folder / "cards.xlsx"
    write_card_workbook(xlsx, rows)
    result = child(str(db_path), str(xlsx), str(runs))
    if result["rows_committed"] != rows or result["rows_read"] != rows:
        raise RuntimeError(f"the card import committed {result['rows_committed']} cards, read {result['rows_read']}")
    bench.keep("card_import_seconds", result["wall"])
    bench.keep("card_import_baseline_seconds", result["baseline_wall"])
    bench.put("card_import_100k_ratio", result["cpu"] / result["baseline_cpu"])
    bench.put("card_import_peak_mb", result["peak_mb"])
    bench.put("card_import_longest_write_s", result["longest_write_s"])
    print(f"     (CPU {result['cpu']:.2f} s vs bare read + one INSERT {result['baseline_cpu']:.2f} s; wall "
          f"{result['wall']:.2f} / {result['baseline_wall']:.2f} s; longest write {result['longest_write_s']:.2f} s; "
          f"{result['startup_mb']:.0f} MB after start-up)")


if __name__ == "__main__":
    print(json.dumps(run_card_import(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))))
