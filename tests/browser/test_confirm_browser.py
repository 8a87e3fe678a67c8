"""Confirmation pages, busy buttons, upload progress, the expiry maintenance form and return URLs, in
Chinese at 1366×768 in Debian's Chromium.

Screenshots: tests/artifacts/confirm-recharge-zh.png, confirm-delete-zh.png, confirm-batch-suspend-zh.png,
upload-progress-zh.png, expiry-maintenance-zh.png."""
from __future__ import annotations

import io
import os
import time
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER, shot  # noqa: E402

pytestmark = BROWSER



@pytest.fixture
def zh(chinese_page):
    """zh(username) → a page in Chinese at 1366×768, logged in (conftest's chinese_page)."""
    return chinese_page


def submit(page, selector: str) -> None:
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def same_list(url: str, expected: str) -> bool:
    got, want = urlsplit(url), urlsplit(expected)
    return got.path == want.path and parse_qs(got.query) == parse_qs(want.query)


def test_approving_an_offline_recharge_asks_on_its_own_page(zh, live_app):
    reference = f"ZH-CONFIRM-{int(time.time())}"
    sales = zh("sales")
    sales.goto(live_app.url("/admin/offline_recharge/new/"))
    # Initech's balance: test_browser.py pays Acme's order from a balance it expects to know.
    sales.select_option("#company_id", sales.locator("#company_id option", has_text="Initech Rentals").first
                        .get_attribute("value"))
    sales.fill("#payer", "Initech Rentals Ltd")
    sales.select_option("#currency", "CNY")
    sales.fill("#amount", "1000.00")
    sales.fill("#reference", reference)
    submit(sales, "#rd-submit")
    application = live_app.scalar("SELECT id FROM offline_recharge WHERE reference = :r", r=reference)

    finance = zh("finance")
    finance.goto(live_app.url("/admin/recharge_review/"))
    submit(finance, f"a[href*='review/?id={application}']")
    submit(finance, "#rd-approve")
    expect(finance.locator("#rd-confirm-page .card-header")).to_have_text(f"审核通过线下充值 #{application}")
    expect(finance.locator("#rd-confirm-summary")).to_have_text("审核通过并充值 ¥1,000.00 到 Initech Rentals 的人民币余额。")
    expect(finance.locator("#rd-confirm-yes")).to_have_text("审核通过并充值 ¥1,000.00")
    expect(finance.locator("#rd-confirm-back")).to_have_text("返回")
    assert live_app.scalar("SELECT status FROM offline_recharge WHERE id = :i", i=application) == "submitted"
    shot(finance, "confirm-recharge-zh")
    submit(finance, "#rd-confirm-yes")
    expect(finance.locator(".alert-success")).to_contain_text("Initech Rentals")
    assert live_app.scalar("SELECT status FROM offline_recharge WHERE id = :i", i=application) == "approved"
    assert "/admin/recharge_review/" in finance.url


def test_a_delete_names_the_record_and_back_changes_nothing(zh, live_app):
    code = f"ZHDEL{int(time.time()) % 100000}"
    with live_app.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO package_category (code, name, kind) VALUES (:c, :n, 'renewal')"),
                     {"c": code, "n": "待删除的套餐大类"})
    support = zh("support")
    listing = live_app.url(f"/admin/packagecategory/?search={code}&page_size=50")
    support.goto(listing)
    row = support.locator("table.model-list tbody tr", has_text=code)
    submit(support, f"table.model-list tbody tr:has-text('{code}') form[action$='/delete/'] button")
    expect(support.locator("#rd-confirm-summary")).to_contain_text("删除以下 1 条记录")
    expect(support.locator("#rd-confirm-items")).to_contain_text(f"{code} 待删除的套餐大类")
    expect(support.locator("#rd-confirm-note")).to_have_text("删除后无法恢复。")
    shot(support, "confirm-delete-zh")
    submit(support, "#rd-confirm-back")  # 返回: back to the same list, nothing deleted
    assert same_list(support.url, listing)
    assert live_app.scalar("SELECT count(*) FROM package_category WHERE code = :c", c=code) == 1
    submit(support, f"table.model-list tbody tr:has-text('{code}') form[action$='/delete/'] button")
    submit(support, "#rd-confirm-yes")
    expect(support.locator(".alert-success")).to_be_visible()
    assert live_app.scalar("SELECT count(*) FROM package_category WHERE code = :c", c=code) == 0
    assert same_list(support.url, listing)
    expect(row).to_have_count(0)


