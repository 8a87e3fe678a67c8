"""xlsx exports are written while they are sent: typed cells, text that never becomes a formula,
the first bytes before the first row is read, and the device export built from plain SQL rows."""
from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

from openpyxl import load_workbook
from sqlalchemy import event
from sqlalchemy.engine import Engine

from importers.xlsx import stream_xlsx
from models import db
from tests.conftest import make_device


def workbook(chunks) -> object:
    return load_workbook(io.BytesIO(b"".join(chunks)))


def test_stream_xlsx_types_cells_and_keeps_text_text():
    rows = [["=1+1", " padded ", "a&b<c>\"'", 5, Decimal("1.50"), date(2026, 1, 31), datetime(2026, 1, 31, 12, 30),
             None, True, "bell\x07 nul\x00"]]
    sheet = workbook(stream_xlsx([f"H{i}" for i in range(10)], rows, sheet_title="设备: a/b?")).active
    assert sheet.title == "设备  a b"
    assert [c.value for c in sheet[1]] == [f"H{i}" for i in range(10)]
    assert sheet["A1"].font.b and sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:J2"
    values = [c.value for c in sheet[2]]
    assert values == ["'=1+1", " padded ", "a&b<c>\"'", 5, 1.5, datetime(2026, 1, 31), datetime(2026, 1, 31, 12, 30),
                      None, True, "bell nul"]
    assert sheet["A2"].data_type == "s"  # text, quoted as in every export (CSV too), not a formula
    assert sheet["F2"].number_format == "yyyy-mm-dd"


def test_stream_xlsx_hands_out_bytes_as_it_goes():
    """The first chunk (a zip's first entry) comes before any row is asked for; rows come in batches."""
    asked = []

    def rows():
        for i in range(5000):
            asked.append(i)
            yield [f"D{i:05d}", i]

    stream = stream_xlsx(["number", "n"], rows(), batch_rows=1000)
    first = next(stream)
    assert first.startswith(b"PK") and not asked
    chunks = [first, *stream]
    assert len(chunks) > 5
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
    sheet = workbook(chunks).active
    assert sheet.max_row == 5001 and sheet["A5001"].value == "D04999" and sheet["B5001"].value == 4999


def test_device_export_streams_before_reading_devices(world, client, login):
    make_device("=HYPERLINK(1)", world.acme).name = "@SUM(A1)"
    db.session.commit()
    login("customer")
    statements = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    response = client.get("/admin/device/export/xlsx/", buffered=False)
    body = iter(response.response)
    event.listen(Engine, "before_cursor_execute", on_execute)
    try:
        first = next(body)
        assert first.startswith(b"PK")
        assert not any("FROM device" in s for s in statements), "the first bytes must not wait for the rows"
        rest = list(body)
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)
        response.close()
    assert any("FROM device" in s for s in statements)
    sheet = workbook([first, *rest]).active
    rows = {r[0]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert set(rows) == {"AC0001", "AC0002", "NO0001", "NO0002", "FL0001", "FL0002", "SO0001", "SO0002",
                         "'=HYPERLINK(1)"}
    number, name, kind, company, status, expires_on, package = rows["AC0001"]
    assert (name, company, status, package) == ("Truck AC0001", "Acme Logistics", "Active", "GPS-M GPS monthly")
    assert isinstance(expires_on, datetime)
    assert rows["'=HYPERLINK(1)"][1] == "'@SUM(A1)"


def test_every_list_export_quotes_formula_looking_text_in_xlsx_and_csv(world, client, login):
    """One rule for every export (not only the device list's): "=…", "+…", "-…", "@…" come out quoted."""
    from actions.wallets import wallet_for

    world.acme.name = '=HYPERLINK("http://evil.test","x")'
    wallet_for(db.session, world.acme.id, "CNY")
    db.session.commit()
    login("finance")
    sheet = workbook([client.get("/admin/wallet/export/xlsx/").data]).active
    names = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"http://evil.test\",\"x\")" in names
    assert not any(isinstance(v, str) and v.startswith(("=", "+", "-", "@"))
                   for row in sheet.iter_rows(min_row=2, values_only=True) for v in row)
    csv_text = client.get("/admin/wallet/export/csv/").get_data(as_text=True)
    assert "'=HYPERLINK" in csv_text
