"""Provider actions: create, update, keep an uploaded bundle."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from connectors.base import ConnectorError
from connectors.oneroster_csv.upload import check_upload
from sis_sync.audit import audit_record
from sis_sync.errors import BadRequest
from sis_sync.models import ProviderType, SisProvider, Tenant
from sis_sync.provider_config import merged, validate_config, validate_options
from sis_sync.schedules import normalize_schedule
from sis_sync.scheduling import schedule_sync

UPLOAD_PROVIDER_NAME = "CSV import"


def provider_create(
    *,
    tenant: Tenant,
    provider_type: str,
    name: str,
    config: dict[str, Any],
    options: dict[str, Any] | None = None,
    sync_schedule: str | None = None,
    enabled: bool = True,
    actor: str = "system",
) -> SisProvider:
    if not name or not name.strip():
        raise BadRequest("name is required")
    provider = SisProvider(
        tenant=tenant,
        provider_type=provider_type,
        name=name.strip(),
        options=validate_options(options or {}),
        sync_schedule=normalize_schedule(sync_schedule),
        enabled=enabled,
    )
    provider.set_config(validate_config(provider_type, config))
    try:
        with transaction.atomic():
            provider.save()
            schedule_sync(provider)
            audit_record("provider.created", actor=actor, target=provider)
    except IntegrityError:
        raise BadRequest(f"{tenant.slug} already has a provider named {name!r}") from None
    return provider


def provider_update(
    *,
    provider: SisProvider,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    sync_schedule: str | None | object = ...,
    enabled: bool | None = None,
    actor: str = "system",
) -> SisProvider:
    changed = [
        field
        for field, value in (
            ("name", name),
            ("config", config),
            ("options", options),
            ("enabled", enabled),
        )
        if value is not None
    ] + (["syncSchedule"] if sync_schedule is not ... else [])
    if name is not None:
        provider.name = name.strip()
    if config is not None:
        provider.set_config(
            validate_config(provider.provider_type, merged(provider.config, config))
        )
    if options is not None:
        provider.options = validate_options(options)
    if sync_schedule is not ...:
        provider.sync_schedule = normalize_schedule(sync_schedule)  # type: ignore[arg-type]
    if enabled is not None:
        provider.enabled = enabled
    with transaction.atomic():
        provider.save()
        schedule_sync(provider)
        # Field names only: a config change may carry a secret, its value is never recorded.
        audit_record("provider.updated", actor=actor, target=provider, details={"changed": changed})
    return provider


def provider_disable(*, provider: SisProvider, actor: str = "system") -> SisProvider:
    """What deleting a provider does: it stops syncing; its runs and roster links stay."""
    provider.enabled = False
    with transaction.atomic():
        provider.save(update_fields=["enabled", "updated_at"])
        schedule_sync(provider)
        audit_record("provider.disabled", actor=actor, target=provider)
    return provider


def upload_provider_get_or_create(*, tenant: Tenant) -> SisProvider:
    """The tenant's upload provider ("CSV import": ONEROSTER_CSV without SFTP)."""
    existing = SisProvider.objects.filter(tenant=tenant, name=UPLOAD_PROVIDER_NAME).first()
    if existing is not None:
        return existing
    return provider_create(
        tenant=tenant,
        provider_type=ProviderType.ONEROSTER_CSV,
        name=UPLOAD_PROVIDER_NAME,
        config={},
    )


def provider_store_bundle(*, provider: SisProvider, source: Path) -> Path:
    """Keeps a copy of an uploaded bundle (folder or .zip) as the provider's last bundle."""
    if provider.provider_type != ProviderType.ONEROSTER_CSV or provider.config.get("sftp"):
        raise BadRequest("Only an ONEROSTER_CSV provider without SFTP takes uploaded bundles")
    if not source.exists():
        raise BadRequest(f"No such file or folder: {source}")
    if source.is_file():
        try:
            check_upload(source)  # size, zip-slip, symlinks, zip bombs, not a zip
        except ConnectorError as exc:
            raise BadRequest(exc.message) from None
    home = Path(settings.SIS_SYNC_DATA_DIR) / "bundles" / str(provider.pk)
    fresh = home.with_name(f"{provider.pk}.new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    if source.is_dir():
        target = fresh / "bundle"
        shutil.copytree(source, target)
    else:
        target = fresh / "bundle.zip"
        shutil.copyfile(source, target)
    shutil.rmtree(home, ignore_errors=True)
    fresh.rename(home)
    provider.bundle_path = str(home / target.name)
    provider.save(update_fields=["bundle_path", "updated_at"])
    return Path(provider.bundle_path)


def connector_config(provider: SisProvider) -> dict[str, Any]:
    """The config a connector is built from: the stored one, plus the kept bundle if any."""
    config = provider.config
    if provider.bundle_path:
        config["bundlePath"] = provider.bundle_path
    return config
