"""Streaming, formula-safe xlsx writing (openpyxl write-only)."""
from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 64 * 1024


def formula_safe(value):
    """A value a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def write_xlsx(headers: Sequence[str], rows: Iterable[Sequence], sheet_title: str = "Sheet1"):
    """Write rows to a temporary xlsx file in bounded memory; returns the open file, rewound."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title[:31])
    sheet.append([str(h) for h in headers])
    for row in rows:
        sheet.append([_cell(sheet, v) for v in row])
    out = tempfile.TemporaryFile()
    workbook.save(out)
    out.seek(0)
    return out


def _cell(sheet, value):
    if isinstance(value, str):
        if value.startswith(FORMULA_PREFIXES):
            # An explicit string cell: openpyxl would otherwise store "=..." as a formula.
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            return cell
        return value
    return value


def iter_file(handle, chunk: int = CHUNK) -> Iterator[bytes]:
    """Read an open file in chunks, closing it at the end (for streamed responses)."""
    try:
        while data := handle.read(chunk):
            yield data
    finally:
        handle.close()
