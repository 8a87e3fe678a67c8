"""Payment pages: the sandbox provider's hosted pay page, the providers' callback, refused notifications.

The sandbox stands in for WeChat Pay, Alipay and PayPal (see actions.payments) in development and
testing only (app.py registers it there and nowhere else): the payer sees the provider's page
with the amount, pays or cancels, and the provider then notifies the app's callback with a signed
notification. The callback is where orders get paid; the pay page only produces the
notification. Every notification the callback refuses is kept (RefusedNotification) for finance,
and a source with too many refusals in a minute is turned away before anything is checked.
"""
from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError, OperationalError

from actions import DomainError
from actions.money import format_money
from actions.orders import refuse_online, scoped_order
from actions.payments import (
    CARD_CHANNELS, NOTIFICATION_FIELDS, VNPTPAY_CHANNELS, BadNotification, PaymentSettings, check_method,
    check_sandbox_card, handle_notification, provider_for, record_refusal, refusals_in_last_minute,
)
from actions.permissions import ORDER_AREAS
from admin_views.base import ScopedModelView, require_areas
from admin_views.paid_pages import paid_order_page
from models import NOTIFICATION_REFUSALS, ORDER_STATUSES, PAYMENT_METHODS, RefusedNotification, db, utcnow

# Providers post here: no CSRF token (app.py exempts it); the HMAC signature is the check.
callbacks = Blueprint("payment_callbacks", __name__, url_prefix="/payments/callback")
# The stand-in for the providers' hosted pay pages.
sandbox = Blueprint("sandbox", __name__, url_prefix="/sandbox")
sandbox.before_request(require_areas(ORDER_AREAS))  # an employee pays only orders of its areas (scoped_order)


def payment_settings() -> PaymentSettings:
    """The app's payment settings, checked at start-up (app.py)."""
    return current_app.extensions["renewdesk_payments"]


def enabled_methods() -> tuple[str, ...]:
    """The online payment methods this deployment offers (PAYMENT_METHODS)."""
    return payment_settings().methods


def pay_page_url(order, method: str) -> str:
    """The provider's pay page for `order`: the sandbox's in development and testing, the provider's own elsewhere."""
    settings = payment_settings()
    if method in settings.adapters:
        return url_for("provider_pay.start", order_number=order.number, method=method)
    if settings.sandbox:
        return url_for("sandbox.pay", order_number=order.number, method=method)
    return settings.pay_url(order, method)


def go_to_pay(order, method: str) -> Response:
    """The answer to a POST that chose `method` (checked) for a pending `order`: the payment opened at a real
    provider (a GET of its pay page opens nothing), else off to the method's pay page."""
    if method in payment_settings().adapters:
        from admin_views.provider_payments import open_payment

        return open_payment(order, method)
    return redirect(pay_page_url(order, method))


def _plain(text: str, status: int) -> Response:
    return Response(text, status=status, mimetype="text/plain")


def provider_label(method: str) -> str:
    """"WeChat Pay (sandbox)": the name the sandbox page shows for a method."""
    return _("%(provider)s (sandbox)", provider=PAYMENT_METHODS.get(method, method))


def _sandbox_page(order, method: str, channel: str, errors=None, values=None):
    """The sandbox's pay page; VNPT Pay's first asks how to pay (Tiếp theo), then the card's details."""
    return render_template("renewdesk/sandbox_pay.html", order=order, method=method, provider=provider_label(method),
                           channels=VNPTPAY_CHANNELS if method == "vnptpay" else {},
                           channel=channel if channel in VNPTPAY_CHANNELS else "", card_channels=CARD_CHANNELS,
                           errors=errors or {}, values=values or {})


@sandbox.route("/pay/<order_number>", methods=("GET", "POST"))
@login_required
def pay(order_number: str):
    """The provider's pay page: the amount, then Pay or Cancel.

    Pay builds the notification the provider would send (`provider.notification(order)`) and
    delivers it to the same function the callback view calls, `handle_notification`, in this
    process: a real provider POSTs it to `payment_callbacks.notify`, but the test server and the
    development server answer one request at a time, so an HTTP call back into the app from
    inside this request would wait for itself. The checks (signature, amount, currency, paid
    once) are the callback's, unchanged.
    """
    order = scoped_order(db.session, current_user, order_number)
    if order is None:
        abort(404)
    method = request.args.get("method", "")
    order_page = url_for("renewal_center.order_view", number=order.number)
    pay_page = url_for("renewal_center.pay_view", number=order.number)
    try:
        check_method(method, order.currency, enabled_methods())
        refuse_online(db.session, order)
    except DomainError as exc:
        flash(str(exc), "error")
        return redirect(pay_page)
    if method in payment_settings().adapters:  # served by the real provider, not by the sandbox
        return redirect(pay_page_url(order, method))
    if order.status != "pending":
        flash(_("Order %(number)s is not awaiting payment (it is %(status)s).", number=order.number,
                status=ORDER_STATUSES[order.status]), "error")
        return redirect(order_page)
    if request.method == "GET":
        return _sandbox_page(order, method, request.args.get("channel", ""))
    channel = request.form.get("channel")
    if request.form.get("decision") == "pay" and method == "vnptpay" and channel is not None:
        form = request.form  # VNPT Pay's card form: refused fields shown again; nothing typed is kept
        errors = check_sandbox_card(channel, form.get("card_number", ""), form.get("card_holder", ""),
                                    form.get("card_expiry", ""), form.get("card_cvv", ""), date.today())
        if errors:
            return _sandbox_page(order, method, channel, errors, {"card_holder": form.get("card_holder", "")})
    if request.form.get("decision") != "pay":
        flash(_("Payment cancelled at %(provider)s; order %(number)s still awaits payment.",
                provider=provider_label(method), number=order.number), "info")
        return redirect(pay_page)
    number, total, currency = order.number, order.total, order.currency
    secret = payment_settings().secrets[method]
    payload, signature = provider_for(method, secret).notification(order)
    try:
        handle_notification(db.session, method, payload, signature, secret, date.today())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(order_page)
    flash(_("Order %(number)s is paid: %(amount)s with %(provider)s.", number=number,
            amount=format_money(total, currency), provider=provider_label(method)), "success")
    return redirect(paid_order_page(order))


