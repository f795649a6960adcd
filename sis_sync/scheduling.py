"""Keeps each provider's django-celery-beat PeriodicTask in step with the provider (SPEC §4).

An enabled provider with a schedule has exactly one PeriodicTask, named after it, with its own
CrontabSchedule in the tenant's time zone; any other provider has none. `schedule_sync` is
called by every provider change; `schedules_reconcile` repairs all of them (and registers the
reaper) and is idempotent.
"""

from __future__ import annotations

import json

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from sis_sync.models import SisProvider

SCHEDULED_TASK = "sis_sync.scheduled_sync"
REAPER_TASK = "sis_sync.reap_runs"
REAPER_NAME = "sis-sync: reap runs whose worker died"
SCIM_RETRY_TASK = "sis_sync.scim_retry"
SCIM_RETRY_NAME = "sis-sync: retry SCIM pushes"


def task_name(provider_id: int) -> str:
    return f"sis-sync: provider {provider_id}"


@transaction.atomic
def schedule_sync(provider: SisProvider) -> PeriodicTask | None:
    """Creates, changes or removes the provider's PeriodicTask; returns it (None if removed)."""
    name = task_name(provider.pk)
    existing = PeriodicTask.objects.filter(name=name).select_related("crontab").first()
    if not (provider.enabled and provider.sync_schedule):
        if existing is not None:
            crontab = existing.crontab
            existing.delete()
            if crontab is not None and not crontab.periodictask_set.exists():
                crontab.delete()
        return None
    minute, hour, day_of_month, month, day_of_week = provider.sync_schedule.split()
    fields = {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month,
        "day_of_week": day_of_week,
        "timezone": provider.tenant.timezone or "UTC",
    }
    crontab = existing.crontab if existing is not None else None
    if crontab is None:
        crontab = CrontabSchedule.objects.create(**fields)
    else:
        for key, value in fields.items():
            setattr(crontab, key, value)
        crontab.save()
    task, _ = PeriodicTask.objects.update_or_create(
        name=name,
        defaults={
            "task": SCHEDULED_TASK,
            "crontab": crontab,
            "interval": None,
            "kwargs": json.dumps({"provider_id": provider.pk}),
            "enabled": True,
            "queue": "sync",
        },
    )
    return task


def schedules_reconcile() -> dict[str, int]:
    """Every provider's PeriodicTask as it should be, strays removed, the reaper registered."""
    kept = 0
    for provider in SisProvider.objects.select_related("tenant"):
        if schedule_sync(provider) is not None:
            kept += 1
    wanted = {task_name(pk) for pk in SisProvider.objects.values_list("pk", flat=True)}
    strays = PeriodicTask.objects.filter(task=SCHEDULED_TASK).exclude(name__in=wanted)
    removed = strays.count()
    strays.delete()
    every_5_minutes, _ = IntervalSchedule.objects.get_or_create(
        every=5, period=IntervalSchedule.MINUTES
    )
    PeriodicTask.objects.update_or_create(
        name=REAPER_NAME,
        defaults={"task": REAPER_TASK, "interval": every_5_minutes, "crontab": None},
    )
    # Issue 11: retries of backed-off SCIM pushes, and forgetting old webhook event ids.
    every_minute, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.MINUTES
    )
    PeriodicTask.objects.update_or_create(
        name=SCIM_RETRY_NAME,
        defaults={"task": SCIM_RETRY_TASK, "interval": every_minute, "crontab": None},
    )
    return {"scheduled": kept, "removed": removed}
