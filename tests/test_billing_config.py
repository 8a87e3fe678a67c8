"""收费账户配置 / 账户配置: emails, inheritance, listing, configure, edit, delete, roles, scope."""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from actions import DomainError, NotAllowed
from actions.billing import (
    MAX_PUSH_EMAILS,
    configure_companies,
    delete_config,
    effective_config,
    list_configs,
    load_companies,
    normalize_emails,
)
from models import AuditEvent, BillingConfig, Company, db
from conftest import confirm_post, make_company, post

SETTINGS = {
    "billing_cycle": "quarterly",
    "auto_renew": True,
    "push_enabled": True,
    "push_language": "en",
    "push_emails": "ops@example.com\nbilling@example.com",
}


pytestmark = pytest.mark.usefixtures("request_unless_client")  # actions run in a request


def give_config(company: Company, **values) -> BillingConfig:
    config = BillingConfig(company=company, billing_cycle=values.get("billing_cycle", "monthly"),
                           push_language=values.get("push_language", "zh_CN"),
                           push_emails=values.get("push_emails", f"c{company.id}@example.com"))
    db.session.add(config)
    db.session.flush()
    return config


def config_of(company: Company) -> BillingConfig | None:
    return db.session.scalar(select(BillingConfig).where(BillingConfig.company_id == company.id))


def config_count() -> int:
    return db.session.scalar(select(func.count()).select_from(BillingConfig))


def audit_events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.model == "billing_config",
                                                            AuditEvent.action == action)))


@contextmanager
def count_selects():
    """Count the SELECT statements run inside the block."""
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


# --- push emails -------------------------------------------------------------------------


def test_normalize_emails_accepts_newlines_commas_and_semicolons():
    text = "a@example.com\nb@example.org, c@example.net; d@example.com，e@example.com\r\n\n"
    assert normalize_emails(text) == [
        "a@example.com", "b@example.org", "c@example.net", "d@example.com", "e@example.com",
    ]


def test_normalize_emails_of_nothing_is_empty():
    assert normalize_emails("") == []
    assert normalize_emails("  \n , ; ") == []
    assert normalize_emails(None) == []


def test_normalize_emails_lowercases_the_domain_only():
    assert normalize_emails("Ops.Team@Example.COM") == ["Ops.Team@example.com"]


def test_normalize_emails_names_each_invalid_address():
    with pytest.raises(DomainError) as caught:
        normalize_emails("good@example.com\nnot-an-email, also@bad@example.com")
    message = str(caught.value)
    assert "not-an-email" in message
    assert "also@bad@example.com" in message
    assert "good@example.com" not in message


def test_normalize_emails_refuses_duplicates_case_insensitively():
    with pytest.raises(DomainError, match="OPS@example.com"):
        normalize_emails("ops@example.com; OPS@example.com")


def test_normalize_emails_caps_the_number_of_addresses():
    with pytest.raises(DomainError):
        normalize_emails(",".join(f"u{i}@example.com" for i in range(MAX_PUSH_EMAILS + 1)))


# --- inheritance -------------------------------------------------------------------------


def test_company_without_config_inherits_nearest_ancestors(world):
    acme_config = give_config(world.acme)
    assert effective_config(db.session, world.fleet) == (acme_config, world.acme)
    north_config = give_config(world.north)
    assert effective_config(db.session, world.fleet) == (north_config, world.north)
    assert effective_config(db.session, world.north) == (north_config, world.north)
    assert effective_config(db.session, world.south) == (acme_config, world.acme)
    assert effective_config(db.session, world.globex) == (None, None)


def test_effective_config_is_one_query(world):
    give_config(world.acme)
    path = world.fleet.path  # loaded before counting
    assert path
    with count_selects() as selects:
        config, source = effective_config(db.session, world.fleet)
        assert source.name == "Acme Logistics"
    assert len(selects) == 1


# --- listing -----------------------------------------------------------------------------


def names(rows) -> list[str]:
    return [row.company.name for row in rows]


def test_direct_lists_the_company_and_its_direct_subsidiaries(world):
    rows = list_configs(db.session, world.users["sales"], world.acme, "direct")
    assert sorted(names(rows)) == ["Acme Logistics", "Acme North", "Acme South"]


def test_all_lists_the_whole_tree(world):
    rows = list_configs(db.session, world.users["sales"], world.acme, "all")
    assert sorted(names(rows)) == ["Acme Logistics", "Acme North", "Acme North Fleet", "Acme South"]


