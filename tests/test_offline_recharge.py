"""线下充值 / 线下审核: sales file applications (draft or submitted), finance approve (credit once),
reject (back to sales) or decline (final). Every transition and refusal is tested as a function;
HTTP tests prove the wiring, the roles, the escaping, and that 20 simultaneous approvals on a real
server credit the wallet once."""
from __future__ import annotations

import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from actions import DomainError, NotAllowed
from actions.offline_recharge import (
    AlreadyReviewed, RechargeTerms, create_application, edit_application, review, submit, submit_applications,
)
from actions.wallets import balance_of, ledger_differences
from conftest import PASSWORD, confirm_post, make_user, post
from models import AuditEvent, LedgerEntry, OfflineRecharge, db

LIST = "/admin/offline_recharge/"
PENDING = "/admin/recharge_review/"
REVIEWED = "/admin/recharge_reviewed/"


@pytest.fixture(autouse=True)
def request_context(request, app):
    """Action tests run in a request (lazy messages need a locale); HTTP tests use the client's."""
    if "client" in request.fixturenames or "web_app" in request.fixturenames:
        yield
        return
    with app.test_request_context():
        yield


def apply(world, amount="1000.00", currency="CNY", payer="Shenzhen Payer Ltd", reference="", submit_now=False,
          company=None):
    """An application of Acme (by default) filed by sales."""
    return create_application(db.session, world.users["sales"], (company or world.acme).id, payer, currency,
                              amount, reference, submit=submit_now)


def terms_of(application: OfflineRecharge) -> dict:
    return {"company_id": application.company_id, "payer": application.payer, "currency": application.currency,
            "amount": application.amount, "reference": application.reference}


def balance(company, currency="CNY") -> Decimal:
    db.session.expire_all()
    value = balance_of(db.session, company.id, currency)
    return Decimal("0.00") if value is None else value


def entries_of(application_id: int) -> list[LedgerEntry]:
    return list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.offline_recharge_id == application_id)))


def status_of(application_id: int) -> str:
    db.session.expire_all()
    return db.session.scalar(select(OfflineRecharge.status).where(OfflineRecharge.id == application_id))


def events(action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.model == "offline_recharge").order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


# --- create, edit, submit ---------------------------------------------------------------------------

def test_a_draft_is_saved_and_stays_editable(world):
    application = apply(world)
    db.session.commit()
    assert application.status == "draft" and application.submitted_at is None
    assert application.created_by_id == world.users["sales"].id
    edit_application(db.session, world.users["sales"], application, world.south.id, "Other Payer", "USD",
                     "250.50", "TT-001")
    db.session.commit()
    db.session.expire_all()
    assert (application.company_id, application.payer, application.currency, application.amount,
            application.reference, application.status) == (world.south.id, "Other Payer", "USD",
                                                          Decimal("250.50"), "TT-001", "draft")
    assert [e.action for e in events()] == ["create", "edit"]
    assert "Amount: 1,000.00 → 250.50" in events("edit")[0].summary


def test_create_can_submit_at_once(world):
    application = apply(world, submit_now=True)
    assert application.status == "submitted" and application.submitted_at is not None


def test_submit_moves_a_draft_to_pending_review_once(world):
    application = apply(world)
    submit(db.session, world.users["sales"], application)
    assert application.status == "submitted" and application.submitted_at is not None
    assert [e.action for e in events()] == ["create", "submit"]
    with pytest.raises(DomainError, match=rf"#{application.id} cannot be submitted: it is Pending review"):
        submit(db.session, world.users["sales"], application)


def test_a_submitted_application_can_still_be_edited_by_sales_and_finance(world):
    application = apply(world, submit_now=True)
    edit_application(db.session, world.users["sales"], application, **{**terms_of(application), "amount": "900"})
    edit_application(db.session, world.users["finance"], application, **{**terms_of(application), "amount": "800"})
    db.session.expire_all()
    assert application.amount == Decimal("800.00") and application.status == "submitted"


def test_finance_edits_only_applications_pending_review(world):
    application = apply(world)
    with pytest.raises(DomainError, match=rf"#{application.id} is Draft"):
        edit_application(db.session, world.users["finance"], application, **terms_of(application))


