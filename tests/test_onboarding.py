"""申请开通 and 编辑信息: tax-ID checks, applications, their review (one transaction, one approval),
quick onboarding, the welcome and rejection mail, and the customer administrator's company profile."""
from __future__ import annotations

import random
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from actions import DomainError, NotAllowed
from actions.tenants import (
    CREDIT_CODE_CHARSET, InvalidField, apply, approve, credit_code_check_char, onboard, reject,
    update_profile, validate_credit_code,
)
from app import mail
from conftest import confirm_post, post
from models import AuditEvent, BillingConfig, Company, TenantApplication, User, db


def credit_code(body: str) -> str:
    """A valid unified social credit code: 17 characters and their GB 32100-2015 check character."""
    weights = [3**i % 31 for i in range(17)]
    total = sum(CREDIT_CODE_CHARSET.index(c) * w for c, w in zip(body, weights))
    return body + CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def random_codes(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [credit_code("".join(rng.choice(CREDIT_CODE_CHARSET) for _ in range(17))) for _ in range(n)]


CODE_A = credit_code("91110108MA01ABCDE")
CODE_B = credit_code("9131000063170000X")


def fields(**overrides) -> dict:
    values = {"company_name": "Initech Rentals", "tax_id": CODE_A, "contact_name": "Peter Gibbons",
              "contact_phone": "010-62908030 ext 12", "contact_email": "peter@initech.example"}
    values.update(overrides)
    return values


def password_in(message) -> str:
    match = re.search(r"Initial password: (\S+)", message.body)
    assert match, message.body
    return match.group(1)


def fresh(row):
    db.session.expire_all()
    return db.session.get(type(row), row.id)


# --- the credit code ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["91350100M000100Y43", "911100007109288314", "91110000802100433B",
                                  *random_codes(20)])
def test_valid_credit_codes_are_accepted(code):
    assert validate_credit_code(code) == code
    assert credit_code_check_char(code[:17]) == code[17]


def test_credit_code_is_normalized_lowercase_spaces_full_width():
    assert validate_credit_code(" 91350100m000100y43 ") == "91350100M000100Y43"
    assert validate_credit_code("9135 0100-M000 100Y43") == "91350100M000100Y43"
    assert validate_credit_code("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"


@pytest.mark.parametrize("code", random_codes(10, seed=11))
def test_a_wrong_check_character_is_refused(code):
    wrong = next(c for c in "0123456789ABCDEF" if c != code[17])
    with pytest.raises(InvalidField) as refused:
        validate_credit_code(code[:17] + wrong)
    assert refused.value.field == "tax_id"
    assert "check character" in str(refused.value)
    assert "Tax ID or unified social credit code" in str(refused.value)


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_letters_outside_the_charset_are_refused(letter):
    code = "91350100M000100Y4" + "3"
    bad = code[:10] + letter + code[11:]
    with pytest.raises(InvalidField, match=letter):
        validate_credit_code(bad)
    with pytest.raises(InvalidField, match=letter):
        validate_credit_code(bad.lower())


@pytest.mark.parametrize("code", ["", "   ", "9135010", "91350100M000100Y4", "91350100M000100Y433", "12345678901234567890123"])
def test_wrong_lengths_are_refused(code):
    with pytest.raises(InvalidField) as refused:
        validate_credit_code(code)
    assert refused.value.field == "tax_id"


def test_old_15_and_20_character_tax_ids():
    assert validate_credit_code("110108123456789") == "110108123456789"
    assert validate_credit_code("11010871092883x") == "11010871092883X"
    assert validate_credit_code("11010519491231002X01") == "11010519491231002X01"
    for bad in ("11010812345678A", "1101051949123100XX01", "A1010519491231002X01"):
        with pytest.raises(InvalidField, match="digits"):
            validate_credit_code(bad)


# --- applying ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value,expected", [
    ("company_name", "  ", "Company name"),
    ("company_name", "x" * 201, "Company name"),
    ("company_name", "Evil\r\nBcc: x@example.test", "Company name"),
    ("tax_id", "123", "Tax ID"),
    ("contact_name", "", "Contact name"),
    ("contact_phone", "call me", "Contact phone"),
    ("contact_email", "not-an-email", "Contact email"),
])
def test_apply_names_the_refused_field(app, world, field, value, expected):
    with pytest.raises(InvalidField) as refused:
        apply(db.session, world.users["sales"], **fields(**{field: value}))
    assert refused.value.field == field
    assert expected in str(refused.value)


