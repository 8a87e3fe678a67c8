"""Card workbooks (seed 002): template, guarded reading, preview with totals, chunked commit, rollback, export.

The upload goes through importers.expiry.check_archive (size, parts, zip-bomb ratio) before
openpyxl reads it in read-only mode with the declared dimension ignored. The preview sorts every
row into new / duplicate in the file / duplicate in the database / invalid, stages the new rows
(PIN already encrypted) and keeps the first errors; a file with any bad row changes nothing.
The commit moves staged rows into the inventory a chunk at a time, each chunk its own short
transaction committed by the caller, so it can show progress and resume after an interruption.
A whole batch can be rolled back while every card of it is still in stock where it arrived.
"""
from __future__ import annotations

import io
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session

from actions import DomainError, require_role
from actions.audit import record
from actions.texts import label_param, message, render_all
from actions.cards import (
    CARD_ADMIN_ROLES, PLATFORM, CardInput, adjust_on_hand, card_field_problems, card_packages, may_export_pins,
)
from actions.crypto import Vault, mask, normalize
from importers.expiry import ImportRejected, Reason, check_archive, error_texts, file_sha256, stored_errors
from importers.xlsx import write_xlsx
from models import CardImport, CardImportRow, CardMovement, Company, SimCard, User, utcnow

MAX_ROWS = 100_000
CHUNK = 2_000  # rows per commit transaction: well under a second on SQLite
_LOOKUP = 900  # stays under SQLite's bound-parameter limit
ERRORS_KEPT = 1_000  # lines "row N: reason" kept on the import (a row may have several)
ERRORS_SHOWN = 20
MAX_HEADER_COLUMNS = 30

COLUMNS = ("iccid", "phone", "pin", "plan", "valid_until")
HEADERS = {
    "iccid": ("ICCID", "卡号", "ICCID号"),
    "phone": ("Phone number", "手机号", "号码", "手机号码", "Số điện thoại"),
    "pin": ("PIN", "密码", "PIN码"),
    # "Package" / "Gói": the list export's header in English / Vietnamese ("套餐" in Chinese).
    "plan": ("Plan", "套餐", "套餐类型", "套餐编码", "Package", "Gói cước", "Gói"),
    "valid_until": ("Valid until", "有效期", "有效期至", "Hiệu lực đến"),
}
# The template's header row in the reader's language (every one of them is read back on import).
TEMPLATE_HEADERS = {
    "en": ("ICCID", "Phone number", "PIN", "Plan", "Valid until"),
    "zh": ("卡号", "手机号", "密码", "套餐", "有效期"),
    "vi": ("ICCID", "Số điện thoại", "PIN", "Gói cước", "Hiệu lực đến"),
}


@dataclass
class CardPreview:
    """What a workbook holds, sorted: new rows to stage, and the rest by reason.

    A bad row's reasons are stored messages (actions.texts), one per field at fault, each naming the
    field and (but for a PIN) the value: kept on the import and shown in each reader's language. Only
    the first ERRORS_KEPT are kept (a file of 100,000 bad rows would hold half a million); `errors_total`
    counts them all."""

    new: list[tuple[int, CardInput]] = field(default_factory=list)
    errors: list[tuple[int, Reason]] = field(default_factory=list)
    errors_total: int = 0
    valid_texts: dict[int, str] = field(default_factory=dict)  # a valid-until cell that held no date, by row
    duplicate_in_file: int = 0
    duplicate_in_db: int = 0
    invalid: int = 0
    rows_total: int = 0

    def add_errors(self, found: list[tuple[int, Reason]], reasons: Iterable[Reason], row_no: int) -> None:
        """A bad row's reasons into `found` (the errors of one phase, in row order), while it holds fewer
        than ERRORS_KEPT: the first ERRORS_KEPT of the file are among the first of each phase."""
        for reason in reasons:
            self.errors_total += 1
            if len(found) < ERRORS_KEPT:
                found.append((row_no, reason))


