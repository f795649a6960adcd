"""Planning a load: match staged records to platform entities and decide what happens to each.

Nothing here writes the roster. The plan lives in the run's staging rows (`entity_id`,
`action`, `matched_by`) and in `sis_planned_deactivations`, so a dry run reports it and a held
run keeps it for approval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loader.context import LoadContext
from loader.db import analyze, execute, json_items, q, rows
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
    analyze([s.staging for s in ORDER] + [s.target for s in ORDER] + [IDENTITY])
    for spec in ORDER:
        if ctx.included(spec.name):
            validate(ctx, spec)
            _match(ctx, spec)
            _classify(ctx, spec)
    _plan_deactivations(ctx)
    _record_rejects(ctx)
    stats = _stats(ctx)
    return Plan(stats, hold_reasons(ctx, stats))


def resolve_references(ctx: LoadContext, spec: EntitySpec) -> None:
    """Fills the parent ids of the rows about to be written, where still empty (new parents)."""
    st = spec.staging
    for ref in spec.references:
        parent = SPECS[ref.entity]
        execute(
            f"UPDATE {st} SET {ref.id_column} = m.entity_id FROM {IDENTITY} m "
            f"WHERE {st}.run_id = %s AND {st}.{ref.id_column} IS NULL "
            f"AND {st}.action IN ('create', 'update', 'reactivate') "
            f"AND m.provider_id = %s AND m.entity_type = %s AND m.external_id = {st}.{ref.column}",
            [ctx.run_id, ctx.provider_id, parent.type],
        )


def _match(ctx: LoadContext, spec: EntitySpec) -> None:
    _match_known(ctx, spec)
    if spec is USERS:
        _match_people(ctx, "email", "lower(%s.email)", "email", roles=None)
        _match_people(ctx, "student_number", "%s.student_number", "student_number", roles="student")


def _match_known(ctx: LoadContext, spec: EntitySpec) -> None:
    """Matches by external id, resolves parent ids and classifies, in one pass over staging.

    Only records this provider sent before are touched here; one UPDATE writes each of them
    once (entity id, parent ids, action), instead of one pass per step.
    """
    st, target = spec.staging, spec.target
    joins, join_params, picked, assigned = "", [], "", ""
    resolved: dict[str, str] = {}
    for n, ref in enumerate(spec.references):
        joins += (
            f" LEFT JOIN {IDENTITY} p{n} ON p{n}.provider_id = %s AND p{n}.entity_type = %s "
            f"AND p{n}.external_id = s.{ref.column}"
        )
        join_params += [ctx.provider_id, SPECS[ref.entity].type]
        picked += f", p{n}.entity_id AS {ref.id_column}"
        assigned += f", {ref.id_column} = x.{ref.id_column}"
        resolved[ref.id_column] = f"p{n}.entity_id"
    theirs = ", ".join(f"e.{q(c)}" for c in spec.fields)
    ours = ", ".join(resolved.get(c, f"s.{q(c)}") for c in spec.fields)
    execute(
        f"UPDATE {st} SET entity_id = x.entity_id, matched_by = 'external_id', "
        f"action = x.action{assigned} FROM ("
        f"SELECT s.id, m.entity_id{picked}, CASE "
        f"WHEN s.status <> 'active' THEN CASE WHEN e.is_active THEN 'deactivate' ELSE 'ignore' END "
        f"WHEN NOT e.is_active THEN 'reactivate' "
        f"WHEN ({theirs}) IS DISTINCT FROM ({ours}) THEN 'update' ELSE 'unchanged' END AS action "
        f"FROM {st} s JOIN {IDENTITY} m ON m.provider_id = %s AND m.entity_type = %s "
        f"AND m.external_id = s.external_id JOIN {target} e ON e.id = m.entity_id{joins} "
        f"WHERE s.run_id = %s AND NOT s.rejected AND NOT s.skipped) AS x "
        f"WHERE {st}.id = x.id",
        [ctx.provider_id, spec.type, *join_params, ctx.run_id],
    )


def _match_people(ctx: LoadContext, how: str, key: str, column: str, roles: str | None) -> None:
    """Links unmatched staged users to existing people by a unique key (SPEC §3 matching order).

    Only an unambiguous match counts: the key must belong to exactly one person of the tenant
    not yet linked to this provider, and to exactly one unmatched staged user.
    """
    st = USERS.staging
    staged_key = key % "s"
    person_key = key % "p"
    role_s = "AND s.role = %s " if roles else ""
    role_p = "AND p.role = %s " if roles else ""
    role_t = f"AND {st}.role = %s " if roles else ""
    role_params = [roles] if roles else []
    unmatched = (
        f"s.run_id = %s AND s.entity_id IS NULL AND NOT s.rejected AND NOT s.skipped "
        f"AND s.status = 'active' AND s.{column} <> '' {role_s}"
    )
    execute(
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
        f"AND NOT {st}.skipped AND {st}.status = 'active' AND {key % st} = c.k {role_t}",
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


def _classify(ctx: LoadContext, spec: EntitySpec) -> None:
    """Classifies what `_match_known` did not: people linked by email or number, and the new."""
    st, target = spec.staging, spec.target
    live = f"{st}.run_id = %s AND NOT {st}.rejected AND NOT {st}.skipped"
    if spec is USERS:
        execute(
            f"UPDATE {st} SET action = CASE WHEN e.is_active THEN 'update' ELSE 'reactivate' END "
            f"FROM {target} e WHERE {live} AND {st}.status = 'active' "
            f"AND {st}.matched_by <> 'external_id' AND e.id = {st}.entity_id",
            [ctx.run_id],
        )
    if spec is USERS and not ctx.options.create_users:
        execute(
            f"UPDATE {st} SET rejected = TRUE, reason = 'no platform user matches it (by id, "
            "email or student number) and the provider does not create users (createUsers "
            f"is off)' WHERE {live} AND {st}.status = 'active' AND {st}.entity_id IS NULL",
            [ctx.run_id],
        )
    execute(
        f"UPDATE {st} SET action = 'create', matched_by = 'new' "
        f"WHERE {live} AND {st}.status = 'active' AND {st}.entity_id IS NULL",
        [ctx.run_id],
    )
    execute(
        f"UPDATE {st} SET action = 'ignore' "
        f"WHERE {live} AND {st}.status <> 'active' AND {st}.action IS NULL",
        [ctx.run_id],
    )
    if spec is USERS:
        _classify_school_changes(ctx)


def _classify_school_changes(ctx: LoadContext) -> None:
    """A person whose schools (as this provider knows them) differ is updated, not unchanged.

    Listed schools this provider does not know (outside the schoolFilter) do not count; schools
    this run creates do.
    """
    st = USERS.staging
    listed = json_items(f"{st}.school_external_ids")
    execute(
        f"UPDATE {st} SET action = 'update' WHERE {st}.run_id = %s AND {st}.action = 'unchanged' "
        f"AND (EXISTS (SELECT 1 FROM {listed} JOIN {IDENTITY} m ON m.provider_id = %s "
        f"  AND m.entity_type = 'school' AND m.external_id = l.value WHERE NOT EXISTS ("
        f"  SELECT 1 FROM {PERSON_SCHOOL} ps WHERE ps.school_id = m.entity_id "
        f"  AND ps.person_id = {st}.entity_id)) "
        f"OR EXISTS (SELECT 1 FROM {listed} JOIN sis_raw_schools s ON s.run_id = {st}.run_id "
        f"  AND s.external_id = l.value AND s.action = 'create') "
        f"OR EXISTS (SELECT 1 FROM {PERSON_SCHOOL} ps JOIN {IDENTITY} m "
        f"  ON m.entity_id = ps.school_id AND m.provider_id = %s AND m.entity_type = 'school' "
        f"  WHERE ps.person_id = {st}.entity_id "
        f"  AND m.external_id NOT IN (SELECT l.value FROM {listed})))",
        [ctx.run_id, ctx.provider_id, ctx.provider_id],
    )


def _plan_deactivations(ctx: LoadContext) -> None:
    for spec in ORDER:
        if ctx.mode(spec.name) == "full" and ctx.options.deactivate_missing:
            # Whatever this provider gave us before and no longer sends. A record that was sent
            # but rejected is not "gone": its entity stays as it is.
            execute(
                f"INSERT INTO {PLANNED} (run_id, entity_type, entity_id) "
                f"SELECT %s, %s, m.entity_id FROM {IDENTITY} m JOIN {spec.target} e "
                f"ON e.id = m.entity_id WHERE m.provider_id = %s AND m.entity_type = %s "
                f"AND e.is_active AND NOT EXISTS (SELECT 1 FROM {spec.staging} s "
                f"WHERE s.run_id = %s AND s.external_id = m.external_id AND NOT s.skipped) "
                f"AND NOT EXISTS (SELECT 1 FROM {REJECTS} j WHERE j.run_id = %s "
                f"AND j.entity = %s AND j.external_id = m.external_id)",
                [
                    ctx.run_id,
                    spec.type,
                    ctx.provider_id,
                    spec.type,
                    ctx.run_id,
                    ctx.run_id,
                    spec.label,
                ],
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
        for action, count in rows(
            f"SELECT action, count(*) FROM {spec.staging} WHERE run_id = %s "
            "AND action IS NOT NULL GROUP BY action",
            [ctx.run_id],
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
