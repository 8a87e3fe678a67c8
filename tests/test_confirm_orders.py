"""Cancelling orders and subscriptions asks on the server's confirmation page (admin_views/confirm.py),
naming the order, its amount and what happens to the money; no JavaScript confirm() is left on those
pages. Each: the first POST changes nothing, a mismatched token is refused, the confirmed POST acts."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from actions import subscriptions as subs
from conftest import confirmation_form, post
from models import Order, OrderRefund, Subscription, User, db
from test_confirm import check_asks_first, fresh, text_of
from test_renewals import make_order
from test_subscriptions import _active, checkout


def in_locale(world, role: str, locale: str) -> None:
    db.session.get(User, world.users[role].id).locale = locale
    db.session.commit()


def test_cancelling_an_order_from_its_page_asks_naming_number_amount_and_money(client, login, world):
    order = make_order(world.acme, total="120.00", number="RN-ASK-1")
    db.session.commit()
    login("customer")
    page = client.get("/admin/renewal_center/order/RN-ASK-1/").get_data(as_text=True)
    assert 'id="rd-cancel-order"' in page and "confirm(" not in page
    done = check_asks_first(client, "/admin/renewal_center/order/RN-ASK-1/cancel/", {},
                            lambda: fresh(Order, order.id).status == "cancelled",
                            "Cancel order RN-ASK-1 of Acme Logistics, CN¥120.00, which awaits payment:")
    assert done.headers["Location"].endswith("/admin/renewal_center/order/RN-ASK-1/")


def test_the_order_page_confirmation_says_no_money_moves(client, login, world):
    make_order(world.acme, total="120.00", number="RN-ASK-2")
    db.session.commit()
    login("customer")
    page = text_of(post(client, "/admin/renewal_center/order/RN-ASK-2/cancel/", {}))
    assert "No money moves: nothing was paid for these orders" in page
    assert "RN-ASK-2 · Renewal · Acme Logistics · CN¥120.00" in page


def test_a_cancel_token_for_one_order_does_not_cancel_another(client, login, world):
    first = make_order(world.acme, number="RN-ASK-3")
    second = make_order(world.acme, number="RN-ASK-4")
    db.session.commit()
    login("customer")
    action, fields = confirmation_form(
        post(client, "/admin/renewal_center/order/RN-ASK-3/cancel/", {}))
    post(client, "/admin/renewal_center/order/RN-ASK-4/cancel/", dict(fields))
    assert fresh(Order, second.id).status == "pending" and fresh(Order, first.id).status == "pending"


@pytest.mark.parametrize("locale, words", [("zh_Hans_CN", "取消订单 RN-ASK-5"), ("vi", "RN-ASK-5")])
def test_the_order_cancellation_page_is_translated(client, login, world, locale, words):
    make_order(world.acme, total="120.00", number="RN-ASK-5")
    in_locale(world, "customer", locale)
    login("customer")
    page = text_of(post(client, "/admin/renewal_center/order/RN-ASK-5/cancel/", {}))
    assert words in page
    assert "No money moves" not in page and "awaits payment" not in page


def test_cancelling_orders_from_the_customer_list_asks_and_names_those_it_leaves(client, login, world):
    pending = make_order(world.acme, total="30.00", number="RN-L1")
    paid = make_order(world.acme, "renewal", "paid", method="balance", number="RN-L2")
    db.session.commit()
    login("customer")
    page = client.get("/admin/order_record/").get_data(as_text=True)
    assert "Cancel the selected orders that await payment?" not in page
    ids = [("rowid", str(pending.id)), ("rowid", str(paid.id))]
    first = text_of(post(client, "/admin/order_record/action/", [("action", "cancel")] + ids))
    assert "Cancel order RN-L1 of Acme Logistics, CN¥30.00, which awaits payment:" in first
    assert "RN-L2: not awaiting payment (Paid)" in first
    check_asks_first(client, "/admin/order_record/action/", [("action", "cancel")] + ids,
                     lambda: fresh(Order, pending.id).status == "cancelled", "Cancel order RN-L1")
    assert fresh(Order, paid.id).status == "paid"


def test_cancelling_a_subscription_asks_naming_the_day_and_no_refund(client, login, world):
    subscription = _active(world)
    login("customer")
    page = client.get(f"/admin/subscription/view/{subscription.id}/?tab=details").get_data(as_text=True)
    assert "confirm(" not in page
    check_asks_first(client, f"/admin/subscription/view/{subscription.id}/cancel/", {},
                     lambda: fresh(Subscription, subscription.id).status == "cancel_scheduled",
                     f"Cancel subscription {subscription.number} of Acme Logistics at the end of its period, on "
                     f"{subscription.period_end.isoformat()}.")
    page = text_of(post(client, f"/admin/subscription/view/{subscription.id}/cancel/", {"undo": "y"},
                        follow_redirects=True))
    assert "Cancellation withdrawn." in page  # keeping it needs no confirmation
    assert fresh(Subscription, subscription.id).status == "active"


def test_cancelling_a_subscription_now_asks_naming_the_refunded_order(client, login, world):
    subscription = _active(world)
    order = subs.current_period_order(db.session, subscription)
    login("finance")
    check_asks_first(client, f"/admin/subscription/view/{subscription.id}/cancel-now/", {"reason": "moved away"},
                     lambda: db.session.scalar(select(OrderRefund.order_id)) == order.id,
                     f"Cancel subscription {subscription.number} of Acme Logistics now and request a refund of "
                     f"order {order.number} (CN¥1,642.96).")


def test_abandoning_a_checkout_asks_naming_its_orders(client, login, world):
    subscription = checkout(world.users["customer"], world.acme)
    db.session.commit()
    order = subs.start_order(db.session, subscription)
    login("customer")
    page = client.get(f"/admin/subscription/view/{subscription.id}/?tab=payments").get_data(as_text=True)
    assert 'id="rd-abandon"' in page and "confirm(" not in page
    first = check_asks_first(client, f"/admin/subscription/view/{subscription.id}/abandon/", {},
                             lambda: fresh(Subscription, subscription.id).status == "abandoned",
                             f"Cancel the unpaid orders of subscription {subscription.number} of Acme Logistics:")
    assert first.headers["Location"].endswith("tab=payments")
    assert fresh(Order, order.id).status == "cancelled"


@pytest.mark.parametrize("locale", ["zh_Hans_CN", "vi"])
def test_the_subscription_confirmations_are_translated(client, login, world, locale):
    subscription = _active(world)
    in_locale(world, "customer", locale)
    login("customer")
    page = text_of(post(client, f"/admin/subscription/view/{subscription.id}/cancel/", {}))
    assert subscription.number in page and 'id="rd-confirm-form"' in post(
        client, f"/admin/subscription/view/{subscription.id}/cancel/", {}).get_data(as_text=True)
    assert "No money is paid back" not in page and "at the end of its period" not in page


def test_no_javascript_confirm_left_on_details_pages(client, login, world):
    order = make_order(world.acme, number="RN-DET-1")
    db.session.commit()
    login("support")
    for url in (f"/admin/package/details/?id={world.packages['GPS-Y'].id}",
                f"/admin/package/edit/?id={world.packages['GPS-Y'].id}",
                f"/admin/device/details/?id={world.devices['AC0001'].id}"):
        page = client.get(url).get_data(as_text=True)
        assert "confirm(" not in page and "safeConfirm" not in page, url
    login.logout()
    login("finance")
    page = client.get(f"/admin/order_management/details/?id={order.id}").get_data(as_text=True)
    assert "confirm(" not in page and "safeConfirm" not in page
    assert db.session.scalar(select(Order.status).where(Order.id == order.id)) == "pending"
