"""Subscriptions (seed 003) in a real browser, in Vietnamese: the ON checkout paid from the balance
(the issue's worked example, total 1,642.96 CNY), the OS checkout (sales enters the cash, another
person of finance confirms it, only then the subscription starts), and the detail page's six tabs.

Each user switches to Tiếng Việt from the user menu; the stored choice is put back at the end so
that the other browser tests keep reading English. Amounts are compared with what the one money
formatter (`actions.money.format_money`, locale `vi`) gives: "1.642,96 CN¥". Screenshots go to
tests/artifacts/subscription-*.png.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from actions.money import format_money  # noqa: E402

from .conftest import BROWSER, flashes, shot  # noqa: E402

pytestmark = BROWSER

VALID_MST = "0100233488"  # a valid Vietnamese tax code (python-stdnum's vn.mst)
# The seed's six tabs, as the Vietnamese user guide names them.
TABS_VI = {"employees": "Danh sách nhân viên", "details": "Chi tiết", "notes": "Ghi nhớ",
           "payments": "Phương thức thanh toán", "invoices": "Hóa đơn", "history": "Lịch sử"}
ACTIVE_VI = "Đang hoạt động"
PENDING_VI = "Chờ thanh toán"


def vnd(amount: str) -> str:
    return format_money(Decimal(amount), "VND", locale="vi")


def cny(amount: str) -> str:
    return format_money(Decimal(amount), "CNY", locale="vi")


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def submit(page, selector: str) -> None:
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def choose(page, selector: str, value: str) -> None:
    """Pick an option of a select that submits its form on change, and wait for the new page."""
    with page.expect_navigation():
        page.select_option(selector, value)


def tick(page, selector: str) -> None:
    with page.expect_navigation():
        page.check(selector)


def subscribe(page, cycle: int) -> None:
    """Bảng giá as the guide says: click the cycle in its plan ("Nhấn chọn chu kì muốn đăng ký"), then the plan's
    one Subscribe ("Nhấn nút Đăng ký"), and wait for step 1."""
    page.locator(f"tr.rd-cycle[data-cycle='{cycle}'] label.form-check-label").click()
    expect(page.locator(f"#rd-cycle-{cycle}")).to_be_checked()
    plan_form = page.locator(f"#rd-cycle-{cycle}").get_attribute("form")
    with page.expect_navigation():
        page.locator(f"#{plan_form} button.rd-subscribe").click()


@contextmanager
def vietnamese(live_app, *usernames: str):
    """Put back the users' stored locale afterwards (the other browser tests read English)."""
    before = {name: live_app.scalar('SELECT locale FROM "user" WHERE username = :n', n=name) for name in usernames}
    try:
        yield
    finally:
        with live_app.engine.begin() as conn:
            for name, locale in before.items():
                conn.execute(sa.text('UPDATE "user" SET locale = :locale WHERE username = :name'),
                             {"locale": locale, "name": name})


def to_vietnamese(page, live_app) -> None:
    """Tiếng Việt from the user menu: stored on the user, the page comes back translated."""
    page.goto(live_app.url("/admin/"))
    page.click("#rd-user")
    submit(page, "form[action='/language'] button:has-text('Tiếng Việt')")
    user = re.search(r"^\s*(\S+)", page.locator("#rd-user").inner_text()).group(1)
    assert live_app.scalar('SELECT locale FROM "user" WHERE username = :n', n=user) == "vi"


def ids(live_app) -> dict[str, int]:
    """The demo catalog's rows the walks pick (seed_subscriptions)."""
    one = live_app.scalar
    return {
        "std12": one("SELECT c.id FROM plan_cycle c JOIN service_plan p ON p.id = c.plan_id "
                     "WHERE p.code = 'OFFICE-STD' AND c.months = 12"),
        "meet12": one("SELECT c.id FROM plan_cycle c JOIN service_plan p ON p.id = c.plan_id "
                      "WHERE p.code = 'MEET-BASIC' AND c.months = 12"),
        **{code: one("SELECT id FROM plan_add_on WHERE code = :c", c=code)
           for code in ("OFFICE-STORAGE", "OFFICE-ARCHIVE", "MEET-RECORD")},
        **{code: one("SELECT id FROM promotion WHERE code = :c", c=code)
           for code in ("PLAN15", "STORAGE50", "ARCHIVE125", "INVOICE7", "MEET10")},
        **{name: one("SELECT id FROM company WHERE name = :n", n=name) for name in ("Acme Logistics", "Globex Trading")},
    }


