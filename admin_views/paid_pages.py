"""Where a payer lands once an order is paid online, whichever way it was paid (the sandbox in
admin_views.payments, a provider's return in admin_views.provider_payments): the page its area registered."""

from __future__ import annotations

from collections.abc import Callable

from flask import url_for

from models import Order

# Where a payer lands once an order is paid online: the page its area registered for the kind (a
# subscription's detail page: 'màn hình đăng ký thành công'), else the order's page in the renewal center.
_PAID_PAGES: dict[str, Callable[[Order], str | None]] = {}


def register_paid_page(kind: str, page: Callable[[Order], str | None]) -> None:
    """An area's page for a paid order of its kind (None from `page`: the order's page)."""
    _PAID_PAGES[kind] = page


def paid_order_page(order: Order) -> str:
    """The page a payer is sent to after paying `order`."""
    page = _PAID_PAGES.get(order.kind)
    return (page(order) if page is not None else None) or url_for("renewal_center.order_view", number=order.number)
