"""The sync pipeline's domain functions: start, extract (+stage), load.

Every face (commands, API, admin, Celery tasks) calls these. A sync is
`sync_start` (a PENDING run) → `sync_extract` (records into staging) → `sync_load` (plan, then
apply in one transaction, or hold). `sync_run_inline` runs both steps in this process; the
Celery tasks (sis_sync.tasks) run them as a chain on the workers. Run state changes after the
load (approve, discard, cancel, reaping) live in sis_sync.runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

import loader
from connectors.base import ConnectorError, EntityMode
from connectors.registry import build_connector
from loader.context import OptionsError
from sis_sync import locks, metrics
from sis_sync.audit import REFUSED, audit_record
from sis_sync.errors import AlreadyRunning, BadRequest
from sis_sync.logs import log_context
from sis_sync.models import RunMode, RunPhase, RunStatus, SisProvider, SisSyncRun
from sis_sync.models.runs import ACTIVE_STATUSES
from sis_sync.providers import connector_config
from sis_sync.runs import (
    MAX_ATTEMPTS,
    count_attempt,
    release,
    run_fail,
    run_finish,
    run_hold,
    runs_reap,
    supersede_held_runs,
)
from staging.records import ENTITIES
from staging.writer import StagingWriter, discard_run

log = logging.getLogger(__name__)

ProgressCallback = Callable[[SisSyncRun], None]
PROGRESS_INTERVAL = 1.0  # seconds between progress writes (and lock renewals) to the database


class RunStopped(Exception):
    """The run is no longer ours to continue (cancelled, reaped, lock lost): stop, apply nothing."""


class TryAgain(Exception):  # noqa: N818 - a signal, not an error
    """A transient source error stopped the extraction: run it again after a pause.

    The run stays IN_PROGRESS and keeps its lock; the attempt cap ends it in the end.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WaitForSlot(Exception):  # noqa: N818 - a signal, not an error
    """MAX_CONCURRENT_SYNCS syncs are running: try again later; the run stays PENDING."""


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
    runs_reap()
    with transaction.atomic():
        SisProvider.objects.select_for_update().get(pk=provider.pk)
        active = provider.runs.filter(status__in=ACTIVE_STATUSES).order_by("id").first()
        if active is None:
            run = SisSyncRun.objects.create(
                provider=provider,
                mode=mode,
                dry_run=dry_run,
                entities=list(entities or []),
                is_manual=is_manual,
                triggered_by=triggered_by,
            )
            audit_record(
                "sync.started",
                actor=triggered_by or "scheduler",
                target=run,
                tenant=provider.tenant_id,
                details={"mode": mode, "dryRun": dry_run, "manual": is_manual},
            )
            return run
    audit_record(
        "sync.started",
        actor=triggered_by or "scheduler",
        target=provider,
        outcome=REFUSED,
        message=f"already running (run {active.pk})",
    )
    raise AlreadyRunning(active.pk)


def sync_upload(
    *, provider: SisProvider, source: Path, triggered_by: str = "", dry_run: bool = False
) -> SisSyncRun:
    """An uploaded bundle for an upload provider: checked, kept, and its sync started.

    The bundle is checked (size, zip-slip, symlinks, zip bombs) before it replaces the kept one;
    returns the PENDING run, handed to the workers (in-process in the embedded mode).
    """
    from sis_sync.providers import provider_store_bundle
    from sis_sync.tasks import enqueue_run

    if not provider.enabled:
        raise BadRequest("Provider disabled")
    with transaction.atomic():
        SisProvider.objects.select_for_update().get(pk=provider.pk)
        active = provider.runs.filter(status__in=ACTIVE_STATUSES).first()
        if active is not None:
            raise AlreadyRunning(active.pk)
        provider_store_bundle(provider=provider, source=source)
    run = sync_start(provider=provider, is_manual=True, triggered_by=triggered_by, dry_run=dry_run)
    enqueue_run(run.pk)
    return run


def sync_run_inline(
    *, run_id: int, on_progress: ProgressCallback | None = None, slot_wait: float = 3600.0
) -> SisSyncRun:
    """Runs a PENDING run's stages in this process, waiting for a slot if need be."""
    with log_context(run_id=run_id):
        return _run_inline(run_id, on_progress, slot_wait)


