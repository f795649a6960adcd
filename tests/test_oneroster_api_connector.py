"""The ONEROSTER_API connector against the local OneRoster server, without the database:
modes (delta, forced full), enrollment fallbacks, concurrency, the connection summary.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.base import EntityMode
from connectors.oneroster_api import connector as oneroster_connector
from connectors.oneroster_api.connector import OneRosterApiConnector
from sis_sync.district_generator import generate_district
from staging.records import ENTITIES, Reject
from tests.fake_oneroster_server import FakeOneRoster, district_objects

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("district")
    generate_district(folder, students=600, seed=5)
    return folder


@pytest.fixture(autouse=True)
def _local_and_fast(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    monkeypatch.setattr(oneroster_connector, "RETRY_BACKOFF", 0.01)


@pytest.fixture
def fake(district: Path) -> Iterator[FakeOneRoster]:
    with FakeOneRoster(district_objects(district), auth="oauth1") as server:
        yield server


def connector(fake: FakeOneRoster, **config: Any) -> OneRosterApiConnector:
    base = {
        "baseUrl": fake.url,
        "clientId": fake.client_id,
        "clientSecret": fake.client_secret,
        "authMethod": "oauth1",
        "pageSize": 250,
    }
    return OneRosterApiConnector(base | config, options={})


def extract(conn: OneRosterApiConnector, mode: str = "full", **state: Any) -> dict[str, Any]:
    with conn.extract(mode=mode, state=state) as extraction:
        found = {
            entity: Counter(type(r).__name__ for r in extraction.records(entity))
            for entity in ENTITIES
        }
        return {
            "records": found,
            "mode": extraction.mode,
            "modes": dict(extraction.modes),
            "notes": list(extraction.notes),
            "announced": dict(extraction.announced),
            "received": dict(extraction.received),
        }


def expected(fake: FakeOneRoster) -> dict[str, Counter]:
    schools = sum(1 for o in fake.data["orgs"] if o["type"] == "school")
    return {
        "schools": Counter(SchoolRecord=schools),
        "classes": Counter(ClassRecord=len(fake.data["classes"])),
        "users": Counter(UserRecord=len(fake.data["users"])),
        "enrollments": Counter(EnrollmentRecord=len(fake.data["enrollments"])),
    }


def test_a_delta_filters_every_collection_on_the_last_sync_start(fake: FakeOneRoster) -> None:
    since = NOW - dt.timedelta(hours=2)
    fake.touch("users", fake.data["users"][3]["sourcedId"], familyName="New")

    result = extract(
        connector(fake),
        "delta",
        lastSyncStartedAt=since.isoformat(),
        lastFullSyncStartedAt=since.isoformat(),
    )

    assert result["mode"] == "delta"
    assert set(result["modes"].values()) == {EntityMode.DELTA}
    assert result["records"]["users"] == Counter(UserRecord=1)
    assert result["received"] == {"schools": 0, "classes": 0, "users": 1, "enrollments": 0}
    wanted = f"dateLastModified>'{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    for path in ("orgs", "classes", "users", "enrollments"):
        assert wanted in {s.query.get("filter") for s in fake.requests_to(path)}, path
    assert all(s.query["filter"] == wanted for s in fake.requests_to("users"))
    # Lookups are read whole: a changed class still finds its unchanged course.
    assert "filter" not in fake.requests_to("courses")[0].query


def test_a_delta_runs_in_full_when_the_last_full_sync_is_older_than_configured(
    fake: FakeOneRoster,
) -> None:
    state = {
        "lastSyncStartedAt": (NOW - dt.timedelta(hours=1)).isoformat(),
        "lastFullSyncStartedAt": (NOW - dt.timedelta(days=8)).isoformat(),
    }

    weekly = extract(connector(fake), "delta", **state)
    fortnightly = extract(connector(fake, fullSyncEveryDays=14), "delta", **state)

    assert weekly["mode"] == "full"
    assert set(weekly["modes"].values()) == {EntityMode.FULL}
    assert weekly["notes"] == [
        "The last full sync is more than 7 days old (fullSyncEveryDays): ran a full sync "
        "instead, because records deleted at the source only show in a full sync"
    ]
    assert weekly["records"] == expected(fake)
    assert fortnightly["mode"] == "delta"


def test_a_delta_runs_in_full_when_the_server_refuses_the_filter(fake: FakeOneRoster) -> None:
    fake.supports_filter = False
    since = (NOW - dt.timedelta(hours=1)).isoformat()

    result = extract(connector(fake), "delta", lastSyncStartedAt=since, lastFullSyncStartedAt=since)

    assert result["mode"] == "full"
    assert result["notes"][0].startswith("The server refused filter=dateLastModified")
    assert result["records"] == expected(fake)


def test_it_reads_enrollments_school_by_school_when_the_flat_collection_is_refused(
    fake: FakeOneRoster,
) -> None:
    fake.refuse["enrollments"] = 403

    result = extract(connector(fake))

    assert result["records"] == expected(fake)
    assert result["announced"]["enrollments"] == result["received"]["enrollments"]
    assert result["received"]["enrollments"] == len(fake.data["enrollments"])
    assert len({s.path for s in fake.log if s.path.endswith("/enrollments")}) == 3
    assert "read enrollments school by school (3 schools)" in result["notes"][0]


def test_it_reads_enrollments_class_by_class_when_per_school_ones_are_refused_too(
    fake: FakeOneRoster,
) -> None:
    fake.refuse["enrollments"] = 404
    for org in fake.data["orgs"]:
        fake.refuse[f"schools/{org['sourcedId']}/enrollments"] = 405

    result = extract(connector(fake))

    assert result["records"] == expected(fake)
    assert result["received"]["enrollments"] == len(fake.data["enrollments"])
    assert "read enrollments class by class" in result["notes"][1]


def test_pages_are_fetched_concurrently_within_the_providers_bound(fake: FakeOneRoster) -> None:
    fake.latency = 0.02

    result = extract(connector(fake, pageSize=100, concurrency=3))

    assert result["records"] == expected(fake)
    assert fake.max_in_flight == 3


def test_quirky_objects_map_the_same_as_clean_ones(district: Path) -> None:
    with FakeOneRoster(district_objects(district, quirks=False), auth="oauth1") as clean:
        plain = extract(connector(clean))
    with FakeOneRoster(district_objects(district, quirks=True), auth="oauth1") as quirky:
        sloppy = extract(connector(quirky))

    assert plain["records"] == sloppy["records"] == expected(quirky)
    assert not any(Reject.__name__ in c for c in sloppy["records"].values())


def test_the_connection_test_says_when_the_server_has_no_totals_and_no_filter(
    fake: FakeOneRoster,
) -> None:
    fake.send_total = False
    fake.send_links = False
    fake.supports_filter = False
    fake.refuse["schools"] = 404

    summary = connector(fake).test_connection()

    assert (
        summary
        == "orgs readable, paging without X-Total-Count or Link headers, filter not supported"
    )


def test_a_token_the_server_stops_accepting_is_replaced_once_and_the_pull_goes_on(
    district: Path,
) -> None:
    with FakeOneRoster(district_objects(district), auth="oauth2") as server:
        conn = connector(server, authMethod="oauth2", tokenUrl=server.token_url)
        client = conn.client()
        try:
            client.page("orgs", "orgs", offset=0)
            server.expire_tokens()  # e.g. revoked, or the server restarted

            page = client.page("users", "users", offset=0)
        finally:
            client.close()

    assert len(page.items) == 250
    assert server.tokens_issued == 2
    assert [s.status for s in server.requests_to("users")] == [401, 200]


def test_classes_still_come_when_the_server_does_not_offer_courses(fake: FakeOneRoster) -> None:
    fake.refuse["courses"] = 404

    result = extract(connector(fake))

    assert result["records"] == expected(fake)
    assert result["notes"] == [
        "The server refused /courses (HTTP 404): classes have no course titles"
    ]
