"""What a person clicking through the console in Chinese or Vietnamese ran into (pages, forms, exports)."""
from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from flask_babel import force_locale

from models import User, db


def _as(client, login, username: str, locale: str) -> None:
    db.session.scalar(db.select(User).where(User.username == username)).locale = locale
    db.session.commit()
    login(username)


@pytest.mark.parametrize("url", ["/admin/company/new/", "/admin/user/new/", "/admin/promotion/new/"])
def test_an_optional_choice_reads_blank_not_none(client, login, world, url):
    """WTForms 3.3 writes an option without text as its value: the empty parent company, company or plan read
    "__None" in the select (and in select2's box)."""
    _as(client, login, "admin", "zh_Hans_CN")
    page = html.unescape(html.unescape(client.get(url).get_data(as_text=True)))  # inline rows: escaped twice
    assert '<option selected value="__None">' in page, "the blank choice is still offered"
    assert ">__None<" not in page


def test_invoice_audit_summaries_read_in_the_readers_language(client, login, world, app):
    """The audit log of an invoice title, an invoice request, its rejection and a stock transfer read
    "ordinary: title: None → …; tax_id: …", "Electronic ordinary invoice for … over orders …" and "20 cards" in
    English (raw field names and None) on the Chinese page."""
    from decimal import Decimal

    from actions.invoices import reject_invoice_request, request_invoice, save_invoice_title
    from actions.tenants import credit_code_check_char
    from models import AuditEvent, Order, utcnow

    first = "913100000000000001"[:17]
    with app.test_request_context():
        customer = db.session.get(User, world.users["customer"].id)
        save_invoice_title(db.session, customer, world.acme, "ordinary", title="Acme 物流有限公司",
                           tax_id=first + credit_code_check_char(first))
        order = Order(number="T900001", kind="renewal", status="paid", company_id=world.acme.id, currency="CNY",
                      total=Decimal("620.00"), payment_method="alipay", paid_at=utcnow())
        db.session.add(order)
        db.session.flush()
        made = request_invoice(db.session, customer, world.acme, [order], "electronic_ordinary",
                               email="ap@acme.example")
        reject_invoice_request(db.session, db.session.get(User, world.users["finance"].id), made, "抬头有误")
        db.session.commit()
    events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.model.in_(("invoice_title",
                                                                                   "invoice_request")))).all()
    assert len(events) == 3 and all(e.summary_data for e in events), [e.summary for e in events]
    _as(client, login, "admin", "zh_Hans_CN")
    page = client.get("/admin/auditevent/?page_size=100").get_data(as_text=True)
    assert "发票抬头类型：普通发票；发票上的公司名称：— → Acme 物流有限公司" in page or "普通发票" in page, page
    for english in ("ordinary", "title:", "tax_id", "None", "over orders", "orders released", "Electronic"):
        assert english not in page, english
    assert "T900001" in page and "¥620.00" in page and "抬头有误" in page


def test_details_pages_show_yes_no_and_local_minutes(client, login, world):
    """Flask-Admin's details page showed a boolean as "True" and a time as "2026-12-02 06:36:53.329060+00:00";
    list icons had the tooltip "active: true"."""
    from models import DeviceType

    kind = DeviceType(name="测试类型", active=True, sort_order=0)
    db.session.add(kind)
    db.session.commit()
    _as(client, login, "support", "zh_Hans_CN")
    page = client.get(f"/admin/devicetype/details/?id={kind.id}").get_data(as_text=True)
    cells = [c.strip() for c in re.findall(r"<td>\s*(.*?)\s*</td>", page, re.S)]
    assert "是" in cells, cells
    assert not any(c in ("True", "False") or "+00:00" in c or re.search(r"\d{2}:\d{2}:\d{2}\.\d", c)
                   for c in cells), cells
    listing = client.get("/admin/devicetype/").get_data(as_text=True)
    assert 'title="是"' in listing and ": true" not in listing