def build_template(language: str = "en") -> bytes:
    """The blank card workbook: headers (text columns), and the active card plans on a second sheet."""
    from openpyxl import Workbook  # here, not at start-up: 8 MB per web worker
    from openpyxl.styles import Font, PatternFill

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Cards")  # in the reader's language (the reader takes the first sheet, whatever its name)
    sheet.append(list(TEMPLATE_HEADERS.get(language[:2], TEMPLATE_HEADERS["en"])))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    for letter, width in zip("ABCDE", (24, 16, 12, 16, 14)):
        sheet.column_dimensions[letter].width = width
        sheet.column_dimensions[letter].number_format = "@" if letter != "E" else "yyyy-mm-dd"
    notes = workbook.create_sheet(_("Instructions"))
    notes.column_dimensions["A"].width = 100
    for line in (
        _("One card per row from row 2; keep the header row (English, Chinese or Vietnamese headers)."),
        _("ICCID: 19 or 20 characters starting with 89, typed as text. Phone number: digits. PIN: 4 to 16 letters or digits."),
        _("Plan: the code of an active card package. Valid until: a date (2027-12-31), not in the past."),
        _("At most %(rows)s rows. A file with any bad row changes nothing: fix the rows the preview names.",
          rows=f"{MAX_ROWS:,}"),
    ):
        notes.append([line])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _normal(text) -> str:
    return unicodedata.normalize("NFC", " ".join(str(text).split())).casefold()  # "Gói" typed decomposed too


def _columns(header) -> dict[str, int] | str:
    wanted = {key: {_normal(h) for h in names} for key, names in HEADERS.items()}
    found: dict[str, list[int]] = {key: [] for key in COLUMNS}
    for index, cell in enumerate(header):
        if cell.value is None or cell.data_type == "f":
            continue
        for key, names in wanted.items():
            if _normal(cell.value) in names:
                found[key].append(index)
    if all(len(v) == 1 for v in found.values()):
        return {k: v[0] for k, v in found.items()}
    typed = [" ".join(str(cell.value).split())[:40] for cell in header
             if cell.value is not None and str(cell.value).strip()]
    return _("wrong headers: the first row must hold %(headers)s (or %(headers_zh)s), each once; found: %(found)s",
             headers=", ".join(HEADERS[c][0] for c in COLUMNS), headers_zh=", ".join(HEADERS[c][1] for c in COLUMNS),
             found=", ".join(typed) if typed else _("nothing"))


def _cell(index: int, row_no: int) -> str:
    """A cell's name (C5) from its column's index (from 0) and its row."""
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(index + 1)}{row_no}"


def _text(cell) -> str:
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return normalize(str(value))


def _date(cell) -> date | None:
    value = cell.value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip().replace("/", "-")) if value else None
    except ValueError:
        return None


def read_cards(data: bytes, today: date, max_rows: int = MAX_ROWS) -> tuple[list[tuple[int, CardInput]], CardPreview]:
    """The rows of the first sheet: the well-formed ones, and a preview holding the malformed ones."""
    from openpyxl import load_workbook

    preview = CardPreview()
    rows: list[tuple[int, CardInput]] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
            try:
                sheet = workbook.worksheets[0]
                sheet.reset_dimensions()
                first = sheet.iter_rows(min_row=1, max_row=1, max_col=MAX_HEADER_COLUMNS)
                header = next(first, ())
                first.close()
                columns = _columns(header)
                if isinstance(columns, str):
                    raise ImportRejected(columns)
                width = max(columns.values()) + 1
                for row_no, row in enumerate(sheet.iter_rows(min_row=2, max_col=width), start=2):
                    cells = {key: row[index] for key, index in columns.items()}
                    if all(c.value is None or str(c.value).strip() == "" for c in cells.values()):
                        continue
                    preview.rows_total += 1
                    if preview.rows_total > max_rows:
                        raise ImportRejected(_l("The file has more than %(max)s rows; split it into smaller files.",
                                                max=f"{max_rows:,}"))
                    formulas = [key for key in COLUMNS if cells[key].data_type == "f"]
                    if formulas:
                        preview.invalid += 1
                        preview.add_errors(preview.errors, (
                            message("card_import.formula", value=str(cells[key].value)[:40],
                                    cell=_cell(columns[key], row_no), field=label_param("card_field", key))
                            for key in formulas), row_no)
                        continue
                    if isinstance(cells["iccid"].value, (int, float)):
                        preview.invalid += 1
                        preview.add_errors(preview.errors, (message("card_import.iccid_number",
                                                                    value=_text(cells["iccid"])[:30],
                                                                    cell=_cell(columns["iccid"], row_no)),), row_no)
                        continue
                    valid_until = _date(cells["valid_until"])
                    if valid_until is None and (typed := " ".join(str(cells["valid_until"].value or "").split())):
                        preview.valid_texts[row_no] = typed[:30]  # as typed: named in the reason
                    card = CardInput(_text(cells["iccid"]).upper(), _text(cells["phone"]), _text(cells["pin"]),
                                     _text(cells["plan"]), valid_until)
                    rows.append((row_no, card))
            finally:
                workbook.close()
    except ImportRejected:
        raise
    except Exception as exc:  # any malformed part of an untrusted file: refuse it, whatever broke
        raise ImportRejected(_l("The workbook could not be read (%(error)s). Save it again from Excel "
                                "as .xlsx and retry.", error=type(exc).__name__)) from exc
    if preview.rows_total == 0:
        raise ImportRejected(_l("The file has no rows below the header row."))
    return rows, preview