def balance(live_app, company: str, currency: str) -> Decimal:
    minor = live_app.scalar("SELECT w.balance_minor FROM wallet w JOIN company c ON c.id = w.company_id "
                            "WHERE c.name = :n AND w.currency = :cur", n=company, cur=currency)
    return Decimal(minor or 0) / 100


def fund_wallet(open_as, live_app, company: str, amount: str, reference: str) -> None:
    """An offline recharge filed by sales and approved by finance (in English: the users' own locale)."""
    sales = open_as("sales")
    sales.goto(live_app.url("/admin/offline_recharge/new/"))
    option = sales.locator("#company_id option", has_text=company).first.get_attribute("value")
    sales.select_option("#company_id", option)
    sales.fill("#payer", company)
    sales.select_option("#currency", "CNY")
    sales.fill("#amount", amount)
    sales.fill("#reference", reference)
    submit(sales, "#rd-submit")
    application = re.search(r"#(\d+)", flashes(sales)).group(1)
    finance = open_as("finance")
    finance.goto(live_app.url("/admin/recharge_review/"))
    submit(finance, f"a[title='Review'][href*='id={application}']")
    finance.fill("#rd-comment", "Subscription browser test: transfer seen.")
    submit(finance, "#rd-approve")
    submit(finance, "#rd-confirm-yes")  # the server's confirmation page: 审核通过并充值 … names the amount
    expect(finance.locator(".alert-success")).to_contain_text("approved")


def option_text(page, select: str, value: int) -> str:
    return page.locator(f"{select} option[value='{value}']").inner_text().strip()


