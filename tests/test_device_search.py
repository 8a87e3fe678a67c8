"""Device search finds a substring of the number or name in any case: in the device list, the
batch-suspend paste (numbers in any case) and the renewal center."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from actions.devices import plan_status_change, search_clause
from models import Device, db
from tests.conftest import confirm_post, make_device

TODAY = date.today()


@pytest.fixture
def trackers(world):
    """GT00000337 "GPS tracker 337" and neighbours at Acme; GT00001337 at Globex."""
    made = {}
    for number, name, company in (
        ("GT00000337", "GPS tracker 337", world.acme),
        ("GT00000338", "OBD dongle 338", world.north),
        ("GT00003370", "Asset tag 3370", world.acme),
        ("GT00000999", "Asset tag 999", world.acme),
        ("GT00001337", "GPS tracker 1337", world.globex),
    ):
        device = make_device(number, company, expires_on=TODAY + timedelta(days=5), package=world.packages["GPS-Y"])
        device.name = name
        made[number] = device
    db.session.commit()
    return made


def numbers_in(body: str) -> set[str]:
    return set(re.findall(r'<td class="col-number">\s*([^<\s]+)\s*</td>', body))


def found(term: str) -> set[str]:
    clause = search_clause(db.session, term)
    return set(db.session.scalars(select(Device.number).where(clause)))


def test_search_clause_finds_substrings_in_any_case(trackers):
    assert found("337") == {"GT00000337", "GT00003370", "GT00001337"}
    assert found("gt00000337") == {"GT00000337"}
    assert found("TRACKER") == {"GT00000337", "GT00001337"}
    assert found("dongle 33") == {"GT00000338"}
    assert found("37") >= {"GT00000337", "GT00003370", "GT00001337"}  # short: the LIKE fallback
    assert found("tag 99") == {"GT00000999"}
    assert search_clause(db.session, "   ") is None


def test_broad_terms_give_the_same_devices(trackers, monkeypatch):
    """Past _FEW matches the search stays a condition instead of a list of ids: same devices."""
    import actions.devices

    monkeypatch.setattr(actions.devices, "_FEW", 1)
    assert found("337") == {"GT00000337", "GT00003370", "GT00001337"}
    assert found("gt00000337") == {"GT00000337"}
    assert found("TRACKER") == {"GT00000337", "GT00001337"}


@pytest.mark.parametrize("term", ['"', '"337', "%", "_", "3%7", "a\\b", "NEAR(", "337 OR 999", "*"])
def test_search_terms_are_text_not_syntax(trackers, term):
    """Quotes, FTS operators and LIKE wildcards are searched for literally."""
    assert found(term) == set()


def test_search_follows_renames(trackers):
    device = trackers["GT00000999"]
    device.name = "Forklift"
    device.number = "FK-0001"
    db.session.commit()
    assert found("forkl") == {"FK-0001"}
    assert found("fk-00") == {"FK-0001"}
    assert found("tag 999") == set()
    db.session.delete(device)
    db.session.commit()
    assert found("forkl") == set()


def test_device_list_search_finds_substrings_within_scope(trackers, client, login):
    login("support")
    assert numbers_in(client.get("/admin/device/?search=337").get_data(as_text=True)) == {
        "GT00000337", "GT00003370", "GT00001337"}
    assert numbers_in(client.get("/admin/device/?search=gt00000337").get_data(as_text=True)) == {"GT00000337"}
    assert numbers_in(client.get("/admin/device/?search=tracker").get_data(as_text=True)) == {
        "GT00000337", "GT00001337"}
    login.logout()
    login("customer")  # Acme's administrator: Globex's GT00001337 stays out
    assert numbers_in(client.get("/admin/device/?search=337").get_data(as_text=True)) == {"GT00000337",
                                                                                          "GT00003370"}
    assert numbers_in(client.get("/admin/device/?search=Tracker").get_data(as_text=True)) == {"GT00000337"}


def test_batch_paste_accepts_numbers_in_any_case(world, trackers):
    plan = plan_status_change(db.session, world.users["support"], ["gt00000337", "Gt00003370", "GT00000338",
                                                                   "GT00000337", "nope"], "suspend")
    assert sorted(plan.ids) == sorted(trackers[n].id for n in ("GT00000337", "GT00003370", "GT00000338"))
    assert dict(plan.refused) == {"GT00000337": "listed twice",
                                  "nope": "unknown device number or not one of your devices"}


def test_batch_paste_lower_case_suspends_and_stays_in_scope(world, trackers, client, login):
    login("customer")
    response = confirm_post(client, "/admin/device_batch/", {"numbers": "gt00000337\ngt00001337",
                                                             "operation": "suspend", "confirm": "1"},
                            follow_redirects=True)
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Device, trackers["GT00000337"].id).status == "suspended"
    assert db.session.get(Device, trackers["GT00001337"].id).status == "active"  # Globex's: unknown to Acme


def test_renewal_center_searches_devices(world, trackers, client, login):
    login("customer")
    body = client.get(f"/admin/renewal_center/?company_id={world.acme.id}&window=all&q=337").get_data(as_text=True)
    assert set(re.findall(r'data-number="([^"]+)"', body)) == {"GT00000337", "GT00003370"}
    body = client.get(f"/admin/renewal_center/?company_id={world.acme.id}&window=all&q=TRACK").get_data(as_text=True)
    assert set(re.findall(r'data-number="([^"]+)"', body)) == {"GT00000337"}
    assert 'value="TRACK"' in body  # the term stays in the form (and in the renew form's hidden field)
