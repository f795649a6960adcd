"""`rotate_encryption_keys`: every stored secret ends up under the first key; old keys can go."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from sis_sync.crypto import DecryptionError
from sis_sync.models import SisProvider
from tests.factories import ProviderFactory

pytestmark = pytest.mark.django_db

OLD, NEW, LOST = (Fernet.generate_key().decode() for _ in range(3))
SECRET = "clever-secret-under-rotation-5Tg8Hj2K"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out)
    return out.getvalue()


def test_it_re_encrypts_every_secret_under_the_first_key(settings) -> None:
    settings.SIS_SYNC_ENCRYPTION_KEYS = [OLD]
    providers = [
        ProviderFactory(config={"districtId": "d", "clientSecret": f"{SECRET}-{n}"})
        for n in range(3)
    ]
    before = dict(SisProvider.objects.values_list("pk", "config_encrypted"))

    settings.SIS_SYNC_ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(CommandError, match="3 values are not under the first key"):
        run("--check")
    assert "SisProvider.config_encrypted: 3 re-encrypted" in run()
    assert "0 not under the first key" in run("--check")

    settings.SIS_SYNC_ENCRYPTION_KEYS = [NEW]  # the old key is gone: everything still reads
    for n, provider in enumerate(providers):
        stored = SisProvider.objects.get(pk=provider.pk)
        assert stored.config["clientSecret"] == f"{SECRET}-{n}"
        assert stored.config_encrypted != before[provider.pk]
        assert SECRET not in stored.config_encrypted
    settings.SIS_SYNC_ENCRYPTION_KEYS = [OLD]
    with pytest.raises(DecryptionError):
        SisProvider.objects.get(pk=providers[0].pk).config  # noqa: B018


def test_it_names_values_no_key_decrypts_and_rotates_the_rest(settings) -> None:
    settings.SIS_SYNC_ENCRYPTION_KEYS = [LOST]
    lost = ProviderFactory(config={"districtId": "d", "accessToken": SECRET})
    settings.SIS_SYNC_ENCRYPTION_KEYS = [OLD]
    kept = ProviderFactory(config={"districtId": "d", "accessToken": SECRET})
    empty = ProviderFactory(config={})

    settings.SIS_SYNC_ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(CommandError, match=f"rows {lost.pk} ") as caught:
        run()
    assert caught.value.returncode == 1
    settings.SIS_SYNC_ENCRYPTION_KEYS = [NEW]
    assert SisProvider.objects.get(pk=kept.pk).config["accessToken"] == SECRET
    assert SisProvider.objects.get(pk=empty.pk).config == {}
