"""银行转账: a customer uploads the electronic receipt of a bank transfer paying a pending order;
finance confirms the amount that actually arrived, or rejects the receipt with a reason (the order
stays pending and the customer may upload again).

The amount on the receipt is what the customer declares; a receipt whose amount differs from the
order's total is accepted but flagged (`amount_matches`), on upload and in finance's list.
What arrived decides (`confirm_receipt(received=…)`), and no money is ever lost or invented:
- received == the order's total: the receipt is confirmed and the order paid (actions.orders.mark_paid,
  method bank_transfer), exactly once;
- any other amount: the order is NOT marked paid; what arrived is credited to the company's prepaid
  balance in the order's currency (ledger kind "bank_transfer", one entry, same transaction) and the
  receipt is "credited". The customer can pay the order from the balance (or finance refunds it).

Receipt files are PNG, JPEG or PDF, recognised by their first bytes (the file name must agree),
at most BANK_RECEIPT_MAX_BYTES, and kept once under <folder>/<sha256>: the database row holds
the hash, the original name and the type found. Every status change is a conditional UPDATE
(`… WHERE status = 'submitted'`) checked by rowcount, so two finance clerks confirming at once
pay the order once.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from actions import DomainError, in_scope, require_role
from actions.audit import record
from actions.orders import mark_paid
from actions.money import parse, to_minor
from actions.text_input import one_line, text_block
from actions.texts import message, money_param
from actions.wallets import credit, wallet_for
from models import BankTransferReceipt, Order, User, utcnow

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_PAYER_COMPANY = 200
MAX_PAYER_ACCOUNT = 64
MAX_REASON = 2000
UPLOAD_ROLES = {"customer_admin"}
REVIEW_ROLES = {"finance"}
TRANSFER_CURRENCIES = ("CNY", "USD")


@dataclass(frozen=True)
class FileKind:
    content_type: str
    extensions: tuple[str, ...]
    magic: bytes


FILE_KINDS = (
    FileKind("image/png", (".png",), b"\x89PNG\r\n\x1a\n"),
    FileKind("image/jpeg", (".jpg", ".jpeg"), b"\xff\xd8\xff"),
    FileKind("application/pdf", (".pdf",), b"%PDF-"),
)


class AlreadyReviewed(DomainError):
    """The receipt was confirmed or rejected already (perhaps by someone else a moment ago)."""


def sniff(data: bytes) -> FileKind | None:
    """The kind of file `data` starts like (PNG, JPEG or PDF), or None."""
    return next((kind for kind in FILE_KINDS if data.startswith(kind.magic)), None)


def check_file(file_name: str, data: bytes, max_bytes: int) -> FileKind:
    """The file's kind, or DomainError: empty, too big, not PNG/JPEG/PDF, or a name that lies about it."""
    name = file_name or ""
    if not data:
        raise DomainError(_l("Choose the receipt file (PNG, JPEG or PDF)."))
    if len(data) > max_bytes:
        raise DomainError(_l("%(name)s is larger than %(max)s MB.", name=name, max=f"{max_bytes / 1048576:g}"))
    kind = sniff(data)
    if kind is None:
        raise DomainError(_l("%(name)s is not a PNG, JPEG or PDF file.", name=name))
    if not name.lower().endswith(kind.extensions):
        raise DomainError(_l("%(name)s is a %(type)s file but its name says otherwise; name it %(ext)s.",
                             name=name, type=kind.content_type, ext=" / ".join(kind.extensions)))
    return kind


def store_file(data: bytes, folder: str | os.PathLike) -> str:
    """Keep `data` as <folder>/<sha256> (written once, atomically); return the hash."""
    digest = hashlib.sha256(data).hexdigest()
    target = Path(folder) / digest
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    return digest


def file_path(folder: str | os.PathLike, receipt: BankTransferReceipt) -> Path:
    return Path(folder) / receipt.file_sha256


PAYEE_FIELDS = ("name", "bank", "account", "branch", "swift")