def test_batch_suspend_asks_with_the_number_of_devices(zh, live_app):
    numbers = [r.number for r in live_app.rows(
        "SELECT number FROM device WHERE status = 'active' ORDER BY number LIMIT 3 OFFSET 40")]
    support = zh("support")
    try:
        support.goto(live_app.url("/admin/device_batch/"))
        support.fill("#numbers", "\n".join(n.lower() for n in numbers))
        support.check("#op-suspend")
        submit(support, "#rd-check")
        submit(support, "#rd-confirm")
        expect(support.locator("#rd-confirm-summary")).to_have_text("停用以下 3 台设备：")
        for number in numbers:
            expect(support.locator("#rd-confirm-items")).to_contain_text(number)
        expect(support.locator("#rd-confirm-note")).to_contain_text("不会自动续费")
        expect(support.locator("#rd-confirm-yes")).to_have_text("停用 3 台设备")
        assert live_app.scalar("SELECT count(*) FROM device WHERE status = 'suspended' AND number IN (:a, :b, :c)",
                               a=numbers[0], b=numbers[1], c=numbers[2]) == 0
        shot(support, "confirm-batch-suspend-zh")
        submit(support, "#rd-confirm-yes")
        expect(support.locator(".alert-success")).to_be_visible()
        assert live_app.scalar("SELECT count(*) FROM device WHERE status = 'suspended' AND number IN (:a, :b, :c)",
                               a=numbers[0], b=numbers[1], c=numbers[2]) == 3
    finally:
        with live_app.engine.begin() as conn:
            conn.execute(sa.text("UPDATE device SET status = 'active', suspended_at = NULL WHERE number IN (:a, :b, :c)"),
                         {"a": numbers[0], "b": numbers[1], "c": numbers[2]})


