"""Hostile files at every upload: the expiry import (/admin/expiry_import/upload), bank transfer
receipts and invoice-title documents. Each is refused with a message that says why, and nothing
changes: no device, order or title row, no file kept."""
from __future__ import annotations

import io
import random
import re
import zipfile
import zlib
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

import importers.expiry
from actions.coins import create_coin_order
from actions.tenants import credit_code_check_char
from conftest import post
from db_snapshot import changed_tables, snapshot
from models import ExpiryImport, db

IMPORT = "/admin/expiry_import/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"0" * 64
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


# --- building hostile archives quickly ----------------------------------------------------------------

def deflate_repeated(pieces: list[tuple[bytes, int]]) -> tuple[bytes, int, int]:
    """A raw deflate stream of each (chunk, times) in turn, compressing each chunk only once.

    Every chunk is compressed on its own and ends on a full flush (no back-references into the
    chunk before), so repeating its compressed bytes repeats its content: hundreds of megabytes
    cost the test a few milliseconds. Returns the stream, the CRC-32 and the size of the content.
    """
    stream, crc, size = b"", 0, 0
    for chunk, times in pieces:
        squeezer = zlib.compressobj(9, zlib.DEFLATED, -15)
        stream += (squeezer.compress(chunk) + squeezer.flush(zlib.Z_FULL_FLUSH)) * times
        for _ in range(times):
            crc = zlib.crc32(chunk, crc)
        size += len(chunk) * times
    return stream + zlib.compressobj(9, zlib.DEFLATED, -15).flush(), crc, size


def with_part(base: bytes, name: str, deflated: tuple[bytes, int, int], extra: dict[str, bytes] | None = None,
              change=None) -> bytes:
    """`base` (a zip) with part `name` set to an already deflated stream, parts `extra` added and each
    other part passed through `change(name, data)`."""
    stream, crc, size = deflated
    source = zipfile.ZipFile(io.BytesIO(base))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename != name:
                data = source.read(info.filename)
                target.writestr(info.filename, change(info.filename, data) if change else data)
        for extra_name, data in (extra or {}).items():
            target.writestr(extra_name, data)
        target.writestr(zipfile.ZipInfo(name), stream, compress_type=zipfile.ZIP_STORED)
    # Written "stored"; now say what it really is: deflated, with the content's CRC and size.
    patched = bytearray(out.getvalue())
    local = zipfile.ZipFile(io.BytesIO(bytes(patched))).getinfo(name).header_offset
    patched[local + 8:local + 10] = (8).to_bytes(2, "little")
    patched[local + 14:local + 18] = crc.to_bytes(4, "little")
    patched[local + 22:local + 26] = size.to_bytes(4, "little")
    central = patched.rindex(b"PK\x01\x02")  # the last entry's record: the part written last
    patched[central + 10:central + 12] = (8).to_bytes(2, "little")
    patched[central + 16:central + 20] = crc.to_bytes(4, "little")
    patched[central + 24:central + 28] = size.to_bytes(4, "little")
    return bytes(patched)


def workbook_bytes(rows=(("AC0001", date(2030, 1, 1)),)) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["Device number", "New expiry date"])
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zip_bomb() -> bytes:
    """An xlsx-looking archive whose sheet inflates to 300 MB of zeros (about 1000:1)."""
    return with_part(workbook_bytes(), "xl/worksheets/sheet1.xml", deflate_repeated([(bytes(1 << 20), 300)]))


def million_rows() -> bytes:
    """A real workbook whose sheet holds 1,000,000 data rows (rows and cells without coordinates:
    openpyxl counts them), built from one compressed block of 10,000 rows."""
    rng = random.Random(6)
    block = "".join(f"<row><c><v>{rng.randrange(1000)}</v></c><c><v>{47000 + rng.randrange(900)}</v></c></row>"
                    for _ in range(10_000)).encode()
    head = (f'<worksheet xmlns="{MAIN_NS}"><dimension ref="A1:B1000001"/><sheetData><row r="1">'
            '<c t="inlineStr"><is><t>Device number</t></is></c>'
            '<c t="inlineStr"><is><t>New expiry date</t></is></c></row>').encode()
    return with_part(workbook_bytes(), "xl/worksheets/sheet1.xml",
                     deflate_repeated([(head, 1), (block, 100), (b"</sheetData></worksheet>", 1)]))


