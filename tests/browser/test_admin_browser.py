"""The district admin's day in a real browser: add a provider with an uploaded bundle, test it,
sync it, read the run and its rejects, approve a held sync, and never see another district."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from sis_sync.models import Person, RunStatus, SisProvider, SisSyncRun
from sis_sync.providers import provider_store_bundle, upload_provider_get_or_create
from sis_sync.sync import sync_extract, sync_load, sync_start
from sis_sync.tenants import tenant_get_or_create
from tests import bundles
from tests.browser.conftest import login
from tests.sync_helpers import sync

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Brow5er-Test-Pass"


def district_admin(username: str = "dana", tenant: str = "north") -> None:
    tenant_get_or_create(slug=tenant)
    call_command(
        "create_api_user", username, "--role", "DISTRICT_ADMIN", "--tenant", tenant,
        "--password", PASSWORD, stdout=io.StringIO(),
    )  # fmt: skip


def zipped(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, file.name)
    return target


def messages(page: Any) -> Any:
    return page.locator("ul.messagelist")


def test_a_district_admin_adds_a_provider_syncs_it_and_reads_the_rejects(
    page: Any, sample_bundle: Path, tmp_path: Path
) -> None:
    south = sync(sample_bundle, tenant="south")
    SisProvider.objects.filter(pk=south.provider_id).update(name="South SIS")
    district_admin()
    clean = zipped(sample_bundle, tmp_path / "district.zip")
    broken_folder = bundles.copy(sample_bundle, tmp_path / "broken")
    bad_user = bundles.read(broken_folder, "users")[5]["sourcedId"]
    bundles.edit(
        broken_folder,
        "users",
        lambda rows: [{**r, "role": "studnet"} if r["sourcedId"] == bad_user else r for r in rows],
    )
    broken = zipped(broken_folder, tmp_path / "broken.zip")

    login(page, "dana", PASSWORD)
    page.goto("/admin/sis_sync/sisprovider/")
    expect(page.locator("#result_list")).to_have_count(0)  # no providers of north yet
    expect(page.locator("body")).not_to_contain_text("South SIS")

    # Add a OneRoster CSV provider with an uploaded bundle, through the form.
    page.goto("/admin/sis_sync/sisprovider/add/")
    page.fill("#id_name", "North files")
    page.select_option("#id_provider_type", "ONEROSTER_CSV")
    expect(page.locator("fieldset.sis-config-CLEVER")).to_be_hidden()
    expect(page.locator("#id_cfg_ONEROSTER_CSV_sftp__host")).to_be_visible()
    page.set_input_files("#id_bundle", str(clean))
    page.click("input[name=_continue]")
    expect(messages(page)).to_contain_text("was added successfully")
    provider = SisProvider.objects.get(name="North files")
    assert provider.tenant.slug == "north" and provider.bundle_path

    page.click("#sis-test-connection")
    expect(messages(page)).to_contain_text("Connection test passed: manifest.csv + ")

    page.click("#sis-run-sync")
    expect(page.locator("#sis-state")).to_have_text("SUCCESS")
    expect(messages(page)).to_contain_text("Sync finished")
    run = provider.runs.get()
    assert run.status == RunStatus.SUCCESS and run.triggered_by == "dana"

    # A bundle with a bad row, previewed with a dry run: the run shows the reject.
    page.set_input_files("#id_bundle", str(broken))
    page.click("input[name=_continue]")
    expect(messages(page)).to_contain_text("was changed successfully")
    page.click("#sis-dry-run")
    expect(messages(page)).to_contain_text("Dry run finished")
    expect(page.locator("#sis-state")).to_have_text("PARTIAL")
    messages(page).get_by_role("link", name=re.compile(r"run \d+")).click()

    expect(page.locator("h1")).to_contain_text("Run #")
    stats = page.locator("#run-stats")
    expect(stats).to_contain_text("users")
    users_rejected = stats.locator("tr", has_text="users").locator("td").nth(5)
    expect(users_rejected).to_have_text("1")
    rejects = page.locator("#run-rejects")
    expect(rejects).to_contain_text(bad_user)
    expect(rejects).to_contain_text("unknown role 'studnet'")
    with page.expect_download() as info:
        page.click("#rejects-csv")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert any(r["externalId"] == bad_user and "studnet" in r["reason"] for r in rows)

    # Another district's provider and run: not in the lists, 404 by URL.
    page.goto("/admin/sis_sync/sissyncrun/")
    expect(page.locator("#result_list")).not_to_contain_text("South SIS")
    for url in (
        f"/admin/sis_sync/sisprovider/{south.provider_id}/change/",
        f"/admin/sis_sync/sissyncrun/{south.pk}/change/",
    ):
        assert page.goto(url).status == 404


def test_a_held_run_is_approved_from_its_page_and_the_roster_shows_it(
    page: Any, sample_bundle: Path, tmp_path: Path
) -> None:
    district = bundles.copy(sample_bundle, tmp_path / "district")
    sync(district, tenant="north")
    students = bundles.students(district)
    leaving = students[: len(students) * 3 // 10]
    bundles.drop_users(district, {s["sourcedId"] for s in leaving})
    held = sync(district, tenant="north")
    assert held.status == RunStatus.HELD
    district_admin()

    login(page, "dana", PASSWORD)
    page.goto("/admin/sis_sync/sissyncrun/?status__exact=HELD")
    page.get_by_role("link", name=f"#{held.pk}").click()
    plan = page.locator("#held-plan")
    expect(plan).to_contain_text("Held for review")
    expect(plan).to_contain_text(f"{len(leaving)} people would be deactivated")
    page.click("#run-approve")
    expect(messages(page)).to_contain_text(f"Run #{held.pk} approved")
    expect(page.locator("#run-status")).to_contain_text("SUCCESS")

    page.goto("/admin/sis_sync/person/?is_active__exact=0")
    expect(page.locator("p.paginator")).to_contain_text(f"{len(leaving)} people")
    gone = leaving[0]
    page.fill("#searchbar", gone["familyName"])
    page.press("#searchbar", "Enter")
    expect(page.locator("#result_list")).to_contain_text(gone["givenName"])
    assert Person.objects.filter(is_active=False).count() == len(leaving)


@pytest.mark.postgres  # the test's thread writes while the page polls: needs a real server DB
def test_the_provider_page_follows_a_running_sync_by_itself(page: Any, sample_bundle: Path) -> None:
    district_admin()
    provider = upload_provider_get_or_create(tenant=tenant_get_or_create(slug="north"))
    provider_store_bundle(provider=provider, source=sample_bundle)
    run = sync_start(provider=provider, is_manual=False, triggered_by="schedule")

    login(page, "dana", PASSWORD)
    page.goto(f"/admin/sis_sync/sisprovider/{provider.pk}/change/")
    expect(page.locator("#sis-state")).to_have_text("PENDING")
    expect(page.locator("#sis-cancel")).to_be_visible()
    page.evaluate("window.sisMarker = 'same page'")

    # What a worker does, step by step; the page shows each step without being reloaded.
    assert sync_extract(run_id=run.pk)
    expect(page.locator("#sis-state")).to_have_text("IN_PROGRESS")
    expect(page.locator("#sis-phase")).to_have_text("phase: stage")
    expect(page.locator("#sis-progress")).to_contain_text("enrollments: ")
    assert sync_load(run_id=run.pk).status == RunStatus.SUCCESS
    expect(page.locator("#sis-state")).to_have_text("SUCCESS")
    expect(page.locator("#sis-cancel")).to_be_hidden()
    expect(page.locator("#sis-run-link")).to_have_text(f"run #{run.pk}")
    assert page.evaluate("window.sisMarker") == "same page"
    assert SisSyncRun.objects.get(pk=run.pk).status == RunStatus.SUCCESS
