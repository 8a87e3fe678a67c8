"""Device type and province/city are chosen from lists, not typed: the province → city lists shipped with
the app (China, and Vietnam's provinces), checked by the server (a city must belong to its province),
old values off the lists kept while unchanged; the device-type list technical support maintains, used
by bind-by-type and the device filter."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from actions import DomainError
from actions.device_types import check_device_type, device_type_names
from actions.regions import RegionError, check_region, cities_of, regions
from actions.tenants import InvalidField, update_profile
from conftest import confirm_post, make_device, post
from models import AuditEvent, Company, DeviceType, db

PROFILE = "/admin/company_profile/"
TYPES = "/admin/devicetype/"
ADMIN_FIELDS = {"full_name": "Chen", "email": "chen@acme.example", "user_phone": "021-7654321"}


@pytest.fixture
def in_request(app):
    with app.test_request_context():
        yield


# --- the lists ---------------------------------------------------------------------------------------

def test_the_lists_cover_china_and_vietnam():
    data = regions()
    assert len(data["CN"]) == 34 and len(data["VN"]) == 34
    assert "深圳市" in cities_of("广东省") and "苏州市" in cities_of("江苏省")
    assert cities_of("北京市") == ("北京市",) and cities_of("Hà Nội") == ()
    names = [p["name"] for country in data.values() for p in country]
    assert len(names) == len(set(names))  # a province name says which country too


@pytest.mark.parametrize("province, city, stored", [
    ("广东省", "深圳市", ("广东省", "深圳市")),
    (" 浙江省 ", "杭州市 ", ("浙江省", "杭州市")),
    ("上海市", "", ("上海市", "上海市")),  # a municipality is its own city
    ("Hồ Chí Minh", "", ("Hồ Chí Minh", None)),
    ("", "", (None, None)),
])
def test_a_province_and_a_city_of_it_are_accepted(in_request, province, city, stored):
    assert check_region(province, city) == stored


@pytest.mark.parametrize("province, city, field", [
    ("广东省", "杭州市", "city"),  # a city of another province
    ("广东省", "", "city"),  # a province with many cities needs one
    ("Guangdong", "", "province"),
    ("", "深圳市", "province"),
    ("Hà Nội", "Hà Nội", "city"),  # Vietnamese provinces have no city level
    ("<script>alert(1)</script>", "", "province"),
])
def test_a_city_must_belong_to_its_province(in_request, province, city, field):
    with pytest.raises(RegionError) as refused:
        check_region(province, city)
    assert refused.value.field == field


def test_old_values_off_the_list_stay_while_unchanged(in_request):
    assert check_region("Shanghai", "Pudong", keep=("Shanghai", "Pudong")) == ("Shanghai", "Pudong")
    with pytest.raises(RegionError):
        check_region("Shanghai", "Minhang", keep=("Shanghai", "Pudong"))


# --- the company profile ----------------------------------------------------------------------------

def test_profile_refuses_a_city_of_another_province_and_changes_nothing(in_request, world):
    with pytest.raises(InvalidField) as refused:
        update_profile(db.session, world.users["customer"], province="广东省", city="杭州市", **ADMIN_FIELDS)
    assert refused.value.field == "city" and "杭州市" in str(refused.value)
    db.session.rollback()
    assert db.session.get(Company, world.acme.id).province is None
    update_profile(db.session, world.users["customer"], province="广东省", city="深圳市", **ADMIN_FIELDS)
    db.session.commit()
    assert (world.acme.province, world.acme.city) == ("广东省", "深圳市")


def test_profile_page_offers_dependent_selects_in_chinese(app, client, login, world):
    db.session.get(Company, world.acme.id).province = "广东省"
    db.session.get(Company, world.acme.id).city = "深圳市"
    world.users["customer"].locale = "zh_Hans_CN"
    db.session.commit()
    login("customer")
    page = client.get(PROFILE).get_data(as_text=True)
    assert '<select class="form-control" id="province" name="province">' in page
    assert '<optgroup label="中国">' in page and '<optgroup label="越南">' in page
    assert '<option selected value="广东省">' in page and '<option selected value="深圳市">' in page
    assert '<option value="杭州市">' not in page  # only the chosen province's cities are drawn
    data = json.loads(page.split('id="rd-regions">', 1)[1].split("</script>", 1)[0])
    assert "杭州市" in next(p["cities"] for p in data["CN"] if p["name"] == "浙江省")
    assert "renewdesk/regions.js" in page


def test_profile_page_refuses_a_wrong_city_under_its_field(app, client, login, world):
    login("customer")
    answer = post(client, PROFILE, {"province": "广东省", "city": "杭州市", **ADMIN_FIELDS})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "invalid-feedback" in page and "is not in 广东省" in page
    assert db.session.get(Company, world.acme.id).city is None
    answer = post(client, PROFILE, {"province": "江苏省", "city": "苏州市", **ADMIN_FIELDS})
    assert answer.status_code == 302
    db.session.expire_all()
    assert (db.session.get(Company, world.acme.id).province, db.session.get(Company, world.acme.id).city) == (
        "江苏省", "苏州市")


def test_a_legacy_address_is_still_shown_and_saved_unchanged(app, client, login, world):
    company = db.session.get(Company, world.acme.id)
    company.province, company.city = "Shanghai", "Pudong"
    db.session.commit()
    login("customer")
    page = client.get(PROFILE).get_data(as_text=True)
    assert '<option selected value="Shanghai">' in page and '<option selected value="Pudong">' in page
    answer = post(client, PROFILE, {"province": "Shanghai", "city": "Pudong", "phone": "021-1234567",
                                    **ADMIN_FIELDS})
    assert answer.status_code == 302
    db.session.expire_all()
    company = db.session.get(Company, world.acme.id)
    assert (company.province, company.city, company.phone) == ("Shanghai", "Pudong", "021-1234567")


# --- device types -------------------------------------------------------------------------------------

def test_device_type_names_are_checked(in_request, world):
    db.session.add(DeviceType(name="GPS tracker"))
    db.session.flush()
    for name, message in (("", "required"), ("x" * 41, "at most"), ("a\nb", "line breaks"),
                          (" GPS tracker ", "already on the list")):
        with pytest.raises(DomainError) as refused:
            check_device_type(db.session, DeviceType(name=name))
        assert message in str(refused.value)


def test_the_choices_are_the_list_then_the_values_devices_carry(in_request, world):
    db.session.add_all([DeviceType(name="车载定位器", sort_order=1), DeviceType(name="OBD", sort_order=0),
                        DeviceType(name="停用类型", active=False)])
    make_device("GX9999", world.globex, device_type="Globex-only")
    db.session.flush()
    assert device_type_names(db.session) == ["OBD", "车载定位器", "GPS tracker", "Globex-only"]
    acme_only = device_type_names(db.session, world.acme.subtree_ids())
    assert "Globex-only" not in acme_only and "停用类型" not in acme_only


def test_tech_support_maintains_the_list(app, client, login, world):
    login("support")
    answer = post(client, TYPES + "new/", {"name": "车载定位器", "active": "y", "sort_order": "1"})
    assert answer.status_code == 302
    assert db.session.scalar(select(DeviceType.name)) == "车载定位器"
    again = post(client, TYPES + "new/", {"name": "车载定位器", "active": "y", "sort_order": "2"})
    assert again.status_code == 200 and "车载定位器" in again.get_data(as_text=True)  # the form again, with its error
    assert len(db.session.scalars(select(DeviceType)).all()) == 1
    assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.model == "device_type"))


def test_a_type_in_use_is_taken_off_the_list_not_deleted(app, client, login, world):
    row = DeviceType(name="GPS tracker")
    db.session.add(row)
    db.session.commit()
    login("support")
    page = confirm_post(client, TYPES + "delete/", {"id": str(row.id)}, follow_redirects=True).get_data(as_text=True)
    assert "used by 10 devices" in page
    assert db.session.get(DeviceType, row.id) is not None


@pytest.mark.parametrize("user", ["customer", "finance", "sales"])
def test_only_tech_support_edits_device_types(app, client, login, world, user):
    login(user)
    assert client.get(TYPES).status_code == 403
    assert post(client, TYPES + "new/", {"name": "X"}).status_code == 403
    assert db.session.scalar(select(DeviceType.id)) is None


def test_bind_by_type_chooses_from_a_select(app, client, login, world):
    db.session.add(DeviceType(name="车载定位器"))
    db.session.commit()
    login("support")
    page = client.get("/admin/device_package/bind-type/").get_data(as_text=True)
    assert '<select class="form-control" id="rd-type" name="device_type" required>' in page
    assert '<option value="车载定位器">' in page and '<option value="GPS tracker">' in page
    assert "datalist" not in page


def test_device_filter_offers_the_types_of_the_users_own_devices(app, client, login, world):
    db.session.add(DeviceType(name="车载定位器"))
    make_device("GX9999", world.globex, device_type="Globex-only")
    db.session.commit()
    login("customer")
    page = client.get("/admin/device/").get_data(as_text=True)
    groups = json.loads(page.split('id="filter-groups-data"', 1)[1].split(">", 1)[1].split("</div>", 1)[0]
                        .replace("&#34;", '"').replace("&quot;", '"'))
    options = [o[0] for f in groups["Device type"] for o in (f["options"] or [])]
    assert options == ["车载定位器", "GPS tracker"]


def test_the_types_devices_carry_are_read_a_type_at_a_time_from_the_index(in_request, world):
    """Not a DISTINCT over every device of the scope: the recursive look-up steps through
    ix_device_type_company (type, company), one probe per type, whatever the number of devices."""
    from sqlalchemy import inspect

    indexes = {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes("device")}
    assert indexes["ix_device_type_company"] == ["device_type", "company_id"]
    assert "ix_device_device_type" not in indexes
    for n in range(3):
        make_device(f"AC-OLD-{n}", world.acme, device_type=f"Old type {n % 2}")
    make_device("GX-OLD", world.globex, device_type="Globex-only")
    db.session.flush()
    assert device_type_names(db.session, world.acme.subtree_ids())[-2:] == ["Old type 0", "Old type 1"]
    assert "Globex-only" in device_type_names(db.session) and "Globex-only" not in device_type_names(
        db.session, world.acme.subtree_ids())
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL plans a table this small with a sequential scan
    statements = []
    from sqlalchemy import event

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("WITH RECURSIVE"):
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        device_type_names(db.session, world.acme.subtree_ids())
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    (statement, parameters), = statements
    plan = " | ".join(row[3] for row in db.session.connection().exec_driver_sql(
        "EXPLAIN QUERY PLAN " + statement, parameters))
    assert "SCAN device" not in plan, plan  # every read of device is a SEARCH of the index
    assert "ix_device_type_company" in plan, plan
