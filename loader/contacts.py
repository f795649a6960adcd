"""A contact's links to students (Clever's `student_relationships`), set-based.

Staged users carry their links as a JSON array (`student_relationships`, "[]" for everyone
but contacts). As with a person's schools (see planner._school_sets and
applier._replace_schools), only the links to students this provider knows are its business:
- planning: a known contact whose links differ from the source's is an update, even when
  none of its fields changed (`changed_links`);
- applying: each written contact's links to the provider's students are replaced by the
  source's (`replace_links`).
A run without a single link staged, for a provider none of whose people has links, pays
one indexed look-up and nothing else (`in_play`).
"""

from __future__ import annotations

from loader.context import LoadContext
from loader.db import execute, json_key, json_objects, scalar
from loader.entities import CONTACTS, IDENTITY, USERS

LINKED = "student_relationships <> '[]'"


def in_play(ctx: LoadContext) -> bool:
    """Whether this run stages any link, or this provider's people have any."""
    st = USERS.staging
    return bool(
        scalar(f"SELECT 1 FROM {st} WHERE run_id = %s AND {LINKED} LIMIT 1", [ctx.run_id])
        or scalar(
            f"SELECT 1 FROM {CONTACTS} c JOIN {IDENTITY} m ON m.entity_id = c.contact_id "
            f"AND m.provider_id = %s AND m.entity_type = 'user' LIMIT 1",
            [ctx.provider_id],
        )
    )


def changed_links(ctx: LoadContext) -> tuple[str, list[object], str]:
    """Joins for planner._match_known (staged row `s`, its identity `m`), their parameters,
    and the SQL condition "this contact's links differ from the source's".

    `ls.listed`: the staged links to students the provider knows; `ls.common`: how many of
    those the contact has, with the same relationship and type; `ls.created`: a link to a
    student this run brings in; `pl.linked`: the contact's links to the provider's students.
    The sets are equal when listed = common = linked and nothing is created.
    """
    st = USERS.staging
    student = json_key("r", "student")
    joins = (
        f" LEFT JOIN (SELECT u.id, count(DISTINCT k.entity_id) AS listed, "
        f"count(DISTINCT c.student_id) AS common, "
        f"max(CASE WHEN n.id IS NOT NULL AND k.entity_id IS NULL THEN 1 ELSE 0 END) AS created "
        f"FROM {st} u JOIN {IDENTITY} um ON um.provider_id = %s AND um.entity_type = 'user' "
        f"AND um.external_id = u.external_id "
        f"CROSS JOIN {json_objects('u.student_relationships')} "
        f"LEFT JOIN {IDENTITY} k ON k.provider_id = %s AND k.entity_type = 'user' "
        f"AND k.external_id = {student} "
        f"LEFT JOIN {CONTACTS} c ON c.contact_id = um.entity_id AND c.student_id = k.entity_id "
        f"AND c.relationship = {json_key('r', 'relationship')} "
        f"AND c.type = {json_key('r', 'type')} "
        # A student unknown to the provider that this run brings in (created or matched).
        f"LEFT JOIN {st} n ON n.run_id = u.run_id AND n.external_id = {student} "
        f"AND n.status = 'active' AND NOT n.rejected AND NOT n.skipped "
        f"WHERE u.run_id = %s AND u.{LINKED} GROUP BY u.id) AS ls ON ls.id = s.id"
        f" LEFT JOIN (SELECT x.contact_id, count(*) AS linked "
        f"FROM {CONTACTS} x JOIN {IDENTITY} k ON k.provider_id = %s "
        f"AND k.entity_type = 'user' AND k.entity_id = x.student_id "
        f"GROUP BY x.contact_id) AS pl ON pl.contact_id = m.entity_id"
    )
    changed = (
        " OR coalesce(ls.created, 0) = 1 OR coalesce(ls.listed, 0) <> coalesce(ls.common, 0)"
        " OR coalesce(ls.listed, 0) <> coalesce(pl.linked, 0)"
    )
    return joins, [ctx.provider_id, ctx.provider_id, ctx.run_id, ctx.provider_id], changed


def replace_links(ctx: LoadContext, actions: tuple[str, ...]) -> None:
    """Sets each written contact's links to the provider's students to the source's.

    `actions`: the staging rows' actions to look at (people are found through the identity
    map, which by now holds every written user, students created in this run included).
    """
    st = USERS.staging
    changed = "(" + ", ".join(f"'{a}'" for a in actions) + ")"
    person = (
        f"JOIN {IDENTITY} um ON um.provider_id = %s AND um.entity_type = 'user' "
        f"AND um.external_id = u.external_id"
    )
    execute(
        f"DELETE FROM {CONTACTS} WHERE id IN ("
        f"SELECT c.id FROM {st} u {person} JOIN {CONTACTS} c ON c.contact_id = um.entity_id "
        f"JOIN {IDENTITY} k ON k.entity_id = c.student_id AND k.provider_id = %s "
        f"AND k.entity_type = 'user' WHERE u.run_id = %s AND u.action IN {changed})",
        [ctx.provider_id, ctx.provider_id, ctx.run_id],
    )
    execute(
        f"INSERT INTO {CONTACTS} (contact_id, student_id, relationship, type) "
        f"SELECT DISTINCT um.entity_id, k.entity_id, {json_key('r', 'relationship')}, "
        f"{json_key('r', 'type')} FROM {st} u {person} "
        f"CROSS JOIN {json_objects('u.student_relationships')} "
        f"JOIN {IDENTITY} k ON k.provider_id = %s AND k.entity_type = 'user' "
        f"AND k.external_id = {json_key('r', 'student')} "
        f"WHERE u.run_id = %s AND u.action IN {changed} AND u.{LINKED}",
        [ctx.provider_id, ctx.provider_id, ctx.run_id],
    )
