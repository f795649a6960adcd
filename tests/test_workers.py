"""The chain on real Celery workers with a real Redis and PostgreSQL (not eager mode)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from config.celery import app
from sis_sync.errors import AlreadyRunning
from sis_sync.models import Enrollment, Person, RunStatus, SisSyncRun
from sis_sync.providers import provider_store_bundle, upload_provider_get_or_create
from sis_sync.sync import sync_start
from sis_sync.tasks import enqueue_run
from sis_sync.tenants import tenant_get_or_create
from tests import bundles
from tests.workers import celery_workers, children, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
FINISHED = (RunStatus.SUCCESS, RunStatus.PARTIAL, RunStatus.FAILURE, RunStatus.CANCELLED)


@pytest.fixture
def broker(redis_url: str, settings: Any) -> Any:
    """Sends tasks to Redis for real workers."""
    settings.REDIS_URL = redis_url
    previous = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url = redis_url
    app.conf.task_always_eager = False
    _forget_connections()
    yield redis_url
    app.conf.broker_url, app.conf.task_always_eager = previous
    _forget_connections()


def _forget_connections() -> None:
    """Drops (without closing: kombu's registry may share them) the pools an earlier test made
    for another broker, so the app connects to the one configured now."""
    app._pool = None
    app.amqp._producer_pool = None


def upload_provider(slug: str, bundle: Path):  # type: ignore[no-untyped-def]
    provider = upload_provider_get_or_create(tenant=tenant_get_or_create(slug=slug))
    provider_store_bundle(provider=provider, source=bundle)
    return provider


def finished(run_id: int) -> SisSyncRun | None:
    run = SisSyncRun.objects.get(pk=run_id)
    return run if run.status in FINISHED else None


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_chain_to_success_on_a_worker(
    broker: str, tmp_path: Path, sample_bundle: Path, settings: Any
) -> None:
    provider = upload_provider("chain", sample_bundle)
    run = sync_start(provider=provider, is_manual=True)

    with celery_workers(broker, settings.SIS_SYNC_DATA_DIR):
        enqueue_run(run.pk)
        done = wait_for(lambda: finished(run.pk), timeout=90, what="the run to finish")

    assert done.status == RunStatus.SUCCESS, done.error_message
    assert Person.objects.count() == len(bundles.read(sample_bundle, "users"))
    assert done.task_id


@pytest.mark.django_db(transaction=True)
def test_it_lets_one_of_20_concurrent_triggers_run(sample_bundle: Path) -> None:
    provider = upload_provider("twenty", sample_bundle)
    results: list[Any] = []
    barrier = threading.Barrier(20)

    def trigger() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(sync_start(provider=provider, is_manual=True).pk)
        except AlreadyRunning as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    started = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, AlreadyRunning)]
    assert len(started) == 1 and len(refused) == 19
    assert all(r.run_id == started[0] for r in refused)
    assert SisSyncRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_never_runs_more_than_the_limit_across_two_workers(
    broker: str, sample_bundle: Path, settings: Any
) -> None:
    runs = []
    for n in range(6):
        provider = upload_provider(f"district-{n}", sample_bundle)
        runs.append(sync_start(provider=provider, is_manual=True).pk)
    peak = 0

    with celery_workers(
        broker,
        settings.SIS_SYNC_DATA_DIR,
        count=2,
        concurrency=2,
        env={"MAX_CONCURRENT_SYNCS": "2"},
    ):
        for run_id in runs:
            enqueue_run(run_id)

        def all_done() -> bool:
            nonlocal peak
            running = SisSyncRun.objects.filter(status=RunStatus.IN_PROGRESS).count()
            peak = max(peak, running)
            return SisSyncRun.objects.filter(pk__in=runs, status__in=FINISHED).count() == 6

        wait_for(all_done, timeout=240, interval=0.05, what="six runs to finish")

    assert 1 <= peak <= 2
    assert set(SisSyncRun.objects.values_list("status", flat=True)) == {RunStatus.SUCCESS}


@pytest.mark.django_db(transaction=True)
def test_it_never_half_applies_when_the_worker_is_killed_during_load(
    broker: str, tmp_path: Path, settings: Any
) -> None:
    from sis_sync.district_generator import generate_district

    bundle = tmp_path / "big"
    generate_district(bundle, students=6000, seed=5)
    expected = len(bundles.read(bundle, "users"))
    provider = upload_provider("killed", bundle)
    run = sync_start(provider=provider, is_manual=True)

    with celery_workers(broker, settings.SIS_SYNC_DATA_DIR) as (worker,):
        enqueue_run(run.pk)
        wait_for(
            lambda: SisSyncRun.objects.filter(pk=run.pk, phase__in=("plan", "load")).exists(),
            timeout=120,
            interval=0.02,
            what="the load to start",
        )
        for child in children(worker.pid):
            os.kill(child, signal.SIGKILL)
        done = wait_for(lambda: finished(run.pk), timeout=180, what="the run to end")

    people = Person.objects.count()
    if done.status == RunStatus.SUCCESS:
        assert people == expected
        assert Enrollment.objects.count() == len(bundles.read(bundle, "enrollments"))
    else:
        assert done.status == RunStatus.FAILURE
        assert people == 0 and Enrollment.objects.count() == 0
    assert done.attempts >= 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_share_the_extraction_of_one_big_sync(
    broker: str, tmp_path: Path, settings: Any
) -> None:
    """A OneRoster REST sync split into one task per entity type: both workers take parts, the
    server sees their requests at the same time, a part that meets a transient error runs
    again, and the load follows once every part is in."""
    from sis_sync.district_generator import generate_district
    from sis_sync.models import ProviderType
    from sis_sync.providers import provider_create
    from tests.fake_oneroster_server import FakeOneRoster, district_objects

    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    Path(settings.SIS_SYNC_DATA_DIR).mkdir(parents=True, exist_ok=True)
    generate_district(tmp_path / "district", students=600, seed=4)
    with FakeOneRoster(district_objects(tmp_path / "district"), latency=0.05) as fake:
        provider = provider_create(
            tenant=tenant_get_or_create(slug="big"),
            provider_type=ProviderType.ONEROSTER_API,
            name="SIS",
            config=fake.provider_config(pageSize=100),
        )
        run = sync_start(provider=provider, is_manual=True)
        # The users part meets more 500s than the HTTP client retries: its task runs again.
        fake.inject("500", times=5, path="users")
        with celery_workers(
            broker, settings.SIS_SYNC_DATA_DIR, count=2, env={"SYNC_RETRY_DELAY": "0"}
        ):
            # Both workers listening before the sync starts (on a loaded machine one may take
            # seconds to boot, and the other would rightly take every part).
            wait_for(
                lambda: len(app.control.ping(timeout=1.0)) >= 2,
                timeout=60,
                what="both workers to answer a ping",
            )
            enqueue_run(run.pk)
            done = wait_for(lambda: finished(run.pk), timeout=120, what="the run to finish")

    assert done.status == RunStatus.SUCCESS, done.error_message
    parts = done.progress["parts"]
    assert sorted(parts) == ["classes", "enrollments", "schools", "users"]
    assert all(part["done"] for part in parts.values())
    assert {entity: part["attempts"] for entity, part in parts.items()} == {
        "schools": 1, "classes": 1, "users": 2, "enrollments": 1
    }  # fmt: skip
    workers = {part["worker"] for part in parts.values()}
    assert len(workers) == 2, parts  # each worker process took at least one part
    assert fake.max_in_flight >= 2  # and they pulled from the source at the same time
    assert Person.objects.count() == len(bundles.read(tmp_path / "district", "users"))
    assert Enrollment.objects.count() == len(bundles.read(tmp_path / "district", "enrollments"))
