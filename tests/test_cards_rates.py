"""分销设置 by a distributor (seed 002 六.2): the share it passes to each direct sub-distributor, never above its
own rate; scope (direct sub-distributors only, never its own rule, never another tree); the platform's override;
lowered rates capping the shares below them; deletions refused while shares depend on a rule; the settlement
split (the share comes out of the parent's rate, totals exact); the audit; the page in Chinese and Vietnamese."""
from __future__ import annotations

import re
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from actions import DomainError, NotAllowed
from actions.cards import review_verification, submit_verification
from actions.distribution import (
    check_rule_deletable, delete_rule, find_rule, record_sale, save_rule, save_share,
)

from conftest import confirm_post, make_company, make_user, post
from models import AuditEvent, CommissionEntry, CommissionRule, Order, db
from test_no_english import PATTERN, VisibleText

pytest_plugins = ("card_fixtures",)
PAGE = "/admin/commissionrule/"
ID_NUMBER = "110101199003074512"


def _distributor(vault, admin, name, parent=None, username=None):
    company = make_company(name, parent)
    user = make_user(username or name.lower().replace(" ", "_"), "customer_admin", company)
    profile = submit_verification(db.session, user, vault, company, legal_name=f"{name} Ltd", id_type="resident_id",
                                  id_number=ID_NUMBER)
    review_verification(db.session, admin, profile, approve=True)
    return company, user


@pytest.fixture
def tree(cards, vault):
    """A (10% on every plan, 12% on SIM-39, set by the platform) → B → D; C in another tree."""
    users = cards["users"]
    d, d_user = _distributor(vault, users["admin"], "Distributor D", cards["b"], "d_admin")
    c, c_user = _distributor(vault, users["admin"], "Distributor C", None, "c_admin")
    save_rule(db.session, users["finance"], cards["a"], None, mode="override", kind="percent", level1_percent="10",
              hold_days=5)
    save_rule(db.session, users["finance"], cards["a"], cards["package"].id, mode="override", kind="percent",
              level1_percent="12")
    db.session.commit()
    return {**cards, "c": c, "d": d, "users": {**users, "c_admin": c_user, "d_admin": d_user}}


def _rules(company):
    return {r.package_id: r.level1_rate_bp for r in db.session.scalars(
        select(CommissionRule).where(CommissionRule.company_id == company.id))}


def test_a_share_up_to_its_own_rate_is_saved_and_above_it_refused_naming_the_package_and_ceiling(tree):
    a_admin, b, package = tree["users"]["a_admin"], tree["b"], tree["package"]
    rule = save_share(db.session, a_admin, b, package.id, "12")
    assert (rule.mode, rule.kind, rule.level1_rate_bp, rule.set_by_distributor_id, rule.set_by_user_id) == (
        "split", "percent", 1200, tree["a"].id, a_admin.id)
    with pytest.raises(DomainError, match=r"SIM-39: the share 12\.5% is above your own rate 12%"):
        save_share(db.session, a_admin, b, package.id, "12.5")
    # For every plan, the lowest of its rates is the ceiling (its every-plan rule's 10%), named.
    with pytest.raises(DomainError, match=r"the share 11% is above your own rate 10% \(your rule for Every plan\)"):
        save_share(db.session, a_admin, b, None, "11")
    save_share(db.session, a_admin, b, None, "7.5")
    save_share(db.session, a_admin, b, None, "7")  # changed, not a second rule
    db.session.commit()
    assert _rules(b) == {package.id: 1200, None: 700}


def test_no_share_where_the_distributor_has_no_percent_rate(tree):
    """B has no rate of its own: it has nothing to pass to D."""
    with pytest.raises(DomainError, match="no commission rate in percent"):
        save_share(db.session, tree["users"]["b_admin"], tree["d"], None, "1")


@pytest.mark.parametrize("who, target, refusal", [
    ("a_admin", "d", "not one of your direct sub-distributors"),  # a grandchild
    ("a_admin", "a", "Your own rate is set by the platform"),
    ("b_admin", "a", "not one of your direct sub-distributors"),  # its parent
    ("c_admin", "b", "not one of your direct sub-distributors"),  # another tree
    ("finance", "b", "Your role may not do this"),  # the platform uses save_rule
])
def test_only_direct_sub_distributors_shares_can_be_set(tree, who, target, refusal):
    with pytest.raises(NotAllowed, match=refusal):
        save_share(db.session, tree["users"][who], tree[target], None, "1")
    assert _rules(tree[target]) == ({None: 1000, tree["package"].id: 1200} if target == "a" else {})


