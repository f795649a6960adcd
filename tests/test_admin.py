"""The Django admin through the test client: scoping by role, the provider form, the actions,
run pages. The same flows in a real browser are in tests/browser/."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from sis_sync.access import membership_set
from sis_sync.models import (
    AdminRole,
    AuditEvent,
    ContactRelationship,
    Person,
    ProviderType,
    RunStatus,
    School,
    SisProvider,
    SisSyncRun,
)
from sis_sync.provider_config import MASK
from sis_sync.providers import provider_create
from sis_sync.sync import sync_start
from sis_sync.tenants import tenant_get_or_create
from tests import bundles
from tests.sync_helpers import sync

pytestmark = pytest.mark.django_db

PASSWORD = "Corr3ct-Horse-Battery"
CHANGELIST = "admin:sis_sync_sisprovider_changelist"


def make_admin(username: str, *, role: str, tenant: str | None) -> Client:
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    membership_set(
        user=user, role=role, tenant=tenant_get_or_create(slug=tenant) if tenant else None
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def dana() -> Client:
    """A district admin of north."""
    return make_admin("dana", role=AdminRole.DISTRICT_ADMIN, tenant="north")


@pytest.fixture
def pat() -> Client:
    """A platform admin."""
    return make_admin("pat", role=AdminRole.PLATFORM_ADMIN, tenant=None)


@pytest.fixture
def south_sync(sample_bundle: Path) -> SisSyncRun:
    """South's roster, synced from the sample bundle, with a provider dana must never see."""
    return sync(sample_bundle, tenant="south")


def change_url(model: str, pk: int) -> str:
    return reverse(f"admin:sis_sync_{model}_change", args=[pk])


def zipped(folder: Path, target: Path) -> bytes:
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, file.name)
    return target.read_bytes()


# -- who sees what --------------------------------------------------------------------------------


def test_it_shows_a_district_admin_only_their_tenants_objects(
    dana: Client, south_sync: SisSyncRun, sample_bundle: Path
) -> None:
    north_run = sync(sample_bundle, tenant="north")
    south = south_sync.provider
    south.name = "South SIS"
    south.save()
    north_provider = north_run.provider
    north_provider.name = "North SIS"
    north_provider.save()

    page = dana.get(reverse(CHANGELIST)).content.decode()
    assert "North SIS" in page and "South SIS" not in page

    for model, pk in (
        ("sisprovider", south.pk),
        ("sissyncrun", south_sync.pk),
        ("school", School.objects.filter(tenant__slug="south").first().pk),
        ("person", Person.objects.filter(tenant__slug="south").first().pk),
    ):
        assert dana.get(change_url(model, pk)).status_code == 404, model
    for name in ("status",):
        url = reverse(f"admin:sis_sync_sisprovider_{name}", args=[south.pk])
        assert dana.get(url).status_code == 404
    for name in ("sync", "test", "cancel"):
        url = reverse(f"admin:sis_sync_sisprovider_{name}", args=[south.pk])
        assert dana.post(url).status_code == 404
    assert (
        dana.get(reverse("admin:sis_sync_sissyncrun_rejects_csv", args=[south_sync.pk])).status_code
        == 404
    )
    assert (
        dana.post(reverse("admin:sis_sync_sissyncrun_approve", args=[south_sync.pk])).status_code
        == 404
    )
    assert not SisSyncRun.objects.filter(provider=south).exclude(pk=south_sync.pk).exists()

    people = dana.get(reverse("admin:sis_sync_person_changelist") + "?all=").context["cl"]
    assert people.result_count == Person.objects.filter(tenant__slug="north").count()
    assert {p.tenant.slug for p in people.result_list} == {"north"}
    runs = dana.get(reverse("admin:sis_sync_sissyncrun_changelist")).context["cl"]
    assert [r.pk for r in runs.result_list] == [north_run.pk]
    audit = dana.get(reverse("admin:sis_sync_auditevent_changelist")).context["cl"]
    assert audit.result_count and {e.tenant.slug for e in audit.result_list} == {"north"}


