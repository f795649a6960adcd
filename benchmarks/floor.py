"""The floor: what the same load costs written by hand, with nothing but COPY and set-based SQL.

On the same data, server and database as our sync, in its own schema:

1. COPY each raw CSV file, as raw blocks the server parses (`copy.write`), into an UNLOGGED
   all-text table without indexes, then ANALYZE them (one transaction);
2. in one transaction: `INSERT … SELECT DISTINCT ON (source id) … ON CONFLICT (provider_id,
   source_id) DO UPDATE … WHERE (…) IS DISTINCT FROM (…)` into schools, classes (joined to
   courses and terms), persons and enrollments (joined to their class and person); the
   person-school links (insert the missing, delete the stale); and the full-sync soft delete
   (an anti-join UPDATE per entity type);
3. TRUNCATE the raw tables (our sync deletes its staging rows too).

The targets are shaped like ours (same columns, bigserial keys, the same lookup indexes, each
index once, and the same foreign keys: only a class's school) but all carry the source id
themselves, unique per provider, where ours keep it in a separate identity map for schools,
classes and people (enrollments carry theirs, like the floor's). What the floor leaves out:
the raw JSON of every record, rejects with reasons, matching by e-mail or student number,
safety holds, run bookkeeping, and the cascade of a deactivated person to their enrollments.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

SCHEMA = "bench_floor"
BLOCK = 1 << 20
RAW = {  # CSV file -> raw table
    "orgs": "raw_orgs",
    "academicSessions": "raw_sessions",
    "courses": "raw_courses",
    "classes": "raw_classes",
    "users": "raw_users",
    "enrollments": "raw_enrollments",
}
TARGETS = ("school", "classroom", "person", "person_school", "enrollment")

_ENTITY = """
    id bigserial PRIMARY KEY, tenant_id bigint NOT NULL, provider_id bigint NOT NULL,
    source_id text NOT NULL, {columns}, is_active boolean NOT NULL,
    deactivated_at timestamptz, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    UNIQUE (provider_id, source_id)