def test_apply_records_a_pending_application_with_audit(app, world):
    application = apply(db.session, world.users["sales"], **fields(tax_id=CODE_A.lower()))
    db.session.commit()
    assert application.status == "pending"
    assert application.tax_id == CODE_A
    assert application.contact_email == "peter@initech.example"
    assert application.applicant_id == world.users["sales"].id
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "apply",
                                                      AuditEvent.model == "tenant_application"))


def test_a_second_pending_application_for_the_tax_id_is_refused(app, world):
    apply(db.session, world.users["sales"], **fields())
    db.session.commit()
    with pytest.raises(InvalidField, match="already waiting"):
        apply(db.session, world.users["customer"], **fields(company_name="Other", tax_id=CODE_A.lower()))


def test_a_tax_id_an_existing_company_has_is_refused(app, world):
    world.globex.tax_id = CODE_B.lower()
    db.session.commit()
    with pytest.raises(InvalidField, match="already has the tax ID"):
        apply(db.session, world.users["sales"], **fields(tax_id=CODE_B))


def test_a_rejected_application_may_be_made_again(app, world):
    first = apply(db.session, world.users["sales"], **fields())
    reject(db.session, world.users["admin"], first, "Wrong documents")
    db.session.commit()
    assert apply(db.session, world.users["sales"], **fields()).status == "pending"
    from flask_babel import force_locale

    from actions.texts import render
    from models import AuditEvent

    rejected = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "reject",
                                                          AuditEvent.model == "tenant_application"))
    assert rejected.summary == "Rejected: Wrong documents"
    with force_locale("vi"):
        assert render(rejected.summary_data) == "Đã từ chối: Wrong documents"


def test_a_customer_picks_a_parent_only_in_their_own_tree(app, world):
    customer = world.users["north"]
    for outside in (world.acme, world.south, world.globex):
        with pytest.raises(InvalidField) as refused:
            apply(db.session, customer, **fields(), parent=outside)
        assert refused.value.field == "parent"
    application = apply(db.session, customer, **fields(), parent=world.fleet)
    assert application.parent_id == world.fleet.id


def test_staff_may_pick_any_active_parent(app, world):
    assert apply(db.session, world.users["sales"], **fields(), parent=world.globex).parent_id == world.globex.id
    world.south.status = "disabled"
    with pytest.raises(InvalidField, match="not active"):
        apply(db.session, world.users["sales"], **fields(tax_id=CODE_B), parent=world.south)


