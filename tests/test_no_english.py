"""No English in the Chinese or Vietnamese console: every console page a role can open (its menu, the
links of its pages, one details and one edit page per list) is rendered in zh_Hans_CN and in vi, and
its visible text (and placeholders, titles, button values) holds none of the known English fragments.
Flask-Admin's own strings are checked through its translation domain too (form errors appear only
after a failed save)."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from flask_admin.babel import gettext as admin_gettext
from flask_admin.babel import ngettext as admin_ngettext

from models import User, db

# UI words, not data: none of them is a name in the test world.
FRAGMENTS = (
    "Failed to save record", "Failed to create record", "Failed to update record", "Failed to delete record",
    "Invalid date", "items", "Apply", "Save", "Cancel", "Delete", "List", "Create", "Edit", "Details", "Export",
    "Search", "Filter", "Actions", "With selected", "Add Filter", "Remove Filter", "Select all", "Home", "Log out",
    "Change password", "Previous", "Next", "Submit", "Back", "Close", "Yes", "No", "Confirm", "Loading",
    "Required", "This field is required", "Not a valid", "Record was successfully", "Are you sure",
    "equals", "not equal", "contains", "not contains", "greater than", "smaller than", "empty", "in list",
    "between", "not between", "Add", "View", "Page", "Show", "Total", "Code", "package", "Name", "Type", "Status",
    "Created", "Updated", "Id",
)
PATTERN = re.compile("|".join(rf"(?<![\w-]){re.escape(f)}(?![\w-])" for f in FRAGMENTS))
ROLES = ("admin", "support", "finance", "sales", "customer")
SKIP = ("/export/", "/file/", "/static/", "/download", "/template", "/logout", "/sandbox/")
MAX_PAGES = 600  # above the console's count of pages (260 GET rules without arguments, and their links)


class VisibleText(HTMLParser):
    """The text a user reads: text nodes outside script and style, and the attributes shown."""

    SHOWN = {"placeholder", "title", "alt", "aria-label", "data-original-title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._hidden = 0
        self._filters = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._hidden += 1
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        for name in self.SHOWN & attrs.keys():
            self.parts.append(attrs[name] or "")
        if tag == "input" and attrs.get("type") in ("submit", "button", "reset"):
            self.parts.append(attrs.get("value") or "")
        if tag == "div" and attrs.get("id") == "filter-groups-data":
            self.parts.append(" ")  # its JSON (filter names, operations, options) is drawn as menus
            self._filters = True

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1
        if tag == "div":
            self._filters = False

    def handle_data(self, data):
        if self._filters:  # what the menus draw: names, operations and option labels, not the codes sent
            groups = json.loads(data)
            for name, filters in groups.items():
                self.parts.append(name)
                for entry in filters:
                    self.parts.append(entry["operation"])
                    self.parts += [str(label) for _code, label in entry.get("options") or ()]
        elif not self._hidden:
            self.parts.append(data)


def read(html: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(html)
    return parser


def english_in(text: str) -> list[str]:
    return sorted({m.group(0) for m in PATTERN.finditer(text)})


def _key(url: str) -> str:
    """One visit per page: its path (the first details or edit link of a list stands for the others)."""
    return urlsplit(url).path


def start_urls(app) -> list[str]:
    """Every console GET rule without arguments (the pages a menu or a button opens)."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and rule.rule.startswith("/admin") and not rule.arguments:
            urls.append(rule.rule)
    return sorted(urls)


