"""Validation of staged records: duplicates, filters, broken references.

A record that fails is marked `rejected` with a `reason` (copied to the run's rejects at the end
of planning); a record outside the provider's schoolFilter / roles is marked `skipped`. Both are
set-based UPDATEs over the run's staging rows. The planner calls it per entity type in
dependency order (schools, classes, users, enrollments), each type after its parents are fully
planned, so a child of a rejected parent is rejected too.
"""

from __future__ import annotations

from loader.context import LoadContext
from loader.db import execute, json_items, q
from loader.entities import SPECS, EntitySpec

LIVE = "NOT {t}.rejected AND NOT {t}.skipped"
_NAMES = {"external_id": "sourcedId"}


def validate(ctx: LoadContext, spec: EntitySpec) -> None:
    """Validates one entity type; its parents' types must have been planned already."""
    _reject_duplicates(ctx, spec)
    _reject_overlong(ctx, spec)
    _skip_filtered(ctx, spec)
    for ref in spec.references:
        _reject_dangling(ctx, spec, ref.column, SPECS[ref.entity])
    if spec.name == "users":
        _reject_dangling_schools(ctx)


def _reject_duplicates(ctx: LoadContext, spec: EntitySpec) -> None:
    st = spec.staging
    execute(
        f"UPDATE {st} SET rejected = TRUE, "
        "reason = 'duplicate sourcedId: it appears more than once; the first one is kept' "
        f"WHERE run_id = %s AND NOT rejected AND id IN ("
        f"SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY external_id ORDER BY id) "
        f"AS rn FROM {st} WHERE run_id = %s AND external_id IN ("
        # Only the repeated ids are ranked: one hash aggregate instead of sorting every row.
        f"SELECT external_id FROM {st} WHERE run_id = %s GROUP BY external_id "
        f"HAVING count(*) > 1)) AS d WHERE d.rn > 1)",
        [ctx.run_id, ctx.run_id, ctx.run_id],
    )


def _reject_overlong(ctx: LoadContext, spec: EntitySpec) -> None:
    """A value longer than its roster column would fail the whole load: reject its row."""
    limits = [("external_id", 255)]  # the identity map's limit
    limits += [(column, n) for column, n in spec.max_lengths.items() if column in spec.fields]
    st = spec.staging
    too_long = " OR ".join(f"length({st}.{q(c)}) > {n}" for c, n in limits)
    reason = " ".join(
        f"WHEN length({st}.{q(c)}) > {n} THEN '{_NAMES.get(c, c)} is longer than {n} characters'"
        for c, n in limits
    )
    execute(
        f"UPDATE {st} SET rejected = TRUE, reason = CASE {reason} END "
        f"WHERE run_id = %s AND NOT rejected AND ({too_long})",
        [ctx.run_id],
    )


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(["%s"] * len(values))


def _skip_filtered(ctx: LoadContext, spec: EntitySpec) -> None:
    st = spec.staging
    conditions: list[tuple[str, list[object]]] = []
    schools = ctx.options.school_filter
    roles = ctx.options.roles
    if schools:
        marks = _in_list(schools)
        if spec.name == "schools":
            conditions.append((f"external_id NOT IN ({marks})", list(schools)))
        elif spec.name == "classes":
            conditions.append((f"school_external_id NOT IN ({marks})", list(schools)))
        elif spec.name == "users":
            conditions.append(
                (
                    f"NOT EXISTS (SELECT 1 FROM {json_items(st + '.school_external_ids')} "
                    f"WHERE l.value IN ({marks}))",
                    list(schools),
                )
            )
        else:
            conditions.append(
                (f"school_external_id <> '' AND school_external_id NOT IN ({marks})", list(schools))
            )
    if roles and spec.name in ("users", "enrollments"):
        conditions.append((f"role NOT IN ({_in_list(roles)})", list(roles)))
    if spec.name == "enrollments":
        # Memberships of skipped classes and people are out of scope too.
        conditions.append(
            (
                f"EXISTS (SELECT 1 FROM sis_raw_classes c WHERE c.run_id = {st}.run_id "
                f"AND c.external_id = {st}.class_external_id AND c.skipped) "
                f"OR EXISTS (SELECT 1 FROM sis_raw_users u WHERE u.run_id = {st}.run_id "
                f"AND u.external_id = {st}.user_external_id AND u.skipped)",
                [],
            )
        )
    for condition, params in conditions:
        execute(
            f"UPDATE {st} SET skipped = TRUE WHERE run_id = %s AND NOT skipped AND ({condition})",
            [ctx.run_id, *params],
        )


