"""Encryption of provider configuration at rest (SPEC §2).

MultiFernet over SIS_SYNC_ENCRYPTION_KEYS: the first key encrypts, every key decrypts, so keys
rotate by putting the new key first and re-saving (`rotate` re-encrypts under the first key).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """The stored config cannot be read with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "SIS_SYNC_ENCRYPTION_KEYS must be comma-separated Fernet keys "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from None


def _current() -> MultiFernet:
    return _fernet(tuple(settings.SIS_SYNC_ENCRYPTION_KEYS))


def encrypt_json(value: dict[str, Any]) -> str:
    return _current().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_current().decrypt(token.encode()))
    except InvalidToken:
        raise DecryptionError(
            "The provider's stored configuration cannot be decrypted with the configured "
            "SIS_SYNC_ENCRYPTION_KEYS (was a key removed?)"
        ) from None


def rotate(token: str) -> str:
    return _current().rotate(token.encode()).decode()
