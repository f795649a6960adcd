"""What only PostgreSQL does: COPY into UNLOGGED staging, identity sequences for created ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from sis_sync.models import Person, RunStatus
from tests.sync_helpers import sync

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_it_keeps_staging_tables_unlogged() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relpersistence FROM pg_class WHERE relname LIKE 'sis_raw_%%' "
            "AND relkind = 'r'"
        )
        persistence = dict(cursor.fetchall())
    assert persistence == {
        "sis_raw_schools": "u",
        "sis_raw_classes": "u",
        "sis_raw_users": "u",
        "sis_raw_enrollments": "u",
    }


def test_it_creates_people_whose_ids_the_sequence_knows(sample_bundle: Path) -> None:
    run = sync(sample_bundle)
    assert run.status == RunStatus.SUCCESS

    later = Person.objects.create(
        tenant_id=Person.objects.first().tenant_id, role="student", given_name="A", family_name="B"
    )

    assert later.pk > Person.objects.exclude(pk=later.pk).order_by("-pk").first().pk


@pytest.mark.django_db(transaction=True)
def test_it_rolls_back_a_real_transaction_when_the_load_fails(
    tmp_path: Path, sample_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loader.applier
    from sis_sync.models import Enrollment
    from tests import bundles

    district = bundles.copy(sample_bundle, tmp_path / "d")
    sync(district)
    bundles.drop_users(district, {s["sourcedId"] for s in bundles.students(district)[:5]})
    before = (Person.objects.filter(is_active=True).count(), Enrollment.objects.count())

    def fail_after_every_write(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("connection lost")

    # The last step of the apply, after the deactivations were written.
    monkeypatch.setattr(loader.applier, "check_references", fail_after_every_write)
    run = sync(district)

    assert run.status == RunStatus.FAILURE
    assert (Person.objects.filter(is_active=True).count(), Enrollment.objects.count()) == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sis_raw_users WHERE run_id = %s", [run.pk])
        assert cursor.fetchone()[0] == 0


def _staged_users(run_ids: list[int]) -> None:
    with connection.cursor() as cursor:
        for run_id in run_ids:
            cursor.execute(
                "INSERT INTO sis_raw_users (run_id, provider_id, line, external_id, status, raw, "
                "role, given_name, middle_name, family_name, email, username, student_number, "
                "grades, enabled, school_external_ids) VALUES (%s, 1, 2, %s, 'active', '{}', "
                "'student', 'A', '', 'B', '', '', '', '', TRUE, '[]')",
                [run_id, f"u-{run_id}"],
            )


def _users_table() -> tuple[int, list[int]]:
    """The staging table's file (TRUNCATE gives it a new one, DELETE does not) and its runs."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_filenode('sis_raw_users')")
        filenode = cursor.fetchone()[0]
        cursor.execute("SELECT run_id FROM sis_raw_users ORDER BY run_id")
        return filenode, [row[0] for row in cursor.fetchall()]


def test_it_truncates_staging_a_run_had_to_itself_and_deletes_when_shared() -> None:
    from staging.writer import discard_run

    _staged_users([901, 902])
    before, _ = _users_table()

    discard_run(901)  # run 902 (a held run, another provider's) still has rows there
    shared, runs = _users_table()
    discard_run(902)
    alone, left = _users_table()

    assert (shared, runs) == (before, [902])
    assert alone != before and left == []