def _existing(session: Session, column, values: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), _LOOKUP):
        found.update(session.scalars(select(column).where(column.in_(values[start:start + _LOOKUP]))))
    return found


@dataclass
class UploadedCards:
    """A workbook read and checked without touching the database: its rows and their PIN blind indexes."""

    filename: str
    sha256: str
    rows: list[tuple[int, CardInput]]
    preview: CardPreview
    pins: dict[int, str]


def read_upload(vault: Vault, data: bytes, filename: str, today: date,
                max_bytes: int = 10 * 1024 * 1024) -> UploadedCards:
    """Check the archive and read the rows (no database: the slow part holds no lock)."""
    check_archive(data, filename=filename, max_bytes=max_bytes)
    rows, preview = read_cards(data, today)
    pins = {row_no: vault.blind_index(card.pin, "pin") for row_no, card in rows if card.pin}
    return UploadedCards(filename[:255], file_sha256(data), rows, preview, pins)


def existing_keys(session: Session, upload: UploadedCards, release=None) -> dict:
    """The upload's ICCIDs, phone numbers and PIN indexes already in the inventory, and the card plans.

    Reads only; `release` (the console passes its rollback) is called after each batch of lookups so
    that no transaction of this phase lasts long."""
    found: dict = {}
    for key, column, values in (("iccid", SimCard.iccid, [c.iccid for _n, c in upload.rows]),
                                ("phone", SimCard.phone, [c.phone for _n, c in upload.rows]),
                                ("pin", SimCard.pin_index, list(upload.pins.values()))):
        found[key] = set()
        for start in range(0, len(values), 10 * _LOOKUP):
            found[key] |= _existing(session, column, values[start:start + 10 * _LOOKUP])
            if release is not None:
                release()
    found["packages"] = {code: package.id for code, package in card_packages(session).items()}
    return found


def sort_upload(session: Session, actor: User, upload: UploadedCards, today: date, holder_key: int = PLATFORM,
                in_db: dict[str, set[str]] | None = None) -> tuple[CardImport, list[dict]]:
    """Sort the rows into new / duplicate in file / duplicate in the database / invalid; add the CardImport.

    `in_db` is `existing_keys` read beforehand (the console reads it in its own transaction). Returns the
    import (flushed) and the new rows to stage with `stage_rows` — none when any row is bad.

    With `in_db` given, the rows are sorted before the first statement: on SQLite a POST's first
    statement takes the write lock (BEGIN IMMEDIATE), and sorting 100,000 rows takes a second or two.
    """
    if in_db is None:
        require_role(actor, CARD_ADMIN_ROLES)
        in_db = existing_keys(session, upload)
    preview, pins = upload.preview, upload.pins
    packages = in_db["packages"]
    _sort_rows(upload, in_db, today)
    require_role(actor, CARD_ADMIN_ROLES)
    if holder_key != PLATFORM and session.get(Company, holder_key) is None:
        raise DomainError(_l("Holder %(id)s is not a company.", id=holder_key))
    batch = CardImport(actor_id=actor.id, holder_company_id=holder_key or None, filename=upload.filename,
                       file_sha256=upload.sha256, status="previewed", rows_total=preview.rows_total,
                       rows_new=len(preview.new), rows_duplicate_in_file=preview.duplicate_in_file,
                       rows_duplicate_in_db=preview.duplicate_in_db, rows_invalid=preview.invalid,
                       **stored_errors(preview.errors, ERRORS_KEPT, total=preview.errors_total))
    session.add(batch)
    session.flush()
    bad = preview.invalid + preview.duplicate_in_file + preview.duplicate_in_db
    record(session, actor, "preview", "card_import", [batch.id],
           message("audit.cards.preview", file=upload.filename[:100], new=len(preview.new), bad=bad))
    if preview.errors:
        return batch, []
    return batch, [{"import_id": batch.id, "row_no": row_no, "iccid": card.iccid, "phone": card.phone,
                    "pin": card.pin, "pin_index": pins[row_no], "package_id": packages[card.package_code],
                    "valid_until": card.valid_until} for row_no, card in preview.new]