def walk_on_checkout(open_as, live_app) -> int:
    """ON flow as the customer administrator of Acme Logistics, paid from the balance; the subscription id."""
    row = ids(live_app)
    if balance(live_app, "Acme Logistics", "CNY") < Decimal("1642.96"):
        fund_wallet(open_as, live_app, "Acme Logistics", "2000.00", "BANK-SUB-ON-0001")
    before = balance(live_app, "Acme Logistics", "CNY")

    page = open_as("customer")
    with vietnamese(live_app, "customer"):
        to_vietnamese(page, live_app)
        # Price table ("Bảng giá"): each cycle its own price, per month and the saving.
        page.goto(live_app.url("/admin/subscribe/"))
        expect(page.locator("h2").first).to_have_text("Bảng giá")
        std12 = page.locator(f"tr.rd-cycle[data-cycle='{row['std12']}']")
        expect(std12.locator(".rd-price")).to_have_text(cny("1200.00"))
        expect(std12).to_contain_text(cny("100.00"))  # 1,200.00 over 12 months
        shot(page, "subscription-price-table-vi")
        subscribe(page, row["std12"])

        # Step 1: the plan's promotion, two add-ons with theirs, the invoice promotion.
        expect(page.locator("h2").first).to_contain_text("Thanh toán dịch vụ")
        expect(page.locator("#rd-plan-price")).to_have_text(cny("1200.00"))
        assert "giảm " + cny("180.00") in option_text(page, "#rd-plan_promotion", row["PLAN15"])
        choose(page, "#rd-plan_promotion", str(row["PLAN15"]))
        tick(page, f"#rd-add-on-{row['OFFICE-STORAGE']}")
        storage_promotion = f"#rd-add_on_promotion_{row['OFFICE-STORAGE']}"
        assert "giảm " + cny("50.00") in option_text(page, storage_promotion, row["STORAGE50"])
        choose(page, storage_promotion, str(row["STORAGE50"]))
        tick(page, f"#rd-add-on-{row['OFFICE-ARCHIVE']}")
        archive_promotion = f"#rd-add_on_promotion_{row['OFFICE-ARCHIVE']}"
        assert "giảm " + cny("62.38") in option_text(page, archive_promotion, row["ARCHIVE125"])
        choose(page, archive_promotion, str(row["ARCHIVE125"]))
        # Only eligible promotions are offered: the VND plan promotion is not among the invoice's.
        assert page.locator(f"#rd-invoice_promotion option[value='{row['MEET10']}']").count() == 0
        assert "giảm " + cny("123.66") in option_text(page, "#rd-invoice_promotion", row["INVOICE7"])
        choose(page, "#rd-invoice_promotion", str(row["INVOICE7"]))
        # Everything chosen survived each reload.
        expect(page.locator("#rd-plan_promotion")).to_have_value(str(row["PLAN15"]))
        expect(page.locator(storage_promotion)).to_have_value(str(row["STORAGE50"]))
        expect(page.locator(archive_promotion)).to_have_value(str(row["ARCHIVE125"]))
        nets = [n.strip() for n in page.locator(".rd-quote .rd-net").all_inner_texts()]
        assert nets == [cny("948.60"), cny("288.30"), cny("406.06")], nets
        assert text_of(page, "#rd-total") == cny("1642.96")
        shot(page, "subscription-checkout-step1-vi")
        submit(page, "#rd-next")

        # Step 2: invoice details with a valid tax code, the contact, the terms.
        expect(page.locator("h2").first).to_contain_text("bước 2/2")
        assert text_of(page, "#rd-total") == cny("1642.96")
        page.fill("#rd-invoice-title", "Acme Logistics Co., Ltd")
        page.fill("#rd-invoice-tax-id", "0100233481")  # a wrong check digit first
        page.fill("#rd-contact-name", "Nguyễn Văn An")
        page.fill("#rd-contact-phone", "+84 24 3825 1234")
        page.fill("#rd-contact-email", "an.nguyen@acme.example")
        page.check("#rd-accept-terms")
        expect(page.locator("#rd-pay-balance")).to_be_checked()
        submit(page, "#rd-pay")
        expect(page.locator(".alert-danger")).to_contain_text("0100233481")
        assert live_app.scalar("SELECT count(*) FROM subscription WHERE invoice_tax_id = '0100233481'") == 0
        page.fill("#rd-invoice-tax-id", VALID_MST)
        page.check("#rd-accept-terms")
        shot(page, "subscription-checkout-step2-vi")
        submit(page, "#rd-pay")

        # Pay → Confirm.
        expect(page.locator("#rd-checkout-confirm .alert-info")).to_contain_text(cny("1642.96"))
        shot(page, "subscription-checkout-confirm-vi")
        submit(page, "#rd-confirm")
        expect(page.locator(".alert-success")).to_contain_text("đã thanh toán và đang hoạt động")
        expect(page.locator("#rd-state")).to_have_text(ACTIVE_VI)
        number = re.search(r"(SUB\d+)", flashes(page)).group(1)
        shot(page, "subscription-active-vi")

    subscription = live_app.rows("SELECT id, status, period_start, period_end, invoice_tax_id, terms_accepted_at "
                                 "FROM subscription WHERE number = :n", n=number)[0]
    assert subscription.status == "active"
    assert str(subscription.period_start) == date.today().isoformat()
    assert subscription.invoice_tax_id == VALID_MST and subscription.terms_accepted_at is not None
    order = live_app.rows("SELECT o.total_minor, o.status, o.payment_method FROM \"order\" o "
                          "JOIN subscription_order l ON l.order_id = o.id WHERE l.subscription_id = :s",
                          s=subscription.id)
    assert [(r.total_minor, r.status, r.payment_method) for r in order] == [(164296, "paid", "balance")], order
    assert before - balance(live_app, "Acme Logistics", "CNY") == Decimal("1642.96")
    return subscription.id


# --- Bảng giá: choose the cycle in the plan, then its one Đăng ký ------------------------------------------------