def test_a_person_s_page_shows_their_ids_and_contacts(dana: Client) -> None:
    north = tenant_get_or_create(slug="north")
    kim = Person.objects.create(
        tenant=north, role="student", given_name="Kim", family_name="Lee", sis_id="SIS-1",
        state_id="ST-77",
    )  # fmt: skip
    jo = Person.objects.create(tenant=north, role="contact", given_name="", family_name="Jo Lee")
    ContactRelationship.objects.create(contact=jo, student=kim, relationship="Grandparent")

    student_page = dana.get(change_url("person", kim.pk)).content.decode()
    contact_page = dana.get(change_url("person", jo.pk)).content.decode()

    assert "SIS-1" in student_page and "ST-77" in student_page
    assert "Jo Lee (Grandparent)" in student_page and "Kim Lee (Grandparent)" in contact_page
    found = dana.get(reverse("admin:sis_sync_person_changelist") + "?q=ST-77").context["cl"]
    assert [p.pk for p in found.result_list] == [kim.pk]
    contacts = dana.get(reverse("admin:sis_sync_person_changelist") + "?role=contact")
    assert [p.pk for p in contacts.context["cl"].result_list] == [jo.pk]


def test_it_offers_a_district_admin_only_their_tenant_in_choices_and_filters(
    dana: Client, south_sync: SisSyncRun, sample_bundle: Path
) -> None:
    sync(sample_bundle, tenant="north")
    form = dana.get(reverse("admin:sis_sync_sisprovider_add")).context["adminform"].form
    assert [t.slug for t in form.fields["tenant"].queryset] == ["north"]
    assert form.initial["tenant"] == tenant_get_or_create(slug="north").pk

    page = dana.get(reverse("admin:sis_sync_sissyncrun_changelist")).content.decode()
    assert "CSV import" in page and f"?provider={south_sync.provider_id}" not in page
    classes = dana.get(reverse("admin:sis_sync_classroom_changelist")).content.decode()
    south_school = School.objects.filter(tenant__slug="south").first()
    assert f"school={south_school.pk}" not in classes

    forged = {"tenant": tenant_get_or_create(slug="south").pk, "name": "Sneaky"}
    response = dana.post(
        reverse("admin:sis_sync_sisprovider_add"),
        {**forged, "provider_type": "ONEROSTER_CSV", "enabled": "on"},
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not SisProvider.objects.filter(name="Sneaky").exists()


def test_it_shows_a_platform_admin_every_tenant(pat: Client, south_sync: SisSyncRun) -> None:
    provider_create(
        tenant=tenant_get_or_create(slug="north"),
        provider_type="ONEROSTER_CSV",
        name="N",
        config={},
    )
    listing = pat.get(reverse(CHANGELIST)).context["cl"]
    assert {p.tenant.slug for p in listing.result_list} == {"north", "south"}
    assert "tenant" in listing.list_display
    assert pat.get(change_url("sissyncrun", south_sync.pk)).status_code == 200
    runs = pat.get(reverse("admin:sis_sync_sissyncrun_changelist")).context["cl"]
    assert "tenant" in runs.list_display and [r.pk for r in runs.result_list] == [south_sync.pk]
    audit = pat.get(reverse("admin:sis_sync_auditevent_changelist")).content.decode()
    assert f'href="{change_url("sissyncrun", south_sync.pk)}">run {south_sync.pk}</a>' in audit


def test_it_shows_nothing_to_staff_without_a_role(south_sync: SisSyncRun) -> None:
    user = get_user_model().objects.create_user("staffer", password=PASSWORD, is_staff=True)
    client = Client()
    client.force_login(user)
    assert "SIS Sync" not in client.get(reverse("admin:index")).content.decode()
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(change_url("sisprovider", south_sync.provider_id)).status_code in (403, 404)


def test_only_a_platform_admin_manages_memberships(dana: Client, pat: Client) -> None:
    assert dana.get(reverse("admin:sis_sync_membership_changelist")).status_code == 403
    assert dana.get(reverse("admin:sis_sync_tenant_add")).status_code == 403
    erin = get_user_model().objects.create_user("erin", is_staff=True)
    north = tenant_get_or_create(slug="north")
    response = pat.post(
        reverse("admin:sis_sync_membership_add"), {"user": erin.pk, "role": "DISTRICT_ADMIN"}
    )
    assert "A district admin needs a district" in response.content.decode()
    pat.post(
        reverse("admin:sis_sync_membership_add"),
        {"user": erin.pk, "role": "DISTRICT_ADMIN", "tenant": north.pk},
    )
    assert erin.sis_memberships.get().tenant == north


# -- the provider form ----------------------------------------------------------------------------


def clever_form(**extra: str) -> dict[str, str]:
    return {
        "tenant": str(tenant_get_or_create(slug="north").pk),
        "name": "Clever",
        "provider_type": "CLEVER",
        "enabled": "on",
        "schedule_preset": "weekdays",
        "cfg_CLEVER_districtId": "5f1e",
        "cfg_CLEVER_accessToken": "tok-SECRET-123",
        "create_users": "on",
        "deactivate_missing": "on",
        **extra,
    }


def change_form(provider: SisProvider, **extra: str) -> dict[str, str]:
    """What the browser sends back for an unchanged provider page, plus `extra`."""
    form = {
        "name": provider.name,
        "enabled": "on",
        "schedule_preset": "",
        "create_users": "on",
        "deactivate_missing": "on",
        "cfg_CLEVER_districtId": provider.config.get("districtId", ""),
    }
    return {**form, **extra}


def test_it_creates_a_provider_from_labelled_fields_and_audits_it(dana: Client) -> None:
    response = dana.post(reverse("admin:sis_sync_sisprovider_add"), clever_form())
    assert response.status_code == 302, response.context["adminform"].form.errors

    provider = SisProvider.objects.get(name="Clever")
    assert provider.config == {"districtId": "5f1e", "accessToken": "tok-SECRET-123"}
    assert provider.sync_schedule == "0 6 * * 1-5"
    assert provider.options == {"createUsers": True, "deactivateMissing": True}
    event = AuditEvent.objects.get(action="provider.created")
    assert event.actor == "dana" and event.target_id == str(provider.pk)


def test_the_clever_contacts_option_is_a_checkbox_and_contacts_a_role(dana: Client) -> None:
    form = clever_form(include_contacts="on", roles=["student", "contact"])
    response = dana.post(reverse("admin:sis_sync_sisprovider_add"), form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    provider = SisProvider.objects.get(name="Clever")
    assert provider.options == {
        "createUsers": True,
        "deactivateMissing": True,
        "roles": ["student", "contact"],
        "includeContacts": True,
    }
    shown = dana.get(change_url("sisprovider", provider.pk)).context["adminform"].form
    assert shown.initial["include_contacts"] is True and "include_contacts" in shown.fields

    dana.post(change_url("sisprovider", provider.pk), change_form(provider))
    provider.refresh_from_db()
    assert provider.options == {"createUsers": True, "deactivateMissing": True}


def test_it_never_renders_a_stored_secret_and_keeps_it_when_left_blank(dana: Client) -> None:
    dana.post(reverse("admin:sis_sync_sisprovider_add"), clever_form())
    provider = SisProvider.objects.get(name="Clever")
    url = change_url("sisprovider", provider.pk)

    page = dana.get(url).content.decode()
    assert "tok-SECRET-123" not in page and MASK not in page
    assert "A value is stored (not shown)" in page
    assert 'type="password" name="cfg_CLEVER_accessToken"' in page

    response = dana.post(url, change_form(provider, cfg_CLEVER_pageSize="500"))
    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.config == {
        "districtId": "5f1e",
        "accessToken": "tok-SECRET-123",
        "pageSize": 500,
    }
    assert provider.sync_schedule is None  # "Manual only" was chosen

    failed = dana.post(
        url,
        change_form(
            provider, cfg_CLEVER_accessToken="typed-NEW-secret", cfg_CLEVER_baseUrl="ftp://x"
        ),
    )
    body = failed.content.decode()
    assert failed.status_code == 200 and "must be an https:// URL" in body
    assert "typed-NEW-secret" not in body  # not even the secret just typed
    provider.refresh_from_db()
    assert provider.config["accessToken"] == "tok-SECRET-123"


def test_it_removes_a_stored_secret_when_asked(dana: Client) -> None:
    dana.post(
        reverse("admin:sis_sync_sisprovider_add"),
        clever_form(cfg_CLEVER_clientId="app", cfg_CLEVER_clientSecret="app-secret"),
    )
    provider = SisProvider.objects.get(name="Clever")
    response = dana.post(
        change_url("sisprovider", provider.pk),
        change_form(provider, cfg_CLEVER_clientId="app", cfg_CLEVER_accessToken__clear="on"),
    )
    assert response.status_code == 302
    provider.refresh_from_db()
    assert not provider.config["accessToken"]
    assert provider.config["clientSecret"] == "app-secret"

    refused = dana.post(
        change_url("sisprovider", provider.pk),
        change_form(provider, cfg_CLEVER_clientSecret__clear="on"),
    )
    assert "accessToken (or clientId and clientSecret)" in refused.content.decode()


@pytest.mark.parametrize(
    ("preset", "cron", "message"),
    [
        ("custom", "61 * * * *", "is not a valid cron expression"),
        ("custom", "every day", "neither a preset"),
        ("custom", "", "Type a cron expression"),
    ],
)
def test_it_refuses_a_bad_custom_schedule(
    dana: Client, preset: str, cron: str, message: str
) -> None:
    response = dana.post(
        reverse("admin:sis_sync_sisprovider_add"),
        clever_form(schedule_preset=preset, schedule_cron=cron),
    )
    assert response.status_code == 200 and message in response.content.decode()
    assert not SisProvider.objects.exists()


def test_it_stores_a_custom_schedule_and_options(dana: Client) -> None:
    response = dana.post(
        reverse("admin:sis_sync_sisprovider_add"),
        clever_form(
            schedule_preset="custom",
            schedule_cron="30 5 * * 1-5",
            deactivate_missing="",
            deletion_threshold='{"users": 0.2}',
            school_filter="sch-1, sch-2",
            roles=["student", "teacher"],
        ),
    )
    assert response.status_code == 302
    provider = SisProvider.objects.get()
    assert provider.sync_schedule == "30 5 * * 1-5"
    assert provider.options == {
        "createUsers": True,
        "deactivateMissing": False,
        "deletionThreshold": {"users": 0.2},
        "schoolFilter": ["sch-1", "sch-2"],
        "roles": ["student", "teacher"],
    }
    page = dana.get(change_url("sisprovider", provider.pk)).content.decode()
    assert 'value="30 5 * * 1-5"' in page and "sch-1\nsch-2" in page


def test_it_stores_an_uploaded_bundle_and_refuses_a_non_zip(
    dana: Client, sample_bundle: Path, tmp_path: Path
) -> None:
    form = {
        "tenant": str(tenant_get_or_create(slug="north").pk),
        "name": "Files",
        "provider_type": "ONEROSTER_CSV",
        "enabled": "on",
        "create_users": "on",
        "deactivate_missing": "on",
    }
    refused = dana.post(
        reverse("admin:sis_sync_sisprovider_add"),
        {**form, "bundle": SimpleUploadedFile("bundle.zip", b"not a zip")},
    )
    assert "is not a .zip file" in refused.content.decode()
    assert not SisProvider.objects.exists()

    data = zipped(sample_bundle, tmp_path / "b.zip")
    response = dana.post(
        reverse("admin:sis_sync_sisprovider_add"),
        {**form, "bundle": SimpleUploadedFile("bundle.zip", data), "_continue": "1"},
    )
    provider = SisProvider.objects.get(name="Files")
    assert response.status_code == 302 and response["Location"].endswith(
        change_url("sisprovider", provider.pk)
    )
    assert provider.config == {} and Path(provider.bundle_path).read_bytes() == data


def test_it_disables_instead_of_deleting(dana: Client, sample_bundle: Path) -> None:
    run = sync(sample_bundle, tenant="north")
    response = dana.post(
        reverse(CHANGELIST),
        {"action": "disable_selected", "_selected_action": [run.provider_id]},
    )
    assert response.status_code == 302
    provider = SisProvider.objects.get(pk=run.provider_id)
    assert not provider.enabled and SisSyncRun.objects.filter(pk=run.pk).exists()
    assert AuditEvent.objects.filter(action="provider.disabled", actor="dana").exists()
    assert "delete_selected" not in dana.get(reverse(CHANGELIST)).content.decode()


# -- actions on the provider page -----------------------------------------------------------------


@pytest.fixture
def north_files(sample_bundle: Path, tmp_path: Path) -> SisProvider:
    from sis_sync.providers import provider_store_bundle

    provider = provider_create(
        tenant=tenant_get_or_create(slug="north"),
        provider_type=ProviderType.ONEROSTER_CSV,
        name="Files",
        config={},
    )
    provider_store_bundle(provider=provider, source=sample_bundle)
    return provider


def messages_of(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]]


def test_run_sync_now_starts_a_manual_sync_by_the_user(
    dana: Client, north_files: SisProvider, django_capture_on_commit_callbacks
) -> None:
    url = reverse("admin:sis_sync_sisprovider_sync", args=[north_files.pk])
    with django_capture_on_commit_callbacks(execute=True):  # the hand-over to the workers
        response = dana.post(url, follow=True)

    run = north_files.runs.get()
    assert run.is_manual and run.triggered_by == "dana" and not run.dry_run
    assert messages_of(response) == [
        f'Sync started: <a href="{change_url("sissyncrun", run.pk)}">run {run.pk}</a>. '
        "Its progress shows below."
    ]
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS
    assert School.objects.filter(tenant__slug="north").exists()
    assert dana.get(url).status_code == 405


def test_dry_run_changes_nothing(
    dana: Client, north_files: SisProvider, django_capture_on_commit_callbacks
) -> None:
    url = reverse("admin:sis_sync_sisprovider_sync", args=[north_files.pk])
    with django_capture_on_commit_callbacks(execute=True):
        dana.post(url, {"dry_run": "1"})
    run = north_files.runs.get()
    assert run.dry_run and run.status == RunStatus.SUCCESS, run.error_message
    assert run.stats["users"]["created"] > 0
    assert not Person.objects.exists()


def test_it_says_when_a_sync_is_already_running(dana: Client, north_files: SisProvider) -> None:
    running = sync_start(provider=north_files, is_manual=False)
    response = dana.post(
        reverse("admin:sis_sync_sisprovider_sync", args=[north_files.pk]), follow=True
    )
    assert messages_of(response) == [
        f"Sync not started: A sync of this provider is already running (run {running.pk})"
    ]
    status = dana.get(reverse("admin:sis_sync_sisprovider_status", args=[north_files.pk])).json()
    assert status["isRunning"] and status["currentRun"]["id"] == running.pk
    assert status["currentRun"]["status"] == "PENDING"
    running_page = dana.get(change_url("sissyncrun", running.pk)).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in running_page

    cancelled = dana.post(
        reverse("admin:sis_sync_sisprovider_cancel", args=[north_files.pk]), follow=True
    )
    assert f"run {running.pk}</a> cancelled." in messages_of(cancelled)[0]
    running.refresh_from_db()
    assert running.status == RunStatus.CANCELLED


def test_test_connection_shows_the_result_and_is_audited(
    dana: Client, north_files: SisProvider
) -> None:
    url = reverse("admin:sis_sync_sisprovider_test", args=[north_files.pk])
    response = dana.post(url, follow=True)
    [message] = messages_of(response)
    assert message.startswith("Connection test passed: manifest.csv + ")
    empty = provider_create(
        tenant=north_files.tenant, provider_type="ONEROSTER_CSV", name="Empty", config={}
    )
    failed = dana.post(reverse("admin:sis_sync_sisprovider_test", args=[empty.pk]), follow=True)
    assert messages_of(failed) == [
        "Connection test failed: No bundle has been uploaded to this provider yet"
    ]
    assert AuditEvent.objects.filter(action="provider.tested", actor="dana").count() == 2


def test_the_provider_page_shows_status_actions_and_recent_runs(
    dana: Client, sample_bundle: Path
) -> None:
    run = sync(sample_bundle, tenant="north")
    page = dana.get(change_url("sisprovider", run.provider_id)).content.decode()
    for text in ("Run sync now", "Dry run", "Test connection", f"#{run.pk}", "sis-badge-SUCCESS"):
        assert text in page
    status = dana.get(reverse("admin:sis_sync_sisprovider_status", args=[run.provider_id])).json()
    assert status["isRunning"] is False and status["lastStatus"] == "SUCCESS"
    assert status["latestRun"]["id"] == run.pk


# -- runs -----------------------------------------------------------------------------------------


@pytest.fixture
def district(sample_bundle: Path, tmp_path: Path) -> Path:
    return bundles.copy(sample_bundle, tmp_path / "district")


def test_a_run_page_shows_stats_paginated_rejects_and_a_csv(dana: Client, district: Path) -> None:
    def break_users(rows: list[dict]) -> list[dict]:
        for row in rows[1:61]:
            row["role"] = "studnet"
        return rows

    bundles.edit(district, "users", break_users)
    run = sync(district, tenant="north")
    assert run.status == RunStatus.PARTIAL
    total = run.rejects.count()
    assert total > 50

    page = dana.get(change_url("sissyncrun", run.pk))
    body = page.content.decode()
    assert f"Rejected records ({total})" in body
    assert "unknown role &#x27;studnet&#x27;" in body or "unknown role 'studnet'" in body
    assert len(page.context["rejects_page"]) == 50
    assert page.context["stats"][2]["entity"] == "users"
    assert page.context["stats"][2]["counts"][5] == f"{run.stats['users']['rejected']:,}"
    second = dana.get(change_url("sissyncrun", run.pk) + "?rejects_page=2")
    assert [r.pk for r in second.context["rejects_page"]] == list(
        run.rejects.order_by("id").values_list("pk", flat=True)[50:100]
    )

    download = dana.get(reverse("admin:sis_sync_sissyncrun_rejects_csv", args=[run.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert download["Content-Type"] == "text/csv"
    assert len(rows) == total and rows[0].keys() == {
        "entity",
        "externalId",
        "line",
        "reason",
        "raw",
    }


def test_the_runs_list_filters_by_status_and_trigger(dana: Client, district: Path) -> None:
    first = sync(district, tenant="north")
    second = sync(district, tenant="north", dry_run=True)
    listing = dana.get(reverse("admin:sis_sync_sissyncrun_changelist") + "?dry_run__exact=1")
    assert [r.pk for r in listing.context["cl"].result_list] == [second.pk]
    search = dana.get(reverse("admin:sis_sync_sissyncrun_changelist") + f"?q=%23{first.pk}")
    assert [r.pk for r in search.context["cl"].result_list] == [first.pk]
    body = dana.get(reverse("admin:sis_sync_sissyncrun_changelist")).content.decode()
    assert "sis-badge-SUCCESS" in body and "manual" in body


def held_run(district: Path) -> SisSyncRun:
    sync(district, tenant="north")
    students = bundles.students(district)
    bundles.drop_users(district, {s["sourcedId"] for s in students[: len(students) * 3 // 10]})
    run = sync(district, tenant="north")
    assert run.status == RunStatus.HELD
    return run


def test_a_held_run_shows_its_plan_and_can_be_discarded(dana: Client, district: Path) -> None:
    run = held_run(district)
    page = dana.get(change_url("sissyncrun", run.pk)).content.decode()
    assert "Held for review" in page and "users: would deactivate" in page
    assert f"{run.stats['users']['deactivated']} people would be deactivated" in page
    assert 'id="run-approve"' in page and 'id="run-discard"' in page

    response = dana.post(reverse("admin:sis_sync_sissyncrun_discard", args=[run.pk]), follow=True)
    assert messages_of(response) == [f"Run #{run.pk} discarded: nothing was applied."]
    run.refresh_from_db()
    assert run.status == RunStatus.DISCARDED and run.decided_by == "dana"
    assert not Person.objects.filter(is_active=False).exists()
    again = dana.post(reverse("admin:sis_sync_sissyncrun_approve", args=[run.pk]), follow=True)
    assert "not HELD" in messages_of(again)[0]


# -- make demo ------------------------------------------------------------------------------------


def test_demo_setup_creates_a_platform_and_a_district_admin() -> None:
    tenant_get_or_create(slug="demo-district")
    out = io.StringIO()
    call_command("demo_setup", "--tenant", "demo-district", stdout=out)
    text = out.getvalue()
    client = Client()
    platform_password = text.split("demo-admin")[1].split("password:")[1].split()[0]
    district_password = text.split("district-admin")[1].split("password:")[1].split()[0]
    assert client.login(username="demo-admin", password=platform_password)
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.login(username="district-admin", password=district_password)
    district = get_user_model().objects.get(username="district-admin")
    assert not district.is_superuser and district.is_staff
    assert [m.tenant.slug for m in district.sis_memberships.all()] == ["demo-district"]
    assert client.get(reverse(CHANGELIST)).status_code == 200


def test_it_leaves_no_temporary_upload_behind(
    dana: Client, sample_bundle: Path, tmp_path: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    data = zipped(sample_bundle, tmp_path / "b.zip")
    dana.post(
        reverse("admin:sis_sync_sisprovider_add"),
        {
            "tenant": str(tenant_get_or_create(slug="north").pk),
            "name": "Files",
            "provider_type": "ONEROSTER_CSV",
            "enabled": "on",
            "bundle": SimpleUploadedFile("bundle.zip", data),
        },
    )
    leftovers = list((Path(settings.SIS_SYNC_DATA_DIR) / "tmp").glob("*"))
    assert SisProvider.objects.get(name="Files").bundle_path
    assert leftovers == []


def test_the_audit_trail_names_only_the_fields_that_changed(dana: Client) -> None:
    dana.post(reverse("admin:sis_sync_sisprovider_add"), clever_form())
    provider = SisProvider.objects.get(name="Clever")
    url = change_url("sisprovider", provider.pk)
    unchanged = change_form(provider, schedule_preset="weekdays")

    assert dana.post(url, unchanged).status_code == 302
    assert not AuditEvent.objects.filter(action="provider.updated").exists()

    dana.post(url, {**unchanged, "schedule_preset": "daily"})
    event = AuditEvent.objects.get(action="provider.updated")
    assert event.actor == "dana" and event.details == {"changed": ["syncSchedule"]}
    provider.refresh_from_db()
    assert provider.sync_schedule == "0 2 * * *"


def test_it_builds_a_oneroster_api_config_from_its_fields(dana: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True  # a local address, as in development
    form = {
        "tenant": str(tenant_get_or_create(slug="north").pk),
        "name": "District SIS",
        "provider_type": "ONEROSTER_API",
        "enabled": "on",
        "create_users": "on",
        "deactivate_missing": "on",
        "cfg_ONEROSTER_API_baseUrl": "http://127.0.0.1:9/ims/oneroster/v1p1",
        "cfg_ONEROSTER_API_authMethod": "oauth2",
        "cfg_ONEROSTER_API_clientId": "sis-app",
        "cfg_ONEROSTER_API_clientSecret": "s3cret",
        "cfg_ONEROSTER_API_pageSize": "500",
        # Fields of another type, left in the form by a user who changed their mind: ignored.
        "cfg_CLEVER_districtId": "not-this-one",
    }
    missing = dana.post(reverse("admin:sis_sync_sisprovider_add"), form)
    assert "config is missing tokenUrl" in missing.content.decode()

    form["cfg_ONEROSTER_API_tokenUrl"] = "http://127.0.0.1:9/oauth/token"
    assert dana.post(reverse("admin:sis_sync_sisprovider_add"), form).status_code == 302
    assert SisProvider.objects.get().config == {
        "baseUrl": "http://127.0.0.1:9/ims/oneroster/v1p1",
        "authMethod": "oauth2",
        "clientId": "sis-app",
        "clientSecret": "s3cret",
        "tokenUrl": "http://127.0.0.1:9/oauth/token",
        "pageSize": 500,
    }


def test_it_keeps_a_stored_sftp_password_and_can_switch_to_uploads(dana: Client, settings) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    host_key = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    sftp = {
        "cfg_ONEROSTER_CSV_sftp__host": "127.0.0.1",
        "cfg_ONEROSTER_CSV_sftp__port": "2222",
        "cfg_ONEROSTER_CSV_sftp__username": "district",
        "cfg_ONEROSTER_CSV_sftp__hostKey": host_key,
        "cfg_ONEROSTER_CSV_remotePath": "/exports/oneroster",
    }
    base = {"name": "Nightly files", "enabled": "on", "create_users": "on"}
    dana.post(
        reverse("admin:sis_sync_sisprovider_add"),
        {
            **base,
            **sftp,
            "tenant": str(tenant_get_or_create(slug="north").pk),
            "provider_type": "ONEROSTER_CSV",
            "cfg_ONEROSTER_CSV_sftp__password": "pw-SECRET",
        },
    )
    provider = SisProvider.objects.get()
    url = change_url("sisprovider", provider.pk)
    assert "pw-SECRET" not in dana.get(url).content.decode()

    assert dana.post(url, {**base, **sftp, "deactivate_missing": ""}).status_code == 302
    provider.refresh_from_db()
    assert provider.config["sftp"] == {
        "host": "127.0.0.1",
        "port": 2222,
        "username": "district",
        "password": "pw-SECRET",
        "hostKey": host_key,
    }
    assert provider.options["deactivateMissing"] is False

    # No SFTP server any more: the provider takes uploaded bundles instead.
    assert dana.post(url, base).status_code == 302
    provider.refresh_from_db()
    assert provider.config == {}


def test_upload_and_sync_keeps_the_bundle_and_syncs_it(
    dana: Client, sample_bundle: Path, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    provider = provider_create(
        tenant=tenant_get_or_create(slug="north"),
        provider_type=ProviderType.ONEROSTER_CSV,
        name="Files",
        config={},
    )
    url = reverse("admin:sis_sync_sisprovider_upload", args=[provider.pk])
    refused = dana.post(url, {"bundle": SimpleUploadedFile("b.zip", b"nope")}, follow=True)
    assert messages_of(refused)[0].startswith("Upload refused: The upload is not a .zip file")
    assert not provider.runs.exists()

    data = zipped(sample_bundle, tmp_path / "b.zip")
    with django_capture_on_commit_callbacks(execute=True):
        dana.post(url, {"bundle": SimpleUploadedFile("b.zip", data)})
    run = provider.runs.get()
    assert run.status == RunStatus.SUCCESS and run.triggered_by == "dana"
    provider.refresh_from_db()
    assert Path(provider.bundle_path).read_bytes() == data
    assert Person.objects.filter(tenant__slug="north").exists()
