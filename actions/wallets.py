"""Wallets and their ledger: every balance change is one conditional UPDATE plus one entry.

Debits are `UPDATE wallet SET balance = balance - :amount WHERE id = :id AND balance >= :amount`
with a rowcount check, so concurrent debits can never overdraw, on SQLite and PostgreSQL
alike; the CHECK (balance >= 0) backs it up. Each entry carries a unique idempotency key, so
the same movement (paying order 17, approving recharge 5) can never be written twice.
"""
from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from actions import DomainError
from actions.money import format_money, from_minor, parse, to_minor
from actions.texts import english
from models import WALLET_CURRENCIES, LedgerEntry, User, Wallet, utcnow


class InsufficientBalance(DomainError):
    """The wallet holds less than the debit; `missing` says how much less."""

    def __init__(self, message, missing: Decimal):
        super().__init__(message)
        self.missing = missing


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
            .values(company_id=company_id, currency=currency, kind=kind, balance_minor=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["company_id", "currency", "kind"])
        )
        wallet = session.scalar(query)
    return wallet


def _entry(session, wallet, kind, amount_minor, balance_minor, key, actor, order_id, recharge_id, memo) -> LedgerEntry:
    # A memo is plain text, or a stored message (actions.texts.message) shown in the reader's language.
    memo_data = memo if isinstance(memo, dict) else None
    entry = LedgerEntry(
        wallet_id=wallet.id, currency=wallet.currency, kind=kind, amount_minor=amount_minor,
        balance_after_minor=balance_minor,
        idempotency_key=key, actor_id=actor.id if actor else None, order_id=order_id,
        offline_recharge_id=recharge_id, memo=(english(memo) if memo_data else memo)[:255], memo_data=memo_data,
    )
    session.add(entry)
    session.flush()
    return entry


def credit(session: Session, wallet: Wallet, amount: Decimal, kind: str, key: str, actor: User | None = None,
           order_id: int | None = None, recharge_id: int | None = None, memo: str | dict = "") -> LedgerEntry:
    """Add `amount` (a positive Decimal in the wallet's currency) and write its ledger entry (same transaction)."""
    minor = to_minor(parse(amount, wallet.currency), wallet.currency)
    balance = session.execute(
        update(Wallet).where(Wallet.id == wallet.id)
        .values(balance_minor=Wallet.balance_minor + minor, updated_at=utcnow())
        .returning(Wallet.balance_minor)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    session.expire(wallet, ["balance_minor", "updated_at"])
    return _entry(session, wallet, kind, minor, balance, key, actor, order_id, recharge_id, memo)


def debit(session: Session, wallet: Wallet, amount: Decimal, kind: str, key: str, actor: User | None = None,
          order_id: int | None = None, memo: str | dict = "") -> LedgerEntry:
    """Take `amount` from the wallet only if it holds that much; else InsufficientBalance."""
    currency = wallet.currency
    minor = to_minor(parse(amount, currency), currency)
    balance = session.execute(
        update(Wallet).where(Wallet.id == wallet.id, Wallet.balance_minor >= minor)
        .values(balance_minor=Wallet.balance_minor - minor, updated_at=utcnow())
        .returning(Wallet.balance_minor)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    session.expire(wallet, ["balance_minor", "updated_at"])
    if balance is None:
        held = session.scalar(select(Wallet.balance_minor).where(Wallet.id == wallet.id)) or 0
        missing = from_minor(minor - held, currency)
        raise InsufficientBalance(
            _l("Insufficient %(currency)s balance: %(amount)s needed, %(held)s available, %(missing)s missing.",
               currency=currency, amount=format_money(from_minor(minor, currency), currency),
               held=format_money(from_minor(held, currency), currency), missing=format_money(missing, currency)),
            missing,
        )
    return _entry(session, wallet, kind, -minor, balance, key, actor, order_id, None, memo)


def balance_of(session: Session, company_id: int, currency: str) -> Decimal:
    """The company's balance in `currency` (zero when it has no wallet yet)."""
    minor = session.scalar(select(Wallet.balance_minor).where(Wallet.company_id == company_id,
                                                              Wallet.currency == currency, Wallet.kind == "prepaid"))
    return from_minor(minor or 0, currency)


def ledger_differences(session: Session) -> list[tuple[Wallet, Decimal]]:
    """Every wallet whose balance differs from the sum of its ledger entries, with that sum."""
    sums = (
        select(LedgerEntry.wallet_id, func.coalesce(func.sum(LedgerEntry.amount_minor), 0).label("total"))
        .group_by(LedgerEntry.wallet_id).subquery()
    )
    rows = session.execute(
        select(Wallet, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.wallet_id == Wallet.id)
        .where(Wallet.balance_minor != func.coalesce(sums.c.total, 0))
    )
    return [(wallet, from_minor(total, wallet.currency)) for wallet, total in rows]