def _run_inline(run_id: int, on_progress: ProgressCallback | None, slot_wait: float) -> SisSyncRun:
    deadline = time.monotonic() + slot_wait
    delay = 0.5
    while True:
        try:
            proceed = sync_extract(run_id=run_id, on_progress=on_progress)
            break
        except WaitForSlot:
            if time.monotonic() > deadline:
                run = SisSyncRun.objects.get(pk=run_id)
                run_fail(run, "No sync slot became free in time (MAX_CONCURRENT_SYNCS)")
                return run
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
    if proceed:
        return sync_load(run_id=run_id, on_progress=on_progress)
    return SisSyncRun.objects.get(pk=run_id)


def _claim(run: SisSyncRun) -> None:
    """Takes the provider lock, a slot and the database fence for the run, or says why not."""
    why = locks.acquire_for_run(provider_id=run.provider_id, run_id=run.pk)
    if why == "no-slot":
        metrics.increment("sis_sync_slot_waits_total")
        SisSyncRun.objects.filter(pk=run.pk, status=RunStatus.PENDING).update(
            progress={"waiting": "for a free sync slot (MAX_CONCURRENT_SYNCS)"}
        )
        raise WaitForSlot
    if why is not None:
        owner = why.removeprefix("locked:").removeprefix("run:")
        raise AlreadyRunning(int(owner) if owner.isdigit() else 0)
    with transaction.atomic():
        provider = SisProvider.objects.select_for_update().get(pk=run.provider_id)
        if provider.active_run_id not in (None, run.pk):
            other = SisSyncRun.objects.get(pk=provider.active_run_id)
            if other.status in ACTIVE_STATUSES:
                locks.release_for_run(provider_id=run.provider_id, run_id=run.pk)
                raise AlreadyRunning(other.pk)
        provider.active_run_id = run.pk
        provider.save(update_fields=["active_run"])


def sync_extract(
    *,
    run_id: int,
    on_progress: ProgressCallback | None = None,
    split: bool = False,
    retry_transient: bool = False,
) -> bool:
    """Pulls the source into staging. True when the next step should follow: the load, or, with
    `split` and a connector whose entity types are read separately, the parts that
    `extract_parts.pending_parts` lists (one task each, on any worker; see extract_parts).

    WaitForSlot when no service-wide slot is free (the run stays PENDING: try again later).
    With `retry_transient`, TryAgain when the source failed in a way a later attempt may not
    (`ConnectorError(permanent=False)`: timeouts, 5xx, dropped connections), until the run's
    last attempt, which fails the run with the source's message.
    """
    run = SisSyncRun.objects.select_related("provider").get(pk=run_id)
    if run.status not in ACTIVE_STATUSES:
        return False
    try:
        _claim(run)
    except AlreadyRunning as exc:
        run_fail(run, exc.message)
        return False
    if not count_attempt(run):
        return False
    now = timezone.now()
    started = SisSyncRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(
        status=RunStatus.IN_PROGRESS,
        phase=RunPhase.EXTRACT,
        started_at=run.started_at or now,
        heartbeat_at=now,
        progress={},
    )
    if not started:
        release(run)
        return False
    run.refresh_from_db()
    _report(run, on_progress)
    try:
        # A retried extraction starts over: drop what an interrupted attempt staged.
        discard_run(run.pk)
        run.rejects.all().delete()
        _extract_into_staging(run, on_progress, split=split)
    except RunStopped:
        stopped(run)
        return False
    except ConnectorError as exc:
        if retry_transient and not exc.permanent and run.attempts < MAX_ATTEMPTS:
            discard_run(run.pk)
            SisSyncRun.objects.filter(pk=run.pk, status=RunStatus.IN_PROGRESS).update(
                progress={"retrying": exc.message, "attempt": run.attempts}
            )
            raise TryAgain(exc.message) from exc
        run_fail(run, exc.message + after_attempts(run.attempts, exc))
        return False
    except Exception as exc:  # anything unforeseen still ends the run with a message
        log.exception("run %s: extraction failed", run.pk)
        run_fail(run, f"Extraction failed: {type(exc).__name__}: {exc}")
        return False
    SisSyncRun.objects.filter(pk=run.pk).update(attempts=0)
    return True


