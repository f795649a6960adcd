"""Manual syncs as the API (and admin) start them: one provider's, or all of a tenant's.

`sync_trigger` starts one provider's sync and hands it to the workers (in-process in the
embedded mode). The tenant-wide actions (SPEC §5, seed 003) apply the provider-level functions
to every provider of the tenant, so the audit rows, locks and checks are exactly those of a
single provider's sync.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sis_sync.errors import AlreadyRunning, BadRequest, SyncError
from sis_sync.models import ProviderType, SisProvider, SisSyncRun, Tenant
from sis_sync.models.runs import ACTIVE_STATUSES
from sis_sync.runs import sync_cancel
from sis_sync.selectors import SyncStatus, provider_sync_status
from sis_sync.sync import sync_start


class Skipped(NamedTuple):
    provider: SisProvider
    reason: str
    run_id: int | None


class TenantSync(NamedTuple):
    runs: list[SisSyncRun]
    skipped: list[Skipped]


class ProviderStatus(NamedTuple):
    provider: SisProvider
    current: SisSyncRun | None
    last_sync_at: dt.datetime | None
    last_status: str


class TenantSyncStatus(NamedTuple):
    is_running: bool
    last_sync_at: dt.datetime | None
    last_status: str
    current_runs: list[SisSyncRun]
    providers: list[ProviderStatus]


def sync_trigger(
    *,
    provider: SisProvider,
    triggered_by: str,
    mode: str = "full",
    dry_run: bool = False,
    entities: list[str] | None = None,
) -> SisSyncRun:
    """Starts a manual sync and enqueues it; the run as it is once handed over."""
    from sis_sync.tasks import enqueue_run

    run = sync_start(
        provider=provider,
        is_manual=True,
        triggered_by=triggered_by,
        mode=mode,
        dry_run=dry_run,
        entities=entities,
    )
    enqueue_run(run.pk)
    run.refresh_from_db()
    return run


def _waiting_for_upload(provider: SisProvider) -> bool:
    return (
        provider.provider_type == ProviderType.ONEROSTER_CSV
        and not provider.bundle_path
        and not provider.config.get("sftp")
    )


def tenant_sync_start(
    *,
    tenant: Tenant,
    triggered_by: str,
    mode: str = "full",
    dry_run: bool = False,
    entities: list[str] | None = None,
) -> TenantSync:
    """Starts a manual sync of each enabled provider of the tenant and hands it to the workers.

    Providers already syncing, or upload providers that have no bundle yet, are skipped and
    said so. Raises AlreadyRunning when every provider was skipped because it is running, and
    BadRequest when nothing at all could start.
    """
    providers = list(tenant.providers.filter(enabled=True).order_by("id"))
    if not providers:
        raise BadRequest(f"Tenant {tenant.slug} has no enabled provider")
    runs: list[SisSyncRun] = []
    skipped: list[Skipped] = []
    for provider in providers:
        if _waiting_for_upload(provider):
            skipped.append(Skipped(provider, "No bundle has been uploaded yet", None))
            continue
        try:
            run = sync_trigger(
                provider=provider,
                triggered_by=triggered_by,
                mode=mode,
                dry_run=dry_run,
                entities=entities,
            )
        except AlreadyRunning as exc:
            skipped.append(Skipped(provider, exc.message, exc.run_id))
            continue
        runs.append(run)
    if not runs:
        running = [s.run_id for s in skipped if s.run_id is not None]
        if running:
            raise AlreadyRunning(running[0])
        raise BadRequest("; ".join(f"{s.provider.name}: {s.reason}" for s in skipped))
    return TenantSync(runs, skipped)


def tenant_sync_stop(*, tenant: Tenant, cancelled_by: str) -> list[SisSyncRun]:
    """Cancels every running sync of the tenant; SyncError when none is running."""
    running = (
        SisSyncRun.objects.filter(provider__tenant=tenant, status__in=ACTIVE_STATUSES)
        .values_list("provider_id", flat=True)
        .distinct()
    )
    cancelled = []
    for provider in SisProvider.objects.filter(pk__in=list(running)).order_by("id"):
        try:
            cancelled.append(sync_cancel(provider=provider, cancelled_by=cancelled_by))
        except SyncError:
            continue  # it ended on its own meanwhile
    if not cancelled:
        raise SyncError(f"No sync of tenant {tenant.slug} is running")
    return cancelled


def tenant_sync_status(*, tenant: Tenant) -> TenantSyncStatus:
    statuses = []
    for provider in tenant.providers.order_by("id"):
        status: SyncStatus = provider_sync_status(provider=provider)
        statuses.append(ProviderStatus(provider, *status))
    finished = [s for s in statuses if s.last_sync_at is not None]
    latest = max(finished, key=lambda s: s.last_sync_at) if finished else None
    current = [s.current for s in statuses if s.current is not None]
    return TenantSyncStatus(
        is_running=bool(current),
        last_sync_at=latest.last_sync_at if latest else None,
        last_status=latest.last_status if latest else "",
        current_runs=current,
        providers=statuses,
    )
