"""编辑信息 (seed 004 §3): the administrator's username is shown beside the administrator email it follows
(用户名 注:与管理员邮箱同步); a new email becomes the administrator's login name and mail address in one
transaction, the old name stops signing in, the session that made the change stays; the province list is
grouped by country, the reader's country first; distributors read why they cannot add or import cards."""
from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from actions.employees import create_employee
from actions.tenants import InvalidField, company_administrator, onboard, update_profile
from app import mail
from conftest import FAST_HASH, PASSWORD, make_user, post
from models import AuditEvent, BillingConfig, User, db
from test_billing_jobs import DAY, inbox, mail_app, reminders, smtp_server  # noqa: F401, F811 (fixtures)
from test_invoices import REVIEW, ask, ordinary_title, paid_order
from test_onboarding import fields

pytest_plugins = ("card_fixtures",)

PROFILE = "/admin/company_profile/"
ADMIN = {"full_name": "Peter Gibbons", "user_phone": "010-62908030"}


@pytest.fixture
def tenant(world):
    """A tenant made by quick onboarding: its administrator's username is its email (the default)."""
    onboarded = onboard(db.session, world.users["admin"], **fields(), method=FAST_HASH)
    user = onboarded.user
    user.set_password(PASSWORD, method=FAST_HASH)
    user.must_change_password = False
    db.session.commit()
    assert user.username == user.email == "peter@initech.example"
    return onboarded


def fresh(model, pk):
    db.session.expire_all()
    return db.session.get(model, pk)


def signs_in(web_client, username: str) -> bool:
    from conftest import Login
    Login(web_client).logout()
    web_client.get("/login")
    answer = Login(web_client)(username)
    return answer.status_code == 302 and web_client.get(PROFILE).status_code == 200


# --- the action -------------------------------------------------------------------------------------


def test_the_administrator_is_the_login_created_at_onboarding(world, tenant):
    employee, _password = create_employee(db.session, tenant.user, "clerk", ["company"], PASSWORD,
                                          must_change_password=False, method=FAST_HASH)
    make_user("second", "customer_admin", tenant.company)  # a later full-access login
    db.session.commit()
    assert company_administrator(db.session, tenant.company).id == tenant.user.id
    assert company_administrator(db.session, world.acme).id == world.users["customer"].id


def test_the_username_follows_the_email_in_the_same_transaction_audited(world, tenant):
    user = tenant.user
    change = update_profile(db.session, user, email="Bill@Initech.example", **ADMIN)
    db.session.commit()
    assert change.new_username == "Bill@initech.example" and change.new_email == "Bill@initech.example"
    user = fresh(User, user.id)
    assert user.username == user.email == "Bill@initech.example"
    assert tenant.company.contact_email == "Bill@initech.example"
    config = db.session.scalar(select(BillingConfig).where(BillingConfig.company_id == tenant.company.id))
    assert config.email_list == ["Bill@initech.example"]  # the push mail follows too
    summary = db.session.scalar(select(AuditEvent.summary).where(
        AuditEvent.model == "user", AuditEvent.action == "edit", AuditEvent.ids == f",{user.id},"))
    assert "Administrator username: peter@initech.example → Bill@initech.example" in summary
    assert "Administrator email: peter@initech.example → Bill@initech.example" in summary


def test_a_username_another_login_has_is_refused_naming_the_field_and_nothing_changes(world, tenant):
    make_user("BILL@initech.example", "tech_support")
    db.session.commit()
    with pytest.raises(InvalidField) as refused:
        update_profile(db.session, tenant.user, email="bill@initech.example", phone="021-1234567", **ADMIN)
    db.session.rollback()
    assert refused.value.field == "email"
    assert "Administrator email" in str(refused.value) and "bill@initech.example" in str(refused.value)
    user, company = fresh(User, tenant.user.id), tenant.company
    assert (user.username, user.email, company.phone) == ("peter@initech.example", "peter@initech.example", None)


