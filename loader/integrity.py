"""The references the roster's bulk tables carry without database foreign keys, checked
set-based inside the load transaction (see sis_sync.models.roster for why).

What one load wrote is checked, once, at its end: the enrollments it created or changed point
at a class and a person of the tenant, and the people it created or changed are linked to
schools of the tenant. The rows are found by their `updated_at`, which every write of the load
sets to the load's time (one load per provider at a time, each with its own time). An
identity left pointing at nothing by a change made outside the sync only stops a load that
would use it.
"""

from __future__ import annotations

from loader.context import LoadContext
from loader.db import rows


class BrokenReference(Exception):
    """The load would leave a roster row pointing at nothing; the transaction rolls back."""


def check_references(ctx: LoadContext, now: object, *, people: bool, enrollments: bool) -> None:
    """Raises BrokenReference if a row this load wrote points at nothing (`now`: the load's
    time as the database takes it; `people`, `enrollments`: whether it wrote any)."""
    if enrollments:
        found = rows(
            "SELECT e.external_id, CASE WHEN c.id IS NULL THEN 'class' ELSE 'user' END "
            "FROM sis_sync_enrollment e "
            "LEFT JOIN sis_sync_classroom c ON c.id = e.classroom_id AND c.tenant_id = e.tenant_id "
            "LEFT JOIN sis_sync_person p ON p.id = e.person_id AND p.tenant_id = e.tenant_id "
            "WHERE e.provider_id = %s AND e.updated_at = %s AND e.is_active "
            "AND (c.id IS NULL OR p.id IS NULL) "
            "ORDER BY e.external_id LIMIT 3",
            [ctx.provider_id, now],
        )
        _refuse("enrollment", found)
    if people:
        found = rows(
            "SELECT p.id, 'school' FROM sis_sync_person p "
            "JOIN sis_sync_personschool ps ON ps.person_id = p.id "
            "LEFT JOIN sis_sync_school s ON s.id = ps.school_id AND s.tenant_id = p.tenant_id "
            "WHERE p.tenant_id = %s AND p.updated_at = %s AND p.is_active AND s.id IS NULL "
            "ORDER BY p.id LIMIT 3",
            [ctx.tenant_id, now],
        )
        _refuse("person", found)


def _refuse(what: str, found: list[tuple[object, str]]) -> None:
    if found:
        named = ", ".join(f'{what} "{key}" ({missing} missing)' for key, missing in found)
        raise BrokenReference(
            f"the load would leave roster rows pointing at nothing: {named}; the platform "
            "roster was changed outside the sync; nothing was applied"
        )