def test_the_apply_page_for_a_customer(app, client, login, world):
    login("customer")
    page = client.get("/admin/tenant_apply/").get_data(as_text=True)
    assert f'<option selected value="{world.acme.id}"' in page or f'value="{world.acme.id}" selected' in page
    assert "Globex" not in page  # only their own tree to pick from

    answer = post(client, "/admin/tenant_apply/", {**fields(company_name="<b>Acme East</b>"),
                                                   "parent": str(world.globex.id)})
    assert answer.status_code == 200
    assert "outside your companies" in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(TenantApplication)) == 0

    answer = post(client, "/admin/tenant_apply/", {**fields(company_name="<b>Acme East</b>", tax_id="bad"),
                                                   "parent": str(world.acme.id)})
    assert "Tax ID or unified social credit code:" in answer.get_data(as_text=True)

    answer = post(client, "/admin/tenant_apply/", {**fields(company_name="<b>Acme East</b>"),
                                                   "parent": str(world.north.id)}, follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "submitted" in page
    assert "&lt;b&gt;Acme East&lt;/b&gt;" in page and "<b>Acme East" not in page
    application = db.session.scalar(select(TenantApplication))
    assert application.parent_id == world.north.id
    assert application.applicant_id == world.users["customer"].id


# --- approving, rejecting ------------------------------------------------------------------------


def test_approval_creates_company_config_and_admin_in_one_transaction(app, world):
    application = apply(db.session, world.users["sales"], **fields(), parent=world.acme)
    db.session.commit()
    onboarded = approve(db.session, world.users["admin"], application, method="scrypt:1024:8:1")
    company, user = onboarded.company, onboarded.user
    assert company.parent_id == world.acme.id and company.path == f"{world.acme.path}{company.id}/"
    assert (company.name, company.tax_id, company.status) == ("Initech Rentals", CODE_A, "active")
    assert company.contact_email == "peter@initech.example"
    config = db.session.scalar(select(BillingConfig).where(BillingConfig.company_id == company.id))
    assert config.email_list == ["peter@initech.example"] and config.billing_cycle == "monthly"
    assert (user.username, user.role, user.company_id) == ("peter@initech.example", "customer_admin", company.id)
    assert (user.full_name, user.phone, user.email) == ("Peter Gibbons", "010-62908030 ext 12",
                                                        "peter@initech.example")
    assert user.must_change_password and user.check_password(onboarded.password)
    assert application.status == "approved" and application.company_id == company.id
    assert application.reviewed_by_id == world.users["admin"].id

    db.session.rollback()  # nothing was committed in between: all of it goes
    assert db.session.scalar(select(func.count()).select_from(Company).where(Company.name == "Initech Rentals")) == 0
    assert db.session.scalar(select(User.id).where(User.username == "peter@initech.example")) is None
    assert fresh(application).status == "pending"


def test_only_admins_review(app, world):
    application = apply(db.session, world.users["customer"], **fields())
    for name in ("sales", "finance", "support", "customer"):
        with pytest.raises(NotAllowed):
            approve(db.session, world.users[name], application)
        with pytest.raises(NotAllowed):
            reject(db.session, world.users[name], application, "no")
        with pytest.raises(NotAllowed):
            onboard(db.session, world.users[name], **fields(tax_id=CODE_B))


def test_a_second_approval_is_refused_even_from_a_stale_read(app, world):
    application = apply(db.session, world.users["sales"], **fields())
    db.session.commit()
    with Session(db.engine) as other:  # a second request that read the row while it was pending
        stale = other.get(TenantApplication, application.id)
        admin = other.get(User, world.users["admin"].id)
        assert stale.status == "pending"
        approve(db.session, world.users["admin"], application, method="scrypt:1024:8:1")
        db.session.commit()
        with pytest.raises(DomainError, match="already reviewed"):
            approve(other, admin, stale, username="someone-else")
        other.rollback()
    assert db.session.scalar(select(func.count()).select_from(Company).where(Company.tax_id == CODE_A)) == 1
    with pytest.raises(DomainError, match="already reviewed"):
        reject(db.session, world.users["admin"], fresh(application), "late")


def test_the_admin_may_override_the_parent_and_username(app, world):
    application = apply(db.session, world.users["customer"], **fields(), parent=world.north)
    onboarded = approve(db.session, world.users["admin"], application, parent=world.globex,
                        username="initech-admin", method="scrypt:1024:8:1")
    assert onboarded.company.parent_id == world.globex.id
    assert onboarded.user.username == "initech-admin"
    top = approve(db.session, world.users["admin"],
                  apply(db.session, world.users["sales"], **fields(tax_id=CODE_B, company_name="Top")),
                  parent=None, username="top-admin", method="scrypt:1024:8:1")
    assert top.company.parent_id is None


def test_reject_needs_a_reason(app, world):
    application = apply(db.session, world.users["sales"], **fields())
    with pytest.raises(InvalidField) as refused:
        reject(db.session, world.users["admin"], application, "   ")
    assert refused.value.field == "reason"
    reject(db.session, world.users["admin"], application, "  Tax ID does not match the licence  ")
    assert (application.status, application.reason) == ("rejected", "Tax ID does not match the licence")


def test_customer_applies_admin_approves_new_admin_signs_in(app, client, login, world):
    """The whole path: application, review page, approval mail, first login, own company only."""
    login("customer")
    post(client, "/admin/tenant_apply/", {**fields(company_name="Acme <i>East</i>"), "parent": str(world.acme.id)})
    application = db.session.scalar(select(TenantApplication))
    login.logout()

    login("admin")
    listing = client.get("/admin/tenantapplication/").get_data(as_text=True)
    assert "Acme &lt;i&gt;East&lt;/i&gt;" in listing and "<i>East" not in listing
    review = client.get(f"/admin/tenantapplication/review/?id={application.id}").get_data(as_text=True)
    assert 'name="csrf_token"' in review and "Approve" in review and "Reject" in review
    assert "Acme &lt;i&gt;East&lt;/i&gt;" in review

    answer = client.post("/admin/tenantapplication/approve/", data={"id": application.id, "parent": str(world.acme.id),
                                                                    "username": ""})
    assert answer.status_code == 400  # no CSRF token: refused
    with mail.record_messages() as outbox:
        answer = post(client, "/admin/tenantapplication/approve/",
                      {"id": application.id, "parent": str(world.acme.id), "username": ""}, follow_redirects=True)
        assert "were emailed to peter@initech.example" in answer.get_data(as_text=True)
        # A double click: the second post is refused and creates nothing.
        again = post(client, "/admin/tenantapplication/approve/",
                     {"id": application.id, "parent": str(world.acme.id), "username": "other"},
                     follow_redirects=True)
        assert "already reviewed" in again.get_data(as_text=True)
    assert len(outbox) == 1
    message = outbox[0]
    assert message.recipients == ["peter@initech.example"]
    assert "Acme <i>East</i>" in message.subject
    assert "Username: peter@initech.example" in message.body
    assert "http://localhost/login" in message.body
    assert "Acme &lt;i&gt;East&lt;/i&gt;" in message.html
    password = password_in(message)
    assert password in message.html
    assert db.session.scalar(select(func.count()).select_from(Company).where(Company.tax_id == CODE_A)) == 1
    assert password not in answer.get_data(as_text=True)  # mailed, not shown to the admin
    login.logout()

    answer = login("peter@initech.example", password)
    assert answer.headers["Location"].endswith("/password")
    assert client.get("/admin/").status_code == 302  # nothing else until the password changes
    post(client, "/password", {"current": password, "new": "initech-secret-1", "confirm": "initech-secret-1"})
    assert client.get("/admin/").status_code == 200
    profile = client.get("/admin/company_profile/").get_data(as_text=True)
    assert 'value="Acme &lt;i&gt;East&lt;/i&gt;"' in profile
    devices = client.get("/admin/device/").get_data(as_text=True)
    assert "AC0001" not in devices and "GX0001" not in devices


def test_approving_with_a_taken_username_changes_nothing(app, client, login, world):
    application = apply(db.session, world.users["sales"], **fields())
    db.session.commit()
    login("admin")
    with mail.record_messages() as outbox:
        page = post(client, "/admin/tenantapplication/approve/",
                    {"id": application.id, "parent": "", "username": "customer"}).get_data(as_text=True)
    assert "customer is taken" in page
    assert not outbox
    assert fresh(application).status == "pending"
    assert db.session.scalar(select(Company.id).where(Company.tax_id == CODE_A)) is None


def test_rejection_mails_the_reason(app, client, login, world):
    application = apply(db.session, world.users["sales"], **fields())
    db.session.commit()
    login("admin")
    with mail.record_messages() as outbox:
        page = post(client, "/admin/tenantapplication/reject/", {"id": application.id, "reason": ""})
        assert "Reason: required" in page.get_data(as_text=True)
        assert fresh(application).status == "pending"
        confirm_post(client, "/admin/tenantapplication/reject/",
                     {"id": application.id, "reason": "Licence <scan> unreadable"}, follow_redirects=True)
    assert len(outbox) == 1
    assert outbox[0].recipients == ["peter@initech.example"]
    assert "Licence <scan> unreadable" in outbox[0].body
    assert "Licence &lt;scan&gt; unreadable" in outbox[0].html
    application = fresh(application)
    assert (application.status, application.reason) == ("rejected", "Licence <scan> unreadable")
    assert db.session.scalar(select(func.count()).select_from(Company).where(Company.tax_id == CODE_A)) == 0


def test_mail_goes_out_in_the_applicants_language(app, world):
    from admin_views.tenants import _mail_locale

    world.users["sales"].locale = "zh_Hans_CN"
    chosen = apply(db.session, world.users["sales"], **fields())
    unset = apply(db.session, world.users["customer"], **fields(tax_id=CODE_B))
    with app.test_request_context(headers={"Accept-Language": "vi"}):
        assert _mail_locale(chosen) == "zh_Hans_CN"
        assert _mail_locale(unset) == "vi"  # no choice stored: the language of the request
        assert _mail_locale(None) == "vi"


def test_the_list_opens_on_pending_applications(app, client, login, world):
    pending = apply(db.session, world.users["sales"], **fields(company_name="Pending Co"))
    done = apply(db.session, world.users["sales"], **fields(company_name="Rejected Co", tax_id=CODE_B))
    reject(db.session, world.users["admin"], done, "no")
    db.session.commit()
    login("admin")
    page = client.get("/admin/tenantapplication/").get_data(as_text=True)
    assert "Pending Co" in page and "Rejected Co" not in page
    assert f"review/?id={pending.id}" in page
    page = client.get("/admin/tenantapplication/?show=all").get_data(as_text=True)
    assert "Pending Co" in page and "Rejected Co" in page
    assert client.get(f"/admin/tenantapplication/details/?id={done.id}").status_code == 200


# --- quick onboarding ------------------------------------------------------------------------------


def test_quick_onboarding(app, client, login, world):
    login("admin")
    page = client.get("/admin/tenant_onboarding/").get_data(as_text=True)
    assert 'name="csrf_token"' in page and 'name="username"' in page
    with mail.record_messages() as outbox:
        answer = post(client, "/admin/tenant_onboarding/", {**fields(tax_id="bad"), "parent": "", "username": ""})
        assert "Tax ID or unified social credit code:" in answer.get_data(as_text=True)
        answer = post(client, "/admin/tenant_onboarding/",
                      {**fields(), "parent": str(world.globex.id), "username": "initech"}, follow_redirects=True)
    assert "were emailed to peter@initech.example" in answer.get_data(as_text=True)
    assert len(outbox) == 1 and "Username: initech" in outbox[0].body
    company = db.session.scalar(select(Company).where(Company.tax_id == CODE_A))
    assert company.parent_id == world.globex.id
    user = db.session.scalar(select(User).where(User.username == "initech"))
    assert user.company_id == company.id and user.must_change_password
    assert user.check_password(password_in(outbox[0]))
    assert db.session.scalar(select(BillingConfig.push_emails).where(BillingConfig.company_id == company.id)) == \
        "peter@initech.example"
    # The same tax ID again is refused; so is a tax ID waiting in an application.
    answer = post(client, "/admin/tenant_onboarding/", {**fields(company_name="Again"), "parent": "", "username": "x"})
    assert "already has the tax ID" in answer.get_data(as_text=True)
    apply(db.session, world.users["sales"], **fields(tax_id=CODE_B))
    db.session.commit()
    answer = post(client, "/admin/tenant_onboarding/", {**fields(tax_id=CODE_B), "parent": "", "username": "y"})
    assert "already waiting" in answer.get_data(as_text=True)


# --- 编辑信息 -------------------------------------------------------------------------------------


def test_company_profile_action(app, world):
    customer = world.users["customer"]
    config = BillingConfig(company_id=world.acme.id, push_emails="ops@acme.example\ncustomer@example.test")
    db.session.add(config)
    db.session.commit()
    with pytest.raises(InvalidField) as refused:
        update_profile(db.session, customer, full_name="C", email="nope", user_phone="123456")
    assert refused.value.field == "email"
    db.session.rollback()
    change = update_profile(db.session, customer, phone="021-1234567", province="上海市", city="上海市",
                            address="1 Bund", full_name="Chen", email="Chen@Acme.example", user_phone="123456")
    db.session.commit()
    assert change.new_email == "Chen@acme.example" and change.old_email == "customer@example.test"
    assert customer.email == "Chen@acme.example" and world.acme.contact_email == "Chen@acme.example"
    assert customer.username == "customer"  # the login stays
    assert fresh(config).email_list == ["ops@acme.example", "Chen@acme.example"]
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "edit")).all()
    summaries = {e.model: e.summary for e in events}
    assert "Administrator email: customer@example.test → Chen@acme.example" in summaries["user"]
    assert "Company phone: — → 021-1234567" in summaries["company"]
    assert "Chen@acme.example" in summaries["billing_config"]
    with pytest.raises(DomainError):
        update_profile(db.session, world.users["admin"], full_name="A", email="a@example.test", user_phone="123")