def test_price_tab_choose_a_cycle_then_subscribe(open_as, live_app):
    """"Vào xem chi tiết Dịch vụ, nhấn tab Bảng giá — chọn gói có nhiều chu kì — Nhấn chọn chu kì muốn đăng ký —
    Nhấn nút Đăng ký": Đăng ký with no cycle clicked says so, naming the plan, and stays on the tab; clicking
    "6 tháng" then Đăng ký opens step 1 with that cycle. A plan of one cycle has it chosen already."""
    one = live_app.scalar
    office = one("SELECT id FROM service WHERE code = 'CLOUD-OFFICE'")
    standard = one("SELECT id FROM service_plan WHERE code = 'OFFICE-STD'")
    std6 = one("SELECT id FROM plan_cycle WHERE plan_id = :p AND months = 6", p=standard)
    biz12 = one("SELECT c.id FROM plan_cycle c JOIN service_plan p ON p.id = c.plan_id WHERE p.code = 'OFFICE-BIZ'")
    page = open_as("customer")
    with vietnamese(live_app, "customer"):
        to_vietnamese(page, live_app)
        page.goto(live_app.url(f"/admin/subscribe/service/{office}/"))
        with page.expect_navigation():
            page.click("#rd-tab-prices")
        expect(page.locator("#rd-tab-prices")).to_have_text("Bảng giá")
        expect(page.locator(f"#rd-cycle-{biz12}")).to_be_checked()  # Business: one cycle, chosen
        plan = page.locator(f"tbody.rd-plan[data-plan='{standard}']")
        expect(plan.locator("input[type=radio]:checked")).to_have_count(0)
        expect(plan.locator("label.form-check-label")).to_have_text(["1 tháng", "6 tháng", "12 tháng"])
        subscribe_button = page.locator(f"#rd-plan-{standard} button.rd-subscribe")
        expect(subscribe_button).to_have_text("Đăng ký")
        with page.expect_navigation():
            subscribe_button.click()
        assert f"/subscribe/service/{office}/" in page.url and "tab=prices" in page.url
        expect(page.locator(".alert-danger")).to_contain_text("Cloud Office · Standard")
        expect(page.locator("#rd-checkout-step1")).to_have_count(0)

        page.locator(f"tbody.rd-plan[data-plan='{standard}']").get_by_text("6 tháng", exact=True).click()
        expect(page.locator(f"#rd-cycle-{std6}")).to_be_checked()
        expect(page.locator(f"tr.rd-cycle[data-cycle='{std6}'] .rd-price")).to_have_text(cny("650.00"))
        shot(page, "subscription-price-tab-cycle-chosen-vi")
        with page.expect_navigation():
            subscribe_button.click()
        expect(page.locator("h2").first).to_contain_text("Thanh toán dịch vụ")
        expect(page.locator("#rd-checkout-step1")).to_contain_text("Standard")
        expect(page.locator("#rd-checkout-step1")).to_contain_text("6 tháng")
        expect(page.locator("#rd-plan-price")).to_have_text(cny("650.00"))
        assert page.locator("#rd-checkout-step1 input[name=cycle]").get_attribute("value") == str(std6)


# --- (a) ON: price table → step 1 → step 2 → Pay → Confirm → paid from the balance ---------------------------

def test_on_checkout_worked_example_paid_by_balance(open_as, live_app):
    walk_on_checkout(open_as, live_app)


# --- (b) OS: sales enters the cash on the customer's behalf, finance confirms, the subscription starts ------

