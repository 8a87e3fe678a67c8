"""What payment code refuses with: shared by actions.payments and the provider adapters (no imports back)."""
from __future__ import annotations

from actions import DomainError


class BadNotification(DomainError):
    """A payment notification that is forged, malformed or does not match its order (`reason` says which)."""

    def __init__(self, message, reason: str = "malformed"):
        super().__init__(message)
        self.reason = reason


class PaymentConfigError(RuntimeError):
    """The payment settings cannot be served: the app refuses to start."""
