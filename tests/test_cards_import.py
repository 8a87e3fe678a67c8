"""Card workbooks: template, preview totals and named bad rows, chunked resumable commit, rollback, export."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from actions import DomainError
from actions.cards import post_stock_document
from importers.cards import (
    build_template, commit_chunk, error_workbook, export_cards, first_errors, preview_import, rollback_import,
)
from importers.expiry import ImportRejected
from models import AuditEvent, CardImportRow, CardMovement, CardStock, SimCard, db
from tests.test_cards import TODAY

pytest_plugins = ("card_fixtures",)

VALID = TODAY + timedelta(days=365)


def workbook(rows, headers=("ICCID", "Phone number", "PIN", "Plan", "Valid until")) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def good(n: int, plan="SIM-39", valid=VALID, pin=None):
    return (f"8986{n:016d}", f"1390000{n:04d}", pin or f"P{n:05d}", plan, valid)


def test_template_has_the_headers_in_both_languages():
    for language, first in (("en", "ICCID"), ("zh_Hans_CN", "卡号")):
        sheet = load_workbook(io.BytesIO(build_template(language))).active
        assert sheet["A1"].value == first


def test_preview_commit_in_chunks_resume_and_rollback(cards, vault):
    s, support = db.session, cards["users"]["support"]
    batch = preview_import(s, support, vault, workbook([good(n) for n in range(7)]), "cards.xlsx", TODAY)
    s.commit()
    assert (batch.rows_total, batch.rows_new, batch.rows_invalid) == (7, 7, 0)
    assert commit_chunk(s, support, batch, chunk=3) == (3, 7)
    s.commit()
    assert batch.status == "committing"
    while batch.status != "committed":  # resumable: each call continues where the last stopped
        commit_chunk(s, support, batch, chunk=3)
        s.commit()
    assert s.scalar(select(func.count()).select_from(SimCard)) == 7
    assert s.scalar(select(func.count()).select_from(CardMovement)) == 7
    assert s.scalar(select(func.count()).select_from(CardImportRow)) == 0
    assert s.scalar(select(CardStock.on_hand)) == 7
    with pytest.raises(DomainError):
        commit_chunk(s, support, batch)
    # Once a card left the stock, the batch stays; back in stock untouched, it rolls back whole.
    post_stock_document(s, support, "transfer", [good(0)[0]], to_holder=cards["a"].id)
    with pytest.raises(DomainError, match=good(0)[0]):
        rollback_import(s, support, batch)
    s.rollback()
    fresh = preview_import(s, support, vault, workbook([good(n) for n in range(10, 12)]), "more.xlsx", TODAY)
    commit_chunk(s, support, fresh)
    assert rollback_import(s, support, fresh) == 2
    s.commit()
    assert s.scalar(select(func.count()).select_from(SimCard)) == 7
    assert s.scalar(select(CardStock.on_hand)) == 7 and fresh.status == "rolled_back"


def test_bad_rows_are_named_counted_and_nothing_is_committed(cards, vault):
    s, support = db.session, cards["users"]["support"]
    first = preview_import(s, support, vault, workbook([good(1, pin="SAME1")]), "one.xlsx", TODAY)
    commit_chunk(s, support, first)
    s.commit()
    rows = [
        good(2),  # row 2: fine
        good(2),  # row 3: duplicate in file
        good(1),  # row 4: duplicate ICCID in the database
        good(5, pin="SAME1"),  # row 5: duplicate PIN in the database
        good(6, plan="NOPE"),  # row 6: unknown plan
        good(7, valid=TODAY - timedelta(days=1)),  # row 7: past validity
        ("12345", "139", "1", "SIM-39", VALID),  # row 8: malformed
    ]
    batch = preview_import(s, support, vault, workbook(rows), "bad.xlsx", TODAY)
    s.commit()
    assert (batch.rows_total, batch.rows_new, batch.rows_duplicate_in_file, batch.rows_duplicate_in_db,
            batch.rows_invalid) == (7, 1, 1, 2, 3)
    # one line per reason, each naming its row, the field and (but for a PIN) the value at fault
    errors = first_errors(batch)
    assert errors == [
        f"row 3: duplicate in file: ICCID {good(2)[0]} is also on row 2",
        f"row 3: duplicate in file: phone number {good(2)[1]} is also on row 2",
        "row 3: duplicate in file: same PIN as row 2",
        f"row 4: ICCID {good(1)[0]} is already in the inventory",
        f"row 4: phone number {good(1)[1]} is already in the inventory",
        "row 5: this PIN is already used by another card",
        "row 6: plan NOPE is not an active card package",
        f"row 7: valid until {(TODAY - timedelta(days=1)).isoformat()} is in the past",
        "row 8: ICCID 12345: 19 or 20 characters starting with 89",
        "row 8: phone number 139: 5 to 20 digits",
        "row 8: PIN: 4 to 16 letters or digits",
    ]
    assert batch.errors.splitlines() == errors  # the English text beside the stored messages
    assert {line["key"] for line in batch.errors_data} == {"import.row"}
    sheet = load_workbook(error_workbook(batch)).active
    assert [c.value for c in sheet[1]] == ["Row", "Reason"]
    assert [c.value for c in sheet[2]] == [3, f"duplicate in file: ICCID {good(2)[0]} is also on row 2"]
    assert sheet.max_row == 12
    with pytest.raises(DomainError, match="bad rows"):
        commit_chunk(s, support, batch)
    assert s.scalar(select(func.count()).select_from(SimCard)) == 1
    assert s.scalar(select(func.count()).select_from(CardImportRow)) == 0


def test_wrong_headers_and_non_workbooks_are_refused(cards, vault):
    s, support = db.session, cards["users"]["support"]
    with pytest.raises(ImportRejected, match="wrong headers") as refused:
        preview_import(s, support, vault, workbook([good(1)], headers=("A", "  ICCID ", "B")), "x.xlsx", TODAY)
    assert str(refused.value).endswith("each once; found: A, ICCID, B")
    with pytest.raises(ImportRejected):
        preview_import(s, support, vault, b"not a zip", "x.xlsx", TODAY)
    with pytest.raises(ImportRejected):
        preview_import(s, support, vault, workbook([good(1)]), "x.csv", TODAY)


def test_export_masks_pins_unless_permitted_and_audits(cards, vault):
    s, u = db.session, cards["users"]
    batch = preview_import(s, u["support"], vault, workbook([good(1, pin="SECRET77")]), "one.xlsx", TODAY)
    commit_chunk(s, u["support"], batch)
    query = select(SimCard)
    masked = load_workbook(export_cards(s, u["support"], vault, query)).active
    values = [c.value for c in masked[2]]
    assert values[2] == "****77" and "SECRET77" not in values
    with pytest.raises(DomainError):
        export_cards(s, u["finance"], vault, query, with_pins=True)
    full = load_workbook(export_cards(s, u["admin"], vault, query, with_pins=True)).active
    assert [c.value for c in full[2]][2] == "SECRET77"
    actions = s.scalars(select(AuditEvent.action).where(AuditEvent.model == "sim_card")).all()
    assert "export_pins" in actions
    assert all("SECRET77" not in e.summary for e in s.scalars(select(AuditEvent)))


def test_an_import_whose_staging_was_interrupted_is_refused_not_looped(cards, vault):
    from importers.cards import read_upload, sort_upload, stage_rows

    s, support = db.session, cards["users"]["support"]
    upload = read_upload(vault, workbook([good(n) for n in range(4)]), "cut.xlsx", TODAY)
    batch, rows = sort_upload(s, support, upload, TODAY)
    stage_rows(s, vault, rows[:2])  # the request died before staging the rest
    s.commit()
    assert commit_chunk(s, support, batch, chunk=5) == (2, 4)
    s.commit()
    with pytest.raises(DomainError, match="interrupted"):
        commit_chunk(s, support, batch)