def _parent_checks(ctx: LoadContext, parent: EntitySpec, ref: str) -> tuple[str, str, list[object]]:
    """SQL for 'the parent `ref` points at is usable' and for the reason when it is not.

    A parent outside the schoolFilter is usable: its children are skipped by the filter
    (classes, enrollments), or keep only their links within it (a teacher at two schools).
    """
    pst = parent.staging
    staged_ok = (
        f"EXISTS (SELECT 1 FROM {pst} p WHERE p.run_id = %s AND p.external_id = {ref} "
        "AND NOT p.rejected AND p.status = 'active')"
    )
    params: list[object] = [ctx.run_id]
    if ctx.mode(parent.name) == "full":
        valid = staged_ok
        missing = "is not in the source data"
    else:
        valid = (
            f"({staged_ok} OR (EXISTS (SELECT 1 FROM {parent.identities} m "
            "WHERE m.provider_id = %s "
            f"AND m.entity_type = %s AND m.external_id = {ref}) "
            f"AND NOT EXISTS (SELECT 1 FROM {pst} p WHERE p.run_id = %s "
            f"AND p.external_id = {ref} AND p.status <> 'active')))"
        )
        params += [ctx.provider_id, parent.type, ctx.run_id]
        missing = "is neither in the source data nor known from an earlier sync"
    reason = (
        f"'{parent.label} \"' || {ref} || '\" ' || CASE "
        f"WHEN EXISTS (SELECT 1 FROM {pst} p WHERE p.run_id = %s AND p.external_id = {ref} "
        "AND p.rejected) THEN 'was rejected' "
        f"WHEN EXISTS (SELECT 1 FROM {pst} p WHERE p.run_id = %s AND p.external_id = {ref} "
        "AND p.status <> 'active') THEN 'is marked deleted' "
        f"ELSE '{missing}' END"
    )
    return valid, reason, params


def _reject_dangling(ctx: LoadContext, spec: EntitySpec, column: str, parent: EntitySpec) -> None:
    st = spec.staging
    ref = f"{st}.{q(column)}"
    valid, reason, params = _parent_checks(ctx, parent, ref)
    execute(
        f"UPDATE {st} SET rejected = TRUE, reason = {reason} "
        f"WHERE run_id = %s AND {LIVE.format(t=st)} AND status = 'active' AND NOT {valid}",
        [ctx.run_id, ctx.run_id, ctx.run_id, *params],
    )


def _reject_dangling_schools(ctx: LoadContext) -> None:
    """A user's schools (a JSON list) must each be usable, like any other reference."""
    st = "sis_raw_users"
    valid, reason, params = _parent_checks(ctx, SPECS["schools"], "l.value")
    schools = json_items(f"{st}.school_external_ids")
    execute(
        f"UPDATE {st} SET rejected = TRUE, reason = ("
        f"SELECT {reason} FROM {schools} WHERE NOT {valid} ORDER BY l.value LIMIT 1) "
        f"WHERE run_id = %s AND {LIVE.format(t=st)} AND status = 'active' "
        f"AND EXISTS (SELECT 1 FROM {schools} WHERE NOT {valid})",
        [ctx.run_id, ctx.run_id, *params, ctx.run_id, *params],
    )
