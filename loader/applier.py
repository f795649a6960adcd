"""Applying a plan to the platform roster: a handful of set-based statements per entity type.

Runs inside the caller's transaction. It carries out exactly what `loader.plan` stored: the
staging rows' actions and the run's planned deactivations, and decides nothing itself.
"""

from __future__ import annotations

from loader import contacts
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
    scalar,
    tune_transaction,
)
from loader.entities import (
    ENROLLMENTS,
    IDENTITY,
    ORDER,
    PERSON_SCHOOL,
    PLANNED,
    SPECS,
    USERS,
    EntitySpec,
)
from loader.integrity import check_references
from loader.planner import RESTATE_ROWS, WRITTEN, resolve_references, to_create

CHANGED = "('create', 'update', 'reactivate')"


def apply(ctx: LoadContext, counts: dict[str, dict[str, int]] | None = None) -> None:
    """Carries out the stored plan. `counts`: the plan's stats, when the caller has them; the
    statements of what a type's plan does not do (create, update, deactivate) are then
    skipped, which is most of the apply of a re-sync that changes little."""
    tune_transaction()
    check_constraints_now()
    now = db_now(ctx.now)
    plans = {spec.name: _Planned(spec.name, counts) for spec in ORDER}
    for spec in ORDER:
        if ctx.included(spec.name):
            planned = plans[spec.name]
            created = 0
            if is_postgres():
                if planned.updates:
                    resolve_references(ctx, spec, actions=("update", "reactivate"))
                if planned.creates:
                    created = _create_postgres(ctx, spec, now)
                schooled = ("update", "reactivate")  # new people got theirs when created
            elif planned.creates or planned.updates:
                _mark_creates(ctx, spec)
                resolve_references(ctx, spec)
                created = _create(ctx, spec, now)
                schooled = WRITTEN
            if not planned.updates and not created:
                continue
            grown = created + (_link(ctx, spec, now) if planned.updates else 0)
            if grown:
                # The children's joins go through the identity map this transaction just grew.
                analyze([IDENTITY, spec.target])
            if spec is USERS:
                _rekey(ctx)
            if created >= RESTATE_ROWS and spec is not ENROLLMENTS:
                # What reads the run's staging after the load (seats, SCIM) filters on action.
                analyze([spec.staging])
            if planned.updates:
                _update(ctx, spec, now)
            if spec is USERS:
                _replace_schools(ctx, schooled)
                if contacts.in_play(ctx):
                    # On PostgreSQL too the created have their action by now (see
                    # _create_postgres), and their identities: students made here count.
                    contacts.replace_links(ctx, WRITTEN)
    for spec in ORDER:
        if not plans[spec.name].deactivations:
            continue
        execute(
            f"UPDATE {spec.target} SET is_active = FALSE, deactivated_at = %s, updated_at = %s "
            f"WHERE is_active AND id IN (SELECT entity_id FROM {PLANNED} "
            "WHERE run_id = %s AND entity_type = %s)",
            [now, now, ctx.run_id, spec.type],
        )

    def wrote(entity: str) -> bool:
        return ctx.included(entity) and (plans[entity].creates or plans[entity].updates)

    check_references(ctx, now, people=wrote("users"), enrollments=wrote("enrollments"))


class _Planned:
    """What the plan does to one entity type (everything, when the counts are not known)."""

    def __init__(self, entity: str, counts: dict[str, dict[str, int]] | None) -> None:
        known = None if counts is None else counts.get(entity, {})
        self.creates = known is None or known.get("created", 0) > 0
        self.updates = known is None or known.get("updated", 0) + known.get("reactivated", 0) > 0
        # Deactivations include the memberships of deactivated people and classes.
        self.deactivations = known is None or known.get("deactivated", 0) > 0


