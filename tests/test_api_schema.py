"""The API against its own OpenAPI schema (/api/schema/), with schemathesis.

Every operation gets generated requests, valid ones and (fewer) invalid ones, half of them aimed
at real objects (the tenant, a provider with a kept bundle, a finished run) so they reach the
domain instead of stopping at a 404. Checks: never a server error; every status code, content
type and body is one the schema documents. Examples are bounded and derandomized, so the run is
fast and the same on every CI run.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sis_sync.models import AdminRole, RunStatus, SisSyncRun
from sis_sync.providers import provider_create, provider_store_bundle
from tests.api_helpers import user_with_role

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
POSITIVE_EXAMPLES = 12
NEGATIVE_EXAMPLES = 5


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated hosts never reach a real resolver (slow, and not ours to ask)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        import ipaddress

        try:
            ipaddress.ip_address(str(host))
        except ValueError:
            raise socket.gaierror(f"unknown host {host}") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def connection_kept() -> Iterator[None]:
    """Requests go straight to the WSGI app, not through Django's test client: keep Django from
    closing the test's database connection (and its transaction) at the end of each request,
    as the test client does."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_every_operation_conforms_to_the_schema(
    settings, sample_bundle, no_dns, connection_kept
) -> None:
    from config.wsgi import application

    settings.SIS_SYNC_API_THROTTLE_RATE = "1000000/minute"
    user = user_with_role("pat", AdminRole.PLATFORM_ADMIN)
    from rest_framework.authtoken.models import Token

    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    from sis_sync.tenants import tenant_get_or_create

    tenant = tenant_get_or_create(slug="north")
    provider = provider_create(
        tenant=tenant, provider_type="ONEROSTER_CSV", name="Files", config={}
    )
    provider_store_bundle(provider=provider, source=sample_bundle)
    run = SisSyncRun.objects.create(provider=provider, status=RunStatus.SUCCESS)
    real = {"tenantId": tenant.slug, "providerId": provider.pk, "runId": run.pk}

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 34

    calls: dict[str, set[int]] = {}
    for operation in operations:
        for mode, examples in (
            (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
        ):
            try:
                exercise(operation, mode, examples, headers=headers, real=real, calls=calls)
            except Unsatisfiable:
                # Nothing about this operation can be made invalid (e.g. only an id in the path).
                if mode is not GenerationMode.NEGATIVE:
                    raise

    # The aimed requests got past the 404s: each operation answered something else too.
    reached = {label for label, codes in calls.items() if codes - {404}}
    assert reached == set(calls), sorted(set(calls) - reached)


def exercise(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    *,
    headers: dict[str, str],
    real: dict[str, Any],
    calls: dict[str, set[int]],
) -> None:
    """Sends `examples` generated requests to one operation and checks each response."""

    @given(case=operation.as_strategy(generation_mode=mode), aim=st.booleans())
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any, aim: bool) -> None:
        if aim and mode is GenerationMode.POSITIVE:
            for name in case.path_parameters or {}:
                case.path_parameters[name] = real.get(name, case.path_parameters[name])
            if isinstance(case.body, dict) and "tenantId" in case.body:
                case.body["tenantId"] = real["tenantId"]
        response = case.call(headers=headers)
        calls.setdefault(operation.label, set()).add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    check()


def test_the_schema_describes_every_route_and_the_docs_page_serves(client) -> None:
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    paths = set(schema["paths"])
    assert "/api/v1/providers/{providerId}/sync" in paths
    assert "/api/v1/tenants/{tenantId}/sync/history" in paths
    assert "/api/v1/sync/{tenantId}/start" in paths
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            assert {"401", "403", "404"} <= set(operation["responses"]), f"{method} {path}"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    # Its scripts come from this service (drf-spectacular-sidecar), not from a CDN.
    assert b"drf_spectacular_sidecar/swagger-ui-dist" in docs.content
    assert b"cdn.jsdelivr.net" not in docs.content