"""
TARGET_DDL = {
    "school": _ENTITY.format(
        columns="name text NOT NULL, school_number text NOT NULL, low_grade text NOT NULL, "
        "high_grade text NOT NULL"
    ),
    "classroom": _ENTITY.format(
        columns="school_id bigint NOT NULL REFERENCES {s}.school, title text NOT NULL, "
        "class_code text NOT NULL, class_type text NOT NULL, location text NOT NULL, "
        "course_title text NOT NULL, course_code text NOT NULL, term_name text NOT NULL, "
        "term_start date, term_end date, subjects text NOT NULL, grades text NOT NULL, "
        "periods text NOT NULL"
    ),
    "person": _ENTITY.format(
        columns="role text NOT NULL, given_name text NOT NULL, middle_name text NOT NULL, "
        "family_name text NOT NULL, email text NOT NULL, username text NOT NULL, "
        "student_number text NOT NULL, grades text NOT NULL, enabled boolean NOT NULL"
    ),
    # Like ours (sis_sync.models.roster): no foreign keys on the bulk tables.
    "person_school": "id bigserial PRIMARY KEY, person_id bigint NOT NULL, "
    "school_id bigint NOT NULL, UNIQUE (person_id, school_id)",
    "enrollment": _ENTITY.format(
        columns="classroom_id bigint NOT NULL, person_id bigint NOT NULL, role text NOT NULL, "
        '"primary" boolean NOT NULL, begin_date date, end_date date'
    ),
}
INDEXES = (
    "school (tenant_id)",
    "classroom (tenant_id)",
    "classroom (school_id)",
    "person (tenant_id)",
    "person (lower(email), tenant_id)",
    "person (tenant_id, student_number)",
    "person_school (school_id)",
    "enrollment (tenant_id)",
    "enrollment (person_id)",
    "enrollment (classroom_id)",
)

# (target, columns written, SELECT producing them, columns compared to decide "changed")
UPSERTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "school",
        "name, school_number, low_grade, high_grade",
        "SELECT DISTINCT ON (o.sourcedid) o.sourcedid, o.name, coalesce(o.identifier, ''), '', '' "
        "FROM {s}.raw_orgs o WHERE lower(o.type) = 'school' ORDER BY o.sourcedid",
        "name, school_number, low_grade, high_grade",
    ),
    (
        "classroom",
        "school_id, title, class_code, class_type, location, course_title, course_code, "
        "term_name, term_start, term_end, subjects, grades, periods",
        "SELECT DISTINCT ON (c.sourcedid) c.sourcedid, s.id, c.title, coalesce(c.classcode, ''), "
        "lower(coalesce(c.classtype, '')), coalesce(c.location, ''), coalesce(co.title, ''), "
        "coalesce(co.coursecode, ''), coalesce(tm.term_name, ''), tm.term_start, tm.term_end, "
        "coalesce(c.subjects, ''), coalesce(c.grades, ''), coalesce(c.periods, '') "
        "FROM {s}.raw_classes c "
        "JOIN {s}.school s ON s.provider_id = 1 AND s.source_id = c.schoolsourcedid "
        "LEFT JOIN {s}.raw_courses co ON co.sourcedid = c.coursesourcedid "
        "LEFT JOIN LATERAL (SELECT string_agg(se.title, ', ' ORDER BY t.n) AS term_name, "
        "  min(se.startdate::date) AS term_start, max(se.enddate::date) AS term_end "
        "  FROM unnest(string_to_array(c.termsourcedids, ',')) WITH ORDINALITY AS t(id, n) "
        "  JOIN {s}.raw_sessions se ON se.sourcedid = btrim(t.id)) AS tm ON TRUE "
        "ORDER BY c.sourcedid",
        "school_id, title, class_code, class_type, location, course_title, course_code, "
        "term_name, term_start, term_end, subjects, grades, periods",
    ),
    (
        "person",
        "role, given_name, middle_name, family_name, email, username, student_number, grades, "
        "enabled",
        "SELECT DISTINCT ON (u.sourcedid) u.sourcedid, lower(u.role), u.givenname, "
        "coalesce(u.middlename, ''), u.familyname, coalesce(u.email, ''), "
        "coalesce(u.username, ''), coalesce(u.identifier, ''), coalesce(u.grades, ''), "
        "coalesce(lower(u.enableduser) NOT IN ('false', '0', 'no'), TRUE) "
        "FROM {s}.raw_users u WHERE lower(u.role) IN ('student', 'teacher', 'administrator') "
        "ORDER BY u.sourcedid",
        "role, given_name, middle_name, family_name, email, username, student_number, grades, "
        "enabled",
    ),
    (
        "enrollment",
        'classroom_id, person_id, role, "primary", begin_date, end_date',
        "SELECT DISTINCT ON (e.sourcedid) e.sourcedid, c.id, p.id, lower(e.role), "
        "coalesce(lower(e.\"primary\") = 'true', FALSE), e.begindate::date, e.enddate::date "
        "FROM {s}.raw_enrollments e "
        "JOIN {s}.classroom c ON c.provider_id = 1 AND c.source_id = e.classsourcedid "
        "JOIN {s}.person p ON p.provider_id = 1 AND p.source_id = e.usersourcedid "
        "ORDER BY e.sourcedid",
        'classroom_id, person_id, role, "primary", begin_date, end_date',
    ),
)
LINKS = (
    "INSERT INTO {s}.link_stage (person_id, school_id) SELECT DISTINCT p.id, s.id "
    "FROM {s}.raw_users u CROSS JOIN unnest(string_to_array(u.orgsourcedids, ',')) AS o(id) "
    "JOIN {s}.person p ON p.provider_id = 1 AND p.source_id = u.sourcedid "
    "JOIN {s}.school s ON s.provider_id = 1 AND s.source_id = btrim(o.id)",
    "INSERT INTO {s}.person_school (person_id, school_id) "
    "SELECT person_id, school_id FROM {s}.link_stage ON CONFLICT DO NOTHING",
    "DELETE FROM {s}.person_school ps USING {s}.person p WHERE p.id = ps.person_id "
    "AND p.provider_id = 1 AND NOT EXISTS (SELECT 1 FROM {s}.link_stage l "
    "WHERE l.person_id = ps.person_id AND l.school_id = ps.school_id)",
)
SOFT_DELETES = (("school", "raw_orgs"), ("classroom", "raw_classes"), ("person", "raw_users"))
SOFT_DELETES += (("enrollment", "raw_enrollments"),)


def _q(template: str) -> str:
    return template.replace("{s}", SCHEMA)


def _upsert_sql(target: str, columns: str, select: str, compared: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in names)
    ours = ", ".join(f"t.{c.strip()}" for c in compared.split(","))
    theirs = ", ".join(f"EXCLUDED.{c.strip()}" for c in compared.split(","))
    return _q(
        f"INSERT INTO {{s}}.{target} AS t (tenant_id, provider_id, source_id, {columns}, "
        "is_active, deactivated_at, created_at, updated_at) "
        f"SELECT 1, 1, d.*, TRUE, NULL::timestamptz, now(), now() FROM ({select}) AS d "
        f"ON CONFLICT (provider_id, source_id) DO UPDATE SET {assignments}, is_active = TRUE, "
        "deactivated_at = NULL, updated_at = EXCLUDED.updated_at "
        f"WHERE ({ours}, t.is_active) IS DISTINCT FROM ({theirs}, TRUE)"
    )


def floor_create(conn: psycopg.Connection, bundle: Path) -> None:
    """The schema, the raw tables (columns as in each file's header) and the targets."""
    conn.execute(_q("DROP SCHEMA IF EXISTS {s} CASCADE"))
    conn.execute(_q("CREATE SCHEMA {s}"))
    for name, table in RAW.items():
        with (bundle / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        columns = sql.SQL(", ").join(
            sql.SQL("{} text").format(sql.Identifier(h.strip().lower())) for h in header
        )
        conn.execute(
            sql.SQL("CREATE UNLOGGED TABLE {}.{} ({}) WITH (autovacuum_enabled = false)").format(
                sql.Identifier(SCHEMA), sql.Identifier(table), columns
            )
        )
    conn.execute(_q("CREATE UNLOGGED TABLE {s}.link_stage (person_id bigint, school_id bigint)"))
    for table in TARGETS:
        conn.execute(_q(f"CREATE TABLE {{s}}.{table} ({TARGET_DDL[table]})"))
    for index in INDEXES:
        conn.execute(_q(f"CREATE INDEX ON {{s}}.{index}"))
    conn.commit()


def floor_load(conn: psycopg.Connection, bundle: Path) -> dict[str, Any]:
    """One full load of the bundle by the floor's statements; seconds per step, rows written."""
    started = time.perf_counter()
    with conn.cursor() as cursor:
        for name, table in RAW.items():
            copy_sql = _q(f"COPY {{s}}.{table} FROM STDIN (FORMAT csv, HEADER true)")
            with (bundle / f"{name}.csv").open("rb") as handle, cursor.copy(copy_sql) as copy:
                while block := handle.read(BLOCK):
                    copy.write(block)
        for table in RAW.values():
            cursor.execute(_q(f"ANALYZE {{s}}.{table}"))
    conn.commit()
    copied = time.perf_counter()
    written: dict[str, int] = {}
    with conn.cursor() as cursor:
        for target, columns, select, compared in UPSERTS:
            cursor.execute(_upsert_sql(target, columns, select, compared))
            written[target] = cursor.rowcount
            if target == "person":
                cursor.execute(_q(LINKS[0]))
                cursor.execute(_q("ANALYZE {s}.link_stage"))
                written["person_school"] = 0
                for statement in LINKS[1:]:
                    cursor.execute(_q(statement))
                    written["person_school"] += cursor.rowcount
        for target, raw in SOFT_DELETES:
            cursor.execute(
                _q(
                    f"UPDATE {{s}}.{target} t SET is_active = FALSE, deactivated_at = now(), "
                    f"updated_at = now() WHERE t.provider_id = 1 AND t.is_active AND NOT EXISTS "
                    f"(SELECT 1 FROM {{s}}.{raw} r WHERE r.sourcedid = t.source_id)"
                )
            )
            written[f"{target} deactivated"] = cursor.rowcount
    conn.commit()
    loaded = time.perf_counter()
    with conn.cursor() as cursor:
        cursor.execute(
            _q(f"TRUNCATE {', '.join('{s}.' + t for t in (*RAW.values(), 'link_stage'))}")
        )
    conn.commit()
    finished = time.perf_counter()
    return {
        "seconds": round(finished - started, 3),
        "copySeconds": round(copied - started, 3),
        "loadSeconds": round(loaded - copied, 3),
        "cleanupSeconds": round(finished - loaded, 3),
        "rowsWritten": written,
    }


def floor_measure(url: str, bundle: Path, *, again: bool = True) -> dict[str, Any]:
    """The floor's first full load and (with `again`) its no-change re-load, then its size."""
    loads: dict[str, Any] = {}
    with psycopg.connect(url) as conn:
        floor_create(conn, bundle)
        loads["first"] = floor_load(conn, bundle)
        if again:
            loads["noChange"] = floor_load(conn, bundle)
        size = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            [SCHEMA],
        ).fetchone()[0]
        conn.execute(_q("DROP SCHEMA {s} CASCADE"))
        conn.commit()
    return {**loads, "targetBytes": size}