def _sort_rows(upload: UploadedCards, in_db: dict, today: date) -> None:
    """Sort the upload's rows into its preview: new, or bad with the reason (no database)."""
    rows, preview, pins = upload.rows, upload.preview, upload.pins
    packages = in_db["packages"]
    valid_texts, errors = preview.valid_texts, []  # this phase's errors; the reading's are in preview.errors
    first_seen: dict[tuple[str, str], int] = {}
    for row_no, card in rows:
        problems = card_field_problems(card, today, valid_texts.get(row_no, ""))
        if card.package_code not in packages:
            problems.append(message("card.plan_unknown", code=card.package_code[:40]))
        if problems:
            preview.invalid += 1
            preview.add_errors(errors, problems, row_no)
            continue
        keys = (("iccid", card.iccid), ("phone", card.phone), ("pin", pins[row_no]))
        repeated = [(name, value, first_seen[(name, value)]) for name, value in keys if (name, value) in first_seen]
        for name, value in keys:
            first_seen.setdefault((name, value), row_no)
        if repeated:
            preview.duplicate_in_file += 1
            preview.add_errors(errors, (_duplicate(name, value, other) for name, value, other in repeated), row_no)
            continue
        clashes = [(name, value) for name, value in keys if value in in_db[name]]
        if clashes:
            preview.duplicate_in_db += 1
            preview.add_errors(errors, (message("card.pin_taken") if name == "pin" else
                                        message(f"card.{name}_taken", value=value) for name, value in clashes), row_no)
            continue
        preview.new.append((row_no, card))
    preview.errors = sorted(preview.errors + errors, key=lambda e: e[0])[:ERRORS_KEPT]


def stage_rows(session: Session, vault: Vault, rows: Sequence[dict]) -> None:
    """Keep new rows until their chunk commits, the PIN encrypted here (a chunk at a time: short writes)."""
    if rows:
        session.connection().execute(CardImportRow.__table__.insert(), [
            {**{k: v for k, v in row.items() if k != "pin"}, "pin_enc": vault.encrypt(row["pin"]),
             "pin_hint": row["pin"][-2:]} for row in rows])


def preview_import(session: Session, actor: User, vault: Vault, data: bytes, filename: str, today: date,
                   holder_key: int = PLATFORM, max_bytes: int = 10 * 1024 * 1024) -> CardImport:
    """Read, sort and stage a workbook in the caller's one transaction (the console commits per phase)."""
    require_role(actor, CARD_ADMIN_ROLES)
    batch, rows = sort_upload(session, actor, read_upload(vault, data, filename, today, max_bytes), today,
                              holder_key)
    for start in range(0, len(rows), CHUNK):
        stage_rows(session, vault, rows[start:start + CHUNK])
    return batch


def _duplicate(name: str, value: str, other_row: int) -> dict:
    """A row repeating a field of an earlier row of the file: named with its value, but for a PIN."""
    if name == "pin":
        return message("card_import.duplicate_pin", field=label_param("card_field", name), row=other_row)
    return message("card_import.duplicate", field=label_param("card_field", name), value=value, row=other_row)


