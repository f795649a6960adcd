"""staging.writer: what a record becomes in staging, on SQLite and on PostgreSQL (binary COPY)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError
from sis_sync.models import SisSyncRun
from staging import writer
from staging.models import STAGING_MODELS, RunReject
from staging.records import (
    ACTIVE,
    DELETED,
    ClassRecord,
    EnrollmentRecord,
    Reject,
    SchoolRecord,
    UserRecord,
)
from staging.writer import COLUMNS, StagingWriter
from tests.factories import ProviderFactory

pytestmark = pytest.mark.django_db

PROVIDER_ID = 7
_runs = itertools.count(10_000)

# Text as staging receives it: anything but NUL (connectors reject or drop it), with the
# characters COPY text format would have to escape, and the spelling of its NULL.
piece = st.sampled_from(["\t", "\n", "\r", "\\", "\\N", "\\t", '"', ",", " ", "é", "😀", "\u2028"])
text = st.lists(piece | st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8).map(
    "".join
)
date = st.none() | st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31))
status = st.sampled_from([ACTIVE, DELETED])
line = st.integers(min_value=0, max_value=2**31 - 1)
raw = st.dictionaries(text, text | st.integers() | st.none(), max_size=4)

schools = st.builds(SchoolRecord, text, status, text, text, text, text, raw, line)
classes = st.builds(
    ClassRecord, *[text] * 2, text, text, text, text, text, text, text, text, date, date,
    text, text, text, raw, line,
)  # fmt: skip
users = st.builds(
    UserRecord, text, status, text, text, text, text, text, text, text, text, st.booleans(),
    st.lists(text, max_size=3).map(tuple), raw, line, text,
)  # fmt: skip
enrollments = st.builds(
    EnrollmentRecord, text, status, text, text, text, text, st.booleans(), date, date, raw, line
)
RECORDS = {"schools": schools, "classes": classes, "users": users, "enrollments": enrollments}


def staged(entity: str, run_id: int) -> list[tuple[Any, ...]]:
    rows = STAGING_MODELS[entity].objects.filter(run_id=run_id).order_by("id")
    return list(rows.values_list(*COLUMNS[entity]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("entity", RECORDS)
def test_staged_values_round_trip_exactly(entity: str, data: st.DataObject) -> None:
    records = data.draw(st.lists(RECORDS[entity], max_size=5))
    run_id = next(_runs)

    StagingWriter(run_id=run_id, provider_id=PROVIDER_ID).write(entity, records)

    assert staged(entity, run_id) == [writer._row(run_id, PROVIDER_ID, r) for r in records]


def test_a_row_holds_the_record_with_its_raw_json() -> None:
    record = EnrollmentRecord(
        "enr-1", ACTIVE, "cls\t1", "", "stu\\1", "student", True,
        dt.date(2025, 8, 25), None, {"sourcedId": "enr-1", "note": "a\nb"}, 12,
    )  # fmt: skip

    StagingWriter(run_id=1, provider_id=PROVIDER_ID).write("enrollments", [record])

    assert staged("enrollments", 1) == [
        (1, PROVIDER_ID, 12, "enr-1", ACTIVE, '{"sourcedId":"enr-1","note":"a\\nb"}',
         "cls\t1", "", "stu\\1", "student", True, dt.date(2025, 8, 25), None),
    ]  # fmt: skip


@pytest.fixture
def run_id() -> int:
    """A real run: rejects refer to it."""
    return SisSyncRun.objects.create(provider=ProviderFactory()).pk


def school(number: int) -> SchoolRecord:
    return SchoolRecord(f"sch-{number}", ACTIVE, f"School {number}", "", "", "", {}, number)


def test_it_stages_in_chunks_and_reports_the_rows_staged_so_far(
    monkeypatch: Any, run_id: int
) -> None:
    monkeypatch.setattr(writer, "CHUNK_ROWS", 2)
    progress: list[tuple[str, int]] = []
    reject = Reject("school", "bad", "orgs.csv line 9: missing name", {}, 9)
    records = [school(1), reject, school(2), school(3), school(4), school(5)]

    written = StagingWriter(
        run_id=run_id, provider_id=PROVIDER_ID, on_progress=lambda e, n: progress.append((e, n))
    ).write("schools", records)

    assert written == 5
    assert [row[3] for row in staged("schools", run_id)] == [f"sch-{n}" for n in range(1, 6)]
    assert progress == [("schools", 2), ("schools", 4), ("schools", 5)]
    assert list(RunReject.objects.values_list("external_id", "line")) == [("bad", 9)]


def test_rejects_piling_up_are_written_between_chunks_in_order(
    monkeypatch: Any, run_id: int
) -> None:
    monkeypatch.setattr(writer, "CHUNK_ROWS", 2)
    rejects = [Reject("school", f"bad-{n}", "why", {"n": str(n)}, n) for n in range(5)]
    records = [rejects[0], rejects[1], school(1), rejects[2], rejects[3], rejects[4], school(2)]
    sis_writer = StagingWriter(run_id=run_id, provider_id=PROVIDER_ID)

    sis_writer.write("schools", records)

    assert [row[3] for row in staged("schools", run_id)] == ["sch-1", "sch-2"]
    assert list(RunReject.objects.values_list("external_id", flat=True)) == [
        f"bad-{n}" for n in range(5)
    ]
    assert sis_writer.counts.rejected == 5


def test_a_source_failing_mid_chunk_keeps_the_chunks_before_and_the_transaction(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(writer, "CHUNK_ROWS", 2)

    def failing() -> Iterator[SchoolRecord]:
        yield from (school(1), school(2), school(3))
        raise ConnectorError("the server went away")

    with transaction.atomic():
        with pytest.raises(ConnectorError):
            StagingWriter(run_id=4, provider_id=PROVIDER_ID).write("schools", failing())
        # Nothing of the failed chunk was sent: the caller's transaction is still usable.
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        assert [row[3] for row in staged("schools", 4)] == ["sch-1", "sch-2"]


def test_copy_types_follow_the_staging_models() -> None:
    assert writer.copy_types("enrollments") == (
        "int8", "int8", "int4", "text", "text", "text", "text", "text", "text", "text",
        "bool", "date", "date",
    )  # fmt: skip
    for entity in RECORDS:
        assert len(writer.copy_types(entity)) == len(COLUMNS[entity])


def test_it_refuses_a_record_of_another_entity_type() -> None:
    with pytest.raises(TypeError, match="users got a SchoolRecord"):
        StagingWriter(run_id=5, provider_id=PROVIDER_ID).write("users", [school(1)])
