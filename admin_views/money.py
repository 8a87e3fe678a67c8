"""Wallets and ledger views for finance (being written)."""


def register(admin, finance) -> None:
    """Add the wallet and ledger views."""
