"""Seed 003's OS flow in a real browser, in Chinese, as the customer meets it: the customer administrator
registers the e-invoice service (sold OS) and chooses cash — step 2 offers only the balance and cash —
then Pay → Confirm shows "registration successful" with no payment page. Sales finds it under "Awaiting
cash" and enters the receipt; finance rejects it (a wrong reference, with the reason), sales enters the right
one, finance confirms it; only then is the subscription active. Screenshots go to
tests/artifacts/subscription-os-customer-*.png."""
from __future__ import annotations

import re
from datetime import date

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER, shot  # noqa: E402
from .test_subscriptions_browser import VALID_MST, submit, subscribe  # noqa: E402

pytestmark = BROWSER


def test_customer_registers_an_os_service_in_cash_and_finance_starts_it(chinese_page, live_app):
    cycle = live_app.scalar("SELECT c.id FROM plan_cycle c JOIN service_plan p ON p.id = c.plan_id "
                            "WHERE p.code = 'EINV-PRO' AND c.months = 24")
    company = live_app.scalar("SELECT id FROM company WHERE name = 'Acme South'")
    customer = chinese_page("customer")
    customer.goto(live_app.url("/admin/subscribe/"))
    expect(customer.locator("body")).to_contain_text("OS")
    subscribe(customer, cycle)
    with customer.expect_navigation():
        customer.select_option("#rd-company", str(company))
    submit(customer, "#rd-next")

    # Step 2: an OS service offers the balance and cash (cash chosen), never an online payment page.
    offered = customer.locator("input[name=pay_method]").evaluate_all("boxes => boxes.map(b => b.value)")
    assert sorted(offered) == ["balance", "cash"], offered
    expect(customer.locator("#rd-pay-cash")).to_be_checked()
    customer.fill("#rd-invoice-title", "Acme South Co., Ltd.")
    customer.fill("#rd-invoice-tax-id", VALID_MST)
    customer.fill("#rd-contact-name", "王芳")
    customer.fill("#rd-contact-phone", "+86 21 5555 0188")
    customer.fill("#rd-contact-email", "wang.fang@acme.example")
    customer.check("#rd-accept-terms")
    shot(customer, "subscription-os-customer-step2-zh")
    submit(customer, "#rd-pay")
    expect(customer.locator("#rd-confirm-cash")).to_contain_text("现金")
    submit(customer, "#rd-confirm")

    # đăng ký thành công: registered, awaiting the cash; nothing paid, no receipt made by the customer.
    expect(customer.locator("#rd-registered")).to_contain_text("登记成功")
    number = re.search(r"SUB\d+", customer.locator("#rd-registered").inner_text()).group(0)
    shot(customer, "subscription-os-customer-registered-zh")
    subscription_id = live_app.scalar("SELECT id FROM subscription WHERE number = :n", n=number)
    assert live_app.scalar("SELECT status FROM subscription WHERE id = :s", s=subscription_id) == "pending_payment"
    assert live_app.scalar("SELECT count(*) FROM cash_receipt WHERE subscription_id = :s", s=subscription_id) == 0
    assert live_app.scalar("SELECT o.status FROM \"order\" o JOIN subscription_order l ON l.order_id = o.id "
                           "WHERE l.subscription_id = :s", s=subscription_id) == "pending"

    # Sales: 待收现金 lists it; the receipt is entered on the subscription's payment tab.
    sales = chinese_page("sales")
    sales.goto(live_app.url("/admin/subscription/"))
    with sales.expect_navigation():
        sales.click("#rd-awaiting-cash")
    with sales.expect_navigation():
        sales.click(f"table.model-list a:text-is('{number}')")
    sales.goto(live_app.url(f"/admin/subscription/view/{subscription_id}/?tab=payments"))
    sales.fill("#rd-enter-cash input[name=reference]", "PT-ZH-0001")
    submit(sales, "#rd-enter-cash button[type=submit]")
    receipt = live_app.scalar("SELECT id FROM cash_receipt WHERE subscription_id = :s AND status = 'submitted'",
                              s=subscription_id)
    assert receipt is not None

    # Finance finds the reference wrong: rejects the receipt with a reason on its review page (after the
    # confirmation page); the order awaits payment again and sales enters the right receipt.
    finance = chinese_page("finance")
    finance.goto(live_app.url("/admin/cashreceipt/"))
    with finance.expect_navigation():
        finance.locator(f"a.rd-review[href$='id={receipt}']").click()
    finance.fill("#rd-cash-reason", "参考号有误,请重新录入")
    submit(finance, "#rd-cash-reject button[type=submit]")
    expect(finance.locator("body")).to_contain_text("参考号有误")
    submit(finance, "#rd-confirm-yes")
    expect(finance.locator("body")).to_contain_text(f"现金收据 #{receipt} 已驳回")
    shot(finance, "subscription-os-finance-rejected-zh")
    assert live_app.rows("SELECT status, reject_reason FROM cash_receipt WHERE id = :r", r=receipt)[0] == (
        "rejected", "参考号有误,请重新录入")
    assert live_app.rows("SELECT o.status, o.payment_method FROM \"order\" o JOIN subscription_order l ON "
                         "l.order_id = o.id WHERE l.subscription_id = :s", s=subscription_id)[0] == ("pending", None)
    sales.goto(live_app.url(f"/admin/subscription/view/{subscription_id}/?tab=payments"))
    sales.fill("#rd-enter-cash input[name=reference]", "PT-ZH-0002")
    submit(sales, "#rd-enter-cash button[type=submit]")

    # Finance confirms the right one on the server's confirmation page; the subscription starts today.
    finance.goto(live_app.url("/admin/cashreceipt/"))
    line = finance.locator("table.model-list tbody tr", has=finance.locator("td:text-is('PT-ZH-0002')"))
    line.locator("input.action-checkbox").check()
    finance.click("a.dropdown-toggle:has-text('批量操作')")
    submit(finance, "a.dropdown-item:text-is('确认已收现金')")
    submit(finance, "#rd-confirm-yes")
    started = live_app.rows("SELECT status, period_start FROM subscription WHERE id = :s", s=subscription_id)[0]
    assert started.status == "active" and str(started.period_start) == date.today().isoformat(), started
    customer.goto(live_app.url(f"/admin/subscribe/registered/{subscription_id}/"))
    assert customer.url.endswith(f"/admin/subscription/view/{subscription_id}/"), customer.url  # paid: its page
    shot(customer, "subscription-os-customer-active-zh")