def test_the_platform_overrides_a_share_and_then_it_stays_the_platforms(tree):
    users, b, package = tree["users"], tree["b"], tree["package"]
    save_share(db.session, users["a_admin"], b, package.id, "5")
    rule = save_rule(db.session, users["finance"], b, package.id, mode="split", kind="percent", level1_percent="9",
                     level2_percent="12")
    assert (rule.level1_rate_bp, rule.set_by_distributor_id, rule.set_by_user_id) == (900, None, users["finance"].id)
    with pytest.raises(NotAllowed, match="The platform set the rate of Distributor B for SIM-39"):
        save_share(db.session, users["a_admin"], b, package.id, "4")
    with pytest.raises(NotAllowed, match="The platform set the rate"):
        delete_rule(db.session, users["a_admin"], rule)
    assert db.session.scalar(select(CommissionRule.id).where(CommissionRule.id == rule.id)) == rule.id


def test_lowering_a_distributors_rate_caps_the_shares_below_it_down_the_tree_and_audits_them(tree):
    """Decision (actions.distribution.cap_shares): the lowering is the platform's (or the parent's) and stands;
    shares above the new rate are capped to it, each audited, and so on down the tree."""
    users, a, b, d, package = tree["users"], tree["a"], tree["b"], tree["d"], tree["package"]
    save_share(db.session, users["a_admin"], b, None, "9")
    save_share(db.session, users["a_admin"], b, package.id, "11")
    save_share(db.session, users["b_admin"], d, None, "8")
    save_rule(db.session, users["finance"], a, package.id, mode="override", kind="percent", level1_percent="6")
    db.session.commit()
    # B's every-plan share is capped at A's lowest rate now (SIM-39's 6%), its SIM-39 share too; D's at B's 6%.
    assert _rules(b) == {None: 600, package.id: 600}
    assert _rules(d) == {None: 600}
    capped = [e.summary_data for e in db.session.scalars(select(AuditEvent).where(
        AuditEvent.model == "commission_rule", AuditEvent.action == "edit").order_by(AuditEvent.id))]
    olds = sorted((c["params"]["company"], c["params"]["old"]["basis_points"]) for c in capped)
    assert olds == [("Distributor B", 900), ("Distributor B", 1100), ("Distributor D", 800)]
    assert all(c["key"] == "audit.commission_rule.capped" and c["params"]["new"] == {"basis_points": 600}
               for c in capped)


def test_a_rule_shares_depend_on_cannot_be_deleted_and_the_refusal_names_them(tree):
    users, a, b, package = tree["users"], tree["a"], tree["b"], tree["package"]
    share = save_share(db.session, users["a_admin"], b, package.id, "5")
    own = find_rule(db.session, a.id, package.id)
    with pytest.raises(DomainError, match=r"depend on it: Distributor B \(SIM-39\)"):
        check_rule_deletable(db.session, own)
    with pytest.raises(DomainError, match=r"Distributor B \(SIM-39\)"):
        delete_rule(db.session, users["finance"], own)
    every = find_rule(db.session, a.id, None)
    check_rule_deletable(db.session, every)  # B's SIM-39 share rests on A's SIM-39 rule, not this one
    delete_rule(db.session, users["a_admin"], share)
    delete_rule(db.session, users["finance"], own)
    db.session.commit()
    assert _rules(a) == {None: 1000} and _rules(b) == {}
    deleted = db.session.scalars(select(AuditEvent.summary_data).where(AuditEvent.action == "delete")
                                 .order_by(AuditEvent.id)).all()
    assert [(d["key"], d["params"]["company"], d["params"]["old"]) for d in deleted] == [
        ("audit.commission_rule.delete", "Distributor B", {"basis_points": 500}),
        ("audit.commission_rule.delete", "Distributor A", {"basis_points": 1200})]


