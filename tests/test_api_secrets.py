"""Secrets are write-only (SPEC §2): no API response, audit row, run or log line holds one, and
the database column holds only ciphertext.

`Api` clients (tests/api_helpers.py) check every response of every API test for the secrets
stored at that moment; this module also drives every endpoint against providers of each type
holding secrets — with a real connection test and a real sync against a local Clever-like
server — and searches everything it received, the logs and the tables at the end.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from sis_sync.models import AuditEvent, SisProvider, SisSyncRun
from tests.api_helpers import (
    CLEVER_SECRET,
    CLEVER_TOKEN,
    ONEROSTER_SECRET,
    RESPONSES,
    SFTP_PASSWORD,
    leaked,
)
from tests.fake_clever_server import FakeClever

ALL = (CLEVER_SECRET, CLEVER_TOKEN, ONEROSTER_SECRET, SFTP_PASSWORD)
FAKE_SECRET = "fake-clever-app-secret-Yu7Ik2Ol9"


@pytest.fixture
def every_log_line() -> Iterator[io.StringIO]:
    """Every record any logger emits, at every level (our loggers do not propagate to root)."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    names = [None, "sis_sync", "connectors", "loader", "staging", "django", "django.request"]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield text
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def clever(sample_bundle: Path) -> Iterator[FakeClever]:
    fake = FakeClever.from_bundle(sample_bundle, client_secret=FAKE_SECRET)
    with fake:
        yield fake


def test_no_secret_leaves_by_any_endpoint_log_or_table(
    platform_admin, north, secret_configs, public_dns, every_log_line, clever, settings,
    django_capture_on_commit_callbacks,
) -> None:  # fmt: skip
    start = len(RESPONSES)
    ids = {}
    for provider_type, config in secret_configs.items():
        response = platform_admin.post(
            "/api/v1/providers",
            {"tenantId": "north", "providerType": provider_type, "name": provider_type,
             "config": config},
            format="json",
        )  # fmt: skip
        assert response.status_code == 201, response.content
        ids[provider_type] = response.json()["id"]
        assert "********" in response.content.decode()

    # Every stored secret is encrypted: the column holds none of them in plain text.
    for column in SisProvider.objects.values_list("config_encrypted", flat=True):
        assert not [secret for secret in ALL if secret in column]
    assert {s for p in SisProvider.objects.all() for s in ALL if s in str(p.config)} == set(ALL)

    # Refused changes do not echo a submitted secret either.
    refused = platform_admin.patch(
        f"/api/v1/providers/{ids['ONEROSTER_API']}",
        {"config": {"clientSecret": "brand-new-secret-Qa1Ws2Ed3", "baseUrl": "ftp://x"}},
        format="json",
    )
    assert refused.status_code == 400 and b"brand-new-secret" not in refused.content

    # A real connection test and sync of a Clever provider, against a local server.
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    made = platform_admin.post(
        "/api/v1/providers",
        {"tenantId": "north", "providerType": "CLEVER", "name": "Clever local",
         "config": {"districtId": clever.district_id, "clientId": clever.client_id,
                    "clientSecret": FAKE_SECRET, "baseUrl": clever.base_url}},
        format="json",
    )  # fmt: skip
    assert made.status_code == 201, made.content
    local = made.json()["id"]
    tested = platform_admin.post(f"/api/v1/providers/{local}/test").json()
    assert tested["success"] is True, tested
    with django_capture_on_commit_callbacks(execute=True):
        run = platform_admin.post(f"/api/v1/providers/{local}/sync", {}, format="json").json()
    assert platform_admin.get(f"/api/v1/runs/{run['id']}").json()["status"] == "SUCCESS"
    # A wrong stored secret: the failure message must not show the one that was sent.
    platform_admin.patch(
        f"/api/v1/providers/{local}",
        {"config": {"districtId": clever.district_id, "clientId": clever.client_id,
                    "clientSecret": "wrong-secret-Zx8Cv7Bn6", "baseUrl": clever.base_url}},
        format="json",
    )  # fmt: skip
    failed = platform_admin.post(f"/api/v1/providers/{local}/test").json()
    assert failed["success"] is False and "wrong-secret" not in failed["message"]
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = False

    for provider_id in ids.values():
        for path in ("", "/sync/status", "/runs"):
            assert platform_admin.get(f"/api/v1/providers/{provider_id}{path}").status_code == 200
        platform_admin.patch(
            f"/api/v1/providers/{provider_id}", {"name": f"renamed {provider_id}"}, format="json"
        )
    for path in ("providers", "sync/status", "sync/history", "audit", "users"):
        assert platform_admin.get(f"/api/v1/tenants/north/{path}").status_code == 200
    platform_admin.get(f"/api/v1/runs/{run['id']}")
    platform_admin.get(f"/api/v1/runs/{run['id']}/rejects?format=csv")
    platform_admin.delete(f"/api/v1/providers/{ids['CLEVER']}")

    # Everything this test received, every log line, every audit row and run.
    received = RESPONSES[start:]
    assert len(received) >= 25
    everything = frozenset((*ALL, FAKE_SECRET))
    for path, body, _ in received:
        assert not leaked(body, everything), path
    logs = every_log_line.getvalue()
    assert "audit provider.created" in logs  # the capture works
    assert not [secret for secret in everything if secret in logs]
    assert "wrong-secret-Zx8Cv7Bn6" not in logs
    for event in AuditEvent.objects.all():
        assert not leaked(f"{event.message} {event.details}".encode(), everything)
    for error in SisSyncRun.objects.values_list("error_message", flat=True):
        assert not leaked(error.encode(), everything)


def test_every_response_the_suite_received_so_far_is_free_of_secrets() -> None:
    """The collection across modules: each body against the secrets stored when it was sent."""
    assert RESPONSES, "no API response was collected: run this with the other API tests"
    for path, body, secrets in RESPONSES:
        assert not leaked(body, secrets), path
