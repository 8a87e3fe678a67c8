"""SIM-card distribution (seed 002) in a real browser, in Chinese: real-name verification → card
Excel import → stock → card order paid from the balance → ship → receive → a refund of two cards →
commission (the issue's worked example: 10 cards at 39.00, 5 % off → 370.50; B 29.64 and A 7.41, the
refund reverses −5.93 and −1.48) → monthly settlement → withdrawal → the report charts.

Every user switches to 简体中文 from the user menu; the stored choice is put back at the end so that
the other browser tests keep reading English. Amounts are compared with what the one money formatter
(`actions.money.format_money`, locale zh_Hans_CN) gives: "¥370.50". The only step not done through a
page is the scheduled `flask cards receive` job, which makes commission held after receipt available
once its hold days are over (there is no page for it: cron runs it). Screenshots go to
tests/artifacts/cards-*.png.
"""
from __future__ import annotations

import io
import re
import subprocess
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from openpyxl import load_workbook  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from actions.money import format_money  # noqa: E402

from .conftest import BROWSER, ROOT, _environment, _flask, flashes, shot  # noqa: E402

pytestmark = BROWSER

ZH = "zh_Hans_CN"
USERS = ("customer", "admin", "support", "subdistributor", "finance")
# Twelve cards of plan SIM-39 (39.00 a card): two go on consignment to Aotuo Cards, ten are sold.
IMPORTED = [(f"898609770000{n:08d}", f"1390000{n:04d}", f"RD{n:06d}") for n in range(1, 13)]
SOLD = [iccid for iccid, _phone, _pin in IMPORTED[2:]]
CARRIER, TRACKING = "顺丰速运", "SF1234567890"
BANK_ACCOUNT = "6222020200112233"


def cny(amount: str) -> str:
    return format_money(Decimal(amount), "CNY", locale=ZH)


def submit(page, selector: str) -> None:
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


@contextmanager
def chinese(live_app, *usernames: str):
    """Put back the users' stored locale afterwards (the other browser tests read English)."""
    before = {name: live_app.scalar('SELECT locale FROM "user" WHERE username = :n', n=name) for name in usernames}
    try:
        yield
    finally:
        with live_app.engine.begin() as conn:
            for name, locale in before.items():
                conn.execute(sa.text('UPDATE "user" SET locale = :locale WHERE username = :name'),
                             {"locale": locale, "name": name})


def to_chinese(page, live_app) -> None:
    """简体中文 from the user menu: stored on the user, the page comes back translated."""
    page.goto(live_app.url("/admin/"))
    page.click("#rd-user")
    submit(page, "form[action='/language'] button:has-text('简体中文')")
    user = re.search(r"^\s*(\S+)", page.locator("#rd-user").inner_text()).group(1)
    assert live_app.scalar('SELECT locale FROM "user" WHERE username = :n', n=user) == ZH


def row_of(page, text: str):
    """The list row (Flask-Admin's model list) whose cells contain `text`."""
    return page.locator("table.model-list tbody tr", has_text=text)


def with_selected(page, row, action: str, question: str | None, summary: str | None = None) -> None:
    """Tick one list row and run a Flask-Admin action from 批量操作 ("With selected"), accepting its question;
    an action that moves money asks on the server's confirmation page instead (its `summary`), and is confirmed."""
    row.locator("input.action-checkbox").check()
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.click("a.dropdown-toggle:has-text('批量操作')")
    submit(page, f"a.dropdown-item:text-is('{action}')")
    assert dialogs == ([question] if question else []), dialogs
    if summary is not None:
        expect(page.locator("#rd-confirm-summary")).to_have_text(summary)
        submit(page, "#rd-confirm-yes")


