"""充值续费 / 订单记录 / 充值记录 / 订单管理 (being written)."""


def register(admin, customer, finance) -> None:
    """Add the renewal center, recharge and order views."""
