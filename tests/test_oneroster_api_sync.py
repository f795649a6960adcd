"""ONEROSTER_API end to end: a generated district served by a local OneRoster REST server
(tests/fake_oneroster_server.py) syncs through a real provider, and its faults end as they must.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.oneroster_api import connector as oneroster_connector
from sis_sync.connections import provider_test_connection
from sis_sync.district_generator import generate_district
from sis_sync.models import Enrollment, Person, ProviderType, RunStatus, SisProvider, SisSyncRun
from sis_sync.providers import provider_create
from sis_sync.sync import sync_run_inline, sync_start
from sis_sync.tenants import tenant_get_or_create
from tests import bundles
from tests.fake_oneroster_server import FakeOneRoster, district_objects
from tests.sync_helpers import changes, counts
from tests.sync_helpers import sync as csv_sync

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("district")
    generate_district(folder, students=600, seed=4)  # 3 schools, ~650 users, ~4,300 enrollments
    return folder


@pytest.fixture(autouse=True)
def _local_and_fast(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True  # the server is on loopback, over http
    monkeypatch.setattr(oneroster_connector, "RETRY_BACKOFF", 0.01)


@pytest.fixture
def fake(district: Path) -> Iterator[FakeOneRoster]:
    with FakeOneRoster(district_objects(district), auth="oauth2") as server:
        yield server


def provider_for(fake: FakeOneRoster, **config: Any) -> SisProvider:
    return provider_create(
        tenant=tenant_get_or_create(slug="lakeview"),
        provider_type=ProviderType.ONEROSTER_API,
        name="SIS",
        config=fake.provider_config(**{"pageSize": 500, **config}),
    )


def run(provider: SisProvider, mode: str = "full") -> SisSyncRun:
    return sync_run_inline(run_id=sync_start(provider=provider, is_manual=True, mode=mode).pk)


def roster() -> list[tuple]:
    return [
        *Person.objects.order_by("id").values_list("id", "family_name", "is_active"),
        *Enrollment.objects.order_by("id").values_list("id", "is_active"),
    ]


def test_it_syncs_a_generated_district_with_the_counts_of_its_csv_import(
    fake: FakeOneRoster, district: Path
) -> None:
    api = run(provider_for(fake))
    csv = csv_sync(district, tenant="csv-twin")

    assert api.status == RunStatus.SUCCESS, api.error_message
    assert csv.status == RunStatus.SUCCESS
    schools = [r for r in bundles.read(district, "orgs") if r["type"] == "school"]
    expected = {
        "schools": len(schools),
        "classes": len(bundles.read(district, "classes")),
        "users": len(bundles.read(district, "users")),
        "enrollments": len(bundles.read(district, "enrollments")),
    }
    for entity, number in expected.items():
        assert counts(api, entity) == counts(csv, entity), entity
        assert counts(api, entity)["created"] == number, entity
    assert api.mode == "full" and set(api.entity_modes.values()) == {"full"}
    assert fake.tokens_issued == 1  # one token, cached across every page


def test_a_second_full_run_changes_nothing(fake: FakeOneRoster) -> None:
    provider = provider_for(fake)
    run(provider)
    before = roster()

    again = run(provider)

    assert again.status == RunStatus.SUCCESS
    assert changes(again) == 0
    assert roster() == before


def test_a_delta_run_applies_exactly_what_changed_since_the_last_sync(
    fake: FakeOneRoster,
) -> None:
    provider = provider_for(fake)
    run(provider)
    students = [u for u in fake.data["users"] if u["role"] == "student"]
    fake.touch("users", students[0]["sourcedId"], familyName="Renamed-One")
    fake.touch("users", students[1]["sourcedId"], familyName="Renamed-Two")
    fake.mark_deleted("users", students[2]["sourcedId"])
    leaver = students[2]["sourcedId"]
    # The SIS removes a leaver's enrollments too, and a teacher's class loses two students.
    theirs = [e for e in fake.data["enrollments"] if e["user"]["sourcedId"] == leaver]
    others = [e for e in fake.data["enrollments"] if e["user"]["sourcedId"] != leaver][:2]
    for gone in theirs + others:
        fake.mark_deleted("enrollments", gone["sourcedId"])

    delta = run(provider, mode="delta")

    assert delta.status == RunStatus.SUCCESS, delta.error_message
    assert delta.mode == "delta" and set(delta.entity_modes.values()) == {"delta"}
    assert counts(delta, "users")["updated"] == 2
    assert counts(delta, "users")["deactivated"] == 1
    assert counts(delta, "enrollments")["deactivated"] == len(theirs) + 2
    assert counts(delta, "enrollments")["unchanged"] == 0
    assert counts(delta, "users")["unchanged"] == 0  # only the changed records came
    assert Person.objects.filter(family_name__startswith="Renamed-").count() == 2
    assert Person.objects.filter(is_active=False).count() == 1
    users_asked = fake.requests_to("users")[-1].query
    assert users_asked["filter"].startswith("dateLastModified>'")


def test_a_delta_without_an_earlier_sync_runs_in_full_and_says_so(fake: FakeOneRoster) -> None:
    first = run(provider_for(fake), mode="delta")

    assert first.status == RunStatus.SUCCESS
    assert first.mode == "full"
    assert first.notes == ["No earlier sync to take changes from: ran a full sync instead"]


def test_it_waits_out_a_429_and_succeeds(fake: FakeOneRoster) -> None:
    fake.inject("429", path="users", retry_after="1")

    result = run(provider_for(fake))

    assert result.status == RunStatus.SUCCESS, result.error_message
    refused, retried = [s for s in fake.requests_to("users") if s.query.get("offset") == "0"][:2]
    assert refused.status == 429 and retried.status == 200
    assert retried.at - refused.at >= 0.9  # it waited as long as Retry-After asked


def test_it_retries_500s_dropped_and_cut_connections_and_still_gets_everything(
    fake: FakeOneRoster, district: Path
) -> None:
    fake.inject("500", path="enrollments", times=2)
    fake.inject("drop", path="users")
    fake.inject("cut", path="classes")

    result = run(provider_for(fake))

    assert result.status == RunStatus.SUCCESS, result.error_message
    assert counts(result, "enrollments")["created"] == len(bundles.read(district, "enrollments"))
    assert {s.status for s in fake.log} >= {500, -1, -2, 200}


def test_persistent_500s_fail_the_run_clearly_and_change_nothing(fake: FakeOneRoster) -> None:
    fake.inject("500", path="users", times=1000)

    result = run(provider_for(fake))

    assert result.status == RunStatus.FAILURE
    assert result.error_message == (
        f"the OneRoster server failed with HTTP 500 at {fake.url}/users after 5 tries"
    )
    assert Person.objects.count() == 0


def test_a_server_that_ignores_offset_fails_clearly_without_looping(
    fake: FakeOneRoster,
) -> None:
    fake.ignore_offset = True
    fake.send_total = False  # nothing to stop it but the repeated page

    result = run(provider_for(fake, pageSize=100))

    assert result.status == RunStatus.FAILURE
    assert "seems to ignore offset" in result.error_message
    assert len(fake.requests_to("orgs")) <= 3
    assert Person.objects.count() == 0


def test_fewer_records_than_x_total_count_fail_the_run_before_load(fake: FakeOneRoster) -> None:
    provider = provider_for(fake)
    run(provider)
    before = roster()
    fake.touch("users", fake.data["users"][5]["sourcedId"], familyName="Changed")
    fake.extra_total["users"] = 3

    result = run(provider)

    assert result.status == RunStatus.FAILURE
    assert result.error_message == (
        f"The source announced {len(fake.data['users']) + 3:,} users but delivered "
        f"{len(fake.data['users']):,}; nothing was loaded"
    )
    assert roster() == before


def test_an_empty_roster_from_the_server_is_held_not_applied(fake: FakeOneRoster) -> None:
    provider = provider_for(fake)
    run(provider)
    before = roster()
    fake.data["users"] = []
    fake.data["enrollments"] = []

    result = run(provider)

    assert result.status == RunStatus.HELD
    assert roster() == before


def test_bad_credentials_fail_permanently_with_an_admin_message_and_no_secret(
    fake: FakeOneRoster,
) -> None:
    wrong = "wrong-secret-do-not-print"

    result = run(provider_for(fake, clientSecret=wrong))

    assert result.status == RunStatus.FAILURE
    assert result.error_message == (
        "the OneRoster server rejected the client id/secret at the token URL "
        "(HTTP 401: invalid_client: bad client): check clientId and clientSecret"
    )
    assert wrong not in result.error_message and fake.client_secret not in result.error_message


def test_a_wrong_base_url_says_there_is_no_oneroster_api_there(fake: FakeOneRoster) -> None:
    result = run(provider_for(fake, baseUrl=f"{fake.origin}/api/v1"))

    assert result.status == RunStatus.FAILURE
    assert result.error_message.startswith(
        f"No OneRoster API at this URL: {fake.origin}/api/v1/orgs"
    )


def test_the_connection_test_summarises_what_the_server_offers(fake: FakeOneRoster) -> None:
    result = provider_test_connection(provider=provider_for(fake))

    assert result.success
    assert result.message == "3 schools, paging with X-Total-Count, filter supported"
    assert fake.requests_to("orgs")[0].query == {"limit": "1", "offset": "0"}