def crawl(client, app) -> dict[str, str]:
    """{page: its visible text} for the console pages this client opens, links followed once per page."""
    queue = ["/admin/", *start_urls(app)]
    seen: set[str] = set()
    pages: dict[str, str] = {}
    while queue and len(pages) < MAX_PAGES:
        url = queue.pop(0)
        key = _key(url)
        if key in seen or any(part in url for part in SKIP):
            continue
        seen.add(key)
        answer = client.get(url)
        if answer.status_code != 200 or not answer.mimetype == "text/html":
            continue
        parsed = read(answer.get_data(as_text=True))
        pages[url] = " ".join(parsed.parts)
        for link in parsed.links:
            target = urljoin(url, link.replace("&amp;", "&"))
            parts = urlsplit(target)
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/admin"):
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return pages


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
@pytest.mark.parametrize("username", ROLES)
def test_no_english_on_any_console_page(client, login, world, web_app, username, locale):
    db.session.scalar(db.select(User).where(User.username == username)).locale = locale
    db.session.commit()
    login(username)
    pages = crawl(client, web_app)
    assert len(pages) > 3, pages.keys()
    found = {url: english_in(text) for url, text in pages.items()}
    found = {url: words for url, words in found.items() if words}
    assert found == {}, f"English on {len(found)} of {len(pages)} pages as {username} in {locale}: {found}"


# Flask-Admin's strings that appear only after an action (a failed save, a filter typed badly).
ADMIN_MESSAGES = (
    "Failed to create record. %(error)s", "Failed to update record. %(error)s", "Failed to delete record. %(error)s",
    "Record was successfully created.", "Record was successfully saved.", "Record was successfully deleted.",
    "Invalid Filter Value: %(value)s", "Record does not exist.", "Please select at least one record.",
    "With selected", "items", "Save", "Cancel", "Delete", "List", "Create", "Edit", "Details", "Export", "Search",
    "Add Filter", "Apply", "Select all records", "Reset Filters", "Save and Continue Editing", "Save and Add Another",
)


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
def test_flask_admin_messages_are_translated(web_app, locale):
    with web_app.test_request_context("/admin/"):
        from flask_babel import force_locale

        with force_locale(locale):
            untranslated = [m for m in ADMIN_MESSAGES if admin_gettext(m) == m]
            plural = admin_ngettext("50 item", "50 items", 50)
    assert untranslated == []
    assert plural != "50 items"


def test_chinese_wording_the_issue_asks_for(web_app):
    """客户中心, 已通过, 批量操作, 条/页 (Flask-Admin says 选中的 and 项目)."""
    from flask_babel import force_locale
    from flask_babel import gettext as _

    with web_app.test_request_context("/admin/"), force_locale("zh_Hans_CN"):
        assert _("Customer center") == "客户中心"
        assert _("Approved") == "已通过"
        assert admin_gettext("With selected") == "批量操作"
        assert "项目" not in admin_gettext("items") and "项目" not in admin_ngettext("50 item", "50 items", 50)


def test_audit_log_reads_in_chinese(client, login, world):
    from models import AuditEvent

    db.session.add(AuditEvent(actor_id=world.users["sales"].id, actor_name="sales", action="create",
                              model="offline_recharge", ids="1", summary=""))
    db.session.add(AuditEvent(actor_id=world.users["support"].id, actor_name="support", action="suspend",
                              model="device", ids=str(world.devices["AC0001"].id), summary=""))
    db.session.scalar(db.select(User).where(User.username == "admin")).locale = "zh_Hans_CN"
    db.session.commit()
    login("admin")
    page = client.get("/admin/auditevent/").get_data(as_text=True)
    rows = re.findall(r'<td class="col-action">\s*(.*?)\s*</td>\s*<td class="col-model">\s*(.*?)\s*</td>', page, re.S)
    assert ("新建", "线下充值") in rows and ("停用", "设备") in rows, rows


def test_expiry_template_sheets_are_named_in_chinese(client, login, world):
    import io

    from openpyxl import load_workbook

    db.session.scalar(db.select(User).where(User.username == "sales")).locale = "zh_Hans_CN"
    db.session.commit()
    login("sales")
    workbook = load_workbook(io.BytesIO(client.get("/admin/expiry_import/template").data))
    assert workbook.sheetnames == ["设备", "填写说明"]
