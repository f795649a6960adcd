"""Applying a plan to the platform roster: a handful of set-based statements per entity type.

Runs inside the caller's transaction. It carries out exactly what `loader.plan` stored: the
staging rows' actions and the run's planned deactivations, and decides nothing itself.
"""

from __future__ import annotations

from loader.context import LoadContext
from loader.db import allocate_ids, analyze, db_now, execute, json_items, q
from loader.entities import IDENTITY, ORDER, PERSON_SCHOOL, PLANNED, USERS, EntitySpec
from loader.planner import resolve_references

CHANGED = "('create', 'update', 'reactivate')"


def apply(ctx: LoadContext) -> None:
    now = db_now(ctx.now)
    for spec in ORDER:
        if ctx.included(spec.name):
            resolve_references(ctx, spec)
            _create(ctx, spec, now)
            _link(ctx, spec, now)
            # The children's joins go through the identity map this transaction just grew.
            analyze([IDENTITY, spec.target])
            _update(ctx, spec, now)
            if spec is USERS:
                _replace_schools(ctx)
    for spec in ORDER:
        execute(
            f"UPDATE {spec.target} SET is_active = FALSE, deactivated_at = %s, updated_at = %s "
            f"WHERE is_active AND id IN (SELECT entity_id FROM {PLANNED} "
            "WHERE run_id = %s AND entity_type = %s)",
            [now, now, ctx.run_id, spec.type],
        )


def _create(ctx: LoadContext, spec: EntitySpec, now: object) -> None:
    allocate_ids(spec.staging, spec.target, ctx.run_id)
    columns = ", ".join(q(c) for c in spec.fields)
    execute(
        f"INSERT INTO {spec.target} (id, tenant_id, {columns}, is_active, deactivated_at, "
        f"created_at, updated_at) SELECT entity_id, %s, {columns}, TRUE, NULL, %s, %s "
        f"FROM {spec.staging} WHERE run_id = %s AND action = 'create' ORDER BY id",
        [ctx.tenant_id, now, now, ctx.run_id],
    )


def _link(ctx: LoadContext, spec: EntitySpec, now: object) -> None:
    """Remembers the external id of every entity this run created or matched by email/number."""
    execute(
        f"INSERT INTO {IDENTITY} (tenant_id, provider_id, entity_type, external_id, entity_id, "
        f"created_at) SELECT %s, %s, %s, external_id, entity_id, %s FROM {spec.staging} "
        f"WHERE run_id = %s AND matched_by <> 'external_id' AND action IN {CHANGED}",
        [ctx.tenant_id, ctx.provider_id, spec.type, now, ctx.run_id],
    )


def _update(ctx: LoadContext, spec: EntitySpec, now: object) -> None:
    st = spec.staging
    assignments = ", ".join(f"{q(c)} = {st}.{q(c)}" for c in spec.fields)
    execute(
        f"UPDATE {spec.target} SET {assignments}, is_active = TRUE, deactivated_at = NULL, "
        f"updated_at = %s FROM {st} WHERE {st}.run_id = %s "
        f"AND {st}.action IN ('update', 'reactivate') AND {spec.target}.id = {st}.entity_id",
        [now, ctx.run_id],
    )


def _replace_schools(ctx: LoadContext) -> None:
    """Sets each changed person's schools, as far as this provider knows them, to the source's."""
    st = USERS.staging
    # Driven from the run's changed users (joins on indexes), never from every link.
    execute(
        f"DELETE FROM {PERSON_SCHOOL} WHERE id IN ("
        f"SELECT ps.id FROM {st} u JOIN {PERSON_SCHOOL} ps ON ps.person_id = u.entity_id "
        f"JOIN {IDENTITY} m ON m.entity_id = ps.school_id AND m.provider_id = %s "
        f"AND m.entity_type = 'school' "
        f"WHERE u.run_id = %s AND u.action IN {CHANGED} AND NOT EXISTS ("
        f"SELECT 1 FROM {json_items('u.school_external_ids')} WHERE l.value = m.external_id))",
        [ctx.provider_id, ctx.run_id],
    )
    execute(
        f"INSERT INTO {PERSON_SCHOOL} (person_id, school_id) "
        f"SELECT DISTINCT u.entity_id, m.entity_id FROM {st} u "
        f"CROSS JOIN {json_items('u.school_external_ids')} "
        f"JOIN {IDENTITY} m ON m.provider_id = %s AND m.entity_type = 'school' "
        f"AND m.external_id = l.value "
        f"WHERE u.run_id = %s AND u.action IN {CHANGED} AND NOT EXISTS ("
        f"SELECT 1 FROM {PERSON_SCHOOL} ps WHERE ps.person_id = u.entity_id "
        f"AND ps.school_id = m.entity_id)",
        [ctx.provider_id, ctx.run_id],
    )
