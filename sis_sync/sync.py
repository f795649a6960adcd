"""The sync pipeline's domain functions: start, extract+stage, load, approve, discard.

Every face (commands, API, admin, Celery tasks) calls these. A sync is
`sync_start` (a PENDING run) → `sync_extract` (records into staging) → `sync_load` (plan, then
apply in one transaction, or hold). `sync_run_inline` does both steps in this process.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import loader
from connectors.base import ConnectorError, EntityMode
from connectors.registry import build_connector
from loader.context import OptionsError
from sis_sync.errors import AlreadyRunning, BadRequest
from sis_sync.models import (
    PlannedDeactivation,
    RunMode,
    RunPhase,
    RunStatus,
    SisProvider,
    SisSyncRun,
)
from sis_sync.models.runs import ACTIVE_STATUSES
from sis_sync.providers import connector_config
from staging.records import ENTITIES
from staging.writer import StagingWriter, discard_run

log = logging.getLogger(__name__)

ProgressCallback = Callable[[SisSyncRun], None]


class RunStopped(Exception):
    """The run is no longer IN_PROGRESS (cancelled, or taken over): stop quietly."""


def sync_start(
    *,
    provider: SisProvider,
    is_manual: bool,
    triggered_by: str = "",
    mode: str = RunMode.FULL,
    dry_run: bool = False,
    entities: list[str] | None = None,
) -> SisSyncRun:
    """Creates the PENDING run of a sync; AlreadyRunning if the provider has an active one."""
    if not provider.enabled:
        raise BadRequest("Provider disabled")
    if mode not in RunMode.values:
        raise BadRequest(f"mode must be full or delta, not {mode!r}")
    unknown = set(entities or ()) - set(ENTITIES)
    if unknown:
        raise BadRequest(
            f"entities may hold {', '.join(ENTITIES)}; not {', '.join(sorted(unknown))}"
        )
    with transaction.atomic():
        SisProvider.objects.select_for_update().get(pk=provider.pk)
        _expire_stale_runs(provider)
        active = provider.runs.filter(status__in=ACTIVE_STATUSES).order_by("id").first()
        if active is not None:
            raise AlreadyRunning(active.pk)
        return SisSyncRun.objects.create(
            provider=provider,
            mode=mode,
            dry_run=dry_run,
            entities=list(entities or []),
            is_manual=is_manual,
            triggered_by=triggered_by,
        )


def _expire_stale_runs(provider: SisProvider) -> None:
    """A run whose process died stops blocking its provider after SYNC_LOCK_TIMEOUT."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.SYNC_LOCK_TIMEOUT)
    for run in provider.runs.filter(status__in=ACTIVE_STATUSES):
        last_sign = run.heartbeat_at or run.started_at or run.created_at
        if last_sign < cutoff:
            _finish(run, RunStatus.FAILURE, "The sync stopped responding and was abandoned")


def sync_run_inline(*, run_id: int, on_progress: ProgressCallback | None = None) -> SisSyncRun:
    if sync_extract(run_id=run_id, on_progress=on_progress):
        return sync_load(run_id=run_id, on_progress=on_progress)
    return SisSyncRun.objects.get(pk=run_id)


def sync_extract(*, run_id: int, on_progress: ProgressCallback | None = None) -> bool:
    """Pulls the source into staging. True when the load should follow."""
    run = SisSyncRun.objects.select_related("provider").get(pk=run_id)
    if run.status != RunStatus.PENDING:
        return False
    now = timezone.now()
    run.status, run.phase, run.started_at, run.heartbeat_at = (
        RunStatus.IN_PROGRESS,
        RunPhase.EXTRACT,
        now,
        now,
    )
    run.save(update_fields=["status", "phase", "started_at", "heartbeat_at"])
    _report(run, on_progress)
    try:
        _extract_into_staging(run, on_progress)
    except RunStopped:
        return False
    except ConnectorError as exc:
        _fail(run, exc.message)
        return False
    except Exception as exc:  # anything unforeseen still ends the run with a message
        log.exception("run %s: extraction failed", run.pk)
        _fail(run, f"Extraction failed: {type(exc).__name__}: {exc}")
        return False
    return True