def _create_postgres(ctx: LoadContext, spec: EntitySpec, now: object) -> int:
    """Creates the run's new entities and their identities in one statement.

    Ids come from the target's sequence as the rows are read and parent ids from the identity
    map (parents were created first), so no pass over staging is needed for either. New people
    get their schools in the same statement, and the staging rows of new schools, classes and
    people their action and entity id (seats and the SCIM outbox read them after the load).
    New enrollments' staging rows are left as they are: rewriting every row of a district's
    largest table cost a third of its first sync, and the one reader, the SCIM outbox, finds
    the classes of new enrollments by their creation time (`scim.outbox`).
    """
    joins, params, resolved = "", [], {}
    for n, ref in enumerate(spec.references):
        joins += (
            f" LEFT JOIN {SPECS[ref.entity].identities} p{n} ON p{n}.provider_id = %s "
            f"AND p{n}.entity_type = %s AND p{n}.external_id = s.{q(ref.column)}"
        )
        params += [ctx.provider_id, SPECS[ref.entity].type]
        resolved[ref.id_column] = f"coalesce(s.{q(ref.id_column)}, p{n}.entity_id)"
    picked = ", ".join(f"{resolved.get(c, f's.{q(c)}')} AS {q(c)}" for c in spec.fields)
    if spec is USERS:
        picked += ", s.school_external_ids"
    columns = ", ".join(q(c) for c in spec.fields)
    st = spec.staging
    # Named once: pg_get_serial_sequence() in the select list ran once per row.
    sequence = scalar("SELECT pg_get_serial_sequence(%s, 'id')", [spec.target])
    ctes: list[tuple[str, list[object]]] = [
        # What this provider knew before the statement, read once before it writes. Planned
        # as a nested loop over an enrollment table its statistics said was empty, the
        # "unknown" test re-scanned that table per staged row while this very statement was
        # adding pages to it (invisible rows, read all the same): minutes, not seconds.
        (
            f"known AS MATERIALIZED (SELECT external_id FROM {spec.identities} m "
            "WHERE m.provider_id = %s AND m.entity_type = %s)",
            [ctx.provider_id, spec.type],
        ),
        (
            f"new AS MATERIALIZED (SELECT nextval(%s::regclass) AS id, s.id AS staged, "
            f"s.external_id, {picked} FROM {st} s{joins} "
            f"WHERE s.run_id = %s AND {to_create(ctx, spec, 's', known='known')})",
            [sequence, *params, ctx.run_id],
        ),
    ]
    own, own_values = ("provider_id, external_id, ", "%s, external_id, ")
    made = (
        f"INSERT INTO {spec.target} (id, tenant_id, {own if spec.own_identity else ''}"
        f"{columns}, is_active, deactivated_at, created_at, updated_at) "
        f"SELECT id, %s, {own_values if spec.own_identity else ''}{columns}, TRUE, NULL, %s, %s "
        "FROM new",
        [ctx.tenant_id, *([ctx.provider_id] if spec.own_identity else []), now, now],
    )
    if spec.own_identity:
        final = made
    else:
        ctes.append((f"made AS ({made[0]})", made[1]))
        final = (
            f"INSERT INTO {IDENTITY} (tenant_id, provider_id, entity_type, external_id, "
            "entity_id, created_at) SELECT %s, %s, %s, external_id, id, %s FROM new",
            [ctx.tenant_id, ctx.provider_id, spec.type, now],
        )
    if spec is USERS:
        ctes.append(
            (
                f"schools AS (INSERT INTO {PERSON_SCHOOL} (person_id, school_id) "
                f"SELECT DISTINCT new.id, m.entity_id FROM new "
                f"CROSS JOIN {json_items('new.school_external_ids')} "
                f"JOIN {IDENTITY} m ON m.provider_id = %s AND m.entity_type = 'school' "
                f"AND m.external_id = l.value)",
                [ctx.provider_id],
            )
        )
    if spec is not ENROLLMENTS:
        ctes.append(
            (
                f"marked AS (UPDATE {st} SET entity_id = new.id, action = 'create', "
                f"matched_by = 'new' FROM new WHERE {st}.id = new.staged)",
                [],
            )
        )
    return execute(
        "WITH " + ", ".join(sql for sql, _ in ctes) + " " + final[0],
        [value for _, values in ctes for value in values] + final[1],
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
    own = "provider_id, external_id, " if spec.own_identity else ""
    own_values = "%s, external_id, " if spec.own_identity else ""
    created = execute(
        f"INSERT INTO {spec.target} (id, tenant_id, {own}{columns}, is_active, deactivated_at, "
        f"created_at, updated_at) SELECT entity_id, %s, {own_values}{columns}, TRUE, NULL, %s, %s "
        f"FROM {spec.staging} WHERE run_id = %s AND action = 'create' ORDER BY id",
        [ctx.tenant_id, *([ctx.provider_id] if spec.own_identity else []), now, now, ctx.run_id],
    )
    if spec.own_identity:
        return created
    return execute(
        f"INSERT INTO {IDENTITY} (tenant_id, provider_id, entity_type, external_id, entity_id, "
        f"created_at) SELECT %s, %s, %s, external_id, entity_id, %s FROM {spec.staging} "
        f"WHERE run_id = %s AND action = 'create'",
        [ctx.tenant_id, ctx.provider_id, spec.type, now, ctx.run_id],
    )


def _rekey(ctx: LoadContext) -> None:
    """A person the provider now sends under a new id keeps their identity, under the new id.

    Rare, so the run's staging is asked first: on a district's first sync the identity map
    has just grown by every person and its statistics are stale, and PostgreSQL planned this
    UPDATE as minutes of nested loops for nothing.
    """
    st = USERS.staging
    if not scalar(
        f"SELECT EXISTS (SELECT 1 FROM {st} WHERE run_id = %s AND matched_by = 'previous_id')",
        [ctx.run_id],
    ):
        return
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
    if spec.own_identity:
        return 0  # matched on external id only: nothing to remember
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
    if not scalar(
        f"SELECT EXISTS (SELECT 1 FROM {st} WHERE run_id = %s AND action IN {changed})",
        [ctx.run_id],
    ):
        return  # a first or unchanged sync: the joins below would read every link for nothing
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
