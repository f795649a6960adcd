"""Encryption of provider configuration at rest (SPEC §2).

MultiFernet over SIS_SYNC_ENCRYPTION_KEYS: the first key encrypts, every key decrypts, so keys
rotate by putting the new key first and running `manage.py rotate_encryption_keys`, which
re-encrypts every stored value under the first key (`rotate_column`); then the old key can go.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, NamedTuple

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction


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


# Every column holding a value encrypted with these keys, as (app_label.Model, field).
# `rotate_encryption_keys` re-encrypts them all; add a column here when adding one.
ENCRYPTED_COLUMNS: list[tuple[str, str]] = [("sis_sync.SisProvider", "config_encrypted")]


class ColumnRotation(NamedTuple):
    column: str
    rotated: int
    unreadable: list[Any]  # primary keys no configured key can decrypt


def under_first_key(token: str) -> bool:
    """Whether the first (current) key alone decrypts the value."""
    try:
        Fernet(settings.SIS_SYNC_ENCRYPTION_KEYS[0].encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate_column(label: str, field: str, *, check_only: bool = False) -> ColumnRotation:
    """Re-encrypts every value of the column under the first key, one row lock at a time.

    With `check_only`, changes nothing and counts the values not yet under the first key.
    """
    model = apps.get_model(label)
    rotated, unreadable = 0, []
    keys = model.objects.exclude(**{field: ""}).order_by("pk").values_list("pk", flat=True)
    for pk in list(keys):
        with transaction.atomic():
            rows = model.objects.select_for_update().filter(pk=pk)
            token = rows.values_list(field, flat=True).first()
            if not token:
                continue
            try:
                fresh = rotate(token)
            except InvalidToken:
                unreadable.append(pk)
                continue
            if check_only:
                rotated += not under_first_key(token)
                continue
            rows.update(**{field: fresh})
            rotated += 1
    return ColumnRotation(f"{label}.{field}", rotated, unreadable)
