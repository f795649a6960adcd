"""CLASSLINK end to end: OAuth 1.0a signed requests (verified by the local server with oauthlib)
and ClassLink's OAuth 2 proxy with a bearer token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.oneroster_api import connector as oneroster_connector
from sis_sync.connections import provider_test_connection
from sis_sync.district_generator import generate_district
from sis_sync.models import Person, ProviderType, RunStatus, SisProvider, SisSyncRun
from sis_sync.providers import provider_create
from sis_sync.sync import sync_run_inline, sync_start
from sis_sync.tenants import tenant_get_or_create
from tests import bundles
from tests.fake_oneroster_server import FakeOneRoster, district_objects
from tests.sync_helpers import changes, counts

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("district")
    generate_district(folder, students=300, seed=6)
    return folder


@pytest.fixture(autouse=True)
def _local_and_fast(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    monkeypatch.setattr(oneroster_connector, "RETRY_BACKOFF", 0.01)


@pytest.fixture
def roster_server(district: Path) -> Iterator[FakeOneRoster]:
    with FakeOneRoster(district_objects(district), auth="oauth1") as server:
        yield server


def classlink(server: FakeOneRoster, **config: Any) -> SisProvider:
    return provider_create(
        tenant=tenant_get_or_create(slug="springtown"),
        provider_type=ProviderType.CLASSLINK,
        name="ClassLink",
        config={
            "baseUrl": server.origin,  # the bare Roster Server: the OneRoster path is added
            "clientId": server.client_id,
            "clientSecret": server.client_secret,
            "tenantId": "1234",
        }
        | config,
    )


def run(provider: SisProvider, mode: str = "full") -> SisSyncRun:
    return sync_run_inline(run_id=sync_start(provider=provider, is_manual=True, mode=mode).pk)


def expected(district: Path) -> dict[str, int]:
    return {
        "schools": sum(1 for r in bundles.read(district, "orgs") if r["type"] == "school"),
        "classes": len(bundles.read(district, "classes")),
        "users": len(bundles.read(district, "users")),
        "enrollments": len(bundles.read(district, "enrollments")),
    }


def test_it_syncs_a_district_over_verified_oauth1_signatures_then_changes_nothing(
    roster_server: FakeOneRoster, district: Path
) -> None:
    provider = classlink(roster_server, pageSize=200)

    first = run(provider)
    again = run(provider)

    assert first.status == RunStatus.SUCCESS, first.error_message
    for entity, number in expected(district).items():
        assert counts(first, entity)["created"] == number, entity
    assert again.status == RunStatus.SUCCESS
    assert changes(again) == 0
    data_requests = [s for s in roster_server.log if s.method == "GET"]
    assert {s.status for s in data_requests} == {200}  # every signature verified
    signed = data_requests[0].oauth_params
    assert signed["oauth_signature_method"] == "HMAC-SHA256"
    assert "oauth_version" not in signed  # as ClassLink's own samples sign


def test_hmac_sha1_is_used_when_the_provider_says_so(district: Path) -> None:
    with FakeOneRoster(
        district_objects(district), auth="oauth1", signature_method="HMAC-SHA1"
    ) as s:
        result = run(classlink(s, signatureMethod="HMAC-SHA1"))

        assert result.status == RunStatus.SUCCESS, result.error_message
        assert s.log[0].oauth_params["oauth_signature_method"] == "HMAC-SHA1"


def test_a_wrong_secret_fails_permanently_saying_what_to_check_and_not_the_secret(
    roster_server: FakeOneRoster,
) -> None:
    wrong = "not-the-right-secret-123"

    result = run(classlink(roster_server, clientSecret=wrong))

    assert result.status == RunStatus.FAILURE
    assert result.error_message == (
        "ClassLink rejected the client id/secret (the OAuth 1.0a signature; HTTP 401: "
        "unauthorisedrequest: Invalid OAuth signature): check clientId, clientSecret and "
        "signatureMethod"
    )
    assert wrong not in result.error_message
    assert Person.objects.count() == 0


def test_the_connection_test_is_one_signed_orgs_request_and_a_summary(
    roster_server: FakeOneRoster,
) -> None:
    result = provider_test_connection(provider=classlink(roster_server))

    assert result.success, result.message
    assert result.message == "1 school, paging with X-Total-Count, filter supported"
    first = roster_server.log[0]
    assert (first.path, first.query) == ("orgs", {"limit": "1", "offset": "0"})
    assert first.status == 200


def test_the_oauth2_proxy_syncs_with_the_console_access_token(district: Path) -> None:
    with FakeOneRoster(district_objects(district), auth="bearer") as proxy:
        provider = classlink(
            proxy,
            baseUrl=f"{proxy.url}",
            authMethod="proxy",
            accessToken=proxy.bearer_token,
        )

        result = run(provider)

    assert result.status == RunStatus.SUCCESS, result.error_message
    assert counts(result, "users")["created"] == expected(district)["users"]


def test_a_proxy_token_that_is_refused_says_to_check_the_access_token(district: Path) -> None:
    with FakeOneRoster(district_objects(district), auth="bearer") as proxy:
        result = run(classlink(proxy, baseUrl=proxy.url, authMethod="proxy", accessToken="revoked"))

    assert result.status == RunStatus.FAILURE
    assert result.error_message == (
        "ClassLink rejected the access token (HTTP 401: unauthorisedrequest: Invalid or expired "
        "access token): check accessToken"
    )