def test_os_checkout_cash_entered_by_sales_confirmed_by_finance(open_as, live_app):
    row = ids(live_app)
    sales = open_as("sales")
    finance = open_as("finance")
    with vietnamese(live_app, "sales", "finance"):
        to_vietnamese(sales, live_app)
        sales.goto(live_app.url("/admin/subscribe/"))
        subscribe(sales, row["meet12"])
        # On behalf of Globex Trading (its first subscription: MEET10 is offered).
        choose(sales, "#rd-company", str(row["Globex Trading"]))
        expect(sales.locator("#rd-plan-price")).to_have_text(vnd("1990000"))
        assert "giảm " + vnd("150000") in option_text(sales, "#rd-plan_promotion", row["MEET10"])  # 10 %, capped
        choose(sales, "#rd-plan_promotion", str(row["MEET10"]))
        tick(sales, f"#rd-add-on-{row['MEET-RECORD']}")
        assert text_of(sales, "#rd-total") == vnd("2440000")
        shot(sales, "subscription-os-step1-vi")
        submit(sales, "#rd-next")

        expect(sales.locator("#rd-pay-cash")).to_be_checked()  # sales: cash (OS) by default
        sales.fill("#rd-invoice-title", "Globex Trading JSC")
        sales.fill("#rd-invoice-tax-id", VALID_MST)
        sales.fill("#rd-contact-name", "Trần Thị Bình")
        sales.fill("#rd-contact-phone", "0901 234 567")
        sales.fill("#rd-contact-email", "binh.tran@globex.example")
        sales.check("#rd-accept-terms")
        shot(sales, "subscription-os-step2-vi")
        submit(sales, "#rd-pay")
        expect(sales.locator("#rd-checkout-confirm .alert-info")).to_contain_text(vnd("2440000"))
        submit(sales, "#rd-confirm")
        expect(sales.locator(".alert-success")).to_contain_text("đã nhập phiếu thu tiền mặt")
        expect(sales.locator("#rd-state")).to_have_text(PENDING_VI)
        number = re.search(r"(SUB\d+)", flashes(sales)).group(1)
        subscription_id = live_app.scalar("SELECT id FROM subscription WHERE number = :n", n=number)
        receipt = live_app.rows("SELECT id, status, amount_minor, entered_by_id FROM cash_receipt "
                                "WHERE subscription_id = :s", s=subscription_id)
        assert [(r.status, r.amount_minor) for r in receipt] == [("submitted", 2440000)], receipt
        receipt_id = receipt[0].id
        sales.goto(live_app.url(f"/admin/subscription/view/{subscription_id}/?tab=payments"))
        expect(sales.locator("body")).to_contain_text("Chờ xác nhận")
        shot(sales, "subscription-os-cash-entered-vi")
        assert live_app.scalar("SELECT status FROM subscription WHERE id = :s", s=subscription_id) == "pending_payment"

        # Finance (another person) confirms the receipt from the list; only then does it start.
        to_vietnamese(finance, live_app)
        finance.goto(live_app.url("/admin/cashreceipt/"))
        line = finance.locator("table.model-list tbody tr", has=finance.locator(f"td:text-is('{number}')"))
        expect(line).to_contain_text(vnd("2440000"))
        line.locator("input.action-checkbox").check()
        shot(finance, "subscription-os-cash-receipts-vi")
        dialogs = []
        finance.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        finance.click("a.dropdown-toggle:has-text('Thao tác hàng loạt')")  # Flask-Admin's "With selected"
        submit(finance, "a.dropdown-item:text-is('Xác nhận đã nhận tiền mặt')")
        assert dialogs == [], dialogs  # money: the server's confirmation page asks instead
        expect(finance.locator("#rd-confirm-summary")).to_have_text(
            "Xác nhận tiền mặt của 1 phiếu thu: các thuê bao bắt đầu.")
        submit(finance, "#rd-confirm-yes")
        expect(finance.locator(".alert-success")).to_contain_text("các thuê bao đã bắt đầu")
        finance.goto(live_app.url(f"/admin/subscription/view/{subscription_id}/"))
        expect(finance.locator("#rd-state")).to_have_text(ACTIVE_VI)
        shot(finance, "subscription-os-active-vi")

    done = live_app.rows("SELECT status, confirmed_by_id, entered_by_id FROM cash_receipt WHERE id = :r", r=receipt_id)[0]
    finance_id = live_app.scalar("""SELECT id FROM "user" WHERE username = 'finance'""")
    assert (done.status, done.confirmed_by_id) == ("confirmed", finance_id) and done.entered_by_id != finance_id
    started = live_app.rows("SELECT status, period_start, period_end FROM subscription WHERE id = :s",
                            s=subscription_id)[0]
    assert started.status == "active" and str(started.period_start) == date.today().isoformat(), started


