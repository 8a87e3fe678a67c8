"""Seeds 001 and 002 walked as their users do: what a refused form keeps, what the shipper is shown to pick
from, one refusal said once, and the package list's filters as the guide's 顶部支持按某一特定条件进行查询."""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal as D

from sqlalchemy import select

from actions.card_orders import cards_to_ship, place_order
from actions.cards import CardInput, add_card
from actions.orders import pay_with_balance
from actions.wallets import credit, wallet_for
from conftest import post
from models import CardOrder, Package, PackageSubcategory, User, db

pytest_plugins = ("card_fixtures",)

TODAY = date.today()


def _paid_order(cards, vault, n_cards=3, quantity=2):
    """B sells `quantity` SIM-39 cards from the platform warehouse, which holds `n_cards` (the later ones expire
    first); returns the card order and the cards."""
    s, u, b = db.session, cards["users"], cards["b"]
    rows = [add_card(s, u["support"], vault, CardInput(f"8986{i:016d}", f"1360000{i:04d}", f"Q{i:05d}", "SIM-39",
                                                       TODAY + timedelta(days=400 - i)), TODAY)
            for i in range(n_cards)]
    credit(s, wallet_for(s, b.id, "CNY"), D("1000.00"), "offline_recharge", "test:fund", u["admin"])
    card_order = place_order(s, u["b_admin"], seller=b, package=cards["package"], quantity=quantity,
                             customer_name="Nguyen Van A")
    pay_with_balance(s, u["b_admin"], card_order.order, TODAY)
    s.commit()
    return card_order, rows


def _field(page: str, name: str) -> str:
    """The value a text input or textarea of the page holds."""
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    if match:
        return match.group(1)
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page)
    return match.group(1) if match else ""


def test_the_ship_page_lists_the_cards_to_pick_soonest_expiry_first(cards, vault, client, login):
    """四.2 发货: the shipper sees which cards of the order's package are in its stock (as many as ordered)."""
    card_order, rows = _paid_order(cards, vault)
    assert [c.iccid for c in cards_to_ship(db.session, cards["users"]["support"], card_order, TODAY)] == [
        rows[2].iccid, rows[1].iccid]
    login("support")
    page = client.get(f"/admin/cardorder/ship/?id={card_order.id}").get_data(as_text=True)
    listed = re.findall(r'<td class="rd-iccid">([^<]+)</td>', page)
    assert listed == [rows[2].iccid, rows[1].iccid]
    # Shipping the listed cards works as the guide says.
    answer = post(client, "/admin/cardorder/ship/", {"id": str(card_order.id), "numbers": "\n".join(listed),
                                                     "carrier": "VNPost", "tracking_number": "VN1"})
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.get(CardOrder, card_order.id).status == "shipped"


def test_the_sellers_cannot_read_the_warehouse_stock_on_the_ship_page(cards, vault, client, login):
    """The platform's stock is shipped by inventory staff: its cards are not listed to the selling distributor."""
    card_order, rows = _paid_order(cards, vault)
    assert cards_to_ship(db.session, cards["users"]["b_admin"], card_order, TODAY) == []
    login("b_admin")
    page = client.get(f"/admin/cardorder/ship/?id={card_order.id}").get_data(as_text=True)
    assert not any(row.iccid in page for row in rows)


def test_a_refused_shipment_keeps_what_was_typed(cards, vault, client, login):
    card_order, _ = _paid_order(cards, vault)
    login("support")
    answer = post(client, "/admin/cardorder/ship/", {"id": str(card_order.id), "numbers": "8986000000000099999\n1",
                                                     "carrier": "VNPost <Express>", "tracking_number": "VN-77"})
    page = answer.get_data(as_text=True)
    db.session.expire_all()
    assert answer.status_code == 200 and db.session.get(CardOrder, card_order.id).status == "awaiting_shipment"
    assert _field(page, "numbers") == "8986000000000099999\n1"
    assert _field(page, "carrier") == "VNPost &lt;Express&gt;" and _field(page, "tracking_number") == "VN-77"


