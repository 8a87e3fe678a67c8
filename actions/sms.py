"""Sending text messages through a provider chosen by the ``SMS_BACKEND`` setting.

- ``log`` (the default): the message is written to the app log (logger ``renewdesk.sms``):
  development, where nobody should need a phone to log in;
- ``test``: the message is kept in memory (``test_outbox``) for tests to read; with
  ``SMS_TEST_FILE`` set it is also appended to that file as a JSON line (the browser tests'
  server runs in another process);
- ``module.path:factory``: a real provider. ``factory(config)`` returns an object with
  ``send(phone, text)`` that raises ``SmsFailed`` when the message did not leave.
  ``register_backend(name, factory)`` adds a named one.

Production refuses ``log`` and ``test`` when phone verification is on (app.py).
"""
from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("renewdesk.sms")


class SmsFailed(Exception):
    """The provider did not take the message."""


class SmsBackend(Protocol):
    def send(self, phone: str, text: str) -> None: ...


@dataclass(frozen=True)
class SentMessage:
    phone: str
    text: str


test_outbox: list[SentMessage] = []


class LogBackend:
    """Development: the message goes to the log, nowhere else."""

    def __init__(self, config: Mapping) -> None:
        pass

    def send(self, phone: str, text: str) -> None:
        log.warning("SMS to %s: %s", phone, text)


class TestBackend:
    """Tests: the message is kept in `test_outbox` (and SMS_TEST_FILE when set)."""

    def __init__(self, config: Mapping) -> None:
        self.path = config.get("SMS_TEST_FILE")

    def send(self, phone: str, text: str) -> None:
        test_outbox.append(SentMessage(phone, text))
        if self.path:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(json.dumps({"phone": phone, "text": text}, ensure_ascii=False) + "\n")


BACKENDS: dict[str, Callable[[Mapping], SmsBackend]] = {"log": LogBackend, "test": TestBackend}
DEVELOPMENT_BACKENDS = frozenset({"log", "test"})


def register_backend(name: str, factory: Callable[[Mapping], SmsBackend]) -> None:
    """Make `factory` available as SMS_BACKEND=`name`."""
    BACKENDS[name] = factory


def backend_for(config: Mapping) -> SmsBackend:
    """The backend the settings name; an unknown name is a configuration error."""
    name = str(config.get("SMS_BACKEND") or "log")
    if name in BACKENDS:
        return BACKENDS[name](config)
    module, _, attribute = name.partition(":")
    if not attribute:
        raise ValueError(f"SMS_BACKEND={name!r}: use log, test, or module.path:factory")
    return getattr(importlib.import_module(module), attribute)(config)


def send_sms(phone: str, text: str, config: Mapping | None = None) -> None:
    """Send `text` to `phone` (E.164) through the configured backend; SmsFailed when it did not leave."""
    if config is None:
        from flask import current_app

        config = current_app.config
    backend = backend_for(config)  # a wrong setting is the operator's error, not a failed send
    try:
        backend.send(phone, text)
    except SmsFailed:
        raise
    except Exception as exc:  # a provider's own error: the caller tells the user it did not leave
        log.exception("SMS to %s failed", phone)
        raise SmsFailed(str(exc)) from exc
