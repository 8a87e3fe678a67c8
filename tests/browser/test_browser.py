"""The console in a real browser: menus per role, forced password change, device suspension (list
action and pasted numbers), the Excel expiry import, offline recharge → renewal paid by balance,
and the Chinese UI. Each main page visited is saved as a full-page screenshot in tests/artifacts/.

Needs Debian's Chromium (/usr/bin/chromium; CHROMIUM_PATH overrides) and the playwright package;
the module is skipped with the reason when either is missing. `make test` runs the suite with
`-n 2 --dist loadgroup` so that these tests share one worker, one server and one browser.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER, ROOT, flashes, login, shot  # noqa: E402

pytestmark = BROWSER

# What each demo role must find in the menu (group → entries), and the groups it must not see.
MUST_SEE = {
    "admin": {
        "Customer center": {"Renewal center"},
        "Management center": {"Devices", "Suspended devices", "Batch suspend"},
        "Finance operations": {"Pending review", "Reviewed", "Order management"},
        "Sales operations": {"Offline recharge", "Billing config", "Batch set expiry dates"},
        "Tech support operations": {"Device expiry maintenance", "Packages"},
        "System": {"Companies", "Users", "Audit log"},
    },
    "support": {
        "Management center": {"Devices", "Suspended devices", "Batch suspend"},
        "Tech support operations": {"Device expiry maintenance", "Package categories", "Package subcategories",
                                    "Packages", "Customer extension config", "Customer value-added config"},
    },
    "finance": {"Finance operations": {"Pending review", "Reviewed", "Order management"}},
    "sales": {"Sales operations": {"Offline recharge", "Billing config", "Batch set expiry dates"}},
    "customer": {
        "Customer center": {"Renewal center", "Order records", "Recharge records", "Account config"},
        "Management center": {"Devices", "Suspended devices", "Batch suspend"},
    },
}
MUST_NOT_SEE = {
    "admin": set(),
    "support": {"Finance operations", "Sales operations", "System"},
    # Promotions (sales draft, finance activates) and cash receipts (sales enter, finance confirm) are
    # shared pages: each role sees the other's group with that one entry only (MUST_NOT_SEE_ENTRIES).
    "finance": {"Management center", "Tech support operations", "System"},
    "sales": {"Management center", "Tech support operations", "System"},
    "customer": {"Finance operations", "Sales operations", "Tech support operations", "System"},
}
# Entries that must not appear under any group for the role (another role's pages).
MUST_NOT_SEE_ENTRIES = {
    "admin": set(),
    "support": {"Users", "Offline recharge", "Pending review", "Batch set expiry dates"},
    "finance": {"Users", "Devices", "Offline recharge", "Batch set expiry dates", "Billing config", "Grant seats"},
    "sales": {"Users", "Devices", "Pending review", "Device expiry maintenance", "Order management", "Ledger",
              "Invoice review"},
    "customer": {"Users", "Pending review", "Offline recharge", "Device expiry maintenance", "Packages"},
}
# A page of another role: its URL answers 403.
FORBIDDEN_PAGE = {
    "support": "/admin/offline_recharge/",
    "finance": "/admin/device/",
    "sales": "/admin/recharge_review/",
    "customer": "/admin/user/",
}

READ_MENU = """() => {
  const menu = {};
  for (const group of document.querySelectorAll('ul.navbar-nav.mr-auto > li.dropdown')) {
    const name = group.querySelector(':scope > a.dropdown-toggle').textContent.trim();
    menu[name] = [...group.querySelectorAll('a.dropdown-item')].map(a => a.textContent.trim());
  }
  return menu;
}"""


def read_menu(page) -> dict[str, set[str]]:
    return {group: set(entries) for group, entries in page.evaluate(READ_MENU).items()}


def submit(page, selector: str) -> None:
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


# --- menus ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["admin", "support", "finance", "sales", "customer"])
def test_each_role_sees_its_menus_only(open_as, live_app, username):
    page = open_as(username)
    expect(page.locator("#rd-user")).to_contain_text(username)
    menu = read_menu(page)
    shot(page, f"home-{username}")
    for group, entries in MUST_SEE[username].items():
        assert group in menu, f"{username} lacks the menu group {group!r}: {menu}"
        assert entries <= menu[group], f"{username} lacks {sorted(entries - menu[group])} under {group!r}"
    assert not MUST_NOT_SEE[username] & set(menu), f"{username} sees {sorted(MUST_NOT_SEE[username] & set(menu))}"
    drawn = set().union(*menu.values()) if menu else set()
    assert not MUST_NOT_SEE_ENTRIES[username] & drawn, f"{username} sees {sorted(MUST_NOT_SEE_ENTRIES[username] & drawn)}"
    if username in FORBIDDEN_PAGE:
        response = page.goto(live_app.url(FORBIDDEN_PAGE[username]))
        assert response.status == 403, f"{username} on {FORBIDDEN_PAGE[username]}: {response.status}"
    # Log out from the user menu: back on the login page, and the console is closed again.
    page.goto(live_app.url("/admin/"))
    page.click("#rd-user")
    submit(page, "#rd-logout")
    assert "/login" in page.url
    page.goto(live_app.url("/admin/"))
    assert "/login" in page.url


# --- the forced password change -----------------------------------------------------------------------

def test_new_user_must_change_the_initial_password(open_as, live_app):
    admin = open_as("admin")
    admin.goto(live_app.url("/admin/user/new/"))
    admin.fill("#username", "newhire")
    admin.fill("#email", "newhire@renewdesk.example")
    admin.click("#s2id_role")  # the role is a select2 box
    admin.click(".select2-drop-active .select2-results li:has-text('Sales')")
    expect(admin.locator("#s2id_role .select2-chosen")).to_have_text("Sales")
    admin.fill("#initial_password", "Initial-pass-2024")
    shot(admin, "user-create")
    submit(admin, "form.admin-form input[type=submit][value='Save']")
    expect(admin.locator("table.model-list")).to_contain_text("newhire")

    page = open_as()
    page.goto(live_app.url("/login"))
    shot(page, "login")
    login(page, live_app, "newhire", "Initial-pass-2024", expect_home=False)
    assert page.url.endswith("/password"), page.url
    expect(page.locator(".alert-info")).to_contain_text("choose a new password")
    for path in ("/admin/", "/admin/expiry_import/"):  # nothing else opens until the password changes
        page.goto(live_app.url(path))
        assert page.url.endswith("/password"), f"{path} → {page.url}"
    shot(page, "password-forced")
    page.fill("#current", "Initial-pass-2024")
    page.fill("#new", "newhire-own-secret-7")
    page.fill("#confirm", "wrong repetition")
    submit(page, "form button[type=submit]")
    expect(page.locator(".invalid-feedback")).to_contain_text("differ")
    page.fill("#current", "Initial-pass-2024")
    page.fill("#new", "newhire-own-secret-7")
    page.fill("#confirm", "newhire-own-secret-7")
    submit(page, "form button[type=submit]")
    assert re.search(r"/admin/?$", page.url), page.url
    expect(page.locator(".alert-success")).to_contain_text("Your password is changed")
    assert "Batch set expiry dates" in read_menu(page).get("Sales operations", set())
    page.goto(live_app.url("/admin/expiry_import/"))
    assert page.url.endswith("/admin/expiry_import/")
    assert live_app.scalar("""SELECT must_change_password FROM "user" WHERE username = 'newhire'""") in (False, 0)


# --- suspending devices --------------------------------------------------------------------------------

def test_suspend_devices_with_the_list_action(open_as, live_app):
    page = open_as("support")
    page.goto(live_app.url("/admin/device/"))
    rows = page.locator("table.model-list tbody tr", has=page.locator(".badge-success"))
    numbers, boxes = [], []
    for i in range(3):
        row = rows.nth(i)
        numbers.append(row.locator("td.col-number").inner_text().strip())
        boxes.append(row.locator("input.action-checkbox"))
    for box in boxes:
        box.check()
    shot(page, "device-list")
    page.click("a.dropdown-toggle:has-text('With selected')")
    submit(page, "a.dropdown-item:text-is('Suspend')")  # no JavaScript confirm(): the server asks
    expect(page.locator("#rd-confirm-summary")).to_have_text("Suspend 3 devices:")
    for number in numbers:
        expect(page.locator("#rd-confirm-items")).to_contain_text(number)
    assert live_app.scalar("SELECT count(*) FROM device WHERE status = 'suspended' AND number IN (:a, :b, :c)",
                           a=numbers[0], b=numbers[1], c=numbers[2]) == 0
    submit(page, "#rd-confirm-yes")
    expect(page.locator(".alert-success")).to_contain_text("3 devices suspended")
    for number in numbers:
        row = page.locator("table.model-list tbody tr", has=page.locator(f"td.col-number:text-is('{number}')"))
        expect(row.locator("td.col-status .badge")).to_have_text("Suspended")
    shot(page, "device-list-suspended")
    statuses = {n: live_app.scalar("SELECT status FROM device WHERE number = :n", n=n) for n in numbers}
    assert set(statuses.values()) == {"suspended"}, statuses

    page.goto(live_app.url("/admin/suspended_device/"))
    listed = set(page.locator("td.col-number").all_inner_texts())
    assert {n for n in numbers} <= {t.strip() for t in listed}
    shot(page, "suspended-devices")


def test_suspend_devices_by_pasted_numbers(open_as, live_app):
    numbers = [row.number for row in live_app.rows(
        "SELECT number FROM device WHERE status = 'active' ORDER BY number DESC LIMIT 4")]
    page = open_as("support")
    page.goto(live_app.url("/admin/device_batch/"))
    page.fill("#numbers", "\n".join(numbers[:2]) + "\n" + ", ".join(numbers[2:]) + "\nNO-SUCH-0001")
    page.check("#op-suspend")
    submit(page, "#rd-check")
    expect(page.locator("#rd-plan")).to_contain_text("4 devices will change")
    expect(page.locator("#rd-refused")).to_contain_text("NO-SUCH-0001")
    confirm = page.locator("#rd-confirm")
    expect(confirm).to_have_text("Suspend 4 devices")
    assert live_app.scalar("SELECT count(*) FROM device WHERE status = 'suspended' AND number IN "
                           "(:a, :b, :c, :d)", a=numbers[0], b=numbers[1], c=numbers[2], d=numbers[3]) == 0
    shot(page, "batch-suspend-preview")
    submit(page, "#rd-confirm")
    expect(page.locator("#rd-confirm-summary")).to_have_text("Suspend 4 devices:")
    submit(page, "#rd-confirm-yes")
    expect(page.locator(".alert-success")).to_contain_text("4 devices suspended")
    shot(page, "batch-suspend-done")
    for number in numbers:
        assert live_app.scalar("SELECT status FROM device WHERE number = :n", n=number) == "suspended", number


# --- the Excel expiry import -------------------------------------------------------------------------

def test_expiry_import_from_the_template(open_as, live_app, tmp_path):
    from openpyxl import load_workbook

    devices = live_app.rows(
        "SELECT d.number, d.expires_on FROM device d JOIN company c ON c.id = d.company_id "
        "WHERE c.name = 'Initech Rentals' ORDER BY d.number LIMIT 3")
    changes = {row.number: (date.fromisoformat(str(row.expires_on)),
                            date.fromisoformat(str(row.expires_on)) + timedelta(days=400 + i))
               for i, row in enumerate(devices)}

    page = open_as("sales")
    page.goto(live_app.url("/admin/expiry_import/"))
    shot(page, "expiry-import")
    with page.expect_download() as download:
        page.click("#rd-template")
    template = tmp_path / "template.xlsx"
    download.value.save_as(template)
    assert download.value.suggested_filename.endswith(".xlsx")

    workbook = load_workbook(template)
    sheet = workbook.worksheets[0]
    headers = [cell.value for cell in sheet[1]]
    assert headers[:2] == ["Device number", "New expiry date"], headers
    for number, (_old, new) in changes.items():
        sheet.append([number, new])
    filled = tmp_path / "expiry-filled.xlsx"
    workbook.save(filled)

    page.set_input_files("#rd-file", str(filled))
    page.click("#rd-upload button[type=submit]")  # sent by XMLHttpRequest (a progress bar), the answer replaces the page
    expect(page.locator("#rd-summary [data-count=changes]")).to_have_text("3")
    expect(page.locator("#rd-summary [data-count=failed]")).to_have_text("0")
    preview = {}
    for row in page.locator("#rd-changes tbody tr").all():
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        preview[cells[1]] = (cells[2], cells[4])
    assert preview == {n: (old.isoformat(), new.isoformat()) for n, (old, new) in changes.items()}
    shot(page, "expiry-import-preview")
    submit(page, "#rd-commit button[type=submit]")
    expect(page.locator(".alert-success")).to_contain_text("3 devices have a new expiry date")
    expect(page.locator("#rd-imports tbody tr").first).to_contain_text("Committed")
    shot(page, "expiry-import-committed")

    # Tech support sees the new dates in the device list.
    support = open_as("support")
    for number, (_old, new) in changes.items():
        support.goto(live_app.url(f"/admin/device/?search={number}"))
        row = support.locator("table.model-list tbody tr", has=support.locator(f"td.col-number:text-is('{number}')"))
        expect(row.locator("td.col-expires_on")).to_have_text(new.isoformat())
    shot(support, "device-list-new-expiry")


# --- money: offline recharge, then a renewal paid by balance ------------------------------------------

def test_offline_recharge_then_renewal_paid_by_balance(open_as, live_app):
    # The customer picks two devices in the renewal center; the order waits for money.
    customer = open_as("customer")
    customer.goto(live_app.url("/admin/renewal_center/?months=12"))
    expect(customer.locator("#rd-renewal-devices")).to_be_visible()
    rows = customer.locator("#rd-renewal-devices tr.rd-row", has=customer.locator("input.rd-device:enabled"))
    picked = {}
    for i in range(2):
        row = rows.nth(i)
        picked[row.get_attribute("data-number")] = row.locator(".rd-new-expiry").inner_text().strip()
        row.locator("input.rd-device").check()
    shot(customer, "renewal-center")
    submit(customer, "#rd-renew-selected")
    expect(customer.locator("#rd-order-status")).to_have_text("Pending payment")
    order_number = customer.inner_text("#rd-order-number").strip()
    amount = customer.inner_text("#rd-order-total").strip()  # "CN¥260.00": the one money formatter
    assert amount.startswith("CN¥")
    for number in picked:
        expect(customer.locator("body")).to_contain_text(number)
    shot(customer, "renewal-order")
    submit(customer, "#rd-confirm-pay")
    expect(customer.locator("#rd-pay-form")).to_contain_text("available: CN¥0.00")
    expect(customer.locator("#rd-missing")).to_contain_text(f"{amount} missing")
    shot(customer, "pay-without-balance")
    pay_url = customer.url

    # Sales file an offline recharge for Acme Logistics ...
    sales = open_as("sales")
    sales.goto(live_app.url("/admin/offline_recharge/new/"))
    option = sales.locator("#company_id option", has_text="Acme Logistics").first.get_attribute("value")
    sales.select_option("#company_id", option)
    sales.fill("#payer", "Acme Logistics Ltd")
    sales.select_option("#currency", "CNY")
    sales.fill("#amount", "1000.00")
    sales.fill("#reference", "BANK-2026-0042")
    shot(sales, "offline-recharge-form")
    submit(sales, "#rd-submit")
    expect(sales.locator(".alert-success")).to_contain_text("submitted for review")
    application = re.search(r"#(\d+)", flashes(sales)).group(1)
    shot(sales, "offline-recharge-list")

    # ... finance approve it on the review page ...
    finance = open_as("finance")
    finance.goto(live_app.url("/admin/recharge_review/"))
    shot(finance, "recharge-pending-review")
    submit(finance, f"a[title='Review'][href*='id={application}']")
    expect(finance.locator("#rd-amount")).to_have_text("CN¥1,000.00")
    finance.fill("#rd-comment", "Transfer seen on the bank statement.")
    shot(finance, "recharge-review")
    submit(finance, "#rd-approve")
    expect(finance.locator("#rd-confirm-summary")).to_have_text(
        "Approve and credit CN¥1,000.00 to the CNY balance of Acme Logistics.")
    submit(finance, "#rd-confirm-yes")
    expect(finance.locator(".alert-success")).to_contain_text("approved: CN¥1,000.00 credited to Acme Logistics")
    finance.goto(live_app.url("/admin/recharge_reviewed/"))
    expect(finance.locator("table.model-list")).to_contain_text("BANK-2026-0042")
    shot(finance, "recharge-reviewed")

    # ... and the customer's balance shows it: pay the order from the balance.
    customer.goto(pay_url)
    expect(customer.locator("#rd-pay-form")).to_contain_text("available: CN¥1,000.00")
    expect(customer.locator("#rd-missing")).to_have_count(0)
    expect(customer.locator("#rd-method-balance")).to_be_checked()
    shot(customer, "pay-with-balance")
    submit(customer, "#rd-pay")
    expect(customer.locator(".alert-success")).to_contain_text(f"Order {order_number} is paid")
    expect(customer.locator("#rd-order-status")).to_have_text("Paid")
    shot(customer, "renewal-order-paid")
    left = live_app.scalar("SELECT w.balance_minor FROM wallet w JOIN company c ON c.id = w.company_id "
                           "WHERE c.name = 'Acme Logistics' AND w.currency = 'CNY'")
    assert Decimal(left) / 100 == Decimal("1000.00") - Decimal(amount.removeprefix("CN¥").replace(",", "")), left
    for number, new_expiry in picked.items():
        customer.goto(live_app.url(f"/admin/device/?search={number}"))
        row = customer.locator("table.model-list tbody tr", has=customer.locator(f"td.col-number:text-is('{number}')"))
        expect(row.locator("td.col-expires_on")).to_have_text(new_expiry)
    customer.goto(live_app.url("/admin/order_record/"))
    expect(customer.locator("table.model-list")).to_contain_text(order_number)
    shot(customer, "order-records")


# --- Chinese -------------------------------------------------------------------------------------------

def _our_chinese(msgids: list[str]) -> dict[str, str]:
    """Our catalog's Chinese for `msgids`, where the compiled catalog has one (it is still growing)."""
    from babel.support import Translations

    catalog = Translations.load(str(ROOT / "translations"), ["zh_Hans_CN"])
    found = {}
    for msgid in msgids:
        text = catalog.gettext(msgid)
        if text != msgid:
            found[msgid] = text
    return found


