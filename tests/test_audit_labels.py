"""Audit summaries of edits name the fields as the views label them, in the reader's language: a catalog,
company, user or device edit is stored as a message with the field keys and their label msgids (and
choice labels), so the Chinese audit log reads 金额：100.00 → 99.00, not "amount: 100.00 → 99.00"."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from actions.devices import set_expiry
from actions.texts import render
from conftest import post
from models import AuditEvent, User, db
from test_catalog import package_form
from test_no_english import read
from test_system import company_form

WORDS = {
    "zh_Hans_CN": {"amount": "金额：100.00 → 99.00", "name": "名称：Acme North → Acme North Ltd",
                   "parent": "上级公司：Acme North Ltd → Acme South",
                   "email": "邮箱：sales@example.test → new@example.test", "expiry": "到期时间："},
    "vi": {"amount": "Số tiền: 100.00 → 99.00", "name": "Tên: Acme North → Acme North Ltd",
           "parent": "Công ty mẹ: Acme North Ltd → Acme South",
           "email": "Email: sales@example.test → new@example.test", "expiry": "Ngày hết hạn: "},
}
RAW_KEYS = ("amount_minor", "amount:", "name:", "parent_id", "email:", "expires_on", "locale:", "contact_name")


def edits(world, client, login):
    """A package's price, a company's name and parent, a user's email and language, a device's expiry."""
    login("support")
    gps_y = world.packages["GPS-Y"]
    assert post(client, f"/admin/package/edit/?id={gps_y.id}", package_form(
        world, code="GPS-Y", name="GPS yearly", amount="99.00", pricing="per_year", term_months="")).status_code == 302
    login.logout()
    login("admin")
    assert post(client, f"/admin/company/edit/?id={world.north.id}",
                company_form("Acme North Ltd", world.acme)).status_code == 302
    assert post(client, f"/admin/company/edit/?id={world.fleet.id}",
                company_form("Acme North Fleet", world.south)).status_code == 302
    assert post(client, f"/admin/user/edit/?id={world.users['sales'].id}",
                {"username": "sales", "email": "new@example.test", "role": "sales", "company": "__None",
                 "locale": "vi"}).status_code == 302
    set_expiry(db.session, world.users["support"], world.devices["AC0001"], date(2031, 3, 31))
    db.session.commit()


def audit_page(client, login, locale: str) -> str:
    db.session.execute(db.update(User).where(User.username == "admin").values(locale=locale))
    db.session.commit()
    login.logout()
    login("admin")
    answer = client.get("/admin/auditevent/?page_size=100")
    assert answer.status_code == 200
    return " ".join(read(answer.get_data(as_text=True)).parts)


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
def test_edit_summaries_name_the_fields_in_the_readers_language(client, login, world, locale):
    edits(world, client, login)
    page = audit_page(client, login, locale)
    words = WORDS[locale]
    for what in ("amount", "name", "parent", "email", "expiry"):
        assert words[what] in page, (what, page[:3000])
    assert [key for key in RAW_KEYS if key in page] == []


def test_choices_and_passwords_read_as_labels(app, client, login, world):
    edits(world, client, login)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.model == "user", AuditEvent.action == "edit"))
    assert event.summary_data["key"] == "audit.changes"
    changes = {c["field"]: c for c in event.summary_data["params"]["changes"]["changes"]}
    assert changes["email"]["label"] == "Email" and changes["locale"]["new"]["code"] == "vi"
    assert "Email: sales@example.test → new@example.test" in event.summary
    with app.test_request_context():
        from flask_babel import force_locale

        with force_locale("zh_Hans_CN"):
            text = render(event.summary_data, event.summary)
    assert "邮箱：sales@example.test → new@example.test" in text and "Email" not in text
    with app.test_request_context():
        with force_locale("zh_Hans_CN"):
            assert render({"key": "audit.changes", "params": {"changes": {"changes": [
                {"field": "password_hash", "label": "Password", "changed": True},
                {"field": "active", "label": "Active", "old": True, "new": False}]}}}) \
                == "密码：已修改；已启用：是 → 否"


def test_the_stored_english_names_the_fields_by_their_labels(client, login, world):
    edits(world, client, login)
    summaries = {e.model: e.summary for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action.in_(
        ("edit", "set_expiry"))))}
    assert "Amount: 100.00 → 99.00" in summaries["package"]
    assert summaries["device"].startswith("Expires on: ") and summaries["device"].endswith("→ 2031-03-31")



@pytest.mark.parametrize("locale, created, approved", [
    ("zh_Hans_CN", "申请单 #{id}（待审核）：Acme Logistics Ltd 付款 ¥1,000.00，充值到 Acme Logistics",
     "申请单 #{id} 已通过：Acme Logistics Ltd 付款 ¥1,000.00，充值到 Acme Logistics"),
    ("vi", "Đơn #{id} (Chờ duyệt): 1.000,00\xa0CN¥ từ Acme Logistics Ltd cho Acme Logistics",
     "Đơn #{id} Đã duyệt: 1.000,00\xa0CN¥ từ Acme Logistics Ltd cho Acme Logistics"),
])
def test_offline_recharge_audit_reads_in_the_readers_language(app, world, locale, created, approved):
    from flask_babel import force_locale

    from actions.offline_recharge import create_application, review

    application = create_application(db.session, world.users["sales"], world.acme.id, "Acme Logistics Ltd", "CNY",
                                     "1000.00", submit=True)
    review(db.session, world.users["finance"], application, "approve")
    db.session.commit()
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.model == "offline_recharge")
                                .order_by(AuditEvent.id)).all()
    with app.test_request_context("/"), force_locale(locale):
        shown = [render(e.summary_data, e.summary) for e in events]
    assert shown == [created.format(id=application.id), approved.format(id=application.id)]
    assert "from" not in " ".join(shown) and "approved" not in " ".join(shown)


def test_billing_config_audit_reads_in_chinese(app, world):
    from flask_babel import force_locale

    from actions.billing import configure_companies, delete_config
    from models import BillingConfig

    settings = {"billing_cycle": "quarterly", "auto_renew": True, "push_enabled": True, "push_language": "en",
                "push_emails": "ops@example.com"}
    configure_companies(db.session, world.users["sales"], [world.north], settings)
    configure_companies(db.session, world.users["sales"], [world.north], {**settings, "billing_cycle": "yearly"})
    delete_config(db.session, world.users["sales"],
                  db.session.scalar(select(BillingConfig).where(BillingConfig.company_id == world.north.id)))
    db.session.commit()
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.model == "billing_config")
                                .order_by(AuditEvent.id)).all()
    with app.test_request_context("/"), force_locale("zh_Hans_CN"):
        shown = [render(e.summary_data, e.summary) for e in events]
    assert shown[0] == ("Acme North：新建计费配置（出账周期：每季度；自动续费：是；是否推送：是；推送邮件语言：英文；"
                        "推送邮箱：ops@example.com）")
    assert shown[1] == "Acme North：出账周期：每季度 → 每年"
    assert shown[2].startswith("Acme North：已删除计费配置（原为 出账周期：每年；")
    assert not any(word in " ".join(shown) for word in ("billing_cycle", "created", "quarterly", "True"))


def test_every_recorded_action_has_a_label():
    """The audit log showed "transfer" (a stock document), "decline" (an offline recharge declined) and a closed
    withdrawal's "rejected"/"failed"/"cancelled" as stored codes on Chinese and Vietnamese pages. Every action
    written by a literal `record(..., "action", ...)`, and every value of the variables recorded as actions, reads
    as a word."""
    import re
    from pathlib import Path

    from actions.devices import TARGET_STATUS
    from actions.offline_recharge import DECISIONS
    from admin_views.system import AUDIT_ACTIONS
    from models import STOCK_DOCUMENT_KINDS

    root = Path(__file__).resolve().parents[1]
    literal = set()
    for path in [*root.glob("actions/*.py"), *root.glob("admin_views/*.py"), *root.glob("importers/*.py"),
                 root / "cli.py"]:
        literal |= set(re.findall(r'\brecord\(\s*[\w.]+,\s*[\w.]+,\s*"(\w+)"', path.read_text()))
    assert len(literal) > 40, literal  # the scan found the calls
    variable = {*STOCK_DOCUMENT_KINDS, *DECISIONS, *TARGET_STATUS, "paused", "archived",  # promotion status
                "rejected", "failed", "cancelled"}  # actions.distribution.close_withdrawal's outcomes
    assert sorted((literal | variable) - set(AUDIT_ACTIONS)) == []