@pytest.mark.parametrize("amount", ["-5", "0", "0.00", "1.005", "100000000000", "abc", "", "NaN", "Infinity"])
def test_bad_amounts_are_refused_naming_the_field(world, amount):
    with pytest.raises(DomainError, match="Amount"):
        apply(world, amount=amount)
    assert db.session.scalar(select(func.count()).select_from(OfflineRecharge)) == 0


def test_amounts_keep_two_decimals(world):
    assert apply(world, amount=" 12.5 ").amount == Decimal("12.50")


@pytest.mark.parametrize("field, values, message", [
    ("payer", {"payer": "  "}, "Payer: required"),
    ("payer", {"payer": "x" * 201}, "Payer: at most 200"),
    ("currency", {"currency": "EUR"}, "Currency: choose one of CNY, USD"),
    ("currency", {"currency": "COIN"}, "Currency"),
    ("reference", {"reference": "r" * 101}, "Reference number: at most 100"),
])
def test_fields_are_checked(world, field, values, message):
    terms = {"payer": "Payer", "currency": "CNY", "amount": "10", "reference": ""} | values
    with pytest.raises(DomainError, match=message):
        create_application(db.session, world.users["sales"], world.acme.id, **terms)


@pytest.mark.parametrize("company_id, message", [(None, "choose one"), (999999, "#999999 does not exist"),
                                                 ("x", "does not exist")])
def test_the_company_must_exist(world, company_id, message):
    with pytest.raises(DomainError, match=f"Customer company: .*{message}"):
        create_application(db.session, world.users["sales"], company_id, "Payer", "CNY", "10")


def test_every_bad_field_is_named_at_once(world):
    with pytest.raises(DomainError) as caught:
        create_application(db.session, world.users["sales"], None, "", "EUR", "-1")
    for field in ("Customer company", "Payer", "Currency", "Amount"):
        assert field in str(caught.value)


def test_a_reference_number_is_unique_per_company_unless_declined(world):
    first = apply(world, reference="BANK-77")
    with pytest.raises(DomainError, match=rf"BANK-77 is already used by application #{first.id}"):
        apply(world, reference="BANK-77")
    apply(world, reference="BANK-77", company=world.globex)  # another company's transfer
    apply(world, reference="")  # the reference is optional
    apply(world, reference="")
    edit_application(db.session, world.users["sales"], first, **{**terms_of(first), "amount": "5"})  # keeps its own
    submit(db.session, world.users["sales"], first)
    review(db.session, world.users["finance"], first, "decline", "wrong transfer")
    again = apply(world, reference="BANK-77")  # a declined application's reference may be filed again
    assert again.reference == "BANK-77"


# --- review ----------------------------------------------------------------------------------------------

def test_approval_credits_the_wallet_exactly_once(world):
    application = apply(world, amount="1234.56", reference="TT-9", submit_now=True)
    db.session.commit()
    review(db.session, world.users["finance"], application, "approve", "")
    db.session.commit()
    assert status_of(application.id) == "approved"
    assert application.reviewed_by_id == world.users["finance"].id and application.reviewed_at is not None
    assert balance(world.acme) == Decimal("1234.56")
    [entry] = entries_of(application.id)
    assert (entry.kind, entry.amount, entry.balance_after) == ("offline_recharge", Decimal("1234.56"),
                                                               Decimal("1234.56"))
    assert entry.idempotency_key == f"offline_recharge:{application.id}"
    assert entry.actor_id == world.users["finance"].id
    assert ledger_differences(db.session) == []
    assert [e.action for e in events()] == ["create", "approve"]

    for decision in ("approve", "reject", "decline"):
        with pytest.raises(AlreadyReviewed, match=rf"#{application.id} was already reviewed: Approved by finance"):
            review(db.session, world.users["finance"], application, decision, "again")
        db.session.rollback()
    assert balance(world.acme) == Decimal("1234.56") and len(entries_of(application.id)) == 1


def test_approval_credits_the_wallet_of_the_applications_currency(world):
    application = apply(world, amount="99.90", currency="USD", submit_now=True)
    review(db.session, world.users["finance"], application, "approve")
    assert balance(world.acme, "USD") == Decimal("99.90") and balance(world.acme, "CNY") == Decimal("0.00")


