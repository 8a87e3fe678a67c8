"""Typed text, checked one way everywhere: trimmed, within its column's length, no control characters.

A name, a title or an email is one line: a line break or an invisible control character in it would
break the lists, exports and printed invoices it ends up in. A remark or a reason may span lines
(tabs allowed) but holds no other control character. Each refusal names the field.
"""
from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l

from errors import DomainError

_CONTROLS = ("Cc", "Cf", "Zl", "Zp")  # control and format characters, line and paragraph separators


def text_problem(text: str, limit: int, *, lines: bool = False):
    """What is wrong with already trimmed text (a translated phrase), or None. `lines`: a block of lines."""
    if len(text) > limit:
        return _l("at most %(n)s characters.", n=limit)
    allowed = "\n\t" if lines else ""
    if any(c not in allowed and unicodedata.category(c) in _CONTROLS for c in text):
        return _l("control characters are not allowed.") if lines else _l(
            "control characters and line breaks are not allowed.")
    return None


def one_line(value, field, limit: int, required: bool = True) -> str | None:
    """One line of text, trimmed; None when empty and optional; else DomainError naming `field`."""
    text = (value or "").strip()
    if not text:
        if required:
            raise DomainError(_l("%(field)s is required.", field=field))
        return None
    problem = text_problem(text, limit)
    if problem is not None:
        raise DomainError(_l("%(field)s: %(problem)s", field=field, problem=problem))
    return text


def text_block(value, field, limit: int) -> str:
    """Several lines of text (a remark, a reason), trimmed, line ends made "\\n"; "" when empty."""
    text = (value or "").replace("\r\n", "\n").strip()
    problem = text_problem(text, limit, lines=True)
    if problem is not None:
        raise DomainError(_l("%(field)s: %(problem)s", field=field, problem=problem))
    return text
