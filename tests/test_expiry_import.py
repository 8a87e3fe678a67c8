"""批量设置过期时间: template, upload, preview, commit; every bad-row reason; hostile files; access."""
from __future__ import annotations

import io
import re
import time
import zipfile
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from actions import NotAllowed
from actions.audit import record as audit_record
from importers.expiry import (
    ImportRejected,
    build_template,
    check_archive,
    commit,
    error_texts,
    preview,
    read_rows,
)
from models import AuditEvent, Device, ExpiryImport, db
from tests.conftest import post

URL = "/admin/expiry_import/"
HEADERS = ("Device number", "New expiry date")


def workbook_bytes(rows, headers=HEADERS, date_format: str | None = "yyyy-mm-dd") -> bytes:
    """An xlsx whose first sheet has `headers` on row 1 and `rows` below (None = empty cell)."""
    workbook = Workbook()
    sheet = workbook.active
    if headers is not None:
        sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    if date_format:
        for (cell,) in sheet.iter_rows(min_row=2, min_col=2, max_col=2):
            if isinstance(cell.value, (date, datetime)):
                cell.number_format = date_format
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(client, content: bytes, filename: str = "expiry.xlsx"):
    return post(client, URL + "upload", {"file": (io.BytesIO(content), filename)},
                content_type="multipart/form-data")


def expiry_of(number: str) -> date:
    db.session.expire_all()
    return db.session.scalar(select(Device.expires_on).where(Device.number == number))


def all_expiries() -> dict[str, date]:
    db.session.expire_all()
    return dict(db.session.execute(select(Device.number, Device.expires_on)).all())


def latest_import() -> ExpiryImport:
    db.session.expire_all()
    return db.session.scalars(select(ExpiryImport).order_by(ExpiryImport.id.desc())).first()


def page_text(response) -> str:
    return response.get_data(as_text=True)


def summary(page: str) -> dict[str, int]:
    """The preview's counts: total, changes, unchanged, failed."""
    return {key: int(value) for key, value in re.findall(r'data-count="(\w+)">(\d+)<', page)}


@pytest.fixture(autouse=True)
def import_folder(client, tmp_path, monkeypatch):
    """Uploads are kept in a temporary folder, not in the instance folder."""
    monkeypatch.setitem(client.application.config, "IMPORT_FOLDER", str(tmp_path / "imports"))
    return tmp_path / "imports"


@pytest.fixture
def sales(client, login, world):
    login("sales")
    return client


# --- the template ------------------------------------------------------------------------------


def test_template_downloads_with_header_row_instructions_and_date_format(sales):
    response = sales.get(URL + "template")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in response.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(response.data))
    sheet = workbook.worksheets[0]
    assert [c.value for c in sheet[1]] == list(HEADERS)
    assert sheet.max_row == 1  # no example rows that would be imported by mistake
    assert sheet.column_dimensions["B"].number_format == "yyyy-mm-dd"
    assert sheet.column_dimensions["A"].number_format == "@"
    assert "Instructions" in workbook.sheetnames
    text = " ".join(str(v) for (v,) in workbook["Instructions"].iter_rows(values_only=True) if v)
    assert "YYYY-MM-DD" in text and "formula" in text


def test_chinese_template_has_chinese_headers_and_reads_back(app):
    sheet = load_workbook(io.BytesIO(build_template("zh_Hans_CN"))).worksheets[0]
    assert [c.value for c in sheet[1]] == ["设备号", "到期时间"]


def test_vietnamese_template_has_vietnamese_headers_and_reads_back(app):
    """vi: the headers in Vietnamese, named in the instructions; read back, typed with decomposed marks too."""
    with app.test_request_context(headers={"Accept-Language": "vi"}):
        workbook = load_workbook(io.BytesIO(build_template("vi")))
    sheet = workbook.worksheets[0]
    assert [c.value for c in sheet[1]] == ["Số thiết bị", "Ngày hết hạn mới"]
    instructions = " ".join(str(v) for (v,) in workbook.worksheets[1].iter_rows(values_only=True) if v)
    assert "Số thiết bị / Ngày hết hạn mới" in instructions
    sheet.append(["AC0001", date(2030, 1, 31)])
    out = io.BytesIO()
    workbook.save(out)
    assert [(r.number, r.expires_on) for r in read_rows(out.getvalue()).rows] == [("AC0001", date(2030, 1, 31))]
    import unicodedata

    typed = [unicodedata.normalize("NFD", "số thiết bị"), unicodedata.normalize("NFD", "NGÀY HẾT HẠN")]
    parsed = read_rows(workbook_bytes([("AC0001", "2030-01-31")], headers=typed))
    assert parsed.errors == [] and [r.number for r in parsed.rows] == ["AC0001"]


