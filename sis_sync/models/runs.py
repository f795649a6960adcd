from __future__ import annotations

from django.db import models


class RunStatus(models.TextChoices):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    PARTIAL = "PARTIAL"
    FAILURE = "FAILURE"
    CANCELLED = "CANCELLED"
    HELD = "HELD"
    DISCARDED = "DISCARDED"


ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.IN_PROGRESS)


class RunMode(models.TextChoices):
    FULL = "full"
    DELTA = "delta"


class RunPhase(models.TextChoices):
    QUEUED = "queued"
    EXTRACT = "extract"
    STAGE = "stage"
    VALIDATE = "validate"
    PLAN = "plan"
    LOAD = "load"
    DONE = "done"


class SisSyncRun(models.Model):
    provider = models.ForeignKey(
        "sis_sync.SisProvider", on_delete=models.CASCADE, related_name="runs"
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    mode = models.CharField(max_length=8, choices=RunMode.choices, default=RunMode.FULL)
    dry_run = models.BooleanField(default=False)
    entities = models.JSONField(default=list, blank=True)
    is_manual = models.BooleanField(default=False)
    triggered_by = models.CharField(max_length=150, blank=True, default="")
    phase = models.CharField(max_length=16, choices=RunPhase.choices, default=RunPhase.QUEUED)
    progress = models.JSONField(default=dict, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True, default="")
    # Per entity type: "full", "delta" or "absent", as the source delivered it.
    entity_modes = models.JSONField(default=dict, blank=True)
    # Merged into the provider's sync_state when this run's load is applied.
    state_after = models.JSONField(default=dict, blank=True)
    notes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    planned_at = models.DateTimeField(null=True, blank=True)
    loaded_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    hold_reason = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)  # of the current stage
    task_id = models.CharField(max_length=64, blank=True, default="")  # the queued Celery task
    decided_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        verbose_name = "sync run"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["provider", "-created_at"], name="run_provider_recent")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.provider_id}: {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.completed_at:
            return (self.completed_at - self.started_at).total_seconds()
        return None


class PlannedDeactivation(models.Model):
    """A deactivation a run's plan contains: kept with a HELD run so approval applies exactly it."""

    run = models.ForeignKey(SisSyncRun, on_delete=models.CASCADE, related_name="+")
    entity_type = models.CharField(max_length=16)
    entity_id = models.BigIntegerField()

    class Meta:
        db_table = "sis_planned_deactivations"
        indexes = [
            models.Index(fields=["run", "entity_type", "entity_id"], name="planned_run_entity")
        ]
