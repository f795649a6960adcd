"""Run state changes: finish, hold, approve, discard, cancel, and reaping runs whose worker died.

A run ends exactly once: every terminal transition is a conditional UPDATE from an active
status, so a cancel racing a commit, or the reaper racing a slow worker, cannot overwrite a
run that already finished.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sis_sync import locks, metrics
from sis_sync.audit import audit_record
from sis_sync.errors import SyncError
from sis_sync.models import PlannedDeactivation, RunPhase, RunStatus, SisProvider, SisSyncRun
from sis_sync.models.runs import ACTIVE_STATUSES
from staging.writer import discard_run

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


def duration(run: SisSyncRun) -> float:
    start = run.started_at or run.created_at
    return round((timezone.now() - start).total_seconds(), 3)


def run_finish(
    run: SisSyncRun,
    status: str,
    message: str,
    *,
    keep_duration: bool = False,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Ends an active (or HELD) run; False if it had already ended some other way."""
    # A message may quote the source (a header, a value): PostgreSQL text cannot hold NUL.
    message = message.replace("\x00", "")
    stats = dict(run.stats or {})
    if not keep_duration or "durationSeconds" not in stats:
        stats["durationSeconds"] = duration(run)
    now = timezone.now()
    fields = {
        "status": status,
        "phase": RunPhase.DONE,
        "error_message": message,
        "stats": stats,
        "completed_at": now,
        **(extra or {}),
    }
    changed = SisSyncRun.objects.filter(
        pk=run.pk, status__in=(*ACTIVE_STATUSES, RunStatus.HELD)
    ).update(**fields)
    if not changed:
        return False
    for name, value in fields.items():
        setattr(run, name, value)
    if not run.dry_run:
        SisProvider.objects.filter(pk=run.provider_id).update(last_sync_at=now, last_status=status)
    log.info("run ended: %s", status, extra={"run_id": run.pk, "provider_id": run.provider_id})
    audit_record(
        "sync.finished",
        actor="system",
        target=run,
        outcome=status.lower(),
        message=message[:2000],
    )
    if status != RunStatus.HELD:
        provider_type = (
            SisProvider.objects.filter(pk=run.provider_id)
            .values_list("provider_type", flat=True)
            .first()
        )
        metrics.record_run_end(run, provider_type or "")
        release(run)
        # Issue 11: webhook events that arrived while this run was reading get one follow-up.
        from sis_sync.webhooks.service import webhooks_deferred, webhooks_follow_up

        if webhooks_deferred(provider_id=run.provider_id):
            transaction.on_commit(partial(webhooks_follow_up, provider_id=run.provider_id))
    return True


def release_claim(run: SisSyncRun) -> None:
    """Frees the run's claim on its provider: its lock, its slot, the fence."""
    locks.release_for_run(provider_id=run.provider_id, run_id=run.pk)
    SisProvider.objects.filter(pk=run.provider_id, active_run_id=run.pk).update(active_run=None)


def release(run: SisSyncRun) -> None:
    """Frees everything a run holds: its claim on the provider and its staging rows."""
    release_claim(run)
    discard_run(run.pk)
    PlannedDeactivation.objects.filter(run_id=run.pk).delete()


def run_hold(run: SisSyncRun, reasons: list[str]) -> None:
    run_finish(
        run,
        RunStatus.HELD,
        "Held for review: " + "; ".join(reasons),
        extra={"hold_reason": "\n".join(reasons), "planned_at": timezone.now()},
    )
    release_claim(run)  # the plan stays in staging for approval; the claim does not


def run_fail(run: SisSyncRun, message: str) -> None:
    run_finish(run, RunStatus.FAILURE, message)