def test_a_name_taken_after_the_check_is_refused_by_the_unique_index(world, tenant, monkeypatch):
    """Two requests at once: the other login got the name between the check and the flush."""
    make_user("bill@initech.example", "tech_support")
    db.session.commit()
    monkeypatch.setattr("actions.tenants.username_for_email", lambda session, admin, name: name)
    with pytest.raises(InvalidField) as refused:
        update_profile(db.session, tenant.user, email="bill@initech.example", **ADMIN)
    db.session.rollback()
    assert refused.value.field == "email" and "already the username" in str(refused.value)
    assert fresh(User, tenant.user.id).username == "peter@initech.example"


def test_an_email_too_long_for_a_username_is_refused(world, tenant):
    address = "a" * 60 + "@initech.example"
    with pytest.raises(InvalidField) as refused:
        update_profile(db.session, tenant.user, email=address, **ADMIN)
    db.session.rollback()
    assert refused.value.field == "email" and "64" in str(refused.value)
    assert fresh(User, tenant.user.id).email == "peter@initech.example"


def test_a_username_that_was_not_the_email_stays(world):
    customer = world.users["customer"]  # username "customer", email customer@example.test
    change = update_profile(db.session, customer, email="chen@acme.example", full_name="Chen", user_phone="123456")
    db.session.commit()
    assert change.new_username is None and fresh(User, customer.id).username == "customer"


def test_an_employee_edits_the_administrators_contact_but_not_its_email(world, tenant):
    clerk, _password = create_employee(db.session, tenant.user, "clerk", ["company"], PASSWORD,
                                       must_change_password=False, method=FAST_HASH)
    db.session.commit()
    with pytest.raises(InvalidField) as refused:
        update_profile(db.session, clerk, email="clerk@evil.example", **ADMIN)
    db.session.rollback()
    assert refused.value.field == "email" and "administrator" in str(refused.value)
    assert fresh(User, tenant.user.id).email == "peter@initech.example"
    clerk = fresh(User, clerk.id)
    change = update_profile(db.session, clerk, email="peter@initech.example", full_name="Peter G.",
                            user_phone="010-1", mobile="13800000000")
    db.session.commit()
    assert change.administrator.id == tenant.user.id
    admin = fresh(User, tenant.user.id)
    assert (admin.full_name, admin.mobile) == ("Peter G.", "13800000000")
    assert fresh(User, clerk.id).full_name is None  # the clerk's own details are not the profile's


def test_a_second_full_access_login_changes_the_administrators_email_and_login(world, tenant):
    second = make_user("second", "customer_admin", tenant.company)
    db.session.commit()
    change = update_profile(db.session, second, email="bill@initech.example", **ADMIN)
    db.session.commit()
    assert change.new_username == "bill@initech.example"
    assert fresh(User, tenant.user.id).username == "bill@initech.example"
    assert fresh(User, second.id).username == "second"


# --- the page ------------------------------------------------------------------------------------


def test_the_page_shows_the_username_beside_the_email_with_its_note(world, tenant, client, login):
    login("peter@initech.example")
    page = client.get(PROFILE).get_data(as_text=True)
    username = page.index('id="rd-username"')
    assert 'value="peter@initech.example" readonly id="rd-username"' in page
    assert page.index('id="full_name"') < username < page.index('id="email"')
    assert "Follows the administrator email" in page


def test_the_note_says_a_chosen_username_stays(world, client, login):
    login("customer")
    page = client.get(PROFILE).get_data(as_text=True)
    assert 'value="customer" readonly id="rd-username"' in page
    assert "it does not follow the administrator email" in page


