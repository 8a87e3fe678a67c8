"""A form that creates an order or moves money, sent twice (a double click, a browser retry), is
applied once: the second submit carries the same one-time key and is sent to the first result."""
from __future__ import annotations

import html
import io
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from actions import DomainError
from actions.coins import create_coin_order
from actions.idempotency import AlreadySubmitted, claim, new_key, remember
from actions.wallets import credit, wallet_for
from models import BankTransferReceipt, Device, IdempotencyKey, OfflineRecharge, Order, Package, PackageCategory, db
from tests.conftest import Login, post
from tests.test_seats import PRICES

KEY_FIELD = re.compile(r'name="idempotency_key" value="([A-Za-z0-9_-]+)"')
WORLD_ORDERS = ("RC-GLOBEX-0001", "SE-GLOBEX-0001")


def orders() -> list[Order]:
    db.session.expire_all()
    return list(db.session.scalars(select(Order).where(Order.number.notin_(WORLD_ORDERS)).order_by(Order.id)))


def key_on(client, path: str) -> str:
    """The one-time key of the form on `path`, as a browser would send it back."""
    page = client.get(path).get_data(as_text=True)
    match = KEY_FIELD.search(page)
    assert match, f"no idempotency key on {path}"
    return match.group(1)


def renew(client, world, key: str, numbers=("AC0001", "FL0002")):
    devices = [world.devices[number] for number in numbers]
    data = [("company_id", str(world.acme.id)), ("months", "12"), ("custom_months", ""), ("idempotency_key", key)]
    return post(client, "/admin/renewal_center/renew/", data + [("rowid", str(d.id)) for d in devices])


def test_the_renew_form_sent_twice_makes_one_pending_order(client, login, world):
    login("customer")
    key = key_on(client, f"/admin/renewal_center/?company_id={world.acme.id}")
    first = renew(client, world, key)
    assert first.status_code == 302
    (order,) = orders()
    assert order.status == "pending" and first.headers["Location"].endswith(f"/order/{order.number}/")

    second = renew(client, world, key)
    assert second.status_code == 302
    assert second.headers["Location"] == first.headers["Location"]  # to the first order
    assert [o.id for o in orders()] == [order.id]
    page = html.unescape(client.get(second.headers["Location"]).get_data(as_text=True))
    assert "This form was already sent; here is what it did." in page


def test_a_new_key_makes_a_new_order(client, login, world):
    login("customer")
    page = f"/admin/renewal_center/?company_id={world.acme.id}"
    first, second = key_on(client, page), key_on(client, page)
    assert first != second  # each drawing of the form has its own key
    renew(client, world, first)
    renew(client, world, second, numbers=("AC0002",))  # the first order's devices await its payment
    assert len(orders()) == 2


def test_keys_are_per_user(client, web_app, login, world):
    login("customer")
    renew(client, world, "shared-key-0123456789")
    other = web_app.test_client()
    Login(other)("customer")
    renew(other, world, "shared-key-0123456789")  # the same user in another session: applied once
    assert len(orders()) == 1
    with web_app.test_request_context():
        claimed = claim(db.session, world.users["north"], "shared-key-0123456789", "renew")
        assert claimed is not None  # another user may send the same text
        db.session.rollback()


def test_a_refused_submit_can_be_sent_again_with_its_key(client, login, world):
    """A refusal rolls the key back with everything else: the corrected form goes through."""
    db.session.get(Device, world.devices["AC0002"].id).status = "suspended"
    db.session.commit()
    login("customer")
    key = key_on(client, f"/admin/renewal_center/?company_id={world.acme.id}")
    data = [("company_id", str(world.acme.id)), ("months", "12"), ("custom_months", ""), ("idempotency_key", key),
            ("rowid", str(world.devices["AC0001"].id)), ("rowid", str(world.devices["AC0002"].id))]
    post(client, "/admin/renewal_center/renew/", data)  # AC0002 is suspended: refused
    assert orders() == []
    assert db.session.scalar(select(sa.func.count()).select_from(IdempotencyKey)) == 0
    renew(client, world, key)
    assert len(orders()) == 1


def test_a_malformed_key_is_refused_and_nothing_is_written(client, login, world):
    login("customer")
    answer = renew(client, world, "short")
    assert answer.status_code == 302
    assert orders() == []
    page = html.unescape(client.get(answer.headers["Location"]).get_data(as_text=True))
    assert "The form's one-time key is not valid" in page


def test_the_top_up_form_sent_twice_makes_one_recharge_order(client, login, world):
    login("customer")
    key = key_on(client, "/admin/recharge_record/top-up/")
    form = {"company_id": str(world.acme.id), "currency": "CNY", "amount": "100", "idempotency_key": key}
    first = post(client, "/admin/recharge_record/top-up/", form)
    second = post(client, "/admin/recharge_record/top-up/", form)
    (order,) = orders()
    assert order.kind == "recharge" and order.total == Decimal("100.00")
    assert second.headers["Location"] == first.headers["Location"]


def test_the_coin_order_sent_twice_makes_one_order(client, login, world):
    login("customer")
    key = key_on(client, "/admin/coins/")
    form = {"company_id": str(world.acme.id), "amount": "72", "method": "wechat", "idempotency_key": key}
    first = post(client, "/admin/coins/", form)
    second = post(client, "/admin/coins/", form)
    assert len(orders()) == 1
    assert second.headers["Location"] == first.headers["Location"]


