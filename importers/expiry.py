"""批量设置过期时间: the expiry workbook — template, archive checks, parsing, preview, commit.

Plain functions, no Flask request objects: the view (and a CLI or a job) reads the upload,
calls them in order and commits once.

    check_archive(data, ...)          the file is a real, reasonably sized xlsx, not a zip bomb
    read_rows(data, max_rows)         the rows of the first sheet, and each bad row with its reason
    preview(session, actor, parsed)   old → new expiry per device, unknown/out-of-scope devices
    commit(session, actor, report, …) everything in set-based UPDATEs, audited; flush, no commit

The workbook is read with openpyxl in read-only mode (streaming), because it tells formula
cells apart and never materialises the sheet's declared range. python-calamine parses about
15x faster but reports a formula's cached value as if it were typed, and builds the dense
range of the used area in memory (a 5 KB file with one cell in XFD2000 took 1 GB).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from actions import DomainError, require_role, scope_company_ids, scope_filter
from actions.audit import record
from models import Device, ExpiryImport, User, utcnow

IMPORT_ROLES = {"sales"}
DATE_FORMAT = "yyyy-mm-dd"
_CHUNK = 900  # stays under SQLite's bound-parameter limit

# Archive limits (DESIGN.md section 6). A 200,000-row sheet of the template is about 25 MB of XML.
MAX_ENTRIES = 200
MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024
MAX_RATIO = 100  # Apache POI's default: deflate beyond 100:1 is a bomb, not a spreadsheet
RATIO_CHECK_FROM = 1024 * 1024  # tiny parts (styles, an empty sheet) compress far better
MAX_HEADER_COLUMNS = 50  # the headers must be within the first 50 columns (A:AX)

# Headers are matched case- and space-insensitively; the template writes the first of each.
NUMBER_HEADERS = ("Device number", "设备号", "设备编号")
EXPIRY_HEADERS = ("New expiry date", "到期时间", "新到期时间", "过期时间", "Expiry date")
HEADERS_BY_LANGUAGE = {"en": (NUMBER_HEADERS[0], EXPIRY_HEADERS[0]), "zh": (NUMBER_HEADERS[1], EXPIRY_HEADERS[1])}

_TEXT_DATE = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})")


class ImportRejected(DomainError):
    """The whole file is refused (not an xlsx, too big, a zip bomb, no rows…); nothing is read."""


class ParsedRow(NamedTuple):
    row_no: int
    number: str
    expires_on: date


@dataclass
class ParsedFile:
    """The good rows and the bad ones (row number, reason) of one workbook."""

    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
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
    errors: list[tuple[int, str]] = field(default_factory=list)
    unchanged: int = 0
    rows_total: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def rows_failed(self) -> int:
        return len({row_no for row_no, _reason in self.errors})


# --- template ------------------------------------------------------------------------------


def build_template(language: str = "en", max_rows: int = 200_000, max_bytes: int = 10 * 1024 * 1024) -> bytes:
    """The blank workbook: a header row, date-formatted expiry column, and an instructions sheet."""
    number_header, expiry_header = HEADERS_BY_LANGUAGE["zh" if language.startswith("zh") else "en"]
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Devices"
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

    notes = workbook.create_sheet("Instructions")
    notes.column_dimensions["A"].width = 110
    lines = [
        _("How to fill in this workbook"),
        "",
        _("1. Fill in the first sheet, one device per row, starting on row 2. Keep the header row as it is."),
        _("2. %(column)s: the device number exactly as Renewdesk shows it.", column=number_header),
        _("3. %(column)s: a date cell, or text written as YYYY-MM-DD (2027-12-31) or YYYY/MM/DD.",
          column=expiry_header),
        _("4. List each device once. Type values: a cell with a formula is refused."),
        _("5. Headers may be in English (%(en)s) or Chinese (%(zh)s); other columns are ignored.",
          en=" / ".join(HEADERS_BY_LANGUAGE["en"]), zh=" / ".join(HEADERS_BY_LANGUAGE["zh"])),
        _("6. At most %(rows)s rows and %(size)s per file.", rows=f"{max_rows:,}", size=describe_size(max_bytes)),
        _("7. Upload the file and check the preview: each device with its old and new expiry date, and "
          "each bad row with its row number and reason. A file with any bad row changes nothing."),
        _("8. Commit to apply every change at once. Uploading the same file again changes nothing more."),
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
    max_rows: int | None = None,
) -> None:
    """Raise ImportRejected unless `data` is an xlsx of sane size, entry count and compression.

    With `max_rows`, the shared-string table is counted too (a byte scan, before openpyxl,
    which parses that whole table slowly when it opens the workbook): a sheet of at most
    `max_rows` rows of two columns needs a few strings per row, never many more.

    The sizes come from the zip's central directory; Python's zipfile never inflates an entry
    beyond its declared size (it fails the CRC instead), so checking them bounds what openpyxl
    will decompress.
    """
    if filename is not None and not filename.lower().endswith(".xlsx"):
        raise ImportRejected(_l("Only .xlsx workbooks can be imported; %(name)s is not one.", name=filename))
    size = _size_of(data)
    if size > max_bytes:
        raise ImportRejected(_l("The file is larger than %(size)s.", size=describe_size(max_bytes)))
    try:
        with zipfile.ZipFile(_stream(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ImportRejected(_l("This is not an .xlsx workbook (Excel 2007 or later).")) from exc
    if len(entries) > max_entries:
        raise ImportRejected(_l("The workbook has %(n)s parts; at most %(max)s are accepted.",
                                n=len(entries), max=max_entries))
    names = {entry.filename for entry in entries}
    if "xl/workbook.xml" not in names or "[Content_Types].xml" not in names:
        raise ImportRejected(_l("This is not an .xlsx workbook (Excel 2007 or later)."))
    total = 0
    for entry in entries:
        total += entry.file_size
        if entry.file_size > RATIO_CHECK_FROM and entry.file_size > max_ratio * max(entry.compress_size, 1):
            raise ImportRejected(_l("The workbook is compressed suspiciously well (%(name)s expands "
                                    "more than %(ratio)s times): refused as a possible zip bomb.",
                                    name=entry.filename, ratio=max_ratio))
    if total > max_uncompressed:
        raise ImportRejected(_l("The workbook expands to more than %(size)s: refused as a possible zip bomb.",
                                size=describe_size(max_uncompressed)))
    if max_rows is not None and "xl/sharedStrings.xml" in names:
        limit = STRINGS_PER_ROW * max_rows + 100
        with zipfile.ZipFile(_stream(data)) as archive:
            if _count_shared_strings(archive, limit) > limit:
                raise ImportRejected(_l("The workbook holds far more text than %(rows)s rows need: refused.",
                                        rows=max_rows))


STRINGS_PER_ROW = 4
_SHARED_STRING = re.compile(rb"<(?:\w+:)?si[\s>/]")


def _count_shared_strings(archive: zipfile.ZipFile, stop_after: int) -> int:
    """How many <si> entries xl/sharedStrings.xml holds, counted in chunks (stops past `stop_after`)."""
    count, tail = 0, b""
    with archive.open("xl/sharedStrings.xml") as part:
        while chunk := part.read(1 << 20):
            data = tail + chunk
            count += len(_SHARED_STRING.findall(data))
            if count > stop_after:
                break
            tail = data[-16:]
            count -= len(_SHARED_STRING.findall(tail))  # the overlap is scanned again next round
    return count


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


# --- reading -------------------------------------------------------------------------------


def read_rows(data: bytes | BinaryIO, max_rows: int = 200_000) -> ParsedFile:
    """The data rows of the first sheet (headers on row 1), each bad row with its reason.

    Call check_archive first. Raises ImportRejected when the workbook cannot be read, has no
    data rows or more than `max_rows`.
    """
    try:
        # openpyxl warns (UserWarning) about files it reads anyway: a date serial out of range
        # (that cell comes back as an error value and is reported as a bad row), no default style.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            workbook = load_workbook(_stream(data), read_only=True, data_only=False)
            try:
                return _read_sheet(workbook.worksheets[0], max_rows)
            finally:
                workbook.close()
    except ImportRejected:
        raise
    except Exception as exc:  # any malformed part of an untrusted file: refuse it, whatever broke
        raise ImportRejected(_l("The workbook could not be read (%(error)s). Save it again from Excel "
                                "as .xlsx and retry.", error=type(exc).__name__)) from exc


def _read_sheet(sheet, max_rows: int) -> ParsedFile:
    # The declared dimension (<dimension ref="A1:XFD1048576"/>) is not trusted: without it openpyxl
    # yields only the rows present in the file, and we read only the two header columns.
    sheet.reset_dimensions()
    parsed = ParsedFile()
    first = sheet.iter_rows(min_row=1, max_row=1, max_col=MAX_HEADER_COLUMNS)
    header = next(first, ())
    first.close()
    columns = _header_columns(header)
    if isinstance(columns, str):
        parsed.errors.append((1, columns))
        parsed.rows_scanned = 1
        return parsed
    number_col, expiry_col = columns
    width = max(columns)
    number_letter, expiry_letter = get_column_letter(number_col), get_column_letter(expiry_col)
    first_row: dict[str, int] = {}
    # openpyxl fills gaps between rows with empty rows, so the count is the row number.
    for row_no, row in enumerate(sheet.iter_rows(min_row=2, max_col=width), start=2):
        parsed.rows_scanned += 1
        number_cell, expiry_cell = row[number_col - 1], row[expiry_col - 1]
        if _is_blank(number_cell) and _is_blank(expiry_cell):
            continue
        parsed.rows_total += 1
        if parsed.rows_total > max_rows:
            raise ImportRejected(_l("The file has more than %(max)s rows; split it into smaller files.",
                                    max=f"{max_rows:,}"))
        number, number_error = _read_number(number_cell, number_letter, row_no)
        expires_on, date_error = _read_date(expiry_cell, expiry_letter, row_no)
        reasons = [r for r in (number_error, date_error) if r]
        if number is not None:
            if number in first_row:
                reasons.append(_("duplicate in file: device %(number)s is also on row %(row)s",
                                 number=number, row=first_row[number]))
            else:
                first_row[number] = row_no
        if reasons:
            parsed.errors.append((row_no, "; ".join(reasons)))
        else:
            parsed.rows.append(ParsedRow(row_no, number, expires_on))
    if parsed.rows_total == 0:
        raise ImportRejected(_l("The file has no rows below the header row."))
    return parsed


def _normal(text) -> str:
    return " ".join(str(text).split()).casefold()


def _header_columns(header) -> tuple[int, int] | str:
    """The 1-based columns of the two headers, or the reason the header row is wrong."""
    wanted = {"number": {_normal(h) for h in NUMBER_HEADERS}, "expiry": {_normal(h) for h in EXPIRY_HEADERS}}
    found: dict[str, list[int]] = {"number": [], "expiry": []}
    seen = []
    for index, cell in enumerate(header, start=1):
        if cell.value is None:
            continue
        seen.append(str(cell.value))
        text = _normal(cell.value)
        for key, names in wanted.items():
            if cell.data_type != "f" and text in names:
                found[key].append(index)
    if len(found["number"]) == 1 and len(found["expiry"]) == 1:
        return found["number"][0], found["expiry"][0]
    return _("wrong headers: the first row must hold %(number)s and %(expiry)s (or %(number_zh)s and "
             "%(expiry_zh)s), each once; found: %(found)s",
             number=NUMBER_HEADERS[0], expiry=EXPIRY_HEADERS[0], number_zh=NUMBER_HEADERS[1],
             expiry_zh=EXPIRY_HEADERS[1], found=", ".join(seen[:10]) or _("nothing"))


def _is_blank(cell) -> bool:
    value = cell.value
    return value is None or (isinstance(value, str) and not value.strip())


def _read_number(cell, letter: str, row_no: int) -> tuple[str | None, str | None]:
    if cell.data_type == "f":
        return None, _("formula in cell %(cell)s: type the device number, not a formula", cell=f"{letter}{row_no}")
    value = cell.value
    if _is_blank(cell):
        return None, _("empty cell: %(cell)s (device number)", cell=f"{letter}{row_no}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric device number typed into a General cell
    return str(value).strip(), None


def _read_date(cell, letter: str, row_no: int) -> tuple[date | None, str | None]:
    value = cell.value
    if isinstance(value, datetime) and cell.data_type == "d":
        return value.date(), None
    name = f"{letter}{row_no}"
    if cell.data_type == "f":
        return None, _("formula in cell %(cell)s: type the date, not a formula", cell=name)
    if _is_blank(cell):
        return None, _("empty cell: %(cell)s (new expiry date)", cell=name)
    if isinstance(value, date):
        return (value.date() if isinstance(value, datetime) else value), None
    if isinstance(value, str):
        text = value.strip()
        match = _TEXT_DATE.fullmatch(text)
        if match:
            try:
                return date(int(match[1]), int(match[3]), int(match[4])), None
            except ValueError:
                return None, _("impossible date %(value)s in cell %(cell)s", value=text, cell=name)
        return None, _("unparseable date %(value)s in cell %(cell)s: use YYYY-MM-DD",
                       value=text[:40], cell=name)
    return None, _("unparseable date %(value)s in cell %(cell)s: use a date cell or YYYY-MM-DD",
                   value=str(value)[:40], cell=name)


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
            found[number] = (id_, company_id, expires_on)
    allowed = None if actor.is_staff else scope_company_ids(session, actor)
    for row in parsed.rows:
        device = found.get(row.number)
        if device is None:
            report.errors.append((row.row_no, _("unknown device %(number)s", number=row.number)))
        elif allowed is not None and device[1] not in allowed:
            report.errors.append((row.row_no, _("out of scope: device %(number)s is not one of your "
                                                "companies' devices", number=row.number)))
        elif device[2] == row.expires_on:
            report.unchanged += 1
        else:
            report.changes.append(Change(row.row_no, device[0], row.number, device[2], row.expires_on))
    report.errors.sort(key=lambda error: error[0])
    return report


def errors_text(errors: Sequence[tuple[int, str]], limit: int = 1000) -> str:
    """The bad rows as stored on ExpiryImport.errors: "row N: reason", one a line, the first `limit`."""
    lines = [_("row %(row)s: %(reason)s", row=row_no, reason=reason) for row_no, reason in errors[:limit]]
    if len(errors) > limit:
        lines.append(_("… and %(n)s more", n=len(errors) - limit))
    return "\n".join(lines)


def record_preview(import_record: ExpiryImport, report: ImportReport) -> None:
    """Set an import's counts, stored errors and status (previewed, or failed if any row is bad)."""
    import_record.status = "previewed" if report.ok else "failed"
    import_record.rows_total = report.rows_total
    import_record.rows_changed = len(report.changes)
    import_record.rows_failed = report.rows_failed
    import_record.errors = errors_text(report.errors)


