"""Clever's event feed (`responses`): the cursor a full sync records, the changes a delta reads."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from responses import matchers

from connectors.clever import events
from connectors.clever.client import CleverClient
from connectors.clever.extraction import CleverExtraction
from connectors.clever.spool import Spool
from staging.records import DELETED

API = "https://api.clever.com"
EVENTS = f"{API}/v3.0/events"
DISTRICT = "d1"


@pytest.fixture(autouse=True)
def _no_dns(settings: Any) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def client() -> CleverClient:
    config = {"districtId": DISTRICT, "accessToken": "token-123456", "pageSize": 2}
    return CleverClient.from_config(config, sleep=lambda s: None, max_retries=0)


@pytest.fixture
def spool() -> Any:
    with Spool() as s:
        yield s


def event(event_id: str, kind: str, obj: dict[str, Any], previous: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": event_id,
        "created": f"2026-03-01T00:00:0{event_id[-1]}Z",
        "type": kind,
        "data": data,
    }


def feed(items: list[dict[str, Any]], next_uri: str | None = None) -> dict[str, Any]:
    links = [{"rel": "next", "uri": next_uri}] if next_uri else []
    return {"data": [{"data": e, "uri": f"/v3.0/events/{e['id']}"} for e in items], "links": links}


@responses.activate
def test_the_newest_event_is_asked_for_directly_and_checked(client: CleverClient) -> None:
    newest = responses.get(
        EVENTS,
        json=feed([event("e9", "users.updated", {"id": "u1"})]),
        match=[matchers.query_param_matcher({"ending_before": "last", "limit": "1"})],
    )
    after = responses.get(
        EVENTS,
        json=feed([]),
        match=[matchers.query_param_matcher({"starting_after": "e9", "limit": "2"})],
    )

    assert events.newest_event(client) == events.Newest("e9", "2026-03-01T00:00:09Z")
    assert newest.call_count == after.call_count == 1


@responses.activate
def test_a_server_ignoring_ending_before_still_yields_the_true_newest(
    client: CleverClient,
) -> None:
    oldest = [event("e1", "users.created", {"id": "u1"})]
    responses.get(
        EVENTS,
        json=feed(oldest),
        match=[matchers.query_param_matcher({"ending_before": "last", "limit": "1"})],
    )
    responses.get(
        EVENTS,
        json=feed(
            [
                event("e2", "users.updated", {"id": "u1"}),
                event("e3", "users.updated", {"id": "u1"}),
            ],
            "/v3.0/events?limit=2&starting_after=e3",
        ),
        match=[matchers.query_param_matcher({"starting_after": "e1", "limit": "2"})],
    )
    responses.get(
        EVENTS,
        json=feed([event("e4", "sections.updated", {"id": "s1"})]),
        match=[matchers.query_param_matcher({"starting_after": "e3", "limit": "2"})],
    )

    assert events.newest_event(client).id == "e4"


@responses.activate
def test_events_not_enabled_and_empty_feeds_are_told_apart(client: CleverClient) -> None:
    responses.get(EVENTS, status=403, json={"message": "Events are not enabled"})
    with pytest.raises(events.EventsUnavailable):
        events.newest_event(client)

    responses.reset()
    responses.get(EVENTS, json=feed([]))
    assert events.newest_event(client) is None


@responses.activate
def test_a_delta_collapses_the_feed_to_each_records_final_change(
    client: CleverClient, spool: Spool
) -> None:
    responses.get(
        EVENTS,
        json=feed(
            [
                event("e1", "users.created", {"id": "u1", "name": {"first": "A"}}),
                event(
                    "e2",
                    "users.updated",
                    {"id": "u1", "name": {"first": "B"}},
                    {"name": {"first": "A"}},
                ),
            ],
            "/v3.0/events?limit=2&starting_after=e2",
        ),
        match=[matchers.query_param_matcher({"starting_after": "e0", "limit": "2"})],
    )
    responses.get(
        EVENTS,
        json=feed(
            [
                event("e3", "users.deleted", {"id": "u1"}),
                event(
                    "e4",
                    "sections.updated",
                    {"id": "s1", "students": ["u2"], "teachers": ["t2"], "teacher": "t2"},
                    {"students": ["u1", "u2", "u3"], "teacher": "t1", "teachers": ["t1"]},
                ),
            ],
            "/v3.0/events?limit=2&starting_after=e4",
        ),
        match=[matchers.query_param_matcher({"starting_after": "e2", "limit": "2"})],
    )
    responses.get(
        EVENTS,
        json=feed([event("e5", "resources.created", {"id": "r1"}), event("e6", "odd", {})]),
        match=[matchers.query_param_matcher({"starting_after": "e4", "limit": "2"})],
    )

    collected = events.collect(client, spool, after="e0")

    assert collected.events == 6
    assert collected.newest.id == "e6"
    assert collected.applied == {"schools": 0, "sections": 1, "users": 3, "courses": 0, "terms": 0}
    assert [(i, k) for i, k, _ in spool.changes("users")] == [("u1", "deleted")]
    assert sorted(spool.removed("s1")) == [
        ("t1", "teacher"),
        ("u1", "student"),
        ("u2", "student"),
        ("u3", "student"),
    ]


@responses.activate
def test_an_unknown_cursor_is_an_expired_one(client: CleverClient, spool: Spool) -> None:
    responses.get(EVENTS, status=404, json={"message": "event not found"})

    with pytest.raises(events.CursorExpired):
        events.collect(client, spool, after="gone")


@responses.activate
def test_a_delta_takes_removed_members_out_and_skips_deleted_users(
    client: CleverClient, spool: Spool
) -> None:
    responses.get(f"{API}/v3.0/districts", json={"data": [{"data": {"id": DISTRICT}}], "links": []})
    responses.get(
        EVENTS,
        json=feed(
            [
                event(
                    "e1",
                    "sections.updated",
                    {
                        "id": "s1",
                        "school": "k1",
                        "name": "Math",
                        "students": ["u2", "u9"],
                        "teachers": [],
                    },
                    {"students": ["u1", "u2"]},
                ),
                event("e2", "users.deleted", {"id": "u9", "roles": {"student": {}}}),
            ]
        ),
    )
    extraction = CleverExtraction(client, spool, options={})
    extraction.start(mode="delta", state={"cleverEventId": "e0"})

    enrollments = list(extraction.records("enrollments"))

    assert extraction.mode == "delta"
    assert [(e.external_id, e.status) for e in enrollments] == [
        ("s1:u2", "active"),
        ("s1:u1", DELETED),
    ]
    assert extraction.state_after["cleverEventId"] == "e2"


@responses.activate
def test_a_full_sync_pages_only_the_roles_the_provider_keeps(
    client: CleverClient, spool: Spool
) -> None:
    students = responses.get(
        f"{API}/v3.0/users",
        json={
            "data": [{"data": {"id": "u1", "name": {"first": "A"}, "roles": {"student": {}}}}],
            "links": [],
        },
        match=[matchers.query_param_matcher({"role": "student", "limit": "2"})],
    )
    extraction = CleverExtraction(client, spool, options={"roles": ["student"]})

    assert [u.external_id for u in extraction.records("users")] == ["u1"]
    assert students.call_count == 1
    assert len(responses.calls) == 1
