"""Issue 10 item 3: the expiry import's guards cannot be walked around.

Bytes inflated (declared and actually read), rows counted in every column and refused the
moment the cap is passed, hidden sheets never read, dates outside 2000–2199 refused; and a
date stored before these rules never makes a page answer 500.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from datetime import date

import pytest
from openpyxl import Workbook
from sqlalchemy import select, update

from actions import DomainError
from actions.devices import set_expiry
from importers import expiry
from importers.expiry import ImportRejected, check_archive, read_rows
from models import Device, ExpiryImport, db
from tests.conftest import post
from tests.test_expiry_import import (
    URL,
    all_expiries,
    latest_import,
    page_text,
    rewrite_part,
    upload,
    workbook_bytes,
)

SHEET = "xl/worksheets/sheet1.xml"


@pytest.fixture(autouse=True)
def import_folder(client, tmp_path, monkeypatch):
    monkeypatch.setitem(client.application.config, "IMPORT_FOLDER", str(tmp_path / "imports"))
    return tmp_path / "imports"


@pytest.fixture
def sales(client, login, world):
    login("sales")
    return client


def refused_on_upload(client, content: bytes, message: str) -> None:
    """Uploading `content` is refused as a whole with `message`; no device changes."""
    before = all_expiries()
    response = upload(client, content)
    assert response.status_code == 302, page_text(response)[:2000]
    assert message in page_text(client.get(URL))
    record = latest_import()
    assert record.status == "failed" and message in record.errors
    assert all_expiries() == before


# --- bytes inflated -------------------------------------------------------------------------------


def inflating_workbook(inflated_bytes: int) -> bytes:
    """A valid workbook (header + AC0001) whose row carries, in an unread column, a text that
    inflates to `inflated_bytes` at about 40:1: under the ratio check, over the size limit."""
    good = workbook_bytes([("AC0001", date(2030, 1, 1))])
    source = zipfile.ZipFile(io.BytesIO(good))
    sheet = source.read(SHEET)
    before_cell, after = sheet.split(b'<c r="B2"', 1)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename != SHEET:
                target.writestr(info.filename, source.read(info.filename))
        with target.open(SHEET, "w", force_zip64=True) as entry:
            entry.write(before_cell)
            entry.write(b'<c r="Z2" t="inlineStr"><is><t>')
            block = b" " * 980
            written = 0
            while written < inflated_bytes:
                entry.write(os.urandom(10).hex().encode() + block)
                written += 1000
            entry.write(b"</t></is></c>")
            entry.write(b'<c r="B2"' + after)
    return out.getvalue()


def test_a_workbook_inflating_past_the_limit_under_the_ratio_is_refused_before_parsing(sales, monkeypatch):
    content = inflating_workbook(70 * 1024 * 1024)
    info = zipfile.ZipFile(io.BytesIO(content)).getinfo(SHEET)
    assert len(content) < 10 * 1024 * 1024 and info.file_size < 100 * info.compress_size  # under the ratio

    def must_not_parse(*args, **kwargs):
        raise AssertionError("the workbook was parsed")

    monkeypatch.setattr("admin_views.expiry_import.read_rows", must_not_parse)
    refused_on_upload(sales, content, "expands to more than 64 MB")


def test_bytes_actually_inflated_are_counted_against_a_hard_cap(app):
    """Whatever the declared sizes say, reading stops once the bytes inflated pass the limit."""
    content = workbook_bytes([(f"AC{i:05d}", date(2030, 1, 1)) for i in range(3000)])
    total = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(content)).infolist())
    check_archive(content, max_uncompressed=total)
    assert read_rows(content, max_uncompressed=total).rows_total == 3000
    with pytest.raises(ImportRejected, match="expands to more than"):
        read_rows(content, max_uncompressed=total - 60_000)


# --- rows: every column counted, reading stops at the cap ------------------------------------------


def far_column_rows(count: int, corrupt_after: int | None = None) -> bytes:
    """Header + one device row, then `count` rows whose only cell is in column Z (not read);
    with `corrupt_after`, the sheet's XML is cut off (broken) after that many of them."""
    content = workbook_bytes([("AC0001", date(2030, 1, 1))])

    def add_rows(xml: bytes) -> bytes:
        rows = b"".join(b'<row r="%d"><c r="Z%d" t="inlineStr"><is><t>x</t></is></c></row>' % (n, n)
                        for n in range(3, 3 + count))
        if corrupt_after is not None:
            cut = rows.index(b'<row r="%d">' % (3 + corrupt_after))
            return xml.replace(b"</sheetData>", rows[:cut] + b"<row <<broken")
        return xml.replace(b"</sheetData>", rows + b"</sheetData>")

    return rewrite_part(content, SHEET, add_rows)


def test_rows_with_cells_only_outside_the_read_columns_count_toward_the_cap(sales, monkeypatch):
    monkeypatch.setitem(sales.application.config, "IMPORT_MAX_ROWS", 100)
    refused_on_upload(sales, far_column_rows(150), "more than 100 rows")
    assert upload(sales, far_column_rows(99)).status_code == 200  # 1 device row + 99 others: the limit


def test_reading_stops_the_moment_the_cap_is_passed(app):
    """The sheet is broken after the 120th extra row: a reader that stopped at row 101 never sees it."""
    content = far_column_rows(150, corrupt_after=120)
    with pytest.raises(ImportRejected, match="could not be read"):
        read_rows(content, max_rows=1000)
    with pytest.raises(ImportRejected, match="more than 100 rows"):
        read_rows(content, max_rows=100)