def run_approve(*, run: SisSyncRun, decided_by: str) -> SisSyncRun:
    """Applies a HELD run's plan exactly as it was shown, if nothing newer has loaded since."""
    import loader
    from sis_sync.sync import after_roster_applied, load_context, remember_state, sync_after_applied

    with transaction.atomic():
        SisProvider.objects.select_for_update().get(pk=run.provider_id)
        run = SisSyncRun.objects.select_related("provider").select_for_update().get(pk=run.pk)
        if run.status != RunStatus.HELD:
            raise SyncError(f"Run {run.pk} is {run.status}, not HELD: only a held run is approved")
        newer = SisSyncRun.objects.filter(
            provider_id=run.provider_id, loaded_at__gt=run.planned_at
        ).exclude(pk=run.pk)
        if newer.exists():
            raise SyncError(
                f"A newer sync (run {newer.first().pk}) has loaded since this plan was made; "
                "discard this one and run a new sync"
            )
        ctx = load_context(run)
        loader.apply(ctx, run.stats)
        short_of_seats = after_roster_applied(run, ctx.now)  # issue 11: seats, SCIM outbox
        remember_state(run)
        transaction.on_commit(partial(sync_after_applied, run_id=run.pk))
        audit_record("run.approved", actor=decided_by, target=run)
        rejected = sum(v.get("rejected", 0) for v in run.stats.values() if isinstance(v, dict))
        run_finish(
            run,
            RunStatus.PARTIAL if rejected or short_of_seats else RunStatus.SUCCESS,
            "",
            keep_duration=True,
            extra={"loaded_at": timezone.now(), "decided_by": decided_by},
        )
    release(run)
    return run


def run_discard(*, run: SisSyncRun, decided_by: str) -> SisSyncRun:
    run.refresh_from_db()
    if run.status != RunStatus.HELD or not run_finish(
        run,
        RunStatus.DISCARDED,
        run.error_message,
        keep_duration=True,
        extra={"decided_by": decided_by},
    ):
        raise SyncError(f"Run {run.pk} is {run.status}, not HELD: only a held run is discarded")
    audit_record("run.discarded", actor=decided_by, target=run)
    return run


def supersede_held_runs(run: SisSyncRun) -> None:
    """Older HELD plans of the provider can no longer be applied once a newer sync loaded."""
    held = SisSyncRun.objects.filter(provider_id=run.provider_id, status=RunStatus.HELD).exclude(
        pk=run.pk
    )
    for old in held:
        run_finish(
            old,
            RunStatus.DISCARDED,
            f"Superseded: run {run.pk} loaded a newer roster. {old.error_message}",
            keep_duration=True,
        )


def sync_cancel(*, provider: SisProvider, cancelled_by: str = "") -> SisSyncRun:
    """Cancels the provider's active run. Stages stop at their next check; nothing is applied."""
    run = provider.runs.filter(status__in=ACTIVE_STATUSES).order_by("-id").first()
    if run is None:
        raise SyncError("No sync of this provider is running")
    message = f"Cancelled by {cancelled_by}" if cancelled_by else "Cancelled"
    if not run_finish(run, RunStatus.CANCELLED, message):
        run.refresh_from_db()
        raise SyncError(f"Run {run.pk} already ended ({run.status})")
    audit_record("sync.cancelled", actor=cancelled_by or "system", target=run)
    if run.task_id:
        from config.celery import app

        app.control.revoke(run.task_id)
    return run


def runs_reap() -> list[int]:
    """Ends runs whose worker died: active, silent for SYNC_LOCK_TIMEOUT, their lock gone."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.SYNC_LOCK_TIMEOUT)
    reaped = []
    for run in SisSyncRun.objects.filter(status__in=ACTIVE_STATUSES):
        last_sign = run.heartbeat_at or run.started_at or run.created_at
        if last_sign >= cutoff:
            continue
        if locks.store().lock_owner(locks.provider_key(run.provider_id)) == locks.run_token(run.pk):
            continue  # still renewed by someone: alive
        if run_finish(
            run,
            RunStatus.FAILURE,
            "The sync stopped responding (its worker died or lost contact) and was ended; "
            "nothing from it was applied",
        ):
            log.warning("run %s of provider %s reaped", run.pk, run.provider_id)
            reaped.append(run.pk)
    return reaped


def count_attempt(run: SisSyncRun) -> bool:
    """Counts one more attempt at a stage; False (and the run failed) past MAX_ATTEMPTS.

    With acks_late a task whose worker died is delivered again; the count lives in PostgreSQL
    so a poisoned run cannot loop forever.
    """
    run.attempts += 1
    SisSyncRun.objects.filter(pk=run.pk).update(attempts=run.attempts)
    if run.attempts > MAX_ATTEMPTS:
        run_fail(
            run,
            f"The sync was interrupted {MAX_ATTEMPTS} times (worker lost or timed out); "
            "nothing from it was applied",
        )
        return False
    return True