def test_every_change_is_audited_with_its_old_and_new_rate(tree):
    users, b = tree["users"], tree["b"]
    rule = save_share(db.session, users["a_admin"], b, None, "4")
    save_share(db.session, users["a_admin"], b, None, "6.5")
    db.session.commit()
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.model == "commission_rule",
                                                         AuditEvent.ids == f",{rule.id},")
                                .order_by(AuditEvent.id)).all()
    assert [(e.actor_name, e.summary_data["key"], e.summary_data["params"]["old"], e.summary_data["params"]["new"])
            for e in events] == [
        ("a_admin", "audit.commission_rule.share", {"basis_points": None}, {"basis_points": 400}),
        ("a_admin", "audit.commission_rule.share", {"basis_points": 400}, {"basis_points": 650})]
    assert events[-1].summary == "Distributor B, Every plan: share passed down by Distributor A 4% → 6.5%"
    platform = db.session.scalars(select(AuditEvent.summary).where(AuditEvent.actor_name == "finance")
                                  .order_by(AuditEvent.id)).all()
    assert platform[0] == ("Distributor A, Every plan: Override (platform sets both levels), Percent of net paid, "
                           "rate — → 10%")


def _order(company, number):
    order = Order(number=number, kind="card_sale", status="paid", company_id=company.id, currency="CNY",
                  total=D("0.00"))
    db.session.add(order)
    db.session.flush()
    return order


@pytest.mark.parametrize("base, a_rate, share, b_amount, a_amount", [
    ("370.50", "10", "7", D("25.94"), D("11.11")),  # 37.05 in all: 25.935 rounds up, A keeps the rest
    ("0.50", "2", "1", D("0.01"), None),  # 0.01 in all: two roundings apart would have paid 0.02
    ("100.00", "12", "12", D("12.00"), None),  # the whole rate passed down: A keeps nothing
])
def test_a_sub_distributors_sale_pays_its_share_out_of_its_parents_rate_exactly(tree, base, a_rate, share,
                                                                                   b_amount, a_amount):
    users, a, b, package = tree["users"], tree["a"], tree["b"], tree["package"]
    save_rule(db.session, users["finance"], a, package.id, mode="override", kind="percent", level1_percent=a_rate)
    save_share(db.session, users["a_admin"], b, package.id, share)
    entries = record_sale(db.session, order_id=_order(b, "CS-1").id, seller_id=b.id, package_id=package.id, cards=10,
                          base=D(base), currency="CNY", month="2026-12")
    amounts = {(e.company_id, e.level): D(e.amount_minor) / 100 for e in entries}
    assert amounts.get((b.id, 1)) == b_amount and amounts.get((a.id, 2)) == a_amount
    whole = (D(base) * D(a_rate) / 100).quantize(D("0.01"), rounding="ROUND_HALF_UP")
    assert sum(amounts.values()) == whole
    # A's own sale still earns its whole rate, on one level.
    own = record_sale(db.session, order_id=_order(a, "CS-2").id, seller_id=a.id, package_id=package.id, cards=1,
                      base=D(base), currency="CNY", month="2026-12")
    assert [(e.company_id, e.level, D(e.amount_minor) / 100) for e in own] == [(a.id, 1, whole)]


def test_a_sale_reads_the_parents_rate_at_the_time_of_the_sale(tree):
    """A's every-plan rate for SIM-40 (no rule of its own there) is 10%; B's every-plan share 7% is capped at A's
    lowest rate, and at sale time B's share never exceeds A's rate on the package sold."""
    users, a, b, package = tree["users"], tree["a"], tree["b"], tree["package"]
    save_share(db.session, users["a_admin"], b, None, "7")
    save_rule(db.session, users["finance"], a, package.id, mode="override", kind="percent", level1_percent="8")
    entries = record_sale(db.session, order_id=_order(b, "CS-3").id, seller_id=b.id, package_id=package.id, cards=1,
                          base=D("100.00"), currency="CNY", month="2026-12")
    assert sorted((e.level, e.rate_bp, e.amount_minor) for e in entries) == [(1, 700, 700), (2, 100, 100)]
    assert db.session.scalar(select(CommissionEntry.id).where(CommissionEntry.company_id == tree["c"].id)) is None


# --- the page ------------------------------------------------------------------------------------------------


