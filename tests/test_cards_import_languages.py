"""批量导入号卡 read in another language than the upload's: a Chinese-speaking tech support user uploads a card
workbook with bad rows; a Vietnamese and an English colleague open the same import later (its page and its
error workbook). Each reads every reason, naming its row, field and value, in their own language: the import
keeps message keys with parameters (actions.texts, as the expiry import does), not the uploader's text.
Imports stored before that keep their text and show it."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from flask_babel import force_locale
from openpyxl import load_workbook

from importers.cards import commit_chunk, preview_import, read_upload, sort_upload
from models import CardImport, db
from tests.conftest import post, readers_in
from tests.test_cards import TODAY
from tests.test_cards_import import VALID, good, workbook

pytest_plugins = ("card_fixtures",)

IMPORT = "/admin/simcard/import/"
LOCALES = {"zh_support": "zh_Hans_CN", "vi_support": "vi", "en_support": "en"}
PAST = (TODAY - timedelta(days=1)).isoformat()

# The zh upload: row 2 is good, rows 3–8 bad (row 7 twice: ICCID and phone number already in the inventory).
ROWS = [good(1), good(3, pin="P00001"), good(4, plan="NOPE"), (good(5)[0], "139", "P00005", "SIM-39", VALID),
        good(6, valid=TODAY - timedelta(days=1)), good(90), good(7, pin="STOCK1")]
IN_STOCK = good(90, pin="STOCK1")
REASONS = {
    "en_support": [(3, "duplicate in file: same PIN as row 2"), (4, "plan NOPE is not an active card package"),
                   (5, "phone number 139: 5 to 20 digits"), (6, f"valid until {PAST} is in the past"),
                   (7, f"ICCID {IN_STOCK[0]} is already in the inventory"),
                   (7, f"phone number {IN_STOCK[1]} is already in the inventory"),
                   (8, "this PIN is already used by another card")],
    "vi_support": [(3, "trùng trong tệp: PIN giống dòng 2"), (4, "gói NOPE không phải là gói thẻ đang bán"),
                   (5, "số điện thoại 139: 5 đến 20 chữ số"), (6, f"ngày hiệu lực {PAST} đã qua"),
                   (7, f"ICCID {IN_STOCK[0]} đã có trong kho"), (7, f"số điện thoại {IN_STOCK[1]} đã có trong kho"),
                   (8, "PIN này đã được thẻ khác sử dụng")],
    "zh_support": [(3, "文件内重复：PIN 与第 2 行相同"), (4, "套餐 NOPE 不是有效的号卡套餐"),
                   (5, "手机号 139：5 到 20 位数字"), (6, f"有效期 {PAST} 已过"), (7, f"ICCID {IN_STOCK[0]} 已在库中"),
                   (7, f"手机号 {IN_STOCK[1]} 已在库中"), (8, "该密码已被其他号卡使用")],
}
LINE = {"en_support": "row %s: %s", "vi_support": "dòng %s: %s", "zh_support": "第 %s 行：%s"}
WORKBOOK_HEADERS = {"en_support": ["Row", "Reason"], "vi_support": ["Dòng", "Lý do"], "zh_support": ["行号", "原因"]}


@pytest.fixture
def readers(web_app, cards, vault) -> dict:
    """A logged-in client for each of three tech support users (Chinese, Vietnamese, English); one card in stock."""
    support = cards["users"]["support"]
    commit_chunk(db.session, support, preview_import(db.session, support, vault, workbook([IN_STOCK]), "in.xlsx",
                                                     TODAY))
    return readers_in(web_app, "tech_support", LOCALES)


def shown_errors(client, batch_id: int) -> list[str]:
    page = client.get(f"{IMPORT}batch/?id={batch_id}").get_data(as_text=True)
    match = re.search(r'<ul class="mb-0" id="rd-errors">(.*?)</ul>', page, re.S)
    assert match, page
    return re.findall(r"<li>(.*?)</li>", match.group(1))


def error_sheet(client, batch_id: int) -> list[list]:
    answer = client.get(f"{IMPORT}errors/?id={batch_id}")
    assert answer.status_code == 200
    return [[cell.value for cell in row] for row in load_workbook(io.BytesIO(answer.data)).active.iter_rows()]


def test_bad_rows_of_a_chinese_upload_read_in_each_readers_language(readers):
    data = workbook(ROWS, headers=("卡号", "手机号", "密码", "套餐", "有效期"))
    answer = post(readers["zh_support"], IMPORT, {"holder": "0", "file": (io.BytesIO(data), "号卡.xlsx")},
                  content_type="multipart/form-data")
    assert answer.status_code == 302
    batch = db.session.scalar(db.select(CardImport).where(CardImport.filename == "号卡.xlsx"))
    assert (batch.rows_total, batch.rows_new, batch.rows_duplicate_in_file, batch.rows_duplicate_in_db,
            batch.rows_invalid) == (7, 1, 1, 2, 3)
    # kept as keys with parameters; the English text beside them (searches, old readers)
    assert {line["key"] for line in batch.errors_data} == {"import.row"}
    assert batch.errors.splitlines() == [f"row {n}: {reason}" for n, reason in REASONS["en_support"]]

    for reader in ("vi_support", "en_support", "zh_support"):
        shown = shown_errors(readers[reader], batch.id)
        assert shown == [LINE[reader] % line for line in REASONS[reader]], reader
        assert error_sheet(readers[reader], batch.id) == [WORKBOOK_HEADERS[reader], *map(list, REASONS[reader])]
        others = [reason for other, reasons in REASONS.items() if other != reader for _n, reason in reasons]
        page = readers[reader].get(f"{IMPORT}batch/?id={batch.id}").get_data(as_text=True)
        assert not [reason for reason in others if reason in page], reader


def test_an_import_stored_as_text_before_messages_still_shows_it(readers, cards):
    text = "第 3 行：套餐 NOPE 不是有效的号卡套餐\n第 4 行：有效期：请输入日期（yyyy-mm-dd）"
    old = CardImport(actor_id=cards["users"]["support"].id, filename="旧.xlsx", file_sha256="0" * 64,
                     status="previewed", rows_total=3, rows_new=1, rows_invalid=2, errors=text)
    db.session.add(old)
    db.session.commit()
    for reader in ("vi_support", "en_support"):
        assert shown_errors(readers[reader], old.id) == text.splitlines()
        assert error_sheet(readers[reader], old.id)[1:] == [[line, None] for line in text.splitlines()]


def test_every_reason_names_its_row_field_and_value(app, cards, vault):
    """Formulas, an ICCID typed as a number, a date that is none: the cell and the value at fault (English here;
    the lines are stored as messages like the others)."""
    support = cards["users"]["support"]
    rows = [(good(2)[0], "=1+1", "P00002", "SIM-39", VALID), (89860000000000000003, *good(3)[1:]),
            (*good(4)[:4], "next year"), good(5), good(6, pin=good(5)[2]), (good(5)[0], *good(7)[1:])]
    upload = read_upload(vault, workbook(rows), "cards.xlsx", TODAY)
    batch, staged = sort_upload(db.session, support, upload, TODAY)
    assert staged == []
    with app.test_request_context(), force_locale("en"):
        from importers.cards import first_errors

        assert first_errors(batch) == [
            "row 2: formula =1+1 in cell B2 (phone number): type the value, not a formula",
            "row 3: ICCID 89860000000000000000 in cell A3 is stored as a number and loses digits: format the column "
            "as text",
            "row 4: valid until next year: enter a date (yyyy-mm-dd)",
            "row 6: duplicate in file: same PIN as row 5",
            f"row 7: duplicate in file: ICCID {good(5)[0]} is also on row 5",
        ]
    assert batch.errors.splitlines()[0].startswith("row 2: formula =1+1 in cell B2")


def test_only_the_first_reasons_are_kept_and_the_rest_counted(app, cards, vault, monkeypatch):
    """A file of bad rows keeps its first ERRORS_KEPT reasons in row order (those found while reading, such as
    formulas, and those found while sorting), and says how many more there were."""
    import importers.cards

    monkeypatch.setattr(importers.cards, "ERRORS_KEPT", 10)
    rows = [(good(n)[0], "=1+1" if n % 2 == 0 else "1", "P" if n % 2 else good(n)[2], "SIM-39", VALID)
            for n in range(2, 22)]  # even rows: a formula (1 reason); odd rows: phone number and PIN (2)
    upload = read_upload(vault, workbook(rows), "cards.xlsx", TODAY)
    batch, _staged = sort_upload(db.session, cards["users"]["support"], upload, TODAY)
    assert upload.preview.errors_total == 30 and batch.rows_invalid == 20
    lines = batch.errors.splitlines()
    assert [line.split(":")[0] for line in lines] == ["row 2", "row 3", "row 3", "row 4", "row 5", "row 5", "row 6",
                                                      "row 7", "row 7", "row 8", "… and 20 more"]
    assert lines[1] == "row 3: phone number 1: 5 to 20 digits" and lines[2] == "row 3: PIN: 4 to 16 letters or digits"
    assert batch.errors_data[-1] == {"key": "import.more", "params": {"n": 20}}
    with app.test_request_context(), force_locale("vi"):
        from importers.cards import first_errors

        assert first_errors(batch, 11)[-1] == "… và 20 mục khác"
