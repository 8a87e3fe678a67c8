"""The password policy: one place that says what a password may be, checks it, describes it
to the user before they type, and generates initial passwords that follow it.

Settings (README "Password policy"):

- ``PASSWORD_MIN_LENGTH`` / ``PASSWORD_MAX_LENGTH``: characters, inclusive (default 10 and 128);
- ``PASSWORD_ALLOWED``: the character classes a password may be made of, comma-separated
  (``letters,digits``), or empty for any printable character (the default);
- ``PASSWORD_REQUIRE``: the classes a password must contain at least one of each, comma-separated
  (``letters,digits``), empty for none (the default).

Classes: ``lower`` (a-z), ``upper`` (A-Z), ``letters`` (a-z, A-Z), ``digits`` (0-9) and
``symbols`` (ASCII punctuation). Seed 004's "4–16 letters or digits" is
``PASSWORD_MIN_LENGTH=4``, ``PASSWORD_MAX_LENGTH=16``, ``PASSWORD_ALLOWED=letters,digits``.
"""
from __future__ import annotations

import secrets
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from actions import DomainError

CLASSES = {
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
    "letters": string.ascii_letters,
    "digits": string.digits,
    "symbols": string.punctuation,
}
CLASS_NAMES = {
    "lower": _l("lower-case letters"),
    "upper": _l("capital letters"),
    "letters": _l("letters"),
    "digits": _l("digits"),
    "symbols": _l("symbols"),
}
RULE_SEPARATOR = _l("; ")  # 中文 "；"
LIST_SEPARATOR = _l(", ")  # 中文 "、"
HARD_MAX_LENGTH = 256  # the login form's own limit
GENERATED_LENGTH = 12


class PasswordRefused(DomainError):
    """A password that does not follow the policy; `field` names the form field it came from."""

    def __init__(self, message, field: str = "password") -> None:
        super().__init__(message)
        self.field = field


def _classes(value: str | Iterable[str] | None, setting: str) -> frozenset[str]:
    names = value.split(",") if isinstance(value, str) else list(value or ())
    names = frozenset(name.strip().lower() for name in names if name and name.strip())
    unknown = sorted(names - CLASSES.keys())
    if unknown:
        raise ValueError(f"{setting}: unknown character class {', '.join(unknown)} "
                         f"(known: {', '.join(CLASSES)})")
    return names


@dataclass(frozen=True)
class PasswordPolicy:
    """Length bounds, the classes allowed (empty: any printable character) and the classes required."""

    min_length: int = 10
    max_length: int = 128
    allowed: frozenset[str] = frozenset()
    require: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length <= HARD_MAX_LENGTH:
            raise ValueError(f"PASSWORD_MIN_LENGTH/PASSWORD_MAX_LENGTH: need 1 <= {self.min_length} <= "
                             f"{self.max_length} <= {HARD_MAX_LENGTH}")
        if self.allowed and any(not set(CLASSES[name]) & self.alphabet for name in self.require):
            raise ValueError("PASSWORD_REQUIRE names a class that PASSWORD_ALLOWED does not allow")

    @classmethod
    def from_config(cls, config: Mapping) -> PasswordPolicy:
        """The policy of an app's settings; a wrong setting stops the app at start-up."""
        return cls(
            min_length=int(config.get("PASSWORD_MIN_LENGTH", 10)),
            max_length=int(config.get("PASSWORD_MAX_LENGTH", 128)),
            allowed=_classes(config.get("PASSWORD_ALLOWED"), "PASSWORD_ALLOWED"),
            require=_classes(config.get("PASSWORD_REQUIRE"), "PASSWORD_REQUIRE"),
        )

    @property
    def alphabet(self) -> frozenset[str]:
        """The characters allowed when the policy restricts them."""
        return frozenset("".join(CLASSES[name] for name in self.allowed))

    def describe(self) -> str:
        """The rule in the user's language, shown under the field before they type."""
        parts = [str(_l("%(min)s to %(max)s characters", min=self.min_length, max=self.max_length))]
        if self.allowed:
            parts.append(str(_l("only %(classes)s", classes=_join(self.allowed))))
        if self.require:
            parts.append(str(_l("at least one of each: %(classes)s", classes=_join(self.require))))
        return str(_l("Password: %(rule)s.", rule=str(RULE_SEPARATOR).join(parts)))

    def check(self, password: str, field: str = "password") -> None:
        """Raise PasswordRefused naming what is wrong with `password`."""
        if len(password) < self.min_length:
            raise PasswordRefused(_l("The password needs at least %(n)s characters (%(given)s given).",
                                     n=self.min_length, given=len(password)), field)
        if len(password) > self.max_length:
            raise PasswordRefused(_l("The password may have at most %(n)s characters (%(given)s given).",
                                     n=self.max_length, given=len(password)), field)
        if any(unicodedata.category(c).startswith(("C", "Z")) and c != " " for c in password):
            raise PasswordRefused(_l("The password may not contain control characters or line breaks."), field)
        if self.allowed:
            wrong = sorted({c for c in password if c not in self.alphabet})
            if wrong:
                raise PasswordRefused(_l("The password may only contain %(classes)s; not allowed: “%(chars)s”",
                                         classes=_join(self.allowed), chars=" ".join(wrong[:10])), field)
        missing = [name for name in sorted(self.require) if not set(CLASSES[name]) & set(password)]
        if missing:
            raise PasswordRefused(_l("The password needs at least one of: %(classes)s.",
                                     classes=_join(missing)), field)

    def generate(self) -> str:
        """A random password that follows the policy (initial passwords, resets): one character of
        each required class, the rest from the allowed ones (letters and digits when any are)."""
        length = max(self.min_length, min(GENERATED_LENGTH, self.max_length), len(self.require))
        pool = "".join(sorted(self.alphabet)) if self.allowed else string.ascii_letters + string.digits
        chars = [secrets.choice(CLASSES[name]) for name in sorted(self.require)]
        chars += [secrets.choice(pool) for _ in range(length - len(chars))]
        for i in range(len(chars) - 1, 0, -1):  # Fisher–Yates with the secrets generator
            j = secrets.randbelow(i + 1)
            chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)


def _join(names: Iterable[str]) -> str:
    return str(LIST_SEPARATOR).join(str(CLASS_NAMES[name]) for name in sorted(names))


DEFAULT_POLICY = PasswordPolicy()


def current_policy() -> PasswordPolicy:
    """The password policy of the running app's settings (README "Password policy")."""
    from flask import current_app

    return PasswordPolicy.from_config(current_app.config)
