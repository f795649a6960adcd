"""The SCIM outbox: which of a tenant's people and classes must be pushed.

A row names an entity, not a payload: the push sends the entity as it is when the push
happens, so a retry, or several rows for one entity, always converge on the latest state.
Rows are written set-based from the run's plan, inside the load's transaction: if the load
rolls back, so do they; if it commits, nothing can lose them.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count
from django.utils import timezone

from loader.db import db_now, execute
from sis_sync.models import ScimChange, ScimChangeStatus, ScimTarget, SisSyncRun

OUTBOX = "sis_sync_scimchange"
CHANGED = "('create', 'update', 'reactivate')"
DONE_KEPT_FOR = dt.timedelta(days=30)


def _entities_changed_by(
    run: SisSyncRun, tenant_id: int, loaded_at: dt.datetime
) -> tuple[str, list[object]]:
    """SELECT resource, entity_id of every person and class the run's plan changed.

    A class is also pushed when its membership changed (an enrollment created, changed or
    deactivated, which includes those of deactivated people and classes). The loader leaves
    the staging rows of new enrollments as they were (see `loader.applier`): they are this
    provider's enrollments created at this load's time (one load per provider at a time, each
    with its own time), looked for only when the plan created some (no index serves that scan
    of the provider's enrollments).
    """
    run_id = run.pk
    created = (run.stats or {}).get("enrollments", {}).get("created", 0)
    new_enrollments, new_params = (
        (
            "UNION SELECT 'group', classroom_id FROM sis_sync_enrollment "
            "WHERE provider_id = %s AND tenant_id = %s AND created_at = %s ",
            [run.provider_id, tenant_id, db_now(loaded_at)],
        )
        if created
        else ("", [])
    )
    sql = (
        "SELECT 'user' AS resource, entity_id FROM sis_raw_users "
        f"WHERE run_id = %s AND action IN {CHANGED} AND entity_id IS NOT NULL "
        "UNION SELECT 'user', entity_id FROM sis_planned_deactivations "
        "WHERE run_id = %s AND entity_type = 'user' "
        "UNION SELECT 'group', entity_id FROM sis_raw_classes "
        f"WHERE run_id = %s AND action IN {CHANGED} AND entity_id IS NOT NULL "
        "UNION SELECT 'group', entity_id FROM sis_planned_deactivations "
        "WHERE run_id = %s AND entity_type = 'class' "
        "UNION SELECT 'group', e.classroom_id FROM sis_raw_enrollments st "
        "JOIN sis_sync_enrollment e ON e.id = st.entity_id "
        f"WHERE st.run_id = %s AND st.action IN {CHANGED} "
        f"{new_enrollments}"
        "UNION SELECT 'group', e.classroom_id FROM sis_planned_deactivations d "
        "JOIN sis_sync_enrollment e ON e.id = d.entity_id "
        "WHERE d.run_id = %s AND d.entity_type = 'enrollment'"
    )
    return sql, [run_id] * 5 + new_params + [run_id]


def scim_queue_run_changes(*, run: SisSyncRun, tenant_id: int, loaded_at: dt.datetime) -> int:
    """Queues what the run's applied plan changed, if the tenant pushes to SCIM; the count.

    Call it inside the load's transaction, after `loader.apply`, while the run's staging rows
    and planned deactivations still exist; `loaded_at` is the load's time (`LoadContext.now`).
    """
    if not ScimTarget.objects.filter(tenant_id=tenant_id).exists():
        return 0
    now = db_now(timezone.now())
    select, params = _entities_changed_by(run, tenant_id, loaded_at)
    return execute(
        f"INSERT INTO {OUTBOX} (tenant_id, run_id, resource, entity_id, status, attempts, "
        "next_attempt_at, last_error, created_at) "
        f"SELECT %s, %s, c.resource, c.entity_id, 'pending', 0, %s, '', %s FROM ({select}) c",
        [tenant_id, run.pk, now, now, *params],
    )


def scim_queue_everything(*, tenant_id: int) -> int:
    """Queues every person and class of the tenant (a full reconcile); the count."""
    now = db_now(timezone.now())
    return execute(
        f"INSERT INTO {OUTBOX} (tenant_id, resource, entity_id, status, attempts, "
        "next_attempt_at, last_error, created_at) "
        "SELECT %s, 'user', id, 'pending', 0, %s, '', %s FROM sis_sync_person "
        "WHERE tenant_id = %s "
        "UNION ALL SELECT %s, 'group', id, 'pending', 0, %s, '', %s "
        "FROM sis_sync_classroom WHERE tenant_id = %s",
        [tenant_id, now, now, tenant_id, tenant_id, now, now, tenant_id],
    )


def scim_run_summary(*, run_id: int) -> dict[str, int] | None:
    """How the run's SCIM push went: `queued`, `pushed`, `pending`, `failed`; None if none."""
    counts = {"queued": 0, "pushed": 0, "pending": 0, "failed": 0}
    named = {
        ScimChangeStatus.DONE: "pushed",
        ScimChangeStatus.PENDING: "pending",
        ScimChangeStatus.FAILED: "failed",
    }
    per_status = ScimChange.objects.filter(run_id=run_id).values("status").annotate(n=Count("id"))
    for row in per_status:
        counts["queued"] += row["n"]
        counts[named[row["status"]]] += row["n"]
    return counts if counts["queued"] else None


def scim_prune(*, now: dt.datetime | None = None) -> int:
    """Forgets pushed rows older than 30 days (pending and failed ones are never dropped)."""
    cutoff = (now or timezone.now()) - DONE_KEPT_FOR
    deleted, _ = ScimChange.objects.filter(
        status=ScimChangeStatus.DONE, done_at__lt=cutoff
    ).delete()
    return deleted
