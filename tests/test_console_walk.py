"""What a person clicking through the console in Chinese or Vietnamese ran into (pages, forms, exports)."""
from __future__ import annotations

import html

import pytest

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
    from datetime import date
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
