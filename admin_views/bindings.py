"""客户延期配置 / 客户增值配置: package bindings (being written)."""


def register(admin, support) -> None:
    """Add the customer extension and value-added config views."""
