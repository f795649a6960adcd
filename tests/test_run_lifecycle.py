"""Cancel, the reaper, the fence, and waiting for a slot — through the real pipeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.utils import timezone

from connectors import registry
from connectors.base import EntityMode
from sis_sync import locks, sync
from sis_sync.errors import SyncError
from sis_sync.models import Person, ProviderType, RunStatus, SisProvider, SisSyncRun
from sis_sync.runs import runs_reap, sync_cancel
from sis_sync.sync import sync_extract, sync_load, sync_run_inline, sync_start
from staging.records import ACTIVE, SchoolRecord, UserRecord
from tests.factories import ProviderFactory

pytestmark = pytest.mark.django_db

DURING_USERS: list[Any] = []


class SlowExtraction:
    mode = "full"
    announced: dict[str, int] = {}
    received: dict[str, int] = {}
    state_after: dict[str, Any] = {}
    notes: list[str] = []

    def __init__(self) -> None:
        self.modes = dict.fromkeys(("schools", "users"), EntityMode.FULL)
        self.modes.update(classes=EntityMode.ABSENT, enrollments=EntityMode.ABSENT)

    def records(self, entity: str) -> Iterator[Any]:
        if entity == "schools":
            yield SchoolRecord("s1", ACTIVE, "North", "", "", "", {})
            return
        for n in range(12_000):
            if n == 6_000:
                for hook in DURING_USERS:
                    hook()
            yield UserRecord(
                f"u{n}", ACTIVE, "student", "A", "", "B", "", "", "", "", True, ("s1",), {}
            )


class SlowConnector:
    def __init__(self, config: dict[str, Any], *, options: dict[str, Any]) -> None:
        pass

    def test_connection(self) -> str:
        return "fine"

    @contextmanager
    def extract(self, *, mode: str, state: dict[str, Any]) -> Iterator[SlowExtraction]:
        yield SlowExtraction()


@pytest.fixture(autouse=True)
def _slow_connector(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setitem(registry.CONNECTORS, ProviderType.CLEVER, SlowConnector)
    monkeypatch.setattr(sync, "PROGRESS_INTERVAL", 0.0)
    monkeypatch.setattr(locks, "_local", locks.LocalStore())
    settings.REDIS_URL = None
    DURING_USERS.clear()


@pytest.fixture
def provider() -> SisProvider:
    return ProviderFactory(provider_type=ProviderType.CLEVER)


def test_it_cancels_during_extract_and_applies_nothing(provider: SisProvider) -> None:
    run = sync_start(provider=provider, is_manual=True)
    DURING_USERS.append(lambda: sync_cancel(provider=provider, cancelled_by="admin"))

    result = sync_run_inline(run_id=run.pk)

    assert result.status == RunStatus.CANCELLED
    assert result.error_message == "Cancelled by admin"
    assert Person.objects.count() == 0
    assert locks.store().lock_owner(locks.provider_key(provider.pk)) is None
    provider.refresh_from_db()
    assert provider.active_run_id is None
    with pytest.raises(SyncError, match="No sync of this provider is running"):
        sync_cancel(provider=provider)


def test_it_does_not_load_a_run_cancelled_between_extract_and_load(provider: SisProvider) -> None:
    run = sync_start(provider=provider, is_manual=True)
    assert sync_extract(run_id=run.pk)

    sync_cancel(provider=provider)
    result = sync_load(run_id=run.pk)

    assert result.status == RunStatus.CANCELLED
    assert Person.objects.count() == 0


def test_it_refuses_to_load_a_run_that_lost_the_fence(provider: SisProvider) -> None:
    run = sync_start(provider=provider, is_manual=True)
    assert sync_extract(run_id=run.pk)
    other = SisSyncRun.objects.create(provider=provider, status=RunStatus.FAILURE)
    SisProvider.objects.filter(pk=provider.pk).update(active_run=other)

    sync_load(run_id=run.pk)

    assert Person.objects.count() == 0


def test_it_reaps_a_silent_run_whose_lock_is_gone_but_not_a_live_one(
    provider: SisProvider, settings: Any
) -> None:
    old = timezone.now() - dt.timedelta(seconds=settings.SYNC_LOCK_TIMEOUT + 5)
    dead = SisSyncRun.objects.create(
        provider=provider, status=RunStatus.IN_PROGRESS, heartbeat_at=old
    )
    other = ProviderFactory(provider_type=ProviderType.CLEVER)
    alive = SisSyncRun.objects.create(
        provider=other, status=RunStatus.IN_PROGRESS, heartbeat_at=old
    )
    locks.acquire_for_run(provider_id=other.pk, run_id=alive.pk)

    assert runs_reap() == [dead.pk]

    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == RunStatus.FAILURE and "stopped responding" in dead.error_message
    assert alive.status == RunStatus.IN_PROGRESS


def test_it_waits_for_a_slot_instead_of_failing(provider: SisProvider, settings: Any) -> None:
    settings.MAX_CONCURRENT_SYNCS = 1
    locks.store().slot_acquire(locks.SLOTS_KEY, "run:elsewhere", 0.5, 1)
    run = sync_start(provider=provider, is_manual=True)

    with pytest.raises(sync.WaitForSlot):
        sync_extract(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING

    result = sync_run_inline(run_id=run.pk, slot_wait=10)
    assert result.status == RunStatus.SUCCESS
    assert Person.objects.count() == 12_000


def test_it_fails_a_run_interrupted_too_many_times(provider: SisProvider) -> None:
    run = sync_start(provider=provider, is_manual=True)
    assert sync_extract(run_id=run.pk)
    SisSyncRun.objects.filter(pk=run.pk).update(attempts=3)

    result = sync_load(run_id=run.pk)

    assert result.status == RunStatus.FAILURE
    assert "interrupted 3 times" in result.error_message
    assert Person.objects.count() == 0
