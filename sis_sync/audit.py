"""The audit trail: who did what to which tenant's provider or run, when, and how it ended."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models

from sis_sync.models import AuditEvent, SisProvider, SisSyncRun, Tenant

log = logging.getLogger("sis_sync.audit")

SUCCESS, FAILURE, REFUSED = "success", "failure", "refused"


def audit_record(
    action: str,
    *,
    actor: str,
    target: models.Model | None = None,
    tenant: Tenant | int | None = None,
    outcome: str = SUCCESS,
    message: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Records one event. `target` (a provider, a run or a tenant) also gives the tenant."""
    tenant_id = tenant.pk if isinstance(tenant, Tenant) else tenant
    if tenant_id is None and target is not None:
        tenant_id = _tenant_of(target)
    event = AuditEvent.objects.create(
        actor=(actor or "system")[:150],
        tenant_id=tenant_id,
        action=action,
        target_type=type(target).__name__ if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        outcome=outcome,
        message=message,
        details=details or {},
    )
    log.info(
        "audit %s %s by %s: %s",
        action,
        event.target_id,
        event.actor,
        outcome,
        extra={"tenant_id": tenant_id},
    )
    return event


def _tenant_of(target: models.Model) -> int | None:
    if isinstance(target, Tenant):
        return target.pk
    if isinstance(target, SisProvider):
        return target.tenant_id
    if isinstance(target, SisSyncRun):
        return (
            SisProvider.objects.filter(pk=target.provider_id)
            .values_list("tenant_id", flat=True)
            .first()
        )
    return getattr(target, "tenant_id", None)
