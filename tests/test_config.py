"""Settings from the environment, secrets at rest, provider config rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list
from sis_sync import crypto
from sis_sync.errors import BadRequest
from sis_sync.provider_config import masked, merged, validate_config
from sis_sync.schedules import normalize_schedule

ROOT = Path(__file__).resolve().parent.parent


def test_it_reads_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_INT", "7")
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_int("X_INT", 1) == 7
    assert env_bool("X_BOOL", False) is True
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    assert env_int("X_MISSING", 3) == 3


def test_it_names_the_variable_when_a_value_is_bad(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_SYNCS", "two")
    with pytest.raises(ImproperlyConfigured, match="MAX_CONCURRENT_SYNCS must be an integer"):
        env_int("MAX_CONCURRENT_SYNCS", 2)
    monkeypatch.setenv("SIS_SYNC_ALLOW_PRIVATE_HOSTS", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SIS_SYNC_ALLOW_PRIVATE_HOSTS"):
        env_bool("SIS_SYNC_ALLOW_PRIVATE_HOSTS", False)


def test_it_refuses_to_start_in_production_without_keys() -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("SIS_SYNC_ENCRYPTION_KEYS", "DATABASE_URL")
    }
    env.update({"DEBUG": "false", "SECRET_KEY": "x" * 50})
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SIS_SYNC_ENCRYPTION_KEYS must be set" in result.stderr


def test_it_decrypts_with_an_old_key_after_rotation(settings: object) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SIS_SYNC_ENCRYPTION_KEYS = [old]  # type: ignore[attr-defined]
    token = crypto.encrypt_json({"clientSecret": "s3cret"})
    settings.SIS_SYNC_ENCRYPTION_KEYS = [new, old]  # type: ignore[attr-defined]
    assert crypto.decrypt_json(token) == {"clientSecret": "s3cret"}
    rotated = crypto.rotate(token)
    settings.SIS_SYNC_ENCRYPTION_KEYS = [new]  # type: ignore[attr-defined]
    assert crypto.decrypt_json(rotated) == {"clientSecret": "s3cret"}
    with pytest.raises(crypto.DecryptionError, match="cannot be decrypted"):
        crypto.decrypt_json(token)


def test_it_masks_secrets_and_keeps_them_when_an_update_leaves_them_out() -> None:
    stored = {"clientId": "id", "clientSecret": "s3cret", "sftp": {"host": "h", "password": "pw"}}
    shown = masked(stored)
    assert shown["clientSecret"] == "********" and shown["hasClientSecret"] is True
    assert shown["sftp"]["password"] == "********" and "s3cret" not in str(shown)
    update = merged(stored, {"clientId": "id2", "clientSecret": "********", "sftp": {"host": "h"}})
    assert update["clientSecret"] == "s3cret" and update["sftp"]["password"] == "pw"


def test_it_refuses_internal_provider_addresses(settings: object) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = False  # type: ignore[attr-defined]
    for url in ("https://127.0.0.1/x", "https://10.1.2.3/x", "https://169.254.169.254/x"):
        with pytest.raises(BadRequest, match="internal address"):
            validate_config(
                "ONEROSTER_API",
                {"baseUrl": url, "clientId": "a", "clientSecret": "b", "tokenUrl": url},
            )
    with pytest.raises(BadRequest, match="https://"):
        validate_config("CLASSLINK", {"clientId": "a", "clientSecret": "b", "baseUrl": "ftp://x"})


def test_it_accepts_presets_and_cron_and_refuses_nonsense() -> None:
    assert normalize_schedule("weekdays") == "0 6 * * 1-5"
    assert normalize_schedule(" 15  3 * * * ") == "15 3 * * *"
    assert normalize_schedule(None) is None
    with pytest.raises(BadRequest, match="not a valid cron"):
        normalize_schedule("99 3 * * *")


def test_it_checks_api_connector_settings_and_classlink_auth(settings: object) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True  # type: ignore[attr-defined]
    api = {
        "baseUrl": "http://sis.test/ims/oneroster/v1p1",
        "clientId": "a",
        "clientSecret": "b",
        "tokenUrl": "http://sis.test/token",
    }
    with pytest.raises(BadRequest, match="pageSize must be from 1 to 10000"):
        validate_config("ONEROSTER_API", {**api, "pageSize": 0})
    classlink = {"clientId": "a", "baseUrl": "http://cl.test/ims/oneroster/v1p1"}
    validate_config("CLASSLINK", {**classlink, "authMethod": "proxy", "accessToken": "t"})
    with pytest.raises(BadRequest, match="missing clientSecret"):
        validate_config("CLASSLINK", classlink)
    with pytest.raises(BadRequest, match="oauth1 or proxy"):
        validate_config("CLASSLINK", {**classlink, "clientSecret": "s", "authMethod": "x"})
