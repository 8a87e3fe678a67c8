"""批量设置过期时间: the expiry workbook — template, archive checks, parsing, preview, commit.

Plain functions, no Flask request objects: the view (and a CLI or a job) reads the upload and
calls them in order; the commit is given the session's commit to call after each chunk.

    check_archive(data, ...)          the file is a real, reasonably sized xlsx, not a zip bomb
    read_rows(data, max_rows)         the rows of the first visible sheet, and each bad row with its reason
    save_parsed / load_parsed         the parsed rows kept beside the upload: the commit never parses again
    preview(session, actor, parsed)   old → new expiry per device, unknown/out-of-scope devices
    commit(session, actor, report, …) the changes a chunk at a time (each its own transaction when given
                                      a `commit`), resumable, set back on a conflict; audited once

The workbook is read with expat straight from the zip (see "reading" below), about five
times faster than openpyxl's read-only mode and in bounded memory. python-calamine parses
faster still but reports a formula's cached value as if it were typed, and builds the dense
range of the used area in memory (a 5 KB file with one cell in XFD2000 took 1 GB).
openpyxl writes the template; it is imported there, not at start-up (8 MB per web worker).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import xml.parsers.expat
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, NamedTuple

from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from actions import DomainError, require_role, scope_company_ids
from actions.audit import record
from actions.dates import EARLIEST_EXPIRY, LATEST_EXPIRY
from actions.texts import count_param, english, english_all, message, render, render_all
from models import Device, ExpiryImport, User, utcnow

IMPORT_ROLES = {"sales"}
DATE_FORMAT = "yyyy-mm-dd"
_CHUNK = 900  # stays under SQLite's bound-parameter limit
UPDATE_CACHE_KB = 32 * 1024  # SQLite page cache while a chunk's UPDATE runs
COMMIT_CHUNK = 3_000  # devices per write transaction: ~60 ms CPU at 200k devices (bench/README.md, the import)
STALE_AFTER = timedelta(minutes=2)  # a commit without progress this long was interrupted: it may be resumed
SHOWN_IN_AUDIT = 200  # changes spelled out in the audit event
CONFLICTS_NAMED = 10  # devices named when some changed since the preview

# Archive limits (DESIGN.md section 6). A 200,000-row sheet of the template is about 25 MB of XML;
# Excel's own files (shared strings) are smaller. The limit bounds the declared sizes together
# and, again, the bytes actually inflated while reading (IMPORT_MAX_UNCOMPRESSED_BYTES).
MAX_ENTRIES = 200
MAX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024
MAX_RATIO = 100  # Apache POI's default: deflate beyond 100:1 is a bomb, not a spreadsheet
RATIO_CHECK_FROM = 1024 * 1024  # tiny parts (styles, an empty sheet) compress far better
MAX_HEADER_COLUMNS = 50  # the headers must be within the first 50 columns (A:AX)

# Headers are matched case- and space-insensitively; the template writes the first of each.
NUMBER_HEADERS = ("Device number", "设备号", "Số thiết bị", "设备编号", "Mã thiết bị")
EXPIRY_HEADERS = ("New expiry date", "到期时间", "Ngày hết hạn mới", "新到期时间", "过期时间", "Expiry date",
                  "Ngày hết hạn")
HEADERS_BY_LANGUAGE = {language: (NUMBER_HEADERS[i], EXPIRY_HEADERS[i]) for i, language in enumerate(("en", "zh", "vi"))}

_TEXT_DATE = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})")


class ImportRejected(DomainError):
    """The whole file is refused (not an xlsx, too big, a zip bomb, no rows…); nothing is read.

    Raised with a stored message (actions.texts.message), kept on the failed import and shown in each
    reader's language (`data`), or with a text for the reader at hand (a lazy_gettext string)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.data = reason if isinstance(reason, dict) else None

    def __str__(self) -> str:
        return render(self.data) if self.data is not None else super().__str__()


class ParsedRow(NamedTuple):
    row_no: int
    number: str
    expires_on: date


# A bad row's reason: a stored message (actions.texts.message), rendered in the reader's language
# (error_texts); rows parsed before messages were kept hold their text, shown as it is.
Reason = dict | str


@dataclass
class ParsedFile:
    """The good rows and the bad ones (row number, reason; a row may have several) of one workbook."""

    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[tuple[int, Reason]] = field(default_factory=list)
    rows_total: int = 0  # non-blank data rows
    rows_scanned: int = 0  # rows the reader went through, blank ones included


class Change(NamedTuple):
    row_no: int
    device_id: int
    number: str
    old: date
    new: date


@dataclass
class ImportReport:
    """What committing would do: the changes, the bad rows, and the rows already up to date."""

    changes: list[Change] = field(default_factory=list)
    errors: list[tuple[int, Reason]] = field(default_factory=list)
    unchanged: int = 0
    rows_total: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def rows_failed(self) -> int:
        return len({row_no for row_no, _reason in self.errors})


def _column_letter(index: int) -> str:
    """The spreadsheet letters of a 1-based column number: 1 → A, 28 → AB."""
    name = ""
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


# --- template ------------------------------------------------------------------------------


