"""Paying through a real provider (actions.providers): its pay page, the payer's return, its notifications.

`start` is the provider's pay page: its POST asks the provider for the payment and shows what it gave
(WeChat Pay's `code_url` as a QR code rendered here with segno, or a redirect to the provider's page); a GET
changes nothing and shows the QR code of the payment still open (`open_qr_attempt`) or a button to open
one. `back` is where the provider sends the payer back (and the "I have paid" button): it asks the
provider and settles a paid order at once, through the same idempotent path as the notification;
WeChat Pay's payer not confirmed yet goes back to the same QR code. `notification` is the callback's
branch for providers with an adapter (admin_views.payments.notify).
"""
from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import segno
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError, OperationalError

from actions import DomainError
from actions.orders import refuse_online, scoped_order
from actions.payments import BadNotification, check_method
from actions.provider_settlement import check_paid, open_qr_attempt, record_attempt, settle, settle_refund_notice
from actions.providers.base import ProviderError, RefundNotice, ReturnUrls
from actions.permissions import ORDER_AREAS
from admin_views.base import require_areas
from admin_views.paid_pages import paid_order_page
from models import ORDER_STATUSES, PAYMENT_METHODS, db, utcnow

bp = Blueprint("provider_pay", __name__, url_prefix="/payments")
bp.before_request(require_areas(ORDER_AREAS))  # an employee pays only orders of its areas (scoped_order)


def adapters() -> dict:
    return current_app.extensions["renewdesk_payments"].adapters


def _order_and_provider(order_number: str, method: str):
    order = scoped_order(db.session, current_user, order_number)
    provider = adapters().get(method)
    if order is None or provider is None:
        abort(404)
    return order, provider


@bp.route("/pay/<order_number>/<method>", methods=("GET", "POST"))
@login_required
def start(order_number: str, method: str):
    """The provider's pay page for the order. A GET changes nothing: it shows the QR code of the payment
    still open there (a reload, the payer's return before the provider confirms), else a button to open one.
    The POST opens the payment (or shows the open one again): a QR code to scan, or off to the provider's page."""
    order, _provider = _order_and_provider(order_number, method)
    if order.status != "pending":
        flash(_("Order %(number)s is not awaiting payment (it is %(status)s).", number=order.number,
                status=ORDER_STATUSES[order.status]), "error")
        return redirect(url_for("renewal_center.order_view", number=order.number))
    try:
        check_method(method, order.currency, current_app.extensions["renewdesk_payments"].methods)
        refuse_online(db.session, order)
    except DomainError as exc:
        flash(str(exc), "error")
        return redirect(url_for("renewal_center.pay_view", number=order.number))
    if request.method == "POST":
        return open_payment(order, method)
    attempt = open_qr_attempt(db.session, order, method, utcnow())
    return render_template("renewdesk/provider_pay.html", order=order, method=method,
                           provider=PAYMENT_METHODS[method], qr_text=attempt.qr_text if attempt else None,
                           qr=_qr_svg(attempt.qr_text, method) if attempt else None,
                           back_url=url_for(".back", order_number=order.number, method=method))


def open_payment(order, method: str) -> Response:
    """Open the payment of a pending `order` at the provider of `method` (a POST: its pay page, the order's
    pay form): to the provider's page, or to the pay page showing its QR code. A QR code still open there is
    shown again rather than asking the provider for another payment."""
    number = order.number
    pay_page = url_for("provider_pay.start", order_number=number, method=method)
    if open_qr_attempt(db.session, order, method, utcnow()) is not None:
        return redirect(pay_page)
    back = url_for("provider_pay.back", order_number=number, method=method, _external=True)
    urls = ReturnUrls(return_url=back, cancel_url=url_for("renewal_center.pay_view", number=number, _external=True),
                      notify_url=url_for("payment_callbacks.notify", method=method, _external=True))
    try:
        started = adapters()[method].start(order, urls)
        record_attempt(db.session, order, started)
        db.session.commit()  # the order stays pending until the provider says it is paid
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("renewal_center.pay_view", number=number))
    except IntegrityError:  # the same payment recorded at the same moment (the button pressed twice): it is open
        db.session.rollback()
        return redirect(pay_page)
    return redirect(started.redirect_url or pay_page)


def _qr_svg(text: str, method: str) -> str:
    return segno.make(text, error="m").svg_inline(scale=6, title=PAYMENT_METHODS[method])


@bp.route("/return/<order_number>/<method>")
@login_required
def back(order_number: str, method: str):
    """The payer is back from the provider: ask it now rather than wait for its notification."""
    order, provider = _order_and_provider(order_number, method)
    number = order.number
    order_page = url_for("renewal_center.order_view", number=number)
    if order.status == "pending":
        try:
            paid = check_paid(db.session, provider, order, date.today())
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(order_page)
        if not paid:
            flash(_("%(provider)s has not confirmed the payment of %(number)s yet.",
                    provider=PAYMENT_METHODS[method], number=number), "info")
            # WeChat Pay's payer is back on its QR code (a GET: the same code, never another payment).
            return redirect(url_for(".start", order_number=number, method=method) if method == "wechat"
                            else order_page)
    db.session.expire_all()
    if order.status == "paid":
        flash(_("Order %(number)s is paid with %(provider)s.", number=number, provider=PAYMENT_METHODS[method]),
              "success")
        return redirect(paid_order_page(order))
    return redirect(order_page)


def notification(method: str, source_address: str, refuse) -> Response:
    """Verify the provider's notification, settle its order (or record how its refund ended) once, and answer
    as the provider wants.

    `refuse(reason, message, body, order_number)` records a refusal (admin_views.payments).
    """
    provider = adapters()[method]
    body = request.get_data(cache=True)
    if not body and request.form:
        # A hook (the NUL check) parsed the form first and consumed the stream: encode it back; the
        # form providers (Alipay) sign the decoded values, so nothing the signature covers changes.
        body = urlencode(list(request.form.items(multi=True))).encode()
    number = None
    try:
        notice = provider.parse_notification(request.headers, body, utcnow())
        if isinstance(notice, RefundNotice):  # how a refund ended (WeChat Pay's REFUND.*)
            number = notice.order_number
            settle_refund_notice(db.session, method, notice)
        elif notice is not None:  # None: verified, but it pays nothing (a closed trade, a refund notice)
            number = notice.order_number
            settle(db.session, provider, notice, date.today())
        db.session.commit()
    except ProviderError:
        # The provider could not be asked (verification is a call to it): it will send the notification again.
        db.session.rollback()
        return _answer(provider.answer(False, "try again later"), 503)
    except BadNotification as exc:
        refuse(exc.reason, str(exc), body, number)
        return _answer(provider.answer(False, str(exc)))
    except DomainError as exc:
        refuse("malformed", str(exc), body, number)
        return _answer(provider.answer(False, str(exc)))
    except IntegrityError:
        refuse("repeated", _("This transaction id already paid another order."), body, number)
        return _answer(provider.answer(False, "repeated"))
    except OperationalError:
        db.session.rollback()
        return _answer(provider.answer(False, "busy"), 503)
    return _answer(provider.answer(True))


def _answer(answer, status: int | None = None) -> Response:
    return Response(answer.body, status=status or answer.status, mimetype=answer.mimetype)
