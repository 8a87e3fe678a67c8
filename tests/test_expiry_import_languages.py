"""批量设置过期时间 read in another language than the upload's: a Chinese-speaking sales user uploads a workbook
with bad rows (or a file that is refused, or a commit that fails); a Vietnamese and an English sales user open
the same import later. Each reads every reason, naming its row, cell and value, in their own language: the
import keeps message keys with parameters (actions.texts), not the uploader's text. Imports stored before
that keep their text and show it."""
from __future__ import annotations

import re
from datetime import date

import pytest
from flask_babel import force_locale
from sqlalchemy import update

from importers.expiry import (
    ImportRejected,
    ParsedFile,
    ParsedRow,
    commit,
    error_texts,
    file_sha256,
    parsed_path,
    preview,
    read_rows,
    save_parsed,
    stored_errors,
)
from models import Device, ExpiryImport, User, db
from tests.conftest import post, readers_in
from tests.test_expiry_import import URL, latest_import, page_text, upload, workbook_bytes

LOCALES = {"zh_sales": "zh_Hans_CN", "vi_sales": "vi", "en_sales": "en"}

# The zh upload: row 2 is good, rows 3–7 bad (row 7 twice: a date outside the window, a device already on row 4).
ROWS = [("AC0001", date(2030, 1, 31)), ("NOPE-1", date(2030, 1, 31)), ("AC0002", "2026-02-30"), ("NO0001", None),
        ("AC0001", date(2030, 2, 1)), ("AC0002", "2200-01-01")]
REASONS = {
    "en_sales": [(3, "unknown device NOPE-1"), (4, "impossible date 2026-02-30 in cell B4"),
                 (5, "empty cell: B5 (new expiry date)"), (6, "duplicate in file: device AC0001 is also on row 2"),
                 (7, "date 2200-01-01 in cell B7 is outside 2000-01-01 – 2199-12-31"),
                 (7, "duplicate in file: device AC0002 is also on row 4")],
    "vi_sales": [(3, "thiết bị không xác định NOPE-1"), (4, "ngày không tồn tại 2026-02-30 ở ô B4"),
                 (5, "ô trống: B5 (ngày hết hạn mới)"), (6, "trùng lặp trong tệp: thiết bị AC0001 cũng có ở dòng 2"),
                 (7, "ngày 2200-01-01 ở ô B7 nằm ngoài 2000-01-01 – 2199-12-31"),
                 (7, "trùng lặp trong tệp: thiết bị AC0002 cũng có ở dòng 4")],
    "zh_sales": [(3, "未知设备 NOPE-1"), (4, "单元格 B4 中的日期 2026-02-30 不存在"), (5, "空单元格：B5（新到期时间）"),
                 (6, "文件中重复：设备 AC0001 也出现在第 2 行"),
                 (7, "单元格 B7 的日期 2200-01-01 不在 2000-01-01 – 2199-12-31 范围内"),
                 (7, "文件中重复：设备 AC0002 也出现在第 4 行")],
}
FIRST_LINE = {"en_sales": "row 3: unknown device NOPE-1", "vi_sales": "dòng 3: thiết bị không xác định NOPE-1",
              "zh_sales": "第 3 行：未知设备 NOPE-1"}


@pytest.fixture(autouse=True)
def import_folder(client, tmp_path, monkeypatch):
    monkeypatch.setitem(client.application.config, "IMPORT_FOLDER", str(tmp_path / "imports"))
    return tmp_path / "imports"


@pytest.fixture
def readers(web_app, world) -> dict:
    """A logged-in client for each of three sales users: Chinese, Vietnamese, English."""
    return readers_in(web_app, "sales", LOCALES)