def payee_for(setting, currency: str) -> dict | None:
    """The account a customer pays `currency` into (对公账户), from BANK_TRANSFER_PAYEE; None if not configured.

    The setting maps a currency to {"name", "bank", "account"} (optional "branch", "swift"); a JSON text
    of that (the environment's form) is read too. A currency without an entry has no payee shown."""
    if isinstance(setting, str):
        try:
            setting = json.loads(setting) if setting.strip() else None
        except ValueError:
            return None
    if not isinstance(setting, dict):
        return None
    entry = setting.get(currency)
    if not isinstance(entry, dict) or not all(str(entry.get(k) or "").strip() for k in ("name", "bank", "account")):
        return None
    return {k: str(entry.get(k) or "").strip() for k in PAYEE_FIELDS}


def takes_bank_transfer(actor: User, order: Order) -> bool:
    """True when `actor` may pay `order` by bank transfer: a customer administrator's pending order in a
    currency with a company account (they pay it, then upload the electronic receipt)."""
    return actor.role in UPLOAD_ROLES and order.status == "pending" and order.currency in TRANSFER_CURRENCIES


def open_receipt(session: Session, order: Order) -> BankTransferReceipt | None:
    """The receipt of `order` awaiting confirmation, if any."""
    return session.scalar(select(BankTransferReceipt).where(BankTransferReceipt.order_id == order.id,
                                                            BankTransferReceipt.status == "submitted"))