def shared_strings_bomb(strings: int = 100_000) -> bytes:
    """A one-row workbook carrying a shared-strings table of `strings` entries (compressing about
    10:1, under every archive limit), which openpyxl parses in full, slowly, before any row."""
    rng = random.Random(7)
    block = "".join(f"<si><t>{rng.randrange(30)}</t></si>" for _ in range(10_000)).encode()

    def register(name, data):
        if name == "[Content_Types].xml":
            return data.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                                b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
        if name == "xl/_rels/workbook.xml.rels":
            return data.replace(b"</Relationships>", b'<Relationship Id="rIdSS" Type="http://schemas.openxmlformats.'
                                b'org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
                                b"</Relationships>")
        return data

    return with_part(workbook_bytes(), "xl/sharedStrings.xml",
                     deflate_repeated([(f'<sst xmlns="{MAIN_NS}">'.encode(), 1), (block, strings // 10_000),
                                       (b"</sst>", 1)]), change=register)


def with_sheet_xml(change) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(workbook_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, change(data) if info.filename == "xl/worksheets/sheet1.xml" else data)
    return out.getvalue()


def with_doctype(doctype: bytes, cell_text: bytes) -> bytes:
    """The workbook with a DOCTYPE before the sheet and `cell_text` as the first device number."""
    def change(xml: bytes) -> bytes:
        xml = re.sub(rb"^<\?xml[^>]*\?>", b"", xml)
        xml = xml.replace(b"<t>AC0001</t>", b"<t>" + cell_text + b"</t>", 1)
        return b'<?xml version="1.0"?>' + doctype + xml
    return with_sheet_xml(change)


BILLION_LAUGHS = with_doctype(
    b'<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">' + b"".join(
        b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10) for i in range(9)) + b"]>",
    b"&j;")
XXE = with_doctype(b'<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', b"&xxe;")


# --- the expiry import ------------------------------------------------------------------------------------

@pytest.fixture
def import_folder(web_app, tmp_path, monkeypatch) -> Path:
    monkeypatch.setitem(web_app.config, "IMPORT_FOLDER", str(tmp_path / "imports"))
    return tmp_path / "imports"


@pytest.fixture
def sales(client, login, world, import_folder):
    login("sales")
    return client


def upload(client, content: bytes, filename: str = "expiry.xlsx"):
    return post(client, IMPORT + "upload", {"file": (io.BytesIO(content), filename)},
                content_type="multipart/form-data")


def assert_refused(client, folder: Path, content: bytes, message: str, filename: str = "expiry.xlsx"):
    """Refused with `message` shown; the attempt is recorded as failed and nothing else changes."""
    before = snapshot()
    answer = upload(client, content, filename)
    assert answer.status_code == 302, (filename, answer.status_code)
    page = client.get(IMPORT).get_data(as_text=True)
    assert message in page, (filename, message)
    assert changed_tables(before) == ["expiry_import"], filename
    db.session.expire_all()
    attempt = db.session.scalars(select(ExpiryImport).order_by(ExpiryImport.id.desc())).first()
    assert attempt.status == "failed" and message in attempt.errors
    assert not folder.exists() or not any(folder.iterdir()), "a refused file was kept"


@pytest.mark.parametrize("name", ["text", "png", "empty", "exe", "bomb", "billion laughs", "xxe"])
def test_expiry_import_refuses_what_is_not_a_sane_workbook(sales, import_folder, name):
    content, message, filename = {
        "text": (b"Device number,New expiry date\nAC0001,2030-01-01\n", "not an .xlsx workbook", "expiry.xlsx"),
        "png": (PNG, "not an .xlsx workbook", "expiry.xlsx"),
        "empty": (b"", "not an .xlsx workbook", "expiry.xlsx"),
        "exe": (workbook_bytes(), "Only .xlsx workbooks", "expiry.xlsx.exe"),
        "bomb": (zip_bomb(), "possible zip bomb", "expiry.xlsx"),
        "billion laughs": (BILLION_LAUGHS, "could not be read", "expiry.xlsx"),
        "xxe": (XXE, "could not be read", "expiry.xlsx"),
    }[name]
    if name == "bomb":
        assert len(content) < 1_000_000
        sizes = [info.file_size for info in zipfile.ZipFile(io.BytesIO(content)).infolist()]
        assert max(sizes) == 300 << 20
    assert_refused(sales, import_folder, content, message, filename)
    assert "root:x:0:0" not in sales.get(IMPORT).get_data(as_text=True)


