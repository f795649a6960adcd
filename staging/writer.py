"""Writes a run's records into the staging tables, in bulk, streaming.

PostgreSQL gets binary COPY (psycopg 3 `cursor.copy`, the column types taken from the staging
models), SQLite batched `executemany`. Records arrive as an iterator and leave in chunks of
CHUNK_ROWS, each chunk committed on its own (the writer runs outside any transaction), so memory
stays flat whatever the size of the source.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.db import OperationalError, connection, transaction

from staging.models import STAGING_MODELS, RunReject
from staging.rawjson import raw_json
from staging.records import (
    ClassRecord,
    EnrollmentRecord,
    Reject,
    SchoolRecord,
    UserRecord,
)

CHUNK_ROWS = 5000

ProgressCallback = Callable[[str, int], None]

_COMMON = ("run_id", "provider_id", "line", "external_id", "status", "raw")
COLUMNS: dict[str, tuple[str, ...]] = {
    "schools": _COMMON + ("name", "school_number", "low_grade", "high_grade"),
    "classes": _COMMON
    + (
        "title",
        "school_external_id",
        "class_code",
        "class_type",
        "location",
        "course_title",
        "course_code",
        "term_name",
        "term_start",
        "term_end",
        "subjects",
        "grades",
        "periods",
    ),
    "users": _COMMON
    + (
        "role",
        "given_name",
        "middle_name",
        "family_name",
        "email",
        "username",
        "student_number",
        "grades",
        "enabled",
        "school_external_ids",
        "previous_external_id",
        "sis_id",
        "state_id",
        "teacher_number",
        "student_relationships",
    ),
    "enrollments": _COMMON
    + (
        "class_external_id",
        "school_external_id",
        "user_external_id",
        "role",
        "primary",
        "begin_date",
        "end_date",
    ),
}
TABLES = {
    "schools": "sis_raw_schools",
    "classes": "sis_raw_classes",
    "users": "sis_raw_users",
    "enrollments": "sis_raw_enrollments",
}


def _relationships(links: tuple[tuple[str, str, str], ...]) -> str:
    if not links:
        return "[]"  # the loader skips the rows holding exactly this
    return json.dumps(
        [{"student": s, "relationship": r, "type": t} for s, r, t in links],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _row(run_id: int, provider_id: int, record: Any) -> tuple[Any, ...]:
    """The staging row of a record: the common columns, then the record's own fields in order."""
    head = (
        run_id,
        provider_id,
        record.line,
        record.external_id,
        record.status,
        raw_json(record.raw),
    )
    if isinstance(record, SchoolRecord):
        return head + record[2:6]
    if isinstance(record, ClassRecord):
        return head + record[2:15]
    if isinstance(record, UserRecord):
        return (
            head
            + record[2:11]
            + (
                json.dumps(list(record.school_external_ids)),
                record.previous_external_id,
                record.sis_id,
                record.state_id,
                record.teacher_number,
                _relationships(record.student_relationships),
            )
        )
    if isinstance(record, EnrollmentRecord):
        return head + record[2:9]
    raise TypeError(f"not a staging record: {type(record).__name__}")


# Binary COPY sends each value in its column's own format: the types come from the models.
_COPY_TYPES = {
    "BigIntegerField": "int8",
    "IntegerField": "int4",
    "TextField": "text",
    "CharField": "text",  # varchar takes text's binary format (its length is still checked)
    "BooleanField": "bool",
    "DateField": "date",
}


@cache
def copy_types(entity: str) -> tuple[str, ...]:
    """The PostgreSQL type of each of COLUMNS[entity], for binary COPY."""
    model = STAGING_MODELS[entity]
    return tuple(
        _COPY_TYPES[model._meta.get_field(column).get_internal_type()] for column in COLUMNS[entity]
    )


_EXPECTED = {
    "schools": SchoolRecord,
    "classes": ClassRecord,
    "users": UserRecord,
    "enrollments": EnrollmentRecord,
}


@dataclass
class StageCounts:
    staged: int = 0
    rejected: int = 0
    by_entity: dict[str, int] = field(default_factory=dict)