def run_cards_receive(live_app, day: date) -> str:
    """The scheduled job (cron): receipts due and commission whose hold is over becomes available."""
    done = subprocess.run(_flask("cards", "receive", "--today", day.isoformat()), cwd=ROOT,
                          env=_environment(live_app.database_url), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def fill_template(data: bytes, valid_until: date) -> bytes:
    """The downloaded template with the twelve cards in it, as a user would fill it in."""
    workbook = load_workbook(io.BytesIO(data))
    sheet = workbook.worksheets[0]  # named in the reader's language (号卡)
    headers = [cell.value for cell in sheet[1]]
    assert headers == ["卡号", "手机号", "密码", "套餐", "有效期"], headers
    for iccid, phone, pin in IMPORTED:
        sheet.append([iccid, phone, pin, "SIM-39", valid_until])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_cards_import_to_withdrawal_and_report_charts_in_chinese(open_as, live_app):
    one = live_app.scalar
    today = date.today()
    month = f"{today:%Y-%m}"
    acme = one("SELECT id FROM company WHERE name = 'Acme Logistics'")
    shenzhen = one("SELECT id FROM company WHERE name = 'Aotuo Shenzhen'")
    aotuo = one("SELECT id FROM company WHERE name = 'Aotuo Cards'")
    assert one("SELECT count(*) FROM distributor_profile WHERE company_id = :c", c=acme) == 0
    try:
        with chinese(live_app, *USERS):
            walk(open_as, live_app, today, month, acme, shenzhen, aotuo)
    finally:  # Acme Logistics is no distributor in the other browser tests
        with live_app.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM distributor_profile WHERE company_id = :c"), {"c": acme})


def walk(open_as, live_app, today, month, acme, shenzhen, aotuo):
    one = live_app.scalar

    # --- 实名认证: a customer administrator files it, an administrator verifies it ---------------------
    customer = open_as("customer")
    to_chinese(customer, live_app)
    customer.goto(live_app.url("/admin/card_verification/"))
    expect(customer.locator("h4", has_text="Acme Logistics")).to_contain_text("实名认证")
    customer.fill("#legal_name", "艾克米物流有限公司")
    customer.select_option("#id_type", "business_licence")
    customer.fill("#id_number", "91310000MA1FL8XQ30")
    customer.set_input_files("#licence", files=[{"name": "licence.png", "mimeType": "image/png",
                                                 "buffer": b"\x89PNG\r\n\x1a\n" + b"\0" * 64}])
    submit(customer, "#rd-verification button[type=submit]")
    expect(customer.locator(".alert-success")).to_contain_text("已提交：管理员将进行认证。")
    expect(customer.locator("#rd-profile")).to_contain_text("****")  # the ID number masked
    assert "91310000MA1FL8XQ30" not in customer.content()
    shot(customer, "cards-verification-submitted-zh")

    admin = open_as("admin")
    to_chinese(admin, live_app)
    admin.goto(live_app.url("/admin/distributorprofile/"))
    with_selected(admin, row_of(admin, "艾克米物流有限公司"), "通过认证", "认证所选分销商？")
    expect(admin.locator(".alert-success")).to_contain_text("已认证：艾克米物流有限公司")
    expect(row_of(admin, "艾克米物流有限公司")).to_contain_text("已认证")
    shot(admin, "cards-verification-approved-zh")
    assert one("SELECT status FROM distributor_profile WHERE company_id = :c", c=acme) == "verified"
    customer.goto(live_app.url("/admin/card_verification/"))
    expect(customer.locator("#rd-profile")).to_contain_text("已认证")

    # --- 批量导入: the template downloaded, filled, uploaded, previewed, committed with the progress bar -------
    support = open_as("support")
    to_chinese(support, live_app)
    support.goto(live_app.url("/admin/simcard/import/"))
    expect(support.locator("h4").last).to_have_text("批量导入号卡")
    with support.expect_download() as download:
        support.click("#rd-template")
    template = download.value
    filled = fill_template(Path(template.path()).read_bytes(), today + timedelta(days=365))
    support.set_input_files("#rd-upload input[name=file]", files=[{
        "name": "号卡导入.xlsx", "buffer": filled,
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    support.select_option("#holder", label="平台仓库")
    support.click("#rd-upload button[type=submit]")  # sent with a progress bar; the answer replaces the page
    expect(support.locator("h4").last).to_contain_text("号卡导入.xlsx")
    totals = dict(zip([t.strip() for t in support.locator("#rd-totals th").all_inner_texts()],
                      [t.strip() for t in support.locator("#rd-totals td").all_inner_texts()]))
    assert list(totals.values()) == ["12", "12", "0", "0", "0", "0"], totals
    assert support.locator("#rd-errors").count() == 0
    shot(support, "cards-import-preview-zh")
    with support.expect_navigation():  # the page posts chunk after chunk, then reloads when committed
        support.click("#rd-commit")
    expect(support.locator("#rd-committed")).to_have_text("12")
    expect(support.locator("#rd-rollback")).to_be_visible()
    batch = live_app.rows("SELECT id, status, rows_committed FROM card_import ORDER BY id DESC LIMIT 1")[0]
    assert (batch.status, batch.rows_committed) == ("committed", 12), batch
    support.goto(live_app.url("/admin/simcard/import/"))
    expect(support.locator("#rd-imports tbody tr").first).to_contain_text("已提交")
    shot(support, "cards-import-committed-zh")
    in_stock = one("SELECT count(*) FROM sim_card WHERE import_id = :b AND status = 'in_stock' AND holder_key = 0",
                   b=batch.id)
    assert in_stock == 12

    # --- 库存管理: a transfer document puts two of them on consignment with Aotuo Cards ----------------
    support.goto(live_app.url("/admin/card_stock/"))
    expect(support.locator("h4").last).to_have_text("库存管理")
    support.select_option("#kind", "transfer")
    support.select_option("#from_holder", label="平台仓库")
    support.select_option("#to_holder", label="Aotuo Cards")
    support.fill("#numbers", "\n".join(iccid for iccid, _p, _n in IMPORTED[:2]))
    support.fill("#note", "寄售给 Aotuo Cards")
    submit(support, "#rd-stock-document button[type=submit]")
    document = one("SELECT max(id) FROM stock_document")
    expect(support.locator(".alert-success")).to_contain_text(f"单据 {document} 已过账：2 张号卡。")
    consigned = live_app.rows("SELECT holder_key, status FROM sim_card WHERE iccid IN (:a, :b)",
                              a=IMPORTED[0][0], b=IMPORTED[1][0])
    assert {(r.holder_key, r.status) for r in consigned} == {(aotuo, "in_stock")}, consigned
    stock_row = support.locator("#rd-stock tbody tr", has_text="SIM-39").filter(has_text="Aotuo Cards")
    expect(stock_row.locator("td").nth(2)).to_have_text("12")  # the demo's 10 SIM-39 on consignment + these 2
    shot(support, "cards-stock-transfer-zh")

    # --- 订单管理: the worked example sold by the sub-distributor, paid from its balance ------------------
    seller = open_as("subdistributor")
    to_chinese(seller, live_app)
    balance_before = one("SELECT balance_minor FROM wallet WHERE company_id = :c AND currency = 'CNY' "
                         "AND kind = 'prepaid'", c=shenzhen)
    seller.goto(live_app.url("/admin/cardorder/"))
    submit(seller, "#rd-place")
    expect(seller.locator("h4").last).to_have_text("销售号卡")
    seller.select_option("#seller_id", label="Aotuo Shenzhen")
    seller.select_option("#package_id", str(one("SELECT id FROM package WHERE code = 'SIM-39'")))
    expect(seller.locator("#package_id option:checked")).to_contain_text(cny("39.00"))
    seller.fill("#quantity", "10")
    seller.select_option("#holder", label="平台仓库")
    seller.fill("#promotion_percent", "5")
    seller.fill("#promotion_label", "开业九五折")
    seller.fill("#customer_name", "王芳")
    seller.fill("#customer_phone", "13800138000")
    seller.fill("#shipping_address", "深圳市南山区科技园 1 号")
    shot(seller, "cards-order-place-zh")
    submit(seller, "#rd-place-form button[type=submit]")
    success = seller.locator(".alert-success")
    expect(success).to_contain_text(f"已支付（{cny('370.50')}）；号卡已预占。")
    number = re.search(r"订单 (\S+) 已支付", flashes(seller)).group(1)
    row = row_of(seller, number)
    expect(row).to_contain_text(cny("370.50"))
    expect(row).to_contain_text("待发货")
    search = seller.locator("input[name=search]").get_attribute("placeholder")
    assert "customer_phone" not in search, search  # every searched column is named in Chinese
    shot(seller, "cards-order-paid-zh")
    order = live_app.rows('SELECT o.id, o.total_minor, o.status, o.payment_method, c.id AS card_order '
                          'FROM "order" o JOIN card_order c ON c.order_id = o.id WHERE o.number = :n', n=number)[0]
    assert (order.total_minor, order.status, order.payment_method) == (37050, "paid", "balance"), order
    assert balance_before - one("SELECT balance_minor FROM wallet WHERE company_id = :c AND currency = 'CNY' "
                                "AND kind = 'prepaid'", c=shenzhen) == 37050

    # --- 发货: the platform's stock keeper pastes the ten card numbers, carrier and tracking number ----------
    support.goto(live_app.url("/admin/cardorder/?tab=awaiting"))
    submit(support, f"table.model-list a[title='发货'][href*='id={order.card_order}']")
    expect(support.locator("h4").last).to_contain_text(number)
    support.fill("#numbers", "\n".join(SOLD))
    support.fill("#carrier", CARRIER)
    support.fill("#tracking_number", TRACKING)
    shot(support, "cards-order-ship-zh")
    submit(support, "#rd-ship-form button[type=submit]")
    expect(support.locator(".alert-success")).to_contain_text(f"订单 {number} 已发货。")
    expect(support.locator("#rd-order-tabs a.active")).to_have_text("已发货")
    expect(row_of(support, number)).to_contain_text("已发货")
    shot(support, "cards-order-shipped-zh")
    statuses = [one("SELECT status FROM sim_card WHERE iccid = :i", i=iccid) for iccid in SOLD]
    assert statuses == ["shipped"] * 10, statuses

    # --- 确认收货: the seller confirms its customer received them -------------------------------------------
    seller.goto(live_app.url("/admin/cardorder/?tab=shipped"))
    with_selected(seller, row_of(seller, number), "确认收货", "确认客户已收到所选订单？")
    expect(seller.locator(".alert-success")).to_contain_text(f"订单 {number} 已确认收货。")
    seller.goto(live_app.url("/admin/cardorder/?tab=received"))
    expect(row_of(seller, number)).to_contain_text("已收货")
    shot(seller, "cards-order-received-zh")
    assert one("SELECT status FROM card_order WHERE id = :c", c=order.card_order) == "received"

    # --- 退款: finance asks to refund two of the cards, an administrator (another person) approves it ------
    finance = open_as("finance")
    to_chinese(finance, live_app)
    finance.goto(live_app.url("/admin/cardorder/?tab=received"))
    submit(finance, f"table.model-list a[title='退款'][href*='id={order.card_order}']")
    expect(finance.locator("h4").last).to_have_text(f"订单 {number} 退款")
    finance.fill("#numbers", "\n".join(SOLD[-2:]))
    finance.fill("#reason", "客户退回两张卡")
    submit(finance, "#rd-refund-form button[type=submit]")
    expect(finance.locator(".alert-success")).to_contain_text("已申请退款；由另一位财务人员审批。")
    expect(finance.locator("#rd-order-tabs a.active")).to_have_text("退款中")
    expect(row_of(finance, number)).to_be_visible()
    shot(finance, "cards-order-refund-requested-zh")
    admin.goto(live_app.url("/admin/cardorder/?tab=refunding"))
    with_selected(admin, row_of(admin, number), "审批退款", None,
                  "审批以下 1 个订单中待审批的退款：款项按原支付方式退回。")
    expect(admin.locator(".alert-success")).to_contain_text(f"订单 {number} 的退款已审批。")
    shot(admin, "cards-order-refund-approved-zh")
    # Two cards' share of the net paid (74.10) is back in the seller's balance.
    assert balance_before - one("SELECT balance_minor FROM wallet WHERE company_id = :c AND currency = 'CNY' "
                                "AND kind = 'prepaid'", c=shenzhen) == 37050 - 7410

    # --- 分销订单: the worked example's commission, split mode (B 8 % of 370.50, A the rest of 10 %) and the
    # refund's reversals (−5.93 for B, −1.48 for A) -------------------------------------------------------
    finance.goto(live_app.url("/admin/commissionentry/"))
    entries = finance.locator("table.model-list tbody tr")
    b_row = entries.filter(has_text="Aotuo Shenzhen").filter(has_text=cny("29.64"))
    a_row = entries.filter(has=finance.locator("td", has_text=re.compile(r"^\s*Aotuo Cards\s*$"))) \
        .filter(has_text=cny("7.41"))
    expect(b_row).to_have_count(1)
    expect(a_row).to_have_count(1)
    for line in (b_row, a_row):
        expect(line).to_contain_text(cny("370.50"))
    expect(b_row).to_contain_text("8%")
    expect(a_row).to_contain_text("2%")
    reversals = entries.filter(has_text="冲回")
    expect(reversals).to_have_count(2)
    expect(reversals.filter(has_text=cny("-5.93"))).to_have_count(1)
    expect(reversals.filter(has_text=cny("-1.48"))).to_have_count(1)
    shot(finance, "cards-commission-entries-zh")
    amounts = live_app.rows("SELECT company_id, level, kind, amount_minor, state FROM commission_entry "
                            "WHERE order_id = :o ORDER BY id", o=order.id)
    assert [(r.company_id, r.level, r.kind, r.amount_minor, r.state) for r in amounts] == [
        (shenzhen, 1, "sale", 2964, "held"), (aotuo, 2, "sale", 741, "held"),
        (shenzhen, 1, "reversal", -593, "available"), (aotuo, 2, "reversal", -148, "available")], amounts

    # The hold (7 days after receipt by the demo's rules) is over: cron makes the commission available.
    output = run_cards_receive(live_app, today + timedelta(days=8))
    assert "2 commission entries available" in output, output

    # --- 结算: finance prepares and submits the month's statement, an administrator approves and posts it ---
    finance.goto(live_app.url("/admin/commissionsettlement/"))
    finance.select_option("#rd-prepare select[name=company_id]", str(shenzhen))
    finance.fill("#rd-prepare input[name=month]", month)
    submit(finance, "#rd-prepare button[type=submit]")
    settlement = one("SELECT id FROM commission_settlement WHERE company_id = :c AND month = :m", c=shenzhen, m=month)
    expect(finance.locator(".alert-success")).to_contain_text(f"结算单 {settlement} 已生成。")
    statement = row_of(finance, "Aotuo Shenzhen").filter(has_text=month)
    expect(statement).to_contain_text(cny("23.71"))  # 29.64 − 5.93
    expect(statement).to_contain_text("草稿")
    with_selected(finance, statement, "提交", "提交所选结算单审批？")
    expect(finance.locator(".alert-success")).to_contain_text(f"已提交：{settlement}")
    expect(row_of(finance, "Aotuo Shenzhen").filter(has_text=month)).to_contain_text("待审核")
    shot(finance, "cards-settlement-submitted-zh")
    # Whoever prepared it may not approve it.
    with_selected(finance, row_of(finance, "Aotuo Shenzhen").filter(has_text=month), "审批并入账", None,
                  "审批以下 1 张结算单并计入佣金账户：")
    expect(finance.locator(".alert-danger")).to_contain_text(str(settlement))
    assert one("SELECT status FROM commission_settlement WHERE id = :s", s=settlement) == "submitted"

    admin.goto(live_app.url("/admin/commissionsettlement/"))
    with_selected(admin, row_of(admin, "Aotuo Shenzhen").filter(has_text=month), "审批并入账", None,
                  "审批以下 1 张结算单并计入佣金账户：")
    expect(admin.locator(".alert-success")).to_contain_text(f"已审批并入账：{settlement}")
    expect(row_of(admin, "Aotuo Shenzhen").filter(has_text=month)).to_contain_text("已入账")
    shot(admin, "cards-settlement-posted-zh")
    posted = live_app.rows("SELECT status, total_minor, prepared_by_id, approved_by_id FROM commission_settlement "
                           "WHERE id = :s", s=settlement)[0]
    assert (posted.status, posted.total_minor) == ("posted", 2371) and posted.prepared_by_id != posted.approved_by_id
    commission_wallet = "SELECT balance_minor FROM wallet WHERE company_id = :c AND kind = 'commission'"
    assert one(commission_wallet, c=shenzhen) == 2371

    # --- 提现: the sub-distributor withdraws 20.00 of its 23.71; finance approves and pays it --------------
    seller.goto(live_app.url("/admin/withdrawal/"))
    expect(seller.locator("#rd-withdraw")).to_have_text("佣金提现")
    submit(seller, "#rd-withdraw")
    expect(seller.locator("body")).to_contain_text(f"可提现佣金：{cny('23.71')}")
    expect(seller.locator("#account_name")).to_have_value("Li Wei")  # the verified legal name
    seller.fill("#amount", "20.00")
    seller.fill("#bank_name", "中国工商银行深圳南山支行")
    seller.fill("#account_number", BANK_ACCOUNT)
    shot(seller, "cards-withdrawal-new-zh")
    submit(seller, "#rd-withdrawal-form button[type=submit]")
    withdrawal = one("SELECT max(id) FROM withdrawal WHERE company_id = :c", c=shenzhen)
    expect(seller.locator(".alert-success")).to_contain_text(f"提现申请 {withdrawal} 已提交；金额已冻结，待财务打款。")
    expect(row_of(seller, cny("20.00"))).to_contain_text("****33")
    expect(row_of(seller, cny("20.00"))).to_contain_text("待审核")
    shot(seller, "cards-withdrawal-submitted-zh")
    assert BANK_ACCOUNT not in seller.content()
    assert one(commission_wallet, c=shenzhen) == 371  # held on submit

    finance.goto(live_app.url("/admin/withdrawal/"))
    with_selected(finance, row_of(finance, "Aotuo Shenzhen").filter(has_text=cny("20.00")), "审核通过", None,
                  f"审核通过 1 笔提现，合计 {cny('20.00')}：")
    expect(finance.locator(".alert-success")).to_contain_text(f"提现申请 {withdrawal} 已审批。")
    submit(finance, f"table.model-list a[title='审核'][href*='id={withdrawal}']")
    expect(finance.locator("table").first).to_contain_text(cny("20.00"))
    finance.fill("#text", "ICBC-20261201-0001")
    shot(finance, "cards-withdrawal-decide-zh")
    submit(finance, "#rd-decide button[value=paid]")
    expect(finance.locator("#rd-confirm-note")).to_have_text("冻结的金额将从佣金中永久扣除，此操作不可撤销。")
    expect(finance.locator("#rd-confirm-items")).to_contain_text("ICBC-20261201-0001")
    assert live_app.scalar("SELECT status FROM withdrawal WHERE id = :w", w=withdrawal) == "approved"
    shot(finance, "cards-withdrawal-pay-confirm-zh")
    submit(finance, "#rd-confirm-yes")
    expect(finance.locator(".alert-success")).to_contain_text(f"提现申请 {withdrawal}：已支付。")
    expect(row_of(finance, "ICBC-20261201-0001")).to_contain_text(cny("20.00"))
    shot(finance, "cards-withdrawal-paid-zh")
    paid = live_app.rows("SELECT status, bank_reference, submitted_by_id, approved_by_id FROM withdrawal "
                         "WHERE id = :w", w=withdrawal)[0]
    assert (paid.status, paid.bank_reference) == ("paid", "ICBC-20261201-0001")
    assert paid.submitted_by_id != paid.approved_by_id
    assert one(commission_wallet, c=shenzhen) == 371

    # --- 分销报表: the table and its ECharts chart, by distributor and by month -----------------------------
    finance.goto(live_app.url("/admin/card_report/?group=distributor"))
    expect(finance.locator("h4").last).to_have_text("分销报表")
    line = finance.locator("#rd-report tbody tr", has_text="Aotuo Shenzhen")
    expect(line).to_contain_text(cny("296.40"))  # 370.50 less the two refunded cards' 74.10
    expect(line).to_contain_text(cny("23.71"))
    expect(finance.locator("#rd-report tbody tr", has=finance.locator("td", has_text=re.compile(r"^Aotuo Cards$")))) \
        .to_contain_text(cny("5.93"))  # 7.41 − 1.48
    assert_chart_drawn(finance, ["Aotuo Cards", "Aotuo Shenzhen"])
    shot(finance, "cards-report-distributor-zh")
    finance.goto(live_app.url("/admin/card_report/?group=month"))
    expect(finance.locator("#rd-report tbody tr", has_text=month)).to_contain_text(cny("29.64"))  # 23.71 + 5.93
    assert_chart_drawn(finance, [month])
    shot(finance, "cards-report-month-zh")


def assert_chart_drawn(page, keys: list[str]) -> None:
    """The vendored ECharts drew a non-empty canvas with the report's keys on its axis."""
    canvas = page.locator("#rd-chart canvas").first
    expect(canvas).to_be_visible()
    # Skip the bars' growing animation: draw the final frame now (the screenshot shows the real heights).
    page.evaluate("""() => new Promise(done => {
        const chart = echarts.getInstanceByDom(document.getElementById('rd-chart'));
        chart.on('finished', () => done());
        chart.setOption({animation: false});
    })""")
    drawn = page.evaluate("""() => {
        const canvas = document.querySelector('#rd-chart canvas');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) painted++; }
        const option = echarts.getInstanceByDom(document.getElementById('rd-chart')).getOption();
        return {width: canvas.width, height: canvas.height, painted: painted, keys: option.xAxis[0].data,
                series: option.series.map(s => s.name + ':' + s.data.length), legend: option.legend[0].data};
    }""")
    assert drawn["width"] > 0 and drawn["height"] > 0, drawn
    assert drawn["painted"] > 1000, drawn  # bars, axes and legend painted, not a blank canvas
    assert drawn["keys"] == keys, drawn
    assert drawn["legend"] == ["销售", "佣金", "订单量"], drawn  # the legend in Chinese
