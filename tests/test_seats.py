"""Seats (SPEC §6): a tenant's seat limit, allocated in a stable order, released on withdrawal."""

from __future__ import annotations

from pathlib import Path

import pytest

from sis_sync.models import Person, RunStatus, SeatAssignment, SeatState, Tenant
from sis_sync.seats import tenant_seats
from sis_sync.tenants import tenant_configure, tenant_get_or_create
from tests import bundles
from tests.bridge_helpers import small_district
from tests.sync_helpers import sync

pytestmark = pytest.mark.django_db
LOOSE = {"deletionThreshold": 1.0}  # withdrawals here are large fractions of a tiny district


@pytest.fixture
def district(sample_bundle: Path, tmp_path: Path) -> Path:
    return small_district(sample_bundle, tmp_path / "district", students=12)


def limited(limit: int | None) -> Tenant:
    tenant = tenant_get_or_create(slug="lakeview")
    return tenant_configure(tenant=tenant, actor="test", seat_limit=limit)


def holders() -> list[int]:
    return sorted(
        SeatAssignment.objects.filter(state=SeatState.ALLOCATED).values_list("person_id", flat=True)
    )


def students_in_order() -> list[int]:
    return list(Person.objects.filter(role="student").order_by("id").values_list("id", flat=True))


def test_it_seats_ten_of_twelve_students_and_ends_partial(district: Path) -> None:
    tenant = limited(10)

    run = sync(district, options=LOOSE)

    assert run.status == RunStatus.PARTIAL
    assert run.stats["seats"] == {
        "allocated": 10,
        "released": 0,
        "waiting": 2,
        "inUse": 10,
        "limit": 10,
    }
    assert holders() == students_in_order()[:10]  # in the source's order
    assert tenant_seats(tenant=tenant) == {
        "tenantId": tenant.pk,
        "seatLimit": 10,
        "allocated": 10,
        "available": 0,
        "waiting": 2,
        "released": 0,
    }
    teachers = Person.objects.exclude(role="student").values_list("id", flat=True)
    assert not SeatAssignment.objects.filter(person_id__in=teachers).exists()


def test_a_withdrawal_frees_a_seat_for_the_first_waiting_student_at_the_next_sync(
    district: Path,
) -> None:
    limited(10)
    sync(district, options=LOOSE)
    order = students_in_order()
    leaver = Person.objects.get(pk=order[3])
    first_waiting, second_waiting = order[10], order[11]
    again = sync(district, options=LOOSE)
    assert again.stats["seats"]["allocated"] == 0  # nothing changed, no seat moved
    assert again.status == RunStatus.PARTIAL

    sourced_id = next(
        r["sourcedId"] for r in bundles.students(district) if r["email"] == leaver.email
    )
    bundles.drop_users(district, {sourced_id})
    run = sync(district, options=LOOSE)

    assert run.stats["seats"]["released"] == 1
    assert run.stats["seats"]["allocated"] == 1
    assert run.stats["seats"]["waiting"] == 1
    assert run.status == RunStatus.PARTIAL
    assert first_waiting in holders() and second_waiting not in holders()
    assert leaver.pk not in holders()
    assert SeatAssignment.objects.get(person=leaver).state == SeatState.RELEASED


def test_without_waiting_students_the_run_succeeds_and_raising_the_limit_seats_them_now(
    district: Path,
) -> None:
    tenant = limited(12)
    run = sync(district, options=LOOSE)
    assert run.status == RunStatus.SUCCESS
    assert run.stats["seats"]["waiting"] == 0

    tenant_configure(tenant=tenant, actor="test", seat_limit=5)
    assert tenant_seats(tenant=tenant)["allocated"] == 12  # a held seat is never taken back

    tenant_configure(tenant=tenant, actor="test", seat_limit=None)
    assert not SeatAssignment.objects.exists()
    assert "seats" not in sync(district, options=LOOSE).stats

    # A limit set on a synced roster seats its students in order at once.
    tenant_configure(tenant=tenant, actor="test", seat_limit=3)
    assert holders() == students_in_order()[:3]
    assert tenant_seats(tenant=tenant)["waiting"] == 9
