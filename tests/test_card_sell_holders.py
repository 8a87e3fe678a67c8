"""销售 (sell cards): the "Shipped by" list follows the chosen distributor. actions.card_orders.valid_holders is
both what the form offers and what check_holder accepts (the platform, the seller's upstream distributors and the
seller itself); /admin/cardorder/place/holders/ answers it for one seller of the user's, as JSON."""
from __future__ import annotations

import re

import pytest

from actions import DomainError
from actions.card_orders import check_holder, sellers_in_scope, valid_holder_keys, valid_holders
from actions.cards import PLATFORM, review_verification, submit_verification
from conftest import make_company, make_user, post
from models import db

pytest_plugins = ("card_fixtures",)

HOLDERS = "/admin/cardorder/place/holders/"
PLACE = "/admin/cardorder/place/"


@pytest.fixture
def tree(cards, vault):
    """Under A: B (from card_fixtures) and its sibling C, both verified; a stranger distributor outside A's tree."""
    admin = cards["users"]["admin"]
    sibling = make_company("Distributor C", cards["a"])
    stranger = make_company("Stranger <b>Cards</b>")
    for company, username in ((sibling, "c_admin"), (stranger, "s_admin")):
        user = make_user(username, "customer_admin", company)
        profile = submit_verification(db.session, user, vault, company, legal_name=company.name,
                                      id_type="resident_id", id_number="110101199003074512")
        review_verification(db.session, admin, profile, approve=True)
    db.session.commit()
    return {**cards, "c": sibling, "stranger": stranger}


def _options(page: str, select_id: str) -> list[tuple[str, str]]:
    select = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', page, re.S).group(1)
    return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select)


def test_valid_holders_are_the_platform_the_upstream_distributors_and_the_seller(tree):
    a, b = tree["a"], tree["b"]
    assert valid_holder_keys(a) == [PLATFORM, a.id]
    assert valid_holder_keys(b) == [PLATFORM, a.id, b.id]
    named = valid_holders(db.session, b)
    assert [key for key, _name in named] == [PLATFORM, a.id, b.id]
    assert [name for _key, name in named][1:] == ["Distributor A", "Distributor B"]


@pytest.mark.parametrize("holder", ["platform", "own", "ancestor"])
def test_check_holder_accepts_every_listed_holder(tree, holder):
    a, b = tree["a"], tree["b"]
    check_holder(db.session, b, {"platform": PLATFORM, "own": b.id, "ancestor": a.id}[holder])


@pytest.mark.parametrize("holder", ["sibling", "child", "stranger", "missing"])
def test_check_holder_refuses_what_the_list_does_not_offer(tree, holder):
    a, b = tree["a"], tree["b"]
    seller = a if holder == "child" else b
    key = {"sibling": tree["c"].id, "child": b.id, "stranger": tree["stranger"].id, "missing": 999_999}[holder]
    assert key not in valid_holder_keys(seller)
    with pytest.raises(DomainError):
        check_holder(db.session, seller, key)


def test_sellers_are_the_verified_distributors_of_the_users_tree(tree):
    users = tree["users"]
    assert [c.name for c in sellers_in_scope(db.session, users["a_admin"])] == [
        "Distributor A", "Distributor B", "Distributor C"]
    assert [c.name for c in sellers_in_scope(db.session, users["b_admin"])] == ["Distributor B"]
    assert len(sellers_in_scope(db.session, users["admin"])) == 4


def test_holders_endpoint_answers_the_valid_holders_of_a_seller_as_json(tree, client, login):
    login("a_admin")
    answer = client.get(HOLDERS, query_string={"seller_id": tree["b"].id})
    assert answer.status_code == 200 and answer.is_json
    assert answer.json == {"seller_id": tree["b"].id, "holders": [
        {"id": PLATFORM, "name": "Platform warehouse"}, {"id": tree["a"].id, "name": "Distributor A"},
        {"id": tree["b"].id, "name": "Distributor B"}]}


@pytest.mark.parametrize("seller", ["parent", "sibling", "stranger", "missing", "blank"])
def test_holders_endpoint_answers_404_for_a_seller_outside_the_users_tree(tree, client, login, seller):
    login("b_admin")
    seller_id = {"parent": tree["a"].id, "sibling": tree["c"].id, "stranger": tree["stranger"].id,
                 "missing": 999_999, "blank": ""}[seller]
    assert client.get(HOLDERS, query_string={"seller_id": seller_id}).status_code == 404


def test_holders_endpoint_has_no_seller_for_roles_that_do_not_sell(tree, client, login):
    """Finance may open the order list but sells nothing: no seller of theirs, 404 (403 is for roles the view
    does not list: tests/security/test_hostile_url_roles.py)."""
    login("finance")
    assert client.get(HOLDERS, query_string={"seller_id": tree["b"].id}).status_code == 404


def test_holders_endpoint_sends_names_as_text(tree, client, login):
    """A company named with markup comes back as the same characters, in a JSON string (the page sets it as an
    option's text), and the answer is JSON, not HTML."""
    login("admin")
    answer = client.get(HOLDERS, query_string={"seller_id": tree["stranger"].id})
    assert answer.mimetype == "application/json"
    assert answer.json["holders"][-1] == {"id": tree["stranger"].id, "name": "Stranger <b>Cards</b>"}


def test_sell_form_lists_the_holders_of_the_first_seller_and_of_the_one_sent_back(tree, client, login):
    login("a_admin")
    page = client.get(PLACE).get_data(as_text=True)
    assert _options(page, "holder") == [("0", "Platform warehouse"), (str(tree["a"].id), "Distributor A")]
    assert 'holders-follow-seller.js' in page and 'data-url="/admin/cardorder/place/holders/"' in page
    # Refused (no stock): the form comes back on seller C, its holders listed and C still chosen.
    answer = post(client, PLACE, {"seller_id": str(tree["c"].id), "package_id": str(tree["package"].id),
                                  "quantity": "1", "holder": str(tree["a"].id)}, follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert [name for _id, name in _options(page, "holder")] == ["Platform warehouse", "Distributor A",
                                                                "Distributor C"]
    assert re.search(rf'<option value="{tree["c"].id}" selected>Distributor C</option>', page)
    assert re.search(rf'<option value="{tree["a"].id}" selected>Distributor A</option>',
                     page.split('id="holder"', 1)[1])


def test_sell_form_escapes_a_holders_name(tree, client, login):
    login("admin")
    page = client.get(PLACE, query_string={"seller_id": tree["stranger"].id}).get_data(as_text=True)
    assert "Stranger &lt;b&gt;Cards&lt;/b&gt;" in page and "<b>Cards</b>" not in page