def build_template(language: str = "en", max_rows: int = 200_000, max_bytes: int = 10 * 1024 * 1024) -> bytes:
    """The blank workbook: a header row, date-formatted expiry column, and an instructions sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    number_header, expiry_header = HEADERS_BY_LANGUAGE.get(language[:2], HEADERS_BY_LANGUAGE["en"])
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Devices")  # in the reader's language (the reader takes the first sheet, whatever its name)
    sheet.append([number_header, expiry_header])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    sheet.freeze_panes = "A2"
    # Column styles, not pre-formatted cells: Excel and LibreOffice apply them to every typed
    # value, and the sheet stays free of thousands of empty styled rows.
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["A"].number_format = "@"  # text: keeps leading zeros of device numbers
    sheet.column_dimensions["B"].width = 18
    sheet.column_dimensions["B"].number_format = DATE_FORMAT
    valid_date = DataValidation(
        type="date", operator="between", formula1="DATE(2000,1,1)", formula2="DATE(2199,12,31)",
        allow_blank=True, showErrorMessage=True, errorTitle=_("Not a date"),
        error=_("Enter a date such as 2027-12-31."),
    )
    valid_date.add("B2:B1048576")
    sheet.add_data_validation(valid_date)

    notes = workbook.create_sheet(_("Instructions"))
    notes.column_dimensions["A"].width = 110
    lines = [
        _("How to fill in this workbook"),
        "",
        _("1. Fill in the first sheet, one device per row, starting on row 2. Keep the header row as it is."),
        _("2. %(column)s: the device number exactly as Renewdesk shows it.", column=number_header),
        _("3. %(column)s: a date cell, or text written as YYYY-MM-DD (2027-12-31) or YYYY/MM/DD.",
          column=expiry_header),
        _("4. List each device once. Type values: a cell with a formula is refused."),
        _("5. Headers may be in English (%(en)s), Chinese (%(zh)s) or Vietnamese (%(vi)s); other columns are "
          "ignored.", **{language: " / ".join(headers) for language, headers in HEADERS_BY_LANGUAGE.items()}),
        _("6. At most %(rows)s rows and %(size)s per file.", rows=format_number(max_rows), size=describe_size(max_bytes)),
        _("7. Upload the file and check the preview: each device with its old and new expiry date, and "
          "each bad row with its row number and reason. A file with any bad row changes nothing."),
        _("8. Commit to apply the changes: a few thousand devices at a time, the page shows how far it is. If a "
          "device changed since the preview, the devices already set are set back. Uploading the same file again "
          "changes nothing more."),
    ]
    for line in lines:
        notes.append([line])
    notes["A1"].font = Font(bold=True, size=13)
    for row in notes.iter_rows(min_row=3):
        row[0].alignment = Alignment(wrap_text=True, vertical="top")

    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# --- the archive ---------------------------------------------------------------------------


def check_archive(
    data: bytes | BinaryIO,
    *,
    filename: str | None = None,
    max_bytes: int = 10 * 1024 * 1024,
    max_entries: int = MAX_ENTRIES,
    max_uncompressed: int = MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = MAX_RATIO,
) -> None:
    """Raise ImportRejected unless `data` is an xlsx of sane size, entry count and compression.

    The sizes come from the zip's central directory, before anything is inflated: the declared
    sizes together must stay under `max_uncompressed`. They may lie; read_rows counts the bytes
    it actually inflates against the same limit.
    """
    if filename is not None and not filename.lower().endswith(".xlsx"):
        raise ImportRejected(message("expiry_import.not_xlsx_name", name=filename))
    size = _size_of(data)
    if size > max_bytes:
        raise ImportRejected(message("expiry_import.too_large", size=describe_size(max_bytes)))
    try:
        with zipfile.ZipFile(_stream(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ImportRejected(message("expiry_import.not_xlsx")) from exc
    if len(entries) > max_entries:
        raise ImportRejected(message("expiry_import.parts", n=len(entries), max=max_entries))
    names = {entry.filename for entry in entries}
    if "xl/workbook.xml" not in names or "[Content_Types].xml" not in names:
        raise ImportRejected(message("expiry_import.not_xlsx"))
    total = 0
    for entry in entries:
        total += entry.file_size
        if entry.file_size > RATIO_CHECK_FROM and entry.file_size > max_ratio * max(entry.compress_size, 1):
            raise ImportRejected(message("expiry_import.ratio", name=entry.filename, ratio=max_ratio))
    if total > max_uncompressed:
        raise ImportRejected(message("expiry_import.expands", size=describe_size(max_uncompressed)))


STRINGS_PER_ROW = 4  # shared strings a row of the template needs, at most, with room to spare
def describe_size(n_bytes: int) -> str:
    """A byte count as people say it: "10 MB", "2 KB"."""
    if n_bytes >= 1024 * 1024:
        return f"{round(n_bytes / 1024 / 1024, 1):g} MB"
    return f"{round(n_bytes / 1024, 1):g} KB"


def _size_of(data: bytes | BinaryIO) -> int:
    if isinstance(data, (bytes, bytearray)):
        return len(data)
    position = data.tell()
    size = data.seek(0, os.SEEK_END)
    data.seek(position)
    return size


def _stream(data: bytes | BinaryIO) -> BinaryIO:
    if isinstance(data, (bytes, bytearray)):
        return io.BytesIO(data)
    data.seek(0)
    return data


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_workbook(data: bytes, folder: str | os.PathLike) -> tuple[str, Path]:
    """Keep the upload as <folder>/<sha256>.xlsx (written once, atomically); return hash and path."""
    digest = file_sha256(data)
    target = Path(folder) / f"{digest}.xlsx"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    return digest, target


def parsed_path(folder: str | os.PathLike, import_id: int) -> Path:
    """Where the parsed rows of import `import_id` are kept."""
    return Path(folder) / f"{import_id}.rows.json"


def save_parsed(parsed: ParsedFile, path: Path, file_sha256: str) -> None:
    """Keep the parsed rows of the workbook with that hash (JSON, written atomically) for the commit."""
    payload = {
        "file_sha256": file_sha256, "rows_total": parsed.rows_total, "rows_scanned": parsed.rows_scanned,
        "rows": [(r.row_no, r.number, r.expires_on.isoformat()) for r in parsed.rows],
        "errors": parsed.errors,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(payload, out, ensure_ascii=False, separators=(",", ":"))
    os.replace(temporary, path)


def load_parsed(path: Path, file_sha256: str) -> ParsedFile | None:
    """The parsed rows kept by save_parsed, or None when there are none for that workbook."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload["file_sha256"] != file_sha256:
            return None
        return ParsedFile(
            rows=[ParsedRow(row_no, number, date.fromisoformat(day)) for row_no, number, day in payload["rows"]],
            errors=[(row_no, reason) for row_no, reason in payload["errors"]],
            rows_total=payload["rows_total"], rows_scanned=payload["rows_scanned"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- reading -------------------------------------------------------------------------------
#
# The workbook is read with expat, part by part, straight from the zip: no part is ever held
# whole, every inflated byte is counted against one budget, every <row> with a value in any
# column is counted against the row cap the moment it ends, and only the header columns are
# kept. It tells formula cells apart (a <f> element) whatever value Excel cached beside them.

_READ_CHUNK = 64 * 1024
MAX_TEXT = 256  # a longer text cell is kept cut (with "…"): no device number or date is that long
MAX_CELL_TEXT = 4096  # what is kept of a cell's raw text while reading
# Built-in number formats that show dates: 14–22 and 45–47 (ECMA-376), 27–36 and 50–58 (the
# East Asian date formats such as yyyy"年"m"月"d"日", which openpyxl reads as plain numbers).
_DATE_FORMAT_IDS = frozenset((*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)))
_EPOCH_1900 = date(1899, 12, 30)
_EPOCH_1904 = date(1904, 1, 1)


class _Stop(Exception):
    """Ends parsing early (a wrong header row): everything needed is known."""


class _Budget:
    """The bytes every part of one workbook may inflate to, together; counted as they are read."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def read(self, part: BinaryIO) -> bytes:
        chunk = part.read(_READ_CHUNK)
        self.used += len(chunk)
        if self.used > self.limit:
            raise ImportRejected(message("expiry_import.expands", size=describe_size(self.limit)))
        return chunk


def _parse_part(archive: zipfile.ZipFile, name: str, budget: _Budget, start, end=None, text=None) -> None:
    """Feed one part of the archive to expat with the given handlers; DTDs are refused."""
    parser = xml.parsers.expat.ParserCreate()  # names as written: "c", or prefixed "x:c"
    parser.buffer_text = True
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text

    def refuse(*_args):  # no entities, no DOCTYPE: what defusedxml does for openpyxl
        raise ImportRejected(message("expiry_import.unreadable", error="DTD"))

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    with archive.open(name) as part:
        while chunk := budget.read(part):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)


def _local(name: str) -> str:
    """An element's name without its namespace prefix ("x:c" -> "c")."""
    return name.rpartition(":")[2]


@dataclass
class _Book:
    """What the workbook says about its sheets, styles and strings."""

    sheets: list[tuple[str, str, str]] = field(default_factory=list)  # (name, state, part)
    date1904: bool = False
    date_styles: frozenset[int] = frozenset()
    strings: list[str] = field(default_factory=list)


def _read_book(archive: zipfile.ZipFile, budget: _Budget, max_strings: int) -> _Book:
    """The sheets (name, state, part), the date system, the date styles and the shared strings."""
    book = _Book()
    declared: list[tuple[str, str, str]] = []

    def workbook_start(name, attrs):
        local = _local(name)
        if local == "sheet":
            rel_id = next((value for key, value in attrs.items() if _local(key) == "id"), "")  # r:id
            declared.append((attrs.get("name", ""), attrs.get("state", "visible"), rel_id))
        elif local == "workbookPr":
            book.date1904 = attrs.get("date1904", "0").lower() in ("1", "true")

    _parse_part(archive, "xl/workbook.xml", budget, workbook_start)
    targets: dict[str, str] = {}

    def rels_start(name, attrs):
        if _local(name) == "Relationship":
            targets[attrs.get("Id", "")] = attrs.get("Target", "")

    names = set(archive.namelist())
    if "xl/_rels/workbook.xml.rels" in names:
        _parse_part(archive, "xl/_rels/workbook.xml.rels", budget, rels_start)
    for position, (sheet_name, state, rel_id) in enumerate(declared, start=1):
        target = targets.get(rel_id, f"worksheets/sheet{position}.xml")
        part = target.lstrip("/") if target.startswith("/") else "xl/" + target
        book.sheets.append((sheet_name, state, part))

    if "xl/styles.xml" in names:
        custom: dict[int, str] = {}
        xf_formats: list[int] = []
        in_cell_xfs = [False]

        def styles_start(name, attrs):
            local = _local(name)
            if local == "numFmt":
                custom[_int(attrs.get("numFmtId"))] = attrs.get("formatCode", "")
            elif local == "cellXfs":
                in_cell_xfs[0] = True
            elif local == "xf" and in_cell_xfs[0]:
                xf_formats.append(_int(attrs.get("numFmtId")))

        def styles_end(name):
            if _local(name) == "cellXfs":
                in_cell_xfs[0] = False

        _parse_part(archive, "xl/styles.xml", budget, styles_start, styles_end)
        from openpyxl.styles.numbers import is_date_format

        book.date_styles = frozenset(
            index for index, format_id in enumerate(xf_formats)
            if (format_id in custom and is_date_format(custom[format_id]))
            or (format_id not in custom and format_id in _DATE_FORMAT_IDS)
        )

    if "xl/sharedStrings.xml" in names:
        strings = book.strings
        pieces: list[str] = []
        state = {"phonetic": 0, "text": False}

        def strings_start(name, attrs):
            local = _local(name)
            if local == "t":
                state["text"] = not state["phonetic"]
            elif local == "rPh":
                state["phonetic"] += 1
            elif local == "si":
                pieces.clear()

        def strings_end(name):
            local = _local(name)
            if local == "t":
                state["text"] = False
            elif local == "rPh":
                state["phonetic"] -= 1
            elif local == "si":
                strings.append(_cut("".join(pieces)))
                if len(strings) > max_strings:
                    raise ImportRejected(message("expiry_import.strings", rows=max_strings // STRINGS_PER_ROW))

        def strings_text(data):
            if state["text"] and sum(map(len, pieces)) <= MAX_TEXT:
                pieces.append(data)

        _parse_part(archive, "xl/sharedStrings.xml", budget, strings_start, strings_end, strings_text)
    return book


def _int(text, default: int = 0) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def read_rows(data: bytes | BinaryIO, max_rows: int = 200_000,
              max_uncompressed: int = MAX_UNCOMPRESSED_BYTES) -> ParsedFile:
    """The data rows of the first visible sheet (headers on row 1), each bad row with its reason.

    Call check_archive first. Raises ImportRejected when the workbook cannot be read, has no
    data rows, more than `max_rows` rows (counted in every column, refused the moment the row
    after the last allowed one ends), or inflates to more than `max_uncompressed` bytes.
    """
    try:
        with zipfile.ZipFile(_stream(data)) as archive:
            budget = _Budget(max_uncompressed)
            book = _read_book(archive, budget, STRINGS_PER_ROW * max_rows + 100)
            visible = [sheet for sheet in book.sheets if sheet[1] not in ("hidden", "veryHidden")]
            hidden = [sheet[0] for sheet in book.sheets if sheet[1] in ("hidden", "veryHidden")]
            if not visible:
                raise ImportRejected(message("expiry_import.all_hidden", sheets=", ".join(hidden)))
            sheet_name, _state, part = visible[0]
            parsed = _SheetReader(book, max_rows).read(archive, part, budget)
    except ImportRejected:
        raise
    except Exception as exc:  # any malformed part of an untrusted file: refuse it, whatever broke
        raise ImportRejected(message("expiry_import.unreadable", error=type(exc).__name__)) from exc
    if hidden and (parsed.rows_total == 0 or parsed.errors[:1] and parsed.errors[0][0] == 1):
        raise ImportRejected(message("expiry_import.only_visible", sheet=sheet_name, hidden=", ".join(hidden)))
    if parsed.rows_total == 0 and not parsed.errors:
        raise ImportRejected(message("expiry_import.no_rows"))
    return parsed


class _SheetReader:
    """expat handlers for one worksheet: keeps the header columns' cells, counts every row."""

    def __init__(self, book: _Book, max_rows: int):
        self.book, self.max_rows = book, max_rows
        self.parsed = ParsedFile()
        self.first_row: dict[str, int] = {}
        self.columns: tuple[int, int] | None = None  # (number, expiry), 1-based, once the header is read
        self.letters = ("", "")
        self.row_no = 0
        self.rows_with_values = 0
        self.cells: dict[int, tuple] = {}  # column -> (type, style, text, formula) of the current row
        self.row_has_value = False
        self.column = 0
        self.cell_type = self.cell_style = None
        self.formula = False
        self.collecting = False  # inside a <v> or <t> of the current cell
        self.value: str | None = None
        self.column_cache: dict[str, int] = {}
        self.names: dict[str, str] = {}  # element name (maybe prefixed, "x:c") -> local name
        self.date_styles = {str(index) for index in book.date_styles}  # as the s="…" attribute says them
        self.dates: dict[str, date | float] = {}  # the text of date cells seen -> their value

    def read(self, archive: zipfile.ZipFile, part: str, budget: _Budget) -> ParsedFile:
        try:
            _parse_part(archive, part, budget, self.start, self.end, self.characters)
        except _Stop:
            pass
        if self.columns is None and not self.parsed.errors:
            self.parsed.errors.append((1, self._header_problem({})))
        return self.parsed

    # expat handlers: hot, called for every element of the sheet
    def start(self, name, attrs):
        local = self.names.get(name) or self.names.setdefault(name, name.rpartition(":")[2])
        if local == "c":
            ref = attrs.get("r")
            self.column = self._column(ref) if ref else self.column + 1
            self.cell_type = attrs.get("t", "n")
            self.cell_style = attrs.get("s")
            self.formula = False
            self.value = None
        elif local == "v" or local == "t":
            self.collecting = True
        elif local == "f":
            self.formula = True
        elif local == "row":
            ref = attrs.get("r")
            self.row_no = int(ref) if ref else self.row_no + 1
            self.cells = {}
            self.row_has_value = False
            self.column = 0

    def characters(self, data):
        if self.collecting:
            value = self.value
            self.value = data if value is None else (value + data)[:MAX_CELL_TEXT]

    def end(self, name):
        local = self.names[name]
        if local == "v" or local == "t":
            self.collecting = False
        elif local == "c":
            if self.value is not None or self.formula:
                self.row_has_value = True
                columns = self.columns
                if columns is None or self.column in columns:
                    self.cells[self.column] = (self.cell_type, self.cell_style, self.value, self.formula)
        elif local == "row":
            self._end_row()

    def _column(self, ref: str) -> int:
        letters = ref.rstrip("0123456789")
        column = self.column_cache.get(letters)
        if column is None:
            column = 0
            for letter in letters.upper():
                column = column * 26 + ord(letter) - 64
            self.column_cache[letters] = column
        return column

    def _end_row(self) -> None:
        parsed = self.parsed
        if self.columns is None:
            header = {column: cell for column, cell in self.cells.items() if column <= MAX_HEADER_COLUMNS}
            columns = self._header_columns(header) if self.row_no == 1 else None
            if not isinstance(columns, tuple):
                parsed.rows_scanned = 1
                parsed.errors.append((1, columns or self._header_problem({})))
                raise _Stop
            self.columns = columns
            self.letters = (_column_letter(columns[0]), _column_letter(columns[1]))
            return
        parsed.rows_scanned += 1
        if not self.row_has_value:
            return
        self.rows_with_values += 1
        if self.rows_with_values > self.max_rows:
            raise ImportRejected(message("expiry_import.too_many_rows", max=count_param(self.max_rows)))
        number_col, expiry_col = self.columns
        number_cell, expiry_cell = self.cells.get(number_col), self.cells.get(expiry_col)
        if self._blank(number_cell) and self._blank(expiry_cell):
            return  # values only in other columns: not a device row
        parsed.rows_total += 1
        row_no = self.row_no
        number, number_error = self._number(number_cell, f"{self.letters[0]}{row_no}")
        expires_on, date_error = self._date(expiry_cell, f"{self.letters[1]}{row_no}")
        if number_error is None and date_error is None:
            if number not in self.first_row:
                self.first_row[number] = row_no
                parsed.rows.append(ParsedRow(row_no, number, expires_on))
                return
        errors = parsed.errors
        for reason in (number_error, date_error):
            if reason is not None:
                errors.append((row_no, reason))
        if number is not None:
            if number in self.first_row:
                errors.append((row_no, message("expiry_import.duplicate", number=number, row=self.first_row[number])))
            else:
                self.first_row[number] = row_no

    # cells: (type, style, text, formula)
    def _blank(self, cell) -> bool:
        if cell is None:
            return True
        if cell[3]:
            return False
        value = self._value(cell)
        return value is None or (isinstance(value, str) and not value.strip())

    def _value(self, cell):
        """The cell's value as openpyxl would give it: str, int/float, bool, date, or None."""
        kind, style, text, _formula = cell
        if text is None:
            return None
        if kind == "s":
            strings = self.book.strings
            index = _int(text, -1)
            return strings[index] if 0 <= index < len(strings) else None
        if kind in ("inlineStr", "str", "e"):
            return _cut(text)
        if kind == "b":
            return text.strip() in ("1", "true")
        if kind == "d":
            try:
                return datetime.fromisoformat(text.strip()[:19]).date()
            except ValueError:
                return _cut(text)
        is_date = style is not None and style in self.date_styles
        if is_date and text in self.dates:  # a column of dates repeats a few hundred serials
            return self.dates[text]
        try:
            number = int(text) if text.strip().lstrip("-").isdigit() else float(text)
        except ValueError:
            return _cut(text)
        if is_date:
            value = self.dates[text] = self._serial_date(number)
            return value
        return number

    def _serial_date(self, serial: float) -> date | float:
        """A date cell's serial number as a date; a serial no date can have stays a number."""
        if not 0 < serial < 2_958_466:  # 9999-12-31 is serial 2,958,465
            return serial
        days = int(serial)
        if self.book.date1904:
            return _EPOCH_1904 + timedelta(days=days)
        if days < 61:  # Excel's 1900 calendar believes in 29 February 1900
            return _EPOCH_1900 + timedelta(days=days + 1) if days != 60 else serial
        return _EPOCH_1900 + timedelta(days=days)

    def _header_columns(self, header: dict) -> tuple[int, int] | str:
        wanted = {"number": {_normal(h) for h in NUMBER_HEADERS}, "expiry": {_normal(h) for h in EXPIRY_HEADERS}}
        found: dict[str, list[int]] = {"number": [], "expiry": []}
        for column in sorted(header):
            cell = header[column]
            value = self._value(cell)
            if value is None:
                continue
            for key, names in wanted.items():
                if not cell[3] and _normal(value) in names:
                    found[key].append(column)
        if len(found["number"]) == 1 and len(found["expiry"]) == 1:
            return found["number"][0], found["expiry"][0]
        return self._header_problem(header)

    def _header_problem(self, header: dict) -> dict:
        seen = [str(v) for v in (self._value(header[c]) for c in sorted(header)) if v is not None]
        return message("expiry_import.headers", number=NUMBER_HEADERS[0], expiry=EXPIRY_HEADERS[0],
                       number_zh=NUMBER_HEADERS[1], expiry_zh=EXPIRY_HEADERS[1],
                       found=", ".join(seen[:10]) or message("expiry_import.nothing"))

    # A reason names the cell (column and row) and, where the cell holds one, the value at fault.
    def _number(self, cell, name: str) -> tuple[str | None, dict | None]:
        if cell is not None and cell[3]:
            return None, message("expiry_import.number_formula", cell=name)
        value = None if cell is None else self._value(cell)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None, message("expiry_import.number_empty", cell=name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a numeric device number typed into a General cell
        return str(value).strip(), None

    def _date(self, cell, name: str) -> tuple[date | None, dict | None]:
        if cell is not None and cell[3]:
            return None, message("expiry_import.date_formula", cell=name)
        value = None if cell is None else self._value(cell)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None, message("expiry_import.date_empty", cell=name)
        if isinstance(value, date):
            return _in_window(value, name)
        if isinstance(value, str):
            text = value.strip()
            match = _TEXT_DATE.fullmatch(text)
            if match:
                try:
                    day = date(int(match[1]), int(match[3]), int(match[4]))
                except ValueError:
                    return None, message("expiry_import.date_impossible", value=text, cell=name)
                return _in_window(day, name)
            return None, message("expiry_import.date_text", value=text[:40], cell=name)
        if cell[0] == "n" and isinstance(value, (int, float)) and cell[1] in self.date_styles:
            return None, _outside(f"{value:g}", name)  # a serial number no date has
        return None, message("expiry_import.date_value", value=str(value)[:40], cell=name)


def _in_window(day: date, name: str) -> tuple[date | None, dict | None]:
    if EARLIEST_EXPIRY <= day <= LATEST_EXPIRY:
        return day, None
    return None, _outside(day.isoformat(), name)


def _outside(value: str, name: str) -> dict:
    return message("expiry_import.date_outside", value=value, cell=name, first=EARLIEST_EXPIRY.isoformat(),
                   last=LATEST_EXPIRY.isoformat())


def _normal(text) -> str:
    """A header as compared: spaces collapsed, any case, Vietnamese marks in one form (NFC)."""
    return unicodedata.normalize("NFC", " ".join(str(text).split())).casefold()


# --- preview and commit --------------------------------------------------------------------


def preview(session: Session, actor: User, parsed: ParsedFile) -> ImportReport:
    """Look every device up (one SELECT per 900 numbers) and sort rows into changes and errors."""
    report = ImportReport(errors=list(parsed.errors), rows_total=parsed.rows_total)
    found: dict[str, tuple[int, int, date]] = {}
    numbers = [row.number for row in parsed.rows]
    for start in range(0, len(numbers), _CHUNK):
        rows = session.execute(
            select(Device.number, Device.id, Device.company_id, Device.expires_on)
            .where(Device.number.in_(numbers[start:start + _CHUNK]))
        )
        for number, id_, company_id, expires_on in rows:
            found[number] = (id_, company_id, expires_on, number)
    # A number typed in lower case (gt0001) is the device's, as on the batch suspend page: looked up upper-cased,
    # as device numbers are stored, through the unique index (no scan of the table for a file of unknown numbers).
    lowered = [n for n in dict.fromkeys(numbers) if n not in found and n.upper() != n]
    for start in range(0, len(lowered), _CHUNK):
        chunk: dict[str, list[str]] = {}
        for typed in lowered[start:start + _CHUNK]:
            chunk.setdefault(typed.upper(), []).append(typed)
        rows = session.execute(
            select(Device.number, Device.id, Device.company_id, Device.expires_on)
            .where(Device.number.in_(list(chunk)))
        )
        for number, id_, company_id, expires_on in rows:
            for typed in chunk[number]:
                found[typed] = (id_, company_id, expires_on, number)
    allowed = None if actor.is_staff else scope_company_ids(session, actor)
    first_row: dict[int, int] = {}  # device id → the row that named it first
    for row in parsed.rows:
        device = found.get(row.number)
        if device is None:
            report.errors.append((row.row_no, message("expiry_import.unknown", number=row.number)))
        elif allowed is not None and device[1] not in allowed:
            report.errors.append((row.row_no, message("expiry_import.out_of_scope", number=row.number)))
        elif device[0] in first_row:
            report.errors.append((row.row_no, message("expiry_import.duplicate", number=device[3],
                                                      row=first_row[device[0]])))
        else:
            first_row[device[0]] = row.row_no
            if device[2] == row.expires_on:
                report.unchanged += 1
            else:
                report.changes.append(Change(row.row_no, device[0], device[3], device[2], row.expires_on))
    report.errors.sort(key=lambda error: error[0])
    return report


def error_texts(errors: Sequence[tuple[int, Reason]]) -> list[tuple[int, str]]:
    """The bad rows (row number, reason) with each reason in the reader's language."""
    texts = render_all([reason for _row_no, reason in errors])
    return [(row_no, text) for (row_no, _reason), text in zip(errors, texts)]


def stored_errors(errors: Sequence[tuple[int, Reason]], limit: int = 1000, total: int | None = None) -> dict:
    """The bad rows as an import keeps them: `errors_data`, one stored message a line ("row N: reason", the
    first `limit`), shown in the reader's language; `errors`, the same lines in English, one a line.
    `total`: how many there were when `errors` holds only the first ones (default: as many as it holds)."""
    lines = [message("import.row", row=row_no, reason=reason) for row_no, reason in errors[:limit]]
    total = len(errors) if total is None else total
    if total > limit:
        lines.append(message("import.more", n=total - limit))
    return {"errors": "\n".join(english_all(lines)), "errors_data": lines or None}


def stored_refusal(refusal: ImportRejected) -> dict:
    """A refused file as its import keeps it (see stored_errors): the refusal's message and English text."""
    if refusal.data is None:  # a text in the uploader's language: kept as it is
        return {"errors": str(refusal), "errors_data": None}
    return {"errors": english(refusal.data), "errors_data": [refusal.data]}


def first_error(import_record: ExpiryImport) -> str:
    """An import's first stored error line in the reader's language ("" if none); an import stored before
    messages were kept: its text."""
    if import_record.errors_data:
        return render(import_record.errors_data[0], import_record.errors.partition("\n")[0])
    return (import_record.errors or "").partition("\n")[0]


def record_preview(import_record: ExpiryImport, report: ImportReport) -> None:
    """Set an import's counts, stored errors and status (previewed, or failed if any row is bad)."""
    import_record.status = "previewed" if report.ok else "failed"
    import_record.rows_total = report.rows_total
    import_record.rows_changed = len(report.changes)
    import_record.rows_failed = report.rows_failed
    for name, value in stored_errors(report.errors).items():
        setattr(import_record, name, value)


def refuse_commit(session: Session, import_record: ExpiryImport, report: ImportReport) -> bool:
    """Record that a previewed import turned bad when committed (its rows and errors now), unless another
    request claimed it meanwhile (a conditional UPDATE, as the claim); returns whether it was recorded."""
    table = ExpiryImport.__table__
    return session.execute(
        update(table).where(table.c.id == import_record.id, table.c.status == "previewed")
        .values(status="failed", rows_total=report.rows_total, rows_changed=len(report.changes),
                rows_failed=report.rows_failed, **stored_errors(report.errors))).rowcount == 1


def plan_path(folder: str | os.PathLike, import_id: int) -> Path:
    """Where the commit of import `import_id` keeps its changes (old and new expiry), to resume or set back."""
    return Path(folder) / f"{import_id}.plan.json"


def _save_plan(path: Path, import_id: int, changes: Sequence[Change]) -> None:
    """Keep the sorted changes of a claimed commit (JSON, written atomically) before its first chunk."""
    payload = {"import_id": import_id, "rows": [c.row_no for c in changes], "ids": [c.device_id for c in changes],
               "numbers": [c.number for c in changes], "old": [c.old.toordinal() for c in changes],
               "new": [c.new.toordinal() for c in changes]}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))  # one-shot: the C encoder
    os.replace(temporary, path)


def _load_plan(path: Path | None, import_id: int) -> list[Change] | None:
    """The changes kept by _save_plan for that import, or None when there are none."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload["import_id"] != import_id:
            return None
        day = date.fromordinal
        columns = (payload["rows"], payload["ids"], payload["numbers"], payload["old"], payload["new"])
        return [Change(row_no, device_id, number, day(old), day(new))
                for row_no, device_id, number, old, new in zip(*columns, strict=True)]
    except (AttributeError, OSError, ValueError, KeyError, TypeError):
        return None


def commit(session: Session, actor: User, report: ImportReport | None, import_record: ExpiryImport,
           now: datetime | None = None, *, plan_file: Path | None = None,
           commit: Callable[[], None] | None = None) -> int:
    """Apply a clean report a chunk at a time (COMMIT_CHUNK devices, sorted by id), audit it once, mark it committed.

    The import is claimed first (previewed → committing, a conditional UPDATE: of two concurrent
    commits one wins). `commit`, when given, is called after the claim and after each chunk: each
    is then its own short write transaction, and the import shows its progress (rows_applied of
    rows_changed). The changes are kept in `plan_file` before the first chunk, so that an import
    interrupted half-way (still "committing", its progress not moving for STALE_AFTER) resumes
    where it stopped when committed again (`report` is then not needed), or is set back.

    Each chunk's UPDATE changes a device only from the expiry the preview showed. A device that
    changed since makes the commit fail: the chunks already applied are set back (their devices
    still at the new expiry), the import is marked failed naming the devices, and ImportRejected
    says that nothing was changed. Without `commit`, everything is the caller's one transaction:
    a conflict raises ImportRejected and the caller rolls back.

    Returns how many devices changed. Refuses a report with any bad row, and an import not (or no
    longer) waiting, or being committed by another request right now.
    """
    chunks = None
    if report is not None and not report.errors:
        # Prepared before the first statement: on SQLite a write request's first statement takes the lock.
        changes = sorted(report.changes, key=lambda c: c.device_id)  # in table order; one lock order on PostgreSQL
        chunks = _Chunks(session, changes, commit)
    require_role(actor, IMPORT_ROLES)
    check_committable(import_record)
    now = now or utcnow()
    import_id, filename, resuming = import_record.id, import_record.filename, import_record.status == "committing"
    table = ExpiryImport.__table__
    if resuming:
        seen = import_record.rows_applied
        claim = (update(table).where(table.c.id == import_id, table.c.status == "committing",
                                     table.c.rows_applied == seen,
                                     or_(table.c.progress_at.is_(None), table.c.progress_at < now - STALE_AFTER))
                 .values(progress_at=now))
    elif report is None:
        raise ValueError(f"import #{import_id} is not being committed: its report is needed")
    elif chunks is None:
        raise ImportRejected(_l("The file has %(n)s bad rows; nothing was changed.", n=report.rows_failed))
    else:
        seen = 0
        claim = (update(table).where(table.c.id == import_id, table.c.status == "previewed")
                 .values(status="committing", rows_applied=0, progress_at=now, committed_at=None,
                         rows_total=report.rows_total, rows_changed=len(chunks.changes), rows_failed=0, errors="",
                         errors_data=None))
    if session.execute(claim).rowcount != 1:
        session.refresh(import_record)
        check_committable(import_record)
        raise ImportRejected(_l("Import #%(id)s is being committed by another request: %(done)s of %(n)s devices "
                                "applied. Reload the page to follow it.", id=import_id,
                                done=format_number(import_record.rows_applied), n=format_number(import_record.rows_changed)))
    if commit is not None:
        commit()
    if resuming:
        changes = _load_plan(plan_file, import_id)
        if changes is None:
            _lost_plan(session, import_id, seen, commit)
        chunks = _Chunks(session, changes, commit)
    elif commit is not None and plan_file is not None:
        _save_plan(plan_file, import_id, chunks.changes)
    try:
        return chunks.run(seen, actor, import_id, filename, now)
    except Exception as exc:
        if commit is not None and not isinstance(exc, DomainError):
            _release(session, import_id, commit)
        raise


def _lost_plan(session: Session, import_id: int, applied: int, commit) -> None:
    """A resumed import whose kept changes are gone: before any chunk it waits again; after, it cannot go on."""
    table = ExpiryImport.__table__
    if applied == 0:
        session.execute(update(table).where(table.c.id == import_id, table.c.status == "committing",
                                            table.c.rows_applied == 0)
                        .values(status="previewed", progress_at=None))
        if commit is not None:
            commit()
        raise ImportRejected(_l("Import #%(id)s was interrupted before it changed anything: commit it again.",
                                id=import_id))
    raise ImportRejected(_l("Import #%(id)s cannot be resumed: the record of its changes is no longer stored "
                            "(%(done)s devices were set).", id=import_id, done=format_number(applied)))


def _release(session: Session, import_id: int, commit: Callable[[], None]) -> None:
    """After an error the process survived: the import may be resumed at once (no progress time)."""
    session.rollback()
    table = ExpiryImport.__table__
    try:
        session.execute(update(table).where(table.c.id == import_id, table.c.status == "committing")
                        .values(progress_at=None))
        commit()
    except Exception:  # the error being raised says more than this one (a busy database, most likely)
        session.rollback()


class _Chunks:
    """One commit's chunked UPDATEs: each chunk claims its place in the import, then moves its devices."""

    def __init__(self, session: Session, changes: Sequence[Change], commit: Callable[[], None] | None):
        """Prepare the statements and their parameters (no statement runs here)."""
        self.session, self.changes, self.commit = session, changes, commit
        dialect = session.get_bind().dialect
        self.sqlite = dialect.name == "sqlite"
        self.sane_rowcount = dialect.supports_sane_multi_rowcount
        # As the driver takes them (SQLite keeps dates as ISO text): no per-row work by SQLAlchemy
        # inside the write lock.
        as_stored = date.isoformat if self.sqlite else (lambda day: day)
        self.forward = [(as_stored(c.new), c.device_id, as_stored(c.old)) for c in changes]
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # The preview already refused devices outside the actor's scope; only staff import (IMPORT_ROLES).
        self.statement = f"UPDATE device SET expires_on = {mark} WHERE id = {mark} AND expires_on = {mark}"
        self.table = ExpiryImport.__table__

    def _done(self) -> None:
        if self.commit is not None:
            self.commit()

    def _progress(self, before: int, after: int, **values) -> None:
        """Move the import's progress from `before` to `after`, or stop: another request moved it."""
        table = self.table
        moved = self.session.execute(
            update(table).where(table.c.id == self.import_id, table.c.status == "committing",
                                table.c.rows_applied == before)
            .values(rows_applied=after, progress_at=utcnow(), **values)).rowcount
        if moved != 1:
            raise ImportRejected(_l("Import #%(id)s is being committed by another request; reload the page to "
                                    "follow it.", id=self.import_id))

    def _update(self, parameters: list[tuple]) -> int:
        connection = self.session.connection()
        if not self.sqlite:
            return connection.exec_driver_sql(self.statement, parameters).rowcount
        # SQLite's default page cache (2 MB) thrashes on UPDATEs that touch three expiry indexes all
        # over a big table: a larger one while a chunk runs.
        cache = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        connection.exec_driver_sql(f"PRAGMA cache_size = {-UPDATE_CACHE_KB}")
        try:
            return connection.exec_driver_sql(self.statement, parameters).rowcount
        finally:
            connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")

    def run(self, applied: int, actor: User, import_id: int, filename: str, now: datetime) -> int:
        """Apply the chunks from `applied` on; the last one also marks the import committed and audits it."""
        self.actor, self.import_id, self.filename, self.now = actor, import_id, filename, now
        total, size = len(self.forward), COMMIT_CHUNK
        while applied < total:
            end = min(applied + size, total)
            finished = end == total
            extra = {"status": "committed", "committed_at": self.now, "rows_changed": total} if finished else {}
            self._progress(applied, end, **extra)
            changed = self._update(self.forward[applied:end])
            if changed != end - applied and self.sane_rowcount:
                self._conflict(applied)
            if finished:
                self._audit()
            self._done()
            applied = end
        self.session.expire_all()
        return total

    def _audit(self) -> None:
        shown = "; ".join(f"{c.number}: {c.old} → {c.new}" for c in self.changes[:SHOWN_IN_AUDIT])
        more = " …" if len(self.changes) > SHOWN_IN_AUDIT else ""
        record(self.session, self.actor, "expiry_import", "device", [c.device_id for c in self.changes],
               message("audit.expiry_import", id=self.import_id, file=self.filename, count=len(self.changes),
                       changes=shown + more))

    def _conflict(self, applied: int) -> None:
        """Some devices of the chunk at `applied` changed since the preview: set the import back, fail it."""
        if self.commit is not None:
            self.session.rollback()
        numbers = self._changed_since(applied)
        named = ", ".join(numbers[:CONFLICTS_NAMED]) + (", …" if len(numbers) > CONFLICTS_NAMED else "")
        refusal = ImportRejected(message("expiry_import.conflict", id=self.import_id, n=len(numbers), numbers=named))
        if self.commit is None:
            raise refusal  # one transaction: the caller rolls it back
        kept = self._set_back(applied)
        table = self.table
        self.session.execute(
            update(table).where(table.c.id == self.import_id, table.c.status == "committing", table.c.rows_applied == 0)
            .values(status="failed", progress_at=utcnow(), **stored_refusal(refusal)))
        if applied:
            record(self.session, self.actor, "expiry_import", "device", [c.device_id for c in self.changes[:applied]],
                   message("audit.expiry_import.set_back", id=self.import_id, file=self.filename, count=len(numbers),
                           numbers=named, applied=applied, kept=kept))
        self._done()
        raise refusal

    def _changed_since(self, applied: int) -> list[str]:
        """The device numbers, from the chunk at `applied` on, whose expiry is no longer the preview's.

        Without a commit callable the failed chunk is not rolled back yet: its devices at their new
        expiry are this chunk's own doing."""
        rest = self.changes[applied:]
        ours = COMMIT_CHUNK if self.commit is None else 0
        now_expires: dict[int, date] = {}
        for start in range(0, len(rest), _CHUNK):
            ids = [c.device_id for c in rest[start:start + _CHUNK]]
            now_expires.update(self.session.execute(
                select(Device.id, Device.expires_on).where(Device.id.in_(ids))).all())
        return [c.number for i, c in enumerate(rest)
                if now_expires.get(c.device_id) != c.old and not (i < ours and now_expires.get(c.device_id) == c.new)]

    def _set_back(self, applied: int) -> int:
        """Set the first `applied` changes back to their old expiry, the last chunk first, each its own
        transaction that moves the progress down with it; returns how many devices were changed by
        someone else since and are left as they are."""
        kept, size = 0, COMMIT_CHUNK
        backward = [(old, device_id, new) for new, device_id, old in self.forward]
        while applied > 0:
            start = max(0, applied - size)
            self._progress(applied, start)
            kept += (applied - start) - self._update(backward[start:applied])
            self._done()
            applied = start
        return kept


def check_committable(import_record: ExpiryImport) -> None:
    """Raise ImportRejected unless the import is a clean preview, or a commit that may be resumed."""
    if import_record.status == "committed":
        raise ImportRejected(_l("Import #%(id)s was already committed; nothing was changed.", id=import_record.id))
    if import_record.status not in ("previewed", "committing"):
        raise ImportRejected(_l("Import #%(id)s has bad rows and cannot be committed; fix the file and upload "
                                "it again.", id=import_record.id))