def test_filled_template_imports(app, world):
    workbook = load_workbook(io.BytesIO(build_template()))
    workbook.worksheets[0].append(["AC0001", date(2030, 1, 31)])
    out = io.BytesIO()
    workbook.save(out)
    parsed = read_rows(out.getvalue())
    assert parsed.errors == [] and [(r.row_no, r.number, r.expires_on) for r in parsed.rows] == [
        (2, "AC0001", date(2030, 1, 31))]


# --- the happy path through HTTP ------------------------------------------------------------------


def test_upload_previews_old_and_new_then_commit_applies_everything(sales, world, import_folder):
    old = expiry_of("AC0001")
    before = all_expiries()
    content = workbook_bytes([
        ("AC0001", date(2030, 1, 31)),
        ("NO0002", "2030-02-28"),
        ("GX0001", "2030/3/1"),
        ("SO0001", expiry_of("SO0001")),  # already has that date: unchanged
    ])
    response = upload(sales, content)
    assert response.status_code == 200
    page = page_text(response)
    assert "AC0001" in page and old.isoformat() in page and "2030-01-31" in page
    assert summary(page) == {"total": 4, "changes": 3, "unchanged": 1, "failed": 0}
    assert all_expiries() == before  # the preview changes nothing

    record = latest_import()
    assert (record.status, record.rows_total, record.rows_changed, record.rows_failed) == ("previewed", 4, 3, 0)
    assert record.filename == "expiry.xlsx"
    assert (import_folder / f"{record.file_sha256}.xlsx").read_bytes() == content

    response = post(sales, URL + f"commit/{record.id}", {}, follow_redirects=True)
    assert response.status_code == 200
    assert "3 devices have a new expiry date" in page_text(response)
    expected = before | {"AC0001": date(2030, 1, 31), "NO0002": date(2030, 2, 28), "GX0001": date(2030, 3, 1)}
    assert all_expiries() == expected

    record = latest_import()
    assert (record.status, record.rows_changed) == ("committed", 3)
    assert record.committed_at is not None
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "expiry_import")).one()
    assert event.model == "device" and event.actor_name == "sales"
    assert f",{world.devices['AC0001'].id}," in event.ids
    assert f"AC0001: {old} → 2030-01-31" in event.summary

    index = page_text(sales.get(URL))
    assert "expiry.xlsx" in index and "Committed" in index


def test_reuploading_the_same_file_shows_no_changes(sales, world):
    content = workbook_bytes([("AC0001", date(2030, 1, 31)), ("AC0002", date(2030, 2, 1))])
    upload(sales, content)
    post(sales, URL + f"commit/{latest_import().id}", {})
    assert expiry_of("AC0001") == date(2030, 1, 31)

    page = page_text(upload(sales, content))
    assert summary(page) == {"total": 2, "changes": 0, "unchanged": 2, "failed": 0}
    assert 'id="rd-commit"' not in page
    second = latest_import()
    assert (second.status, second.rows_changed) == ("previewed", 0)
    response = post(sales, URL + f"commit/{second.id}", {}, follow_redirects=True)
    assert "Nothing to change" in page_text(response)
    assert db.session.scalar(select(db.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "expiry_import")) == 1


def test_second_commit_of_an_import_is_refused(sales, world):
    upload(sales, workbook_bytes([("AC0001", date(2030, 1, 31))]))
    record_id = latest_import().id
    post(sales, URL + f"commit/{record_id}", {})
    db.session.execute(db.update(Device).where(Device.number == "AC0001").values(expires_on=date(2031, 5, 5)))
    db.session.commit()

    response = post(sales, URL + f"commit/{record_id}", {}, follow_redirects=True)
    assert "already committed" in page_text(response)
    assert expiry_of("AC0001") == date(2031, 5, 5)