def test_a_refused_refund_request_keeps_what_was_typed(cards, vault, client, login):
    card_order, _ = _paid_order(cards, vault)
    login("finance")
    answer = post(client, "/admin/cardorder/refund/", {"id": str(card_order.id), "count": "9",
                                                       "reason": "khách đổi ý"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert _field(page, "count") == "9" and _field(page, "reason") == "khách đổi ý"


def test_a_refused_verification_keeps_what_was_typed(app, client, login):
    from conftest import make_company, make_user

    make_user("d_admin", "customer_admin", make_company("Distributor D"))
    db.session.commit()
    login("d_admin")
    answer = post(client, "/admin/card_verification/", {"legal_name": "Công ty D", "id_type": "business_licence",
                                                         "id_number": "12"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert _field(page, "legal_name") == "Công ty D" and _field(page, "id_number") == "12"
    assert re.search(r'<option value="business_licence" selected>', page)


def test_bad_months_on_the_renewal_form_are_said_once(client, login, world):
    login("customer")
    answer = post(client, "/admin/renewal_center/renew/", {"company_id": str(world.acme.id),
                                                           "months": "custom", "custom_months": "0",
                                                           "rowid": str(world.devices["AC0001"].id)},
                  follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert page.count("Months: a whole number between 1 and 120.") == 1


def test_packages_filter_by_subcategory(client, login, world):
    """套餐管理: the list shows 套餐小类 and filters on it like on 套餐大类."""
    package = db.session.scalars(select(Package).where(Package.kind == "renewal")).first()
    sub = PackageSubcategory(code="SUB-X", name="Trackers 4G", kind=package.kind, category_id=package.category_id)
    db.session.add(sub)
    db.session.flush()
    package.subcategory_id = sub.id
    db.session.scalar(select(User).where(User.username == "support")).locale = "zh_Hans_CN"
    db.session.commit()
    login("support")
    page = client.get("/admin/package/").get_data(as_text=True)
    names = re.search(r'id="filter-groups-data"[^>]*>(.*?)</div>', page, re.S).group(1)
    assert "\\u5957\\u9910\\u5c0f\\u7c7b" in names  # 套餐小类
    index = re.search(r'"arg": "subcategory_equals", "index": (\d+)', names).group(1)
    listed = client.get(f"/admin/package/?flt0_{index}=Trackers 4G").get_data(as_text=True)
    assert package.code in listed
    others = db.session.scalars(select(Package.code).where(Package.id != package.id)).all()
    assert not any(f">{code}<" in listed for code in others)


def test_the_card_template_reads_in_vietnamese_and_comes_back_on_import(cards, vault, client, login):
    """三.2 批量导入号卡 in Vietnamese: the template's sheets and headers are in the reader's language, and the
    filled template (like the list's Vietnamese export) is read back."""
    import io

    from openpyxl import load_workbook

    from importers.cards import read_cards

    db.session.get(User, cards["users"]["support"].id).locale = "vi"
    db.session.commit()
    login("support")
    book = load_workbook(io.BytesIO(client.get("/admin/simcard/import/template/").data))
    assert book.sheetnames == ["Thẻ SIM", "Hướng dẫn"]
    sheet = book.active
    assert [c.value for c in sheet[1]] == ["ICCID", "Số điện thoại", "PIN", "Gói cước", "Hiệu lực đến"]
    sheet.append(["89860000000000000123", "13700000001", "P12345", "SIM-39", TODAY + timedelta(days=90)])
    out = io.BytesIO()
    book.save(out)
    rows, preview = read_cards(out.getvalue(), TODAY)
    assert preview.errors == [] and [card.iccid for _, card in rows] == ["89860000000000000123"]

    add_card(db.session, cards["users"]["support"], vault, CardInput("89860000000000000456", "13700000002", "P45678",
                                                                     "SIM-39", TODAY + timedelta(days=90)), TODAY)
    db.session.commit()
    exported = load_workbook(io.BytesIO(client.get("/admin/simcard/export/xlsx/").data))
    assert exported.sheetnames == ["Thẻ SIM"]
    assert [c.value for c in exported.active[1]][:5] == ["ICCID", "Số điện thoại", "PIN", "Gói cước", "Hiệu lực đến"]
    read_cards(exported_bytes(exported), TODAY)  # its headers are understood (a wrong header row raises)


def exported_bytes(book) -> bytes:
    import io

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_extension_config_has_the_guides_bind_by_device_button(client, login, world):
    """客户延期配置 点击根据设备增加按钮: beside 按设备类型绑定, a button binds the ticked devices."""
    login("support")
    page = client.get("/admin/device_package/").get_data(as_text=True)
    assert re.search(r'id="rd-bind-devices"[^>]*onclick="return modelActions.execute\(\'bind\'\);"', page)
    answer = post(client, "/admin/device_package/action/", [("action", "bind"),
                                                            ("rowid", str(world.devices["AC0001"].id))])
    assert answer.status_code == 200 and 'id="rd-bind-form"' in answer.get_data(as_text=True)


def test_a_vietnamese_company_tops_up_in_vnd_as_the_page_offers(client, login, world):
    """余额充值 — 选择币种: the page offers VND (VNPT Pay); choosing it opens a VND recharge order."""
    from models import Order

    login("customer")
    page = client.get("/admin/recharge_record/top-up/").get_data(as_text=True)
    assert '<option value="VND"' in page
    answer = post(client, "/admin/recharge_record/top-up/", {"company_id": str(world.acme.id), "currency": "VND",
                                                             "amount": "1200000"})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    order = db.session.scalar(select(Order).where(Order.kind == "recharge", Order.company_id == world.acme.id))
    assert (order.currency, order.total, order.status) == ("VND", D("1200000"), "pending")


def test_expiry_import_reads_device_numbers_in_any_letter_case(client, login, world, tmp_path, monkeypatch):
    """批量设置过期时间: "ac0001" typed in the workbook is device AC0001, as on the batch suspend page; the same
    device named twice in two cases is a duplicate row."""
    from tests.test_expiry_import import all_expiries, latest_import, summary, upload, workbook_bytes

    monkeypatch.setitem(client.application.config, "IMPORT_FOLDER", str(tmp_path / "imports"))
    login("sales")
    before = all_expiries()
    response = upload(client, workbook_bytes([(" ac0001 ", "2030-01-31"), ("No0002", "2030-02-28")]))
    page = response.get_data(as_text=True)
    assert summary(page) == {"total": 2, "changes": 2, "unchanged": 0, "failed": 0}, page
    assert "AC0001" in page and "NO0002" in page
    post(client, f"/admin/expiry_import/commit/{latest_import().id}", {})
    assert all_expiries() == before | {"AC0001": date(2030, 1, 31), "NO0002": date(2030, 2, 28)}

    response = upload(client, workbook_bytes([("ac0002", "2030-03-01"), ("Ac0002", "2030-04-01"),
                                              ("AC0002", "2030-05-01")]))
    page = response.get_data(as_text=True)
    assert summary(page)["failed"] == 2 and page.count("AC0002 is also on row 2") == 2, page
    assert latest_import().status == "failed"