def first_errors(batch: CardImport, limit: int = ERRORS_SHOWN) -> list[str]:
    """The first stored lines ("row N: reason") in the reader's language; an import stored before messages
    were kept (no `errors_data`): its text, as it was written."""
    if batch.errors_data:
        return render_all(batch.errors_data[:limit])
    return (batch.errors or "").splitlines()[:limit]


def error_workbook(batch: CardImport):
    """The stored bad rows as an xlsx (row, reason) in the reader's language, an open temporary file."""
    def rows() -> Iterable[Sequence]:
        stored = batch.errors_data
        if stored:  # "row N: reason" lines (import.row), then perhaps "… and 5 more"
            lines = [item["params"] for item in stored if item.get("key") == "import.row"]
            yield from error_texts([(params.get("row"), params.get("reason")) for params in lines])
            yield from (["", text] for text in render_all([i for i in stored if i.get("key") != "import.row"]))
            return
        for line in (batch.errors or "").splitlines():  # stored as text before messages were kept
            head, _sep, reason = line.partition(": ")
            yield [head, reason]

    return write_xlsx([_("Row"), _("Reason")], rows(), sheet_title=_("Bad rows"))


def commit_chunk(session: Session, actor: User, batch: CardImport, chunk: int = CHUNK) -> tuple[int, int]:
    """Move the next `chunk` staged rows into the inventory; returns (committed, total). The caller commits."""
    require_role(actor, CARD_ADMIN_ROLES)
    if batch.rows_invalid or batch.rows_duplicate_in_file or batch.rows_duplicate_in_db:
        raise DomainError(_l("Import %(id)s has bad rows: fix them and upload the file again.", id=batch.id))
    if batch.status not in ("previewed", "committing"):
        raise DomainError(_l("Import %(id)s is %(status)s.", id=batch.id, status=batch.status))
    done = batch.rows_committed
    # Set-based: the chunk moves from the staging table into the inventory in INSERT … SELECT statements,
    # so no row passes through Python. Committed rows leave the staging table with their chunk, so the
    # next chunk is always the first rows.
    connection = session.connection()
    staging, cards = CardImportRow.__table__, SimCard.__table__
    first = select(staging.c.row_no).where(staging.c.import_id == batch.id).order_by(staging.c.row_no) \
        .limit(chunk).subquery()
    count, last = connection.execute(select(func.count(), func.max(first.c.row_no))).one()
    if not count and done < batch.rows_new:
        raise DomainError(_l("Import %(id)s was interrupted before all its rows were kept: upload the file again.",
                             id=batch.id))
    finished = done + count >= batch.rows_new
    # Claim this chunk: two browsers resuming the same import never insert it twice.
    claimed = session.execute(
        update(CardImport).where(CardImport.id == batch.id, CardImport.rows_committed == done)
        .values(rows_committed=done + count, status="committed" if finished else "committing",
                committed_at=utcnow() if finished else None)
        .execution_options(synchronize_session=False)).rowcount
    session.expire(batch)
    if claimed != 1:
        raise DomainError(_l("Import %(id)s is being committed by another request; reload to see its progress.",
                             id=batch.id))
    if count:
        chunk_rows = (staging.c.import_id == batch.id) & (staging.c.row_no <= last)
        clash = select(staging.c.row_no).where(chunk_rows, or_(  # one EXISTS per unique index
            exists().where(cards.c.iccid == staging.c.iccid), exists().where(cards.c.phone == staging.c.phone),
            exists().where(cards.c.pin_index == staging.c.pin_index))).order_by(staging.c.row_no).limit(20)
        bad = connection.execute(clash).scalars().all()
        if bad:
            raise DomainError(_l("Rows %(rows)s were added to the inventory since the preview: upload the file "
                                 "again.", rows=", ".join(map(str, bad))))
        holder, now = batch.holder_company_id or PLATFORM, utcnow()
        before = connection.execute(select(func.coalesce(func.max(cards.c.id), 0))).scalar_one()
        connection.execute(cards.insert().from_select(
            ["iccid", "phone", "pin_enc", "pin_index", "pin_hint", "package_id", "valid_until", "status",
             "holder_key", "warehouse", "import_id", "created_at"],
            select(staging.c.iccid, staging.c.phone, staging.c.pin_enc, staging.c.pin_index, staging.c.pin_hint,
                   staging.c.package_id, staging.c.valid_until, literal("in_stock"), literal(holder), literal(""),
                   literal(batch.id), literal(now, cards.c.created_at.type))
            .where(chunk_rows).order_by(staging.c.row_no)))
        movements = CardMovement.__table__
        connection.execute(movements.insert().from_select(
            ["card_id", "at", "actor_id", "to_status", "to_holder_key", "note"],
            select(cards.c.id, literal(now, movements.c.at.type), literal(actor.id), literal("in_stock"),
                   literal(holder), literal(f"import {batch.id}"))
            .where(cards.c.import_id == batch.id, cards.c.id > before)))
        for package_id, number in connection.execute(select(staging.c.package_id, func.count())
                                                      .where(chunk_rows).group_by(staging.c.package_id)).all():
            adjust_on_hand(session, package_id, holder, number)
        connection.execute(delete(staging).where(chunk_rows))
    if finished:
        record(session, actor, "commit", "card_import", [batch.id], message("audit.cards", count=done + count))
    return done + count, batch.rows_new


