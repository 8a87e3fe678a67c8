"""Cards through the console: who sees the menus, distributor scope, and each flow posted as a user would."""
from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from flask_babel import force_locale
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from actions import DomainError
from actions.cards import CardInput, add_card, post_stock_document
from actions.distribution import commission_balance, hold_received, record_sale, release_held, save_rule
from actions.wallets import credit, ledger_differences, wallet_for
from conftest import confirm_post, make_company, make_user, post
from models import (
    AuditEvent, CommissionSettlement, DistributorProfile, LedgerEntry, Order, SimCard, Withdrawal, db,
)
from tests.test_cards import ACCOUNT

pytest_plugins = ("card_fixtures",)

CARD_URLS = ("/admin/simcard/", "/admin/commissionentry/", "/admin/commissionsettlement/", "/admin/withdrawal/",
             "/admin/card_finance/", "/admin/card_report/", "/admin/commissionrule/")


def _card(n: int, valid=None) -> CardInput:
    return CardInput(f"8986{n:016d}", f"1370000{n:04d}", f"Q{n:05d}", "SIM-39",
                     valid or date.today() + timedelta(days=365))


def test_card_menus_follow_distributor_status(cards, client, login):
    outsider = make_company("Plain Customer")
    make_user("plain", "customer_admin", outsider)
    db.session.commit()
    login("plain")
    home = client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/card_verification/"' in home
    for url in CARD_URLS:
        assert client.get(url).status_code == 403, url
        assert f'href="{url}"' not in home
    login.logout()
    login("b_admin")
    home = client.get("/admin/").get_data(as_text=True)
    for url in CARD_URLS:
        assert client.get(url).status_code == 200, url
        assert f'href="{url}"' in home, url
    for url in ("/admin/card_stock/", "/admin/distributorprofile/"):
        assert client.get(url).status_code == 403, url
    for url in ("/admin/simcard/add/", "/admin/simcard/import/"):  # the view is theirs, these pages are not
        answer = client.get(url, follow_redirects=True)
        assert "Your role may not do this" in answer.get_data(as_text=True), url


def test_distributors_see_only_cards_held_in_their_tree(cards, vault, client, login):
    s, support = db.session, cards["users"]["support"]
    rows = [add_card(s, support, vault, _card(n), date.today()) for n in range(3)]
    post_stock_document(s, support, "transfer", [rows[0].iccid], to_holder=cards["a"].id)
    post_stock_document(s, support, "transfer", [rows[1].iccid], to_holder=cards["b"].id)
    s.commit()
    login("a_admin")
    page = client.get("/admin/simcard/").get_data(as_text=True)
    assert rows[0].iccid in page and rows[1].iccid in page and rows[2].iccid not in page
    assert client.get(f"/admin/simcard/details/?id={rows[2].id}").status_code in (302, 404)
    login.logout()
    login("b_admin")
    page = client.get("/admin/simcard/").get_data(as_text=True)
    assert rows[1].iccid in page and rows[0].iccid not in page
    assert "Q00001" not in page and "****01" in page


