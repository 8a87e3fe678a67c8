"""Stored texts shown in the reader's language: a message key and its parameters, kept as JSON beside
the plain English text, rendered through Babel when a page shows them.

Order lines, ledger memos and audit summaries are written once and read by people of every
language: "Recharge ¥1,000.00" stored as English would show English in the Chinese console. So
the writer stores `message("order.line.recharge", amount=money_param(amount, "CNY"))` and the page
renders it with `render(data, fallback)` (Jinja: `{{ stored_text(data, fallback) }}`) in the
reader's locale. Rows written before a message existed have no data and show their plain text.

Parameters are plain strings and integers, or tagged values formatted when shown:
`money_param(amount, currency)` (through actions.money.format_money), `label_param(group, code)`
(a choice label such as a payment method, through its lazy_gettext label), `count_param(n, unit)`,
and another stored message (`message(...)`), rendered in the same language (a bad row's reason
inside "row 5: …").
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from actions.money import format_amount, format_money, format_percent
from actions.passwords import LIST_SEPARATOR

# Every message a stored text may name. Keys are stable (rows keep them); the English is the msgid.
MESSAGES = {
    # order lines
    "order.line.recharge": _l("Recharge %(amount)s"),
    "order.line.coins": _l("%(coins)s coins"),
    "order.line.seats": _l("%(edition)s seats × %(quantity)s"),
    "order.line.renewal": _l("%(device)s %(package)s × %(months)s months"),
    "order.line.value_added": _l("%(device)s %(package)s × %(months)s months"),
    "order.line.plan": _l("%(service)s · %(plan)s · %(months)s months"),
    "order.note.auto_renew": _l("Auto-renewal, period %(period)s"),
    # a SIM card's timeline (card_movement.note)
    "card.move.refund": _l("Refund of order %(order)s"),
    "card.move.auto_received": _l("Received automatically"),
    # A subscription's order: params subscription (its number) and purpose (start, renewal or upgrade)
    "order.note.subscription_start": _l("Registration of subscription %(subscription)s"),
    "order.note.subscription_renewal": _l("Renewal of subscription %(subscription)s"),
    "order.note.subscription_upgrade": _l("Plan change of subscription %(subscription)s"),
    # ledger memos
    "ledger.paid": _l("Order %(order)s paid by %(method)s"),
    "ledger.payment": _l("Payment of order %(order)s"),
    "ledger.refund": _l("Refund of order %(order)s"),
    "ledger.bank_transfer": _l("Bank transfer receipt #%(receipt)s for order %(order)s: %(amount)s received"),
    "ledger.offline_recharge": _l("Offline recharge #%(id)s from %(payer)s"),
    "ledger.offline_recharge_ref": _l("Offline recharge #%(id)s from %(payer)s, reference %(reference)s"),
    "ledger.commission": _l("Commission for %(month)s"),
    "ledger.withdrawal": _l("Withdrawal #%(id)s"),
    "ledger.withdrawal_release": _l("Withdrawal #%(id)s not paid"),
    "ledger.upgrade_credit": _l("%(subscription)s: unused days before the upgrade"),
    # audit summaries
    # An edit's changes, each "field: old → new" with the field's label (and choice labels) in the reader's
    # language: the text is the `changes` parameter alone (a `changes_param`).
    "audit.changes": _l("%(changes)s"),
    "audit.billing.create": _l("%(company)s: billing config created (%(changes)s)"),
    "audit.billing.configure": _l("%(company)s: %(changes)s"),
    "audit.invoice_title": _l("%(company)s: %(changes)s"),
    "audit.invoice.request": _l("%(type)s for %(company)s: %(amount)s over orders %(orders)s"),
    "audit.invoice.issue": _l("Invoice %(number)s of %(date)s over %(count)s orders"),
    "audit.invoice.reject": _l("Rejected (%(reason)s); orders released: %(orders)s"),
    "audit.cards": _l("%(count)s cards"),
    "audit.package.stop_sales": _l("%(code)s: sales stopped; %(devices)s devices bound, offered to %(offers)s "
                                   "companies, %(companies)s companies concerned"),
    "audit.bind.devices": _l("Renewal package → %(code)s on %(count)s devices (was: %(was)s)"),
    "audit.bind.type": _l("Renewal package → %(code)s on %(count)s devices of type %(type)s of %(company)s"),
    "audit.bind.type_subsidiaries": _l("Renewal package → %(code)s on %(count)s devices of type %(type)s of "
                                       "%(company)s and its subsidiaries"),
    "audit.bind.remove": _l("Renewal package removed from %(count)s devices (was: %(was)s)"),
    "audit.bind.offer": _l("%(company)s: offered %(codes)s"),
    "audit.bind.rebind": _l("%(device)s: renewal package %(old)s (no longer sold) → %(code)s"),
    "audit.user.create": _l("User %(username)s created (%(role)s)"),
    "audit.user.register": _l("User %(username)s registered"),
    "audit.user.login_failed": _l("Failed sign-in as %(username)s"),
    "audit.employee.create": _l("Employee %(username)s created in %(company)s; permissions: %(areas)s"),
    "audit.employee.areas": _l("Employee %(username)s: permissions %(old)s → %(new)s"),
    "audit.employee.deactivate": _l("Employee %(username)s deactivated"),
    "audit.employee.activate": _l("Employee %(username)s reactivated"),
    "audit.employee.reset_password": _l("Employee %(username)s: password reset"),
    "audit.organizer.create": _l("Organizer %(email)s (%(name)s), %(edition)s seat of %(company)s; invitation sent"),
    "audit.organizer.reinvite": _l("Invitation sent again to %(logins)s"),
    "audit.members.upgrade": _l("Order %(order)s: %(count)s accounts to %(level)s for %(months)s months, %(coins)s "
                                "from %(payer)s: %(logins)s"),
    "audit.members.upgrade_converted": _l("Order %(order)s: %(count)s accounts to %(level)s for %(months)s months, "
                                          "%(coins)s (%(converted)s of them for converted days) from %(payer)s: "
                                          "%(logins)s"),
    "audit.members.reread": _l("%(count)s accounts re-read; %(lapsed)s lapsed: %(logins)s"),
    "audit.reveal.id_number": _l("ID number revealed: %(reason)s"),
    "audit.reveal.pin": _l("PIN of %(iccid)s revealed: %(reason)s"),
    "audit.commission_rule": _l("%(company)s: %(mode)s, %(kind)s"),
    "audit.commission_rule.change": _l("%(company)s, %(package)s: %(mode)s, %(kind)s, rate %(old)s → %(new)s"),
    "audit.commission_rule.share": _l("%(company)s, %(package)s: share passed down by %(parent)s %(old)s → "
                                      "%(new)s"),
    "audit.commission_rule.capped": _l("%(company)s, %(package)s: share passed down by %(parent)s %(old)s → "
                                       "%(new)s, capped at the rate of %(parent)s"),
    "audit.commission_rule.delete": _l("%(company)s, %(package)s: rule deleted (rate %(old)s)"),
    "audit.subscription.create": _l("%(number)s: %(plan)s × %(months)s months for %(company)s, total %(total)s, "
                                    "terms %(terms)s"),
    "audit.subscription.expired_unpaid": _l("%(order)s: subscription expired unpaid"),
    "audit.subscription.cancel_now": _l("%(number)s: refund #%(refund)s of %(order)s"),
    "audit.subscription.upgrade": _l("%(number)s: %(old)s → %(new)s, order %(order)s"),
    "audit.subscription.downgrade": _l("%(number)s: %(old)s → %(new)s × %(months)s months from %(date)s"),
    "audit.cash.entered": _l("%(order)s: %(amount)s received on %(date)s"),
    "audit.cash.confirmed": _l("%(order)s: confirmed"),
    "audit.cash.rejected": _l("%(order)s: rejected — %(reason)s"),
    "audit.reveal.bank_account": _l("Bank account revealed: %(reason)s"),
    "audit.tenant.reject": _l("Rejected: %(reason)s"),
    "audit.company.create": _l("Company %(name)s"),
    "audit.billing.push_email": _l("Push email %(old)s → %(new)s"),
    "audit.tenant.apply": _l("Application of %(company)s (tax ID %(tax_id)s), parent company: %(parent)s"),
    "audit.tenant.approve": _l("Company %(company)s opened with administrator %(username)s, parent company: "
                               "%(parent)s"),
    "audit.mail.retry": _l("%(count)s failed mails queued again"),
    "audit.cards.removed": _l("%(count)s cards removed"),
    "audit.cards.preview": _l("%(file)s: %(new)s new, %(bad)s bad"),
    "audit.cards.export": _l("Cards exported, PINs masked"),
    "audit.cards.export_pins": _l("Cards exported with PINs"),
    "audit.card_order.ship": _l("Order %(order)s: %(count)s cards shipped by %(carrier)s"),
    "ledger.demo_balance": _l("Opening balance (demo data)"),
    "audit.billing.unchanged": _l("%(company)s: billing config unchanged"),
    "audit.billing.delete": _l("%(company)s: billing config deleted (it was %(changes)s); the company inherits again"),
    "audit.recharge.create": _l("Application #%(id)s (%(status)s): %(amount)s from %(payer)s to %(company)s"),
    "audit.recharge.submit": _l("Application #%(id)s submitted: %(amount)s from %(payer)s"),
    "audit.recharge.review": _l("Application #%(id)s %(status)s: %(amount)s from %(payer)s to %(company)s"),
    "audit.recharge.review_comment": _l("Application #%(id)s %(status)s: %(amount)s from %(payer)s to %(company)s; "
                                        "comment: %(comment)s"),
    "audit.recharge.edit": _l("Application #%(id)s: %(changes)s"),
    "audit.devices": _l("%(count)s devices"),
    "audit.expiry_import": _l("Expiry import #%(id)s (%(file)s): %(count)s devices; %(changes)s"),
    "audit.expiry_import.set_back": _l("Expiry import #%(id)s (%(file)s) failed: %(count)s devices changed since its "
                                       "preview (%(numbers)s); the %(applied)s devices already set were set back, "
                                       "%(kept)s of them left as someone else changed them since"),
    # the lines both imports keep (importers.expiry.stored_errors): "row N: <a bad row's reason>", then
    # perhaps "… and N more"
    "import.row": _l("row %(row)s: %(reason)s"),
    "import.more": _l("… and %(n)s more"),
    # the expiry import (importers.expiry): each bad row's reason, and the refusals of a whole file, kept on
    # the failed import
    "expiry_import.headers": _l("wrong headers: the first row must hold %(number)s and %(expiry)s (or %(number_zh)s "
                                "and %(expiry_zh)s), each once; found: %(found)s"),
    "expiry_import.nothing": _l("nothing"),
    "expiry_import.number_formula": _l("formula in cell %(cell)s: type the device number, not a formula"),
    "expiry_import.number_empty": _l("empty cell: %(cell)s (device number)"),
    "expiry_import.date_formula": _l("formula in cell %(cell)s: type the date, not a formula"),
    "expiry_import.date_empty": _l("empty cell: %(cell)s (new expiry date)"),
    "expiry_import.date_impossible": _l("impossible date %(value)s in cell %(cell)s"),
    "expiry_import.date_text": _l("unparseable date %(value)s in cell %(cell)s: use YYYY-MM-DD"),
    "expiry_import.date_value": _l("unparseable date %(value)s in cell %(cell)s: use a date cell or YYYY-MM-DD"),
    "expiry_import.date_outside": _l("date %(value)s in cell %(cell)s is outside %(first)s – %(last)s"),
    "expiry_import.duplicate": _l("duplicate in file: device %(number)s is also on row %(row)s"),
    "expiry_import.unknown": _l("unknown device %(number)s"),
    "expiry_import.out_of_scope": _l("out of scope: device %(number)s is not one of your companies' devices"),
    "expiry_import.not_xlsx_name": _l("Only .xlsx workbooks can be imported; %(name)s is not one."),
    "expiry_import.too_large": _l("The file is larger than %(size)s."),
    "expiry_import.not_xlsx": _l("This is not an .xlsx workbook (Excel 2007 or later)."),
    "expiry_import.parts": _l("The workbook has %(n)s parts; at most %(max)s are accepted."),
    "expiry_import.ratio": _l("The workbook is compressed suspiciously well (%(name)s expands more than %(ratio)s "
                              "times): refused as a possible zip bomb."),
    "expiry_import.expands": _l("The workbook expands to more than %(size)s: refused as a possible zip bomb."),
    "expiry_import.unreadable": _l("The workbook could not be read (%(error)s). Save it again from Excel as .xlsx "
                                   "and retry."),
    "expiry_import.strings": _l("The workbook holds far more text than %(rows)s rows need: refused."),
    "expiry_import.all_hidden": _l("Every sheet of the workbook is hidden (%(sheets)s); unhide the sheet with the "
                                   "devices and upload it again."),
    "expiry_import.only_visible": _l("Only the visible sheet %(sheet)s is read, and it holds no device rows; hidden "
                                     "sheets (%(hidden)s) are never imported: unhide the sheet with the devices or "
                                     "copy its rows to %(sheet)s."),
    "expiry_import.no_rows": _l("The file has no rows below the header row."),
    "expiry_import.too_many_rows": _l("The file has more than %(max)s rows; split it into smaller files."),
    "expiry_import.conflict": _l("Import #%(id)s was not committed: %(n)s devices changed since its preview "
                                 "(%(numbers)s). Nothing was changed; upload the file again."),
    # a card's own fields (actions.cards.card_field_problems: the add form and the card import)
    "card.iccid": _l("ICCID %(value)s: 19 or 20 characters starting with 89"),
    "card.phone": _l("phone number %(value)s: 5 to 20 digits"),
    "card.pin": _l("PIN: 4 to 16 letters or digits"),
    "card.valid_until_empty": _l("valid until: enter a date (yyyy-mm-dd)"),
    "card.valid_until_text": _l("valid until %(value)s: enter a date (yyyy-mm-dd)"),
    "card.valid_until_past": _l("valid until %(day)s is in the past"),
    "card.valid_until_late": _l("valid until %(day)s is after %(last)s"),
    "card.plan_unknown": _l("plan %(code)s is not an active card package"),
    "card.iccid_taken": _l("ICCID %(value)s is already in the inventory"),
    "card.phone_taken": _l("phone number %(value)s is already in the inventory"),
    "card.pin_taken": _l("this PIN is already used by another card"),
    # the card import (importers.cards): a bad row's reasons, each kept as its own "row N: …" line
    # (import.row), shown in the reader's language; field: label_param("card_field", …)
    "card_import.formula": _l("formula %(value)s in cell %(cell)s (%(field)s): type the value, not a formula"),
    "card_import.iccid_number": _l("ICCID %(value)s in cell %(cell)s is stored as a number and loses digits: "
                                   "format the column as text"),
    "card_import.duplicate": _l("duplicate in file: %(field)s %(value)s is also on row %(row)s"),
    "card_import.duplicate_pin": _l("duplicate in file: same %(field)s as row %(row)s"),
    "audit.order.free": _l("Order %(order)s: nothing to pay (total 0)"),
    "audit.order.renewal": _l("Order %(order)s: renew %(devices)s devices × %(months)s months = %(amount)s"),
    "audit.order.recharge": _l("Order %(order)s: recharge %(amount)s"),
    "audit.order.value_added": _l("Order %(order)s: %(package)s for %(devices)s devices × %(months)s months = "
                                  "%(amount)s"),
    "audit.order.coins": _l("Order %(order)s: %(coins)s coins for %(amount)s (%(company)s), to pay by %(method)s"),
    "audit.seats.expired": _l("Order %(order)s: %(quantity)s %(edition)s seats of %(company)s expired on "
                              "%(date)s and were taken back"),
    "audit.seats.expired_deactivated": _l("Order %(order)s: %(quantity)s %(edition)s seats of %(company)s expired "
                                          "on %(date)s and were taken back; organizers deactivated to fit: "
                                          "%(logins)s"),
    "audit.order.seats": _l("Order %(order)s: %(quantity)s %(edition)s seats for %(company)s, %(amount)s"),
    "audit.order.seats_promotion": _l("Order %(order)s: %(quantity)s %(edition)s seats for %(company)s, "
                                      "%(amount)s (promotion: %(promotion)s)"),
    "audit.order.seats_granted": _l("Order %(order)s: %(quantity)s %(edition)s seats for %(company)s, "
                                    "%(amount)s in cash (%(note)s)"),
    "audit.order.pay_balance": _l("Order %(order)s: %(amount)s paid from the balance"),
    "audit.order.pay_offline": _l("Order %(order)s: %(amount)s paid by %(method)s"),
    "audit.order.pay_offline_note": _l("Order %(order)s: %(amount)s paid by %(method)s (%(note)s)"),
    "audit.order.pay_provider": _l("Order %(order)s: %(amount)s paid by %(method)s (%(reference)s)"),
    "audit.order.auto_renew": _l("Order %(order)s: renew %(devices)s devices × %(months)s months = %(amount)s from "
                                 "the balance (period %(period)s)"),
    "audit.auto_renew.run": _l("%(day)s: %(renewed)s devices renewed in %(orders)s orders, %(insufficient)s with "
                               "insufficient balance, %(no_package)s without a package, %(failed)s failed, "
                               "%(skipped)s skipped"),
    "audit.remind.run": _l("%(day)s: %(queued)s expiry reminders queued (%(devices)s devices)"),
    "audit.order.cancel": _l("Order %(order)s cancelled"),
    "audit.order.cancel_stale": _l("%(count)s pending orders expired"),
    "audit.order.request_refund": _l("Order %(order)s: refund #%(refund)s of %(lines)s lines, %(amount)s"),
    "audit.order.refund": _l("Order %(order)s: refund #%(refund)s of %(lines)s lines, %(amount)s back by %(method)s"),
    "audit.order.refund_free": _l("Order %(order)s: refund #%(refund)s of %(lines)s lines (free order)"),
    "audit.order.refund_failed": _l("Order %(order)s: refund #%(refund)s refused by %(method)s: %(reason)s"),
    "audit.order.refund_processing": _l("Order %(order)s: refund #%(refund)s of %(lines)s lines, %(amount)s accepted "
                                        "by %(method)s, not paid out yet"),
    "audit.order.refund_paid_out": _l("Order %(order)s: refund #%(refund)s, %(amount)s paid out by %(method)s"),
    "audit.order.refund_not_paid_out": _l("Order %(order)s: refund #%(refund)s, %(amount)s not paid out by "
                                          "%(method)s: %(reason)s"),
    "audit.order.refund_by_hand": _l("Order %(order)s: refund #%(refund)s, %(amount)s paid back by hand: %(note)s"),
    "audit.order.reject_refund": _l("Order %(order)s: refund #%(refund)s rejected: %(reason)s"),
    # subscription history
    "subscription.paid": _l("Order %(order)s: %(amount)s paid by %(method)s"),
    "subscription.renewal_on": _l("Auto-renew on, by %(method)s"),
    "subscription.renewal_off": _l("Auto-renew off, by %(method)s"),
    "subscription.suspended": _l("Suspended"),
    "subscription.resumed": _l("Resumed"),
    "subscription.change_withdrawn": _l("Plan change withdrawn: stays on %(plan)s × %(months)s months"),
    "subscription.cancel_now": _l("Cancel now: refund #%(id)s awaits approval by finance."),
    "subscription.upgrade_credit": _l("Credit for unused days: %(amount)s to the balance."),
    "subscription.amount": _l("Amount %(amount)s"),
    "subscription.refunded": _l("Refunded: %(lines)s"),
    "audit.receipt.submit": _l("Order %(order)s: receipt for %(amount)s from %(payer)s (%(account)s)"),
    "audit.receipt.submit_differs": _l("Order %(order)s: receipt for %(amount)s from %(payer)s (%(account)s); "
                                       "the order is for %(total)s"),
    "audit.receipt.confirm": _l("Order %(order)s: %(amount)s received by bank transfer; order paid"),
    "audit.receipt.credit": _l("Order %(order)s: %(amount)s received by bank transfer, not the order total "
                               "%(total)s; credited to the balance, order still awaiting payment"),
    "audit.receipt.reject": _l("Order %(order)s: receipt rejected: %(reason)s"),
    "audit.quote.saved": _l("Quote %(number)s for %(customer)s: %(lines)s lines, %(total)s, valid until %(day)s"),
    "audit.quote.status": _l("Quote %(number)s: %(old)s → %(new)s"),
    "audit.quote.accept": _l("Quote %(number)s converted into orders %(orders)s"),
    "audit.quote.expire": _l("%(count)s quotes expired: %(numbers)s"),
}


def _labels() -> dict[str, dict]:
    """The choice lists a `label_param` may name (looked up when shown, so a new label needs no migration)."""
    from actions.permissions import AREAS
    from models import (
        CARD_FIELDS, CARD_QUOTE_STATUSES, COMMISSION_KINDS, COMMISSION_MODES, INVOICE_TYPES, LEDGER_KINDS, ORDER_KINDS,
        PAYMENT_METHODS, RECEIPT_STATUSES, RECHARGE_STATUSES, RENEWAL_METHODS, SEAT_EDITIONS, USER_ROLES, VIP_LEVELS,
        WALLET_CURRENCIES,
    )

    return {"payment_method": PAYMENT_METHODS, "seat_edition": SEAT_EDITIONS, "order_kind": ORDER_KINDS,
            "recharge_status": RECHARGE_STATUSES,
            "ledger_kind": LEDGER_KINDS, "receipt_status": RECEIPT_STATUSES, "currency": WALLET_CURRENCIES,
            "renewal_method": RENEWAL_METHODS, "invoice_type": INVOICE_TYPES,
            "user_role": USER_ROLES, "vip_level": VIP_LEVELS, "commission_mode": COMMISSION_MODES,
            "commission_kind": COMMISSION_KINDS, "quote_status": CARD_QUOTE_STATUSES, "permission_area": AREAS,
            "card_field": CARD_FIELDS}


def message(key: str, **params) -> dict:
    """The JSON to store for message `key` with `params`; an unknown key is a programming error."""
    if key not in MESSAGES:
        raise KeyError(f"unknown stored-text message {key!r}: add it to actions.texts.MESSAGES")
    return {"key": key, "params": params}


def money_param(amount, currency: str) -> dict:
    return {"money": str(Decimal(amount)), "currency": currency}


def label_param(group: str, code: str | None) -> dict:
    return {"label": group, "code": code or ""}


def labels_param(group: str, codes) -> dict:
    """Several choice labels of one group (permission areas), shown joined in the reader's language; none: "—"."""
    return {"labels": group, "codes": [str(code) for code in codes]}


