"""Payment pages: the sandbox provider's hosted pay page and the providers' callback.

The sandbox stands in for WeChat Pay, Alipay and PayPal (see actions.payments): the payer sees
the provider's page with the amount, pays or cancels, and the provider then notifies the app's
callback with a signed notification. The callback is where orders get paid; the pay page only
produces the notification.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError, OperationalError

from actions import DomainError
from actions.orders import scoped_order
from actions.payments import NOTIFICATION_FIELDS, check_method, handle_notification, provider_for
from admin_views.base import unit_of_work
from models import ORDER_STATUSES, PAYMENT_METHODS, db

# Providers post here: no CSRF token (app.py exempts it); the HMAC signature is the check.
callbacks = Blueprint("payment_callbacks", __name__, url_prefix="/payments/callback")
# The stand-in for the providers' hosted pay pages.
sandbox = Blueprint("sandbox", __name__, url_prefix="/sandbox")


def _secret() -> str:
    return current_app.config["PAYMENT_SANDBOX_SECRET"]


def _plain(text: str, status: int) -> Response:
    return Response(text, status=status, mimetype="text/plain")


def provider_label(method: str) -> str:
    """"WeChat Pay (sandbox)": the name the sandbox page shows for a method."""
    return _("%(provider)s (sandbox)", provider=PAYMENT_METHODS.get(method, method))


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
        check_method(method, order.currency)
    except DomainError as exc:
        flash(str(exc), "error")
        return redirect(pay_page)
    if order.status != "pending":
        flash(_("Order %(number)s is not awaiting payment (it is %(status)s).", number=order.number,
                status=ORDER_STATUSES[order.status]), "error")
        return redirect(order_page)
    if request.method == "GET":
        return render_template("renewdesk/sandbox_pay.html", order=order, method=method,
                               provider=provider_label(method))
    if request.form.get("decision") != "pay":
        flash(_("Payment cancelled at %(provider)s; order %(number)s still awaits payment.",
                provider=provider_label(method), number=order.number), "info")
        return redirect(pay_page)
    number, total, currency = order.number, order.total, order.currency
    payload, signature = provider_for(method, _secret()).notification(order)
    with unit_of_work() as work:
        handle_notification(db.session, method, payload, signature, _secret(), date.today())
    if work.failed:
        return redirect(order_page)
    flash(_("Order %(number)s is paid: %(amount)s %(currency)s with %(provider)s.", number=number,
            amount=total, currency=currency, provider=provider_label(method)), "success")
    return redirect(order_page)


@callbacks.route("/<method>", methods=("POST",))
def notify(method: str):
    """A provider's payment notification (form or JSON fields, signature in `X-Signature` or
    `signature`): 200 "OK" when it paid the order or repeats a payment already applied, 400 with
    the reason when it is forged, malformed, mismatched or for an order that cannot be paid."""
    data = request.get_json(silent=True) if request.is_json else None
    source = data if isinstance(data, dict) else request.form
    payload = {name: source.get(name) for name in NOTIFICATION_FIELDS}
    signature = request.headers.get("X-Signature") or source.get("signature") or ""
    if not isinstance(signature, str):
        signature = ""
    try:
        with unit_of_work(flash_error=False) as work:
            handle_notification(db.session, method, payload, signature, _secret(), date.today())
    except IntegrityError:
        # The transaction id already paid another order: a forged or confused notification.
        return _plain(_("This transaction id already paid another order."), 400)
    except OperationalError:
        # The database is busy or down: the provider retries later, and the retry pays once.
        return _plain(_("Try again later."), 503)
    if work.failed:
        return _plain(str(work.error), 400)
    return _plain("OK", 200)
