"""A OneRoster REST extraction split into one part per entity type, joined before the load:
in-process here (each part called as a worker would), on two real workers in test_workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.oneroster_api import connector as oneroster_connector
from sis_sync.district_generator import generate_district
from sis_sync.extract_parts import pending_parts, sync_extract_part
from sis_sync.models import Person, ProviderType, RunStatus, SisProvider, SisSyncRun
from sis_sync.providers import provider_create
from sis_sync.runs import sync_cancel
from sis_sync.sync import TryAgain, sync_extract, sync_load, sync_run_inline, sync_start
from sis_sync.tenants import tenant_get_or_create
from staging.models import STAGING_MODELS, RunReject
from tests.fake_oneroster_server import FakeOneRoster, district_objects
from tests.sync_helpers import counts

pytestmark = pytest.mark.django_db
ENTITIES = ["schools", "classes", "users", "enrollments"]


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("district")
    generate_district(folder, students=300, seed=9)
    return folder


@pytest.fixture(autouse=True)
def _local_and_fast(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    monkeypatch.setattr(oneroster_connector, "RETRY_BACKOFF", 0.01)


@pytest.fixture
def fake(district: Path) -> Iterator[FakeOneRoster]:
    with FakeOneRoster(district_objects(district), auth="oauth2") as server:
        yield server


def provider_for(fake: FakeOneRoster, slug: str = "lakeview") -> SisProvider:
    return provider_create(
        tenant=tenant_get_or_create(slug=slug),
        provider_type=ProviderType.ONEROSTER_API,
        name="SIS",
        config=fake.provider_config(pageSize=200),
    )


def split_start(provider: SisProvider, **kwargs: Any) -> SisSyncRun:
    run = sync_start(provider=provider, is_manual=True, **kwargs)
    assert sync_extract(run_id=run.pk, split=True)
    return run


def staged(run: SisSyncRun, entity: str) -> int:
    return STAGING_MODELS[entity].objects.filter(run_id=run.pk).count()


def test_it_loads_the_same_roster_from_parts_as_from_one_extraction(fake: FakeOneRoster) -> None:
    whole = sync_run_inline(run_id=sync_start(provider=provider_for(fake), is_manual=True).pk)
    run = split_start(provider_for(fake, slug="split-twin"))

    assert pending_parts(run.pk) == ENTITIES
    assert all(staged(run, entity) == 0 for entity in ENTITIES)  # the parts stage, not extract
    last = [
        sync_extract_part(run_id=run.pk, entity=e, worker=f"w{n}") for n, e in enumerate(ENTITIES)
    ]
    assert last == [False, False, False, True]  # only the part that completes the set loads
    done = sync_load(run_id=run.pk)

    assert done.status == RunStatus.SUCCESS, done.error_message
    for entity in ENTITIES:
        assert counts(done, entity) == counts(whole, entity), entity
    parts = done.progress["parts"]
    assert {e: (p["done"], p["attempts"], p["worker"]) for e, p in parts.items()} == {
        "schools": (True, 1, "w0"),
        "classes": (True, 1, "w1"),
        "users": (True, 1, "w2"),
        "enrollments": (True, 1, "w3"),
    }
    assert parts["users"]["rows"] == counts(whole, "users")["created"]


def test_a_part_delivered_again_stages_its_entity_over_not_twice(fake: FakeOneRoster) -> None:
    run = split_start(provider_for(fake))
    sync_extract_part(run_id=run.pk, entity="users")
    once = staged(run, "users")
    # What the interrupted attempt rejected goes too (this district has nothing to reject).
    RunReject.objects.create(run=run, entity="user", external_id="u-9", reason="broken")
    # As if the worker died after staging but before marking the part done: delivered again.
    progress = SisSyncRun.objects.get(pk=run.pk).progress
    progress["parts"]["users"]["done"] = False
    SisSyncRun.objects.filter(pk=run.pk).update(progress=progress)

    sync_extract_part(run_id=run.pk, entity="users")

    assert staged(run, "users") == once > 0
    assert not run.rejects.exists()
    assert SisSyncRun.objects.get(pk=run.pk).progress["parts"]["users"]["attempts"] == 2
    # A part that is done is not done again.
    assert sync_extract_part(run_id=run.pk, entity="users") is False
    assert SisSyncRun.objects.get(pk=run.pk).progress["parts"]["users"]["attempts"] == 2


def test_a_part_interrupted_three_times_fails_the_run(fake: FakeOneRoster) -> None:
    run = split_start(provider_for(fake))
    progress = SisSyncRun.objects.get(pk=run.pk).progress
    progress["parts"]["classes"]["attempts"] = 3
    SisSyncRun.objects.filter(pk=run.pk).update(progress=progress)

    assert sync_extract_part(run_id=run.pk, entity="classes") is False

    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE
    assert "Extracting classes was interrupted 3 times" in run.error_message


def test_a_failing_part_fails_the_run_and_the_others_stop(fake: FakeOneRoster) -> None:
    run = split_start(provider_for(fake))
    sync_extract_part(run_id=run.pk, entity="schools")
    fake.inject("500", times=50, path="users")

    assert sync_extract_part(run_id=run.pk, entity="users") is False
    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE and run.error_message
    assert sync_extract_part(run_id=run.pk, entity="classes") is False
    assert all(staged(run, entity) == 0 for entity in ENTITIES)  # released with the run


def test_a_cancelled_split_run_stops_its_parts_and_applies_nothing(fake: FakeOneRoster) -> None:
    provider = provider_for(fake)
    run = split_start(provider)
    sync_extract_part(run_id=run.pk, entity="schools")
    sync_cancel(provider=provider, cancelled_by="dana")

    assert sync_extract_part(run_id=run.pk, entity="users") is False
    assert sync_load(run_id=run.pk).status == RunStatus.CANCELLED
    assert staged(run, "schools") == 0
    assert not Person.objects.filter(tenant=provider.tenant).exists()


def test_a_selective_run_splits_only_what_it_asked_for(fake: FakeOneRoster) -> None:
    run = split_start(provider_for(fake), entities=["schools", "users"])
    assert pending_parts(run.pk) == ["schools", "users"]


def test_a_part_that_meets_a_transient_error_asks_to_run_again(fake: FakeOneRoster) -> None:
    run = split_start(provider_for(fake))
    fake.inject("500", times=5, path="users")  # more than the HTTP client's own 4 retries

    with pytest.raises(TryAgain, match="HTTP 500"):
        sync_extract_part(run_id=run.pk, entity="users", retry_transient=True)
    assert SisSyncRun.objects.get(pk=run.pk).status == RunStatus.IN_PROGRESS
    assert sync_extract_part(run_id=run.pk, entity="users", retry_transient=True) is False
    run.refresh_from_db()
    assert run.progress["parts"]["users"] | {"rows": 0} == {
        "rows": 0, "done": True, "attempts": 2, "worker": ""
    }  # fmt: skip


def test_a_part_failing_its_third_attempt_fails_the_run(fake: FakeOneRoster) -> None:
    run = split_start(provider_for(fake))
    fake.inject("500", times=1000, path="enrollments")
    for _ in range(2):
        with pytest.raises(TryAgain):
            sync_extract_part(run_id=run.pk, entity="enrollments", retry_transient=True)

    assert sync_extract_part(run_id=run.pk, entity="enrollments", retry_transient=True) is False

    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE
    assert run.error_message.endswith("after 5 tries (after 3 attempts)"), run.error_message


def test_an_extraction_that_is_not_split_asks_to_run_again_too(fake: FakeOneRoster) -> None:
    run = sync_start(provider=provider_for(fake), is_manual=True)
    fake.inject("500", times=5, path="classes")

    with pytest.raises(TryAgain):
        sync_extract(run_id=run.pk, retry_transient=True)
    assert SisSyncRun.objects.get(pk=run.pk).progress["retrying"].startswith("the OneRoster")
    assert sync_extract(run_id=run.pk, retry_transient=True)
    assert sync_load(run_id=run.pk).status == RunStatus.SUCCESS


def test_in_process_a_transient_error_fails_the_run_at_once(
    fake: FakeOneRoster, django_capture_on_commit_callbacks: Any
) -> None:
    from sis_sync.tasks import enqueue_run

    fake.inject("500", times=5, path="users")
    run = sync_start(provider=provider_for(fake), is_manual=True)
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_run(run.pk)  # eager tasks: the embedded mode

    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE
    assert run.error_message.endswith("after 5 tries"), run.error_message