def _extract_into_staging(run: SisSyncRun, on_progress: ProgressCallback | None) -> None:
    provider = run.provider
    connector = build_connector(
        provider.provider_type, connector_config(provider), options=provider.options
    )

    def progress(entity: str, rows: int) -> None:
        run.progress = {"entity": entity, "rows": rows}
        run.heartbeat_at = timezone.now()
        updated = SisSyncRun.objects.filter(pk=run.pk, status=RunStatus.IN_PROGRESS).update(
            progress=run.progress, heartbeat_at=run.heartbeat_at, phase=RunPhase.STAGE
        )
        if not updated:
            raise RunStopped
        run.phase = RunPhase.STAGE
        _report(run, on_progress)

    writer = StagingWriter(run_id=run.pk, provider_id=provider.pk, on_progress=progress)
    with connector.extract(mode=run.mode, state=_sync_state(provider)) as extraction:
        run.mode = extraction.mode
        modes = {
            entity: (
                extraction.modes[entity]
                if not run.entities or entity in run.entities
                else EntityMode.ABSENT
            )
            for entity in ENTITIES
        }
        run.entity_modes = {entity: str(mode) for entity, mode in modes.items()}
        run.notes = list(extraction.notes)
        run.save(update_fields=["entity_modes", "mode", "notes"])
        for entity in ENTITIES:
            if modes[entity] is not EntityMode.ABSENT:
                writer.write(entity, extraction.records(entity))
                _check_announced(
                    entity, extraction.received.get(entity), extraction.announced.get(entity)
                )
        run.state_after = dict(extraction.state_after)
        run.notes = list(extraction.notes)
        run.save(update_fields=["state_after", "notes"])


def _sync_state(provider: SisProvider) -> dict[str, Any]:
    """The provider's sync state, plus when its last applied syncs started."""
    state = dict(provider.sync_state)
    applied = provider.runs.filter(
        status__in=(RunStatus.SUCCESS, RunStatus.PARTIAL), dry_run=False, loaded_at__isnull=False
    ).order_by("-started_at")
    last = applied.first()
    last_full = applied.filter(mode=RunMode.FULL).first()
    if last is not None and last.started_at:
        state["lastSyncStartedAt"] = last.started_at.isoformat()
    if last_full is not None and last_full.started_at:
        state["lastFullSyncStartedAt"] = last_full.started_at.isoformat()
    return state


def _check_announced(entity: str, received: int | None, announced: int | None) -> None:
    """Pull integrity: a source that announced a total must have delivered it (SPEC §3)."""
    if announced is not None and (received or 0) < announced:
        staged = received or 0
        raise ConnectorError(
            f"The source announced {announced:,} {entity} but delivered {staged:,}; "
            "nothing was loaded",
            permanent=False,
        )


def _context(run: SisSyncRun) -> loader.LoadContext:
    provider = run.provider
    try:
        options = loader.LoadOptions.parse(provider.options)
    except OptionsError as exc:
        raise BadRequest(f"Provider options: {exc}") from None
    return loader.LoadContext(
        run_id=run.pk,
        provider_id=provider.pk,
        tenant_id=provider.tenant_id,
        modes=run.entity_modes,
        options=options,
        now=timezone.now(),
        check_thresholds=run.mode == RunMode.FULL,
    )


def sync_load(*, run_id: int, on_progress: ProgressCallback | None = None) -> SisSyncRun:
    """Plans the load and applies it in one transaction; or holds it; or, for a dry run, reports."""
    run = SisSyncRun.objects.select_related("provider").get(pk=run_id)
    if run.status != RunStatus.IN_PROGRESS:
        return run
    run.phase = RunPhase.PLAN
    run.save(update_fields=["phase"])
    superseded: list[SisSyncRun] = []
    _report(run, on_progress)
    try:
        with transaction.atomic():
            # Fencing: one load per provider at a time, and only by a run still in progress.
            SisProvider.objects.select_for_update().get(pk=run.provider_id)
            if not SisSyncRun.objects.filter(pk=run.pk, status=RunStatus.IN_PROGRESS).exists():
                raise RunStopped
            ctx = _context(run)
            plan = loader.plan(ctx)
            run.stats = plan.stats
            if run.dry_run:
                status = RunStatus.PARTIAL if plan.rejected else RunStatus.SUCCESS
                _finish(run, status, "", plan_reasons=plan.hold_reasons)
            elif plan.held:
                _hold(run, plan.hold_reasons)
            else:
                run.phase = RunPhase.LOAD
                _report(run, on_progress)
                loader.apply(ctx)
                run.loaded_at = timezone.now()
                _remember_state(run)
                _finish(run, RunStatus.PARTIAL if plan.rejected else RunStatus.SUCCESS, "")
                superseded = _supersede_held_runs(run)
    except RunStopped:
        return SisSyncRun.objects.get(pk=run.pk)
    except BadRequest as exc:
        _fail(run, exc.message)
    except Exception as exc:
        log.exception("run %s: load failed", run.pk)
        _fail(run, f"The load failed and nothing was changed: {type(exc).__name__}: {exc}")
    run.refresh_from_db()
    if run.status != RunStatus.HELD:
        _cleanup(run)
    for old in superseded:
        _cleanup(old)
    _report(run, on_progress)
    return run


