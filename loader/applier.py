"""Applying a plan to the platform roster: a handful of set-based statements per entity type.

Runs inside the caller's transaction. It carries out exactly what `loader.plan` stored: the
staging rows' actions and the run's planned deactivations, and decides nothing itself.
"""

from __future__ import annotations

from loader.context import LoadContext
from loader.db import (
    allocate_ids,
    analyze,
    check_constraints_now,
    db_now,
    execute,
    is_postgres,
    json_items,
    q,
    tune_transaction,
)
from loader.entities import IDENTITY, ORDER, PERSON_SCHOOL, PLANNED, SPECS, USERS, EntitySpec
from loader.planner import RESTATE_ROWS, WRITTEN, resolve_references, to_create

CHANGED = "('create', 'update', 'reactivate')"


def apply(ctx: LoadContext) -> None:
    tune_transaction()
    check_constraints_now()
    now = db_now(ctx.now)
    for spec in ORDER:
        if ctx.included(spec.name):
            if is_postgres():
                resolve_references(ctx, spec, actions=("update", "reactivate"))
                created = _create_postgres(ctx, spec, now)
                schooled = ("update", "reactivate")  # new people got theirs when created
            else:
                _mark_creates(ctx, spec)
                resolve_references(ctx, spec)
                created = _create(ctx, spec, now)
                schooled = WRITTEN
            if spec is USERS:
                _rekey(ctx)
            grown = created + _link(ctx, spec, now)
            if grown:
                # The children's joins go through the identity map this transaction just grew.
                analyze([IDENTITY, spec.target])
            if created >= RESTATE_ROWS:
                # What reads the run's staging after the load (seats, SCIM) filters on action.
                analyze([spec.staging])
            _update(ctx, spec, now)
            if spec is USERS:
                _replace_schools(ctx, schooled)
    for spec in ORDER:
        execute(
            f"UPDATE {spec.target} SET is_active = FALSE, deactivated_at = %s, updated_at = %s "
            f"WHERE is_active AND id IN (SELECT entity_id FROM {PLANNED} "
            "WHERE run_id = %s AND entity_type = %s)",
            [now, now, ctx.run_id, spec.type],
        )


def _create_postgres(ctx: LoadContext, spec: EntitySpec, now: object) -> int:
    """Creates the run's new entities and their identities in one statement.

    Ids come from the target's sequence as the rows are read and parent ids from the identity
    map (parents were created first), so no pass over staging is needed for either. New people
    get their schools in the same statement, and the staging rows their action and entity id
    (what is read after the load, seats and the SCIM outbox, finds the created there).
    """
    joins, params, resolved = "", [], {}
    for n, ref in enumerate(spec.references):
        joins += (
            f" LEFT JOIN {IDENTITY} p{n} ON p{n}.provider_id = %s AND p{n}.entity_type = %s "
            f"AND p{n}.external_id = s.{q(ref.column)}"
        )
        params += [ctx.provider_id, SPECS[ref.entity].type]
        resolved[ref.id_column] = f"coalesce(s.{q(ref.id_column)}, p{n}.entity_id)"
    picked = ", ".join(f"{resolved.get(c, f's.{q(c)}')} AS {q(c)}" for c in spec.fields)
    columns = ", ".join(q(c) for c in spec.fields)
    schools, school_params = "", []
    if spec is USERS:
        picked += ", s.school_external_ids"
        schools = (
            f", schools AS (INSERT INTO {PERSON_SCHOOL} (person_id, school_id) "
            f"SELECT DISTINCT new.id, m.entity_id FROM new "
            f"CROSS JOIN {json_items('new.school_external_ids')} "
            f"JOIN {IDENTITY} m ON m.provider_id = %s AND m.entity_type = 'school' "
            f"AND m.external_id = l.value)"
        )
        school_params = [ctx.provider_id]
    st = spec.staging
    return execute(
        f"WITH new AS MATERIALIZED (SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id, "
        f"s.id AS staged, s.external_id, {picked} FROM {st} s{joins} "
        f"WHERE s.run_id = %s AND {to_create(ctx, spec, 's')}), "
        f"made AS (INSERT INTO {spec.target} (id, tenant_id, {columns}, is_active, "
        f"deactivated_at, created_at, updated_at) "
        f"SELECT id, %s, {columns}, TRUE, NULL, %s, %s FROM new){schools}, "
        # Once applied, a created record's staging row says so, as every written one does.
        f"marked AS (UPDATE {st} SET entity_id = new.id, action = 'create', matched_by = 'new' "
        f"FROM new WHERE {st}.id = new.staged) "
        f"INSERT INTO {IDENTITY} (tenant_id, provider_id, entity_type, external_id, entity_id, "
        f"created_at) SELECT %s, %s, %s, external_id, id, %s FROM new",
        [
            spec.target,
            *params,
            ctx.run_id,
            ctx.tenant_id,
            now,
            now,
            *school_params,
            ctx.tenant_id,
            ctx.provider_id,
            spec.type,
            now,
        ],
    )