def test_changing_the_email_keeps_the_session_and_moves_the_login(world, tenant, client, login):
    login("peter@initech.example")
    answer = post(client, PROFILE, {"email": "bill@initech.example", **ADMIN}, follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'id="rd-profile"' in page  # still signed in: the session is by user id
    assert "The administrator&#39;s username is now bill@initech.example" in page
    assert 'value="bill@initech.example" readonly id="rd-username"' in page
    assert client.get("/admin/").status_code == 200
    assert fresh(User, tenant.user.id).username == "bill@initech.example"
    assert not signs_in(client, "peter@initech.example")
    assert signs_in(client, "bill@initech.example")


def test_an_administrator_email_changed_under_system_users_moves_the_login_too(world, tenant, client, login):
    """System → Users follows the same rule as the profile: the administrator's login name was its email, so a
    new email (typed in another case) becomes the login name; a name another login has is refused there too."""
    user = tenant.user
    login("admin")
    form = {"email": "Bill@Initech.example", "role": "customer_admin", "company": str(tenant.company.id),
            "locale": ""}
    answer = post(client, f"/admin/user/edit/?id={user.id}", form, follow_redirects=True)
    # The email is stored normalised (its domain in lower case), as the profile stores it.
    assert "The administrator&#39;s username is now Bill@initech.example" in answer.get_data(as_text=True)
    assert (fresh(User, user.id).username, fresh(User, user.id).email) == ("Bill@initech.example",
                                                                            "Bill@initech.example")
    (event,) = [e for e in db.session.scalars(select(AuditEvent).where(AuditEvent.model == "user",
                                                                        AuditEvent.action == "edit"))]
    assert "peter@initech.example → Bill@initech.example" in event.summary
    make_user("carol@initech.example", "tech_support")
    db.session.commit()
    page = post(client, f"/admin/user/edit/?id={user.id}", {**form, "email": "CAROL@initech.example"}
                ).get_data(as_text=True)
    assert "is already the username of another login" in page
    assert fresh(User, user.id).email == "Bill@initech.example"
    # A login whose name is not its email keeps its name (the demo's `customer`).
    customer = world.users["customer"]
    post(client, f"/admin/user/edit/?id={customer.id}", {**form, "email": "ops2@acme.example",
                                                          "company": str(world.acme.id)})
    assert fresh(User, customer.id).username == "customer"


def test_a_taken_name_is_shown_under_the_email_field(world, tenant, client, login):
    make_user("bill@initech.example", "tech_support")
    db.session.commit()
    login("peter@initech.example")
    page = post(client, PROFILE, {"email": "bill@initech.example", "address": "1 Main St", **ADMIN}
                ).get_data(as_text=True)
    email_field = page.split('id="email"', 1)[1].split("</div>", 1)[0]
    assert "is already the username of another login" in email_field
    assert fresh(User, tenant.user.id).email == "peter@initech.example" and tenant.company.address is None


def test_the_note_and_the_refusal_read_in_chinese(world, tenant, client, login):
    tenant.user.locale = "zh_Hans_CN"
    make_user("bill@initech.example", "tech_support")
    db.session.commit()
    login("peter@initech.example")
    page = client.get(PROFILE).get_data(as_text=True)
    note = page.split('id="rd-username-note">', 1)[1].split("</small>", 1)[0]
    assert "Follows" not in note and "管理员邮箱" in note
    page = post(client, PROFILE, {"email": "bill@initech.example", **ADMIN}).get_data(as_text=True)
    email_field = page.split('id="email"', 1)[1].split("</div>", 1)[0]
    assert "bill@initech.example" in email_field and "already" not in email_field


# --- mail goes to the new address ------------------------------------------------------------------


def test_reminder_mail_goes_to_the_new_administrator_email(mail_app, inbox, reminders):  # noqa: F811
    config = db.session.scalar(select(BillingConfig).where(BillingConfig.company_id == reminders.acme.id))
    config.push_emails = "ops@acme.test\ncustomer@example.test"  # the administrator's address among them
    db.session.commit()
    customer = db.session.get(User, reminders.users["customer"].id)
    update_profile(db.session, customer, email="chen@acme.example", full_name="Chen", user_phone="123456")
    db.session.commit()

    result = mail_app.test_cli_runner().invoke(args=["billing", "remind", "--today", DAY])
    assert result.exit_code == 0, result.output
    acme = [sorted(rcpt) for rcpt, message in inbox.parsed() if "Acme Logistics" in message["Subject"]]
    assert acme == [["chen@acme.example", "ops@acme.test"]]



def test_invoice_mail_goes_to_the_requesters_new_email(world, client, login):
    """The order mail of a request made before the change reads the administrator's address when it is sent."""
    ordinary_title(world)
    made = ask(world, [paid_order(world.acme, "80.00")])
    update_profile(db.session, db.session.get(User, world.users["customer"].id), email="chen@acme.example",
                   full_name="Chen", user_phone="123456")
    db.session.commit()
    login("finance")
    with mail.record_messages() as outbox:
        post(client, REVIEW + "issue/", {"id": str(made.id), "invoice_number": "04400001",
                                         "invoice_date": date.today().isoformat()})
    assert [sorted(m.recipients) for m in outbox] == [["ap@acme.example", "chen@acme.example"]]

# --- the province list, grouped by country -------------------------------------------------------------


def groups_of(page: str) -> list[str]:
    select_html = page.split('id="province" name="province">', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<optgroup label="([^"]*)">', select_html)


