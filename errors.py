"""The refusals business code raises (re-exported by `actions`); imports nothing, so any module may use them."""


class DomainError(Exception):
    """A refusal the user should read: it names the row, field or id at fault."""


class NotAllowed(DomainError):
    """The actor's role may not do this."""
