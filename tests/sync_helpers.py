"""Running CSV syncs in tests the way the import command does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sis_sync.models import Enrollment, EntityType, ExternalIdentity, SisSyncRun
from sis_sync.providers import provider_store_bundle, upload_provider_get_or_create
from sis_sync.sync import sync_run_inline, sync_start
from sis_sync.tenants import tenant_get_or_create


def sync(
    bundle: Path,
    *,
    tenant: str = "lakeview",
    mode: str = "full",
    dry_run: bool = False,
    entities: list[str] | None = None,
    options: dict[str, Any] | None = None,
) -> SisSyncRun:
    provider = upload_provider_get_or_create(tenant=tenant_get_or_create(slug=tenant))
    if options is not None:
        provider.options = options
        provider.save()
    provider_store_bundle(provider=provider, source=bundle)
    run = sync_start(
        provider=provider, is_manual=True, mode=mode, dry_run=dry_run, entities=entities
    )
    return sync_run_inline(run_id=run.pk)


def counts(run: SisSyncRun, entity: str) -> dict[str, int]:
    return run.stats[entity]


def changes(run: SisSyncRun) -> int:
    """Everything a run changed (every count but unchanged and rejected)."""
    return sum(
        value
        for entity, stats in run.stats.items()
        if isinstance(stats, dict)
        for key, value in stats.items()
        if key not in ("unchanged", "rejected")
    )


def entity_of(run: SisSyncRun, entity_type: str, external_id: str) -> int:
    if entity_type == EntityType.ENROLLMENT:  # an enrollment keeps its identity itself
        return Enrollment.objects.get(provider_id=run.provider_id, external_id=external_id).pk
    return ExternalIdentity.objects.get(
        provider_id=run.provider_id, entity_type=entity_type, external_id=external_id
    ).entity_id


USER = EntityType.USER