def test_switch_to_chinese_from_the_user_menu(open_as, live_app):
    page = open_as("admin")
    try:
        page.goto(live_app.url("/admin/device/"))
        page.click("#rd-user")
        submit(page, "form[action='/language'] button:has-text('简体中文')")
        assert page.url.endswith("/admin/device/"), page.url
        assert live_app.scalar("""SELECT locale FROM "user" WHERE username = 'admin'""") == "zh_Hans_CN"
        # Flask-Admin's own catalog: the list tab and the actions menu.
        expect(page.locator(".nav-tabs .nav-link", has_text="列表").first).to_be_visible()
        expect(page.locator("a.dropdown-toggle", has_text="批量操作")).to_be_visible()
        # Ours: every menu group and entry that the compiled catalog translates is drawn in Chinese.
        menu = read_menu(page)
        entries = sorted({e for group in MUST_SEE["admin"].values() for e in group})
        translated = _our_chinese(list(MUST_SEE["admin"]) + entries)
        for group, wanted in MUST_SEE["admin"].items():
            if group in translated:
                chinese = translated[group]
                assert chinese in menu, f"menu group {group!r} is not drawn as {chinese!r}: {sorted(menu)}"
                drawn = menu[chinese]
                for entry in wanted:
                    if entry in translated:
                        assert translated[entry] in drawn, f"{entry!r} is not drawn as {translated[entry]!r}: {drawn}"
        if "Management center" in translated:  # the catalog is still being written: assert once it has it
            assert "管理中心" in menu
        shot(page, "device-list-zh")
        for path, name in (("/admin/", "home-zh"), ("/admin/renewal_center/?company_id=1", "renewal-center-zh"),
                           ("/admin/expiry_import/", "expiry-import-zh"),
                           ("/admin/recharge_review/", "recharge-review-zh")):
            page.goto(live_app.url(path))
            assert page.url.endswith(path)
            shot(page, name)
    finally:
        # Back to English: the choice is stored on the user, and the other tests read English labels.
        page.goto(live_app.url("/admin/"))
        page.click("#rd-user")
        submit(page, "form[action='/language'] button:has-text('English')")
    expect(page.locator("a.nav-link", has_text="Home").first).to_be_visible()