def test_the_offline_recharge_form_sent_twice_makes_one_application(client, login, world):
    login("sales")
    key = key_on(client, "/admin/offline_recharge/new/")
    form = {"company_id": world.acme.id, "payer": "Acme Logistics", "currency": "CNY", "reference": "R-1",
            "amount": "500.00", "save": "submit", "idempotency_key": key}
    post(client, "/admin/offline_recharge/new/", form)
    post(client, "/admin/offline_recharge/new/", form)
    db.session.expire_all()
    assert db.session.scalar(select(sa.func.count()).select_from(OfflineRecharge)) == 1


def test_the_refund_request_sent_twice_requests_once(client, login, world):
    with_balance = wallet_for(db.session, world.acme.id, "CNY")
    credit(db.session, with_balance, Decimal("500.00"), "offline_recharge", "test:refund")
    db.session.commit()
    login("customer")
    number = renew(client, world, new_key()).headers["Location"].rstrip("/").rsplit("/", 1)[1]
    post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "balance"})
    (order,) = orders()
    assert order.status == "paid"
    login.logout()
    login("finance")
    key = new_key()
    asked = post(client, "/admin/order_management/action/", {"action": "refund", "rowid": str(order.id)})
    token = re.search(r'name="confirm_token" value="([^"]+)"', asked.get_data(as_text=True)).group(1)
    form = {"rowid": str(order.id), "idempotency_key": key, "confirm_token": token}
    post(client, "/admin/order_management/refund/", form)
    second = post(client, "/admin/order_management/refund/", form, follow_redirects=True)
    assert "This form was already sent" in html.unescape(second.get_data(as_text=True))
    db.session.expire_all()
    from models import OrderRefund

    assert db.session.scalar(db.select(db.func.count()).select_from(OrderRefund)) == 1


def test_every_money_form_carries_a_key(client, login, world):
    login("customer")
    for path in (f"/admin/renewal_center/?company_id={world.acme.id}", "/admin/recharge_record/top-up/",
                 "/admin/coins/", "/admin/seat_order/buy/"):
        assert key_on(client, path), path
    login.logout()
    login("sales")
    for path in ("/admin/offline_recharge/new/", "/admin/seat_grant/"):
        assert key_on(client, path), path


# --- the guard is the database's unique index, not Python -------------------------------------------------

def test_the_unique_index_refuses_a_second_row_for_the_same_user_and_key(app, world):
    user = world.users["customer"]
    db.session.add(IdempotencyKey(user_id=user.id, key="k" * 20, purpose="renew", result_url="/a"))
    db.session.commit()
    db.session.add(IdempotencyKey(user_id=user.id, key="k" * 20, purpose="renew", result_url="/b"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_claim_sees_a_key_committed_by_another_connection(app, world):
    """What a concurrent first submit leaves behind: claim() answers with its result."""
    user = world.users["customer"]
    with db.engine.begin() as other:
        other.execute(IdempotencyKey.__table__.insert().values(
            user_id=user.id, key="racing-key-0123456789", purpose="renew", result_url="/admin/first/",
            created_at=sa.func.now()))
    with app.test_request_context():
        with pytest.raises(AlreadySubmitted) as refused:
            claim(db.session, user, "racing-key-0123456789", "renew")
    assert refused.value.result_url == "/admin/first/"
    db.session.rollback()


def test_claim_without_a_key_guards_nothing_and_a_bad_key_is_refused(app, world):
    user = world.users["customer"]
    with app.test_request_context():
        assert claim(db.session, user, "", "renew") is None
        with pytest.raises(DomainError):
            claim(db.session, user, "not a key!" * 3, "renew")
        claimed = claim(db.session, user, new_key(), "renew")
        remember(claimed, "/admin/renewal_center/order/X/")
        db.session.commit()
    assert db.session.get(IdempotencyKey, claimed.id).result_url == "/admin/renewal_center/order/X/"


def test_the_seat_order_sent_twice_makes_one_order(client, login, world):
    category = PackageCategory(code="SEAT", name="Seats", kind="seat")
    db.session.add(category)
    db.session.flush()
    db.session.add(Package(code="SEAT-BASIC", name="basic seat", category_id=category.id, kind="seat", edition="basic",
                           amount=PRICES["basic"], pricing="per_year", currency="CNY"))
    db.session.commit()
    login("customer")
    key = key_on(client, "/admin/seat_order/buy/")
    form = {"company_id": str(world.acme.id), "edition": "basic", "quantity": "2", "idempotency_key": key}
    first = post(client, "/admin/seat_order/buy/", form)
    second = post(client, "/admin/seat_order/buy/", form)
    (order,) = orders()
    assert order.kind == "seats" and second.headers["Location"] == first.headers["Location"]


def test_the_bank_transfer_receipt_sent_twice_is_kept_once(client, web_app, login, world, tmp_path, monkeypatch):
    monkeypatch.setattr(web_app, "instance_path", str(tmp_path / "instance"))
    with web_app.test_request_context():
        order = create_coin_order(db.session, world.users["customer"], world.acme, "72.00", "bank_transfer")
        number = order.number
        db.session.commit()
    login("customer")
    path = f"/admin/bank_transfer/upload/?order={number}"
    key = key_on(client, path)

    def send():
        return post(client, path, {"payer_company": "Acme", "payer_account": "6222", "amount": "72.00",
                                   "idempotency_key": key, "file": (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
                                                                    "r.png")}, content_type="multipart/form-data")

    assert send().status_code == 302
    second = send()
    assert second.status_code == 302 and second.headers["Location"].endswith("/admin/bank_transfer/")
    db.session.expire_all()
    assert db.session.scalar(select(sa.func.count()).select_from(BankTransferReceipt)) == 1