def test_without_a_company_staff_see_top_level_or_every_company(world):
    sales = world.users["sales"]
    assert sorted(names(list_configs(db.session, sales, None, "direct"))) == [
        "Acme Logistics", "Globex <b>Trading</b>"]
    assert len(list_configs(db.session, sales, None, "all")) == 5


def test_listing_shows_own_inherited_and_none(world):
    acme_config = give_config(world.acme)
    north_config = give_config(world.north)
    rows = {row.company.name: row for row in list_configs(db.session, world.users["sales"], None, "all")}
    assert rows["Acme Logistics"].own is acme_config and not rows["Acme Logistics"].inherited
    assert rows["Acme North"].own is north_config
    fleet = rows["Acme North Fleet"]
    assert fleet.own is None and fleet.inherited
    assert fleet.effective is north_config and fleet.source.name == "Acme North"
    assert rows["Acme South"].effective is acme_config and rows["Acme South"].source.name == "Acme Logistics"
    globex = rows["Globex <b>Trading</b>"]
    assert globex.own is None and globex.effective is None and globex.source is None


def test_listing_a_subsidiary_finds_configs_above_it(world):
    acme_config = give_config(world.acme)
    rows = list_configs(db.session, world.users["sales"], world.north, "direct")
    assert names(rows) == ["Acme North", "Acme North Fleet"]
    assert all(row.effective is acme_config and row.source.name == "Acme Logistics" for row in rows)


def test_listing_runs_two_queries_however_many_companies(world):
    for i in range(30):
        make_company(f"Acme unit {i}", world.north)
    give_config(world.acme)
    give_config(world.north)
    sales = world.users["sales"]
    acme_path = world.acme.path  # loaded before counting
    assert acme_path and sales.role
    with count_selects() as selects:
        rows = list_configs(db.session, sales, world.acme, "all")
        sources = {row.source.name for row in rows}
    assert len(rows) == 34
    assert sources == {"Acme Logistics", "Acme North"}
    assert len(selects) == 2


def test_customer_lists_only_their_tree(world):
    customer = world.users["customer"]
    assert sorted(names(list_configs(db.session, customer, None, "all"))) == [
        "Acme Logistics", "Acme North", "Acme North Fleet", "Acme South"]
    north = world.users["north"]
    assert names(list_configs(db.session, north, None, "all")) == ["Acme North", "Acme North Fleet"]
    with pytest.raises(DomainError, match=f"#{world.globex.id}"):
        list_configs(db.session, customer, world.globex, "direct")
    with pytest.raises(DomainError):
        list_configs(db.session, north, world.acme, "direct")


# --- configure, edit, delete ----------------------------------------------------------------


def test_configure_several_companies_at_once(world):
    sales = world.users["sales"]
    result = configure_companies(db.session, sales, [world.north, world.south, world.fleet], SETTINGS)
    db.session.commit()
    assert sorted(result.changed) == ["Acme North", "Acme North Fleet", "Acme South"]
    assert result.extra["created"] == 3
    for company in (world.north, world.south, world.fleet):
        config = config_of(company)
        assert (config.billing_cycle, config.auto_renew, config.push_enabled, config.push_language) == (
            "quarterly", True, True, "en")
        assert config.email_list == ["ops@example.com", "billing@example.com"]
    assert config_of(world.acme) is None
    events = audit_events("configure")  # one per company, each naming its config
    assert {e.actor_name for e in events} == {"sales"}
    config_ids = {config_of(c).id for c in (world.north, world.south, world.fleet)}
    assert {int(e.ids.strip(",")) for e in events} == config_ids
    north = next(e for e in events if int(e.ids.strip(",")) == config_of(world.north).id)
    assert north.summary.startswith("Acme North: billing config created (Billing cycle: Quarterly; Auto-renew: Yes")


def test_configure_updates_an_existing_config(world):
    sales = world.users["sales"]
    config = give_config(world.north, billing_cycle="monthly")
    config_id = config.id
    result = configure_companies(db.session, sales, [world.north], {
        **SETTINGS, "billing_cycle": "yearly", "push_enabled": False, "push_emails": ""})
    db.session.commit()
    assert result.extra["created"] == 0
    config = config_of(world.north)
    assert config.id == config_id
    assert (config.billing_cycle, config.push_enabled, config.push_emails) == ("yearly", False, "")
    [event_] = audit_events("configure")
    assert "Billing cycle: Monthly → Yearly; Auto-renew: No → Yes; Push on: Yes → No" in event_.summary