def test_rejected_goes_back_to_sales_who_edit_and_resubmit(world):
    application = apply(world, amount="500", submit_now=True)
    review(db.session, world.users["finance"], application, "reject", "Amount does not match the receipt")
    db.session.commit()
    assert status_of(application.id) == "rejected" and balance(world.acme) == Decimal("0.00")

    edit_application(db.session, world.users["sales"], application, **{**terms_of(application), "amount": "450"})
    assert application.status == "rejected"
    assert application.review_comment == "Amount does not match the receipt"  # stays visible to sales
    with pytest.raises(DomainError, match="is Rejected"):
        edit_application(db.session, world.users["finance"], application, **terms_of(application))
    submit(db.session, world.users["sales"], application)
    assert application.status == "submitted"
    review(db.session, world.users["finance"], application, "approve", "ok now")
    db.session.commit()
    assert status_of(application.id) == "approved" and balance(world.acme) == Decimal("450.00")
    assert [e.action for e in events()] == ["create", "reject", "edit", "submit", "approve"]
    assert ledger_differences(db.session) == []


def test_declined_is_final(world):
    application = apply(world, submit_now=True)
    review(db.session, world.users["finance"], application, "decline", "No such transfer")
    db.session.commit()
    with pytest.raises(DomainError, match=rf"Application #{application.id} is Declined: it can no longer be edited"):
        edit_application(db.session, world.users["sales"], application, **terms_of(application))
    with pytest.raises(DomainError, match=rf"#{application.id} cannot be submitted: it is Declined"):
        submit(db.session, world.users["sales"], application)
    with pytest.raises(AlreadyReviewed, match="already reviewed"):
        review(db.session, world.users["finance"], application, "approve")
    assert status_of(application.id) == "declined" and balance(world.acme) == Decimal("0.00")
    assert entries_of(application.id) == []


def test_an_approved_application_can_no_longer_be_edited(world):
    application = apply(world, submit_now=True)
    review(db.session, world.users["finance"], application, "approve")
    db.session.commit()
    with pytest.raises(DomainError, match=rf"Application #{application.id} is Approved: it can no longer be edited"):
        edit_application(db.session, world.users["sales"], application, **{**terms_of(application), "amount": "1"})
    db.session.rollback()
    assert db.session.get(OfflineRecharge, application.id).amount == Decimal("1000.00")


def test_a_draft_cannot_be_reviewed(world):
    application = apply(world)
    with pytest.raises(DomainError, match=rf"#{application.id} is not waiting for review: it is Draft"):
        review(db.session, world.users["finance"], application, "approve")
    assert status_of(application.id) == "draft" and entries_of(application.id) == []


@pytest.mark.parametrize("decision", ["reject", "decline"])
@pytest.mark.parametrize("comment", ["", "   \n"])
def test_reject_and_decline_need_a_comment(world, decision, comment):
    application = apply(world, submit_now=True)
    with pytest.raises(DomainError, match="Review comment: required"):
        review(db.session, world.users["finance"], application, decision, comment)
    assert status_of(application.id) == "submitted"


def test_an_unknown_decision_is_refused(world):
    application = apply(world, submit_now=True)
    with pytest.raises(DomainError, match="Decision"):
        review(db.session, world.users["finance"], application, "maybe", "x")


def test_review_refuses_an_application_edited_since_the_reviewer_saw_it(world):
    application = apply(world, amount="100", submit_now=True)
    seen = RechargeTerms(**terms_of(application))
    edit_application(db.session, world.users["sales"], application, **{**terms_of(application), "amount": "10000"})
    with pytest.raises(DomainError, match="changed while you were reviewing it"):
        review(db.session, world.users["finance"], application, "approve", "", expected=seen)
    assert status_of(application.id) == "submitted" and balance(world.acme) == Decimal("0.00")
    review(db.session, world.users["finance"], application, "approve", "",
           expected=RechargeTerms(**terms_of(application)))
    assert balance(world.acme) == Decimal("10000.00")


