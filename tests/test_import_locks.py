"""Issue 10 item 4: an expiry import holds the write lock for its UPDATEs only; a lock timeout is a message.

On SQLite a write request's transaction starts with BEGIN IMMEDIATE, which takes the database's
one write lock. The import parses and previews outside it, then claims the import and applies
the changes a chunk at a time, each chunk one executemany UPDATE in a short transaction of its own.
"""
from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from models import db
from tests.conftest import make_device, post
from tests.test_expiry_import import URL, all_expiries, latest_import, page_text, upload, workbook_bytes

ROWS = 1200  # more than one chunk of 900


@pytest.fixture(autouse=True)
def import_folder(client, tmp_path, monkeypatch):
    monkeypatch.setitem(client.application.config, "IMPORT_FOLDER", str(tmp_path / "imports"))
    return tmp_path / "imports"


@pytest.fixture
def sales(client, login, world):
    for i in range(ROWS):
        make_device(f"LOCK{i:05d}", world.fleet, expires_on=date(2026, 1, 1))
    db.session.commit()
    login("sales")
    return client


def lock_rows() -> list[tuple[str, date]]:
    return [(f"LOCK{i:05d}", date(2028, 1, 1) + timedelta(days=i % 7)) for i in range(ROWS)]


class Statements:
    """Every statement the engine sends (with its executemany size), and every COMMIT, in order."""

    def __init__(self, engine):
        self.engine, self.log = engine, []

    def _execute(self, conn, cursor, statement, parameters, context, executemany):
        size = len(parameters) if executemany else 1
        self.log.append((" ".join(statement.split()), size))

    def _commit(self, conn):
        self.log.append(("COMMIT", 0))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._execute)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._execute)
        event.remove(self.engine, "commit", self._commit)


def is_write(statement: str) -> bool:
    return statement.split(" ", 1)[0] in ("INSERT", "UPDATE", "DELETE")


def transactions(log: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """The logged statements cut at each COMMIT, keeping only the writing transactions."""
    found, current = [], []
    for sql, n in log:
        if sql == "COMMIT":
            if any(is_write(s) for s, _n in current):
                found.append(current)
            current = []
        else:
            current.append((sql, n))
    return found


def test_commit_prepares_everything_then_updates_a_chunk_per_transaction(sales, monkeypatch):
    """The commit request reads and previews first; then one short transaction claims the import,
    and each chunk's transaction holds one executemany UPDATE of its devices and the import's progress
    (the last one also the audit event), and nothing else."""
    monkeypatch.setattr("importers.expiry.COMMIT_CHUNK", 500)
    upload(sales, workbook_bytes(lock_rows()))
    record_id = latest_import().id
    with sales.application.app_context():
        engine = db.engine  # the engine of the app serving the requests
    with Statements(engine) as statements:
        response = post(sales, URL + f"commit/{record_id}", {})
    assert response.status_code == 302
    log = statements.log
    first_write = next(i for i, (sql, _n) in enumerate(log) if is_write(sql))
    device_lookups = [i for i, (sql, _n) in enumerate(log) if sql.startswith("SELECT device.number")]
    assert device_lookups and max(device_lookups) < first_write  # the preview ran before any write
    claim, *chunks = transactions(log)
    assert [sql.split(" ", 2)[:2] for sql, _n in claim if is_write(sql)] == [["UPDATE", "expiry_import"]]
    assert [[n for sql, n in chunk if sql.startswith("UPDATE device ")] for chunk in chunks] == [[500], [500], [200]]
    for chunk in chunks:
        writes = [sql.split(" ", 2)[:2] for sql, _n in chunk if is_write(sql)]
        assert writes[:2] == [["UPDATE", "expiry_import"], ["UPDATE", "device"]]
        assert writes[2:] in ([], [["INSERT", "INTO"]])  # the last chunk: the audit event
        assert not [sql for sql, _n in chunk if sql.startswith("SELECT device.number")]
        assert len(chunk) <= 10, chunk
    if db.engine.dialect.name == "sqlite":
        begins = [i for i, (sql, _n) in enumerate(log) if sql == "BEGIN IMMEDIATE" and i < first_write]
        # the write lock is taken after the preview: the BEGIN IMMEDIATE that the writes follow
        assert max(device_lookups) < begins[-1]
    assert all_expiries()["LOCK00003"] == date(2028, 1, 4)


def database_file() -> str | None:
    url = db.engine.url
    return url.database if url.get_backend_name() == "sqlite" else None


def write_lock_is_free() -> bool:
    """Whether another connection could take the write lock right now, without waiting (SQLite;
    PostgreSQL has no database-wide write lock, row locks serialise its writers)."""
    if database_file() is None:
        return True
    other = sqlite3.connect(database_file(), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_parsing_and_previewing_hold_no_write_lock(sales, monkeypatch):
    """While the upload parses and while the commit previews, other writers can take the lock."""
    import admin_views.expiry_import as view_module

    seen = []
    read_rows, preview = view_module.read_rows, view_module.preview

    def probing_read(*args, **kwargs):
        seen.append(("parse", write_lock_is_free()))
        return read_rows(*args, **kwargs)

    def probing_preview(*args, **kwargs):
        seen.append(("preview", write_lock_is_free()))
        return preview(*args, **kwargs)

    monkeypatch.setattr(view_module, "read_rows", probing_read)
    monkeypatch.setattr(view_module, "preview", probing_preview)
    upload(sales, workbook_bytes(lock_rows()[:10]))
    post(sales, URL + f"commit/{latest_import().id}", {})
    assert seen == [("parse", True), ("preview", True), ("preview", True)]
    assert latest_import().status == "committed"


def test_a_lock_timeout_is_a_busy_message_not_an_error(sales, monkeypatch):
    upload(sales, workbook_bytes(lock_rows()[:5]))
    record_id = latest_import().id
    before = all_expiries()

    def locked(*args, **kwargs):
        raise OperationalError("UPDATE device SET expires_on=?", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr("admin_views.expiry_import.commit", locked)
    response = post(sales, URL + f"commit/{record_id}", {}, follow_redirects=True)
    assert response.status_code == 200
    assert "The database is busy with another change; nothing was changed. Try again in a moment." in page_text(response)
    assert all_expiries() == before
    assert latest_import().status == "previewed"


def test_other_operational_errors_still_raise(sales, monkeypatch):
    upload(sales, workbook_bytes(lock_rows()[:5]))

    def broken(*args, **kwargs):
        raise OperationalError("UPDATE device", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr("admin_views.expiry_import.commit", broken)
    with pytest.raises(OperationalError):
        post(sales, URL + f"commit/{latest_import().id}", {})
