"""Seed 003's Bảng giá as the guide walks it: "Tại bảng gói dịch vụ doanh nghiệp chọn gói có 1 chu kì / nhiều chu kì
— Nhấn chọn chu kì muốn đăng ký — Nhấn nút Đăng ký". Each plan lists its cycles as a choice (price, per month and
saving on each) and has one Đăng ký: a GET form to step 1 with the plan and the chosen cycle, without JavaScript."""
from __future__ import annotations

import html
import re

import pytest
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from actions import DomainError
from actions import subscriptions as subs
from models import Service, ServicePlan, db
from test_subscriptions import by_code, cycle_of


def _plan_form(page: str, plan: ServicePlan) -> str:
    match = re.search(rf'<form method="get" action="([^"]*)" id="rd-plan-{plan.id}"[^>]*>(.*?)</form>', page, re.S)
    assert match, f"no Subscribe form for plan {plan.code}"
    return match.group(0)


def _radios(page: str, plan: ServicePlan) -> list[str]:
    """The cycle radios belonging to the plan's form, as written."""
    return re.findall(rf'<input [^>]*type="radio" form="rd-plan-{plan.id}"[^>]*>', page)


def test_each_plan_has_its_cycles_to_choose_and_one_subscribe(client, login, world):
    login("customer")
    page = client.get("/admin/subscribe/").get_data(as_text=True)
    standard, business = by_code(ServicePlan, "OFFICE-STD"), by_code(ServicePlan, "OFFICE-BIZ")
    form = _plan_form(page, standard)
    assert 'action="/admin/subscribe/checkout/"' in form and f'name="plan" value="{standard.id}"' in form
    assert form.count("rd-subscribe") == 1 and 'name="back"' not in form
    radios = _radios(page, standard)
    assert [re.search(r'value="(\d+)"', r).group(1) for r in radios] == [
        str(cycle_of("OFFICE-STD", months).id) for months in (1, 6, 12)]
    assert not any("checked" in r for r in radios)  # several cycles: the user clicks one
    std12 = cycle_of("OFFICE-STD", 12).id
    assert f'<label class="form-check-label" for="rd-cycle-{std12}">12 months</label>' in page
    row = re.search(rf'<tr class="rd-cycle" data-cycle="{std12}">.*?</tr>', page, re.S).group(0)
    for shown in ("1,200.00", "100.00", "240.00"):  # price, per month, saving against 12 × 1 month (1,440.00)
        assert shown in row, shown
    (only,) = _radios(page, business)  # one cycle: already chosen
    assert "checked" in only
    assert page.count('class="btn btn-sm btn-primary rd-subscribe"') == len(
        db.session.scalars(select(ServicePlan).where(ServicePlan.active.is_(True))).all())
    assert "?cycle=" not in page  # no per-row Subscribe link any more


def test_the_service_tab_sends_back_to_itself(app, client, login, world):
    world.users["customer"].locale = "vi"
    db.session.commit()
    login("customer")
    office = by_code(Service, "CLOUD-OFFICE")
    page = client.get(f"/admin/subscribe/service/{office.id}/?tab=prices").get_data(as_text=True)
    standard = by_code(ServicePlan, "OFFICE-STD")
    assert 'name="back" value="service"' in _plan_form(page, standard)
    assert "12 tháng" in page and "Đăng ký" in page
    # No cycle chosen: a message naming the plan, in the user's language, and back to the same tab.
    answer = client.get(f"/admin/subscribe/checkout/?plan={standard.id}&back=service")
    assert answer.status_code == 302
    back = f"/admin/subscribe/service/{office.id}/?tab=prices#rd-plan-{standard.id}"
    assert answer.headers["Location"].endswith(back)
    shown = client.get(answer.headers["Location"]).get_data(as_text=True)
    with app.test_request_context(), force_locale("vi"):
        said = str(_("%(plan)s: choose a billing cycle, then press Subscribe.", plan="Cloud Office · Standard"))
    assert html.escape(said, quote=False) in shown and "Cloud Office · Standard:" in said
    assert "rd-checkout-step1" not in shown