@pytest.mark.parametrize(("locale", "required", "bad_choice"), [
    ("vi", "Trường này là bắt buộc.", "Lựa chọn không hợp lệ."),
    ("zh_Hans_CN", "此项为必填项。", "不是有效的选项。"),
])
def test_form_validation_messages_are_translated(client, login, world, locale, required, bad_choice):
    """WTForms has no Vietnamese catalog ("This field is required." on every Vietnamese form), and the plain forms
    (offline recharge, billing config, members, tenant profile) translated nothing ("Not a valid choice." in
    Chinese too)."""
    from conftest import post

    _as(client, login, "admin", locale)
    page = post(client, "/admin/company/new/", {"name": "", "status": "active"}).get_data(as_text=True)
    assert required in page and "This field is required" not in page
    _as(client, login, "sales", locale)
    page = post(client, "/admin/offline_recharge/new/", {"company_id": str(world.acme.id), "payer": "甲",
                                                         "currency": "", "amount": "1", "reference": "R1"})
    text = page.get_data(as_text=True)
    assert bad_choice in text and "Not a valid choice" not in text
    assert 'value="R1"' in text  # what was typed is kept


def test_pages_name_their_icon_so_the_browser_asks_for_no_favicon(client, login, world):
    """Every page made Chromium fetch /favicon.ico, a 404 in the console of each page."""
    assert client.get("/favicon.ico").status_code == 404
    assert '<link rel="icon" href="data:,">' in client.get("/login").get_data(as_text=True)
    login("customer")
    assert '<link rel="icon" href="data:,">' in client.get("/admin/").get_data(as_text=True)


def test_every_details_page_names_its_fields_in_our_words(web_app):
    """Flask-Admin's details page shows every column: unlabelled ones read "Phone", "Created At",
    "Login Phone Verified At" in English, and the machinery showed ("amount_minor", "summary_data",
    "idempotency_key", a withdrawal's account ciphertext and blind index)."""
    from flask_admin.contrib.sqla import ModelView

    admin = web_app.extensions["admin"][0]
    unlabelled, machinery = {}, {}
    with web_app.test_request_context("/admin/"):
        for view in admin._views:
            if not isinstance(view, ModelView) or not view.can_view_details:
                continue
            names = [name for name, _label in view.get_details_columns()]
            missing = [n for n in names if n not in (view.column_labels or {})]
            inner = [n for n in names if n.endswith(("_minor", "_data", "_enc", "_index", "_hash")) and
                     n not in (view.column_formatters or {}) or n == "idempotency_key"]
            if missing:
                unlabelled[view.endpoint] = missing
            if inner:
                machinery[view.endpoint] = inner
    assert unlabelled == {} and machinery == {}, (unlabelled, machinery)


def test_company_details_read_in_vietnamese(client, login, world):
    _as(client, login, "admin", "vi")
    page = client.get(f"/admin/company/details/?id={world.acme.id}").get_data(as_text=True)
    names = [re.sub(r"\s+", " ", n).strip() for n in re.findall(r"<b>(.*?)</b>", page, re.S)]
    assert "Múi giờ" in names or any("giờ" in n for n in names), names
    assert not {"Phone", "Fax", "Province", "City", "Address", "Time Zone"} & set(names), names


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
def test_every_stored_text_has_a_translation(web_app, locale):
    """A stored message key whose text is missing from a catalog reads English on that language's pages."""
    from flask_babel import force_locale

    from actions.texts import MESSAGES

    with web_app.test_request_context("/admin/"):
        with force_locale("en"):
            english = {key: str(text) for key, text in MESSAGES.items()}
        with force_locale(locale):
            same = [key for key, text in MESSAGES.items()
                    if str(text) == english[key] and re.search(r"[A-Za-z]{3,}", re.sub(r"%\(\w+\)s", "", english[key]))]
    assert same == [], same


