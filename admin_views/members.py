"""Being written."""


def register(admin, customer, finance) -> None:
    """Add this area's views."""