def test_support_adds_imports_and_finds_cards_by_pin(cards, client, login):
    login("support")
    answer = post(client, "/admin/simcard/add/", {"iccid": "89860000000000000099", "phone": "13700000099",
                                                  "pin": "808182", "plan": "SIM-39",
                                                  "valid_until": (date.today() + timedelta(days=30)).isoformat(),
                                                  "holder": "0"}, follow_redirects=True)
    assert "89860000000000000099" in answer.get_data(as_text=True)
    bad = post(client, "/admin/simcard/add/", {"iccid": "89860000000000000098", "phone": "13700000098",
                                               "pin": "808182", "plan": "SIM-39", "valid_until": "2001-01-01",
                                               "holder": "0"}, follow_redirects=True).get_data(as_text=True)
    assert "this PIN is already used" in bad and "is in the past" in bad
    far = post(client, "/admin/simcard/add/", {"iccid": "89860000000000000097", "phone": "13700000097",
                                               "pin": "909192", "plan": "SIM-39", "valid_until": "9999-12-31",
                                               "holder": "0"}, follow_redirects=True).get_data(as_text=True)
    assert "valid until 9999-12-31 is after 2199-12-31" in far and "89860000000000000097" in far
    found = post(client, "/admin/simcard/find_pin/", {"pin": "808182"}, follow_redirects=True).get_data(as_text=True)
    assert "89860000000000000099" in found and "808182" not in found
    missing = post(client, "/admin/simcard/find_pin/", {"pin": "000000"}, follow_redirects=True)
    assert "No card of yours has this PIN" in missing.get_data(as_text=True)

    book = Workbook()
    book.active.append(["卡号", "手机号", "密码", "套餐", "有效期"])
    for n in range(5):
        book.active.append([f"8986{n:016d}", f"1360000{n:04d}", f"R{n:05d}", "SIM-39",
                            date.today() + timedelta(days=60)])
    data = io.BytesIO()
    book.save(data)
    answer = post(client, "/admin/simcard/import/", {"holder": "0", "file": (io.BytesIO(data.getvalue()), "c.xlsx")},
                  content_type="multipart/form-data")
    assert answer.status_code == 302
    batch_url = answer.headers["Location"]
    batch_id = batch_url.rsplit("=", 1)[1]
    from conftest import csrf_token

    token = csrf_token(client)
    progress = client.post(f"/admin/simcard/import/commit/?id={batch_id}", headers={"X-CSRFToken": token}).get_json()
    assert progress == {"done": 5, "total": 5, "status": "committed"}
    assert db.session.scalar(select(func.count()).select_from(SimCard)) == 6
    export = client.get("/admin/simcard/export/xlsx/")
    cells = {c for r in load_workbook(io.BytesIO(export.data)).active.iter_rows(values_only=True) for c in r}
    assert "R00001" not in cells and "****01" in cells
    refused = client.post("/admin/simcard/export_pins/", data={"csrf_token": token})
    assert refused.status_code == 302 and refused.mimetype != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_verification_is_filed_by_the_customer_and_reviewed_by_an_admin(cards, client, login):
    newcomer = make_company("Gamma Cards", cards["b"])
    make_user("gamma", "customer_admin", newcomer)
    db.session.commit()
    login("gamma")
    post(client, "/admin/card_verification/", {"legal_name": "Gamma Wang", "id_type": "resident_id",
                                               "id_number": "440301199001011234",
                                               "licence": (io.BytesIO(b"%PDF-1.4 licence"), "licence.pdf")},
         content_type="multipart/form-data")
    profile = db.session.scalar(select(DistributorProfile).where(DistributorProfile.company_id == newcomer.id))
    assert profile.status == "pending" and profile.id_number_masked == "****34"
    page = client.get("/admin/card_verification/").get_data(as_text=True)
    assert "440301199001011234" not in page and "****34" in page
    login.logout()
    login("admin")
    post(client, "/admin/distributorprofile/reject/", {"id": str(profile.id), "reason": ""}, follow_redirects=True)
    db.session.expire_all()
    assert db.session.get(DistributorProfile, profile.id).status == "pending"
    post(client, "/admin/distributorprofile/action/", [("action", "verify"), ("rowid", str(profile.id))])
    db.session.expire_all()
    assert db.session.get(DistributorProfile, profile.id).status == "verified"