@pytest.mark.parametrize("user, call", [
    ("finance", lambda w, a, u: create_application(db.session, u, w.acme.id, "P", "CNY", "1")),
    ("support", lambda w, a, u: create_application(db.session, u, w.acme.id, "P", "CNY", "1")),
    ("customer", lambda w, a, u: create_application(db.session, u, w.acme.id, "P", "CNY", "1")),
    ("sales", lambda w, a, u: review(db.session, u, a, "approve")),
    ("customer", lambda w, a, u: review(db.session, u, a, "approve")),
    ("finance", lambda w, a, u: submit(db.session, u, a)),
    ("customer", lambda w, a, u: edit_application(db.session, u, a, **terms_of(a))),
    ("finance", lambda w, a, u: submit_applications(db.session, u, [a])),
])
def test_roles_are_checked_by_the_actions(world, user, call):
    application = apply(world, submit_now=True)
    with pytest.raises(NotAllowed):
        call(world, application, world.users[user])
    assert status_of(application.id) == "submitted" and balance(world.acme) == Decimal("0.00")


def test_submit_applications_reports_each_refusal(world):
    draft, rejected, approved = apply(world), apply(world, submit_now=True), apply(world, submit_now=True)
    review(db.session, world.users["finance"], rejected, "reject", "fix it")
    review(db.session, world.users["finance"], approved, "approve")
    result = submit_applications(db.session, world.users["sales"], [draft, rejected, approved])
    assert result.changed == (f"#{draft.id}", f"#{rejected.id}")
    assert [label for label, _why in result.refused] == [f"#{approved.id}"]
    assert "Approved" in result.refused[0][1]


# --- HTTP: roles and access -------------------------------------------------------------------------------

@pytest.fixture
def pending(world):
    application = apply(world, amount="1000.00", reference="TT-1", submit_now=True)
    db.session.commit()
    return application


@pytest.mark.parametrize("user, url, status", [
    ("customer", LIST, 403), ("customer", PENDING, 403), ("customer", REVIEWED, 403),
    ("customer", PENDING + "review/?id={id}", 403), ("customer", LIST + "new/", 403),
    ("support", LIST, 403), ("support", PENDING, 403),
    ("sales", PENDING, 403), ("sales", REVIEWED, 403), ("sales", PENDING + "review/?id={id}", 403),
    ("sales", PENDING + "edit/?id={id}", 403),
    ("finance", LIST, 403), ("finance", LIST + "new/", 403), ("finance", LIST + "edit/?id={id}", 403),
    ("sales", LIST, 200), ("sales", LIST + "new/", 200), ("sales", LIST + "edit/?id={id}", 200),
    ("finance", PENDING, 200), ("finance", REVIEWED, 200), ("finance", PENDING + "review/?id={id}", 200),
    ("finance", PENDING + "edit/?id={id}", 200), ("admin", PENDING + "review/?id={id}", 200),
])
def test_pages_answer_by_role(client, login, pending, user, url, status):
    login(user)
    assert client.get(url.format(id=pending.id)).status_code == status


def test_posting_a_review_needs_the_finance_role(client, login, pending, world):
    for user in ("sales", "customer"):
        login(user)
        answer = post(client, f"{PENDING}review/?id={pending.id}", {"decision": "approve"})
        assert answer.status_code == 403
        login.logout()
    assert status_of(pending.id) == "submitted" and balance(world.acme) == Decimal("0.00")


def test_a_review_post_without_csrf_token_is_refused(client, login, pending, world):
    login("finance")
    answer = client.post(f"{PENDING}review/?id={pending.id}", data={"decision": "approve"})
    assert answer.status_code == 400
    assert status_of(pending.id) == "submitted"


def test_menus_show_the_offline_recharge_pages_by_role(client, login, world):
    login("sales")
    menu = client.get("/admin/").get_data(as_text=True)
    assert f'href="{LIST}"' in menu and f'href="{PENDING}"' not in menu
    login.logout()
    login("finance")
    menu = client.get("/admin/").get_data(as_text=True)
    assert f'href="{PENDING}"' in menu and f'href="{REVIEWED}"' in menu and f'href="{LIST}"' not in menu


# --- HTTP: create, edit, submit ------------------------------------------------------------------------------

def _form(world, **values) -> dict:
    return {"company_id": str(world.north.id), "payer": "Payer Co", "currency": "CNY", "amount": "88.80",
            "reference": "R-1"} | values