def _mark_creates(ctx: LoadContext, spec: EntitySpec) -> None:
    """SQLite: the rows to create are marked first, for the statements below to find them."""
    st = spec.staging
    execute(
        f"UPDATE {st} SET action = 'create', matched_by = 'new' "
        f"WHERE {st}.run_id = %s AND {to_create(ctx, spec, st)}",
        [ctx.run_id],
    )


def _create(ctx: LoadContext, spec: EntitySpec, now: object) -> int:
    """The same on SQLite (no statement writes two tables): ids written into staging first,
    then the entities and identities; new people's schools come with `_replace_schools`."""
    allocate_ids(spec.staging, spec.target, ctx.run_id)
    columns = ", ".join(q(c) for c in spec.fields)
    execute(
        f"INSERT INTO {spec.target} (id, tenant_id, {columns}, is_active, deactivated_at, "
        f"created_at, updated_at) SELECT entity_id, %s, {columns}, TRUE, NULL, %s, %s "
        f"FROM {spec.staging} WHERE run_id = %s AND action = 'create' ORDER BY id",
        [ctx.tenant_id, now, now, ctx.run_id],
    )
    return execute(
        f"INSERT INTO {IDENTITY} (tenant_id, provider_id, entity_type, external_id, entity_id, "
        f"created_at) SELECT %s, %s, %s, external_id, entity_id, %s FROM {spec.staging} "
        f"WHERE run_id = %s AND action = 'create'",
        [ctx.tenant_id, ctx.provider_id, spec.type, now, ctx.run_id],
    )


def _rekey(ctx: LoadContext) -> None:
    """A person the provider now sends under a new id keeps their identity, under the new id."""
    st = USERS.staging
    execute(
        f"UPDATE {IDENTITY} SET external_id = s.external_id FROM {st} s "
        f"WHERE s.run_id = %s AND s.matched_by = 'previous_id' AND s.action IN {CHANGED} "
        f"AND {IDENTITY}.provider_id = %s AND {IDENTITY}.entity_type = 'user' "
        f"AND {IDENTITY}.external_id = s.previous_external_id "
        f"AND {IDENTITY}.entity_id = s.entity_id",
        [ctx.run_id, ctx.provider_id],
    )


def _link(ctx: LoadContext, spec: EntitySpec, now: object) -> int:
    """Remembers the external id of every existing entity this run matched by email/number."""
    return execute(
        f"INSERT INTO {IDENTITY} (tenant_id, provider_id, entity_type, external_id, entity_id, "
        f"created_at) SELECT %s, %s, %s, external_id, entity_id, %s FROM {spec.staging} "
        f"WHERE run_id = %s AND matched_by NOT IN ('external_id', 'new', 'previous_id') "
        f"AND action IN {CHANGED}",
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


def _replace_schools(ctx: LoadContext, actions: tuple[str, ...]) -> None:
    """Sets each changed person's schools, as far as this provider knows them, to the source's.

    `actions`: the staging rows' actions to look at. On PostgreSQL the new people got their
    schools when they were created; on SQLite they come here. People are found through the
    identity map, which by now holds every changed user.
    """
    st = USERS.staging
    changed = "(" + ", ".join(f"'{a}'" for a in actions) + ")"
    person = (
        f"JOIN {IDENTITY} um ON um.provider_id = %s AND um.entity_type = 'user' "
        f"AND um.external_id = u.external_id"
    )
    # Driven from the run's changed users (joins on indexes), never from every link.
    execute(
        f"DELETE FROM {PERSON_SCHOOL} WHERE id IN ("
        f"SELECT ps.id FROM {st} u {person} JOIN {PERSON_SCHOOL} ps ON ps.person_id = um.entity_id "
        f"JOIN {IDENTITY} m ON m.entity_id = ps.school_id AND m.provider_id = %s "
        f"AND m.entity_type = 'school' "
        f"WHERE u.run_id = %s AND u.action IN {changed} AND NOT EXISTS ("
        f"SELECT 1 FROM {json_items('u.school_external_ids')} WHERE l.value = m.external_id))",
        [ctx.provider_id, ctx.provider_id, ctx.run_id],
    )
    execute(
        f"INSERT INTO {PERSON_SCHOOL} (person_id, school_id) "
        f"SELECT DISTINCT um.entity_id, m.entity_id FROM {st} u {person} "
        f"CROSS JOIN {json_items('u.school_external_ids')} "
        f"JOIN {IDENTITY} m ON m.provider_id = %s AND m.entity_type = 'school' "
        f"AND m.external_id = l.value "
        f"WHERE u.run_id = %s AND u.action IN {changed} AND NOT EXISTS ("
        f"SELECT 1 FROM {PERSON_SCHOOL} ps WHERE ps.person_id = um.entity_id "
        f"AND ps.school_id = m.entity_id)",
        [ctx.provider_id, ctx.provider_id, ctx.run_id],
    )
