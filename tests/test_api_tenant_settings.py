"""PATCH /tenants/{tenantId} (time zone, seat limit, SCIM target) and GET …/seats, through HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sis_sync.models import AuditEvent, RunStatus, Tenant
from tests.api_helpers import assert_error
from tests.bridge_helpers import small_district
from tests.sync_helpers import sync

pytestmark = pytest.mark.django_db
SCIM_TOKEN = "scim-bearer-token-not-to-be-shown-91"


def test_it_sets_the_seat_limit_and_shows_the_seats(
    north: Tenant, north_admin: Any, sample_bundle: Path, tmp_path: Path
) -> None:
    district = small_district(sample_bundle, tmp_path / "district", students=12)
    changed = north_admin.patch(
        "/api/v1/tenants/north", {"seatLimit": 10, "timezone": "America/Chicago"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json() | {"id": 0} == {
        "id": 0, "slug": "north", "name": "North District", "timezone": "America/Chicago",
        "seatLimit": 10, "scim": None,
    }  # fmt: skip

    run = sync(district, tenant="north", options={"deletionThreshold": 1.0})

    assert run.status == RunStatus.PARTIAL
    seats = north_admin.get("/api/v1/tenants/north/seats").json()
    assert seats == {
        "tenantId": north.pk, "seatLimit": 10, "allocated": 10, "available": 0,
        "waiting": 2, "released": 0,
    }  # fmt: skip
    event = AuditEvent.objects.filter(action="tenant.configured").get()
    assert event.actor == "nora" and event.details["seatLimit"] == 10


def test_the_scim_token_is_kept_encrypted_and_never_shown(
    north: Tenant, north_admin: Any, settings: Any
) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True  # a loopback SCIM server, as in the SCIM tests
    body = {"scim": {"baseUrl": "http://127.0.0.1:9/scim/v2", "token": SCIM_TOKEN}}

    response = north_admin.patch("/api/v1/tenants/north", body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["scim"] == {
        "baseUrl": "http://127.0.0.1:9/scim/v2", "token": "********", "hasToken": True
    }  # fmt: skip
    assert SCIM_TOKEN.encode() not in response.content
    assert SCIM_TOKEN.encode() not in north_admin.get("/api/v1/tenants/north").content
    # Left out, the stored token stays; null removes the target.
    again = north_admin.patch(
        "/api/v1/tenants/north", {"scim": {"baseUrl": "http://127.0.0.1:9/v2"}}, format="json"
    )
    assert again.json()["scim"]["hasToken"] is True
    removed = north_admin.patch("/api/v1/tenants/north", {"scim": None}, format="json")
    assert removed.json()["scim"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"seatLimit": -1}, "seatLimit"),
        ({"seatLimit": "ten"}, "seatLimit"),
        ({"scim": {"baseUrl": "ftp://scim.example.com"}}, "scim.baseUrl"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_settings_answer_400_and_change_nothing(
    north: Tenant, north_admin: Any, body: dict[str, Any], field: str
) -> None:
    response = north_admin.patch("/api/v1/tenants/north", body, format="json")

    error = assert_error(response, 400)
    assert field.split(".")[0] in (str(error["details"]) + error["message"])
    north.refresh_from_db()
    assert (north.timezone, north.seat_limit) == ("UTC", None)


def test_another_tenants_settings_are_not_found(north: Tenant, south_admin: Any) -> None:
    assert_error(south_admin.patch("/api/v1/tenants/north", {"seatLimit": 1}, format="json"), 404)
    assert_error(south_admin.get("/api/v1/tenants/north/seats"), 404)
    north.refresh_from_db()
    assert north.seat_limit is None