def test_create_page_offers_draft_and_submit_buttons(client, login, world):
    login("sales")
    page = client.get(LIST + "new/").get_data(as_text=True)
    assert 'name="save" value="draft"' in page and 'name="save" value="submit"' in page
    assert 'name="csrf_token"' in page
    for name in ("company_id", "payer", "currency", "amount", "reference"):
        assert f'name="{name}"' in page
    assert "Acme North Fleet" in page
    # The four fields the application needs are marked; 编号 (reference) is optional.
    marked = re.findall(r'aria-required="true"[^>]*name="(\w+)"|name="(\w+)"[^>]*aria-required="true"', page)
    assert sorted(a or b for a, b in marked) == ["amount", "company_id", "currency", "payer"]


@pytest.mark.parametrize("button, status", [("draft", "draft"), ("submit", "submitted")])
def test_create_over_http(client, login, world, button, status):
    login("sales")
    answer = post(client, LIST + "new/", _form(world, save=button), follow_redirects=True)
    assert answer.status_code == 200
    [application] = db.session.scalars(select(OfflineRecharge)).all()
    assert (application.status, application.company_id, application.amount) == (status, world.north.id,
                                                                                 Decimal("88.80"))
    page = answer.get_data(as_text=True)
    assert (f"Application #{application.id} saved as a draft." if button == "draft"
            else f"Application #{application.id} submitted for review.") in page


def test_create_over_http_shows_the_refusal_and_keeps_the_input(client, login, world):
    login("sales")
    answer = post(client, LIST + "new/", _form(world, amount="12.345", payer="Keep Me", save="submit"))
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "Amount: at most two decimal places." in page and 'value="Keep Me"' in page
    assert db.session.scalar(select(func.count()).select_from(OfflineRecharge)) == 0


def test_create_over_http_without_a_company_is_refused(client, login, world):
    login("sales")
    page = client.get(LIST + "new/").get_data(as_text=True)
    assert re.search(r'<option selected value="">', page)  # nothing preselected: sales choose
    answer = post(client, LIST + "new/", _form(world, company_id="", save="draft"))
    assert "Customer company: choose one." in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(OfflineRecharge)) == 0


def test_edit_over_http_then_submit(client, login, world):
    application = apply(world)
    db.session.commit()
    login("sales")
    page = client.get(f"{LIST}edit/?id={application.id}").get_data(as_text=True)
    assert 'value="1000.00"' in page and 'name="save" value="submit"' in page
    answer = post(client, f"{LIST}edit/?id={application.id}", _form(world, amount="70", save="save"),
                  follow_redirects=True)
    assert f"Application #{application.id} saved." in answer.get_data(as_text=True)
    assert status_of(application.id) == "draft"
    answer = post(client, f"{LIST}edit/?id={application.id}", _form(world, amount="75", save="submit"),
                  follow_redirects=True)
    assert f"Application #{application.id} saved and submitted for review." in answer.get_data(as_text=True)
    db.session.expire_all()
    assert (application.status, application.amount) == ("submitted", Decimal("75.00"))


def test_rejected_application_shows_the_comment_on_its_edit_page(client, login, world):
    application = apply(world, submit_now=True)
    review(db.session, world.users["finance"], application, "reject", "Wrong <b>amount</b>")
    db.session.commit()
    login("sales")
    page = client.get(f"{LIST}edit/?id={application.id}").get_data(as_text=True)
    assert "Wrong &lt;b&gt;amount&lt;/b&gt;" in page and "<b>amount</b>" not in page
    assert "Rejected by finance" in page


def test_reviewed_applications_have_no_edit_icon_and_their_edit_page_refuses(client, login, world):
    draft = apply(world)
    approved = apply(world, submit_now=True)
    review(db.session, world.users["finance"], approved, "approve")
    db.session.commit()
    login("sales")
    page = client.get(LIST).get_data(as_text=True)
    assert f"edit/?id={draft.id}&" in page and f"edit/?id={approved.id}&" not in page
    answer = client.get(f"{LIST}edit/?id={approved.id}", follow_redirects=True)
    assert f"Application #{approved.id} is Approved: it can no longer be edited here." in answer.get_data(as_text=True)
    answer = post(client, f"{LIST}edit/?id={approved.id}", _form(world, amount="1"), follow_redirects=True)
    db.session.expire_all()
    assert approved.amount == Decimal("1000.00")