class StagingWriter:
    """Stages one run's records. `write` may be called once per entity type, in any order."""

    def __init__(
        self, *, run_id: int, provider_id: int, on_progress: ProgressCallback | None = None
    ) -> None:
        self.run_id = run_id
        self.provider_id = provider_id
        self.on_progress = on_progress
        self.counts = StageCounts()
        self._postgres = connection.vendor == "postgresql"

    def write(self, entity: str, records: Iterable[Any]) -> int:
        expected = _EXPECTED[entity]
        rows: list[tuple[Any, ...]] = []
        rejects: list[Reject] = []
        written = 0
        for record in records:
            if isinstance(record, Reject):
                rejects.append(record)
                if len(rejects) >= CHUNK_ROWS:
                    self._write_rejects(rejects)
                    rejects = []
                continue
            if not isinstance(record, expected):
                raise TypeError(f"{entity} got a {type(record).__name__}")
            rows.append(_row(self.run_id, self.provider_id, record))
            if len(rows) >= CHUNK_ROWS:
                written += self._flush(entity, rows, written)
                rows = []
        written += self._flush(entity, rows, written)
        self._write_rejects(rejects)
        self.counts.staged += written
        self.counts.by_entity[entity] = self.counts.by_entity.get(entity, 0) + written
        return written

    def _flush(self, entity: str, rows: list[tuple[Any, ...]], written: int) -> int:
        if rows:
            self._insert(entity, rows)
        if rows and self.on_progress:
            self.on_progress(entity, self.counts.by_entity.get(entity, 0) + written + len(rows))
        return len(rows)

    def _insert(self, entity: str, rows: list[tuple[Any, ...]]) -> None:
        # A chunk is built before it is sent: while `records` is iterated the connection stays
        # free (a source may use it, as a cancel does in the tests; a COPY in progress would
        # leave it waiting for ever).
        table, columns = TABLES[entity], COLUMNS[entity]
        quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
        with connection.cursor() as cursor:
            if self._postgres:
                statement = f"COPY {table} ({quoted}) FROM STDIN (FORMAT BINARY)"
                with cursor.cursor.copy(statement) as copy:
                    copy.set_types(copy_types(entity))
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", rows)

    def _write_rejects(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        RunReject.objects.bulk_create(
            [
                RunReject(
                    run_id=self.run_id,
                    entity=r.entity,
                    external_id=r.external_id[:255],
                    reason=r.reason,
                    raw=raw_json(r.raw),
                    line=r.line,
                )
                for r in rejects
            ],
            batch_size=1000,
        )
        self.counts.rejected += len(rejects)


def discard_run(run_id: int) -> None:
    """Removes a run's staging rows (its rejects stay: they are part of the run's report).

    On PostgreSQL a table holding no other run's rows is emptied with TRUNCATE: DELETE would
    leave every row (and every version the loader's UPDATEs made) behind as dead tuples, which
    the next run's scans wade through until autovacuum gets there.
    """
    with connection.cursor() as cursor:
        for table in TABLES.values():
            if connection.vendor == "postgresql" and _truncate_if_alone(cursor, table, run_id):
                continue
            cursor.execute(f"DELETE FROM {table} WHERE run_id = %s", [run_id])


def _truncate_if_alone(cursor: Any, table: str, run_id: int) -> bool:
    """TRUNCATEs `table` if no other run has rows in it (a held run, another provider's run).

    The lock is taken without waiting: another run writing or reading the table now means
    it has rows there, and the caller falls back to DELETE. When the table is not ours alone
    the savepoint is rolled back, which gives the lock up at once.
    """
    try:
        with transaction.atomic():
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE NOWAIT")
            cursor.execute(f"SELECT 1 FROM {table} WHERE run_id <> %s LIMIT 1", [run_id])
            if cursor.fetchone() is not None:
                transaction.set_rollback(True)
                return False
            cursor.execute(f"TRUNCATE {table}")
            return True
    except OperationalError:  # the lock is taken: someone else is using the table
        return False