def after_attempts(attempts: int, exc: ConnectorError) -> str:
    """What a transient failure's message adds once the run has tried more than once."""
    return f" (after {attempts} attempts)" if attempts > 1 and not exc.permanent else ""


def stopped(run: SisSyncRun) -> None:
    """The run was ended by someone else (cancel, reaper) mid-stage, or lost its claim on the
    provider: free what it held, and end it if nobody has."""
    run_fail(
        run,
        "The sync lost its claim on the provider (its lock was taken or expired) and stopped; "
        "nothing from it was applied",
    )
    release(run)
    log.info("run %s stopped: %s", run.pk, SisSyncRun.objects.get(pk=run.pk).status)


class _Heartbeat:
    """Writes progress at a bounded rate, renews the run's locks, notices a cancel."""

    def __init__(self, run: SisSyncRun, on_progress: ProgressCallback | None) -> None:
        self.run = run
        self.on_progress = on_progress
        self.last = 0.0

    def __call__(self, entity: str, rows: int) -> None:
        self.run.progress = {"entity": entity, "rows": rows}
        self.run.phase = RunPhase.STAGE
        if time.monotonic() - self.last < PROGRESS_INTERVAL:
            return
        self.beat()
        _report(self.run, self.on_progress)

    def beat(self) -> None:
        self.last = time.monotonic()
        self.run.heartbeat_at = timezone.now()
        alive = SisSyncRun.objects.filter(pk=self.run.pk, status=RunStatus.IN_PROGRESS).update(
            progress=self.run.progress, heartbeat_at=self.run.heartbeat_at, phase=self.run.phase
        )
        held = locks.renew_for_run(provider_id=self.run.provider_id, run_id=self.run.pk)
        if not alive or not held:
            raise RunStopped


def is_selective(run: SisSyncRun) -> bool:
    """A run asked for some entity types only."""
    return bool(run.entities) and not set(ENTITIES) <= set(run.entities)


def _extract_into_staging(
    run: SisSyncRun, on_progress: ProgressCallback | None, *, split: bool
) -> None:
    provider = run.provider
    connector = build_connector(
        provider.provider_type, connector_config(provider), options=provider.options
    )
    heartbeat = _Heartbeat(run, on_progress)
    writer = StagingWriter(run_id=run.pk, provider_id=provider.pk, on_progress=heartbeat)
    with connector.extract(mode=run.mode, state=sync_state(provider)) as extraction:
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
        wanted = [entity for entity in ENTITIES if modes[entity] is not EntityMode.ABSENT]
        if split and getattr(connector, "separate_entities", False) and len(wanted) > 1:
            from sis_sync.extract_parts import plan_parts

            plan_parts(run, wanted)
            return
        for entity in ENTITIES:
            if modes[entity] is not EntityMode.ABSENT:
                writer.write(entity, extraction.records(entity))
                heartbeat.beat()
                check_announced(
                    entity, extraction.received.get(entity), extraction.announced.get(entity)
                )
        # A cursor covers every entity type: a selective run must not move it past changes to
        # types it did not load.
        run.state_after = {} if is_selective(run) else dict(extraction.state_after)
        run.notes = list(extraction.notes)
        run.save(update_fields=["state_after", "notes"])


def sync_state(provider: SisProvider) -> dict[str, Any]:
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


def check_announced(entity: str, received: int | None, announced: int | None) -> None:
    """Pull integrity: a source that announced a total must have delivered it (SPEC §3)."""
    if announced is not None and (received or 0) < announced:
        raise ConnectorError(
            f"The source announced {announced:,} {entity} but delivered {received or 0:,}; "
            "nothing was loaded",
            permanent=False,
        )


def load_context(run: SisSyncRun) -> loader.LoadContext:
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


def _fence(run: SisSyncRun) -> None:
    """Inside the load transaction: the run must still own its provider and be in progress.

    Takes the provider's row lock (one load per provider at a time) and the run's row lock
    (a cancel or the reaper waits for this transaction, then finds the run already ended).
    """
    provider = SisProvider.objects.select_for_update().get(pk=run.provider_id)
    current = SisSyncRun.objects.select_for_update().filter(pk=run.pk).first()
    if (
        current is None
        or current.status != RunStatus.IN_PROGRESS
        or provider.active_run_id != run.pk
    ):
        raise RunStopped