def test_subscribe_opens_step1_with_the_chosen_cycle(client, login, world):
    login("customer")
    standard = by_code(ServicePlan, "OFFICE-STD")
    std6 = cycle_of("OFFICE-STD", 6)
    page = client.get(f"/admin/subscribe/checkout/?plan={standard.id}&cycle={std6.id}").get_data(as_text=True)
    assert 'id="rd-checkout-step1"' in page
    assert f'<input type="hidden" name="cycle" value="{std6.id}">' in page
    assert "Standard</strong> —\n    6 months" in page


def test_subscribe_without_a_cycle_names_the_plan_and_goes_nowhere(client, login, world):
    login("customer")
    standard = by_code(ServicePlan, "OFFICE-STD")
    answer = client.get(f"/admin/subscribe/checkout/?plan={standard.id}", follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "Cloud Office · Standard: choose a billing cycle, then press Subscribe." in page
    assert 'id="rd-checkout-step1"' not in page and f'id="rd-plan-{standard.id}"' in page


@pytest.mark.parametrize("tamper", ["other-plan", "other-service", "unknown", "garbage", "inactive"])
def test_a_tampered_cycle_is_refused(client, login, world, tamper):
    login("customer")
    standard = by_code(ServicePlan, "OFFICE-STD")
    cycle = {"other-plan": lambda: cycle_of("OFFICE-BIZ", 12).id,
             "other-service": lambda: cycle_of("MEET-BASIC", 12).id, "unknown": lambda: 999999,
             "garbage": lambda: "12abc", "inactive": lambda: cycle_of("OFFICE-STD", 6).id}[tamper]()
    if tamper == "inactive":
        cycle_of("OFFICE-STD", 6).active = False
        db.session.commit()
    answer = client.get(f"/admin/subscribe/checkout/?plan={standard.id}&cycle={cycle}", follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "Billing cycle: this plan is not offered in that cycle." in page
    assert 'id="rd-checkout-step1"' not in page


def test_sales_subscribe_for_a_customer_from_the_plan_form(client, login, world):
    """Sales registering for a customer: the same form, then step 1's company choice."""
    login("sales")
    meet = by_code(ServicePlan, "MEET-BASIC")
    page = client.get("/admin/subscribe/").get_data(as_text=True)
    _plan_form(page, meet)
    meet12 = cycle_of("MEET-BASIC", 12)
    step1 = client.get(f"/admin/subscribe/checkout/?plan={meet.id}&cycle={meet12.id}&company_id={world.globex.id}"
                       ).get_data(as_text=True)
    assert f'<option value="{world.globex.id}" selected>' in step1
    assert f'name="cycle" value="{meet12.id}"' in step1


def test_chosen_cycle_rules(world):
    standard, business = by_code(ServicePlan, "OFFICE-STD"), by_code(ServicePlan, "OFFICE-BIZ")
    std12 = cycle_of("OFFICE-STD", 12)
    assert subs.chosen_cycle(db.session, standard.id, std12.id) is std12
    assert subs.chosen_cycle(db.session, None, std12.id) is std12  # step 1's own forms send the cycle alone
    with pytest.raises(DomainError, match="Cloud Office · Standard: choose a billing cycle"):
        subs.chosen_cycle(db.session, standard.id, None)
    for plan_id, cycle_id in ((business.id, std12.id), (None, None), (None, 999999), (999999, None)):
        with pytest.raises(DomainError, match="Billing cycle: this plan is not offered in that cycle."):
            subs.chosen_cycle(db.session, plan_id, cycle_id)
    std12.plan.service.active = False
    db.session.flush()
    with pytest.raises(DomainError, match="Billing cycle"):
        subs.chosen_cycle(db.session, standard.id, std12.id)
