"""增值服务 and seat packages (seeds 001 and 004) in Chromium, in Chinese, at 1366×768.

The customer opens 充值续费, switches to the 增值服务 tab, picks a value-added package offered to Acme
(the demo offers 短信 VAS-SMS and VAS-FENCE), the months and two devices, orders, confirms and pays from the
balance, and finds the 增值订单 in 订单记录; the device page shows the service. Finance asks for a refund
of one line in 订单管理 and the admin (a second person) approves it under 退款审核: that device loses the
service, the other keeps it, the line's money is back. Technical support sees the demo's seat packages in
套餐管理 with their product edition, and sales grants seats right away. The only step not done through a
page is putting ¥1,000 on Acme South's wallet (wallet and ledger kept equal; the order is Acme South's, so
Acme Logistics' own balance, which other browser tests read, stays as it was). Screenshots:
tests/artifacts/value-added-*-zh.png and seat-packages-zh.png (the visible 1366×768 screen).
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from actions.orders import add_months  # noqa: E402

from .conftest import ARTIFACTS, BROWSER, flashes  # noqa: E402

pytestmark = BROWSER

FUND_KEY = "browser-value-added:fund"


def screen(page, name: str) -> None:
    """What a person sees at 1366×768: tests/artifacts/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def submit(page, selector: str) -> None:
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def choose(page, selector: str, **option) -> None:
    """Pick an option of a select that submits its form on change, and wait for the new page."""
    with page.expect_navigation():
        page.select_option(selector, **option)



def _fund(live_app, company: int) -> None:
    """¥1,000.00 on the company's CNY wallet, once, with its ledger entry."""
    if live_app.scalar("SELECT count(*) FROM ledger_entry WHERE idempotency_key = :k", k=FUND_KEY):
        return
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with live_app.engine.begin() as conn:
        wallet = conn.execute(sa.text("SELECT id, balance_minor FROM wallet WHERE company_id = :c AND currency = 'CNY'"),
                              {"c": company}).first()
        if wallet is None:
            conn.execute(sa.text("INSERT INTO wallet (company_id, currency, balance_minor, updated_at) "
                                 "VALUES (:c, 'CNY', 0, :t)"), {"c": company, "t": now})
            wallet = conn.execute(sa.text("SELECT id, balance_minor FROM wallet WHERE company_id = :c "
                                          "AND currency = 'CNY'"), {"c": company}).first()
        balance = wallet.balance_minor + 100000
        conn.execute(sa.text(
            "INSERT INTO ledger_entry (wallet_id, kind, currency, amount_minor, balance_after_minor, idempotency_key, "
            "memo, created_at) VALUES (:w, 'offline_recharge', 'CNY', 100000, :b, :k, '', :t)"),
            {"w": wallet.id, "b": balance, "k": FUND_KEY, "t": now})
        conn.execute(sa.text("UPDATE wallet SET balance_minor = :b WHERE id = :w"), {"b": balance, "w": wallet.id})


def _service_end(live_app, number: str, code: str):
    value = live_app.scalar(
        "SELECT s.expires_on FROM device_service s JOIN device d ON d.id = s.device_id JOIN package p "
        "ON p.id = s.package_id WHERE d.number = :n AND p.code = :c", n=number, c=code)
    return value if value is None or isinstance(value, date) else date.fromisoformat(str(value))


