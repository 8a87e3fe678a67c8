"""Secrets at rest (card PINs, ID numbers, bank accounts): Fernet encryption plus an HMAC blind index.

Keys come from the environment: `CARD_ENCRYPTION_KEYS` is a comma-separated list of Fernet keys,
the first encrypts and every one decrypts (MultiFernet), so a key is rotated by putting the new
one first and running `rotate` over the rows. `CARD_BLIND_INDEX_KEY` keys the HMAC-SHA256 that
makes exact search and duplicate checks possible without decrypting. Development and testing
derive fixed, public keys; any other environment refuses to start without real ones.

Nothing here logs or returns a secret except `decrypt`; lists use `mask`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import unicodedata
from functools import cached_property

DEV_ENVIRONMENTS = ("development", "testing")
_DEV_SEED = b"renewdesk-development-only-card-key"


class SecretsNotConfigured(RuntimeError):
    """Production without CARD_ENCRYPTION_KEYS / CARD_BLIND_INDEX_KEY."""


class Vault:
    """Encrypts, decrypts and blind-indexes secrets with one set of keys."""

    def __init__(self, encryption_keys: list[bytes], index_key: bytes):
        if not encryption_keys or not index_key:
            raise SecretsNotConfigured("encryption and blind-index keys are required")
        for key in encryption_keys:  # what Fernet(key) checks, without loading cryptography at start-up
            try:
                if len(base64.urlsafe_b64decode(key)) != 32:
                    raise ValueError("a Fernet key is 32 bytes")
            except binascii.Error:
                raise ValueError("a Fernet key is url-safe base64") from None
        self._keys = list(encryption_keys)
        self._index_key = index_key

    @cached_property
    def _fernet(self):
        # cryptography (6 MB) is loaded by the first process that encrypts or decrypts, not by every worker.
        from cryptography.fernet import Fernet, MultiFernet

        return MultiFernet([Fernet(k) for k in self._keys])

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(normalize(plain).encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise SecretsNotConfigured("a stored secret does not decrypt with the configured keys") from None

    def rotate(self, token: str) -> str:
        """The token re-encrypted under the first key (for key rotation)."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def blind_index(self, plain: str, purpose: str) -> str:
        """HMAC-SHA256 of the normalized value, keyed and separated by purpose (pin, id_number, bank)."""
        message = purpose.encode() + b"\x00" + normalize(plain).encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def normalize(value: str) -> str:
    """The form secrets are stored and searched in: NFKC, no surrounding or inner spaces."""
    return "".join(unicodedata.normalize("NFKC", str(value)).split())


def mask(plain: str | None, shown: int = 2) -> str:
    """`****34`: only the last characters of a secret."""
    if not plain:
        return ""
    return "****" + plain[-shown:]


def _dev_key(label: bytes) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(_DEV_SEED + label).digest())


def vault_from_config(config) -> Vault:
    """The vault for an app's config; outside development and testing the keys must be set."""
    keys_text = config.get("CARD_ENCRYPTION_KEYS") or ""
    index_text = config.get("CARD_BLIND_INDEX_KEY") or ""
    keys = [k.strip().encode() for k in keys_text.split(",") if k.strip()]
    index_key = index_text.encode()
    if not keys or not index_key:
        if config.get("ENV_NAME") not in DEV_ENVIRONMENTS:
            raise SecretsNotConfigured(
                "CARD_ENCRYPTION_KEYS and CARD_BLIND_INDEX_KEY are required outside development and testing "
                "(generate a key with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')")
        keys = keys or [_dev_key(b"encrypt")]
        index_key = index_key or _dev_key(b"index")
    try:
        return Vault(keys, index_key)
    except ValueError:
        raise SecretsNotConfigured("CARD_ENCRYPTION_KEYS: each key must be a Fernet key (32 url-safe base64 bytes)") from None


def vault() -> Vault:
    """The current app's vault (built at start-up by `init_app`)."""
    from flask import current_app

    return current_app.extensions["card_vault"]


def init_app(app) -> None:
    """Build the vault once at start-up: a misconfigured production app does not start."""
    app.extensions["card_vault"] = vault_from_config(app.config)
