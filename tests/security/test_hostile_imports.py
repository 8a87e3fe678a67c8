"""Issue 10 item 3 from the attacker's side: workbooks built to walk around the expiry import's
guards. Each is refused (or its bad rows reported) with a message saying why, and a snapshot of
every table before and after shows nothing else changed: no device, no file kept."""
from __future__ import annotations

import io
import os
import zipfile
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from conftest import post
from db_snapshot import changed_tables, snapshot
from models import ExpiryImport, db
from test_hostile_uploads import (
    IMPORT,
    MAIN_NS,
    assert_refused,
    deflate_repeated,
    upload,
    with_part,
    workbook_bytes,
)

SHEET = "xl/worksheets/sheet1.xml"


@pytest.fixture
def import_folder(web_app, tmp_path, monkeypatch) -> Path:
    monkeypatch.setitem(web_app.config, "IMPORT_FOLDER", str(tmp_path / "imports"))
    return tmp_path / "imports"


@pytest.fixture
def sales(client, login, world, import_folder):
    login("sales")
    return client


def under_the_ratio(megabytes: int) -> bytes:
    """A workbook whose sheet inflates to `megabytes` MB at about 60:1, under the 100:1 ratio check."""
    segment = b"".join(os.urandom(10).hex().encode() + b" " * 980 for _ in range(1024))
    return with_part(workbook_bytes(), SHEET, deflate_repeated([(segment, megabytes)]))


def test_200_mb_at_a_modest_ratio_is_refused_before_parsing(sales, import_folder, monkeypatch):
    content = under_the_ratio(200)
    info = zipfile.ZipFile(io.BytesIO(content)).getinfo(SHEET)
    assert len(content) < 10 * 1024 * 1024 and info.file_size < 100 * info.compress_size
    monkeypatch.setattr("admin_views.expiry_import.read_rows", lambda *a, **k: pytest.fail("parsed"))
    assert_refused(sales, import_folder, content, "expands to more than 64 MB")


def test_300k_rows_outside_the_read_columns_are_counted(sales, import_folder):
    """Rows whose only cells lie in columns the import does not read still count: refused at the cap."""
    block = b"".join(b'<row><c r="Q1" t="inlineStr"><is><t>%s</t></is></c></row>' % os.urandom(4).hex().encode()
                     for _ in range(10_000))  # random text: compresses about 10:1, under the ratio check
    head = (f'<worksheet xmlns="{MAIN_NS}"><sheetData><row r="1">'
            '<c t="inlineStr"><is><t>Device number</t></is></c>'
            '<c t="inlineStr"><is><t>New expiry date</t></is></c></row>'
            '<row><c t="inlineStr"><is><t>AC0001</t></is></c><c t="inlineStr"><is><t>2030-01-01</t></is></c></row>'
            ).encode()
    content = with_part(workbook_bytes(), SHEET,
                        deflate_repeated([(head, 1), (block, 30), (b"</sheetData></worksheet>", 1)]))
    assert_refused(sales, import_folder, content, "more than 200,000 rows")


def test_rows_on_a_hidden_sheet_are_never_imported(sales, import_folder):
    book = Workbook()
    visible = book.active
    visible.title = "Devices"
    visible.append(["Device number", "New expiry date"])
    hidden = book.create_sheet("Payload")
    hidden.append(["Device number", "New expiry date"])
    hidden.append(["AC0001", date(2030, 1, 1)])
    hidden.sheet_state = "veryHidden"
    book.move_sheet("Payload", offset=-1)  # first in the workbook, as openpyxl's worksheets[0]
    book.active = 1
    out = io.BytesIO()
    book.save(out)
    assert_refused(sales, import_folder, out.getvalue(), "hidden sheets (Payload) are never imported")


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2200-01-01"])
def test_a_date_outside_2000_to_2199_is_a_bad_row_and_nothing_changes(sales, import_folder, value):
    before = snapshot()
    answer = upload(sales, workbook_bytes([("AC0001", value)]))
    assert answer.status_code == 200
    assert f"date {value} in cell B2 is outside 2000-01-01 – 2199-12-31" in answer.get_data(as_text=True)
    assert changed_tables(before) == ["expiry_import"]


def test_a_doctype_in_the_workbook_part_is_refused(sales, import_folder):
    content = workbook_bytes()
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/workbook.xml":
                data = b'<?xml version="1.0"?><!DOCTYPE workbook [<!ENTITY a "aaaa">]>' + data.split(b"?>", 1)[-1]
            target.writestr(info.filename, data)
    assert_refused(sales, import_folder, out.getvalue(), "could not be read")


def test_a_commit_replayed_after_success_changes_nothing_more(sales, import_folder):
    upload(sales, workbook_bytes([("AC0001", date(2030, 1, 1))]))
    import_id = db.session.scalars(select(ExpiryImport.id).order_by(ExpiryImport.id.desc())).first()
    post(sales, IMPORT + f"commit/{import_id}", {})
    before = snapshot()
    answer = post(sales, IMPORT + f"commit/{import_id}", {}, follow_redirects=True)
    assert "already committed" in answer.get_data(as_text=True)
    assert changed_tables(before) == []