def submit_receipt(session: Session, actor: User, order: Order, payer_company: str, payer_account: str, amount,
                   file_name: str, data: bytes, folder: str | os.PathLike,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> BankTransferReceipt:
    """Attach a transfer receipt to a pending order of the actor's companies (one open receipt per order)."""
    require_role(actor, UPLOAD_ROLES)
    if not in_scope(actor, order.company_id, session):
        raise DomainError(_l("Order %(number)s is outside your companies.", number=order.number))
    if order.status != "pending":
        raise DomainError(_l("Order %(number)s is not awaiting payment.", number=order.number))
    if order.currency not in TRANSFER_CURRENCIES:
        raise DomainError(_l("Order %(number)s is paid in %(currency)s, not by bank transfer.",
                             number=order.number, currency=order.currency))
    if open_receipt(session, order) is not None:
        raise DomainError(_l("Order %(number)s already has a receipt awaiting confirmation by finance.",
                             number=order.number))
    payer_company = one_line(payer_company, _l("Payer company"), MAX_PAYER_COMPANY)
    payer_account = one_line(payer_account, _l("Payer bank account"), MAX_PAYER_ACCOUNT)
    amount = parse(amount, order.currency, str(_l("Amount")))
    kind = check_file(file_name, data, max_bytes)
    digest = store_file(data, folder)
    receipt = BankTransferReceipt(
        order_id=order.id, payer_company=payer_company, payer_account=payer_account, amount=amount,
        file_name=os.path.basename((file_name or "").replace("\\", "/"))[:255] or "receipt",
        content_type=kind.content_type, file_sha256=digest, file_size=len(data), status="submitted",
        uploaded_by_id=actor.id, created_at=utcnow(),
    )
    session.add(receipt)
    session.flush()
    params = dict(order=order.number, amount=money_param(amount, order.currency), payer=payer_company,
                  account=payer_account)
    if amount_matches(receipt):
        record(session, actor, "submit", "bank_transfer_receipt", [receipt.id],
               message("audit.receipt.submit", **params))
    else:
        record(session, actor, "submit", "bank_transfer_receipt", [receipt.id],
               message("audit.receipt.submit_differs", **params, total=money_param(order.total, order.currency)))
    session.flush()
    return receipt


def amount_matches(receipt: BankTransferReceipt) -> bool:
    """Whether the amount the customer declared equals the order's total."""
    return receipt.amount == receipt.order.total


def amount_differs_clause():
    """SQL: the receipt's declared amount differs from its order's total (finance's list filter)."""
    total = select(Order.total_minor).where(Order.id == BankTransferReceipt.order_id).scalar_subquery()
    return BankTransferReceipt.amount_minor != total


def _claim(session: Session, receipt: BankTransferReceipt, new_status: str, actor: User, comment: str = "",
           received_minor: int | None = None) -> None:
    result = session.execute(
        update(BankTransferReceipt)
        .where(BankTransferReceipt.id == receipt.id, BankTransferReceipt.status == "submitted")
        .values(status=new_status, reviewed_by_id=actor.id, reviewed_at=utcnow(), comment=comment,
                received_minor=received_minor)
        .execution_options(synchronize_session=False)
    )
    session.expire(receipt)
    if result.rowcount != 1:
        raise AlreadyReviewed(_l("Receipt #%(id)s was reviewed already.", id=receipt.id))


def confirm_receipt(session: Session, actor: User, receipt: BankTransferReceipt, today: date,
                    received) -> Order:
    """Finance confirms what arrived on the bank statement (`received`, text or Decimal, in the order's currency).

    Exactly the order's total: the receipt is confirmed and the order paid through
    actions.orders.mark_paid (method bank_transfer), so a coin order credits its coins and a renewal
    renews its devices as an online payment would. Any other amount: the order stays unpaid and the
    amount is credited to the company's balance in the order's currency (one ledger entry, in this
    transaction); the receipt is "credited". Either happens exactly once (a conditional UPDATE).
    """
    require_role(actor, REVIEW_ROLES)
    order = receipt.order
    receipt_id, number, total, currency = receipt.id, order.number, order.total, order.currency
    if receipt.status != "submitted":
        raise AlreadyReviewed(_l("Receipt #%(id)s was reviewed already.", id=receipt_id))
    received = parse(received, currency, str(_l("Amount received")))
    if received == total:
        if order.status != "pending":
            raise DomainError(_l("Order %(number)s is not awaiting payment: reject the receipt instead.",
                                 number=number))
        _claim(session, receipt, "confirmed", actor, received_minor=to_minor(received, currency))
        mark_paid(session, order, "bank_transfer", f"bank-receipt-{receipt_id}", received, currency, today)
        record(session, actor, "confirm", "bank_transfer_receipt", [receipt_id],
               message("audit.receipt.confirm", order=number, amount=money_param(received, currency)))
    else:
        _claim(session, receipt, "credited", actor, received_minor=to_minor(received, currency))
        wallet = wallet_for(session, order.company_id, currency)
        credit(session, wallet, received, "bank_transfer", f"bank-receipt:{receipt_id}", actor, order_id=order.id,
               memo=message("ledger.bank_transfer", receipt=receipt_id, order=number,
                            amount=money_param(received, currency)))
        record(session, actor, "credit", "bank_transfer_receipt", [receipt_id],
               message("audit.receipt.credit", order=number, amount=money_param(received, currency),
                       total=money_param(total, currency)))
    session.flush()
    return order


def reject_receipt(session: Session, actor: User, receipt: BankTransferReceipt, reason: str) -> None:
    """Finance rejects the receipt with a reason; the order stays pending for another upload."""
    require_role(actor, REVIEW_ROLES)
    reason = text_block(reason, _l("Reason"), MAX_REASON)
    if not reason:
        raise DomainError(_l("Give the reason for rejecting the receipt: the customer reads it."))
    receipt_id, number = receipt.id, receipt.order.number
    _claim(session, receipt, "rejected", actor, reason)
    record(session, actor, "reject", "bank_transfer_receipt", [receipt_id],
           message("audit.receipt.reject", order=number, reason=reason))
    session.flush()


def may_view(session: Session, actor: User, receipt: BankTransferReceipt) -> bool:
    """Finance and admins see every receipt file; a customer administrator those of their companies."""
    if not actor.is_authenticated or not actor.active:
        return False
    if actor.role in ("admin", "finance"):
        return True
    return actor.role == "customer_admin" and in_scope(actor, receipt.order.company_id, session)