def _visible(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
def test_the_distributors_page_shows_its_rate_and_its_sub_distributors_shares_in_its_language(tree, client, login,
                                                                                             locale):
    users, b = tree["users"], tree["b"]
    save_share(db.session, users["a_admin"], b, tree["package"].id, "5")
    users["a_admin"].locale = locale
    db.session.commit()
    login("a_admin")
    page = client.get(PAGE).get_data(as_text=True)
    own = page[page.index('id="rd-own-rates"'):page.index('id="rd-shares"')]
    assert "10%" in own and "12%" in own
    row = re.search(r'<tr class="rd-share" data-company="%d" data-package="%d">(.*?)</tr>'
                    % (b.id, tree["package"].id), page, re.S).group(1)
    assert "5%" in row and "7%" in row  # its share, and what A keeps of its SIM-39 sales (12% − 5%)
    assert "rd-edit-share" in row and "rd-delete-share" in row
    assert 'id="rd-set-share"' in page and "/admin/commissionrule/set/" not in page
    text = _visible(page)
    assert not PATTERN.findall(text), PATTERN.findall(text)
    form = client.get(f"{PAGE}share/?company_id={b.id}&package_id={tree['package'].id}").get_data(as_text=True)
    assert 'name="share" value="5"' in form
    assert not PATTERN.findall(_visible(form)), PATTERN.findall(_visible(form))


def test_the_form_saves_a_share_and_keeps_what_was_typed_on_refusal(tree, client, login):
    users, b, package = tree["users"], tree["b"], tree["package"]
    users["a_admin"].locale = "vi"
    db.session.commit()
    login("a_admin")
    saved = post(client, f"{PAGE}share/", {"company_id": str(b.id), "package_id": str(package.id), "share": "7,5"})
    assert saved.status_code == 302
    assert _rules(b) == {package.id: 750}
    refused = post(client, f"{PAGE}share/", {"company_id": str(b.id), "package_id": "", "share": "10,5"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 200 and 'name="share" value="10,5"' in page and "10,5%" in page
    assert _rules(b) == {package.id: 750}
    grandchild = post(client, f"{PAGE}share/", {"company_id": str(tree["d"].id), "package_id": "", "share": "1"})
    assert grandchild.status_code == 200 and "Distributor D" in grandchild.get_data(as_text=True)
    assert _rules(tree["d"]) == {}
    rule = find_rule(db.session, b.id, package.id)
    done = confirm_post(client, f"{PAGE}share/delete/", {"id": str(rule.id)})
    assert done.status_code == 302
    assert _rules(b) == {}


def test_another_trees_distributor_gets_404_on_the_page_and_the_posts(tree, client, login):
    users, b = tree["users"], tree["b"]
    rule = save_share(db.session, users["a_admin"], b, None, "5")
    db.session.commit()
    login("c_admin")
    assert client.get(f"{PAGE}share/?company_id={b.id}").status_code == 404
    assert post(client, f"{PAGE}share/", {"company_id": str(b.id), "package_id": "", "share": "1"}).status_code == 404
    assert post(client, f"{PAGE}share/delete/", {"id": str(rule.id)}).status_code == 404
    assert client.get(f"{PAGE}details/?id={rule.id}").status_code in (302, 404)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Distributor B" not in page
    assert _rules(b) == {None: 500}


def test_the_platforms_list_shows_who_set_each_rule_and_refuses_deleting_a_rule_shares_depend_on(tree, client,
                                                                                                  login):
    users, a, b = tree["users"], tree["a"], tree["b"]
    save_share(db.session, users["a_admin"], b, None, "5")
    db.session.commit()
    login("finance")
    page = client.get(PAGE).get_data(as_text=True)
    cells = re.findall(r'<td class="col-set_by">\s*(.*?)\s*</td>', page, re.S)
    assert sorted(cells) == ["Distributor A (a_admin)", "Platform (finance)", "Platform (finance)"]
    every = find_rule(db.session, a.id, None)
    answer = confirm_post(client, f"{PAGE}delete/", {"id": str(every.id)}, follow_redirects=True)
    assert "Distributor B (Every plan)" in answer.get_data(as_text=True)
    assert find_rule(db.session, a.id, None) is not None
