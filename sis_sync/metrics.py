"""Prometheus metrics (`/metrics`): counters kept in the database, gauges read from it.

Counters are incremented where things happen (a run ending, a sync waiting for a slot) with a
set-based UPDATE, so any number of workers add to the same numbers and they survive restarts.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.http import HttpRequest, HttpResponse

from sis_sync.models import MetricCounter, SisSyncRun
from sis_sync.models.runs import ACTIVE_STATUSES, RunStatus

HELP = {
    "sis_sync_runs_finished_total": (
        "counter",
        "Sync runs that ended, by status and provider type",
    ),
    "sis_sync_run_duration_seconds_sum": ("counter", "Total seconds of ended runs"),
    "sis_sync_run_duration_seconds_count": ("counter", "Number of ended runs timed"),
    "sis_sync_entities_changed_total": ("counter", "Roster entities changed by applied runs"),
    "sis_sync_slot_waits_total": ("counter", "Times a sync waited for a MAX_CONCURRENT_SYNCS slot"),
    "sis_sync_runs_active": ("gauge", "Runs pending or in progress, by status"),
    "sis_sync_runs_held": ("gauge", "Runs held for review"),
}


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def increment(name: str, by: float = 1.0, **labels: str) -> None:
    key = _labels(**labels)
    if MetricCounter.objects.filter(name=name, labels=key).update(value=F("value") + by):
        return
    try:
        with transaction.atomic():
            MetricCounter.objects.create(name=name, labels=key, value=by)
    except IntegrityError:  # another worker created it first
        MetricCounter.objects.filter(name=name, labels=key).update(value=F("value") + by)


def record_run_end(run: SisSyncRun, provider_type: str) -> None:
    increment("sis_sync_runs_finished_total", status=run.status, provider_type=provider_type)
    seconds = (run.stats or {}).get("durationSeconds")
    if isinstance(seconds, int | float):
        increment("sis_sync_run_duration_seconds_sum", seconds, provider_type=provider_type)
        increment("sis_sync_run_duration_seconds_count", provider_type=provider_type)
    if run.status in (RunStatus.SUCCESS, RunStatus.PARTIAL) and not run.dry_run:
        for entity, counts in (run.stats or {}).items():
            if not isinstance(counts, dict):
                continue
            for kind in ("created", "updated", "deactivated", "reactivated", "rejected"):
                if counts.get(kind):
                    increment(
                        "sis_sync_entities_changed_total", counts[kind], entity=entity, kind=kind
                    )


def render() -> str:
    lines: list[str] = []
    samples: dict[str, list[tuple[str, float]]] = {}
    for counter in MetricCounter.objects.order_by("name", "labels"):
        samples.setdefault(counter.name, []).append((counter.labels, counter.value))
    active = SisSyncRun.objects.filter(status__in=ACTIVE_STATUSES).values("status")
    samples["sis_sync_runs_active"] = [
        (_labels(status=row["status"]), row["n"]) for row in active.annotate(n=Count("id"))
    ] or [(_labels(status=RunStatus.IN_PROGRESS), 0)]
    samples["sis_sync_runs_held"] = [("", SisSyncRun.objects.filter(status=RunStatus.HELD).count())]
    for name, values in samples.items():
        kind, text = HELP.get(name, ("untyped", name))
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in values:
            lines.append(f"{name}{{{labels}}} {value:g}" if labels else f"{name} {value:g}")
    return "\n".join(lines) + "\n"


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(render(), content_type="text/plain; version=0.0.4; charset=utf-8")