def rollback_import(session: Session, actor: User, batch: CardImport) -> int:
    """Remove a committed batch whole, only while each of its cards is in stock where it arrived, never moved."""
    require_role(actor, CARD_ADMIN_ROLES)
    if batch.status not in ("committed", "committing"):
        raise DomainError(_l("Import %(id)s has no cards to roll back.", id=batch.id))
    holder = batch.holder_company_id or PLATFORM
    card_ids = select(SimCard.id).where(SimCard.import_id == batch.id)
    moved = session.scalars(select(SimCard.iccid).where(
        SimCard.import_id == batch.id, (SimCard.status != "in_stock") | (SimCard.holder_key != holder)).limit(20)).all()
    moved += session.scalars(select(SimCard.iccid).join(CardMovement, CardMovement.card_id == SimCard.id).where(
        SimCard.import_id == batch.id).group_by(SimCard.iccid).having(func.count() > 1).limit(20)).all()
    if moved:
        raise DomainError(_l("Import %(id)s cannot be rolled back: these cards left the stock or moved: %(list)s.",
                             id=batch.id, list=", ".join(sorted(set(moved)))))
    per_package = session.execute(select(SimCard.package_id, func.count()).where(SimCard.import_id == batch.id)
                                  .group_by(SimCard.package_id)).all()
    for package_id, count in per_package:
        adjust_on_hand(session, package_id, holder, -count)
    session.execute(delete(CardMovement).where(CardMovement.card_id.in_(card_ids)))
    removed = session.execute(delete(SimCard).where(SimCard.import_id == batch.id)).rowcount
    session.execute(delete(CardImportRow).where(CardImportRow.import_id == batch.id))
    batch.status, batch.rolled_back_at = "rolled_back", utcnow()
    session.flush()
    record(session, actor, "rollback", "card_import", [batch.id], message("audit.cards.removed", count=removed))
    return removed


def export_cards(session: Session, actor: User, vault: Vault, query, with_pins: bool = False):
    """The cards of `query` (already scoped) as an xlsx; PINs only for the export permission, audited."""
    if with_pins and not may_export_pins(actor):
        raise DomainError(_l("Your role may not export PINs."))
    headers = ["ICCID", _("Phone number"), "PIN", _("Package"), _("Valid until"), _("Status"), _("Holder")]

    def rows():
        for card in session.scalars(query.execution_options(yield_per=1000)):
            pin = vault.decrypt(card.pin_enc) if with_pins else mask(card.pin_hint)
            yield [card.iccid, card.phone, pin, card.package.code if card.package else "",
                   card.valid_until.isoformat(), card.status, card.holder_key]

    out = write_xlsx(headers, rows(), sheet_title=_("Cards"))
    record(session, actor, "export_pins" if with_pins else "export", "sim_card", [],
           message("audit.cards.export_pins" if with_pins else "audit.cards.export"))
    return out
