"""Wallets and their ledger: every balance change is one conditional UPDATE plus one entry.

Debits are `UPDATE wallet SET balance = balance - :amount WHERE id = :id AND balance >= :amount`
with a rowcount check, so concurrent debits can never overdraw, on SQLite and PostgreSQL
alike; the CHECK (balance >= 0) backs it up. Each entry carries a unique idempotency key, so
the same movement (paying order 17, approving recharge 5) can never be written twice.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from actions import DomainError
from models import WALLET_CURRENCIES, LedgerEntry, User, Wallet, utcnow

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("100000000")  # one movement above this is a typo, not a payment


class InsufficientBalance(DomainError):
    """The wallet holds less than the debit; `missing` says how much less."""

    def __init__(self, message, missing: Decimal):
        super().__init__(message)
        self.missing = missing


def parse_amount(value, field: str = "amount") -> Decimal:
    """A positive money amount with at most two decimals, or DomainError naming the field."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise DomainError(_l("%(field)s: %(value)s is not an amount.", field=field, value=value)) from None
    if not amount.is_finite() or amount <= 0:
        raise DomainError(_l("%(field)s: must be greater than zero.", field=field))
    if amount > MAX_AMOUNT:  # before quantize(): 1e30 has more digits than the decimal context holds
        raise DomainError(_l("%(field)s: %(value)s is larger than any single payment.", field=field, value=amount))
    if amount != amount.quantize(CENT):
        raise DomainError(_l("%(field)s: at most two decimal places.", field=field))
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def wallet_for(session: Session, company_id: int, currency: str, kind: str = "prepaid") -> Wallet:
    """The company's wallet in `currency` (its commission wallet with kind="commission"), created
    empty when missing (safe under concurrency)."""
    if currency not in WALLET_CURRENCIES:
        raise DomainError(_l("Unknown currency %(currency)s.", currency=currency))
    query = select(Wallet).where(Wallet.company_id == company_id, Wallet.currency == currency, Wallet.kind == kind)
    wallet = session.scalar(query)
    if wallet is None:
        dialect = session.get_bind().dialect.name
        insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert_(Wallet)
            .values(company_id=company_id, currency=currency, kind=kind, balance=Decimal("0.00"), updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["company_id", "currency", "kind"])
        )
        wallet = session.scalar(query)
    return wallet


def _entry(session, wallet_id, kind, amount, balance_after, key, actor, order_id, recharge_id, memo) -> LedgerEntry:
    entry = LedgerEntry(
        wallet_id=wallet_id, kind=kind, amount=amount, balance_after=balance_after,
        idempotency_key=key, actor_id=actor.id if actor else None, order_id=order_id,
        offline_recharge_id=recharge_id, memo=memo[:255],
    )
    session.add(entry)
    session.flush()
    return entry


def credit(session: Session, wallet: Wallet, amount: Decimal, kind: str, key: str, actor: User | None = None,
           order_id: int | None = None, recharge_id: int | None = None, memo: str = "") -> LedgerEntry:
    """Add `amount` to the wallet and write its ledger entry (same transaction)."""
    amount = parse_amount(amount)
    balance = session.execute(
        update(Wallet).where(Wallet.id == wallet.id)
        .values(balance=Wallet.balance + amount, updated_at=utcnow())
        .returning(Wallet.balance)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    session.expire(wallet, ["balance", "updated_at"])
    return _entry(session, wallet.id, kind, amount, balance, key, actor, order_id, recharge_id, memo)


def debit(session: Session, wallet: Wallet, amount: Decimal, kind: str, key: str, actor: User | None = None,
          order_id: int | None = None, memo: str = "") -> LedgerEntry:
    """Take `amount` from the wallet only if it holds that much; else InsufficientBalance."""
    amount = parse_amount(amount)
    balance = session.execute(
        update(Wallet).where(Wallet.id == wallet.id, Wallet.balance >= amount)
        .values(balance=Wallet.balance - amount, updated_at=utcnow())
        .returning(Wallet.balance)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    session.expire(wallet, ["balance", "updated_at"])
    if balance is None:
        held = session.scalar(select(Wallet.balance).where(Wallet.id == wallet.id)) or Decimal("0")
        missing = amount - held
        raise InsufficientBalance(
            _l("Insufficient %(currency)s balance: %(amount)s needed, %(held)s available, %(missing)s missing.",
               currency=wallet.currency, amount=amount, held=held, missing=missing),
            missing,
        )
    return _entry(session, wallet.id, kind, -amount, balance, key, actor, order_id, None, memo)


def ledger_differences(session: Session) -> list[tuple[Wallet, Decimal]]:
    """Every wallet whose balance differs from the sum of its ledger entries, with that sum."""
    sums = (
        select(LedgerEntry.wallet_id, func.coalesce(func.sum(LedgerEntry.amount), 0).label("total"))
        .group_by(LedgerEntry.wallet_id).subquery()
    )
    rows = session.execute(
        select(Wallet, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.wallet_id == Wallet.id)
        .where(Wallet.balance != func.coalesce(sums.c.total, 0))
    )
    return [(wallet, Decimal(total)) for wallet, total in rows]