# --- (c) the detail page's six tabs --------------------------------------------------------------------------

def test_subscription_detail_six_tabs(open_as, live_app):
    subscription_id = live_app.scalar(
        "SELECT s.id FROM subscription s JOIN company c ON c.id = s.company_id JOIN service v ON v.id = s.service_id "
        "WHERE c.name = 'Acme Logistics' AND v.code = 'CLOUD-OFFICE' AND s.status = 'active' "
        "AND s.invoice_tax_id = :mst ORDER BY s.id LIMIT 1", mst=VALID_MST)
    if subscription_id is None:  # this test runs alone: make the worked example's subscription first
        subscription_id = walk_on_checkout(open_as, live_app)
    number = live_app.scalar("SELECT number FROM subscription WHERE id = :s", s=subscription_id)
    page = open_as("customer")
    base = f"/admin/subscription/view/{subscription_id}/"
    with vietnamese(live_app, "customer"):
        to_vietnamese(page, live_app)
        page.goto(live_app.url("/admin/subscription/"))
        with page.expect_navigation():
            page.click(f"table.model-list a:text-is('{number}')")
        assert page.url.endswith(base), page.url
        labels = {name: text_of(page, f"#rd-tab-{name}") for name in TABS_VI}
        assert labels == TABS_VI, labels

        def open_tab(name: str) -> None:
            with page.expect_navigation():
                page.click(f"#rd-tab-{name}")
            expect(page.locator(f"#rd-tab-{name}")).to_have_class(re.compile(r"\bactive\b"))

        open_tab("employees")
        expect(page.locator("body")).to_contain_text("Đã dùng 0 trên 20 chỗ.")
        page.fill("#rd-logins", "no-such-login-7")
        submit(page, "#rd-assign-seats button[type=submit]")
        expect(page.locator(".alert-danger")).to_contain_text("no-such-login-7")
        shot(page, "subscription-tab-employees-vi")

        open_tab("details")
        expect(page.locator("#rd-period")).to_contain_text(date.today().isoformat())
        # The next renewal priced in advance: PLAN15 and INVOICE7 were once only, STORAGE50 is forever,
        # ARCHIVE125 has one of its two cycles left: 1,200.00 + 310.00 + 436.62.
        expect(page.locator("#rd-next-renewal")).to_contain_text(cny("1946.62"))
        expect(page.locator("body")).to_contain_text(VALID_MST)
        expect(page.locator("body")).to_contain_text("2026.1")  # the accepted terms' version
        shot(page, "subscription-tab-details-vi")

        open_tab("notes")
        page.fill("#rd-add-note textarea[name=body]", "Gia hạn trước ngày 15 hằng tháng.")
        page.check("#rd-add-note input[name=pinned]")
        submit(page, "#rd-add-note button[type=submit]")
        expect(page.locator(".alert-success")).to_contain_text("Đã thêm ghi nhớ.")
        expect(page.locator(".card.border-warning")).to_contain_text("Gia hạn trước ngày 15 hằng tháng.")
        shot(page, "subscription-tab-notes-vi")

        open_tab("payments")
        expect(page.locator("#rd-renewal-settings")).to_be_visible()
        expect(page.locator("body")).to_contain_text(cny("1642.96"))
        shot(page, "subscription-tab-payments-vi")

        open_tab("invoices")
        invoice = page.locator(".rd-invoice-order").first
        expect(invoice).to_contain_text(cny("1642.96"))
        for cut in ("180.00", "50.00", "62.38", "71.40", "21.70", "30.56"):  # the discount waterfall
            expect(invoice).to_contain_text("−" + cny(cut))
        shot(page, "subscription-tab-invoices-vi")

        open_tab("history")
        events = page.locator("#rd-history tbody").inner_text()
        for kind in ("Đã thanh toán", "Đã bắt đầu"):
            assert kind in events, events
        shot(page, "subscription-tab-history-vi")
