"""收费账户配置 / 账户配置: company billing config (being written)."""


def register(admin, sales, customer) -> None:
    """Add the billing-config views (sales: 收费账户配置, customer_admin: 账户配置)."""