def test_customer_buys_a_value_added_service_and_finance_refunds_a_line(chinese_page, live_app):
    south = live_app.scalar("SELECT id FROM company WHERE name = 'Acme South'")
    _fund(live_app, south)
    sms = live_app.scalar("SELECT id FROM package WHERE code = 'VAS-SMS'")
    customer = chinese_page("customer")
    customer.goto(live_app.url("/admin/renewal_center/"))
    expect(customer.locator("#rd-tab-value-added")).to_have_text("增值服务")
    submit(customer, "#rd-tab-value-added")
    expect(customer.locator("#rd-tab-value-added")).to_have_class("nav-link active")
    choose(customer, "#rd-company", value=str(south))
    expect(customer.locator("#rd-package option")).to_have_count(2)  # VAS-FENCE and VAS-SMS, offered to Acme
    choose(customer, "#rd-package", value=str(sms))
    expect(customer.locator("#rd-package option:checked")).to_have_text("VAS-SMS SMS alerts — ¥5.00 / 月")
    choose(customer, "#rd-months", value="6")
    expect(customer.locator("#rd-unit-price")).to_have_text("每台设备 6 个月 ¥30.00")
    boxes = customer.locator("#rd-value-added-devices .rd-device:not([disabled])")
    numbers = []
    for i in range(2):
        box = boxes.nth(i)
        box.check()
        numbers.append(box.get_attribute("aria-label"))
    expect(customer.locator("#rd-value-added-devices .rd-price").first).to_have_text("¥30.00")
    screen(customer, "value-added-center-zh")

    submit(customer, "#rd-buy-selected")
    expect(customer.locator("h4", has_text="确认订单")).to_be_visible()
    expect(customer.locator("body")).to_contain_text("增值订单")
    expect(customer.locator("#rd-order-lines .rd-line")).to_have_count(2)
    expect(customer.locator("#rd-order-lines thead")).to_contain_text("新服务到期日")
    new_end = add_months(date.today(), 6).isoformat()
    expect(customer.locator("#rd-order-lines .rd-line-new-expiry").first).to_have_text(new_end)
    number = customer.url.rstrip("/").split("/")[-1]
    screen(customer, "value-added-order-zh")

    submit(customer, "#rd-confirm-pay")
    expect(customer.locator("#rd-method-balance")).to_be_checked()
    submit(customer, "#rd-pay")
    assert f"订单 {number} 已支付：余额扣款 ¥60.00。" in flashes(customer)
    for device in numbers:
        assert _service_end(live_app, device, "VAS-SMS") == date.fromisoformat(new_end)

    customer.goto(live_app.url("/admin/order_record/"))
    row = customer.locator("tr", has_text=number)
    expect(row).to_contain_text("增值订单")
    expect(row).to_contain_text("已支付")
    screen(customer, "value-added-records-zh")
    device_id = live_app.scalar("SELECT id FROM device WHERE number = :n", n=numbers[0])
    customer.goto(live_app.url(f"/admin/device/details/?id={device_id}"))
    services = customer.locator("#rd-device-services")
    expect(services).to_contain_text("SMS alerts")
    expect(services).to_contain_text(new_end)
    expect(services).to_contain_text("服务中")

    order_id = live_app.scalar('SELECT id FROM "order" WHERE number = :n', n=number)
    finance = chinese_page("finance")
    finance.goto(live_app.url("/admin/order_management/"))
    expect(finance.locator("tr", has_text=number)).to_contain_text("增值订单")
    finance.goto(live_app.url(f"/admin/order_management/details/?id={order_id}"))
    refunded_device = numbers[1]
    finance.locator("label", has_text=f"{refunded_device} SMS alerts × 6").click()
    finance.fill("#rd-refund-reason", "设备已退回")
    screen(finance, "value-added-refund-zh")
    submit(finance, "#rd-refund-lines")
    expect(finance.locator("#rd-confirm-summary")).to_contain_text(f"订单 {number}")  # the server asks first
    submit(finance, "#rd-confirm-yes")
    assert f"已为订单 {number} 申请退款 ¥30.00" in flashes(finance)

    admin = chinese_page("admin")
    admin.goto(live_app.url("/admin/orderrefund/"))
    refund_row = admin.locator("tr", has_text=number)
    refund_row.locator("input.action-checkbox").check()
    dialogs = []
    admin.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    admin.click("a.dropdown-toggle:has-text('批量操作')")
    submit(admin, "a.dropdown-item:text-is('审核通过并退款')")
    assert dialogs == [], dialogs  # the next page is the confirmation
    expect(admin.locator("#rd-refunds")).to_contain_text("¥30.00")
    submit(admin, "#rd-refund-approve")
    assert "已通过并退还 1 笔退款。" in flashes(admin)

    assert _service_end(live_app, refunded_device, "VAS-SMS") is None
    assert _service_end(live_app, numbers[0], "VAS-SMS") == date.fromisoformat(new_end)
    assert live_app.scalar('SELECT refunded_minor FROM "order" WHERE id = :i', i=order_id) == 3000
    finance.goto(live_app.url(f"/admin/order_management/details/?id={order_id}"))
    expect(finance.locator("#rd-order-refunded")).to_have_text("−¥30.00")


def test_seat_packages_are_in_the_catalog_and_seats_are_granted_out_of_the_box(chinese_page, live_app):
    support = chinese_page("support")
    support.goto(live_app.url("/admin/package/?search=SEAT"))
    table = support.locator("table.model-list")
    expect(table.locator("thead")).to_contain_text("产品版本")
    for code, edition in (("SEAT-ENTERPRISE", "企业版"), ("SEAT-STANDARD", "标准版"), ("SEAT-BASIC", "基础版")):
        row = table.locator("tr", has_text=code)
        expect(row).to_contain_text(edition)
        expect(row).to_contain_text("账号名额")
    screen(support, "seat-packages-zh")
    package_id = live_app.scalar("SELECT id FROM package WHERE code = 'SEAT-STANDARD'")
    support.goto(live_app.url(f"/admin/package/edit/?id={package_id}"))
    expect(support.locator("select[name=edition] option:checked")).to_have_text("标准版")

    acme = live_app.scalar("SELECT id FROM company WHERE name = 'Acme Logistics'")
    before = live_app.scalar("SELECT purchased FROM seat_quota WHERE company_id = :c AND edition = 'basic'", c=acme) or 0
    sales = chinese_page("sales")
    sales.goto(live_app.url("/admin/seat_grant/"))
    expect(sales.locator("#rd-no-seat-packages")).to_have_count(0)
    sales.select_option("#rd-company", value=str(acme))
    sales.select_option("#rd-edition", value="basic")
    sales.fill("#rd-quantity", "2")
    sales.fill("#rd-note", "前台现金收据 0042")
    submit(sales, "#rd-grant")
    assert "Acme Logistics 已获得账号名额" in flashes(sales), flashes(sales)
    after = live_app.scalar("SELECT purchased FROM seat_quota WHERE company_id = :c AND edition = 'basic'", c=acme)
    assert after == before + 2