def test_audit_of_catalog_bindings_and_users_reads_chinese(client, login, world, app):
    """Stopping sales, binding packages and creating users wrote English audit rows ("sales stopped; 0 devices
    bound", "package → GPS-Y on 2 devices", "username=… role=…")."""
    from actions.bindings import bind_package
    from actions.catalog import stop_sales
    from actions.users import create_user
    from models import AuditEvent, Device, Package

    with app.test_request_context():
        support = db.session.get(User, world.users["support"].id)
        admin = db.session.get(User, world.users["admin"].id)
        devices = db.session.scalars(db.select(Device).where(Device.company_id == world.acme.id).limit(2)).all()
        package = db.session.scalars(db.select(Package).where(Package.kind == "renewal")).first()
        bind_package(db.session, support, devices, package)
        other = db.session.scalars(db.select(Package).where(Package.kind == "renewal", Package.id != package.id)).first()
        stop_sales(db.session, support, other)
        create_user(db.session, admin, "新用户", "finance", "Str0ng-passw0rd!")
        db.session.commit()
    rows = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action.in_(
        ("bind_package", "stop_sales", "create")))).all()
    assert rows and all(r.summary_data for r in rows), [r.summary for r in rows]
    _as(client, login, "admin", "zh_Hans_CN")
    page = client.get("/admin/auditevent/?page_size=100").get_data(as_text=True)
    for english in ("sales stopped", "devices bound", "package →", "username=", "role=finance"):
        assert english not in page, english
    assert "已停售" in page and "续费套餐 →" in page and "已创建用户 新用户（财务）" in page


