"""Clients and users for the API tests.

Every response an `Api` client receives is searched, as it arrives, for every secret stored
in any provider's config at that moment (SPEC §2: secrets are write-only), and kept in
`RESPONSES`; `test_api_secrets` checks the whole collection once more at the end of its
module. A leak fails the test that caused it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from sis_sync.access import membership_set
from sis_sync.models import AdminRole, SisProvider, Tenant
from sis_sync.provider_config import SECRETS, SFTP_SECRETS
from sis_sync.tenants import tenant_get_or_create

# Every API response body the suite received, with the secrets stored when it was sent.
RESPONSES: list[tuple[str, bytes, frozenset[str]]] = []

# Secret values the tests store: long and unlike anything else a response could hold.
CLEVER_SECRET = "clever-secret-7Qm2x9Lk4Vb8Nw3Rt6Yh"
CLEVER_TOKEN = "clever-token-Hs5Jd8Kf2Lg7Pq4Wz1Xc"
ONEROSTER_SECRET = "oneroster-secret-Bn6Mv3Cx9Za2Sd5Fg8"
SFTP_PASSWORD = "sftp-password-Tr4Ey7Ui1Op3As6Df9G"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def stored_secrets() -> frozenset[str]:
    """Every secret value stored in any provider's config (short ones would match by chance)."""
    found = set()
    for provider in SisProvider.objects.all():
        config = provider.config
        values = [config.get(key) for key in SECRETS]
        if isinstance(config.get("sftp"), dict):
            values += [config["sftp"].get(key) for key in SFTP_SECRETS]
        found.update(v for v in values if isinstance(v, str) and len(v) >= 12)
    return frozenset(found)


def leaked(body: bytes, secrets: frozenset[str]) -> list[str]:
    text = body.decode("utf-8", errors="replace")
    return [secret for secret in secrets if secret in text]


class Api(APIClient):
    """An API client that checks each response for stored secrets and keeps its body."""

    def request(self, **kwargs: Any) -> Any:
        response = super().request(**kwargs)
        if response.streaming:
            body = b"".join(response.streaming_content)
            response.streaming_content = [body]
        else:
            body = response.content
        secrets = stored_secrets()
        RESPONSES.append((kwargs.get("PATH_INFO", ""), body, secrets))
        assert not leaked(body, secrets), f"a stored secret in the response to {kwargs}"
        return response

    def body(self, response: Any) -> Any:
        if response.streaming:
            return b"".join(response.streaming_content).decode()
        return json.loads(response.content) if response.content else None


def user_with_role(username: str, role: str | None, tenant: Tenant | None = None) -> Any:
    user = get_user_model().objects.create(username=username)
    if role is not None:
        membership_set(user=user, role=role, tenant=tenant)
    return user


def client_for(user: Any | None) -> Api:
    """A token-authenticated client; anonymous for None."""
    client = Api()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the API's error shape with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    """Throttle counters live in the cache: each test starts with none."""
    cache.clear()


@pytest.fixture
def north(db: Any) -> Tenant:
    return tenant_get_or_create(slug="north", name="North District")


@pytest.fixture
def south(db: Any) -> Tenant:
    return tenant_get_or_create(slug="south", name="South District")


@pytest.fixture
def platform_admin(db: Any) -> Api:
    return client_for(user_with_role("pat", AdminRole.PLATFORM_ADMIN))


@pytest.fixture
def north_admin(north: Tenant) -> Api:
    return client_for(user_with_role("nora", AdminRole.DISTRICT_ADMIN, north))


@pytest.fixture
def south_admin(south: Tenant) -> Api:
    return client_for(user_with_role("sam", AdminRole.DISTRICT_ADMIN, south))


@pytest.fixture
def secret_configs() -> dict[str, dict[str, Any]]:
    """A valid config with secrets for each provider type (hosts checked: public names)."""
    return {
        "CLEVER": {
            "districtId": "d-1",
            "clientId": "c-1",
            "clientSecret": CLEVER_SECRET,
            "accessToken": CLEVER_TOKEN,
        },
        "ONEROSTER_API": {
            "baseUrl": "https://sis.example.com/ims/oneroster/v1p1",
            "clientId": "or-1",
            "clientSecret": ONEROSTER_SECRET,
            "tokenUrl": "https://sis.example.com/oauth/token",
        },
        "ONEROSTER_CSV": {
            "sftp": {
                "host": "sftp.example.com",
                "username": "district",
                "password": SFTP_PASSWORD,
                "hostKey": HOST_KEY,
            },
            "remotePath": "/exports/oneroster",
        },
    }


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """example.com names resolve to a public address, other names to nothing, without asking
    DNS; address literals resolve as usual."""
    import ipaddress
    import socket

    import connectors.netcheck

    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return real(host, port, *args, **kwargs)
        if not str(host).endswith("example.com"):
            raise socket.gaierror(f"unknown host {host}")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port or 443))]

    monkeypatch.setattr(connectors.netcheck.socket, "getaddrinfo", getaddrinfo)