def test_worked_example_settlement_and_withdrawal_through_the_pages(cards, client, login):
    s, u, b = db.session, cards["users"], cards["b"]
    save_rule(s, u["finance"], b, cards["package"].id, mode="split", kind="percent", level1_percent="8",
              level2_percent="10")
    order = Order(number="CS-PAGES", kind="card_sale", status="paid", company_id=b.id, currency="CNY",
                  total=D("370.50"))
    s.add(order)
    s.flush()
    record_sale(s, order_id=order.id, seller_id=b.id, package_id=cards["package"].id, cards=10, base=D("370.50"),
                currency="CNY", month=date.today().strftime("%Y-%m"))
    hold_received(s, order.id, date.today())
    release_held(s, date.today() + timedelta(days=30))
    s.commit()
    month = date.today().strftime("%Y-%m")

    login("finance")
    entries = client.get("/admin/commissionentry/").get_data(as_text=True)
    assert "29.64" in entries and "7.41" in entries
    post(client, "/admin/commissionsettlement/prepare/", {"company_id": str(b.id), "month": month})
    statement = s.scalar(select(CommissionSettlement).where(CommissionSettlement.company_id == b.id))
    post(client, "/admin/commissionsettlement/action/", [("action", "submit"), ("rowid", str(statement.id))])
    answer = confirm_post(client, "/admin/commissionsettlement/action/",
                          [("action", "approve"), ("rowid", str(statement.id))], follow_redirects=True)
    assert "cannot approve" in answer.get_data(as_text=True)
    login.logout()
    login("finance2")
    confirm_post(client, "/admin/commissionsettlement/action/", [("action", "approve"), ("rowid", str(statement.id))])
    s.expire_all()
    assert commission_balance(s, b.id) == D("29.64")

    login.logout()
    login("b_admin")
    assert "29.64" in client.get("/admin/withdrawal/withdraw/").get_data(as_text=True)
    answer = post(client, "/admin/withdrawal/withdraw/", {"amount": "30.00", "bank_name": "ICBC",
                                                     "account_name": "Beta Zhang", "account_number": ACCOUNT},
                  follow_redirects=True)
    assert "more than the available" in answer.get_data(as_text=True)
    post(client, "/admin/withdrawal/withdraw/", {"amount": "29.64", "bank_name": "ICBC", "account_name": "Beta Zhang",
                                            "account_number": ACCOUNT})
    withdrawal = s.scalar(select(Withdrawal))
    assert withdrawal is not None and commission_balance(s, b.id) == D("0.00")
    statement_page = client.get("/admin/card_finance/").get_data(as_text=True)
    assert "29.64" in statement_page
    assert ACCOUNT not in client.get("/admin/withdrawal/").get_data(as_text=True)
    login.logout()
    login("finance")
    confirm_post(client, "/admin/withdrawal/action/", [("action", "approve"), ("rowid", str(withdrawal.id))])
    confirm_post(client, "/admin/withdrawal/decide/", {"id": str(withdrawal.id), "outcome": "paid",
                                                       "text": "ICBC-778899"})
    s.expire_all()
    assert s.get(Withdrawal, withdrawal.id).status == "paid"
    assert s.get(Withdrawal, withdrawal.id).bank_reference == "ICBC-778899"
    assert ledger_differences(s) == []

    login.logout()
    login("a_admin")  # the parent sees its own level-2 entry, and the report counts both levels
    report = client.get("/admin/card_report/?group=level").get_data(as_text=True)
    assert "vendor/echarts/echarts.min.js" in report and "7.41" in report
    sheet = load_workbook(io.BytesIO(client.get("/admin/card_report/export/?group=distributor").data)).active
    assert [c.value for c in sheet[1]][0] == "Distributor"
    assert client.get("/static/vendor/echarts/echarts.min.js").status_code == 200


def test_pages_write_no_secret_to_the_audit_log(cards, client, login):
    s = db.session
    credit(s, wallet_for(s, cards["b"].id, "CNY", kind="commission"), D("5.00"), "commission", "seed", None)
    s.commit()
    login("b_admin")
    post(client, "/admin/withdrawal/withdraw/", {"amount": "5", "bank_name": "ICBC", "account_name": "Beta Zhang",
                                            "account_number": ACCOUNT})
    withdrawal = s.scalar(select(Withdrawal))
    login.logout()
    login("finance")
    page = post(client, "/admin/withdrawal/decide/", {"id": str(withdrawal.id), "outcome": "reveal",
                                                      "text": "paying it now"}).get_data(as_text=True)
    assert ACCOUNT in page
    assert all(ACCOUNT not in (e.summary or "") for e in s.scalars(select(AuditEvent)))
    assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 2


