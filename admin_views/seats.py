"""Being written."""


def register(admin, customer) -> None:
    """Add this area's views."""
