"""银行转账: a customer uploads the electronic receipt of a bank transfer paying a pending order;
finance confirms it (the order is paid once, through actions.orders.mark_paid) or rejects it
with a reason (the order stays pending and the customer may upload again).

Receipt files are PNG, JPEG or PDF, recognised by their first bytes (the file name must agree),
at most BANK_RECEIPT_MAX_BYTES, and kept once under <folder>/<sha256>: the database row holds
the hash, the original name and the type found. Every status change is a conditional UPDATE
(`… WHERE status = 'submitted'`) checked by rowcount, so two finance clerks confirming at once
pay the order once.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from actions import DomainError, in_scope, require_role
from actions.audit import record
from actions.orders import mark_paid
from actions.money import format_money, parse
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


def open_receipt(session: Session, order: Order) -> BankTransferReceipt | None:
    """The receipt of `order` awaiting confirmation, if any."""
    return session.scalar(select(BankTransferReceipt).where(BankTransferReceipt.order_id == order.id,
                                                            BankTransferReceipt.status == "submitted"))


def _text(value, label, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise DomainError(_l("%(field)s is required.", field=label))
    if len(text) > limit:
        raise DomainError(_l("%(field)s: at most %(n)s characters.", field=label, n=limit))
    return text


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
    payer_company = _text(payer_company, _l("Payer company"), MAX_PAYER_COMPANY)
    payer_account = _text(payer_account, _l("Payer bank account"), MAX_PAYER_ACCOUNT)
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
    record(session, actor, "submit", "bank_transfer_receipt", [receipt.id],
           f"{order.number}: {amount} {order.currency} from {payer_company} ({payer_account}), "
           f"{kind.content_type} {len(data)} bytes")
    session.flush()
    return receipt


def amount_matches(receipt: BankTransferReceipt) -> bool:
    return receipt.amount == receipt.order.total


def _claim(session: Session, receipt: BankTransferReceipt, new_status: str, actor: User, comment: str = "") -> None:
    result = session.execute(
        update(BankTransferReceipt)
        .where(BankTransferReceipt.id == receipt.id, BankTransferReceipt.status == "submitted")
        .values(status=new_status, reviewed_by_id=actor.id, reviewed_at=utcnow(), comment=comment)
        .execution_options(synchronize_session=False)
    )
    session.expire(receipt)
    if result.rowcount != 1:
        raise AlreadyReviewed(_l("Receipt #%(id)s was reviewed already.", id=receipt.id))


def confirm_receipt(session: Session, actor: User, receipt: BankTransferReceipt, today: date) -> Order:
    """Finance confirms the transfer: the receipt is confirmed and its order paid, both exactly once.

    Refused when the receipt's amount differs from the order's total. Paying goes through
    actions.orders.mark_paid (method bank_transfer), so a coin order credits its coins and a
    renewal order renews its devices exactly as an online payment would.
    """
    require_role(actor, REVIEW_ROLES)
    order = receipt.order
    receipt_id, amount, number, total, currency = receipt.id, receipt.amount, order.number, order.total, order.currency
    if receipt.status != "submitted":
        raise AlreadyReviewed(_l("Receipt #%(id)s was reviewed already.", id=receipt_id))
    if amount != total:
        raise DomainError(_l("Receipt #%(id)s says %(amount)s but order %(number)s is for %(total)s: "
                             "not confirmed. Reject it, or ask the customer for the right receipt.",
                             id=receipt_id, amount=format_money(amount, currency), number=number,
                             total=format_money(total, currency)))
    _claim(session, receipt, "confirmed", actor)
    mark_paid(session, order, "bank_transfer", f"bank-receipt-{receipt_id}", Decimal(amount), currency, today)
    record(session, actor, "confirm", "bank_transfer_receipt", [receipt_id],
           f"{number}: {format_money(amount, currency, 'en')} received by bank transfer; order paid")
    session.flush()
    return order


def reject_receipt(session: Session, actor: User, receipt: BankTransferReceipt, reason: str) -> None:
    """Finance rejects the receipt with a reason; the order stays pending for another upload."""
    require_role(actor, REVIEW_ROLES)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_l("Give the reason for rejecting the receipt: the customer reads it."))
    if len(reason) > MAX_REASON:
        raise DomainError(_l("Reason: at most %(n)s characters.", n=MAX_REASON))
    receipt_id, number = receipt.id, receipt.order.number
    _claim(session, receipt, "rejected", actor, reason)
    record(session, actor, "reject", "bank_transfer_receipt", [receipt_id], f"{number}: {reason}"[:2000])
    session.flush()


def may_view(session: Session, actor: User, receipt: BankTransferReceipt) -> bool:
    """Finance and admins see every receipt file; a customer administrator those of their companies."""
    if not actor.is_authenticated or not actor.active:
        return False
    if actor.role in ("admin", "finance"):
        return True
    return actor.role == "customer_admin" and in_scope(actor, receipt.order.company_id, session)