@pytest.mark.parametrize("locale, groups", [
    ("zh_Hans_CN", ["中国", "越南"]), ("vi", ["Việt Nam", "Trung Quốc"]), (None, ["China", "Vietnam"])])
def test_provinces_are_grouped_by_country_the_readers_first(world, client, login, locale, groups):
    world.users["customer"].locale = locale
    db.session.commit()
    login("customer")
    page = client.get(PROFILE).get_data(as_text=True)
    assert groups_of(page) == groups
    select_html = page.split('id="province" name="province">', 1)[1]
    assert select_html.startswith('<option value="">')  # the placeholder, in no group
    assert '<optgroup label="">' not in page


def test_the_city_list_follows_the_province_and_data_is_escaped(world, client, login):
    world.acme.province, world.acme.city = '<b>Old "Prov"</b>', "<i>Old city</i>"
    db.session.commit()
    login("customer")
    page = client.get(PROFILE).get_data(as_text=True)
    assert groups_of(page) == ["China", "Vietnam", "Not on the list"]
    assert "<b>Old" not in page and "<i>Old" not in page
    assert '<option selected value="&lt;b&gt;Old &#34;Prov&#34;&lt;/b&gt;">' in page
    # A failed save redraws the cities of the province it chose, and only those.
    page = post(client, PROFILE, {"province": "浙江省", "city": "", "email": "customer@example.test",
                                  "full_name": "", "user_phone": "123456"}).get_data(as_text=True)
    city_html = page.split('id="city" name="city">', 1)[1].split("</select>", 1)[0]
    assert "杭州市" in city_html and "深圳市" not in city_html
    assert "renewdeskRegions('province', 'city', 'rd-regions')" in page


# --- 号卡: distributors read why they do not add or import cards ----------------------------------


def test_distributors_read_that_the_platform_adds_cards(cards, client, login):
    login("a_admin")
    page = client.get("/admin/simcard/").get_data(as_text=True)
    assert 'id="rd-card-add-hint"' in page and "support and administrators" in page
    assert 'id="rd-card-add"' not in page and 'id="rd-card-import"' not in page
    login.logout()
    login("support")
    page = client.get("/admin/simcard/").get_data(as_text=True)
    assert 'id="rd-card-add"' in page and 'id="rd-card-add-hint"' not in page


def test_the_card_hint_reads_in_chinese(cards, client, login):
    cards["users"]["a_admin"].locale = "zh_Hans_CN"
    db.session.commit()
    login("a_admin")
    page = client.get("/admin/simcard/").get_data(as_text=True)
    hint = page.split('id="rd-card-add-hint">', 1)[1].split("</span>", 1)[0]
    assert "support" not in hint and "平台" in hint
