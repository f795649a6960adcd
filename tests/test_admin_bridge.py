"""The admin's view of seats and the SCIM outbox: read-only, scoped to the admin's tenant."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sis_sync.models import AdminRole, ScimChange, SeatAssignment, SeatState
from sis_sync.tenants import tenant_configure, tenant_get_or_create
from tests.bridge_helpers import small_district
from tests.sync_helpers import sync
from tests.test_admin import make_admin

pytestmark = pytest.mark.django_db


def test_a_district_admin_sees_their_seats_and_the_summary_on_the_tenant_page(
    sample_bundle: Path, tmp_path: Path
) -> None:
    north = tenant_configure(tenant=tenant_get_or_create(slug="north"), actor="t", seat_limit=10)
    sync(small_district(sample_bundle, tmp_path / "n", students=12), tenant="north",
         options={"deletionThreshold": 1.0})  # fmt: skip
    tenant_configure(tenant=tenant_get_or_create(slug="south"), actor="t", seat_limit=100)
    sync(small_district(sample_bundle, tmp_path / "s", students=5), tenant="south")
    dana: Client = make_admin("dana", role=AdminRole.DISTRICT_ADMIN, tenant="north")

    page = dana.get(reverse("admin:sis_sync_tenant_change", args=[north.pk]))
    assert page.status_code == 200
    assert "10 of 10 allocated, 0 free, 2 students waiting, 0 released" in page.content.decode()

    seats = dana.get(reverse("admin:sis_sync_seatassignment_changelist"))
    assert seats.status_code == 200
    assert seats.context["cl"].result_count == 12  # north's 12 students, not south's 5
    waiting = dana.get(reverse("admin:sis_sync_seatassignment_changelist") + "?state=waiting")
    assert waiting.context["cl"].result_count == 2
    south_seat = SeatAssignment.objects.filter(tenant__slug="south").first()
    assert south_seat.state == SeatState.ALLOCATED
    other = dana.get(reverse("admin:sis_sync_seatassignment_change", args=[south_seat.pk]))
    assert other.status_code == 404


def test_the_scim_outbox_page_lists_only_the_admins_tenant() -> None:
    now = timezone.now()
    for slug, entity_id in (("north", 7), ("south", 8)):
        ScimChange.objects.create(
            tenant=tenant_get_or_create(slug=slug), resource="user", entity_id=entity_id,
            next_attempt_at=now, created_at=now, last_error=f"{slug} server said 503",
        )  # fmt: skip
    dana: Client = make_admin("dana", role=AdminRole.DISTRICT_ADMIN, tenant="north")

    page = dana.get(reverse("admin:sis_sync_scimchange_changelist"))

    assert page.status_code == 200 and page.context["cl"].result_count == 1
    assert "north server said 503" in page.content.decode()
    assert "south server said" not in page.content.decode()
