"""Seats (SPEC §6): every active student of a tenant with a `seat_limit` holds a seat, while
seats last.

`seats_allocate` runs inside each load's transaction, after the roster is applied, as a handful
of set-based statements over the tenant (no per-student Python): seats of students who left
are released, students who became active join the queue, and waiting students get the free
seats in a stable order — when they (last) became active, then person id, which within one
load is the source's order. A held seat is never taken back, not even when the limit is
lowered: seats then drain as students leave. A tenant without a limit has no seat rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone

from loader.db import db_now, execute, scalar
from sis_sync.models import SeatAssignment, SeatState, Tenant

SEATS = "sis_sync_seatassignment"
PEOPLE = "sis_sync_person"


def seats_allocate(*, tenant_id: int, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """Brings the tenant's seats in line with its active students; None without a seat limit.

    Returns the run's `seats` stats: seats `allocated` and `released` now, students `waiting`
    afterwards (plus `inUse` and `limit`). Call it inside the transaction that changed the roster.
    """
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    if tenant.seat_limit is None:
        return None
    at = db_now(now or timezone.now())
    gone = f"SELECT id FROM {PEOPLE} WHERE tenant_id = %s AND (NOT is_active OR role <> 'student')"
    here = f"SELECT id FROM {PEOPLE} WHERE tenant_id = %s AND is_active AND role = 'student'"
    released = execute(
        f"UPDATE {SEATS} SET state = 'released', released_at = %s "
        f"WHERE tenant_id = %s AND state = 'allocated' AND person_id IN ({gone})",
        [at, tenant_id, tenant_id],
    )
    # A waiting student who left leaves the queue.
    execute(
        f"UPDATE {SEATS} SET state = 'released', released_at = %s "
        f"WHERE tenant_id = %s AND state = 'waiting' AND person_id IN ({gone})",
        [at, tenant_id, tenant_id],
    )
    # A student who comes back queues again, at the back.
    execute(
        f"UPDATE {SEATS} SET state = 'waiting', queued_at = %s, allocated_at = NULL, "
        f"released_at = NULL WHERE tenant_id = %s AND state = 'released' "
        f"AND person_id IN ({here})",
        [at, tenant_id, tenant_id],
    )
    execute(
        f"INSERT INTO {SEATS} (tenant_id, person_id, state, queued_at) "
        f"SELECT %s, p.id, 'waiting', %s FROM {PEOPLE} p WHERE p.tenant_id = %s "
        f"AND p.is_active AND p.role = 'student' "
        f"AND NOT EXISTS (SELECT 1 FROM {SEATS} s WHERE s.person_id = p.id) ORDER BY p.id",
        [tenant_id, at, tenant_id],
    )
    in_use = scalar(
        f"SELECT count(*) FROM {SEATS} WHERE tenant_id = %s AND state = 'allocated'", [tenant_id]
    )
    free = max(0, tenant.seat_limit - in_use)
    allocated = 0
    if free:
        allocated = execute(
            f"UPDATE {SEATS} SET state = 'allocated', allocated_at = %s WHERE id IN ("
            f"SELECT id FROM {SEATS} WHERE tenant_id = %s AND state = 'waiting' "
            "ORDER BY queued_at, person_id LIMIT %s)",
            [at, tenant_id, free],
        )
    waiting = scalar(
        f"SELECT count(*) FROM {SEATS} WHERE tenant_id = %s AND state = 'waiting'", [tenant_id]
    )
    return {
        "allocated": allocated,
        "released": released,
        "waiting": waiting,
        "inUse": in_use + allocated,
        "limit": tenant.seat_limit,
    }


def seats_forget(*, tenant: Tenant) -> int:
    """Drops the tenant's seat rows (its limit was removed: every student has a seat)."""
    deleted, _ = SeatAssignment.objects.filter(tenant=tenant).delete()
    return deleted


def tenant_seats(*, tenant: Tenant) -> dict[str, Any]:
    """What `GET /api/v1/tenants/{tenantId}/seats` shows: the limit and the seats' states."""
    counts = dict(
        SeatAssignment.objects.filter(tenant=tenant)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    allocated = counts.get(SeatState.ALLOCATED, 0)
    limit = tenant.seat_limit
    return {
        "tenantId": tenant.pk,
        "seatLimit": limit,
        "allocated": allocated,
        "available": None if limit is None else max(0, limit - allocated),
        "waiting": counts.get(SeatState.WAITING, 0),
        "released": counts.get(SeatState.RELEASED, 0),
    }


def seat_assignments(*, tenant: Tenant, state: str | None = None) -> QuerySet[SeatAssignment]:
    """The tenant's seats, holders first, then the queue in the order seats will be given."""
    seats = SeatAssignment.objects.filter(tenant=tenant).select_related("person")
    if state:
        seats = seats.filter(state=state)
    return seats.order_by("state", "queued_at", "person_id")
