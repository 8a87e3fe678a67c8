"""Times are shown in the reader's time zone, to the minute: the company's choice (company profile),
else the language's (Asia/Shanghai for Chinese, Asia/Ho_Chi_Minh for Vietnamese, UTC for English); in
lists, detail pages and templates alike, never with seconds, microseconds or "+00:00"."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from actions import DomainError
from actions.times import check_zone, format_minute, zone_for
from conftest import post
from models import Company, Order, OrderLine, User, db

AT = datetime(2026, 6, 9, 20, 5, 6, 789000, tzinfo=timezone.utc)  # 04:05 next day in Shanghai


@pytest.mark.parametrize("company_zone, locale, expected", [
    ("", "zh_Hans_CN", "Asia/Shanghai"), (None, "vi", "Asia/Ho_Chi_Minh"), ("", "en", "UTC"),
    ("Europe/London", "zh_Hans_CN", "Europe/London"),
])
def test_zone_is_the_companys_else_the_languages(company_zone, locale, expected):
    assert zone_for(company_zone, locale) == ZoneInfo(expected)


def test_a_time_reads_to_the_minute_in_the_zone(app):
    assert format_minute(AT, ZoneInfo("Asia/Shanghai"), "zh_Hans_CN") == "2026-06-10 04:05"
    assert format_minute(AT, ZoneInfo("Asia/Ho_Chi_Minh"), "vi") == "2026-06-10 03:05"
    assert format_minute(AT, ZoneInfo("UTC"), "en") == "2026-06-09 20:05"
    assert format_minute(None, ZoneInfo("UTC"), "en") == ""
    with pytest.raises(ValueError):
        format_minute(AT.replace(tzinfo=None), ZoneInfo("UTC"), "en")


def test_unknown_zones_are_refused():
    assert check_zone(" Asia/Shanghai ") == "Asia/Shanghai" and check_zone("") == ""
    for bad in ("Mars/Base", "../etc/passwd", "Asia/Shanghai\x00"):
        with pytest.raises(DomainError):
            check_zone(bad)


def acme_order(world) -> Order:
    order = Order(number="RC-ACME-0001", kind="recharge", status="paid", company_id=world.acme.id, currency="CNY",
                  total=Decimal("10.00"), created_at=AT, paid_at=AT, payment_method="wechat")
    db.session.add(order)
    db.session.flush()
    db.session.add(OrderLine(order_id=order.id, description="Recharge", unit_price=Decimal("10.00"),
                             amount=Decimal("10.00")))
    db.session.commit()
    return order


def set_locale(username: str, locale: str) -> None:
    db.session.scalar(db.select(User).where(User.username == username)).locale = locale
    db.session.commit()


@pytest.mark.parametrize("locale, shown", [("zh_Hans_CN", "2026-06-10 04:05"), ("vi", "2026-06-10 03:05"),
                                           ("en", "2026-06-09 20:05")])
def test_lists_and_pages_show_times_in_the_readers_zone(client, login, world, locale, shown):
    order = acme_order(world)
    set_locale("customer", locale)
    login("customer")
    for url in ("/admin/recharge_record/", f"/admin/renewal_center/order/{order.number}/"):
        page = client.get(url).get_data(as_text=True)
        assert shown in page, url
        assert "+00:00" not in page and "20:05:06" not in page and " UTC" not in page, url


def test_the_company_chooses_its_zone_on_its_profile(client, login, world):
    acme_order(world)
    set_locale("customer", "zh_Hans_CN")
    login("customer")
    form = client.get("/admin/company_profile/").get_data(as_text=True)
    assert '<option selected value="">' in form or re.search(r'<option[^>]*selected[^>]*value=""', form)
    fields = {"phone": "", "fax": "", "province": "", "city": "", "address": "", "full_name": "Ann",
              "email": "customer@acme.example.com", "user_phone": "13800000000", "mobile": "", "time_zone": "Europe/London"}
    answer = post(client, "/admin/company_profile/", fields, follow_redirects=True)
    assert answer.status_code == 200
    db.session.expire_all()
    assert db.session.get(Company, world.acme.id).time_zone == "Europe/London"
    assert "2026-06-09 21:05" in client.get("/admin/recharge_record/").get_data(as_text=True)  # BST = UTC+1
    # An unknown zone is refused under its field, and nothing changes.
    page = post(client, "/admin/company_profile/", {**fields, "time_zone": "Mars/Base", "province": "浙江省",
                                                    "city": "杭州市"}).get_data(as_text=True)
    assert "Mars/Base" in page and "时区" in page
    db.session.expire_all()
    company = db.session.get(Company, world.acme.id)
    assert company.time_zone == "Europe/London" and company.city is None
    # Back to automatic: by language again.
    post(client, "/admin/company_profile/", {**fields, "time_zone": ""})
    db.session.expire_all()
    assert db.session.get(Company, world.acme.id).time_zone == ""
    assert "2026-06-10 04:05" in client.get("/admin/recharge_record/").get_data(as_text=True)


def test_staff_see_times_by_their_language(client, login, world):
    acme_order(world)
    set_locale("finance", "vi")
    login("finance")
    page = client.get("/admin/order_management/").get_data(as_text=True)
    assert "2026-06-10 03:05" in page and "+00:00" not in page


@pytest.mark.parametrize("locale, labels", [
    ("vi", ["Giờ Việt Nam · Asia/Ho_Chi_Minh", "Giờ Trung Quốc (Thượng Hải) · Asia/Shanghai", ">UTC<"]),
    ("zh_Hans_CN", ["越南时间 · Asia/Ho_Chi_Minh", "中国（上海）时间 · Asia/Shanghai", ">UTC<"]),
])
def test_the_zone_picker_names_each_zone_where_it_is_in_the_readers_language(client, login, world, locale, labels):
    """Six hundred IANA names (Asia/Ho_Chi_Minh) alone read as code: each is labelled with Babel's name of its place
    in the reader's language, its IANA name kept (what people search for); zones of no place by name."""
    set_locale("customer", locale)
    login("customer")
    form = client.get("/admin/company_profile/").get_data(as_text=True)
    for label in labels:
        assert label in form, label
    assert 'value="Asia/Ho_Chi_Minh"' in form


def test_the_zone_picker_offers_places_not_aliases_and_keeps_an_older_choice(client, login, world):
    """The picker listed 600 names, "localtime", "Factory", "PRC", "US/Eastern" and "Etc/GMT-7" among them; it offers
    today's places (and UTC). A company that chose an older name keeps it, on the list and stored."""
    login("customer")
    form = client.get("/admin/company_profile/").get_data(as_text=True)
    offered = re.findall(r'<option[^>]*value="([^"]*)"', form.split('name="time_zone"')[1].split("</select>")[0])
    assert {"Asia/Shanghai", "Asia/Ho_Chi_Minh", "Europe/London", "America/New_York", "UTC"} <= set(offered)
    assert not {"localtime", "Factory", "PRC", "US/Eastern", "Etc/GMT-7", "Asia/Saigon"} & set(offered)
    assert 300 < len(offered) < 450
    world.acme.time_zone = "Asia/Saigon"  # chosen when the picker still offered it
    db.session.commit()
    form = client.get("/admin/company_profile/").get_data(as_text=True)
    assert '<option selected value="Asia/Saigon">' in form
    assert check_zone("Etc/GMT-7") == "Etc/GMT-7"  # still a valid zone where it is typed or stored