def test_staff_pages_render_and_post(cards, vault, client, login):
    s, u = db.session, cards["users"]
    rows = [add_card(s, u["support"], vault, _card(n), date.today()) for n in range(2)]
    s.commit()
    login("support")
    for url in ("/admin/card_stock/", "/admin/simcard/add/", "/admin/simcard/import/",
                f"/admin/simcard/timeline/?id={rows[0].id}"):
        assert client.get(url).status_code == 200, url
    assert client.get("/admin/simcard/import/template/").mimetype.endswith("spreadsheetml.sheet")
    answer = post(client, "/admin/card_stock/", {"kind": "transfer", "from_holder": "0", "to_holder": str(cards["a"].id),
                                                 "numbers": f"{rows[0].iccid}, {rows[1].iccid}", "note": "consign"},
                  follow_redirects=True)
    assert "2 cards" in answer.get_data(as_text=True)
    assert "Distributor A" in client.get(f"/admin/simcard/timeline/?id={rows[0].id}").get_data(as_text=True)
    refused = client.get(f"/admin/simcard/reveal/?id={rows[0].id}", follow_redirects=True).get_data(as_text=True)
    assert "Your role may not do this" in refused and "Q00000" not in refused
    login.logout()
    login("finance")
    assert client.get("/admin/commissionrule/set/").status_code == 200
    post(client, "/admin/commissionrule/set/", {"company_id": str(cards["b"].id), "package_id": "", "mode": "split",
                                                "kind": "graduated", "level1": "6", "level2": "10", "hold_days": "7",
                                                "tiers": "0-10000:6\n10000-50000:8\n50000-:10"})
    assert "10000-50000:8" in client.get("/admin/commissionrule/").get_data(as_text=True)
    page = post(client, "/admin/simcard/reveal/", {"id": str(rows[0].id), "reason": "customer lost it"})
    assert "Q00000" in page.get_data(as_text=True)
    login.logout()
    login("admin")
    profile = s.scalar(select(DistributorProfile).where(DistributorProfile.company_id == cards["b"].id))
    shown = post(client, "/admin/distributorprofile/reveal/", {"id": str(profile.id), "reason": "bank asked"})
    assert "110101199003074512" in shown.get_data(as_text=True)
    assert all("110101199003074512" not in e.summary for e in s.scalars(select(AuditEvent)))
    export = post(client, "/admin/simcard/export_pins/", {})
    cells = {c for r in load_workbook(io.BytesIO(export.data)).active.iter_rows(values_only=True) for c in r}
    assert "Q00001" in cells


def test_distributors_keep_their_own_customers(cards, client, login):
    from models import CardCustomer

    other = make_company("Other Distributor")
    s = db.session
    s.add(DistributorProfile(company_id=other.id, legal_name="Other", id_type="passport", id_number_enc="x",
                             id_number_index="x", id_number_hint="00", status="verified"))
    s.add(CardCustomer(company_id=other.id, name="Foreign Customer", category="retail"))
    s.commit()
    login("b_admin")
    answer = post(client, "/admin/cardcustomer/new/", {"company": str(cards["b"].id), "name": "Wang Wu",
                                                      "category": "school", "contact_name": "Wang",
                                                      "phone": "13800001111", "address": "", "note": ""})
    assert answer.status_code == 302
    page = client.get("/admin/cardcustomer/").get_data(as_text=True)
    assert "Wang Wu" in page and "Foreign Customer" not in page
    foreign = s.scalar(select(CardCustomer).where(CardCustomer.name == "Foreign Customer"))
    assert client.get(f"/admin/cardcustomer/edit/?id={foreign.id}").status_code in (302, 404)
    post(client, "/admin/cardcustomer/new/", {"company": str(other.id), "name": "Sneaky", "category": ""})
    assert s.scalar(select(CardCustomer).where(CardCustomer.name == "Sneaky")) is None
    assert "school" in client.get("/admin/cardcustomer/?flt0_0=school").get_data(as_text=True)


def test_a_withdrawal_form_sent_twice_holds_once(cards, client, login):
    s = db.session
    credit(s, wallet_for(s, cards["b"].id, "CNY", kind="commission"), D("50.00"), "commission", "seed", None)
    s.commit()
    login("b_admin")
    form = {"amount": "20", "bank_name": "ICBC", "account_name": "Beta Zhang", "account_number": ACCOUNT,
            "idempotency_key": "k" * 24}
    post(client, "/admin/withdrawal/withdraw/", form)
    post(client, "/admin/withdrawal/withdraw/", form)
    assert s.scalar(select(func.count()).select_from(Withdrawal)) == 1
    assert commission_balance(s, cards["b"].id) == D("30.00")


