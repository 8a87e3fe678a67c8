"""Auto-renewal writes its order note, order lines and audit summaries as stored messages (actions.texts):
an auto-renewed order's details, the customer's order page and the audit log read in the reader's
language (zh_Hans_CN, vi), with no English left; the English stays stored beside them for searches."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from actions.billing_jobs import auto_renew
from models import AuditEvent, Order, User, db
from test_billing_jobs import configure, fund
from test_no_english_stored_texts import english_in
from test_no_english import read

TODAY = date(2026, 11, 5)


@pytest.fixture
def renewed(app, world):
    """AC0001 and AC0002 of Acme renewed for November 2026 from its balance; the run recorded."""
    for device in world.devices.values():
        device.expires_on = date(2027, 6, 1)
    world.devices["AC0001"].expires_on = date(2026, 11, 20)
    world.devices["AC0002"].expires_on = date(2026, 11, 25)
    configure(world.acme, auto_renew=True)
    fund(world.acme, "100.00")
    db.session.commit()
    with app.test_request_context():
        summary = auto_renew(db.session, TODAY)
    db.session.commit()
    assert summary.renewed == 2
    return db.session.scalar(select(Order).where(Order.company_id == world.acme.id, Order.kind == "renewal"))


def visible(client, url: str) -> str:
    answer = client.get(url)
    assert answer.status_code == 200, url
    return " ".join(read(answer.get_data(as_text=True)).parts)


def as_user(client, login, username: str, locale: str) -> None:
    db.session.execute(db.update(User).where(User.username == username).values(locale=locale))
    db.session.commit()
    login.logout()
    login(username)


def test_auto_renewal_stores_messages_with_their_english(renewed):
    order = renewed
    assert order.note_data == {"key": "order.note.auto_renew", "params": {"period": "2026-11"}}
    assert order.note == "Auto-renewal, period 2026-11"
    lines = sorted(order.lines, key=lambda line: line.description)
    assert lines[0].description_data == {"key": "order.line.renewal",
                                         "params": {"device": "AC0001", "package": lines[0].package.code,
                                                    "months": 1}}
    assert lines[0].description == f"AC0001 {lines[0].package.code} × 1 months"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auto_renew", AuditEvent.model == "order"))
    assert event.summary_data["key"] == "audit.order.auto_renew"
    assert event.summary.startswith(f"Order {order.number}: renew 2 devices × 1 months = ")
    run = db.session.scalar(select(AuditEvent).where(AuditEvent.model == "auto_renew_attempt"))
    assert run.summary_data["key"] == "audit.auto_renew.run"
    assert run.summary.startswith("2026-11-05: 2 devices renewed in 1 orders")


@pytest.mark.parametrize("locale, words", [
    ("zh_Hans_CN", ("自动续费，账期 2026-11", "个月", "从余额")),
    ("vi", ("Tự động gia hạn, kỳ 2026-11", "tháng", "từ số dư")),
])
def test_an_auto_renewed_order_and_its_audit_read_in_the_readers_language(client, login, world, renewed, locale,
                                                                          words):
    order = renewed
    found = {}
    as_user(client, login, "finance", locale)
    details = visible(client, f"/admin/order_management/details/?id={order.id}")
    found["details"] = english_in(details)
    assert words[0] in details and words[1] in details
    as_user(client, login, "admin", locale)
    audit = visible(client, "/admin/auditevent/?page_size=100")
    found["audit"] = english_in(audit)
    assert words[2] in audit and f"{order.number}" in audit
    as_user(client, login, "customer", locale)
    page = visible(client, f"/admin/renewal_center/order/{order.number}/")
    found["customer order page"] = english_in(page)
    assert words[1] in page
    assert {where: words for where, words in found.items() if words} == {}
