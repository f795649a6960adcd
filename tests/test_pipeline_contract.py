"""The pipeline's side of the connector contract, with a connector written for the test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from connectors import registry
from connectors.base import EntityMode
from sis_sync.models import Person, ProviderType, RunStatus
from sis_sync.sync import sync_run_inline, sync_start
from staging.records import ACTIVE, SchoolRecord, UserRecord
from tests.factories import ProviderFactory

pytestmark = pytest.mark.django_db

SEEN_STATES: list[dict[str, Any]] = []


class ListExtraction:
    def __init__(self, config: dict[str, Any], mode: str) -> None:
        self.mode = "full" if config.get("fallBack") else mode
        self.modes = dict.fromkeys(("schools", "users"), EntityMode(self.mode))
        self.modes.update(classes=EntityMode.ABSENT, enrollments=EntityMode.ABSENT)
        self.announced = {"users": config.get("announce", 2)}
        self.received: dict[str, int] = {}
        self.state_after = {"cursor": config.get("cursor", "c1")}
        self.notes = ["fell back to a full sync"] if config.get("fallBack") else []

    def records(self, entity: str) -> Iterator[Any]:
        if entity == "schools":
            yield SchoolRecord("s1", ACTIVE, "North", "", "", "", {})
        if entity == "users":
            self.received["users"] = 2
            for n in (1, 2):
                yield UserRecord(
                    f"u{n}", ACTIVE, "student", "A", "", f"B{n}", "", "", "", "", True, ("s1",), {}
                )


class ListConnector:
    def __init__(self, config: dict[str, Any], *, options: dict[str, Any]) -> None:
        self.config = config

    def test_connection(self) -> str:
        return "fine"

    @contextmanager
    def extract(self, *, mode: str, state: dict[str, Any]) -> Iterator[ListExtraction]:
        SEEN_STATES.append(state)
        yield ListExtraction(self.config, mode)


@pytest.fixture(autouse=True)
def _list_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.CONNECTORS, ProviderType.CLEVER, ListConnector)
    SEEN_STATES.clear()


def run_once(provider: Any, **kwargs: Any) -> Any:
    return sync_run_inline(run_id=sync_start(provider=provider, is_manual=True, **kwargs).pk)


def test_it_fails_before_loading_when_the_source_delivered_less_than_it_announced() -> None:
    provider = ProviderFactory(provider_type=ProviderType.CLEVER, config={"announce": 3})

    run = run_once(provider)

    assert run.status == RunStatus.FAILURE
    assert run.error_message == "The source announced 3 users but delivered 2; nothing was loaded"
    assert Person.objects.count() == 0


def test_it_keeps_the_connectors_state_only_after_an_applied_load() -> None:
    provider = ProviderFactory(provider_type=ProviderType.CLEVER, config={"cursor": "c9"})

    run_once(provider, dry_run=True)
    provider.refresh_from_db()
    assert provider.sync_state == {}

    first = run_once(provider)
    provider.refresh_from_db()
    assert first.status == RunStatus.SUCCESS
    assert provider.sync_state == {"cursor": "c9"}

    run_once(provider, mode="delta")
    assert SEEN_STATES[-1]["cursor"] == "c9"
    assert SEEN_STATES[-1]["lastSyncStartedAt"] == first.started_at.isoformat()
    assert SEEN_STATES[-1]["lastFullSyncStartedAt"] == first.started_at.isoformat()


def test_it_records_a_fallback_to_a_full_sync_and_why() -> None:
    provider = ProviderFactory(provider_type=ProviderType.CLEVER, config={"fallBack": True})

    run = run_once(provider, mode="delta")

    assert run.mode == "full"
    assert run.notes == ["fell back to a full sync"]
    assert run.entity_modes["users"] == "full"