def test_import_refusals_are_shown_and_write_nothing(cards, client, login):
    from models import CardImport

    login("support")
    answer = post(client, "/admin/simcard/import/", {"holder": "0", "file": (io.BytesIO(b"not a workbook"), "c.xlsx")},
                  content_type="multipart/form-data", follow_redirects=True)
    assert "not an .xlsx workbook" in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(CardImport)) == 0
    book = Workbook()
    book.active.append(["ICCID", "Phone number", "PIN", "Plan", "Valid until"])
    book.active.append(["89860000000000000001", "13600000001", "ZZ0001", "NOPE", date.today() + timedelta(days=9)])
    data = io.BytesIO()
    book.save(data)
    answer = post(client, "/admin/simcard/import/", {"holder": "0", "file": (io.BytesIO(data.getvalue()), "c.xlsx")},
                  content_type="multipart/form-data", follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "row 2: plan NOPE is not an active card package" in page
    batch = db.session.scalar(select(CardImport))
    from conftest import csrf_token

    refused = client.post(f"/admin/simcard/import/commit/?id={batch.id}",
                          headers={"X-CSRFToken": csrf_token(client)})
    assert refused.status_code == 409 and "bad rows" in refused.get_json()["error"]
    assert db.session.scalar(select(func.count()).select_from(SimCard)) == 0


def test_commission_rates_read_as_the_reader_writes_a_percent(cards, client, login):
    """The rule list wrote rates "12.5 %" on a Vietnamese page, where the reader writes 12,5%."""
    users = cards["users"]
    save_rule(db.session, users["finance"], cards["b"], cards["package"].id, mode="override", kind="percent",
              level1_percent="12.5", level2_percent="2")
    users["finance"].locale = "vi"
    db.session.commit()
    login("finance")
    page = client.get("/admin/commissionrule/").get_data(as_text=True)
    assert "12,5%" in page and "2%" in page and "12.5 %" not in page


def test_a_refused_stock_document_names_the_card_status_in_the_readers_words(cards, vault, app):
    """Adjusting cards that are in stock (an adjustment puts returned cards back) answered "not returned at this
    holder" with the stored code on a Chinese page."""
    support = cards["users"]["support"]
    card = add_card(db.session, support, vault, _card(1), date.today())
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        with pytest.raises(DomainError) as refused:
            post_stock_document(db.session, support, "adjustment", [card.iccid])
        text = str(refused.value)
    assert "returned" not in text and card.iccid in text, text


def test_card_timeline_and_statement_do_not_claim_utc_for_local_times(cards, vault, client, login):
    """The card timeline and the distributor's statement headed their time column "时间(UTC)" over times shown in
    the reader's own zone (the `datetime` filter)."""
    support = cards["users"]["support"]
    card = add_card(db.session, support, vault, _card(1), date.today())
    support.locale = "zh_Hans_CN"
    cards["users"]["a_admin"].locale = "zh_Hans_CN"
    db.session.commit()
    login("support")
    timeline = client.get(f"/admin/simcard/timeline/?id={card.id}").get_data(as_text=True)
    head = timeline.split('id="rd-timeline"', 1)[1].split("</thead>", 1)[0]
    assert "UTC" not in head and "时间" in head, head
    login.logout()
    login("a_admin")
    statement = client.get("/admin/card_finance/").get_data(as_text=True)
    head = statement.split('id="rd-statement"', 1)[1].split("</thead>", 1)[0]
    assert "UTC" not in head and "时间" in head, head


def test_an_empty_report_draws_no_empty_chart(cards, client, login):
    """With nothing sold the report drew an empty axis and legend above "No sales yet."; its export link read a bare
    "xlsx"."""
    cards["users"]["finance"].locale = "zh_Hans_CN"
    db.session.commit()
    login("finance")
    page = client.get("/admin/card_report/?group=month").get_data(as_text=True)
    assert 'id="rd-chart"' not in page and "echarts" not in page and "暂无销售" in page
    assert "导出 XLSX" in page.split('id="rd-report-export"', 1)[1].split("</a>", 1)[0]


def test_the_statement_month_is_a_month_picker(cards, client, login):
    """Preparing a statement asked for a month in a text box whose hint read "yyyy-mm" on Chinese and Vietnamese
    pages; it is a month field (the browser's own picker, in the reader's language) named 月份."""
    cards["users"]["finance"].locale = "zh_Hans_CN"
    db.session.commit()
    login("finance")
    page = client.get("/admin/commissionsettlement/").get_data(as_text=True)
    form = page.split('id="rd-prepare"', 1)[1].split("</form>", 1)[0]
    assert 'type="month"' in form and 'aria-label="月份"' in form and "yyyy" not in form, form
