"""Whole numbers typed into a model form: past the column's range (3000000000 into a promotion's cap
was a DataError on PostgreSQL, an OverflowError on SQLite beyond 64 bits, and the page answered
"not found"), or against the table's checks (a cap of -1, 0 cycles, a cap below what is already
reserved: an IntegrityError, a server error). Each is a message on the form and nothing changes;
every integer field of every model form is held to its column's range in one place
(admin_views.base.ModelConverter)."""
from __future__ import annotations

import html

import pytest
from flask_admin.model import BaseModelView
from sqlalchemy import select, update
from wtforms import IntegerField
from wtforms.validators import NumberRange

from admin_views import registered_views
from conftest import post
from db_snapshot import changed_tables, snapshot
from models import DeviceType, Promotion, db

PROMOTION = {"code": "HOSTILE-CAP", "name": "Hostile cap", "scope": "invoice", "kind": "percent", "currency": "CNY",
             "percent_value": "10", "duration": "forever"}
RANGE = "between -2147483648 and 2147483647"


def page_of(answer) -> str:
    assert answer.status_code == 200, (answer.status_code, answer.headers.get("Location"))
    return html.unescape(answer.get_data(as_text=True))


@pytest.mark.parametrize("field, value, message", [
    ("max_redemptions", "3000000000", "between 0 and 2147483647"),
    ("max_redemptions", "99999999999999999999", "between 0 and 2147483647"),
    ("max_redemptions", "-1", "between 0 and 2147483647"),
    ("max_per_company", "0", "between 1 and 2147483647"),
    ("max_per_company", "-5", "between 1 and 2147483647"),
    ("duration_cycles", "0", "between 1 and 2147483647"),
    ("duration_cycles", "", "Cycles: enter how many billing cycles the discount lasts."),
    ("duration_cycles", "2147483648", "between 1 and 2147483647"),
])
def test_promotion_numbers_are_form_errors(client, login, world, field, value, message):
    login("sales")
    form = {**PROMOTION, field: value, **({"duration": "cycles"} if field == "duration_cycles" else {})}
    before = snapshot()
    assert message in page_of(post(client, "/admin/promotion/new/", form))
    assert changed_tables(before) == []


def test_a_cap_below_what_is_reserved_is_a_form_error(client, login, world):
    login("sales")
    post(client, "/admin/promotion/new/", {**PROMOTION, "max_redemptions": "5"})
    promotion = db.session.scalar(select(Promotion).where(Promotion.code == PROMOTION["code"]))
    db.session.execute(update(Promotion).where(Promotion.id == promotion.id).values(reserved=3))
    db.session.commit()
    before = snapshot()
    page = page_of(post(client, f"/admin/promotion/edit/?id={promotion.id}", {**PROMOTION, "max_redemptions": "2"}))
    assert "Redemptions cap: at least 3 (already redeemed or reserved)." in page
    assert changed_tables(before) == []


@pytest.mark.parametrize("value", ["2147483648", "-2147483649", "99999999999999999999"])
def test_package_term_and_device_type_order_past_the_column_are_form_errors(client, login, world, value):
    login("support")
    category = world.packages["GPS-M"].category_id
    before = snapshot()
    page = page_of(post(client, "/admin/package/new/", {
        "code": "HOSTILE-TERM", "name": "Hostile", "category": category, "kind": "renewal", "pricing": "per_term",
        "term_months": value, "currency": "CNY", "active": "y", "amount": "10.00"}))
    assert RANGE in page
    login("admin")
    assert RANGE in page_of(post(client, "/admin/devicetype/new/", {"name": "Hostile", "active": "y",
                                                                    "sort_order": value}))
    assert changed_tables(before) == []
    assert db.session.scalar(select(DeviceType).where(DeviceType.name == "Hostile")) is None


def test_every_integer_field_of_every_model_form_has_a_range(app):
    missing = []
    with app.test_request_context():
        for view in registered_views(app.extensions["admin"][0]):
            if not isinstance(view, BaseModelView):
                continue
            for form_class in {view._create_form_class, view._edit_form_class}:
                for name, field in form_class()._fields.items():
                    if isinstance(field, IntegerField) and not any(isinstance(v, NumberRange) for v in field.validators):
                        missing.append((view.endpoint, name))
    assert missing == []