# --- hidden sheets ----------------------------------------------------------------------------------


def two_sheet_workbook(hidden_rows, visible_rows, hidden_first: bool = True) -> bytes:
    workbook = Workbook()
    first = workbook.active
    second = workbook.create_sheet("Visible" if hidden_first else "Hidden")
    hidden, visible = (first, second) if hidden_first else (second, first)
    hidden.title, visible.title = "Hidden", "Visible"
    for sheet, rows in ((hidden, hidden_rows), (visible, visible_rows)):
        sheet.append(["Device number", "New expiry date"])
        for row in rows:
            sheet.append(list(row))
    hidden.sheet_state = "hidden"
    workbook.active = workbook.worksheets.index(visible)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_data_only_on_a_hidden_sheet_is_refused_saying_so(sales):
    content = two_sheet_workbook([("AC0001", "2030-01-01")], [])
    refused_on_upload(sales, content, "hidden sheets (Hidden) are never imported")


def test_only_the_visible_sheet_is_read(sales):
    content = two_sheet_workbook([("AC0001", "2030-01-01")], [("AC0002", "2031-02-02")])
    parsed = read_rows(content)
    assert [(r.number, r.expires_on) for r in parsed.rows] == [("AC0002", date(2031, 2, 2))]
    response = upload(sales, content)
    assert response.status_code == 200
    post(sales, URL + f"commit/{latest_import().id}", {})
    expiries = all_expiries()
    assert expiries["AC0002"] == date(2031, 2, 2) and expiries["AC0001"] != date(2030, 1, 1)


# --- the date window ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [date(9999, 12, 31), "9999-12-31", date(1999, 12, 31), "2200-01-01"])
def test_dates_outside_2000_to_2199_are_bad_rows_with_their_row_number(sales, value):
    before = all_expiries()
    response = upload(sales, workbook_bytes([("AC0001", date(2030, 1, 1)), ("AC0002", value)]))
    assert response.status_code == 200
    page = page_text(response)
    errors = re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", page)
    assert ("3", f"date {value if isinstance(value, str) else value.isoformat()} in cell B3 is outside "
                 "2000-01-01 – 2199-12-31") in errors
    assert 'id="rd-commit"' not in page and latest_import().status == "failed"
    assert all_expiries() == before


def test_window_edges_are_accepted(app, world):
    parsed = read_rows(workbook_bytes([("AC0001", date(2000, 1, 1)), ("AC0002", "2199-12-31")]))
    assert parsed.errors == [] and [r.expires_on for r in parsed.rows] == [date(2000, 1, 1), date(2199, 12, 31)]


def test_east_asian_builtin_date_formats_are_dates(app, world):
    """numFmtId 31 (yyyy"年"m"月"d"日", built in, not declared in the file) is a date format."""
    content = workbook_bytes([("AC0001", date(2030, 1, 1))])

    def builtin_31(xml: bytes) -> bytes:
        xml = re.sub(rb"<numFmts.*?</numFmts>", b"", xml)
        return xml.replace(b'numFmtId="164"', b'numFmtId="31"')

    patched = rewrite_part(content, "xl/styles.xml", builtin_31)
    assert b"numFmt " not in zipfile.ZipFile(io.BytesIO(patched)).read("xl/styles.xml")
    assert read_rows(patched).rows[0].expires_on == date(2030, 1, 1)


def test_stored_date_beyond_the_window_does_not_break_the_renewal_center(client, login, world):
    device = world.devices["AC0001"]
    db.session.execute(update(Device).where(Device.id == device.id).values(expires_on=date(9999, 12, 31)))
    db.session.commit()
    login("customer")
    response = client.get("/admin/renewal_center/?window=all&months=12")
    assert response.status_code == 200
    page = page_text(response)
    assert "AC0001" in page and "9999-12-31 cannot be renewed" in page
    response = post(client, "/admin/renewal_center/renew/",
                    [("company_id", str(world.acme.id)), ("months", "12"), ("rowid", str(device.id))],
                    follow_redirects=True)
    assert response.status_code == 200
    assert "the new expiry would be after 2199-12-31 for: AC0001" in page_text(response)


def test_expiry_maintenance_refuses_dates_outside_the_window(app, world):
    device = world.devices["AC0001"]
    with pytest.raises(DomainError, match="AC0001: the expiry date 9999-12-31 is outside"):
        set_expiry(db.session, world.users["support"], device, date(9999, 12, 31))
    db.session.rollback()
    assert db.session.scalar(select(Device.expires_on).where(Device.id == device.id)) != date(9999, 12, 31)


def test_parsed_rows_are_kept_and_the_commit_does_not_parse_again(sales, monkeypatch, import_folder):
    upload(sales, workbook_bytes([("AC0001", date(2030, 1, 31))]))
    record = latest_import()
    assert (import_folder / f"{record.id}.rows.json").is_file()

    def must_not_parse(*args, **kwargs):
        raise AssertionError("the commit parsed the workbook again")

    monkeypatch.setattr(expiry, "read_rows", must_not_parse)
    monkeypatch.setattr("admin_views.expiry_import.read_rows", must_not_parse)
    post(sales, URL + f"commit/{record.id}", {})
    assert all_expiries()["AC0001"] == date(2030, 1, 31)
    assert db.session.get(ExpiryImport, record.id).status == "committed"