def test_commit_revalidates_the_stored_file(sales, world):
    """A device deleted between preview and commit makes the import fail; nothing changes."""
    upload(sales, workbook_bytes([("AC0001", date(2030, 1, 31)), ("AC0002", date(2030, 1, 31))]))
    record_id = latest_import().id
    db.session.delete(db.session.get(Device, world.devices["AC0002"].id))
    db.session.commit()

    response = post(sales, URL + f"commit/{record_id}", {})
    page = page_text(response)
    assert "unknown device AC0002" in page
    assert expiry_of("AC0001") != date(2030, 1, 31)
    assert latest_import().status == "failed"
    response = post(sales, URL + f"commit/{record_id}", {}, follow_redirects=True)
    assert "cannot be committed" in page_text(response)


def test_preview_page_can_be_reopened(sales, world):
    upload(sales, workbook_bytes([("AC0001", date(2030, 1, 31))]))
    record = latest_import()
    page = page_text(sales.get(URL + f"preview/{record.id}"))
    assert "2030-01-31" in page and 'id="rd-commit"' in page
    assert sales.get(URL + "preview/999999").status_code == 404


def test_commit_applies_more_changes_than_one_chunk(app, world):
    """More changes than one chunk, several dates: all applied by the set-based updates."""
    from tests.conftest import make_device

    for i in range(1, 1901):
        make_device(f"BULK{i:05d}", world.fleet, expires_on=date(2026, 1, 1))
    db.session.commit()
    rows = [(f"BULK{i:05d}", date(2027, 1, 1) + timedelta(days=i % 3)) for i in range(1, 1901)]
    parsed = read_rows(workbook_bytes(rows))
    actor = world.users["sales"]
    report = preview(db.session, actor, parsed)
    assert len(report.changes) == 1900 and report.ok
    record = ExpiryImport(actor_id=actor.id, filename="bulk.xlsx", file_sha256="0" * 64)
    db.session.add(record)
    db.session.flush()
    assert commit(db.session, actor, report, record) == 1900
    db.session.commit()
    expiries = all_expiries()
    assert all(expiries[n] == d for n, d in rows)


