"""Seats (SPEC §6): every active student of a tenant with a `seat_limit` holds a seat, while
seats last.

`seats_allocate` runs inside each load's transaction, after the roster is applied, as a handful
of set-based statements (no per-student Python) over the people the run changed: seats of
students who left are released, students who became active join the queue, and waiting
students get the free seats in a stable order — when they (last) became active, then person
id, which within one load is the source's order. A held seat is never taken back, not even
when the limit is lowered: seats then drain as students leave. Setting a limit runs the same
pass over every student of the tenant; a tenant without a limit has no seat rows.
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


def _people(tenant_id: int, run_id: int | None) -> tuple[str, list[Any]]:
    """The people a pass looks at: the tenant's, or only those the run's plan changed."""
    sql = f"SELECT id FROM {PEOPLE} WHERE tenant_id = %s"
    if run_id is None:
        return sql, [tenant_id]
    changed = (
        "SELECT entity_id FROM sis_raw_users WHERE run_id = %s "
        "AND action IN ('create', 'update', 'reactivate') AND entity_id IS NOT NULL "
        "UNION SELECT entity_id FROM sis_planned_deactivations "
        "WHERE run_id = %s AND entity_type = 'user'"
    )
    return f"{sql} AND id IN ({changed})", [tenant_id, run_id, run_id]


def seats_allocate(
    *, tenant_id: int, run_id: int | None = None, now: dt.datetime | None = None
) -> dict[str, Any] | None:
    """Brings the tenant's seats in line with its active students; None without a seat limit.

    With `run_id` (inside that run's load transaction, after the apply) only the people the
    run changed are looked at: every other student's seat row is already right, because the
    full pass (without `run_id`) ran when the limit was set. Returns the run's `seats` stats:
    seats `allocated` and `released` now, students `waiting` afterwards (and `inUse`, `limit`).
    """
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    if tenant.seat_limit is None:
        return None
    at = db_now(now or timezone.now())
    people, params = _people(tenant_id, run_id)
    gone = f"{people} AND (NOT is_active OR role <> 'student')"
    here = f"{people} AND is_active AND role = 'student'"
    released = execute(
        f"UPDATE {SEATS} SET state = 'released', released_at = %s FROM ({gone}) g "
        f"WHERE {SEATS}.person_id = g.id AND {SEATS}.state = 'allocated'",
        [at, *params],
    )
    # A waiting student who left leaves the queue.
    execute(
        f"UPDATE {SEATS} SET state = 'released', released_at = %s FROM ({gone}) g "
        f"WHERE {SEATS}.person_id = g.id AND {SEATS}.state = 'waiting'",
        [at, *params],
    )
    # A student who comes back queues again, at the back.
    execute(
        f"UPDATE {SEATS} SET state = 'waiting', queued_at = %s, allocated_at = NULL, "
        f"released_at = NULL FROM ({here}) h "
        f"WHERE {SEATS}.person_id = h.id AND {SEATS}.state = 'released'",
        [at, *params],
    )
    in_use = _count(tenant_id, SeatState.ALLOCATED)
    # New students: seated as they are inserted when every waiting student fits too (the
    # common case, and a first sync's million rows are then written once).
    room = max(0, tenant.seat_limit - in_use - _count(tenant_id, SeatState.WAITING))
    seated = f"row_number() OVER (ORDER BY p.id) <= {int(room)}"
    inserted = execute(
        f"INSERT INTO {SEATS} (tenant_id, person_id, state, queued_at, allocated_at) "
        f"SELECT %s, p.id, CASE WHEN {seated} THEN 'allocated' ELSE 'waiting' END, %s, "
        f"CASE WHEN {seated} THEN %s END FROM ({here}) p "
        f"WHERE NOT EXISTS (SELECT 1 FROM {SEATS} s WHERE s.person_id = p.id) ORDER BY p.id",
        [tenant_id, at, at, *params],
    )
    allocated = min(inserted, room)
    free = max(0, tenant.seat_limit - in_use - allocated)
    if free:
        allocated += execute(
            f"UPDATE {SEATS} SET state = 'allocated', allocated_at = %s WHERE id IN ("
            f"SELECT id FROM {SEATS} WHERE tenant_id = %s AND state = 'waiting' "
            "ORDER BY queued_at, person_id LIMIT %s)",
            [at, tenant_id, free],
        )
    return {
        "allocated": allocated,
        "released": released,
        "waiting": _count(tenant_id, SeatState.WAITING),
        "inUse": in_use + allocated,
        "limit": tenant.seat_limit,
    }


def _count(tenant_id: int, state: str) -> int:
    return scalar(
        f"SELECT count(*) FROM {SEATS} WHERE tenant_id = %s AND state = %s", [tenant_id, state]
    )


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
