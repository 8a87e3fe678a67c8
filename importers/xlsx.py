"""Formula-safe xlsx writing: streamed as it is written (stream_xlsx), or to a file (openpyxl write-only).

openpyxl is imported where a workbook is written, not at start-up: every web worker imports this
module (the lists' export) and most never write a workbook with openpyxl (8 MB per process)."""
from __future__ import annotations

import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Amount:
    """A money cell of a streamed workbook: a number shown with thousands separators and the currency's
    decimals (#,##0.00 for CNY and USD, #,##0 for VND and coins). In CSV it is the plain number."""

    value: Decimal
    places: int

    def __str__(self) -> str:
        return str(self.value)


def formula_safe(value):
    """A value a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def write_xlsx(headers: Sequence[str], rows: Iterable[Sequence], sheet_title: str = "Sheet1"):
    """Write rows to a temporary xlsx file in bounded memory; returns the open file, rewound."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title[:31])
    sheet.append([str(h) for h in headers])
    for row in rows:
        sheet.append([formula_safe(v) for v in row])  # text stays text, in a CSV saved from it too
    out = tempfile.TemporaryFile()
    workbook.save(out)
    out.seek(0)
    return out


def iter_file(handle, chunk: int = CHUNK) -> Iterator[bytes]:
    """Read an open file in chunks, closing it at the end (for streamed responses)."""
    try:
        while data := handle.read(chunk):
            yield data
    finally:
        handle.close()


# --- streamed SpreadsheetML ------------------------------------------------------------------------
#
# A list export of 200,000 rows took openpyxl 50 s of CPU and answered only once the whole file
# was built. stream_xlsx writes the workbook's XML itself, row by row, into a zip whose entries
# are compressed as they go (zipfile writes to an unseekable stream with data descriptors), and
# hands out the compressed bytes as they come: the first bytes leave at once, memory stays flat.
# Strings are inline strings (never formulas: no <f> element is ever written).

_EPOCH = date(1899, 12, 30)  # Excel's day 0 (with its 1900 leap-year bug already counted in)
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_STYLES = (  # cell styles: 0 text/number, 1 date, 2 date and time, 3 bold header, 4 #,##0.00, 5 #,##0
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="3" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>'
)
_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
        'Target="styles.xml"/></Relationships>'),
    "xl/styles.xml": _STYLES,
}


class _Pipe:
    """A write-only, unseekable file whose bytes are taken out as they arrive."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.written = 0

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


_AMOUNT_STYLES = {2: 4, 0: 5}  # decimals → the style above (built-in formats 4 and 3)


def _text(value: str) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if _ILLEGAL_XML.search(value):
        value = _ILLEGAL_XML.sub("", value)
    return value


def _column_letters(count: int) -> list[str]:
    letters = []
    for index in range(1, count + 1):
        name = ""
        while index:
            index, rest = divmod(index - 1, 26)
            name = chr(65 + rest) + name
        letters.append(name)
    return letters


def _sheet_name(title: str) -> str:
    return _text(re.sub(r"[\[\]:*?/\\]", " ", str(title)).strip()[:31] or "Sheet1")


def _cells(row: Sequence, number: int, letters: list[str]) -> str:
    """One <row> of cells: numbers and dates typed, strings inline, formula-looking text kept text."""
    out = [f'<row r="{number}">']
    for letter, value in zip(letters, row, strict=False):
        if value is None or value == "":
            continue
        if isinstance(value, str):
            value = formula_safe(value)  # "'=…": text in Excel, and still text in a CSV saved from the sheet
            space = ' xml:space="preserve"' if value[0].isspace() or value[-1].isspace() else ""
            out.append(f'<c r="{letter}{number}" t="inlineStr"><is><t{space}>{_text(value)}</t></is></c>')
        elif isinstance(value, Amount):
            style = _AMOUNT_STYLES.get(value.places, 0)
            out.append(f'<c r="{letter}{number}" s="{style}"><v>{value.value}</v></c>')
        elif isinstance(value, bool):
            out.append(f'<c r="{letter}{number}" t="b"><v>{int(value)}</v></c>')
        elif isinstance(value, (int, float, Decimal)):
            out.append(f'<c r="{letter}{number}"><v>{value}</v></c>')
        elif isinstance(value, datetime):
            serial = (value.date() - _EPOCH).days + (
                value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400
            out.append(f'<c r="{letter}{number}" s="2"><v>{serial!r}</v></c>')
        elif isinstance(value, date):
            out.append(f'<c r="{letter}{number}" s="1"><v>{(value - _EPOCH).days}</v></c>')
        else:
            out.append(f'<c r="{letter}{number}" t="inlineStr"><is><t>{_text(str(value))}</t></is></c>')
    out.append("</row>")
    return "".join(out)


def stream_xlsx(headers: Sequence[str], rows: Iterable[Sequence], sheet_title: str = "Sheet1",
                batch_rows: int = 2000, compresslevel: int = 1) -> Iterator[bytes]:
    """The bytes of an xlsx workbook of one sheet, yielded while it is written: a bold header row
    (frozen, with an autofilter), then `rows` (numbers, dates and datetimes typed; naive datetimes
    as given). Strings are written as text, formula-looking ones quoted (formula_safe) as in every
    export, so they stay text in a CSV saved from the sheet too."""
    headers = [str(h) for h in headers]
    letters = _column_letters(max(len(headers), 1))
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        for name, xml in _PARTS.items():
            archive.writestr(name, xml)
        archive.writestr("xl/workbook.xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{_sheet_name(sheet_title)}" sheetId="1" r:id="rId1"/></sheets></workbook>'))
        yield pipe.take()
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            widths = "".join(f'<col min="{i}" max="{i}" width="{min(max(len(h) * 1.6 + 4, 12), 60):.0f}" '
                             'customWidth="1"/>' for i, h in enumerate(headers, 1))
            header = "".join(f'<c r="{letter}1" t="inlineStr" s="3"><is><t>{_text(h)}</t></is></c>'
                             for letter, h in zip(letters, headers, strict=False))
            sheet.write((
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
                'state="frozen"/></sheetView></sheetViews>'
                f'<cols>{widths}</cols><sheetData><row r="1">{header}</row>').encode())
            number = 1
            batch: list[str] = []
            for row in rows:
                number += 1
                batch.append(_cells(row, number, letters))
                if len(batch) >= batch_rows:
                    sheet.write("".join(batch).encode())
                    batch = []
                    yield pipe.take()
            sheet.write(("".join(batch) + f'</sheetData><autoFilter ref="A1:{letters[-1]}{number}"/>'
                         "</worksheet>").encode())
        yield pipe.take()
    yield pipe.take()