def commit(session: Session, actor: User, report: ImportReport, import_record: ExpiryImport,
           now: datetime | None = None) -> int:
    """Apply a clean report in set-based UPDATEs, audit it, mark the import committed; flush only.

    Returns how many devices changed. Refuses a report with any bad row, and an import that is
    not (or no longer) waiting to be committed.
    """
    require_role(actor, IMPORT_ROLES)
    if report.errors:
        raise ImportRejected(_l("The file has %(n)s bad rows; nothing was changed.", n=report.rows_failed))
    check_committable(import_record)
    now = now or utcnow()
    # Claim the import with a conditional UPDATE: of two concurrent commits, one wins.
    claimed = session.execute(
        update(ExpiryImport)
        .where(ExpiryImport.id == import_record.id, ExpiryImport.status == "previewed")
        .values(status="committed", committed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        session.refresh(import_record)
        check_committable(import_record)

    by_date: dict[date, list[int]] = defaultdict(list)
    for change in report.changes:
        by_date[change.new].append(change.device_id)
    scope = scope_filter(actor, Device.company_id)  # None for staff; kept for a future customer role
    changed = 0
    for new, ids in by_date.items():
        for start in range(0, len(ids), _CHUNK):
            statement = (
                update(Device)
                .where(Device.id.in_(ids[start:start + _CHUNK]), Device.expires_on != new)
                .values(expires_on=new)
                .execution_options(synchronize_session=False)
            )
            if scope is not None:
                statement = statement.where(scope)
            changed += session.execute(statement).rowcount

    shown = "; ".join(f"{c.number}: {c.old} → {c.new}" for c in report.changes[:200])
    more = " …" if len(report.changes) > 200 else ""
    record(session, actor, "expiry_import", "device", [c.device_id for c in report.changes],
           f"expiry import #{import_record.id} ({import_record.filename}): {changed} devices; {shown}{more}")
    session.flush()
    session.expire_all()
    import_record.rows_total = report.rows_total
    import_record.rows_changed = changed
    import_record.rows_failed = 0
    import_record.errors = ""
    session.flush()
    return changed


def check_committable(import_record: ExpiryImport) -> None:
    """Raise ImportRejected unless the import is a clean preview not committed yet."""
    if import_record.status == "committed":
        raise ImportRejected(_l("Import #%(id)s was already committed; nothing was changed.", id=import_record.id))
    if import_record.status != "previewed":
        raise ImportRejected(_l("Import #%(id)s has bad rows and cannot be committed; fix the file and upload "
                                "it again.", id=import_record.id))
