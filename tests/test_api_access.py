"""Roles and tenant isolation: every endpoint × {anonymous → 401, no role → 403, another
tenant's district admin → 404, own district admin and platform admin → allowed}; throttling;
token and session authentication."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver

from sis_sync.api import urls as api_urls
from sis_sync.models import AdminRole, AuditEvent, RunStatus, SisSyncRun
from sis_sync.providers import provider_create
from tests.api_helpers import (
    Api,
    assert_error,
    client_for,
    user_with_role,
)

P, R, T = "{provider}", "{run}", "{tenant}"
# (method, path under /api/v1/, JSON body); {tenant}, {provider}, {run} are north's.
ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", f"tenants/{T}/providers", None),
    ("POST", f"tenants/{T}/providers", {"providerType": "ONEROSTER_CSV", "name": "N",
                                        "config": {}}),
    ("POST", "providers", {"tenantId": T, "providerType": "ONEROSTER_CSV", "name": "N",
                           "config": {}}),
    ("GET", f"providers/{P}", None),
    ("PATCH", f"providers/{P}", {"name": "Renamed"}),
    ("DELETE", f"providers/{P}", None),
    ("GET", f"tenants/{T}/providers/{P}", None),
    ("PUT", f"tenants/{T}/providers/{P}", {"name": "Renamed"}),
    ("PATCH", f"tenants/{T}/providers/{P}", {"name": "Renamed"}),
    ("DELETE", f"tenants/{T}/providers/{P}", None),
    ("POST", f"providers/{P}/sync", {"dryRun": True}),
    ("POST", f"providers/{P}/sync/cancel", None),
    ("GET", f"providers/{P}/sync/status", None),
    ("GET", f"providers/{P}/runs", None),
    ("POST", f"providers/{P}/upload", None),
    ("POST", f"providers/{P}/test", None),
    ("GET", f"runs/{R}", None),
    ("GET", f"runs/{R}/rejects", None),
    ("GET", f"runs/{R}/rejects?format=csv", None),
    ("POST", f"runs/{R}/approve", None),
    ("POST", f"runs/{R}/discard", None),
    ("POST", f"tenants/{T}/sync", {}),
    ("POST", f"tenants/{T}/sync/start", {}),
    ("GET", f"tenants/{T}/sync/status", None),
    ("POST", f"tenants/{T}/sync/stop", None),
    ("GET", f"tenants/{T}/sync/history", None),
    ("POST", f"sync/{T}/start", {}),
    ("GET", f"sync/{T}/status", None),
    ("POST", f"sync/{T}/stop", None),
    ("GET", f"sync/{T}/history", None),
    ("GET", f"tenants/{T}", None),
    ("PATCH", f"tenants/{T}", {"timezone": "America/Chicago"}),
    ("GET", f"tenants/{T}/seats", None),
    ("GET", f"tenants/{T}/audit", None),
    ("GET", f"tenants/{T}/schools", None),
    ("GET", f"tenants/{T}/classes", None),
    ("GET", f"tenants/{T}/users", None),
    ("GET", f"tenants/{T}/enrollments", None),
]  # fmt: skip


@pytest.fixture
def objects(north, south) -> dict[str, Any]:
    provider = provider_create(tenant=north, provider_type="ONEROSTER_CSV", name="Files", config={})
    run = SisSyncRun.objects.create(provider=provider, status=RunStatus.SUCCESS)
    return {"tenant": north.slug, "provider": provider.pk, "run": run.pk}


def call(client: Api, method: str, path: str, body: Any, objects: dict[str, Any]) -> Any:
    url = "/api/v1/" + path.format(**objects)
    if isinstance(body, dict):
        body = {k: (v.format(**objects) if isinstance(v, str) else v) for k, v in body.items()}
    return client.generic(method, url, *_json(body))


def _json(body: Any) -> tuple[str, str]:
    import json

    return (json.dumps(body), "application/json") if body is not None else ("", "application/json")


@pytest.mark.parametrize(
    ("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
def test_every_endpoint_keeps_tenants_apart(method, path, body, objects, north, south) -> None:
    anonymous = Api()
    assert_error(call(anonymous, method, path, body, objects), 401, "not_authenticated")

    no_role = client_for(user_with_role("nobody", None))
    assert_error(call(no_role, method, path, body, objects), 403, "permission_denied")

    other = client_for(user_with_role("sam", AdminRole.DISTRICT_ADMIN, south))
    assert_error(call(other, method, path, body, objects), 404, "not_found")

    own = client_for(user_with_role("nora", AdminRole.DISTRICT_ADMIN, north))
    answered = call(own, method, path, body, objects)
    assert answered.status_code not in (401, 403, 404, 500), answered.content[:300]

    platform = client_for(user_with_role("pat", AdminRole.PLATFORM_ADMIN))
    answered = call(platform, method, path, body, objects)
    assert answered.status_code not in (401, 403, 404, 500), answered.content[:300]

    superuser = get_user_model().objects.create(username="root", is_superuser=True)
    answered = call(client_for(superuser), method, path, body, objects)
    assert answered.status_code not in (401, 403, 404, 500), answered.content[:300]

    # Nothing the refused callers sent was done: every audit row is by an allowed caller.
    assert set(AuditEvent.objects.values_list("actor", flat=True)) <= {"nora", "pat", "root",
                                                                       "system"}  # fmt: skip


def test_the_matrix_covers_every_route() -> None:
    def routes(patterns: list[Any], prefix: str = "") -> list[str]:
        found = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found += routes(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name != "not-found":
                found.append(prefix + str(pattern.pattern))
        return found

    def shape(path: str) -> str:
        return re.sub(r"<[^>]+>|\{[^}]+\}", "*", path.split("?")[0])

    covered = {shape(path) for _, path, _ in ENDPOINTS}
    assert {shape(route) for route in routes(api_urls.urlpatterns)} == covered


def test_a_district_admin_cannot_create_in_or_list_another_tenant(north, south) -> None:
    nora = client_for(user_with_role("nora", AdminRole.DISTRICT_ADMIN, north))
    response = nora.post(
        "/api/v1/providers",
        {"tenantId": "south", "providerType": "ONEROSTER_CSV", "name": "x", "config": {}},
        format="json",
    )
    assert_error(response, 404, "not_found")
    assert_error(nora.get("/api/v1/tenants/south/users"), 404)
    assert not AuditEvent.objects.exists()


def test_a_bad_token_is_401_and_a_session_works_with_csrf(north) -> None:
    bad = Api()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = bad.get("/api/v1/tenants/north/providers")
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Token"

    user = user_with_role("nora", AdminRole.DISTRICT_ADMIN, north)
    user.set_password("correct-horse-battery")
    user.save()
    session = Api(enforce_csrf_checks=True)
    assert session.login(username="nora", password="correct-horse-battery")
    assert session.get("/api/v1/tenants/north/providers").status_code == 200
    forged = session.post("/api/v1/tenants/north/sync", {}, format="json")
    assert "CSRF" in assert_error(forged, 403, "permission_denied")["message"]


def test_requests_over_the_rate_are_throttled_with_retry_after(north, settings) -> None:
    settings.SIS_SYNC_API_THROTTLE_RATE = "3/minute"
    nora = client_for(user_with_role("nora", AdminRole.DISTRICT_ADMIN, north))
    for _ in range(3):
        assert nora.get("/api/v1/tenants/north/providers").status_code == 200
    throttled = nora.get("/api/v1/tenants/north/providers")
    error = assert_error(throttled, 429, "throttled")
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert error["details"] == {"retryAfter": int(throttled["Retry-After"])}
    # Another user has their own allowance.
    pat = client_for(user_with_role("pat", AdminRole.PLATFORM_ADMIN))
    assert pat.get("/api/v1/tenants/north/providers").status_code == 200
