"""SCIM 2.0 push (SPEC §6) against a real SCIM server (scim2-server) on loopback."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from sis_sync.models import (
    AuditEvent,
    Classroom,
    Enrollment,
    Person,
    RunStatus,
    ScimChange,
    ScimChangeStatus,
    ScimTarget,
    SisSyncRun,
)
from sis_sync.scheduling import schedules_reconcile
from sis_sync.scim.client import USER_SCHEMA
from sis_sync.tasks import scim_retry_task
from sis_sync.tenants import tenant_configure, tenant_get_or_create, tenant_settings
from tests import bundles
from tests.bridge_helpers import small_district
from tests.scim_server import ScimServer
from tests.sync_helpers import sync

pytestmark = pytest.mark.django_db
TOKEN = "scim-token-7d1c2b9e5f"
LOOSE = {"deletionThreshold": 1.0}


@pytest.fixture(autouse=True)
def _local(settings: Any) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def scim() -> Iterator[ScimServer]:
    server = ScimServer(TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def district(sample_bundle: Path, tmp_path: Path) -> Path:
    return small_district(sample_bundle, tmp_path / "district", students=6)


def pushing_to(server: ScimServer, token: str = TOKEN) -> None:
    tenant = tenant_get_or_create(slug="lakeview")
    tenant_configure(tenant=tenant, actor="test", scim={"baseUrl": server.base_url, "token": token})


def synced(bundle: Path, capture: Any) -> SisSyncRun:
    with capture(execute=True):  # the push runs once the load is committed
        run = sync(bundle, options=LOOSE)
    run.refresh_from_db()
    return run


def assert_server_matches_roster(server: ScimServer) -> None:
    users = server.by_external_id("Users")
    people = {str(p.pk): p for p in Person.objects.all()}
    assert set(users) == set(people)
    for key, person in people.items():
        assert users[key]["active"] is person.is_active
        assert users[key]["name"]["familyName"] == person.family_name
        assert users[key]["userName"] == (person.username or person.email)
    scim_id = {key: user["id"] for key, user in users.items()}
    groups = server.by_external_id("Groups")
    classes = Classroom.objects.filter(is_active=True)
    assert set(groups) == {str(c.pk) for c in classes}
    for classroom in classes:
        members = {
            scim_id[str(e.person_id)]
            for e in Enrollment.objects.filter(
                classroom=classroom, is_active=True, person__is_active=True
            )
        }
        group = groups[str(classroom.pk)]
        assert {m["value"] for m in group.get("members", [])} == members
        assert group["displayName"] == classroom.title


def test_after_a_sync_the_scim_server_holds_the_roster_and_a_leaver_arrives_inactive(
    scim: ScimServer, district: Path, django_capture_on_commit_callbacks: Any
) -> None:
    pushing_to(scim)
    run = synced(district, django_capture_on_commit_callbacks)

    assert run.status == RunStatus.SUCCESS
    assert_server_matches_roster(scim)
    queued = run.stats["scim"]["queued"]
    assert run.stats["scim"] == {"queued": queued, "pushed": queued, "pending": 0, "failed": 0}

    leaver = bundles.students(district)[0]
    bundles.drop_users(district, {leaver["sourcedId"]})
    scim.requests.clear()
    run = synced(district, django_capture_on_commit_callbacks)

    person = Person.objects.get(email=leaver["email"])
    assert person.is_active is False
    user = scim.by_external_id("Users")[str(person.pk)]
    assert user["active"] is False
    assert ("PATCH", f"/v2/Users/{user['id']}") in scim.requests
    # Only what changed went out: the leaver and their classes, nobody else.
    assert not [r for r in scim.requests if r[0] == "POST"]
    assert_server_matches_roster(scim)


def test_changes_made_while_the_server_is_down_arrive_at_the_next_sync(
    scim: ScimServer,
    district: Path,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pushing_to(scim)
    synced(district, django_capture_on_commit_callbacks)
    bundles.edit(
        district,
        "users",
        lambda rows: [
            {**r, "familyName": "Okonkwo-Renamed"} if r["role"] == "student" else r for r in rows
        ],
    )

    scim.stop()
    with caplog.at_level(logging.DEBUG):
        down = synced(district, django_capture_on_commit_callbacks)
    assert down.status == RunStatus.SUCCESS  # the load stands; the push waits
    assert down.stats["scim"]["pending"] == down.stats["scim"]["queued"] > 0
    waiting = ScimChange.objects.filter(run=down, status=ScimChangeStatus.PENDING)
    assert waiting.filter(attempts=1).exclude(last_error="").exists()
    assert all(TOKEN not in c.last_error for c in waiting)
    assert TOKEN not in caplog.text

    scim.start()
    nothing_new = synced(district, django_capture_on_commit_callbacks)
    assert sum(nothing_new.stats["users"][k] for k in ("created", "updated")) == 0

    down.refresh_from_db()
    assert down.stats["scim"]["pushed"] == down.stats["scim"]["queued"]
    assert not ScimChange.objects.filter(status=ScimChangeStatus.PENDING).exists()
    family = {u["name"]["familyName"] for u in scim.list("Users") if u["userType"] == "student"}
    assert family == {"Okonkwo-Renamed"}
    assert_server_matches_roster(scim)


def test_the_token_is_encrypted_never_shown_and_a_refused_token_stops_the_push(
    scim: ScimServer, district: Path, django_capture_on_commit_callbacks: Any
) -> None:
    wrong = "not-the-token-1234"
    pushing_to(scim, token=wrong)
    tenant = tenant_get_or_create(slug="lakeview")
    target = ScimTarget.objects.get(tenant=tenant)
    assert wrong not in target.token_encrypted and target.token == wrong
    assert tenant_settings(tenant=tenant)["scim"] == {
        "baseUrl": scim.base_url,
        "token": "********",
        "hasToken": True,
    }

    run = synced(district, django_capture_on_commit_callbacks)
    assert run.stats["scim"]["pushed"] == 0
    errors = set(ScimChange.objects.exclude(last_error="").values_list("last_error", flat=True))
    assert errors and all("HTTP 401" in e and wrong not in e for e in errors)
    assert scim.list("Users") == []

    # The right token, sent with the URL unchanged (the mask keeps nothing): all goes out.
    tenant_configure(tenant=tenant, actor="test", scim={"baseUrl": scim.base_url, "token": TOKEN})
    call_command("scim_reconcile", "lakeview")
    assert_server_matches_roster(scim)


def test_scim_reconcile_restores_what_the_server_lost(
    scim: ScimServer, district: Path, django_capture_on_commit_callbacks: Any
) -> None:
    pushing_to(scim)
    synced(district, django_capture_on_commit_callbacks)
    scim.storage.resources = []  # the service provider lost everything

    call_command("scim_reconcile", "lakeview")

    assert_server_matches_roster(scim)
    with pytest.raises(CommandError, match="no SCIM target"):
        tenant_configure(tenant=tenant_get_or_create(slug="lakeview"), actor="t", scim=None)
        call_command("scim_reconcile", "lakeview")


def test_configure_tenant_sets_everything_and_never_prints_the_token(
    scim: ScimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_get_or_create(slug="lakeview")
    call_command(
        "configure_tenant",
        "lakeview",
        "--timezone",
        "America/Chicago",
        "--seat-limit",
        "250",
        "--scim-url",
        scim.base_url,
        "--scim-token",
        TOKEN,
    )
    printed = capsys.readouterr().out
    assert TOKEN not in printed
    tenant.refresh_from_db()
    assert (tenant.timezone, tenant.seat_limit) == ("America/Chicago", 250)
    assert tenant_settings(tenant=tenant)["scim"]["baseUrl"] == scim.base_url
    audit = AuditEvent.objects.filter(action="tenant.configured").get()
    assert TOKEN not in str(audit.details) and audit.actor == "command line"

    for bad in (["--timezone", "Mars/Olympus"], ["--seat-limit", "-1"], ["--seat-limit", "x"]):
        with pytest.raises(CommandError) as refused:
            call_command("configure_tenant", "lakeview", *bad)
        assert refused.value.returncode == 2
    call_command("configure_tenant", "lakeview", "--seat-limit", "none", "--no-scim")
    tenant.refresh_from_db()
    assert tenant.seat_limit is None and not ScimTarget.objects.exists()


def test_the_periodic_retry_waits_out_the_backoff_then_pushes(
    scim: ScimServer, district: Path, django_capture_on_commit_callbacks: Any
) -> None:
    pushing_to(scim)
    scim.stop()
    run = synced(district, django_capture_on_commit_callbacks)
    scim.start()
    tried = ScimChange.objects.filter(run=run, attempts=1).get()  # the pass stopped at it
    assert tried.next_attempt_at > timezone.now() + dt.timedelta(seconds=20)

    scim_retry_task.apply()  # in the embedded mode the per-tenant pushes run here
    assert ScimChange.objects.get(pk=tried.pk).status == ScimChangeStatus.PENDING
    assert ScimChange.objects.filter(status=ScimChangeStatus.DONE).exists()  # the others

    ScimChange.objects.filter(pk=tried.pk).update(next_attempt_at=timezone.now())
    scim_retry_task.apply()
    assert not ScimChange.objects.filter(status=ScimChangeStatus.PENDING).exists()
    assert_server_matches_roster(scim)
    schedules_reconcile()
    assert PeriodicTask.objects.filter(task="sis_sync.scim_retry").count() == 1


def test_a_person_the_server_refuses_is_retried_and_joins_their_classes_once_accepted(
    scim: ScimServer, district: Path, django_capture_on_commit_callbacks: Any
) -> None:
    student = bundles.students(district)[0]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    squatter = requests.post(
        f"{scim.base_url}/Users",
        json={"schemas": [USER_SCHEMA], "userName": student["username"], "externalId": "x"},
        headers=auth,
        timeout=10,
    ).json()["id"]
    pushing_to(scim)

    synced(district, django_capture_on_commit_callbacks)
    person = Person.objects.get(email=student["email"])
    refused = ScimChange.objects.get(resource="user", entity_id=person.pk)
    assert refused.status == ScimChangeStatus.PENDING and "HTTP 409" in refused.last_error
    waiting = ScimChange.objects.filter(resource="group", status=ScimChangeStatus.PENDING)
    assert waiting.exists() and all("members" in c.last_error for c in waiting)
    for _ in range(3):  # a class waits a few passes for its members, then goes without
        scim_retry_task.apply()
    assert not ScimChange.objects.filter(resource="group", status="pending").exists()

    requests.delete(f"{scim.base_url}/Users/{squatter}", headers=auth, timeout=10)
    ScimChange.objects.filter(pk=refused.pk).update(next_attempt_at=timezone.now())
    scim_retry_task.apply()

    assert_server_matches_roster(scim)  # the student is in, and in their classes


def test_a_new_enrollment_in_a_known_class_pushes_that_class_and_nothing_else(
    scim: ScimServer, district: Path, django_capture_on_commit_callbacks: Any
) -> None:
    # New enrollments' staging rows are not marked by the loader: the outbox finds them by
    # their provider and creation time (scim.outbox).
    student = bundles.students(district)[0]["sourcedId"]
    later = next(r for r in bundles.read(district, "enrollments") if r["userSourcedId"] == student)
    bundles.edit(district, "enrollments", lambda rs: [r for r in rs if r != later])
    pushing_to(scim)
    synced(district, django_capture_on_commit_callbacks)
    joined = {**later, "sourcedId": "enr-new-1"}
    bundles.edit(district, "enrollments", lambda rs: [*rs, joined])

    run = synced(district, django_capture_on_commit_callbacks)

    assert run.stats["enrollments"]["created"] == 1
    classroom = Enrollment.objects.get(external_id="enr-new-1").classroom
    queued = ScimChange.objects.filter(run=run)
    assert {(c.resource, c.entity_id) for c in queued} == {("group", classroom.pk)}
    assert_server_matches_roster(scim)