def sync_load(*, run_id: int, on_progress: ProgressCallback | None = None) -> SisSyncRun:
    """Plans the load and applies it in one transaction; or holds it; or, for a dry run, reports."""
    run = SisSyncRun.objects.select_related("provider").get(pk=run_id)
    if run.status != RunStatus.IN_PROGRESS:
        return run
    if not count_attempt(run):
        return SisSyncRun.objects.get(pk=run.pk)
    SisSyncRun.objects.filter(pk=run.pk).update(phase=RunPhase.PLAN, heartbeat_at=timezone.now())
    run.phase = RunPhase.PLAN
    _report(run, on_progress)
    try:
        with transaction.atomic():
            _fence(run)
            ctx = load_context(run)
            plan = loader.plan(ctx)
            run.stats = plan.stats
            if run.dry_run:
                status = RunStatus.PARTIAL if plan.rejected else RunStatus.SUCCESS
                run_finish(run, status, "", extra={"hold_reason": "\n".join(plan.hold_reasons)})
            elif plan.held:
                run_hold(run, plan.hold_reasons)
            else:
                run.phase = RunPhase.LOAD
                _report(run, on_progress)
                loader.apply(ctx, plan.stats)
                short_of_seats = after_roster_applied(run, ctx.now)  # issue 11: seats, SCIM
                _fence(run)  # still ours right before commit
                remember_state(run)
                status = RunStatus.PARTIAL if plan.rejected or short_of_seats else RunStatus.SUCCESS
                run_finish(run, status, "", extra={"loaded_at": timezone.now()})
                supersede_held_runs(run)
                transaction.on_commit(partial(sync_after_applied, run_id=run.pk))
    except RunStopped:
        stopped(run)
    except BadRequest as exc:
        run_fail(run, exc.message)
    except Exception as exc:
        log.exception("run %s: load failed", run.pk)
        run.refresh_from_db()
        run_fail(run, f"The load failed and nothing was changed: {type(exc).__name__}: {exc}")
    run.refresh_from_db()
    _report(run, on_progress)
    return run


def sync_after_applied(*, run_id: int) -> None:
    """Once a run's load is committed: the connector's follow-up (e.g. archive the bundle).

    The load stands whatever happens here; a problem becomes a note on the run.
    """
    run = SisSyncRun.objects.select_related("provider").get(pk=run_id)
    provider = run.provider
    try:
        connector = build_connector(
            provider.provider_type, connector_config(provider), options=provider.options
        )
        follow_up = getattr(connector, "on_applied", None)
        notes = follow_up(state_after=run.state_after or {}) if follow_up else None
    except ConnectorError as exc:
        notes = [f"The load stands, but: {exc.message}"]
    except Exception:
        log.exception("run %s: follow-up after the load failed", run_id)
        notes = ["The load stands, but its follow-up failed (see the logs)"]
    if notes:
        SisSyncRun.objects.filter(pk=run_id).update(notes=[*run.notes, *notes])
    # Issue 11: the load's roster changes go to the tenant's SCIM server (if it has one).
    from sis_sync.tasks import enqueue_scim_push

    enqueue_scim_push(provider.tenant_id)


def after_roster_applied(run: SisSyncRun, loaded_at: dt.datetime) -> bool:
    """Issue 11, inside the load transaction right after `loader.apply`: the tenant's seats
    (stats `seats`) and the SCIM outbox rows of what the run changed. True when students are
    left waiting for a seat (the run then ends PARTIAL)."""
    from sis_sync.scim.outbox import scim_queue_run_changes
    from sis_sync.seats import seats_allocate

    tenant_id = run.provider.tenant_id
    scim_queue_run_changes(run=run, tenant_id=tenant_id, loaded_at=loaded_at)
    seats = seats_allocate(tenant_id=tenant_id, run_id=run.pk)
    if seats is None:
        return False
    run.stats = {**(run.stats or {}), "seats": seats}
    return seats["waiting"] > 0


def remember_state(run: SisSyncRun) -> None:
    if run.state_after:
        provider = SisProvider.objects.get(pk=run.provider_id)
        provider.sync_state = {**provider.sync_state, **run.state_after}
        provider.save(update_fields=["sync_state"])


def _report(run: SisSyncRun, on_progress: ProgressCallback | None) -> None:
    if on_progress is not None:
        on_progress(run)