def test_pages_say_their_language(client, login, world):
    """The sign-in page said lang="zh_Hans_CN" (not a language tag) and the console's pages no language at all:
    Chromium then offers to translate a Chinese page and may draw its Han characters with Japanese glyphs."""
    page = client.get("/login", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="zh-Hans-CN">' in page
    _as(client, login, "customer", "vi")
    page = client.get("/admin/").get_data(as_text=True)
    assert '<script>document.documentElement.lang = "vi";' in page


@pytest.mark.parametrize(("locale", "title"), [("zh_Hans_CN", "表单已过期"), ("vi", "Biểu mẫu đã hết hạn")])
def test_an_expired_form_is_answered_in_the_readers_language(client, login, world, locale, title):
    """A form sent with a missing or stale CSRF token (a page left open for hours) got Werkzeug's English
    "400 Bad Request: The CSRF token is missing."; a GET of a form-only address "405 Method Not Allowed"."""
    _as(client, login, "sales", locale)
    answer = client.post("/admin/offline_recharge/new/", data={"csrf_token": "stale", "amount": "1"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and title in page and 'data-reason="CSRF"' in page
    assert "The CSRF token" not in page and "Bad Request" not in page
    answer = client.get("/admin/expiry_import/upload")
    assert answer.status_code == 405 and "Method Not Allowed" not in answer.get_data(as_text=True)


def test_the_language_menu_of_a_page_drawn_by_a_form_leads_back_to_the_form(client, login, world):
    """A page drawn in answer to a form (an upload's preview, a confirmation, a refused form) led the language menu
    back to the address the form was sent to: a GET there is 405 for the form-only ones."""
    from conftest import post

    _as(client, login, "sales", "zh_Hans_CN")
    answer = post(client, "/admin/offline_recharge/new/", {"currency": "", "amount": "1"},
                  headers={"Referer": "http://localhost/admin/offline_recharge/new/?url=%2Fadmin%2F"})
    text = answer.get_data(as_text=True)
    assert '<input type="hidden" name="next" value="/admin/offline_recharge/new/?url=%2Fadmin%2F">' in text


@pytest.mark.parametrize(("locale", "label"), [("zh_Hans_CN", "切换导航"), ("vi", "Mở/đóng menu")])
def test_the_menu_button_is_named_in_the_readers_language(client, login, world, locale, label):
    """Flask-Admin's menu button (shown on narrow screens) told screen readers "Toggle navigation" in English."""
    _as(client, login, "customer", locale)
    page = client.get("/admin/").get_data(as_text=True)
    assert f'aria-label="{label}"' in page and "Toggle navigation" not in page


def test_rates_read_as_the_reader_writes_a_percent(client, login, world):
    """The price table's saving read "70,00 CN¥ (9.7 %)" and the promotions "12.5 %" on Vietnamese pages (a decimal
    point where the reader writes a comma); Chinese pages wrote "9.7 %" where the reader writes 9.7%."""
    _as(client, login, "customer", "vi")
    table = client.get("/admin/subscribe/").get_data(as_text=True)
    assert "(9,7%)" in table and "(16,7%)" in table and " %)" not in table
    login.logout()
    _as(client, login, "sales", "vi")
    promotions = client.get("/admin/promotion/").get_data(as_text=True)
    assert "12,5%" in promotions and "12.5 %" not in promotions
    login.logout()
    _as(client, login, "customer", "zh_Hans_CN")
    assert "(9.7%)" in client.get("/admin/subscribe/").get_data(as_text=True)


def _filter_groups(page: str) -> dict:
    import json

    return json.loads(page.split('id="filter-groups-data"', 1)[1].split(">", 1)[1].split("</div>", 1)[0])


@pytest.mark.parametrize(("username", "url", "label", "code", "labels"), [
    ("admin", "/admin/device/", "状态", "suspended", "DEVICE_STATUSES"),
    ("support", "/admin/device_expiry/", "状态", "active", "DEVICE_STATUSES"),
    ("sales", "/admin/promotion/", "状态", "active", "PROMOTION_STATUSES"),
    ("sales", "/admin/promotion/", "适用于", "add_on", "PROMOTION_SCOPES"),
    ("sales", "/admin/promotion/", "币别", "VND", "CURRENCIES"),
    ("support", "/admin/package/", "计价方式", "per_month", "PRICING_METHODS"),
    ("support", "/admin/packagecategory/", "类型", "renewal", "PACKAGE_KINDS"),
    ("admin", "/admin/company/", "状态", "active", "COMPANY_STATUSES"),
    ("admin", "/admin/user/", "角色", "finance", "USER_ROLES"),
    ("finance", "/admin/cashreceipt/", "状态", "submitted", "CASH_RECEIPT_STATUSES"),
])
def test_a_coded_column_is_filtered_by_its_labels(app, client, login, world, username, url, label, code, labels):
    """Status, role, kind, scope and pricing filters were text boxes (contains, in list, …) where only the stored
    code matched: a reader typing 已停用 found nothing, "suspended" found the rows. Each is a choice of the labels
    the list shows now, equal or not equal, and the code still travels in the address."""
    import models

    with app.test_request_context(), force_locale("zh_Hans_CN"):
        shown = str(getattr(models, labels)[code])
    _as(client, login, username, "zh_Hans_CN")
    filters = _filter_groups(client.get(url).get_data(as_text=True))[label]
    assert [f["arg"].rsplit("_", 2)[-1] for f in filters] == ["equals", "equal"], filters
    assert all(f["options"] for f in filters), filters
    assert dict(filters[0]["options"])[code] == shown
    assert client.get(f"{url}?flt0_{filters[0]['arg']}={code}").status_code == 200


def test_the_audit_log_is_filtered_by_action_labels(client, login, world):
    from admin_views.system import AUDIT_ACTIONS

    _as(client, login, "admin", "zh_Hans_CN")
    filters = _filter_groups(client.get("/admin/auditevent/").get_data(as_text=True))["操作"]
    assert len(filters) == 2 and set(dict(filters[0]["options"])) == set(AUDIT_ACTIONS), filters


def test_refusals_name_a_status_in_the_readers_words(app, world):
    """Paying an order twice, refunding an unpaid one or pausing a draft promotion answered "(it is paid)",
    "it is pending", "from draft to paused" on Chinese pages."""
    from datetime import date

    from actions import DomainError
    from actions.orders import LineSpec, open_order, pay_with_balance, request_refund
    from actions.subscriptions import set_promotion_status
    from models import Promotion

    customer, finance = world.users["customer"], world.users["finance"]
    order = open_order(db.session, customer, kind="renewal", company_id=world.acme.id, currency="CNY",
                       lines=[LineSpec(description="AC0001", gross=Decimal("0.00"),
                                       device_id=world.devices["AC0001"].id, months=1)])
    pending = open_order(db.session, customer, kind="renewal", company_id=world.acme.id, currency="CNY",
                         lines=[LineSpec(description="AC0002", gross=Decimal("10.00"),
                                         device_id=world.devices["AC0002"].id, months=1)])
    draft = db.session.scalar(db.select(Promotion).where(Promotion.code == "PLAN15"))
    draft.status = "draft"
    db.session.flush()
    attempts = [
        lambda: pay_with_balance(db.session, customer, order, date.today()),  # a 0.00 order is paid at once
        lambda: request_refund(db.session, finance, pending, [line.id for line in pending.lines], "重复"),
        lambda: set_promotion_status(db.session, world.users["sales"], draft, "paused"),
    ]
    texts = []
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        for attempt in attempts:
            with pytest.raises(DomainError) as refused:
                attempt()
            texts.append(str(refused.value))
    joined = " | ".join(texts)
    for code in ("paid", "pending", "draft", "paused"):
        assert not re.search(rf"\b{code}\b", joined), joined


def test_a_top_up_order_shows_no_device_columns(app, client, login, world):
    """A top-up's order page listed "device number, renewal package, months, expires on, new expiry" over one line
    that has none of them; a renewal keeps them."""
    from actions.orders import LineSpec, create_recharge_order, open_order

    customer = world.users["customer"]
    with app.test_request_context():
        top_up = create_recharge_order(db.session, customer, world.acme, "CNY", "100.00")
        renewal = open_order(db.session, customer, kind="renewal", company_id=world.acme.id, currency="CNY",
                             lines=[LineSpec(description="AC0001", gross=Decimal("10.00"),
                                             device_id=world.devices["AC0001"].id, months=1)])
        db.session.commit()
    _as(client, login, "customer", "zh_Hans_CN")

    def head_and_foot(number):
        page = client.get(f"/admin/renewal_center/order/{number}/").get_data(as_text=True)
        table = page.split('id="rd-order-lines"', 1)[1].split("</table>", 1)[0]
        heads = re.findall(r"<th[^>]*>([^<]*)</th>", table.split("</thead>", 1)[0])
        cells = len(re.findall(r"<td", table.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("</tr>", 1)[0]))
        return heads, cells

    heads, cells = head_and_foot(top_up.number)
    assert "设备号" not in heads and "到期时间" not in heads and "月数" not in heads, heads
    assert cells == len(heads) == 2, (heads, cells)  # description, amount (one unit: no quantity or unit price)
    heads, cells = head_and_foot(renewal.number)
    assert "设备号" in heads and "到期时间" in heads and cells == len(heads), (heads, cells)


def test_the_empty_filter_operation_is_ours_not_flask_admins_vietnamese(client, login, world):
    """Every "empty" filter operation read "sản phẩm nào" ("which product", Flask-Admin's Vietnamese catalog) on
    Vietnamese pages. The word is now our catalog's msgid "empty"; the filter's address keeps "…_empty"."""
    _as(client, login, "admin", "vi")
    groups = _filter_groups(client.get("/admin/outboxmail/").get_data(as_text=True))
    empties = [f for filters in groups.values() for f in filters if f["arg"].endswith("_empty")]
    assert empties, groups
    assert all(f["operation"] != "sản phẩm nào" for f in empties), empties
    assert client.get(f"/admin/outboxmail/?flt0_{empties[0]['arg']}=1").status_code == 200


@pytest.mark.parametrize("locale, words", [
    ("vi", {"_not_contains": "không chứa", "_not_between": "không nằm trong khoảng", "_between": "nằm trong khoảng"}),
    ("zh_Hans_CN", {"_not_contains": "不包含", "_not_between": "不介于", "_between": "介于"}),
])
def test_filter_operations_read_in_our_words(client, login, world, locale, words):
    """Flask-Admin's catalogs said "không có" ("has not") for "not contains", "không giữa" and 不是之间 for "not
    between": those operations use our words now, at the same addresses."""
    _as(client, login, "admin", locale)
    page = client.get("/admin/auditevent/").get_data(as_text=True)
    filters = [f for group in _filter_groups(page).values() for f in group]
    for ending, word in words.items():
        found = [f for f in filters if f["arg"].endswith(ending) and not (ending == "_between"
                                                                          and f["arg"].endswith("_not_between"))]
        assert found and all(f["operation"] == word for f in found), (ending, found)
        assert client.get(f"/admin/auditevent/?flt0_{found[0]['arg']}=x").status_code == 200


def test_money_reads_as_money_on_details_pages_and_related_columns(app, client, login, world):
    """An order's details page read "合计 180.00" / "Tổng cộng 1000.50" (its view's own details formatters had no
    money one), and the value-added offers listed a package's price as "8.00"."""
    from actions.orders import LineSpec, open_order
    from models import CompanyPackage, Package

    order = open_order(db.session, world.users["customer"], kind="renewal", company_id=world.acme.id,
                       currency="CNY", lines=[LineSpec(description="AC0001", gross=Decimal("1000.50"),
                                                       device_id=world.devices["AC0001"].id, months=1)])
    package = db.session.scalar(db.select(Package).where(Package.kind == "value_added"))
    db.session.add(CompanyPackage(company_id=world.acme.id, package_id=package.id))
    db.session.commit()
    _as(client, login, "finance", "vi")
    page = client.get(f"/admin/order_management/details/?id={order.id}").get_data(as_text=True)
    cells = [html.unescape(c).replace("\xa0", " ").strip() for c in re.findall(r"<td>\s*(.*?)\s*</td>", page, re.S)]
    assert "1000.50" not in cells and "1.000,50 CN¥" in cells, cells
    login.logout()
    _as(client, login, "support", "zh_Hans_CN")
    listing = client.get("/admin/company_package/").get_data(as_text=True)
    amount = f"{package.amount:.2f}"
    assert f">{amount}<" not in re.sub(r"\s+", "", listing), "a raw price"
    from actions.money import format_money

    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert format_money(package.amount, package.currency) in listing


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_exports_write_yes_or_no_not_true(client, login, world, kind):
    """The package and value-added offer exports wrote booleans as "True"/"False" (CSV) or TRUE (a sheet) in a
    Chinese export; they read 是/否 as the list does."""
    import io

    from openpyxl import load_workbook

    _as(client, login, "support", "zh_Hans_CN")
    answer = client.get(f"/admin/package/export/{kind}/")
    assert answer.status_code == 200
    if kind == "csv":
        rows = [line.split(",") for line in answer.get_data(as_text=True).splitlines()]
    else:
        rows = [[c for c in row] for row in load_workbook(io.BytesIO(answer.data)).active.iter_rows(values_only=True)]
    column = rows[0].index("已启用")
    values = {row[column] for row in rows[1:]}
    assert values and values <= {"是", "否"}, values


def test_a_subscriptions_created_event_is_not_the_created_column(app):
    """The history tab's first event read "创建时间" / "Ngày tạo" (the column label "Created", creation time) where
    it means the subscription was created: the event has its own msgid."""
    from flask_babel import lazy_gettext

    from models import SUBSCRIPTION_EVENT_KINDS

    for locale in ("zh_Hans_CN", "vi"):
        with app.test_request_context(), force_locale(locale):
            assert str(SUBSCRIPTION_EVENT_KINDS["created"]) != str(lazy_gettext("Created")), locale
