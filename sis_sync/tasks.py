"""Celery tasks: thin faces of the pipeline's domain functions. They take run ids, nothing else.

A sync is a chain: `sync_extract_task` → (on success) `sync_load_task`, each step enqueued by
the previous one once its work is committed. An extraction split by entity type
(`SYNC_EXTRACT_SPLIT`, see sis_sync.extract_parts) fans out into one `sync_extract_part_task`
per type, on any worker; the part that finishes last enqueues the load.

`sync_task` fixes, once for all, the queue, time limits, late acknowledgement (a task whose
worker dies is delivered again; the attempt cap in PostgreSQL stops a poisoned run) and what
is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from sis_sync.errors import AlreadyRunning, BadRequest
from sis_sync.extract_parts import pending_parts, sync_extract_part
from sis_sync.logs import log_context
from sis_sync.models import SisProvider, SisSyncRun
from sis_sync.runs import runs_reap
from sis_sync.sync import TryAgain, WaitForSlot, sync_extract, sync_load, sync_start

log = logging.getLogger(__name__)


def sync_task(name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """The one decorator for SIS Sync tasks."""
    return shared_task(
        name=f"sis_sync.{name}",
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        soft_time_limit=settings.SYNC_TASK_SOFT_TIME_LIMIT,
        time_limit=settings.SYNC_TASK_TIME_LIMIT,
        ignore_result=True,
        **options,
    )


@sync_task("extract")
def sync_extract_task(self: Any, run_id: int) -> None:
    try:
        with log_context(run_id=run_id):
            proceed = sync_extract(
                run_id=run_id,
                split=settings.SYNC_EXTRACT_SPLIT,
                retry_transient=not self.request.is_eager,
            )
    except WaitForSlot:
        # Not a failure: the run waits its turn. Backoff grows to a few minutes.
        delay = min(300, 5 * 2 ** min(self.request.retries, 6))
        raise self.retry(countdown=delay, max_retries=None) from None
    except TryAgain as exc:
        # A timeout, a 5xx, a dropped connection: the same run tries again after a pause
        # (its attempt count ends it as a failure after MAX_ATTEMPTS). Workers only: in the
        # embedded mode (eager tasks) the run fails at once, as a command-line sync does.
        log.info("run %s: extraction will be retried: %s", run_id, exc.message)
        raise self.retry(countdown=settings.SYNC_RETRY_DELAY, max_retries=None) from None
    if not proceed:
        return
    parts = pending_parts(run_id)
    for entity in parts:
        _enqueue(sync_extract_part_task, run_id, entity)
    if not parts:
        _enqueue(sync_load_task, run_id)


@sync_task("extract_part")
def sync_extract_part_task(self: Any, run_id: int, entity: str) -> None:
    try:
        with log_context(run_id=run_id):
            last = sync_extract_part(
                run_id=run_id,
                entity=entity,
                worker=self.request.hostname or "",
                retry_transient=not self.request.is_eager,
            )
    except TryAgain as exc:
        log.info("run %s: extraction of %s will be retried: %s", run_id, entity, exc.message)
        raise self.retry(countdown=settings.SYNC_RETRY_DELAY, max_retries=None) from None
    if last:
        _enqueue(sync_load_task, run_id)


@sync_task("load")
def sync_load_task(self: Any, run_id: int) -> None:
    with log_context(run_id=run_id):
        sync_load(run_id=run_id)


@sync_task("scheduled_sync")
def scheduled_sync_task(self: Any, provider_id: int) -> None:
    """What a provider's PeriodicTask runs: a scheduled (not manual) full sync."""
    provider = SisProvider.objects.filter(pk=provider_id).first()
    if provider is None:
        return
    try:
        run = sync_start(provider=provider, is_manual=False, triggered_by="schedule")
    except (AlreadyRunning, BadRequest) as exc:
        log.info("scheduled sync of provider %s skipped: %s", provider_id, exc.message)
        return
    enqueue_run(run.pk)


@sync_task("reap_runs")
def reap_runs_task(self: Any) -> None:
    runs_reap()


def _enqueue(task: Any, run_id: int, *args: Any) -> None:
    def send() -> None:
        result = task.apply_async(args=[run_id, *args])
        SisSyncRun.objects.filter(pk=run_id).update(task_id=result.id or "")

    transaction.on_commit(send)


def enqueue_run(run_id: int) -> None:
    """Hands a PENDING run to the workers once the run row is committed."""
    _enqueue(sync_extract_task, run_id)


# Issue 11: the SCIM push. After a load, the tenant's outbox is pushed at once (backoff
# ignored: a new load is a good moment to try again); every minute the retry task pushes the
# tenants whose backed-off changes are due, and forgets old webhook events and pushed rows.


@sync_task("scim_push")
def scim_push_task(self: Any, tenant_id: int, force: bool = False) -> None:
    from sis_sync.scim.push import scim_push

    scim_push(tenant_id=tenant_id, force=force)


@sync_task("scim_retry")
def scim_retry_task(self: Any) -> None:
    from sis_sync.scim.outbox import scim_prune
    from sis_sync.scim.push import scim_tenants_due
    from sis_sync.webhooks.service import webhooks_forget_old

    scim_prune()
    webhooks_forget_old()
    for tenant_id in scim_tenants_due():
        scim_push_task.apply_async(args=[tenant_id])


def enqueue_scim_push(tenant_id: int, *, force: bool = True) -> None:
    """Hands the tenant's SCIM push to the workers (after the commit), if it has a target.

    In the embedded mode the push runs here; it never lets a failure escape (the changes stay
    in the outbox for the next try).
    """
    from sis_sync.models import ScimTarget

    if not ScimTarget.objects.filter(tenant_id=tenant_id).exists():
        return

    def send() -> None:
        try:
            scim_push_task.apply_async(args=[tenant_id], kwargs={"force": force})
        except Exception:
            log.exception("SCIM push of tenant %s could not be run or queued", tenant_id)

    transaction.on_commit(send)