def _supersede_held_runs(run: SisSyncRun) -> list[SisSyncRun]:
    """Older HELD plans of the provider can no longer be applied once a newer sync loaded."""
    held = list(
        SisSyncRun.objects.filter(provider_id=run.provider_id, status=RunStatus.HELD).exclude(
            pk=run.pk
        )
    )
    for old in held:
        old.status = RunStatus.DISCARDED
        old.error_message = f"Superseded: run {run.pk} loaded a newer roster. {old.error_message}"
        old.save(update_fields=["status", "error_message"])
    return held


def _remember_state(run: SisSyncRun) -> None:
    if run.state_after:
        provider = SisProvider.objects.get(pk=run.provider_id)
        provider.sync_state = {**provider.sync_state, **run.state_after}
        provider.save(update_fields=["sync_state"])


def _hold(run: SisSyncRun, reasons: list[str]) -> None:
    run.status = RunStatus.HELD
    run.phase = RunPhase.DONE
    run.planned_at = timezone.now()
    run.completed_at = run.planned_at
    run.hold_reason = "\n".join(reasons)
    run.error_message = "Held for review: " + "; ".join(reasons)
    run.stats = {**run.stats, "durationSeconds": _duration(run)}
    run.save()
    _provider_status(run)


def run_approve(*, run: SisSyncRun, decided_by: str) -> SisSyncRun:
    """Applies a HELD run's plan exactly as it was shown, if nothing newer has loaded since."""
    with transaction.atomic():
        SisProvider.objects.select_for_update().get(pk=run.provider_id)
        run = SisSyncRun.objects.select_related("provider").select_for_update().get(pk=run.pk)
        if run.status != RunStatus.HELD:
            raise BadRequest(f"Run {run.pk} is {run.status}, not HELD: only a held run is approved")
        newer = SisSyncRun.objects.filter(
            provider_id=run.provider_id, loaded_at__gt=run.planned_at
        ).exclude(pk=run.pk)
        if newer.exists():
            raise BadRequest(
                f"A newer sync (run {newer.first().pk}) has loaded since this plan was made; "
                "discard this one and run a new sync"
            )
        loader.apply(_context(run))
        _remember_state(run)
        rejected = sum(v.get("rejected", 0) for v in run.stats.values() if isinstance(v, dict))
        run.loaded_at = timezone.now()
        run.decided_by = decided_by
        run.error_message = ""
        _finish(run, RunStatus.PARTIAL if rejected else RunStatus.SUCCESS, "", keep_duration=True)
    _cleanup(run)
    return run


def run_discard(*, run: SisSyncRun, decided_by: str) -> SisSyncRun:
    with transaction.atomic():
        run = SisSyncRun.objects.select_for_update().get(pk=run.pk)
        if run.status != RunStatus.HELD:
            raise BadRequest(
                f"Run {run.pk} is {run.status}, not HELD: only a held run is discarded"
            )
        run.decided_by = decided_by
        _finish(run, RunStatus.DISCARDED, run.error_message, keep_duration=True)
    _cleanup(run)
    return run


def _fail(run: SisSyncRun, message: str) -> None:
    run.refresh_from_db()
    if run.status in (RunStatus.PENDING, RunStatus.IN_PROGRESS):
        _finish(run, RunStatus.FAILURE, message)
    _cleanup(run)


def _duration(run: SisSyncRun) -> float:
    start = run.started_at or run.created_at
    return round((timezone.now() - start).total_seconds(), 3)


def _finish(
    run: SisSyncRun,
    status: str,
    message: str,
    *,
    plan_reasons: list[str] | None = None,
    keep_duration: bool = False,
) -> None:
    run.status = status
    run.phase = RunPhase.DONE
    run.error_message = message
    if plan_reasons:
        run.hold_reason = "\n".join(plan_reasons)
    stats = run.stats or {}
    if not keep_duration or "durationSeconds" not in stats:
        stats = {**stats, "durationSeconds": _duration(run)}
    run.stats = stats
    run.completed_at = timezone.now()
    run.save()
    _provider_status(run)


def _provider_status(run: SisSyncRun) -> None:
    if run.dry_run:
        return
    SisProvider.objects.filter(pk=run.provider_id).update(
        last_sync_at=run.completed_at, last_status=run.status
    )


def _cleanup(run: SisSyncRun) -> None:
    discard_run(run.pk)
    PlannedDeactivation.objects.filter(run_id=run.pk).delete()


def _report(run: SisSyncRun, on_progress: ProgressCallback | None) -> None:
    if on_progress is not None:
        on_progress(run)