def test_configure_normalizes_and_validates_emails(world):
    sales = world.users["sales"]
    configure_companies(db.session, sales, [world.north],
                        {**SETTINGS, "push_emails": "a@example.com; b@example.com , c@example.com"})
    assert config_of(world.north).push_emails == "a@example.com\nb@example.com\nc@example.com"
    with pytest.raises(DomainError, match="nope"):
        configure_companies(db.session, sales, [world.south], {**SETTINGS, "push_emails": "nope"})


@pytest.mark.parametrize("field, value", [
    ("billing_cycle", "weekly"), ("push_language", "fr"), ("push_emails", ""),
])
def test_configure_refuses_bad_settings(world, field, value):
    with pytest.raises(DomainError):
        configure_companies(db.session, world.users["sales"], [world.north], {**SETTINGS, field: value})
    assert config_count() == 0


def test_configure_without_companies_is_refused(world):
    with pytest.raises(DomainError):
        configure_companies(db.session, world.users["sales"], [], SETTINGS)


def test_delete_makes_the_company_inherit_again(world):
    sales = world.users["sales"]
    acme_config = give_config(world.acme)
    north_config = give_config(world.north)
    north_config_id = north_config.id
    assert effective_config(db.session, world.fleet)[1] is world.north
    delete_config(db.session, sales, north_config)
    db.session.commit()
    assert config_of(world.north) is None
    assert effective_config(db.session, world.north) == (acme_config, world.acme)
    assert effective_config(db.session, world.fleet) == (acme_config, world.acme)
    [event_] = audit_events("delete")
    assert event_.ids == f",{north_config_id},"
    assert event_.summary.startswith("Acme North: billing config deleted (it was Billing cycle: Monthly; ")


def test_customer_configures_their_own_tree(world):
    customer = world.users["customer"]
    configure_companies(db.session, customer, [world.acme, world.fleet], SETTINGS)
    assert config_of(world.acme) is not None and config_of(world.fleet) is not None
    delete_config(db.session, customer, config_of(world.fleet))
    assert config_of(world.fleet) is None


def test_customer_may_not_touch_another_tenants_company(world):
    customer = world.users["customer"]
    with pytest.raises(DomainError, match=f"#{world.globex.id}") as caught:
        configure_companies(db.session, customer, [world.north, world.globex], SETTINGS)
    assert "Globex" not in str(caught.value)
    db.session.rollback()
    assert config_count() == 0
    assert audit_events("configure") == []


def test_subsidiary_admin_may_not_touch_the_parent(world):
    north = world.users["north"]
    acme_config = give_config(world.acme)
    db.session.commit()
    with pytest.raises(DomainError):
        configure_companies(db.session, north, [world.acme], SETTINGS)
    with pytest.raises(DomainError):
        delete_config(db.session, north, acme_config)
    db.session.rollback()
    assert config_of(world.acme) is not None


def test_load_companies_refuses_unknown_and_out_of_scope_ids(world):
    customer = world.users["customer"]
    assert load_companies(db.session, customer, [str(world.north.id), world.north.id]) == [world.north]
    with pytest.raises(DomainError, match=f"#{world.globex.id}"):
        load_companies(db.session, customer, [world.north.id, world.globex.id])
    with pytest.raises(DomainError, match="#999999"):
        load_companies(db.session, world.users["sales"], ["999999"])
    for odd in ("abc", "²", "-1", "0", str(2**40)):
        with pytest.raises(DomainError, match="outside your companies"):
            load_companies(db.session, world.users["sales"], [odd])
    with pytest.raises(DomainError) as caught:
        load_companies(db.session, customer, [str(world.globex.id)] + [str(10_000 + i) for i in range(100)])
    assert str(caught.value).count("#") == 20 and "…" in str(caught.value)


@pytest.mark.parametrize("username", ["finance", "support"])
def test_other_roles_may_not_use_the_actions(world, username):
    actor = world.users[username]
    with pytest.raises(NotAllowed):
        list_configs(db.session, actor, None, "direct")
    with pytest.raises(NotAllowed):
        configure_companies(db.session, actor, [world.north], SETTINGS)
    config = give_config(world.north)
    with pytest.raises(NotAllowed):
        delete_config(db.session, actor, config)


def test_admin_may_configure_any_company(world):
    configure_companies(db.session, world.users["admin"], [world.globex], SETTINGS)
    assert config_of(world.globex) is not None


