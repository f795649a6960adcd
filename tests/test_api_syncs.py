"""Syncs and runs through HTTP: upload, trigger, status, history, rejects, holds, cancel,
connection test, and the same for all of a tenant's providers."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from sis_sync.models import AuditEvent, RunStatus, SisProvider
from sis_sync.sync import sync_start
from tests import bundles
from tests.api_helpers import (
    assert_error,
)


@pytest.fixture
def district(tmp_path: Path, sample_bundle: Path) -> Path:
    return bundles.copy(sample_bundle, tmp_path / "district")


def zipped(folder: Path, tmp_path: Path, name: str = "bundle") -> Path:
    return Path(shutil.make_archive(str(tmp_path / name), "zip", root_dir=folder))


def upload_provider(client, name: str = "Nightly files") -> int:
    response = client.post(
        "/api/v1/providers",
        {"tenantId": "north", "providerType": "ONEROSTER_CSV", "name": name, "config": {}},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def upload(client, provider_id: int, bundle: Path, capture, **fields):
    with capture(execute=True), open(bundle, "rb") as handle:
        return client.post(
            f"/api/v1/providers/{provider_id}/upload",
            {"file": handle, **fields},
            format="multipart",
        )


def wait_until_finished(client, provider_id: int) -> dict:
    """Polls the status endpoint as a portal would (runs finish in-process here)."""
    for _ in range(50):
        status = client.get(f"/api/v1/providers/{provider_id}/sync/status").json()
        if not status["isRunning"]:
            return status
    raise AssertionError(f"still running: {status}")


def test_the_full_flow_through_http(
    north_admin, district, tmp_path, django_capture_on_commit_callbacks
) -> None:
    provider_id = upload_provider(north_admin)
    response = upload(
        north_admin,
        provider_id,
        zipped(district, tmp_path),
        capture=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 202, response.content
    run = response.json()
    assert run["providerId"] == provider_id and run["isManual"] and run["triggeredBy"] == "nora"

    status = wait_until_finished(north_admin, provider_id)
    assert status["lastStatus"] == "SUCCESS" and status["currentRun"] is None
    assert status["lastSync"] is not None
    first = north_admin.get(f"/api/v1/runs/{run['id']}").json()
    assert first["status"] == "SUCCESS" and first["phase"] == "done"
    assert first["stats"]["users"]["created"] == len(bundles.read(district, "users"))
    assert first["stats"]["schools"]["created"] == len(
        [o for o in bundles.read(district, "orgs") if o["type"] == "school"]
    )
    assert first["startedAt"] and first["completedAt"] and first["stats"]["durationSeconds"] >= 0

    # A manual sync re-reads the kept bundle: nothing changes the second time.
    with django_capture_on_commit_callbacks(execute=True):
        again = north_admin.post(f"/api/v1/providers/{provider_id}/sync", {}, format="json")
    assert again.status_code == 202
    second = north_admin.get(f"/api/v1/runs/{again.json()['id']}").json()
    assert second["status"] == "SUCCESS" and second["mode"] == "full"
    assert all(
        counts["created"] == counts["updated"] == counts["deactivated"] == 0
        for entity, counts in second["stats"].items()
        if entity != "durationSeconds"
    )

    # A bundle with a broken enrollment: loaded, with the row rejected.
    row = bundles.read(district, "enrollments")[0]
    bundles.edit(
        district,
        "enrollments",
        lambda rows: [*rows, {**row, "sourcedId": "enr-broken", "classSourcedId": "=cls-none"}],
    )
    third = upload(
        north_admin, provider_id, zipped(district, tmp_path, "third"),
        capture=django_capture_on_commit_callbacks,
    ).json()  # fmt: skip
    assert wait_until_finished(north_admin, provider_id)["lastStatus"] == "PARTIAL"
    assert (
        north_admin.get(f"/api/v1/runs/{third['id']}").json()["stats"]["enrollments"]["rejected"]
        == 1
    )
    rejects = north_admin.get(f"/api/v1/runs/{third['id']}/rejects").json()
    assert rejects["count"] == 1
    reject = rejects["results"][0]
    assert reject["entity"] == "enrollment" and reject["externalId"] == "enr-broken"
    assert "=cls-none" in reject["reason"] and reject["raw"]["classSourcedId"] == "=cls-none"
    assert north_admin.get(f"/api/v1/runs/{third['id']}/rejects?entity=user").json()["count"] == 0

    as_csv = north_admin.get(f"/api/v1/runs/{third['id']}/rejects?format=csv")
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    assert "attachment" in as_csv["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(north_admin.body(as_csv))))
    assert rows[0] == ["entity", "externalId", "reason", "line", "raw"]
    assert len(rows) == 2 and rows[1][0] == "enrollment" and rows[1][1] == "enr-broken"
    assert rows[1][2].startswith("'") or "=cls-none" in rows[1][2]  # no formula injection
    assert not any(cell.startswith("=") for cell in rows[1])

    history = north_admin.get(f"/api/v1/providers/{provider_id}/runs?limit=2").json()
    assert history["count"] == 3
    assert [r["id"] for r in history["results"]] == [third["id"], second["id"]]

    audit = north_admin.get("/api/v1/tenants/north/audit?limit=100").json()
    actions = [(e["action"], e["outcome"], e["actor"]) for e in reversed(audit["results"])]
    assert actions[0] == ("provider.created", "success", "nora")
    assert actions.count(("provider.uploaded", "success", "nora")) == 2
    assert actions.count(("sync.started", "success", "nora")) == 3
    assert actions.count(("sync.finished", "success", "system")) == 2
    assert ("sync.finished", "partial", "system") in actions
    assert audit["results"][0]["tenantId"] == "north"
    only = north_admin.get("/api/v1/tenants/north/audit?action=provider.uploaded").json()
    assert only["count"] == 2


def test_a_second_trigger_answers_409_with_the_running_run(north_admin) -> None:
    provider_id = upload_provider(north_admin)
    running = sync_start(
        provider=SisProvider.objects.get(pk=provider_id), is_manual=True, triggered_by="x"
    )
    status = north_admin.get(f"/api/v1/providers/{provider_id}/sync/status").json()
    assert status["isRunning"] and status["currentRun"]["id"] == running.pk
    assert status["currentRun"]["status"] == "PENDING" and status["currentRun"]["phase"] == "queued"

    refused = north_admin.post(
        f"/api/v1/providers/{provider_id}/sync", {"dryRun": True, "mode": "delta"}, format="json"
    )
    error = assert_error(refused, 409, "already_running")
    assert error["details"] == {"runId": running.pk} and str(running.pk) in error["message"]

    cancelled = north_admin.post(f"/api/v1/providers/{provider_id}/sync/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["id"] == running.pk
    assert_error(north_admin.post(f"/api/v1/providers/{provider_id}/sync/cancel"), 409, "conflict")
    bad = north_admin.post(
        f"/api/v1/providers/{provider_id}/sync", {"mode": "sideways", "entities": ["pets"]},
        format="json",
    )  # fmt: skip
    assert set(assert_error(bad, 400, "invalid")["details"]) == {"mode", "entities"}

    outcomes = list(
        AuditEvent.objects.filter(action__startswith="sync.").values_list("action", "outcome")
    )
    assert outcomes.count(("sync.started", "refused")) == 1  # written once, by sync_start
    assert ("sync.cancelled", "success") in outcomes and ("sync.cancelled", "refused") in outcomes


def test_a_dry_run_and_a_selective_sync_through_http(
    north_admin, district, tmp_path, django_capture_on_commit_callbacks
) -> None:
    provider_id = upload_provider(north_admin)
    upload(
        north_admin, provider_id, zipped(district, tmp_path),
        capture=django_capture_on_commit_callbacks, dryRun="true",
    )  # fmt: skip
    dry = north_admin.get(f"/api/v1/providers/{provider_id}/runs").json()["results"][0]
    assert dry["dryRun"] and dry["status"] == "SUCCESS" and dry["stats"]["users"]["created"] > 0
    with django_capture_on_commit_callbacks(execute=True):
        response = north_admin.post(
            f"/api/v1/providers/{provider_id}/sync", {"entities": ["schools"]}, format="json"
        )
    run = north_admin.get(f"/api/v1/runs/{response.json()['id']}").json()
    assert run["entities"] == ["schools"] and run["stats"]["schools"]["created"] > 0
    assert run["stats"]["users"]["created"] == 0


def test_held_runs_are_approved_or_discarded_through_http(
    north_admin, district, tmp_path, django_capture_on_commit_callbacks
) -> None:
    provider_id = upload_provider(north_admin)
    upload(
        north_admin,
        provider_id,
        zipped(district, tmp_path),
        capture=django_capture_on_commit_callbacks,
    )
    bundles.drop_users(district, {s["sourcedId"] for s in bundles.students(district)[:300]})
    held = upload(
        north_admin, provider_id, zipped(district, tmp_path, "half"),
        capture=django_capture_on_commit_callbacks,
    ).json()  # fmt: skip
    held = north_admin.get(f"/api/v1/runs/{held['id']}").json()
    assert held["status"] == "HELD" and held["holdReason"]

    approved = north_admin.post(f"/api/v1/runs/{held['id']}/approve")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "SUCCESS" and approved.json()["decidedBy"] == "nora"
    again = north_admin.post(f"/api/v1/runs/{held['id']}/approve")
    assert "not HELD" in assert_error(again, 409, "conflict")["message"]

    bundles.drop_users(district, {s["sourcedId"] for s in bundles.students(district)[:200]})
    second = upload(
        north_admin, provider_id, zipped(district, tmp_path, "less"),
        capture=django_capture_on_commit_callbacks,
    ).json()  # fmt: skip
    assert north_admin.get(f"/api/v1/runs/{second['id']}").json()["status"] == "HELD"
    discarded = north_admin.post(f"/api/v1/runs/{second['id']}/discard")
    assert discarded.status_code == 200 and discarded.json()["status"] == "DISCARDED"

    events = list(
        AuditEvent.objects.filter(action__startswith="run.")
        .order_by("id")
        .values_list("action", "outcome")
    )
    assert events == [
        ("run.approved", "success"),
        ("run.approved", "refused"),
        ("run.discarded", "success"),
    ]


def test_uploads_are_checked_before_anything_is_kept(
    north_admin, tmp_path, django_capture_on_commit_callbacks
) -> None:
    provider_id = upload_provider(north_admin)
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("not a zip at all")
    response = upload(north_admin, provider_id, not_zip, capture=django_capture_on_commit_callbacks)
    assert_error(response, 400, "bad_request")
    assert not SisProvider.objects.get(pk=provider_id).bundle_path
    missing = north_admin.post(f"/api/v1/providers/{provider_id}/upload", {}, format="multipart")
    assert "file" in assert_error(missing, 400, "invalid")["details"]
    assert AuditEvent.objects.get(action="provider.uploaded").outcome == "refused"
    assert not list((tmp_path / "data" / "tmp").glob("upload-*"))


def test_the_connection_test_reports_without_changing_data(
    north_admin, district, tmp_path, django_capture_on_commit_callbacks
) -> None:
    provider_id = upload_provider(north_admin)
    before = north_admin.post(f"/api/v1/providers/{provider_id}/test").json()
    assert before["success"] is False and "No bundle" in before["message"]
    upload(
        north_admin,
        provider_id,
        zipped(district, tmp_path),
        capture=django_capture_on_commit_callbacks,
    )
    after = north_admin.post(f"/api/v1/providers/{provider_id}/test").json()
    assert after["success"] is True and after["message"]
    outcomes = list(
        AuditEvent.objects.filter(action="provider.tested").order_by("id").values_list("outcome")
    )
    assert outcomes == [("failure",), ("success",)]


def test_a_tenant_syncs_starts_stops_and_reports_all_its_providers(
    north_admin, district, tmp_path, django_capture_on_commit_callbacks
) -> None:
    first = upload_provider(north_admin, "First")
    second = upload_provider(north_admin, "Second")
    nothing = north_admin.post("/api/v1/tenants/north/sync", {}, format="json")
    assert "No bundle" in assert_error(nothing, 400, "bad_request")["message"]

    upload(
        north_admin, first, zipped(district, tmp_path), capture=django_capture_on_commit_callbacks
    )
    started = north_admin.post("/api/v1/tenants/north/sync", {"dryRun": True}, format="json")
    assert started.status_code == 202, started.content
    body = started.json()
    assert [r["providerId"] for r in body["runs"]] == [first]
    assert body["skipped"] == [
        {"providerId": second, "name": "Second", "reason": "No bundle has been uploaded yet",
         "runId": None}
    ]  # fmt: skip

    status = north_admin.get("/api/v1/tenants/north/sync/status").json()
    assert status["isRunning"] and [r["id"] for r in status["currentRuns"]] == [
        body["runs"][0]["id"]
    ]
    assert {p["providerId"] for p in status["providers"]} == {first, second}
    assert north_admin.get("/api/v1/sync/north/status").json() == status  # seed 003 path

    all_running = north_admin.post("/api/v1/sync/north/start", {}, format="json")
    assert assert_error(all_running, 409, "already_running")["details"] == {
        "runId": body["runs"][0]["id"]
    }
    stopped = north_admin.post("/api/v1/tenants/north/sync/stop").json()
    assert [r["status"] for r in stopped["cancelled"]] == ["CANCELLED"]
    assert_error(north_admin.post("/api/v1/sync/north/stop"), 409, "conflict")

    history = north_admin.get("/api/v1/tenants/north/sync/history").json()
    assert history["count"] == 2 and history["results"][0]["status"] == RunStatus.CANCELLED
    assert north_admin.get("/api/v1/sync/north/history").json() == history
    idle = north_admin.get("/api/v1/tenants/north/sync/status").json()
    assert idle["isRunning"] is False and idle["lastStatus"] == "SUCCESS"