def test_a_failed_chunk_changes_nothing_and_the_import_resumes(sales, world, monkeypatch):
    """A failure inside a chunk (here: writing the audit event, in the last one) rolls that chunk back;
    the import stays "being applied" and committing it again, at once, finishes it."""
    before = all_expiries()
    upload(sales, workbook_bytes([("AC0001", date(2030, 1, 31)), ("GX0002", date(2030, 2, 1))]))
    record_id = latest_import().id

    def broken_record(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr("importers.expiry.record", broken_record)
    with pytest.raises(RuntimeError):
        post(sales, URL + f"commit/{record_id}", {})
    assert all_expiries() == before
    record = latest_import()
    assert (record.status, record.rows_applied, record.progress_at) == ("committing", 0, None)
    monkeypatch.setattr("importers.expiry.record", audit_record)
    response = post(sales, URL + f"commit/{record_id}", {}, follow_redirects=True)
    assert "2 devices have a new expiry date" in page_text(response)
    assert expiry_of("GX0002") == date(2030, 2, 1)
    assert latest_import().status == "committed"


# --- every bad-row reason: its row number, and nothing changed ------------------------------------


def assert_bad_row(client, rows, row_no: int, reason: str, headers=HEADERS):
    before = all_expiries()
    response = upload(client, workbook_bytes(rows, headers=headers))
    assert response.status_code == 200
    page = page_text(response)
    match = re.search(r'id="rd-errors".*?</table>', page, re.S)
    assert match, page
    errors = re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", match.group(0))
    assert any(int(n) == row_no and reason in text for n, text in errors), errors
    assert 'id="rd-commit"' not in page
    record = latest_import()
    assert record.status == "failed" and record.rows_failed >= 1
    assert f"row {row_no}: " in record.errors
    post(client, URL + f"commit/{record.id}", {})
    assert all_expiries() == before
    return errors


def test_unknown_device_is_a_bad_row(sales):
    assert_bad_row(sales, [("AC0001", date(2030, 1, 1)), ("NOPE-1", date(2030, 1, 1))], 3, "unknown device NOPE-1")


def test_duplicate_in_file_is_a_bad_row(sales):
    errors = assert_bad_row(sales, [("AC0001", date(2030, 1, 1)), ("AC0002", date(2030, 1, 1)),
                                    ("AC0001", date(2030, 2, 1))], 4, "duplicate in file")
    assert "also on row 2" in errors[0][1]


def test_unparseable_date_is_a_bad_row(sales):
    assert_bad_row(sales, [("AC0001", "next year")], 2, "unparseable date")


def test_number_that_is_not_a_date_cell_is_unparseable(sales):
    assert_bad_row(sales, [("AC0001", date(2030, 1, 1)), ("AC0002", 20300101)], 3, "unparseable date")


def test_impossible_date_is_a_bad_row(sales):
    assert_bad_row(sales, [("AC0001", date(2030, 1, 1)), ("AC0002", "2026-02-30")], 3, "impossible date 2026-02-30")


@pytest.mark.parametrize("row, what", [(("AC0001", None), "new expiry date"), ((None, date(2030, 1, 1)), "device number"),
                                       (("   ", date(2030, 1, 1)), "device number")])
def test_empty_cell_is_a_bad_row(sales, row, what):
    errors = assert_bad_row(sales, [("AC0002", date(2030, 1, 1)), row], 3, "empty cell")
    assert what in errors[-1][1]


@pytest.mark.parametrize("headers", [("Number", "Date"), ("Device number", "Device number"), None])
def test_wrong_headers_are_a_bad_row(sales, headers):
    rows = [("AC0001", date(2030, 1, 1))]
    assert_bad_row(sales, rows, 1, "wrong headers", headers=headers)


@pytest.mark.parametrize("row", [("AC0001", "=DATE(2030,1,1)"), ('=CONCAT("AC","0001")', date(2030, 1, 1))])
def test_formula_cell_is_a_bad_row(sales, row):
    assert_bad_row(sales, [("AC0002", date(2030, 1, 1)), row], 3, "formula in cell")


def test_formula_with_a_cached_value_is_still_a_bad_row(app, world):
    """Excel stores a formula's last result beside it; that value must not be imported as typed."""
    content = workbook_bytes([("=TRIM(C2)", date(2030, 1, 1))])
    patched = rewrite_part(content, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(
        b'<c r="A2"><f>TRIM(C2)</f><v /></c>', b'<c r="A2" t="str"><f>TRIM(C2)</f><v>AC0001</v></c>'))
    assert b"<v>AC0001</v>" in zipfile.ZipFile(io.BytesIO(patched)).read("xl/worksheets/sheet1.xml")
    parsed = read_rows(patched)
    assert parsed.rows == []
    assert error_texts(parsed.errors) == [(2, "formula in cell A2: type the device number, not a formula")]


def test_out_of_scope_device_is_a_bad_row_for_a_customer_actor(app, world):
    """Sales see every company; a customer role (if ever allowed) gets "out of scope"."""
    parsed = read_rows(workbook_bytes([("NO0001", date(2030, 1, 1)), ("SO0001", date(2030, 1, 1)),
                                       ("GX0001", date(2030, 1, 1))]))
    report = preview(db.session, world.users["north"], parsed)
    assert [change.number for change in report.changes] == ["NO0001"]
    assert [(row_no, reason.split(":")[0]) for row_no, reason in error_texts(report.errors)] == [
        (3, "out of scope"), (4, "out of scope")]
    assert preview(db.session, world.users["sales"], parsed).ok


def test_commit_refuses_roles_other_than_sales_and_admin(app, world):
    parsed = read_rows(workbook_bytes([("NO0001", date(2030, 1, 1))]))
    report = preview(db.session, world.users["north"], parsed)
    record = ExpiryImport(actor_id=world.users["north"].id, filename="x.xlsx", file_sha256="0" * 64)
    db.session.add(record)
    db.session.flush()
    with pytest.raises(NotAllowed):
        commit(db.session, world.users["north"], report, record)


def test_commit_refuses_a_report_with_bad_rows(app, world):
    parsed = read_rows(workbook_bytes([("AC0001", date(2030, 1, 1)), ("NOPE", date(2030, 1, 1))]))
    actor = world.users["sales"]
    report = preview(db.session, actor, parsed)
    record = ExpiryImport(actor_id=actor.id, filename="x.xlsx", file_sha256="0" * 64)
    db.session.add(record)
    db.session.flush()
    with pytest.raises(ImportRejected):
        commit(db.session, actor, report, record)
    assert expiry_of("AC0001") != date(2030, 1, 1)


def test_blank_rows_are_skipped_and_row_numbers_kept(app, world):
    parsed = read_rows(workbook_bytes([("AC0001", date(2030, 1, 1)), (None, None), ("", "  "),
                                       ("NOPE", date(2030, 1, 1))]))
    assert parsed.rows_total == 2
    report = preview(db.session, world.users["sales"], parsed)
    assert error_texts(report.errors) == [(5, "unknown device NOPE")]


def test_headers_in_chinese_any_order_with_extra_columns(app, world):
    content = workbook_bytes([("note", "2030-01-02", "AC0001")], headers=("备注", " 到期时间 ", "设备号"))
    parsed = read_rows(content)
    assert parsed.errors == [] and parsed.rows[0][1:] == ("AC0001", date(2030, 1, 2))


def test_numeric_device_numbers_and_datetime_cells_are_read(app, world):
    parsed = read_rows(workbook_bytes([(123456, datetime(2030, 1, 2, 0, 0))]))
    assert parsed.rows[0][1:] == ("123456", date(2030, 1, 2))


# --- files refused as a whole -----------------------------------------------------------------


def assert_refused(client, content: bytes, message: str, filename: str = "expiry.xlsx"):
    before = all_expiries()
    response = upload(client, content, filename)
    assert response.status_code == 302
    page = page_text(client.get(URL))
    assert message in page, page
    record = latest_import()
    assert record.status == "failed" and message in record.errors
    assert all_expiries() == before


def test_non_xlsx_file_is_refused(sales):
    assert_refused(sales, b"Device number,New expiry date\nAC0001,2030-01-01\n", "not an .xlsx workbook")


def test_wrong_extension_is_refused(sales):
    assert_refused(sales, workbook_bytes([("AC0001", date(2030, 1, 1))]), "Only .xlsx workbooks",
                   filename="expiry.xls")


def test_zip_without_a_workbook_is_refused(sales):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("hello.txt", "hi")
    assert_refused(sales, out.getvalue(), "not an .xlsx workbook")


def test_file_over_the_size_limit_is_refused(sales, monkeypatch):
    monkeypatch.setitem(sales.application.config, "IMPORT_MAX_BYTES", 2000)
    assert_refused(sales, workbook_bytes([("AC0001", date(2030, 1, 1))]), "larger than 2 KB")


def test_file_over_the_row_limit_is_refused(sales, monkeypatch):
    monkeypatch.setitem(sales.application.config, "IMPORT_MAX_ROWS", 3)
    rows = [(f"AC000{i}", date(2030, 1, 1)) for i in range(1, 5)]
    assert_refused(sales, workbook_bytes(rows), "more than 3 rows")
    assert upload(sales, workbook_bytes(rows[:3])).status_code == 200  # exactly the limit is fine


def test_file_without_data_rows_is_refused(sales):
    assert_refused(sales, workbook_bytes([]), "no rows below the header")


def zip_bomb(entry_bytes: int) -> bytes:
    """A workbook-looking zip whose sheet inflates to `entry_bytes` of spaces (about 1000:1)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as entry:
            chunk = b" " * (1024 * 1024)
            for _ in range(entry_bytes // len(chunk)):
                entry.write(chunk)
    return out.getvalue()


def test_zip_bomb_is_refused_before_parsing(sales):
    content = zip_bomb(64 * 1024 * 1024)
    assert len(content) < 200_000
    assert_refused(sales, content, "possible zip bomb")


def test_archive_limits_total_size_and_entry_count(app):
    with pytest.raises(ImportRejected, match="expands to more than"):
        check_archive(build_template(), max_uncompressed=10_000)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        for i in range(300):
            archive.writestr(f"xl/junk{i}.xml", "")
    with pytest.raises(ImportRejected, match="parts"):
        check_archive(out.getvalue())
    check_archive(build_template())  # the template itself passes


def declare_size(content: bytes, name: str, size: int) -> bytes:
    """The same zip with the uncompressed size of entry `name` declared as `size` (a lie)."""
    patched = bytearray(content)
    local = zipfile.ZipFile(io.BytesIO(content)).getinfo(name).header_offset
    patched[local + 22:local + 26] = size.to_bytes(4, "little")  # local file header
    central = content.index(b"PK\x01\x02")
    while content[central + 46:central + 46 + len(name)] != name.encode():
        central = content.index(b"PK\x01\x02", central + 4)
    patched[central + 24:central + 28] = size.to_bytes(4, "little")  # central directory
    return bytes(patched)


def test_an_entry_lying_about_its_size_is_not_inflated_past_it(app):
    """check_archive trusts the declared sizes: zipfile inflates no more (and then fails the CRC)."""
    content = workbook_bytes([("AC0001", date(2030, 1, 1))] * 3000)
    assert zipfile.ZipFile(io.BytesIO(content)).getinfo("xl/worksheets/sheet1.xml").file_size > 100_000
    lying = declare_size(content, "xl/worksheets/sheet1.xml", 1000)
    check_archive(lying)  # the declared sizes look harmless ...
    inflated = 0
    with zipfile.ZipFile(io.BytesIO(lying)) as archive, archive.open("xl/worksheets/sheet1.xml") as entry:
        with pytest.raises(zipfile.BadZipFile):
            while chunk := entry.read(256):
                inflated += len(chunk)
    assert inflated <= 1000  # ... and no more than that is ever inflated
    with pytest.raises(ImportRejected, match="could not be read"):
        read_rows(lying)


def rewrite_part(content: bytes, name: str, change) -> bytes:
    """The same xlsx with one part's bytes passed through `change`."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, change(data) if info.filename == name else data)
    return out.getvalue()


def test_declared_dimension_of_a_million_rows_is_not_iterated(sales, world):
    content = workbook_bytes([("AC0001", date(2030, 1, 1)), ("AC0002", date(2030, 1, 2))])
    huge = rewrite_part(content, "xl/worksheets/sheet1.xml",
                        lambda xml: re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:XFD1048576"', xml))
    assert b"A1:XFD1048576" in zipfile.ZipFile(io.BytesIO(huge)).read("xl/worksheets/sheet1.xml")
    started = time.perf_counter()
    parsed = read_rows(huge)
    assert time.perf_counter() - started < 5
    assert parsed.rows_scanned == 2 and parsed.rows_total == 2 and parsed.errors == []
    page = page_text(upload(sales, huge))
    assert summary(page)["changes"] == 2


def test_defusedxml_guards_openpyxl():
    assert openpyxl.xml.DEFUSEDXML, "defusedxml must be installed: openpyxl parses with it when present"


def test_corrupt_sheet_xml_is_refused_cleanly(sales):
    content = rewrite_part(workbook_bytes([("AC0001", date(2030, 1, 1))]), "xl/worksheets/sheet1.xml",
                           lambda xml: xml[: len(xml) // 2])
    assert_refused(sales, content, "could not be read")


# --- access -------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["finance", "customer", "support"])
@pytest.mark.parametrize("path", ["", "template", "preview/1"])
def test_other_roles_get_403(client, login, world, username, path):
    login(username)
    assert client.get(URL + path).status_code == 403


@pytest.mark.parametrize("username", ["finance", "customer"])
def test_other_roles_cannot_upload_or_commit(client, login, world, username):
    login(username)
    content = workbook_bytes([("AC0001", date(2030, 1, 1))])
    assert upload(client, content).status_code == 403
    assert post(client, URL + "commit/1", {}).status_code == 403
    assert db.session.scalar(select(db.func.count()).select_from(ExpiryImport)) == 0


def test_anonymous_is_sent_to_login(client, world):
    response = client.get(URL)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("username", ["sales", "admin"])
def test_sales_and_admin_see_the_page_with_upload_form(client, login, world, username):
    login(username)
    page = page_text(client.get(URL))
    assert 'enctype="multipart/form-data"' in page and 'name="csrf_token"' in page
    assert URL + "template" in page


def test_upload_without_csrf_token_is_refused(sales):
    response = sales.post(URL + "upload", data={"file": (io.BytesIO(b"x"), "x.xlsx")},
                          content_type="multipart/form-data")
    assert response.status_code == 400
