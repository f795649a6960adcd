"""How runs read on admin pages: status badges, durations, triggers, progress in words."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from sis_sync.models import RunStatus, SisSyncRun
from sis_sync.models.runs import ACTIVE_STATUSES

STAT_KEYS = ("created", "updated", "unchanged", "deactivated", "reactivated", "rejected")
STAT_ENTITIES = ("schools", "classes", "users", "enrollments")
STATUS_WORDS = {
    RunStatus.PENDING: "waiting to start",
    RunStatus.IN_PROGRESS: "running",
    RunStatus.SUCCESS: "loaded",
    RunStatus.PARTIAL: "loaded, with rejects",
    RunStatus.FAILURE: "failed, nothing applied",
    RunStatus.CANCELLED: "cancelled, nothing applied",
    RunStatus.HELD: "held for review",
    RunStatus.DISCARDED: "discarded, nothing applied",
}


def badge(status: str) -> SafeString:
    if not status:
        return mark_safe('<span class="sis-badge sis-badge-NONE">never synced</span>')
    return format_html(
        '<span class="sis-badge sis-badge-{}" title="{}">{}</span>',
        status,
        STATUS_WORDS.get(status, ""),
        status,
    )


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def run_duration(run: SisSyncRun) -> float | None:
    if run.duration_seconds is not None:
        return run.duration_seconds
    value = (run.stats or {}).get("durationSeconds")
    return float(value) if isinstance(value, int | float) else None


def trigger_text(run: SisSyncRun) -> str:
    if not run.is_manual:
        return (
            "scheduled" if run.triggered_by in ("", "schedule", "scheduler") else run.triggered_by
        )
    return f"manual ({run.triggered_by})" if run.triggered_by else "manual"


def progress_text(run: SisSyncRun) -> str:
    """'staging users: 1,234 records' and the like, from what the run last reported."""
    progress: dict[str, Any] = run.progress or {}
    if run.status not in ACTIVE_STATUSES:
        return STATUS_WORDS.get(run.status, run.status)
    if progress.get("waiting"):
        return f"waiting {progress['waiting']}"
    if progress.get("entity"):
        rows = progress.get("rows") or 0
        return f"{progress['entity']}: {rows:,} records read"
    return "starting" if run.status == RunStatus.PENDING else "working"


def stats_rows(stats: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for entity in STAT_ENTITIES:
        counts = stats.get(entity)
        if isinstance(counts, dict):
            rows.append({"entity": entity, "counts": [f"{counts.get(k, 0):,}" for k in STAT_KEYS]})
    return rows


def run_url(run: SisSyncRun) -> str:
    return reverse("admin:sis_sync_sissyncrun_change", args=[run.pk])


def run_json(run: SisSyncRun | None) -> dict[str, Any] | None:
    """A run as the provider page's status script reads it."""
    if run is None:
        return None
    return {
        "id": run.pk,
        "status": run.status,
        "phase": run.phase,
        "progress": run.progress,
        "progressText": progress_text(run),
        "dryRun": run.dry_run,
        "startedAt": run.started_at.isoformat() if run.started_at else None,
        "completedAt": run.completed_at.isoformat() if run.completed_at else None,
        "url": run_url(run),
    }
