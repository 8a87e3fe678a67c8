"""What a Chinese user of the console sees that only a browser draws: Select2's own messages.

Select2 3.5 (Flask-Admin's searchable selects) said "Please enter 1 or more character" and "No matches found"
in English on the promotion form's company picker (and any searchable select)."""
from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")

from .conftest import BROWSER, shot  # noqa: E402

pytestmark = BROWSER


def test_select2_speaks_chinese(chinese_page, live_app):
    page = chinese_page("sales")
    page.goto(live_app.url("/admin/promotion/new/"))
    page.locator(".inline-field-list + a.btn, a.btn:has-text('仅提供给')").last.click()  # add an "offered only to" row
    page.locator(".select2-container").last.click()
    drop = page.locator(".select2-drop-active")
    drop.wait_for()
    assert "请再输入 1 个字符" in drop.inner_text()
    page.keyboard.type("zzzz-none")
    page.wait_for_function("() => /没有匹配项/.test(document.querySelector('.select2-drop-active').innerText)")
    assert "No matches" not in drop.inner_text() and "Please enter" not in drop.inner_text()


def test_checkout_add_on_boxes_sit_inside_the_page(chinese_page, live_app):
    """The add-on checkboxes of checkout step 1 were drawn half outside the page's left edge (a Bootstrap
    column and .form-check on one element: the column's padding replaced the box's room)."""
    page = chinese_page("customer")
    cycle = live_app.scalar("SELECT id FROM plan_cycle ORDER BY id LIMIT 1")
    page.goto(live_app.url(f"/admin/subscribe/checkout/?cycle={cycle}"))
    boxes = page.locator("input[name=add_on]")
    assert boxes.count() > 0
    form_left = page.locator("input[name=add_on]").first.evaluate("e => e.closest('fieldset').getBoundingClientRect().left")
    for i in range(boxes.count()):
        assert boxes.nth(i).bounding_box()["x"] >= form_left, "an add-on checkbox sticks out of the form"


def test_filter_operations_are_not_cut_short(chinese_page, live_app):
    """The company filter's operation read "属于（…" (属于（含下级）, "in the tree of"): Flask-Admin draws every
    operation box 130px wide whatever its words."""
    page = chinese_page("customer")
    page.goto(live_app.url("/admin/device/"))
    page.locator("a.dropdown-toggle", has_text="添加筛选器").click()
    page.locator("a.filter", has_text="公司").click()
    shown = page.locator("table.filters .select2-container").first
    shown.wait_for()
    chosen = shown.locator(".select2-chosen")
    assert chosen.inner_text().strip() == "属于（含下级）"
    fits = chosen.evaluate("e => e.scrollWidth <= e.clientWidth")
    assert fits, "the operation's words are cut off"
    shot(page, "filter-operation-zh")


def test_distributor_home_opens_on_its_card_business(chinese_page, live_app):
    """The demo distributor (no devices) saw three device counts at 0 and an empty "devices expiring" chart after
    its card panels; its commission's rule ran past the balance card's padding."""
    page = chinese_page("distributor")
    assert page.locator("[data-card=cards_in_stock]").is_visible()
    assert page.locator("[data-card=expiring_30], [data-card=expired], [data-card=suspended]").count() == 0
    assert page.locator("#rd-chart-expiring, [data-chart-empty]").count() == 0
    rule = page.locator("#rd-commission").bounding_box()
    label = page.locator("#rd-balances .text-muted.small").first.bounding_box()
    assert abs(rule["x"] - label["x"]) <= 1, (rule, label)
    assert page.locator("[data-commission=CNY]").inner_text().startswith("¥")
    shot(page, "home-distributor-zh")


def test_chart_axes_group_numbers_as_the_reader_writes_them(open_as, live_app):
    """The income chart's axis read "25,000" on a Vietnamese home page (ECharts groups with a comma whatever the
    language): a Vietnamese reader writes 25.000."""
    import sqlalchemy as sa

    before = live_app.scalar('SELECT locale FROM "user" WHERE username = :u', u="customer")
    with live_app.engine.begin() as conn:
        conn.execute(sa.text('UPDATE "user" SET locale = :l WHERE username = :u'), {"l": "vi", "u": "customer"})
    try:
        page = open_as("customer")
        page.locator("#rd-chart-expiring[data-rendered='1'] canvas").wait_for()
        shown = page.evaluate("""() => {
          const axis = echarts.getInstanceByDom(document.getElementById('rd-chart-expiring')).getOption().yAxis[0];
          return [axis.axisLabel.formatter(25000), axis.axisLabel.formatter(1234567), axis.axisLabel.formatter(12)];
        }""")
        assert shown == ["25.000", "1.234.567", "12"], shown
    finally:
        with live_app.engine.begin() as conn:
            conn.execute(sa.text('UPDATE "user" SET locale = :l WHERE username = :u'), {"l": before, "u": "customer"})