def messages_param(items) -> dict:
    """Several stored texts (a message, or plain text where there is none), shown joined in the reader's language."""
    return {"messages": list(items)}


def percent_param(basis_points: int | None) -> dict:
    """A rate stored in basis points (800), shown as the reader writes a percent (8%, 12,5% in Vietnamese)."""
    return {"basis_points": None if basis_points is None else int(basis_points)}


def plan_param(code: str | None) -> dict:
    """A package by its code, or None: every package (shown in the reader's language)."""
    return {"plan": code or ""}


def msgid(text) -> str:
    """The English msgid of a lazy_gettext label (to store and translate when shown); plain text as it is."""
    args = getattr(text, "_args", None)
    return args[0] if args and isinstance(args[0], str) else str(text)


def _stored_value(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat(" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


def change(field: str, label, old, new, choices: dict | None = None) -> dict:
    """One changed field of an edit, for `changes_param`: its key, its label's msgid, the old and new values
    (a choice's label msgid kept beside its code, so "active" reads 正常 in Chinese)."""

    def value(v):
        if choices and v in choices:
            return {"code": _stored_value(v), "label": msgid(choices[v])}
        return _stored_value(v)

    return {"field": field, "label": msgid(label) if label is not None else field, "old": value(old),
            "new": value(new)}


def setting(field: str, label, value, choices: dict | None = None) -> dict:
    """One field's value (not a change), for `changes_param`: shown "label: value" (a created or deleted row)."""
    shown = change(field, label, None, value, choices)
    return {"field": shown["field"], "label": shown["label"], "value": shown["new"]}


def changes_param(changes) -> dict:
    """The changes of an edit (`change(...)` each), shown "label: old → new; …" in the reader's language."""
    return {"changes": list(changes)}


CHANGE = _l("%(field)s: %(old)s → %(new)s")
CHANGED = _l("%(field)s: changed")
SETTING = _l("%(field)s: %(value)s")
CHANGE_SEPARATOR = _l("; ")
YES, NO = _l("Yes"), _l("No")
EVERY_PLAN = _l("Every plan")


def _shown(value) -> str:
    from flask_babel import gettext as translated  # of a stored msgid (not a literal for pybabel to extract)

    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(YES if value else NO)
    if isinstance(value, dict):
        return translated(value["label"]) if value.get("label") else str(value.get("code", ""))
    return str(value)


def _changes_text(changes) -> str:
    from flask_babel import gettext as translated  # of a stored msgid (not a literal for pybabel to extract)

    parts = []
    for item in changes:
        name = item.get("label") or item.get("field") or ""
        label = translated(name) if name else ""
        if item.get("changed"):
            parts.append(str(CHANGED) % {"field": label})
        elif "value" in item:
            parts.append(str(SETTING) % {"field": label, "value": _shown(item.get("value"))})
        else:
            parts.append(str(CHANGE) % {"field": label, "old": _shown(item.get("old")), "new": _shown(item.get("new"))})
    return str(CHANGE_SEPARATOR).join(parts)


def count_param(n, unit: str = "COIN") -> dict:
    """A whole number shown with the reader's grouping (216,000)."""
    return {"count": str(n), "unit": unit}


def _value(value) -> str:
    if isinstance(value, dict):
        if "key" in value:  # a stored message inside another
            return render(value)
        if "money" in value:
            return format_money(Decimal(value["money"]), value.get("currency", "CNY"))
        if "label" in value:
            label = _labels().get(value["label"], {}).get(value.get("code", ""))
            return str(label) if label is not None else str(value.get("code", ""))
        if "labels" in value:
            group = _labels().get(value["labels"], {})
            codes = value.get("codes") or []
            return str(LIST_SEPARATOR).join(str(group.get(code, code)) for code in codes) if codes else "—"
        if "count" in value:
            return format_amount(Decimal(value["count"]), value.get("unit", "COIN"))
        if "changes" in value:
            return _changes_text(value["changes"])
        if "basis_points" in value:
            return "—" if value["basis_points"] is None else format_percent(Decimal(value["basis_points"]) / 100)
        if "plan" in value:
            return value["plan"] or str(EVERY_PLAN)
        if "messages" in value:  # several stored texts (order lines' descriptions), each a message or plain text
            return str(LIST_SEPARATOR).join(render(item) if isinstance(item, dict) else str(item)
                                            for item in value["messages"])
    return "" if value is None else str(value)


def render(data, fallback: str = "") -> str:
    """`data` (a stored message) in the current locale; `fallback` when there is none or it cannot be read."""
    if not isinstance(data, dict) or data.get("key") not in MESSAGES:
        return fallback or ""
    return _filled(str(MESSAGES[data["key"]]), data, fallback)


def _filled(template: str, data: dict, fallback: str) -> str:
    params = {name: value if isinstance(value, str) else _value(value)
              for name, value in (data.get("params") or {}).items()}
    try:
        return template % params
    except (KeyError, TypeError, ValueError):
        return fallback or ""


def english(data, fallback: str = "") -> str:
    """The plain English text of `data`, stored beside it for searches, exports and old readers."""
    from flask_babel import force_locale

    with force_locale("en"):
        return render(data, fallback)


def render_all(items) -> list[str]:
    """`render(item)` for each stored message of `items` in the current locale (plain strings pass through);
    each key's template is looked up once: a file of a thousand bad rows shares a few."""
    templates: dict[str, str] = {}

    def rendered(data: dict) -> str:
        key = data.get("key")
        template = templates.get(key)
        if template is None:
            if key not in MESSAGES:
                return ""
            template = templates[key] = str(MESSAGES[key])
        return _filled(template, data, "")

    return [rendered(item) if isinstance(item, dict) else item for item in items]


def english_all(items) -> list[str]:
    """`english(item)` for each stored message of `items` (plain strings pass through), in one locale switch."""
    from flask_babel import force_locale

    with force_locale("en"):
        return render_all(items)
