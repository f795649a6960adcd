"""Each enabled provider with a schedule has exactly one PeriodicTask (SPEC §4)."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from sis_sync.errors import BadRequest
from sis_sync.providers import provider_create, provider_disable, provider_update
from sis_sync.scheduling import REAPER_NAME, schedules_reconcile, task_name
from sis_sync.sync import sync_start
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def make_provider(schedule: str | None = "hourly", timezone: str = "America/Chicago"):  # type: ignore[no-untyped-def]
    tenant = TenantFactory(timezone=timezone)
    return provider_create(
        tenant=tenant,
        provider_type="ONEROSTER_CSV",
        name="Nightly",
        config={},
        sync_schedule=schedule,
    )


def crontab_of(provider) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    task = PeriodicTask.objects.get(name=task_name(provider.pk))
    c = task.crontab
    return (c.minute, c.hour, c.day_of_month, c.month_of_year, c.day_of_week, str(c.timezone))


def test_it_creates_one_periodic_task_in_the_tenants_time_zone() -> None:
    provider = make_provider("hourly")

    task = PeriodicTask.objects.get(name=task_name(provider.pk))
    assert crontab_of(provider) == ("0", "*", "*", "*", "*", "America/Chicago")
    assert task.task == "sis_sync.scheduled_sync"
    assert json.loads(task.kwargs) == {"provider_id": provider.pk}
    assert PeriodicTask.objects.filter(task="sis_sync.scheduled_sync").count() == 1


def test_it_changes_clears_and_restores_the_schedule_with_the_provider() -> None:
    provider = make_provider("hourly")

    provider_update(provider=provider, sync_schedule="weekdays")
    assert crontab_of(provider)[:5] == ("0", "6", "*", "*", "1-5")
    assert CrontabSchedule.objects.count() == 1

    provider_update(provider=provider, sync_schedule=None)
    assert not PeriodicTask.objects.filter(name=task_name(provider.pk)).exists()
    assert CrontabSchedule.objects.count() == 0

    provider_update(provider=provider, sync_schedule="0 3 * * *")
    assert crontab_of(provider)[:2] == ("0", "3")


def test_it_removes_the_task_of_a_disabled_provider_which_never_syncs() -> None:
    provider = make_provider("daily")

    provider_disable(provider=provider)

    assert not PeriodicTask.objects.filter(name=task_name(provider.pk)).exists()
    with pytest.raises(BadRequest, match="Provider disabled"):
        sync_start(provider=provider, is_manual=True)


def test_it_refuses_an_invalid_cron_and_keeps_the_old_schedule() -> None:
    provider = make_provider("hourly")

    with pytest.raises(BadRequest, match="not a valid cron"):
        provider_update(provider=provider, sync_schedule="0 25 * * *")

    assert crontab_of(provider)[:2] == ("0", "*")


def test_it_reconciles_idempotently_and_removes_strays() -> None:
    provider = make_provider("hourly")
    PeriodicTask.objects.filter(name=task_name(provider.pk)).delete()
    stray_crontab = CrontabSchedule.objects.create(minute="5")
    PeriodicTask.objects.create(
        name="sis-sync: provider 999999", task="sis_sync.scheduled_sync", crontab=stray_crontab
    )

    first = schedules_reconcile()
    second = schedules_reconcile()

    assert first == {"scheduled": 1, "removed": 1}
    assert second == {"scheduled": 1, "removed": 0}
    assert crontab_of(provider)[:2] == ("0", "*")
    assert PeriodicTask.objects.filter(name=REAPER_NAME, task="sis_sync.reap_runs").count() == 1
