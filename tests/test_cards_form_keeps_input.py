"""A refused card form comes back with what was typed (the sale of cards lost the quantity, the customer, the
phone and the address when the balance was short; the stock document lost its scanned numbers)."""
from __future__ import annotations

from conftest import post

pytest_plugins = ("card_fixtures",)


def test_a_refused_card_sale_keeps_what_was_typed(cards, vault, client, login):
    b = cards["b"]
    login("b_admin")  # no balance: the sale is refused
    page = post(client, "/admin/cardorder/place/", {
        "seller_id": str(b.id), "package_id": str(cards["package"].id), "quantity": "3", "holder": "0",
        "promotion_percent": "5", "promotion_label": "年终促销", "customer_name": "张三",
        "customer_phone": "13900000000", "shipping_address": "深圳市南山区"}).get_data(as_text=True)
    for typed in ('name="quantity" inputmode="numeric" required value="3"', 'value="年终促销"', 'value="张三"',
                  'value="13900000000"', 'value="深圳市南山区"', 'value="5"'):
        assert typed in page, typed
    assert f'<option value="{cards["package"].id}" selected>' in page


def test_a_refused_stock_document_keeps_the_numbers(cards, vault, client, login):
    login("support")
    answer = post(client, "/admin/card_stock/", {"kind": "stock_out", "from_holder": "0",
                                                 "numbers": "89860000000000009999\n89860000000000009998",
                                                 "note": "盘点"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "89860000000000009998" in page and 'value="盘点"' in page