def bad_rows(page: str) -> list[tuple[int, str]]:
    match = re.search(r'id="rd-errors".*?</table>', page, re.S)
    assert match, page
    return [(int(n), text) for n, text in re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", match.group(0))]


def first_error(page: str, import_id: int) -> str:
    """The error line under an import's status on the list of recent imports."""
    match = re.search(rf'<tr data-import="{import_id}">.*?<div class="small text-muted">(.*?)</div>', page, re.S)
    assert match, page
    return match.group(1)


def test_bad_rows_of_a_chinese_upload_read_in_each_readers_language(readers):
    answer = upload(readers["zh_sales"], workbook_bytes(ROWS), filename="到期时间.xlsx")
    assert answer.status_code == 200 and bad_rows(page_text(answer)) == REASONS["zh_sales"]
    record = latest_import()
    assert (record.status, record.rows_failed) == ("failed", 5)
    # kept as keys with parameters; the English text beside them (searches, old readers)
    assert {line["key"] for line in record.errors_data} == {"import.row"}
    assert record.errors.splitlines() == [f"row {n}: {reason}" for n, reason in REASONS["en_sales"]]

    for reader in ("vi_sales", "en_sales", "zh_sales"):
        shown = page_text(readers[reader].get(URL + f"preview/{record.id}"))
        assert bad_rows(shown) == REASONS[reader], reader
        assert first_error(page_text(readers[reader].get(URL)), record.id) == FIRST_LINE[reader]
        others = [reason for other, reasons in REASONS.items() if other != reader for _n, reason in reasons]
        assert not [reason for reason in others if reason in shown], reader


def test_a_commit_refused_for_bad_rows_is_kept_in_every_language(readers, world):
    """The devices changed between upload and commit (one was deleted): the reasons recorded by the zh
    commit read in Vietnamese and English."""
    answer = upload(readers["zh_sales"], workbook_bytes([("AC0001", date(2030, 1, 31)),
                                                        ("AC0002", date(2030, 1, 31))]))
    assert answer.status_code == 200
    record_id = latest_import().id
    db.session.delete(db.session.get(Device, world.devices["AC0002"].id))
    db.session.commit()
    answer = post(readers["zh_sales"], URL + f"commit/{record_id}", {})
    assert bad_rows(page_text(answer)) == [(3, "未知设备 AC0002")]
    assert first_error(page_text(readers["vi_sales"].get(URL)), record_id) == "dòng 3: thiết bị không xác định AC0002"
    assert first_error(page_text(readers["en_sales"].get(URL)), record_id) == "row 3: unknown device AC0002"


def test_a_refused_file_is_named_in_each_readers_language(readers):
    answer = upload(readers["zh_sales"], b"not a workbook", filename="到期.xls")
    assert answer.status_code == 302
    flashed = page_text(readers["zh_sales"].get(URL))
    record = latest_import()
    assert first_error(flashed, record.id) == "只能导入 .xlsx 工作簿；到期.xls 不是 .xlsx 文件。"
    assert record.errors == "Only .xlsx workbooks can be imported; 到期.xls is not one."
    assert first_error(page_text(readers["vi_sales"].get(URL)), record.id) == (
        "Chỉ có thể nhập bảng tính .xlsx; 到期.xls không phải tệp .xlsx.")
    assert first_error(page_text(readers["en_sales"].get(URL)), record.id) == record.errors


def test_a_commit_that_met_a_changed_device_is_named_in_each_readers_language(app, readers, world, tmp_path):
    """A device changed by someone else while a zh user's commit ran: the failed import names it to every reader."""
    actor = db.session.scalar(db.select(User).where(User.username == "zh_sales"))
    report = preview(db.session, actor, read_rows(workbook_bytes([("AC0001", date(2030, 1, 31))])))
    record = ExpiryImport(actor_id=actor.id, filename="race.xlsx", file_sha256="0" * 64, rows_total=1, rows_changed=1)
    db.session.add(record)
    db.session.commit()
    db.session.execute(update(Device).where(Device.number == "AC0001").values(expires_on=date(2031, 3, 3)))
    db.session.commit()
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        with pytest.raises(ImportRejected) as refused:
            commit(db.session, actor, report, record, plan_file=tmp_path / "plan.json", commit=db.session.commit)
        assert str(refused.value).startswith(f"导入 #{record.id} 未提交：1 台设备在预览后被修改（AC0001）")
    assert first_error(page_text(readers["vi_sales"].get(URL)), record.id) == (
        f"Lần nhập #{record.id} chưa được áp dụng: 1 thiết bị đã thay đổi sau khi xem trước (AC0001). "
        "Không có gì thay đổi; hãy tải tệp lên lại.")
    assert first_error(page_text(readers["en_sales"].get(URL)), record.id) == (
        f"Import #{record.id} was not committed: 1 devices changed since its preview (AC0001). Nothing was "
        "changed; upload the file again.")


def test_an_import_stored_as_text_before_messages_still_shows_it(readers, import_folder):
    """Stored in the uploader's language before messages were kept: its text is shown as it is, to every
    reader; the reasons found again against today's devices are in the reader's language."""
    actor = db.session.scalar(db.select(User).where(User.username == "zh_sales"))
    digest = file_sha256(b"old workbook")
    record = ExpiryImport(actor_id=actor.id, filename="旧.xlsx", file_sha256=digest, status="failed", rows_total=2,
                          rows_failed=2, errors="第 2 行：未知设备 NOPE-9\n第 3 行：空单元格：B3（新到期时间）")
    db.session.add(record)
    db.session.commit()
    old = ParsedFile(rows=[ParsedRow(2, "NOPE-9", date(2030, 1, 31))], errors=[(3, "空单元格：B3（新到期时间）")],
                     rows_total=2, rows_scanned=2)
    save_parsed(old, parsed_path(import_folder, record.id), digest)
    for reader in ("vi_sales", "en_sales"):
        assert first_error(page_text(readers[reader].get(URL)), record.id) == "第 2 行：未知设备 NOPE-9"
    assert bad_rows(page_text(readers["vi_sales"].get(URL + f"preview/{record.id}"))) == [
        (2, "thiết bị không xác định NOPE-9"), (3, "空单元格：B3（新到期时间）")]


def test_wrong_headers_name_what_was_found_in_the_readers_language(app):
    """Nothing on the header row: "nothing" is the reader's word too."""
    parsed = read_rows(workbook_bytes([("AC0001", date(2030, 1, 1))], headers=("", "")))
    shown = {}
    for locale in ("en", "vi", "zh_Hans_CN"):
        with app.test_request_context(), force_locale(locale):
            ((row_no, shown[locale]),) = error_texts(parsed.errors)
            assert row_no == 1
    assert shown["en"].startswith("wrong headers") and shown["en"].endswith("found: nothing")
    assert shown["vi"].endswith("không có gì") and shown["zh_Hans_CN"].endswith("无")


def test_the_stored_lines_stop_after_a_thousand_and_say_how_many_more(app):
    errors = [(n, {"key": "expiry_import.unknown", "params": {"number": f"X{n}"}}) for n in range(2, 1004)]
    stored = stored_errors(errors)
    assert len(stored["errors_data"]) == 1001 and stored["errors"].splitlines()[-1] == "… and 2 more"
    with app.test_request_context(), force_locale("vi"):
        from actions.texts import render_all

        lines = render_all(stored["errors_data"])
    assert lines[0] == "dòng 2: thiết bị không xác định X2" and lines[-1] == "… và 2 mục khác"
