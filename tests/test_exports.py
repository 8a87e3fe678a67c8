"""List exports people can use: the file is named after the list (in the reader's language, Chinese
kept, RFC 5987) and the day in their zone; money cells are numbers in their currency's format
(#,##0.00 for CNY and USD, #,##0 for VND and coins); times are the reader's wall-clock time."""
from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import quote, unquote

import pytest
from openpyxl import load_workbook

from admin_views.base import attachment
from importers.xlsx import Amount, stream_xlsx
from models import Order, OrderLine, User, db

AT = datetime(2026, 6, 9, 20, 5, 6, tzinfo=timezone.utc)


def add_orders(world) -> None:
    for number, currency, total, company in (("RC-ACME-CNY", "CNY", Decimal("12800.50"), world.acme),
                                             ("RC-ACME-VND", "VND", Decimal("1200000"), world.north)):
        order = Order(number=number, kind="recharge", status="paid", company_id=company.id, currency=currency,
                      total=total, created_at=AT, paid_at=AT, payment_method="wechat")
        db.session.add(order)
        db.session.flush()
        db.session.add(OrderLine(order_id=order.id, description="Recharge", unit_price=total, amount=total))
    db.session.commit()


def set_locale(username: str, locale: str) -> None:
    db.session.scalar(db.select(User).where(User.username == username)).locale = locale
    db.session.commit()


def filename_of(response) -> str:
    disposition = response.headers["Content-Disposition"]
    match = re.search(r"filename\*=UTF-8''(\S+)", disposition)
    assert match, disposition
    return unquote(match.group(1))


def test_attachment_keeps_chinese_and_gives_an_ascii_fallback():
    header = attachment("订单管理_2026-12-01.xlsx")
    assert header == ("attachment; filename=\"export_2026-12-01.xlsx\"; "
                      f"filename*=UTF-8''{quote('订单管理_2026-12-01.xlsx', safe='')}")
    assert attachment("Order management_2026-12-01.csv").startswith(
        'attachment; filename="Order_management_2026-12-01.csv"; filename*=UTF-8\'\'Order%20management_2026-12-01.csv')
    assert '"' not in attachment('a"b;c.xlsx').split("filename*=")[1]


@pytest.mark.parametrize("locale, name", [("zh_Hans_CN", "订单管理"), ("en", "Order management"),
                                          ("vi", None)])
def test_xlsx_export_is_named_after_the_list_and_the_day(client, login, world, locale, name):
    add_orders(world)
    set_locale("finance", locale)
    login("finance")
    response = client.get("/admin/order_management/export/xlsx/")
    assert response.status_code == 200
    filename = filename_of(response)
    assert re.fullmatch(r".+_\d{4}-\d{2}-\d{2}\.xlsx", filename), filename
    if name:
        assert filename.startswith(name + "_")
    else:
        assert not filename.startswith("Order management")  # Vietnamese: the list's Vietnamese name
    assert 'filename="' in response.headers["Content-Disposition"]


def test_csv_export_is_named_too_and_keeps_money_plain(client, login, world):
    add_orders(world)
    set_locale("finance", "zh_Hans_CN")
    login("finance")
    response = client.get("/admin/order_management/export/csv/")
    assert filename_of(response).startswith("订单管理_") and filename_of(response).endswith(".csv")
    text = response.get_data(as_text=True)
    assert "12800.50" in text and "1200000" in text and "¥" not in text


def test_money_cells_are_numbers_in_the_currencys_format(client, login, world):
    add_orders(world)
    set_locale("finance", "zh_Hans_CN")
    login("finance")
    data = client.get("/admin/order_management/export/xlsx/").get_data()
    sheet = load_workbook(io.BytesIO(data)).active
    headers = [c.value for c in sheet[1]]
    rows = {row[headers.index("订单号")].value: row for row in sheet.iter_rows(min_row=2)}
    total = headers.index("合计")
    cny, vnd = rows["RC-ACME-CNY"][total], rows["RC-ACME-VND"][total]
    assert cny.data_type == "n" and cny.number_format == "#,##0.00" and Decimal(str(cny.value)) == Decimal("12800.5")
    assert vnd.data_type == "n" and vnd.number_format == "#,##0" and vnd.value == 1200000
    created = rows["RC-ACME-CNY"][headers.index("创建时间")]
    assert created.value == datetime(2026, 6, 10, 4, 5, 6)  # Shanghai wall-clock time
    xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert '<v>12800.50</v>' in xml  # the exact decimal, never a float's digits


def test_stream_xlsx_formats_amounts_by_decimals():
    data = b"".join(stream_xlsx(["a", "b"], [[Amount(Decimal("0.10"), 2), Amount(Decimal("216000"), 0)]]))
    sheet = load_workbook(io.BytesIO(data)).active
    assert [c.number_format for c in sheet[2]] == ["#,##0.00", "#,##0"]
    assert str(Amount(Decimal("0.10"), 2)) == "0.10"