# --- pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("username, path, status", [
    ("sales", "/admin/billing_config/", 200),
    ("admin", "/admin/billing_config/", 200),
    ("customer", "/admin/billing_config/", 403),
    ("finance", "/admin/billing_config/", 403),
    ("support", "/admin/billing_config/", 403),
    ("customer", "/admin/account_config/", 200),
    ("north", "/admin/account_config/", 200),
    ("admin", "/admin/account_config/", 200),
    ("sales", "/admin/account_config/", 403),
    ("finance", "/admin/account_config/", 403),
    ("support", "/admin/account_config/", 403),
    ("finance", "/admin/billing_config/configure/?ids=1", 403),
    ("support", "/admin/account_config/configure/?ids=1", 403),
])
def test_page_access(world, client, login, username, path, status):
    login(username)
    assert client.get(path).status_code == status


@pytest.mark.parametrize("username, endpoint", [("finance", "billing_config"), ("support", "account_config")])
def test_other_roles_may_not_post(world, client, login, username, endpoint):
    login(username)
    response = post(client, f"/admin/{endpoint}/configure/",
                    {"ids": world.north.id, "save": "1", **SETTINGS})
    assert response.status_code == 403
    assert config_count() == 0


def test_anonymous_users_are_sent_to_login(world, client):
    response = client.get("/admin/billing_config/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_each_role_sees_its_own_menu_entry(world, client, login):
    login("sales")
    page = client.get("/admin/").get_data(as_text=True)
    assert "/admin/billing_config/" in page and "/admin/account_config/" not in page
    login.logout()
    login("customer")
    page = client.get("/admin/").get_data(as_text=True)
    assert "/admin/account_config/" in page and "/admin/billing_config/" not in page


def test_sales_page_lists_configs_and_inheritance(world, client, login):
    give_config(world.acme, push_emails="acme-billing@example.com")
    db.session.commit()
    login("sales")
    page = client.get(f"/admin/billing_config/?company={world.acme.id}&scope=all").get_data(as_text=True)
    for name in ("Acme Logistics", "Acme North", "Acme North Fleet", "Acme South"):
        assert f"{name}</td>" in page
    assert page.count("Inherited from Acme Logistics") == 3
    assert "acme-billing@example.com" in page
    assert 'name="csrf_token"' in page
    direct = client.get(f"/admin/billing_config/?company={world.north.id}&scope=direct").get_data(as_text=True)
    assert "Acme North Fleet" in direct and "Acme South</td>" not in direct


def test_customer_page_defaults_to_their_company_and_hides_other_tenants(world, client, login):
    login("customer")
    page = client.get("/admin/account_config/").get_data(as_text=True)
    assert "Acme North" in page and "Acme South" in page
    assert "Globex" not in page
    response = client.get(f"/admin/account_config/?company={world.globex.id}", follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "outside your companies" in body and "Globex" not in body


def test_company_names_are_escaped(world, client, login):
    child = make_company("Globex <script>alert(1)</script> Branch", world.globex)
    give_config(world.globex, push_emails="ops@globex.example")
    db.session.commit()
    login("sales")
    page = client.get("/admin/billing_config/?scope=all").get_data(as_text=True)
    assert "<b>Trading</b>" not in page and "<script>alert(1)" not in page
    assert "Globex &lt;b&gt;Trading&lt;/b&gt;" in page
    assert "Inherited from Globex &lt;b&gt;Trading&lt;/b&gt;" in page
    form = client.get(f"/admin/billing_config/configure/?ids={child.id}").get_data(as_text=True)
    assert "<script>alert(1)" not in form and "&lt;script&gt;" in form
    config_id = config_of(world.globex).id
    response = confirm_post(client, "/admin/billing_config/delete/", {"id": config_id}, follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "<b>Trading</b>" not in body and "Globex &lt;b&gt;Trading&lt;/b&gt; deleted" in body


def test_configure_form_prefills_one_companys_effective_config(world, client, login):
    give_config(world.acme, billing_cycle="yearly", push_language="vi", push_emails="acme@example.com")
    db.session.commit()
    login("sales")
    page = client.get(f"/admin/billing_config/configure/?ids={world.fleet.id}").get_data(as_text=True)
    assert re.search(r'<option selected value="yearly"|<option value="yearly" selected', page)
    assert re.search(r'<option selected value="vi"|<option value="vi" selected', page)
    assert "acme@example.com" in page


def test_selecting_companies_opens_the_form_for_all_of_them(world, client, login):
    login("sales")
    response = post(client, "/admin/billing_config/configure/",
                    [("ids", world.north.id), ("ids", world.south.id), ("scope", "all")])
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<li>Acme North</li>" in page and "<li>Acme South</li>" in page
    assert config_count() == 0


def test_selecting_nothing_is_refused(world, client, login):
    login("sales")
    response = post(client, "/admin/billing_config/configure/", {"scope": "direct"}, follow_redirects=True)
    assert "Select at least one company." in response.get_data(as_text=True)


def test_sales_configures_selected_companies_over_http(world, client, login):
    login("sales")
    response = post(client, "/admin/billing_config/configure/", [
        ("ids", world.north.id), ("ids", world.south.id), ("save", "1"),
        ("company", world.acme.id), ("scope", "all"),
        ("billing_cycle", "yearly"), ("auto_renew", "y"), ("push_enabled", "y"),
        ("push_language", "vi"), ("push_emails", "a@example.com, b@example.com"),
    ])
    assert response.status_code == 302
    assert f"company={world.acme.id}" in response.headers["Location"]
    for company in (world.north, world.south):
        config = config_of(company)
        assert (config.billing_cycle, config.auto_renew, config.push_language) == ("yearly", True, "vi")
        assert config.email_list == ["a@example.com", "b@example.com"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Billing config saved for 2 companies." in page
    assert len(audit_events("configure")) == 2


def test_bad_email_over_http_re_renders_the_form_and_saves_nothing(world, client, login):
    login("sales")
    response = post(client, "/admin/billing_config/configure/", {
        "ids": world.north.id, "save": "1", **SETTINGS,
        "push_emails": "ok@example.com\n<i>bad</i>@@example.com"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&lt;i&gt;bad&lt;/i&gt;@@example.com" in page and "<i>bad</i>" not in page
    assert config_count() == 0 and audit_events("configure") == []


def test_configure_without_csrf_token_is_refused(world, client, login):
    login("sales")
    response = client.post("/admin/billing_config/configure/",
                           data={"ids": world.north.id, "save": "1", **SETTINGS})
    assert response.status_code == 400
    assert config_count() == 0


def test_customer_edits_a_subsidiary_over_http(world, client, login):
    login("customer")
    response = post(client, "/admin/account_config/configure/", {
        "ids": world.fleet.id, "save": "1", **SETTINGS})
    assert response.status_code == 302
    assert config_of(world.fleet).billing_cycle == "quarterly"
    response = post(client, "/admin/account_config/configure/", {
        "ids": world.fleet.id, "save": "1", **SETTINGS, "billing_cycle": "monthly"})
    assert response.status_code == 302
    db.session.expire_all()
    assert config_of(world.fleet).billing_cycle == "monthly"
    assert config_count() == 1


def test_customer_posting_another_tenants_company_changes_nothing(world, client, login):
    login("customer")
    response = post(client, "/admin/account_config/configure/", [
        ("ids", world.north.id), ("ids", world.globex.id), ("save", "1"),
        *SETTINGS.items(),
    ], follow_redirects=True)
    body = response.get_data(as_text=True)
    assert f"#{world.globex.id}" in body and "outside your companies" in body
    assert config_count() == 0
    assert audit_events("configure") == []


def test_customer_may_not_delete_another_tenants_config(world, client, login):
    config = give_config(world.globex)
    db.session.commit()
    login("customer")
    response = post(client, "/admin/account_config/delete/", {"id": config.id}, follow_redirects=True)
    assert "outside your companies" in response.get_data(as_text=True)
    assert config_of(world.globex) is not None
    assert audit_events("delete") == []


def test_delete_over_http_inherits_again(world, client, login):
    give_config(world.acme)
    north_config = give_config(world.north)
    db.session.commit()
    login("customer")
    response = confirm_post(client, "/admin/account_config/delete/", {"id": north_config.id}, follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "Billing config of Acme North deleted; it now inherits from Acme Logistics." in body
    assert config_of(world.north) is None
    assert len(audit_events("delete")) == 1


def test_odd_ids_are_refused_not_crashed_on(world, client, login):
    login("sales")
    assert client.get("/admin/billing_config/?company=%C2%B2").status_code == 200
    response = post(client, "/admin/billing_config/delete/", {"id": "²"}, follow_redirects=True)
    assert "not found or outside your companies" in response.get_data(as_text=True)
    response = post(client, "/admin/billing_config/configure/", {"ids": "99999999999999999999"},
                    follow_redirects=True)
    assert "outside your companies" in response.get_data(as_text=True)


def test_delete_is_post_only(world, client, login):
    config = give_config(world.north)
    db.session.commit()
    login("sales")
    assert client.get(f"/admin/billing_config/delete/?id={config.id}").status_code == 405
    assert config_of(world.north) is not None