def _workbook(rows, padding: int = 0) -> bytes:
    """An expiry workbook; `padding` bytes of random notes on a second sheet make the file that large."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["设备号", "到期时间"])
    for row in rows:
        sheet.append(list(row))
    if padding:
        notes = workbook.create_sheet("备注")
        for _ in range(padding // 1000):
            notes.append([os.urandom(500).hex()])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_an_import_shows_a_busy_button_and_its_upload_progress(zh, live_app):
    device = live_app.rows("SELECT number, expires_on FROM device WHERE status = 'active' ORDER BY number DESC "
                           "LIMIT 1 OFFSET 60")[0]
    new = date(date.today().year + 3, 6, 30)
    sales = zh("sales")
    sales.goto(live_app.url("/admin/expiry_import/"))
    sent = []
    sales.on("request", lambda request: sent.append(request.url) if request.method == "POST" else None)
    # A slow line (32 KB/s up) and a workbook of some 150 KB: the upload takes a few seconds.
    cdp = sales.context.new_cdp_session(sales)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 50, "downloadThroughput": 10_000_000,
                                                  "uploadThroughput": 32 * 1024})
    sales.set_input_files("#rd-file", files=[{
        "name": "到期时间.xlsx", "buffer": _workbook([(device.number, new)], padding=150_000),
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    sales.click("#rd-upload button[type=submit]")
    button = sales.locator("#rd-upload button[type=submit]")
    expect(button).to_be_disabled()
    expect(button).to_contain_text("处理中…")
    expect(button.locator(".spinner-border")).to_be_visible()
    bar = sales.locator(".rd-upload-progress .progress-bar")
    expect(bar).to_be_visible()
    sales.wait_for_function("() => { const n = +document.querySelector('.rd-upload-progress .progress-bar')"
                            ".getAttribute('aria-valuenow'); return n >= 20 && n < 90; }")
    expect(bar).to_contain_text("上传中")
    shot(sales, "upload-progress-zh")
    button.click(force=True)  # a second click sends nothing more
    expect(sales.locator("#rd-summary [data-count=changes]")).to_have_text("1", timeout=30_000)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    assert [url for url in sent if url.endswith("/admin/expiry_import/upload")] == [live_app.url(
        "/admin/expiry_import/upload")]


def test_the_upload_forms_carry_progress(zh, live_app):
    sales = zh("sales")
    sales.goto(live_app.url("/admin/expiry_import/"))
    expect(sales.locator("form#rd-upload[data-upload]")).to_have_count(1)
    support = zh("support")
    support.goto(live_app.url("/admin/simcard/import/"))
    expect(support.locator("form#rd-upload[data-upload]")).to_have_count(1)


def test_expiry_maintenance_from_a_filtered_page_and_back(zh, live_app):
    support = zh("support")
    listing = live_app.url("/admin/device_expiry/?flt0_status_equals=active&search=GT&sort=0&desc=1&page=1"
                           "&page_size=20")
    support.goto(listing)
    expect(support.locator("table.model-list tbody tr").first).to_be_visible()
    first = support.locator("table.model-list tbody tr").first
    number = first.locator("td.col-number").inner_text().strip()
    device = live_app.rows("SELECT d.name, c.name AS company FROM device d JOIN company c ON c.id = d.company_id "
                           "WHERE d.number = :n", n=number)[0]
    submit(support, "table.model-list tbody tr:first-child a[href*='/edit/']")
    expect(support.locator("#rd-expiry-device")).to_have_text(f"设备 {number} 的到期时间")
    facts = support.locator("#rd-expiry-facts")
    expect(facts).to_contain_text(device.name)
    expect(facts).to_contain_text(device.company)
    years = support.locator("select[name='expires_on-year'] option").all_inner_texts()
    assert years[0] == str(date.today().year - 1) and years[-1] == str(date.today().year + 20), years
    new = date(date.today().year + 15, 12, 31)
    support.select_option("select[name='expires_on-year']", str(new.year))
    support.select_option("select[name='expires_on-month']", str(new.month))
    support.select_option("select[name='expires_on-day']", str(new.day))
    shot(support, "expiry-maintenance-zh")
    submit(support, "input[type=submit][value='保存'], button[type=submit]:has-text('保存')")
    assert same_list(support.url, listing), support.url
    assert str(live_app.scalar("SELECT expires_on FROM device WHERE number = :n", n=number))[:10] == new.isoformat()
    # Details → 列表 leads back to the same page too.
    submit(support, "table.model-list tbody tr:first-child a[href*='/details/']")
    submit(support, "ul.nav-tabs a.nav-link:has-text('列表')")
    assert same_list(support.url, listing), support.url


def test_custom_months_wait_for_the_number(zh, live_app):
    customer = zh("customer")
    customer.goto(live_app.url("/admin/renewal_center/"))
    before = customer.url
    box = customer.locator("#rd-custom-months")
    expect(box).to_be_hidden()
    customer.select_option("#rd-months", "custom")
    expect(box).to_be_visible()
    expect(box).to_be_focused()
    customer.wait_for_timeout(500)
    assert customer.url == before  # nothing was sent yet
    box.fill("3")
    with customer.expect_navigation():
        box.press("Enter")
    query = parse_qs(urlsplit(customer.url).query)
    assert query["months"] == ["custom"] and query["custom_months"] == ["3"]
    expect(customer.locator("#rd-renew-form")).to_contain_text("3")


def test_changing_the_renewal_length_keeps_the_ticked_devices(zh, live_app):
    """批量延期时长: tick devices, then choose another length: the list shows the new prices and the same
    devices are still ticked, so "renew the selected" renews what was ticked."""
    customer = zh("customer")
    values = "boxes => boxes.map(b => b.value)"
    customer.goto(live_app.url("/admin/renewal_center/?months=12"))
    renewable_for_12 = set(customer.locator(".rd-device:not([disabled])").evaluate_all(values))
    customer.goto(live_app.url("/admin/renewal_center/?months=6"))
    both = [v for v in customer.locator(".rd-device:not([disabled])").evaluate_all(values) if v in renewable_for_12]
    assert len(both) >= 3
    ticked = sorted([both[0], both[2]])
    for value in ticked:
        customer.locator(f".rd-device[value='{value}']").check()
    with customer.expect_navigation():
        customer.select_option("#rd-months", "12")
    assert parse_qs(urlsplit(customer.url).query)["months"] == ["12"]
    expect(customer.locator("#rd-renew-selected")).to_contain_text("12")
    assert sorted(customer.locator(".rd-device:checked").evaluate_all(values)) == ticked
    # A custom length carries them too.
    customer.select_option("#rd-months", "custom")
    customer.locator("#rd-custom-months").fill("12")
    with customer.expect_navigation():
        customer.locator("#rd-custom-months").press("Enter")
    assert parse_qs(urlsplit(customer.url).query)["custom_months"] == ["12"]
    assert sorted(customer.locator(".rd-device:checked").evaluate_all(values)) == ticked
