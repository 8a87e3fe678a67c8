"""线下充值: sales drafts, finance reviews (being written)."""


def register(admin, sales, finance) -> None:
    """Add the offline recharge views."""
