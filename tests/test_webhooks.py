"""Provider webhooks (SPEC §5, §6): signature, timestamp, replay, allowlist; a delta follows;
bursts coalesce into one run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import Client

from config.celery import app
from connectors.clever import client as clever_client
from sis_sync.district_generator import generate_district
from sis_sync.errors import BadRequest
from sis_sync.models import (
    AuditEvent,
    ExternalIdentity,
    Person,
    ProviderType,
    RunMode,
    RunStatus,
    SisProvider,
    SisSyncRun,
    WebhookEvent,
)
from sis_sync.provider_config import masked, validate_config
from sis_sync.runs import run_finish
from sis_sync.sync import sync_run_inline, sync_start
from sis_sync.webhooks.signature import header_value
from tests.bridge_helpers import signed
from tests.factories import ProviderFactory, TenantFactory
from tests.fake_clever_server import FakeClever

pytestmark = pytest.mark.django_db
SECRET = "whsec-0123456789abcdef"


@pytest.fixture(autouse=True)
def _local(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    monkeypatch.setattr(clever_client, "BACKOFF", 0.01)


@pytest.fixture
def provider() -> SisProvider:
    """A Clever provider whose source is never reached (its runs stay queued)."""
    return ProviderFactory(
        tenant=TenantFactory(slug="lakeview"),
        provider_type=ProviderType.CLEVER,
        config={
            "districtId": "d1",
            "accessToken": "clever-token",
            "baseUrl": "https://clever.invalid",
            "webhookSecret": SECRET,
            "webhookAllowIps": ["127.0.0.0/8", "203.0.113.0/24"],
        },
    )


@pytest.fixture
def broker(redis_url: str, settings: Any) -> Iterator[redis.Redis]:
    """Tasks go to a real Redis queue that no worker reads: runs stay PENDING there."""
    settings.REDIS_URL = redis_url
    previous = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url, app.conf.task_always_eager = redis_url, False
    app._pool, app.amqp._producer_pool = None, None
    yield redis.Redis.from_url(redis_url)
    app.conf.broker_url, app.conf.task_always_eager = previous
    app._pool, app.amqp._producer_pool = None, None


def post(
    event: dict[str, Any],
    *,
    secret: str = SECRET,
    at: int | None = None,
    ip: str = "127.0.0.1",
    path: str = "/webhooks/clever/lakeview",
) -> Any:
    body, headers = signed(secret, event, at=at)
    return Client().post(path, body, content_type="application/json", REMOTE_ADDR=ip, **headers)


def event(n: int) -> dict[str, Any]:
    return {"id": f"evt-{n}", "type": "users.updated", "data": {"object": {"id": f"u{n}"}}}


def test_a_signed_clever_event_starts_a_delta_sync_that_applies_it(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    district = tmp_path / "district"
    generate_district(district, students=30, seed=3)
    with FakeClever.from_bundle(district) as clever:
        provider = ProviderFactory(
            tenant=TenantFactory(slug="lakeview"),
            provider_type=ProviderType.CLEVER,
            config={
                "districtId": clever.district_id,
                "clientId": clever.client_id,
                "clientSecret": clever.client_secret,
                "baseUrl": clever.base_url,
                "webhookSecret": SECRET,
            },
        )
        full = sync_run_inline(run_id=sync_start(provider=provider, is_manual=True).pk)
        assert full.status == RunStatus.SUCCESS
        student = clever.id_of("stu-2")
        clever.update("users", student, name={"first": "Zora", "middle": "", "last": "Webhook"})

        with django_capture_on_commit_callbacks(execute=True):
            response = post(clever.events[-1], path=f"/webhooks/clever/{provider.tenant_id}")

    assert response.status_code == 202, response.content
    assert response.json()["accepted"] is True
    run = SisSyncRun.objects.get(pk=response.json()["runId"])
    assert (run.mode, run.triggered_by, run.status) == (RunMode.DELTA, "webhook", "SUCCESS")
    assert run.stats["users"]["updated"] == 1
    person_id = ExternalIdentity.objects.get(
        provider=provider, entity_type="user", external_id=student
    ).entity_id
    assert Person.objects.get(pk=person_id).family_name == "Webhook"
    audit = AuditEvent.objects.filter(action="webhook.received").get()
    assert (audit.actor, audit.outcome, audit.details["runId"]) == ("webhook", "success", run.pk)


@pytest.mark.parametrize(
    ("how", "status", "code"),
    [
        ("wrong secret", 401, "signature_invalid"),
        ("stale", 401, "stale_timestamp"),
        ("from the future", 401, "stale_timestamp"),
        ("unsigned", 401, "signature_missing"),
        ("outside the allowlist", 403, "ip_not_allowed"),
        ("unknown tenant", 401, "unknown_tenant"),
    ],
)
def test_it_refuses(provider: SisProvider, how: str, status: int, code: str) -> None:
    now = int(time.time())
    kwargs: dict[str, Any] = {
        "wrong secret": {"secret": "whsec-somebody-else-000"},
        "stale": {"at": now - 301},
        "from the future": {"at": now + 301},
        "outside the allowlist": {"ip": "198.51.100.7"},
        "unknown tenant": {"path": "/webhooks/clever/nowhere"},
    }.get(how, {})
    if how == "unsigned":
        response = Client().post(
            "/webhooks/clever/lakeview", b"{}", content_type="application/json"
        )
    else:
        response = post(event(1), **kwargs)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert not SisSyncRun.objects.exists()
    assert not WebhookEvent.objects.exists()
    refused = AuditEvent.objects.get(action="webhook.received")
    assert (refused.actor, refused.outcome) == ("webhook", "refused")


def test_a_replay_is_refused_and_allowed_addresses_and_the_classlink_path_work(
    provider: SisProvider,
) -> None:
    assert post(event(1), ip="203.0.113.9").status_code == 202
    replay = post(event(1), at=int(time.time()) + 2)  # a fresh signature of the same event
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed"
    # No event id at all: the signed request itself is remembered.
    body, headers = signed(SECRET, {"type": "users.updated"})
    once = Client().post("/webhooks/clever/lakeview", body, "application/json", **headers)
    again = Client().post("/webhooks/clever/lakeview", body, "application/json", **headers)
    assert (once.status_code, again.status_code) == (202, 401)
    # A Clever provider does not take ClassLink's path.
    classlink = post(event(2), path="/webhooks/classlink/lakeview")
    assert classlink.json()["error"]["code"] == "webhooks_not_configured"
    not_an_object = b"[1, 2]"
    bad = Client().post(
        "/webhooks/clever/lakeview",
        not_an_object,
        "application/json",
        HTTP_X_SIS_SIGNATURE=header_value(SECRET, int(time.time()), not_an_object),
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_request")


@pytest.mark.redis
def test_a_burst_of_50_webhooks_makes_one_run(
    provider: SisProvider, broker: redis.Redis, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        responses = [post(event(n)) for n in range(50)]

    assert {r.status_code for r in responses} == {202}
    run = SisSyncRun.objects.get()
    assert (run.status, run.mode, run.triggered_by) == (RunStatus.PENDING, "delta", "webhook")
    assert {r.json()["runId"] for r in responses} == {run.pk}
    assert WebhookEvent.objects.filter(run=run).count() == 50
    assert broker.llen("sync") == 1  # one task queued for the workers


@pytest.mark.redis
def test_events_during_a_running_sync_make_one_follow_up_run_after_it(
    provider: SisProvider, broker: redis.Redis, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = post(event(0)).json()["runId"]
    # A worker took the run and is reading the source.
    SisSyncRun.objects.filter(pk=first).update(status=RunStatus.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=True):
        later = [post(event(n)).json() for n in range(1, 11)]
    assert all(r["followUp"] and r["runId"] is None for r in later)
    assert SisSyncRun.objects.count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        run_finish(SisSyncRun.objects.get(pk=first), RunStatus.SUCCESS, "")

    follow_up = SisSyncRun.objects.exclude(pk=first).get()
    assert (follow_up.status, follow_up.mode, follow_up.triggered_by) == (
        RunStatus.PENDING,
        "delta",
        "webhook",
    )
    assert WebhookEvent.objects.filter(run=follow_up).count() == 10
    assert broker.llen("sync") == 2


def test_the_webhook_config_is_checked_and_the_secret_masked() -> None:
    base = {"districtId": "d1", "accessToken": "t"}
    with pytest.raises(BadRequest, match="webhookAllowIps"):
        validate_config("CLEVER", {**base, "webhookAllowIps": ["10.0.0.0/33"]})
    with pytest.raises(BadRequest, match="webhookSecret"):
        validate_config("CLEVER", {**base, "webhookSecret": "short"})
    shown = masked({**base, "webhookSecret": SECRET, "webhookAllowIps": ["10.0.0.0/8"]})
    assert shown["webhookSecret"] == "********" and shown["hasWebhookSecret"] is True