@callbacks.route("/<method>", methods=("POST",))
def notify(method: str):
    """A provider's payment notification (form or JSON fields, signature in `X-Signature` or
    `signature`): 200 "OK" when it paid the order or repeats a payment already applied, 400 with
    the reason when it is forged, malformed, mismatched or for an order that cannot be paid (and
    the refusal is recorded), 429 when its source had too many refusals in the last minute."""
    source_address = request.remote_addr or "unknown"
    limit = int(current_app.config["PAYMENT_REFUSALS_PER_MINUTE"])
    if refusals_in_last_minute(db.session, source_address, utcnow()) >= limit:
        db.session.rollback()
        current_app.logger.warning("payment notification from %s turned away: %s refusals in a minute",
                                   source_address, limit)
        response = _plain(_("Too many refused notifications from this address; try again later."), 429)
        response.headers["Retry-After"] = "60"
        return response
    if method in payment_settings().adapters:
        # A real provider: its own notification format and answer (admin_views.provider_payments).
        from admin_views.provider_payments import notification

        return notification(method, source_address, lambda reason, message, body, number: _refuse(
            source_address, method, reason, message, body, {"order_number": number}))
    body = _raw_body()
    data = request.get_json(silent=True) if request.is_json else None
    source = data if isinstance(data, dict) else request.form
    payload = {name: source.get(name) for name in NOTIFICATION_FIELDS}
    signature = request.headers.get("X-Signature") or source.get("signature") or ""
    if not isinstance(signature, str):
        signature = ""
    settings = payment_settings()
    try:
        if method not in settings.methods:
            raise BadNotification(_l("Payment method %(method)s is not enabled.", method=method), "unknown_method")
        handle_notification(db.session, method, payload, signature, settings.secrets[method], date.today())
        db.session.commit()
    except BadNotification as exc:
        return _refuse(source_address, method, exc.reason, str(exc), body, payload)
    except DomainError as exc:
        return _refuse(source_address, method, "malformed", str(exc), body, payload)
    except IntegrityError:
        # The transaction id already paid another order: a forged or confused notification.
        return _refuse(source_address, method, "repeated", _("This transaction id already paid another order."),
                       body, payload)
    except OperationalError:
        # The database is busy or down: the provider retries later, and the retry pays once.
        db.session.rollback()
        return _plain(_("Try again later."), 503)
    return _plain("OK", 200)


def _raw_body() -> bytes:
    """The notification's body as sent; a form that a hook already parsed is encoded back."""
    body = request.get_data(cache=True)
    if not body and request.form:
        body = urlencode(list(request.form.items(multi=True))).encode()
    return body


def _refuse(source_address: str, method: str, reason: str, message: str, body: bytes, payload: dict) -> Response:
    """Undo what the notification did, keep its trace in a transaction of its own, answer 400."""
    db.session.rollback()
    try:
        record_refusal(db.session, source_address, method, reason, message, body, payload.get("order_number"))
        db.session.commit()
    except OperationalError:
        db.session.rollback()
        current_app.logger.exception("refused payment notification from %s not recorded", source_address)
    return _plain(message, 400)


class RefusedNotificationView(ScopedModelView):
    """Refused payment notifications, newest first (finance and admins; read only)."""

    roles = frozenset({"finance"})
    can_create = can_edit = can_delete = False
    column_list = ("at", "reason", "method", "source", "order_number", "detail")
    column_details_list = ("at", "reason", "method", "source", "order_number", "detail", "body_excerpt")
    column_default_sort = ("at", True)
    column_filters = ("reason", "method", "source", "at")
    column_searchable_list = ("order_number", "source")
    column_choices = {"reason": list(NOTIFICATION_REFUSALS.items())}
    column_labels = {
        "at": _l("Time"), "reason": _l("Reason"), "method": _l("Payment method"), "source": _l("Source address"),
        "order_number": _l("Order number"), "detail": _l("Detail"), "body_excerpt": _l("Body (start)"),
    }


def register(admin, finance) -> None:
    admin.add_view(RefusedNotificationView(RefusedNotification, name=_l("Refused payment notifications"),
                                           category=finance))
