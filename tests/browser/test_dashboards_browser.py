"""The home pages in Chinese at 1366×768, in Debian's Chromium: each role's numbers, and the ECharts
charts (devices expiring in the next 90 days, income by day) drawn from the app's own copy of ECharts
(no request leaves the app). Screenshots: tests/artifacts/dashboard-<role>-zh.png."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER, shot  # noqa: E402

pytestmark = BROWSER

CHARTS = {"customer": ["expiring"], "support": ["expiring"], "finance": ["income"], "admin": ["expiring", "income"],
          "sales": []}
TITLES = {"expiring": "未来 90 天到期的设备", "income": "近 30 天每日收入"}
# What the rendered chart holds: its series' data, as ECharts has it.
CHART_OPTION = """(id) => {
  const chart = echarts.getInstanceByDom(document.getElementById(id));
  const option = chart.getOption();
  const data = JSON.parse(document.getElementById(id.replace('rd-chart-', 'rd-chart-data-')).textContent);
  return {series: option.series.map(s => s.data), canvas: !!document.querySelector('#' + id + ' canvas'), data};
}"""



def _money_in(live_app) -> None:
    """An offline recharge of ¥1,234.56 today and one of ¥100.00 three days ago, on Globex's wallet
    (wallet and ledger kept equal, so `flask ledger-check` stays clean)."""
    if live_app.scalar("SELECT count(*) FROM ledger_entry WHERE idempotency_key LIKE 'browser-dashboard:%'"):
        return
    company = live_app.scalar("SELECT id FROM company WHERE name = 'Globex Trading'")
    with live_app.engine.begin() as conn:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        wallet = conn.execute(sa.text("SELECT id, balance_minor FROM wallet WHERE company_id = :c AND currency = 'CNY'"),
                              {"c": company}).first()
        if wallet is None:
            conn.execute(sa.text("INSERT INTO wallet (company_id, currency, balance_minor, updated_at) "
                                 "VALUES (:c, 'CNY', 0, :t)"), {"c": company, "t": now})
            wallet = conn.execute(sa.text("SELECT id, balance_minor FROM wallet WHERE company_id = :c "
                                          "AND currency = 'CNY'"), {"c": company}).first()
        balance = wallet.balance_minor
        for key, minor, at in (("a", 10000, now - timedelta(days=3)), ("b", 123456, now)):
            balance += minor
            conn.execute(sa.text(
                "INSERT INTO ledger_entry (wallet_id, kind, currency, amount_minor, balance_after_minor, "
                "idempotency_key, memo, created_at) VALUES (:w, 'offline_recharge', 'CNY', :m, :b, :k, '', :t)"),
                {"w": wallet.id, "m": minor, "b": balance, "k": f"browser-dashboard:{key}", "t": at})
        conn.execute(sa.text("UPDATE wallet SET balance_minor = :b WHERE id = :w"), {"b": balance, "w": wallet.id})


@pytest.mark.parametrize("username", ["customer", "finance", "admin", "support", "sales"])
def test_dashboard_charts_render_in_chinese(chinese_page, live_app, username):
    _money_in(live_app)
    page = chinese_page(username)
    expect(page.locator(".rd-num").first).to_be_visible()
    for key in CHARTS[username]:
        chart = page.locator(f"#rd-chart-{key}[data-rendered='1'] canvas")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box["width"] > 300 and box["height"] > 200, box
        expect(page.locator(".card-header", has_text=TITLES[key])).to_be_visible()
        option = page.evaluate(CHART_OPTION, f"rd-chart-{key}")
        assert option["canvas"] and option["series"], option
        if key == "income":  # other tests may have brought money in too: compare with the server's JSON
            cny, sent = option["series"][0], option["data"]["series"][0]
            assert sent["currency"] == "CNY" and sent["minor"][-1] >= 123456 and sent["minor"][-4] >= 10000, sent
            assert [round(v * 100) for v in cny] == sent["minor"], cny  # minor units scaled for the axis only
        if key == "expiring":
            assert len(option["series"][0]) == 13 and sum(option["series"][0]) > 0, option
    if not CHARTS[username]:
        assert page.locator(".rd-chart").count() == 0
    if username == "customer":  # int(): sum() is NUMERIC on PostgreSQL
        minor = int(live_app.scalar("SELECT coalesce(sum(w.balance_minor), 0) FROM wallet w JOIN company c "
                                "ON c.id = w.company_id WHERE c.path LIKE (SELECT path FROM company "
                                "WHERE name = 'Acme Logistics') || '%' AND w.currency = 'CNY'"))
        expect(page.locator("[data-balance='CNY']")).to_have_text(f"¥{minor // 100:,}.{minor % 100:02d}")
        expect(page.locator("#rd-seats .card-header")).to_have_text("账号名额")
    if username in ("finance", "admin"):
        width = page.locator("#rd-chart-income").bounding_box()["width"]
        page.hover("#rd-chart-income canvas", position={"x": width - 30, "y": 200})  # today's bar
        today = page.evaluate(CHART_OPTION, "rd-chart-income")["data"]["series"][0]["text"][-1]
        expect(page.locator("#rd-chart-income")).to_contain_text(today)  # the tooltip: the server's text
    # Nothing fetched from outside the app (ECharts is shipped with it).
    assert not page.outside_requests, page.outside_requests
    shot(page, f"dashboard-{username}-zh")


def test_forbidden_page_in_chinese_inside_the_console(chinese_page, live_app, problems):
    page = chinese_page("finance")
    page.goto(live_app.url("/admin/recharge_review/"))
    with page.expect_navigation() as navigation:  # followed from a page of ours: the way back is to it
        page.evaluate("() => { window.location.href = '/admin/device/'; }")
    assert navigation.value.status == 403
    expect(page.locator("#rd-error")).to_contain_text("您无权打开此页面")
    expect(page.locator("nav.navbar")).to_contain_text("财务操作")
    shot(page, "error-403-zh")
    with page.expect_navigation():
        page.click("#rd-error-back")
    assert page.url.endswith("/admin/recharge_review/"), page.url


FILTER_OF_TYPE = """(kind) => {
  const groups = JSON.parse(document.getElementById('filter-groups-data').textContent);
  for (const name in groups) for (const f of groups[name]) if (f.type === kind) return f.arg;
  return null;
}"""


def test_date_range_picker_speaks_chinese(chinese_page, live_app):
    """Flask-Admin's date pickers: Chinese buttons, day and month names, and no "Invalid date"."""
    page = chinese_page("finance")
    page.goto(live_app.url("/admin/order_management/"))
    arg = page.evaluate(FILTER_OF_TYPE, "daterangepicker")
    assert arg, "the order list has a date range filter"
    page.goto(live_app.url(f"/admin/order_management/?flt0_{arg}=2026-11-01+to+2026-11-30"))
    field = page.locator(f"input.filter-val[name='flt0_{arg}']")
    expect(field).to_have_value("2026-11-01 to 2026-11-30")
    field.click()
    picker = page.locator(".daterangepicker:visible")
    expect(picker.locator(".applyBtn")).to_have_text("确定")
    expect(picker.locator(".cancelBtn")).to_have_text("取消")
    expect(picker.locator("th", has_text="一").first).to_be_visible()
    expect(picker).not_to_contain_text("Apply")
    expect(picker).not_to_contain_text("Mo")
    shot(page, "date-picker-zh")
    field.fill("not a date")
    page.keyboard.press("Tab")
    page.locator("h4, body").first.click(position={"x": 5, "y": 5})
    assert "Invalid date" not in field.input_value()