def test_a_million_rows_are_refused_at_the_row_cap_not_after_reading_them(sales, import_folder, monkeypatch):
    monkeypatch.setitem(sales.application.config, "IMPORT_MAX_ROWS", 1000)
    content = million_rows()
    assert len(content) < 8 * 1024 * 1024
    read = []
    original = importers.expiry._SheetReader._number
    monkeypatch.setattr(importers.expiry._SheetReader, "_number", lambda *a: read.append(1) or original(*a))
    assert_refused(sales, import_folder, content, "more than 1,000 rows")
    assert len(read) <= 1000, "rows past the cap were read"


def test_a_shared_strings_bomb_is_refused_before_openpyxl_parses_it(sales, import_folder, monkeypatch):
    """50,000 shared strings in a 0.1 MB file, under every archive limit: openpyxl reads the whole
    table when the workbook opens, slowly (tens of microseconds a string, so the 256 MB the archive
    check lets through, 15 million strings, keep a worker busy for many minutes). A workbook of at
    most IMPORT_MAX_ROWS rows needs a few strings per row, not fifty."""
    monkeypatch.setitem(sales.application.config, "IMPORT_MAX_ROWS", 1000)
    content = shared_strings_bomb(50_000)
    assert len(content) < 500_000
    before = snapshot()
    answer = upload(sales, content)
    assert answer.status_code == 302, "the shared-strings bomb was parsed and previewed"
    assert changed_tables(before) == ["expiry_import"]
    db.session.expire_all()
    attempt = db.session.scalars(select(ExpiryImport).order_by(ExpiryImport.id.desc())).first()
    assert attempt.status == "failed" and attempt.errors


def test_formulas_in_cells_are_bad_rows_and_nothing_is_committed(sales, import_folder, world):
    formulas = [("=HYPERLINK(\"https://evil.example\",\"AC0001\")", date(2030, 1, 1)),
                ("AC0002", "=TODAY()+365"),
                ("=cmd|' /C calc'!A0", date(2030, 1, 1)),
                ("NO0001", "=DATE(2030,1,1)")]
    answer = upload(sales, workbook_bytes(formulas))
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert page.count("formula in cell") == 4
    before = snapshot()
    db.session.expire_all()
    attempt = db.session.scalars(select(ExpiryImport).order_by(ExpiryImport.id.desc())).first()
    assert attempt.status == "failed"
    answer = post(sales, f"{IMPORT}commit/{attempt.id}", {}, follow_redirects=True)
    assert "cannot be committed" in answer.get_data(as_text=True)
    assert changed_tables(before) == []


@pytest.mark.parametrize("trick", ["dimension", "last row"])
def test_a_workbook_claiming_a_million_rows_is_read_for_the_rows_it_has(sales, import_folder, world, trick):
    if trick == "dimension":
        content = with_sheet_xml(lambda xml: re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:XFD1048576"',
                                                    xml))
    else:  # one real row, at the very bottom of the sheet
        book = Workbook()
        book.active.append(["Device number", "New expiry date"])
        book.active.cell(row=1_048_576, column=1, value="AC0001")
        book.active.cell(row=1_048_576, column=2, value="2030-01-01")
        out = io.BytesIO()
        book.save(out)
        content = out.getvalue()
    assert len(content) < 10_000
    before = snapshot()
    answer = upload(sales, content)
    assert answer.status_code == 200
    assert re.search(r'data-count="total">1<', answer.get_data(as_text=True))
    assert changed_tables(before) == ["expiry_import"]  # previewed, not committed


