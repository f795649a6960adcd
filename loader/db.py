"""The few places where PostgreSQL and SQLite need different SQL, and a thin execute helper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection


def q(name: str) -> str:
    return connection.ops.quote_name(name)


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    """Runs one statement; returns the number of rows it touched."""
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.rowcount


def scalar(sql: str, params: Sequence[Any] = ()) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        row = cursor.fetchone()
    return row[0] if row else None


def rows(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def allocate_ids(staging: str, target: str, run_id: int) -> None:
    """Gives every staging row of the run whose action is 'create' the id its entity will have.

    Ids are taken before the INSERT so the same statement can also write the identity map.
    PostgreSQL draws them from the target's sequence; SQLite (one writer at a time, inside the
    load transaction) counts on from the highest id ever used.
    """
    if is_postgres():
        execute(
            f"UPDATE {staging} SET entity_id = nextval(pg_get_serial_sequence(%s, 'id')) "
            "WHERE run_id = %s AND action = 'create'",
            [target, run_id],
        )
        return
    base = scalar(
        f"SELECT max(m) FROM (SELECT coalesce(max(id), 0) AS m FROM {target} "
        "UNION ALL SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = %s)",
        [target],
    )
    execute(
        f"UPDATE {staging} SET entity_id = %s + r.rn FROM ("
        f"SELECT id, row_number() OVER (ORDER BY id) AS rn FROM {staging} "
        "WHERE run_id = %s AND action = 'create') AS r "
        f"WHERE {staging}.id = r.id",
        [base or 0, run_id],
    )


def json_items(expression: str, alias: str = "l") -> str:
    """A FROM item over the elements of a JSON array of strings, with one column `value`."""
    if is_postgres():
        return f"jsonb_array_elements_text(({expression})::jsonb) AS {alias}(value)"
    return f"json_each({expression}) AS {alias}"


def json_objects(expression: str, alias: str = "r") -> str:
    """A FROM item over the elements of a JSON array of objects; read them with json_key."""
    if is_postgres():
        return f"jsonb_array_elements(({expression})::jsonb) AS {alias}(value)"
    return f"json_each({expression}) AS {alias}"


def json_key(alias: str, key: str) -> str:
    """SQL: the text under `key` of the current element of a json_objects item."""
    if is_postgres():
        return f"({alias}.value ->> '{key}')"
    return f"json_extract({alias}.value, '$.{key}')"


def db_now(value: Any) -> Any:
    """A datetime as this database's driver wants it in a raw query."""
    return connection.ops.adapt_datetimefield_value(value)


def analyze(tables: Sequence[str]) -> None:
    """Fresh statistics before the big joins (PostgreSQL plans them from these)."""
    if is_postgres():
        for table in tables:
            execute(f"ANALYZE {table}")


def tune_transaction() -> None:
    """Settings for the load transaction's few large statements (PostgreSQL; until it ends).

    JIT compiling cost up to a second per statement and saved nothing on these joins; the
    default 4 MB of work_mem made the hash joins over a district's enrollments spill to disk.
    """
    if is_postgres():
        execute("SET LOCAL jit = off")
        execute("SET LOCAL work_mem = '64MB'")


def check_constraints_now() -> None:
    """Checks the roster's deferred foreign keys as each statement ends, not all at COMMIT.

    The work is the same, but it is done while the load runs, so the COMMIT (and any lock
    taken just before it, such as staging clean-up) is short.
    """
    if is_postgres():
        execute("SET CONSTRAINTS ALL IMMEDIATE")