def test_company_profile_page(app, client, login, world):
    login("customer")
    page = client.get("/admin/company_profile/").get_data(as_text=True)
    assert 'value="Acme Logistics" readonly' in page
    assert 'name="name"' not in page and 'name="company_name"' not in page  # the name is read-only
    assert 'name="csrf_token"' in page
    assert '<a class="btn btn-secondary" id="rd-cancel" href="/admin/company_profile/">Cancel</a>' in page  # 确定 / 取消

    answer = post(client, "/admin/company_profile/", {
        "full_name": "Chen", "email": "bad@", "user_phone": "123456", "address": "x"})
    assert "Administrator email:" in answer.get_data(as_text=True)
    assert fresh(world.users["customer"]).email == "customer@example.test"

    answer = post(client, "/admin/company_profile/", {
        "phone": "021-1234567", "fax": "", "province": "上海市", "city": "上海市",
        "address": '"><img src=x onerror=alert(1)><script>alert(1)</script>', "full_name": "<b>Chen</b>", "email": "chen@acme.example",
        "user_phone": "021-7654321 转 8", "mobile": "+86 138 0000 0000", "name": "Hijacked Ltd"},
        follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "future" in page.lower() or "From now on" in page
    assert "chen@acme.example" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page and "<b>Chen</b>" not in page
    company = fresh(world.acme)
    assert company.name == "Acme Logistics"
    assert (company.province, company.city, company.contact_email) == ("上海市", "上海市", "chen@acme.example")
    user = fresh(world.users["customer"])
    assert (user.full_name, user.email, user.phone) == ("<b>Chen</b>", "chen@acme.example", "021-7654321 转 8")
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.model == "user", AuditEvent.action == "edit",
                                                      AuditEvent.ids == f",{user.id},"))


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["support", "finance", "sales", "customer"])
def test_non_admins_are_refused_the_admin_pages(app, client, login, world, username):
    application = apply(db.session, world.users["sales"], **fields())
    db.session.commit()
    login(username)
    for url in ("/admin/tenantapplication/", f"/admin/tenantapplication/review/?id={application.id}",
                f"/admin/tenantapplication/details/?id={application.id}", "/admin/tenant_onboarding/"):
        assert client.get(url).status_code == 403, url
    for url, data in (("/admin/tenantapplication/approve/", {"id": application.id}),
                      ("/admin/tenantapplication/reject/", {"id": application.id, "reason": "x"}),
                      ("/admin/tenant_onboarding/", {**fields(tax_id=CODE_B), "username": "z"})):
        assert post(client, url, data).status_code == 403, url
    assert fresh(application).status == "pending"
    assert client.get("/admin/tenant_apply/").status_code == 200
    assert client.get("/admin/company_profile/").status_code == (200 if username == "customer" else 403)


def test_admins_see_a_note_on_the_company_profile(app, client, login, world):
    login("admin")
    page = client.get("/admin/company_profile/").get_data(as_text=True)
    assert 'id="rd-no-company"' in page and 'id="rd-profile"' not in page


def test_anonymous_users_go_to_login(app, client, world):
    for url in ("/admin/tenant_apply/", "/admin/company_profile/", "/admin/tenant_onboarding/",
                "/admin/tenantapplication/"):
        answer = client.get(url)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], url