def test_a_path_in_the_file_name_is_only_a_name(sales, import_folder, tmp_path):
    answer = upload(sales, workbook_bytes(), "../../../escaped.xlsx")
    assert answer.status_code == 200
    assert not list(tmp_path.rglob("escaped.xlsx")) and not Path("/tmp/escaped.xlsx").exists()
    assert sorted(p.name.split(".", 1)[1] for p in import_folder.iterdir()) == ["rows.json", "xlsx"]


# --- bank transfer receipts and invoice-title documents ------------------------------------------------------

@pytest.fixture
def customer(app, web_app, client, login, world, tmp_path, monkeypatch):
    monkeypatch.setattr(web_app, "instance_path", str(tmp_path / "instance"))
    with app.test_request_context():
        order = create_coin_order(db.session, world.users["customer"], world.acme, "72.00", "bank_transfer")
        db.session.commit()
    login("customer")
    client.order_number = order.number
    return client


HOSTILE_FILES = [
    ("receipt.png", b"just text, renamed", "is not a"),
    ("receipt.pdf", b"<html><script>alert(1)</script></html>", "is not a"),
    ("receipt.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "is not a"),
    ("receipt.pdf", b"PK\x03\x04" + b"\x00" * 64, "is not a"),
    ("receipt.pdf", PNG, "its name says otherwise"),
    ("receipt.html", PDF, "its name says otherwise"),
    ("receipt.png", b"", "choose the"),
    ("receipt.png", PNG + b"\x00" * 2000, "is larger than"),
]


@pytest.mark.parametrize("filename, data, message", HOSTILE_FILES)
def test_bank_transfer_receipt_refuses_hostile_files(customer, tmp_path, monkeypatch, filename, data, message):
    monkeypatch.setitem(customer.application.config, "BANK_RECEIPT_MAX_BYTES", 1000)
    before = snapshot()
    answer = post(customer, f"/admin/bank_transfer/upload/?order={customer.order_number}",
                  {"payer_company": "Acme Logistics", "payer_account": "6222 0000", "amount": "72.00",
                   "file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")
    assert answer.status_code == 200
    assert message.lower() in answer.get_data(as_text=True).lower(), filename
    assert changed_tables(before) == []
    assert not (tmp_path / "instance" / "receipts").exists() or not any((tmp_path / "instance" / "receipts").iterdir())


def test_a_kept_receipt_is_served_as_an_attachment_never_inline(customer, tmp_path):
    polyglot = PDF + b"<html><script>alert(1)</script></html>"
    answer = post(customer, f"/admin/bank_transfer/upload/?order={customer.order_number}",
                  {"payer_company": "Acme Logistics", "payer_account": "6222 0000", "amount": "72.00",
                   "file": (io.BytesIO(polyglot), "../../<b>receipt</b>.pdf")}, content_type="multipart/form-data")
    assert answer.status_code == 302
    (kept,) = (tmp_path / "instance" / "receipts").iterdir()
    assert kept.read_bytes() == polyglot
    receipt_id = re.search(r"/admin/bank_transfer/file/(\d+)", customer.get("/admin/bank_transfer/").get_data(
        as_text=True)).group(1)
    served = customer.get(f"/admin/bank_transfer/file/{receipt_id}")
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert "<" not in served.headers["Content-Disposition"] and "/" not in served.headers["Content-Disposition"]
    assert served.headers["Content-Type"] == "application/pdf"
    assert served.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("filename, data, message", [f for f in HOSTILE_FILES if f[1]])
def test_invoice_title_document_refuses_hostile_files(customer, world, tmp_path, monkeypatch, filename, data,
                                                      message):
    monkeypatch.setitem(customer.application.config, "INVOICE_DOC_MAX_BYTES", 1000)
    body = "91310000123456789"
    before = snapshot()
    answer = post(customer, "/admin/invoicetitle/new/", {
        "company_id": world.acme.id, "kind": "ordinary", "title": "Acme Logistics",
        "tax_id": body + credit_code_check_char(body), "document": (io.BytesIO(data), filename)},
        content_type="multipart/form-data")
    assert answer.status_code == 200
    assert message.lower() in answer.get_data(as_text=True).lower(), filename
    assert changed_tables(before) == []
    assert not (tmp_path / "instance" / "invoice_docs").exists()
