"""One extraction split across workers: a task per entity type, joined before the load.

A connector whose entity types can be read independently of each other (`separate_entities =
True`: the OneRoster REST connectors, one endpoint per type) lets `sync_extract(split=True)`
decide the mode and then plan one *part* per entity type instead of staging everything itself.
Each part opens its own extraction with the run's mode and the same sync state, stages its one
entity type, and marks itself done on the run row under the row's lock; the part that completes
the set hands the run to the load. Any worker takes any part, so two workers on two machines share
one big sync, and a part whose worker died is delivered again and starts its entity over.

The parts live in `run.progress["parts"]`: `{entity: {"rows", "done", "attempts", "worker"}}`,
which is also what the status shows while they run.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from connectors.base import ConnectorError
from connectors.registry import build_connector
from loader.entities import SPECS
from sis_sync import locks
from sis_sync.models import RunPhase, RunStatus, SisSyncRun
from sis_sync.providers import connector_config
from sis_sync.runs import MAX_ATTEMPTS, run_fail
from sis_sync.sync import (
    PROGRESS_INTERVAL,
    RunStopped,
    TryAgain,
    after_attempts,
    check_announced,
    is_selective,
    stopped,
    sync_state,
)
from staging.models import STAGING_MODELS
from staging.records import ENTITIES
from staging.writer import StagingWriter

log = logging.getLogger(__name__)


def plan_parts(run: SisSyncRun, entities: list[str]) -> None:
    run.progress = {
        "parts": {
            entity: {"rows": 0, "done": False, "attempts": 0, "worker": ""} for entity in entities
        }
    }
    SisSyncRun.objects.filter(pk=run.pk).update(progress=run.progress)


def pending_parts(run_id: int) -> list[str]:
    progress = SisSyncRun.objects.filter(pk=run_id).values_list("progress", flat=True).first()
    parts = (progress or {}).get("parts", {})
    return [entity for entity in ENTITIES if entity in parts and not parts[entity]["done"]]


def sync_extract_part(
    *, run_id: int, entity: str, worker: str = "", retry_transient: bool = False
) -> bool:
    """Stages one entity type of a split run. True when it was the last part: the load follows.

    With `retry_transient`, TryAgain on a transient source error before the part's last attempt
    (as sync_extract does for a whole extraction).
    """
    run = SisSyncRun.objects.select_related("provider").get(pk=run_id)
    attempt = _begin(run, entity, worker)
    if not attempt:
        return False
    provider = run.provider
    heartbeat = _PartHeartbeat(run, entity)
    try:
        # A part delivered again (its worker died) starts its entity type over.
        STAGING_MODELS[entity].objects.filter(run_id=run.pk).delete()
        run.rejects.filter(entity=SPECS[entity].label).delete()  # rejects say "user", …
        connector = build_connector(
            provider.provider_type, connector_config(provider), options=provider.options
        )
        with connector.extract(mode=run.mode, state=sync_state(provider)) as extraction:
            if extraction.mode != run.mode:
                raise ConnectorError(
                    f"The source answered a {extraction.mode} sync where this run had started "
                    f"a {run.mode} one; nothing was loaded: run the sync again",
                    permanent=False,
                )
            writer = StagingWriter(run_id=run.pk, provider_id=provider.pk, on_progress=heartbeat)
            writer.write(entity, extraction.records(entity))
            heartbeat.beat()
            check_announced(
                entity, extraction.received.get(entity), extraction.announced.get(entity)
            )
            state_after, notes = dict(extraction.state_after), list(extraction.notes)
    except RunStopped:
        stopped(run)
        return False
    except ConnectorError as exc:
        if retry_transient and not exc.permanent and attempt < MAX_ATTEMPTS:
            raise TryAgain(exc.message) from exc
        run_fail(run, exc.message + after_attempts(attempt, exc))
        return False
    except Exception as exc:
        log.exception("run %s: extraction of %s failed", run.pk, entity)
        run_fail(run, f"Extraction of {entity} failed: {type(exc).__name__}: {exc}")
        return False
    return _finish(run, entity, state_after, notes)


def _begin(run: SisSyncRun, entity: str, worker: str) -> int:
    """Counts an attempt at the part and returns its number; 0 if the run or the part is over."""
    with transaction.atomic():
        locked = SisSyncRun.objects.select_for_update().get(pk=run.pk)
        part = (locked.progress or {}).get("parts", {}).get(entity)
        if locked.status != RunStatus.IN_PROGRESS or part is None or part["done"]:
            return 0
        part["attempts"] += 1
        part["worker"] = worker
        locked.save(update_fields=["progress"])
    if part["attempts"] > MAX_ATTEMPTS:
        run_fail(
            run,
            f"Extracting {entity} was interrupted {MAX_ATTEMPTS} times (worker lost or timed "
            "out); nothing from this sync was applied",
        )
        return 0
    return part["attempts"]


def _finish(run: SisSyncRun, entity: str, state_after: dict[str, Any], notes: list[str]) -> bool:
    with transaction.atomic():
        locked = SisSyncRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.IN_PROGRESS:
            return False
        parts = locked.progress["parts"]
        parts[entity]["done"] = True
        if not is_selective(locked):  # a selective run keeps no cursor (see sync_extract)
            locked.state_after = {**(locked.state_after or {}), **state_after}
        locked.notes = [*locked.notes, *(note for note in notes if note not in locked.notes)]
        locked.save(update_fields=["progress", "state_after", "notes"])
        return all(part["done"] for part in parts.values())


class _PartHeartbeat:
    """The part's progress and liveness: its row count in the run's parts, at a bounded rate."""

    def __init__(self, run: SisSyncRun, entity: str) -> None:
        self.run = run
        self.entity = entity
        self.rows = 0
        self.last = 0.0

    def __call__(self, entity: str, rows: int) -> None:
        self.rows = rows
        if time.monotonic() - self.last >= PROGRESS_INTERVAL:
            self.beat()

    def beat(self) -> None:
        self.last = time.monotonic()
        with transaction.atomic():
            locked = SisSyncRun.objects.select_for_update().get(pk=self.run.pk)
            alive = locked.status == RunStatus.IN_PROGRESS
            if alive:
                locked.progress["parts"][self.entity]["rows"] = self.rows
                locked.heartbeat_at = timezone.now()
                locked.phase = RunPhase.STAGE
                locked.save(update_fields=["progress", "heartbeat_at", "phase"])
        held = locks.renew_for_run(provider_id=self.run.provider_id, run_id=self.run.pk)
        if not alive or not held:
            raise RunStopped
