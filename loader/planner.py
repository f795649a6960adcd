"""Planning a load: match staged records to platform entities and decide what happens to each.

Nothing here writes the roster. The plan lives in the run's staging rows (`entity_id`,
`action`, `matched_by`) and in `sis_planned_deactivations`, so a dry run reports it and a held
run keeps it for approval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loader import contacts
from loader.context import LoadContext
from loader.db import analyze, execute, json_items, q, rows, tune_transaction
from loader.entities import (
    IDENTITY,
    ORDER,
    PERSON_SCHOOL,
    PLANNED,
    REJECTS,
    SPECS,
    USERS,
    EntitySpec,
)
from loader.holds import hold_reasons
from loader.validate import validate

WRITTEN = ("create", "update", "reactivate")  # the actions that write an entity
# Classifying more staging rows than this makes the statistics taken before it misleading.
RESTATE_ROWS = 20_000
STAT_KEYS = ("created", "updated", "unchanged", "deactivated", "reactivated", "rejected")
ACTION_STAT = {
    "create": "created",
    "update": "updated",
    "unchanged": "unchanged",
    "reactivate": "reactivated",
}


@dataclass
class Plan:
    stats: dict[str, dict[str, int]]
    hold_reasons: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return bool(self.hold_reasons)

    @property
    def rejected(self) -> int:
        return sum(s["rejected"] for s in self.stats.values())


def plan(ctx: LoadContext) -> Plan:
    tune_transaction()
    # The roster tables and the identity map were analysed by the load that grew them.
    analyze([s.staging for s in ORDER if ctx.included(s.name)])
    for spec in ORDER:
        if ctx.included(spec.name):
            validate(ctx, spec)
            written = _match(ctx, spec) + _classify(ctx, spec)
            if written >= RESTATE_ROWS:
                # The statistics taken before classifying say every action is NULL; the
                # joins that follow (children, apply) would plan for a handful of rows.
                analyze([spec.staging])
    _plan_deactivations(ctx)
    _record_rejects(ctx)
    stats = _stats(ctx)
    return Plan(stats, hold_reasons(ctx, stats))


def resolve_references(
    ctx: LoadContext, spec: EntitySpec, actions: tuple[str, ...] = WRITTEN
) -> None:
    """Fills the parent ids of the rows about to be written, where still empty (new parents)."""
    st = spec.staging
    wanted = ", ".join(f"'{a}'" for a in actions)
    for ref in spec.references:
        parent = SPECS[ref.entity]
        execute(
            f"UPDATE {st} SET {ref.id_column} = m.entity_id FROM {parent.identities} m "
            f"WHERE {st}.run_id = %s AND {st}.{ref.id_column} IS NULL "
            f"AND {st}.action IN ({wanted}) "
            f"AND m.provider_id = %s AND m.entity_type = %s AND m.external_id = {st}.{ref.column}",
            [ctx.run_id, ctx.provider_id, parent.type],
        )


def _match(ctx: LoadContext, spec: EntitySpec) -> int:
    """Matches the staged records of one type; returns how many staging rows it wrote."""
    written = _match_known(ctx, spec)
    if spec is USERS:
        written += _match_previous(ctx)
        # A contact (a parent) is matched by its external id only: matched by email, a parent
        # who is also a teacher would be one person whose role two records fight over.
        written += _match_people(ctx, "email", "lower(%s.email)", "email", roles="<> 'contact'")
        written += _match_people(
            ctx, "student_number", "%s.student_number", "student_number", roles="= 'student'"
        )
    return written


def _match_known(ctx: LoadContext, spec: EntitySpec) -> int:
    """Matches by external id, resolves parent ids and classifies, in one pass over staging.

    Only records this provider sent before are looked at here, and only those that need work
    are written (entity id, parent ids, action): a record that changes nothing keeps its
    action NULL and is counted as unchanged (see `_stats`). Writing every staging row again
    was most of a no-change re-sync.
    """
    st, target = spec.staging, spec.target
    joins, join_params, picked, assigned = "", [], "", ""
    resolved: dict[str, str] = {}
    for n, ref in enumerate(spec.references):
        joins += (
            f" LEFT JOIN {SPECS[ref.entity].identities} p{n} ON p{n}.provider_id = %s "
            f"AND p{n}.entity_type = %s AND p{n}.external_id = s.{ref.column}"
        )
        join_params += [ctx.provider_id, SPECS[ref.entity].type]
        picked += f", p{n}.entity_id AS {ref.id_column}"
        assigned += f", {ref.id_column} = x.{ref.id_column}"
        resolved[ref.id_column] = f"p{n}.entity_id"
    theirs = ", ".join(f"e.{q(c)}" for c in spec.fields)
    ours = ", ".join(resolved.get(c, f"s.{q(c)}") for c in spec.fields)
    changed = f"({theirs}) IS DISTINCT FROM ({ours})"
    if spec is USERS:
        schools, school_params = _school_sets(ctx)
        joins += schools
        join_params += school_params
        changed += (
            " OR coalesce(ss.created, 0) = 1 OR coalesce(ss.listed, 0) <> coalesce(ss.common, 0)"
            " OR coalesce(ss.listed, 0) <> coalesce(ps.linked, 0)"
        )
        if contacts.in_play(ctx):
            links, link_params, links_changed = contacts.changed_links(ctx)
            joins += links
            join_params += link_params
            changed += links_changed
    if spec.own_identity:  # the target row is its own identity
        known = f"JOIN {target} e ON e.provider_id = %s AND e.external_id = s.external_id"
        known_params: list[object] = [ctx.provider_id]
    else:
        known = (
            f"JOIN {IDENTITY} m ON m.provider_id = %s AND m.entity_type = %s "
            f"AND m.external_id = s.external_id JOIN {target} e ON e.id = m.entity_id"
        )
        known_params = [ctx.provider_id, spec.type]
    return execute(
        f"UPDATE {st} SET entity_id = x.entity_id, matched_by = 'external_id', "
        f"action = x.action{assigned} FROM ("
        f"SELECT s.id, e.id AS entity_id{picked}, CASE "
        f"WHEN s.status <> 'active' THEN CASE WHEN e.is_active THEN 'deactivate' ELSE 'ignore' END "
        f"WHEN NOT e.is_active THEN 'reactivate' "
        f"WHEN {changed} THEN 'update' END AS action "
        f"FROM {st} s {known}{joins} "
        f"WHERE s.run_id = %s AND NOT s.rejected AND NOT s.skipped) AS x "
        f"WHERE {st}.id = x.id AND x.action IS NOT NULL",
        [*known_params, *join_params, ctx.run_id],
    )


def _match_previous(ctx: LoadContext) -> int:
    """Links staged users this provider now sends under a new id to the person it knew under
    their previous one (`previous_external_id`: Clever's v2 `legacy_id`). Only when the old id
    is not itself sent in this run, the new one is unknown, and no other staged user claims the
    same old id. The apply re-keys the identity to the new id (`matched_by = 'previous_id'`).
    """
    st = USERS.staging
    return execute(
        f"UPDATE {st} SET entity_id = m.entity_id, matched_by = 'previous_id' FROM {IDENTITY} m "
        f"WHERE {st}.run_id = %s AND NOT {st}.rejected AND NOT {st}.skipped "
        f"AND {st}.status = 'active' AND {st}.entity_id IS NULL "
        f"AND {st}.previous_external_id <> '' AND {_unknown(ctx, USERS, st)} "
        f"AND m.provider_id = %s AND m.entity_type = 'user' "
        f"AND m.external_id = {st}.previous_external_id "
        f"AND NOT EXISTS (SELECT 1 FROM {st} o WHERE o.run_id = %s "
        f"AND o.external_id = {st}.previous_external_id) "
        f"AND NOT EXISTS (SELECT 1 FROM {st} d WHERE d.run_id = %s AND d.id <> {st}.id "
        f"AND d.previous_external_id = {st}.previous_external_id)",
        [ctx.run_id, ctx.provider_id, ctx.run_id, ctx.run_id],
    )


def _school_sets(ctx: LoadContext) -> tuple[str, list[object]]:
    """Joins telling, per staged user, whether its person's schools (as this provider knows
    them) differ from the record's.

    `ss.listed`: the known schools the record lists (a listed school outside the schoolFilter
    is unknown here and does not count); `ss.common`: how many of those the person is linked
    to; `ss.created`: the record lists a school this run creates; `ps.linked`: the person's
    links to schools this provider knows. The sets are equal when listed = common = linked.
    Computed for all users at once with hash joins, never per user.
    """
    st = USERS.staging
    staged = (
        f" LEFT JOIN (SELECT u.id, count(DISTINCT k.entity_id) AS listed, "
        f"count(DISTINCT c.school_id) AS common, "
        f"max(CASE WHEN n.id IS NOT NULL AND k.entity_id IS NULL THEN 1 ELSE 0 END) AS created "
        f"FROM {st} u JOIN {IDENTITY} um ON um.provider_id = %s AND um.entity_type = 'user' "
        f"AND um.external_id = u.external_id "
        f"CROSS JOIN {json_items('u.school_external_ids')} "
        f"LEFT JOIN {IDENTITY} k ON k.provider_id = %s AND k.entity_type = 'school' "
        f"AND k.external_id = l.value "
        f"LEFT JOIN {PERSON_SCHOOL} c ON c.person_id = um.entity_id AND c.school_id = k.entity_id "
        # A listed school unknown to the provider that this run creates (see to_create).
        f"LEFT JOIN sis_raw_schools n ON n.run_id = u.run_id AND n.external_id = l.value "
        f"AND n.action IS NULL AND n.entity_id IS NULL AND n.status = 'active' "
        f"AND NOT n.rejected AND NOT n.skipped "
        f"WHERE u.run_id = %s GROUP BY u.id) AS ss ON ss.id = s.id"
    )
    linked = (
        f" LEFT JOIN (SELECT x.person_id, count(*) AS linked "
        f"FROM {PERSON_SCHOOL} x JOIN {IDENTITY} k ON k.provider_id = %s "
        f"AND k.entity_type = 'school' AND k.entity_id = x.school_id "
        f"GROUP BY x.person_id) AS ps ON ps.person_id = m.entity_id"
    )
    return staged + linked, [ctx.provider_id, ctx.provider_id, ctx.run_id, ctx.provider_id]


def _unknown(ctx: LoadContext, spec: EntitySpec, row: str) -> str:
    """SQL: staged row `row` is not one this provider sent before (no identity for its id).

    Needed because a known record that changes nothing is left untouched by `_match_known`
    (its entity_id stays NULL, like a new record's).
    """
    return (
        f"NOT EXISTS (SELECT 1 FROM {spec.identities} known WHERE known.provider_id = "
        f"{int(ctx.provider_id)} AND known.entity_type = '{spec.type}' "
        f"AND known.external_id = {row}.external_id)"
    )


def to_create(ctx: LoadContext, spec: EntitySpec, row: str, known: str | None = None) -> str:
    """SQL: staged row `row` is one the plan creates (the run's condition is the caller's).

    A record to create is live, active, matched to nothing and unknown to this provider. The
    plan leaves it untouched, like an unchanged one: marking every row of a district's first
    sync 'create' rewrote all of staging. The identity map changes only when a load of this
    provider commits, after which a held plan is no longer approved, so this names the same
    rows at approval as when the plan was made.

    `known`: a relation of this provider's known external ids of the type (column
    `external_id`) to look in instead of the identities themselves.
    """
    unknown = (
        f"NOT EXISTS (SELECT 1 FROM {known} k WHERE k.external_id = {row}.external_id)"
        if known
        else _unknown(ctx, spec, row)
    )
    return (
        f"{row}.action IS NULL AND {row}.entity_id IS NULL AND {row}.status = 'active' "
        f"AND NOT {row}.rejected AND NOT {row}.skipped AND {unknown}"
    )


def _match_people(ctx: LoadContext, how: str, key: str, column: str, roles: str) -> int:
    """Links unmatched staged users to existing people by a unique key (SPEC §3 matching order).

    Only an unambiguous match counts: the key must belong to exactly one person of the tenant
    not yet linked to this provider, and to exactly one unmatched staged user. `roles` is the
    condition on the role of both (SQL, a constant: "= 'student'").
    """
    st = USERS.staging
    staged_key = key % "s"
    person_key = key % "p"
    role_s = f"AND s.role {roles} "
    role_p = f"AND p.role {roles} "
    role_t = f"AND {st}.role {roles} "
    role_params: list[object] = []
    unmatched = (
        f"s.run_id = %s AND s.entity_id IS NULL AND NOT s.rejected AND NOT s.skipped "
        f"AND s.status = 'active' AND s.{column} <> '' {role_s}AND {_unknown(ctx, USERS, 's')} "
    )
    return execute(
        f"UPDATE {st} SET entity_id = c.person_id, matched_by = %s FROM ("
        f"SELECT k.k, pp.person_id FROM ("
        f"  SELECT {staged_key} AS k FROM {st} s WHERE {unmatched} "
        f"  GROUP BY {staged_key} HAVING count(*) = 1) AS k "
        f"JOIN ("
        f"  SELECT {person_key} AS k, min(p.id) AS person_id FROM sis_sync_person p "
        f"  WHERE p.tenant_id = %s AND p.{column} <> '' {role_p}"
        f"  AND {person_key} IN (SELECT {staged_key} FROM {st} s WHERE {unmatched}) "
        f"  AND NOT EXISTS (SELECT 1 FROM {IDENTITY} m WHERE m.provider_id = %s "
        f"    AND m.entity_type = 'user' AND m.entity_id = p.id) "
        f"  AND NOT EXISTS (SELECT 1 FROM {st} x WHERE x.run_id = %s AND x.entity_id = p.id) "
        f"  GROUP BY {person_key} HAVING count(*) = 1) AS pp ON pp.k = k.k"
        f") AS c WHERE {st}.run_id = %s AND {st}.entity_id IS NULL AND NOT {st}.rejected "
        f"AND NOT {st}.skipped AND {st}.status = 'active' AND {key % st} = c.k {role_t}"
        f"AND {_unknown(ctx, USERS, st)}",
        [
            how,
            ctx.run_id,
            *role_params,
            ctx.tenant_id,
            *role_params,
            ctx.run_id,
            *role_params,
            ctx.provider_id,
            ctx.run_id,
            ctx.run_id,
            *role_params,
        ],
    )


def _classify(ctx: LoadContext, spec: EntitySpec) -> int:
    """Classifies what `_match_known` did not: people linked by email or number, new records
    the provider may not create, deleted records never loaded. The new are left untouched
    (see `to_create`)."""
    st, target = spec.staging, spec.target
    live = f"{st}.run_id = %s AND NOT {st}.rejected AND NOT {st}.skipped"
    new = f"{st}.status = 'active' AND {st}.entity_id IS NULL AND {_unknown(ctx, spec, st)}"
    written = 0
    if spec is USERS:
        written += execute(
            f"UPDATE {st} SET action = CASE WHEN e.is_active THEN 'update' ELSE 'reactivate' END "
            f"FROM {target} e WHERE {live} AND {st}.status = 'active' "
            f"AND {st}.matched_by <> 'external_id' AND e.id = {st}.entity_id",
            [ctx.run_id],
        )
    if spec is USERS and not ctx.options.create_users:
        written += execute(
            f"UPDATE {st} SET rejected = TRUE, reason = 'no platform user matches it (by id, "
            "email or student number) and the provider does not create users (createUsers "
            f"is off)' WHERE {live} AND {new}",
            [ctx.run_id],
        )
    written += execute(
        f"UPDATE {st} SET action = 'ignore' "
        f"WHERE {live} AND {st}.status <> 'active' AND {st}.action IS NULL",
        [ctx.run_id],
    )
    return written


def _plan_deactivations(ctx: LoadContext) -> None:
    for spec in ORDER:
        if ctx.mode(spec.name) == "full" and ctx.options.deactivate_missing:
            # Whatever this provider gave us before and no longer sends. A record that was sent
            # but rejected is not "gone": its entity stays as it is; nor is one sent under a
            # new id (re-keyed: `_match_previous`).
            rekeyed = (
                f"AND NOT EXISTS (SELECT 1 FROM {spec.staging} r WHERE r.run_id = "
                f"{int(ctx.run_id)} AND r.matched_by = 'previous_id' "
                f"AND r.entity_id = m.entity_id) "
                if spec is USERS
                else ""
            )
            if spec.own_identity:  # the target row is its own identity
                known = f"{spec.target} m WHERE m.provider_id = %s AND m.is_active"
                entity, known_params = "m.id", [ctx.provider_id]
            else:
                known = (
                    f"{IDENTITY} m JOIN {spec.target} e ON e.id = m.entity_id "
                    "WHERE m.provider_id = %s AND m.entity_type = %s AND e.is_active"
                )
                entity, known_params = "m.entity_id", [ctx.provider_id, spec.type]
            execute(
                f"INSERT INTO {PLANNED} (run_id, entity_type, entity_id) "
                f"SELECT %s, %s, {entity} FROM {known} "
                f"AND NOT EXISTS (SELECT 1 FROM {spec.staging} s "
                f"WHERE s.run_id = %s AND s.external_id = m.external_id AND NOT s.skipped) "
                f"AND NOT EXISTS (SELECT 1 FROM {REJECTS} j WHERE j.run_id = %s "
                f"AND j.entity = %s AND j.external_id = m.external_id) {rekeyed}",
                [ctx.run_id, spec.type, *known_params, ctx.run_id, ctx.run_id, spec.label],
            )
        if ctx.included(spec.name):
            execute(
                f"INSERT INTO {PLANNED} (run_id, entity_type, entity_id) "
                f"SELECT DISTINCT %s, %s, entity_id FROM {spec.staging} "
                "WHERE run_id = %s AND action = 'deactivate'",
                [ctx.run_id, spec.type, ctx.run_id],
            )
    # A deactivated person's or class's memberships go with them (SPEC §3). Driven from the
    # planned deactivations through the enrollment indexes, not from every enrollment.
    for entity_type, column in (("user", "person_id"), ("class", "classroom_id")):
        execute(
            f"INSERT INTO {PLANNED} (run_id, entity_type, entity_id) "
            f"SELECT DISTINCT %s, 'enrollment', en.id FROM {PLANNED} d "
            f"JOIN sis_sync_enrollment en ON en.{column} = d.entity_id "
            f"WHERE d.run_id = %s AND d.entity_type = %s AND en.is_active "
            f"AND NOT EXISTS (SELECT 1 FROM {PLANNED} x WHERE x.run_id = %s "
            f"AND x.entity_type = 'enrollment' AND x.entity_id = en.id)",
            [ctx.run_id, ctx.run_id, entity_type, ctx.run_id],
        )


def _record_rejects(ctx: LoadContext) -> None:
    for spec in ORDER:
        if ctx.included(spec.name):
            execute(
                f"INSERT INTO {REJECTS} (run_id, entity, external_id, reason, raw, line) "
                f"SELECT run_id, %s, substr(external_id, 1, 255), reason, raw, line "
                f"FROM {spec.staging} "
                "WHERE run_id = %s AND rejected ORDER BY id",
                [spec.label, ctx.run_id],
            )


def _stats(ctx: LoadContext) -> dict[str, dict[str, int]]:
    stats: dict[str, dict[str, int]] = {s.name: dict.fromkeys(STAT_KEYS, 0) for s in ORDER}
    by_type = {s.type: s.name for s in ORDER}
    by_label = {s.label: s.name for s in ORDER}
    for spec in ORDER:
        if not ctx.included(spec.name):
            continue
        # A live row without an action is new (to_create) or changes nothing (_match_known).
        for action, count in rows(
            f"SELECT coalesce(s.action, CASE WHEN s.entity_id IS NULL AND s.status = 'active' "
            f"AND known.id IS NULL THEN 'create' ELSE 'unchanged' END), count(*) "
            f"FROM {spec.staging} s LEFT JOIN {spec.identities} known ON known.provider_id = %s "
            f"AND known.entity_type = %s AND known.external_id = s.external_id "
            "WHERE s.run_id = %s AND NOT s.rejected AND NOT s.skipped GROUP BY 1",
            [ctx.provider_id, spec.type, ctx.run_id],
        ):
            if action in ACTION_STAT:
                stats[spec.name][ACTION_STAT[action]] = count
    for entity_type, count in rows(
        f"SELECT entity_type, count(*) FROM {PLANNED} WHERE run_id = %s GROUP BY entity_type",
        [ctx.run_id],
    ):
        stats[by_type[entity_type]]["deactivated"] = count
    for entity, count in rows(
        f"SELECT entity, count(*) FROM {REJECTS} WHERE run_id = %s GROUP BY entity", [ctx.run_id]
    ):
        if entity in by_label:
            stats[by_label[entity]]["rejected"] = count
    return stats