def test_submit_action_over_http(client, login, world):
    draft, declined = apply(world), apply(world, submit_now=True)
    review(db.session, world.users["finance"], declined, "decline", "no")
    db.session.commit()
    login("sales")
    answer = post(client, LIST + "action/", [("action", "submit"), ("rowid", str(draft.id)),
                                             ("rowid", str(declined.id)), ("rowid", "999999")],
                  follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "1 applications submitted for review." in page
    assert f"#{declined.id}" in page and "#999999" in page
    assert status_of(draft.id) == "submitted" and status_of(declined.id) == "declined"


def test_finance_edits_a_pending_application_before_review(client, login, pending, world):
    login("finance")
    page = client.get(f"{PENDING}edit/?id={pending.id}").get_data(as_text=True)
    assert 'name="save" value="submit"' not in page  # finance edit; sales submit
    answer = post(client, f"{PENDING}edit/?id={pending.id}",
                  _form(world, company_id=str(world.acme.id), amount="999.99", save="save"), follow_redirects=True)
    assert f"Application #{pending.id} saved." in answer.get_data(as_text=True)
    db.session.expire_all()
    assert (pending.amount, pending.status) == (Decimal("999.99"), "submitted")


# --- HTTP: review ---------------------------------------------------------------------------------------------

def test_pending_rows_link_to_their_review_page(client, login, pending, world):
    apply(world)  # a draft: not pending
    db.session.commit()
    login("finance")
    page = client.get(PENDING).get_data(as_text=True)
    assert f'href="{PENDING}review/?id={pending.id}&amp;url=/admin/recharge_review/?page_size%3D50"' in page  # and back
    assert page.count("/review/?id=") == 1
    assert "CN¥1,000.00" in page


def test_review_page_shows_the_application_and_a_csrf_form(client, login, pending):
    login("finance")
    page = client.get(f"{PENDING}review/?id={pending.id}").get_data(as_text=True)
    assert "CN¥1,000.00" in page and "Shenzhen Payer Ltd" in page and "TT-1" in page
    assert 'name="csrf_token"' in page
    for decision in ("approve", "reject", "decline"):
        assert f'name="decision" value="{decision}"' in page


def test_approve_over_http_then_the_second_reviewer_is_told(client, login, pending, world):
    login("finance")
    url = f"{PENDING}review/?id={pending.id}"
    answer = confirm_post(client, url, {"decision": "approve", "comment": "received"}, follow_redirects=True)
    assert f"Application #{pending.id} approved: CN¥1,000.00 credited to Acme Logistics." in answer.get_data(as_text=True)
    assert balance(world.acme) == Decimal("1000.00")
    answer = post(client, url, {"decision": "approve"}, follow_redirects=True)
    assert answer.status_code == 200
    assert f"Application #{pending.id} was already reviewed: Approved by finance." in answer.get_data(as_text=True)
    assert balance(world.acme) == Decimal("1000.00") and len(entries_of(pending.id)) == 1
    page = client.get(url).get_data(as_text=True)
    assert 'name="decision"' not in page and "not waiting for review" in page
    reviewed = client.get(REVIEWED).get_data(as_text=True)
    assert "CN¥1,000.00" in reviewed and "received" in reviewed


def test_review_with_the_seen_terms_refuses_a_changed_application(client, login, pending, world):
    login("finance")
    url = f"{PENDING}review/?id={pending.id}"
    page = client.get(url).get_data(as_text=True)
    seen = dict(re.findall(r'name="(seen_\w+)" value="([^"]*)"', page))
    assert seen["seen_amount"] == "1000.00"
    edit_application(db.session, world.users["sales"], pending, **{**terms_of(pending), "amount": "5000"})
    db.session.commit()
    answer = confirm_post(client, url, {"decision": "approve", **{k: unescape(v) for k, v in seen.items()}})
    assert "changed while you were reviewing it" in answer.get_data(as_text=True)
    assert balance(world.acme) == Decimal("0.00")


@pytest.mark.parametrize("decision, status, message", [
    ("reject", "rejected", "rejected: it is back with sales"),
    ("decline", "declined", "declined."),
])
def test_reject_and_decline_over_http(client, login, pending, world, decision, status, message):
    login("finance")
    url = f"{PENDING}review/?id={pending.id}"
    answer = post(client, url, {"decision": decision, "comment": ""})
    assert answer.status_code == 200
    assert "Review comment: required" in answer.get_data(as_text=True)
    assert status_of(pending.id) == "submitted"
    send = confirm_post if decision == "decline" else post  # declining is final: confirmed first
    answer = send(client, url, {"decision": decision, "comment": "bad receipt"}, follow_redirects=True)
    assert f"Application #{pending.id} {message}" in answer.get_data(as_text=True)
    assert status_of(pending.id) == status and balance(world.acme) == Decimal("0.00")


def test_html_in_the_payer_is_escaped_everywhere(client, login, world):
    evil = '<script>alert("x")</script>'
    application = apply(world, payer=evil, reference="<i>ref</i>", submit_now=True)
    db.session.commit()
    for user, urls in (("sales", [LIST, f"{LIST}edit/?id={application.id}", f"{LIST}details/?id={application.id}"]),
                       ("finance", [PENDING, f"{PENDING}review/?id={application.id}"])):
        login(user)
        for url in urls:
            page = client.get(url).get_data(as_text=True)
            assert "<script>alert" not in page and "<i>ref</i>" not in page, url
            assert "&lt;script&gt;" in page, url
        login.logout()


# --- HTTP: lists and filters -------------------------------------------------------------------------------------

def ids_on(page: str) -> list[int]:
    return sorted(int(i) for i in re.findall(r'<td class="col-id">\s*(\d+)\s*</td>', page))


@pytest.fixture
def several(world):
    a = apply(world, amount="100", reference="A-1", payer="Alpha")
    b = apply(world, amount="200", currency="USD", reference="B-2", payer="Beta", company=world.fleet,
              submit_now=True)
    c = apply(world, amount="300", reference="C-3", payer="Gamma", company=world.globex, submit_now=True)
    d = apply(world, amount="400", reference="D-4", payer="Delta", submit_now=True)
    other_sales = make_user("sales2", "sales")
    e = create_application(db.session, other_sales, world.south.id, "Epsilon", "CNY", "500", "E-5", submit=True)
    review(db.session, world.users["finance"], c, "approve")
    review(db.session, world.users["finance"], d, "reject", "fix the reference")
    db.session.commit()
    return {"a": a.id, "b": b.id, "c": c.id, "d": d.id, "e": e.id, "sales2": other_sales.id}


def test_each_list_shows_its_statuses(client, login, several):
    login("sales")
    assert ids_on(client.get(LIST).get_data(as_text=True)) == sorted(v for k, v in several.items() if k != "sales2")
    login.logout()
    login("finance")
    assert ids_on(client.get(PENDING).get_data(as_text=True)) == [several["b"], several["e"]]
    assert ids_on(client.get(REVIEWED).get_data(as_text=True)) == [several["c"], several["d"]]


@pytest.mark.parametrize("url, wanted", [
    (f"{PENDING}?flt0_customer_company_in_the_tree_of={{acme}}", ["b", "e"]),
    (f"{PENDING}?flt0_customer_company_in_the_tree_of={{north}}", ["b"]),
    (f"{PENDING}?flt0_currency_equals=USD", ["b"]),
    (f"{PENDING}?flt0_amount_greater_than=250", ["e"]),
    (f"{PENDING}?flt0_amount_equals=200.00", ["b"]),
    (f"{PENDING}?flt0_amount_smaller_than=250", ["b"]),
    (f"{PENDING}?flt0_payer_contains=psil", ["e"]),
    (f"{PENDING}?flt0_reference_number_equals=B-2", ["b"]),
    (f"{PENDING}?flt0_reference_number_contains=-5", ["e"]),
    (f"{PENDING}?flt0_created_greater_than={{yesterday}}+00:00:00", ["b", "e"]),
    (f"{PENDING}?flt0_created_by_equals={{sales2}}", ["e"]),
    (f"{PENDING}?search=B-2", ["b"]),
    (f"{PENDING}?search=Epsilon", ["e"]),
    (f"{PENDING}?flt0_created_between={{today}}+00:00:00+to+{{today}}+23:59:59", ["b", "e"]),
    (f"{PENDING}?flt0_created_between={{yesterday}}+00:00:00+to+{{yesterday}}+23:59:59", []),
    (f"{REVIEWED}?flt0_status_equals=rejected", ["d"]),
    (f"{REVIEWED}?flt0_review_comment_contains=reference", ["d"]),
    (f"{REVIEWED}?flt0_reviewed_by_equals={{finance}}", ["c", "d"]),
    (f"{REVIEWED}?flt0_reviewed_between={{today}}+00:00:00+to+{{today}}+23:59:59", ["c", "d"]),
    (f"{LIST}?flt0_status_equals=draft", ["a"]),
    (f"{LIST}?flt0_application_no_equals={{a}}", ["a"]),
])
def test_filters_and_search(client, login, world, several, url, wanted):
    login("sales" if url.startswith(LIST) else "finance")
    today = date.today()
    url = url.format(acme=world.acme.id, north=world.north.id, sales2=several["sales2"],
                     finance=world.users["finance"].id, today=today, yesterday=today - timedelta(days=1),
                     a=several["a"])
    answer = client.get(url)
    assert answer.status_code == 200, url
    assert ids_on(answer.get_data(as_text=True)) == sorted(several[k] for k in wanted), url


def test_a_bad_amount_filter_value_is_ignored_not_an_error(client, login, several):
    login("finance")
    assert client.get(f"{PENDING}?flt0_amount_greater_than=abc").status_code == 200


def test_reviewed_list_exports(client, login, several):
    login("finance")
    answer = client.get(REVIEWED + "export/csv/")
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "Gamma" in text and "Delta" in text and "Alpha" not in text


# --- concurrency: a real server, 20 finance users approving at once ---------------------------------------------

def _session(base: str, username: str):
    """A logged-in urllib opener with its own cookie jar."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token}).encode()
    opener.open(base + "/login", data=data, timeout=30).read()
    return opener


def test_twenty_simultaneous_approvals_credit_once(app, web_app, world):
    application = create_application(db.session, world.users["sales"], world.acme.id, "Race Payer", "CNY",
                                     "777.77", "RACE-1", submit=True)
    reviewers = [make_user(f"finance{i:02d}", "finance") for i in range(20)]
    db.session.commit()
    app_id = application.id

    server = make_server("127.0.0.1", 0, web_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    url = f"{base}{PENDING}review/?id={app_id}"
    try:
        ready = []
        for user in reviewers:
            opener = _session(base, user.username)
            page = opener.open(url, timeout=30).read().decode()
            assert 'name="decision" value="approve"' in page, user.username
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
            asked = opener.open(url, data=urllib.parse.urlencode(
                {"decision": "approve", "comment": "", "csrf_token": token}).encode(), timeout=30).read().decode()
            fields = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">',
                                asked[asked.index('id="rd-confirm-form"'):])
            ready.append((opener, [(name, unescape(value)) for name, value in fields]))
        barrier = threading.Barrier(len(ready))

        def approve(pair):
            opener, fields = pair  # the confirmation page's form: decision, comment, csrf and confirm tokens
            data = urllib.parse.urlencode(fields).encode()
            barrier.wait(timeout=60)
            try:
                response = opener.open(url, data=data, timeout=120)
                return response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode(errors="replace")

        with ThreadPoolExecutor(max_workers=len(ready)) as pool:
            answers = list(pool.map(approve, ready))
    finally:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()

    assert [status for status, _body in answers] == [200] * 20
    won = [body for _s, body in answers if f"Application #{app_id} approved: CN¥777.77 credited" in body]
    told = [body for _s, body in answers if f"Application #{app_id} was already reviewed" in body]
    assert len(won) == 1 and len(told) == 19
    db.session.expire_all()
    assert status_of(app_id) == "approved"
    assert balance(world.acme) == Decimal("777.77")
    [entry] = entries_of(app_id)
    assert entry.amount == Decimal("777.77") and entry.kind == "offline_recharge"
    assert ledger_differences(db.session) == []
    assert len(events("approve")) == 1

