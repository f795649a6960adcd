"""The SIS Bridge features (SPEC §6): webhook events, seats, and the SCIM push.

- `WebhookEvent`: an accepted provider event, remembered (for a day) so a replay is refused,
  and tied to the run that applies it.
- `SeatAssignment`: one row per student the seat system has seen; `state` says whether the
  student holds a seat, waits for one, or released it.
- `ScimTarget`, `ScimLink`, `ScimChange`: a tenant's SCIM 2.0 service provider (token
  encrypted), the SCIM id of each entity pushed there, and the outbox of entities to push.
"""

from __future__ import annotations

from django.db import models

from sis_sync import crypto


class WebhookEventState(models.TextChoices):
    # Picked up by a run that had not yet read the source (it will see the change).
    QUEUED = "queued"
    # Arrived while a run was reading the source: one follow-up delta run takes all of them.
    DEFERRED = "deferred"


class WebhookEvent(models.Model):
    provider = models.ForeignKey(
        "sis_sync.SisProvider", on_delete=models.CASCADE, related_name="webhook_events"
    )
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100, blank=True, default="")
    state = models.CharField(max_length=16, choices=WebhookEventState.choices)
    run = models.ForeignKey(
        "sis_sync.SisSyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once")
        ]
        indexes = [models.Index(fields=["provider", "state"], name="webhook_event_state")]

    def __str__(self) -> str:
        return f"{self.event_type or 'event'} {self.event_id} ({self.state})"


class SeatState(models.TextChoices):
    ALLOCATED = "allocated"
    WAITING = "waiting"
    RELEASED = "released"


class SeatAssignment(models.Model):
    """A student's seat. Waiting students get seats in `queued_at`, then person id, order."""

    tenant = models.ForeignKey("sis_sync.Tenant", on_delete=models.CASCADE, related_name="seats")
    person = models.OneToOneField("sis_sync.Person", on_delete=models.CASCADE, related_name="seat")
    state = models.CharField(max_length=16, choices=SeatState.choices)
    queued_at = models.DateTimeField()  # when the student (last) became active
    allocated_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "seat"
        indexes = [
            models.Index(fields=["tenant", "state", "queued_at", "person"], name="seat_queue")
        ]

    def __str__(self) -> str:
        return f"seat of {self.person_id}: {self.state}"


class ScimTarget(models.Model):
    """A tenant's SCIM 2.0 service provider. The bearer token is stored encrypted."""

    tenant = models.OneToOneField("sis_sync.Tenant", on_delete=models.CASCADE, related_name="scim")
    base_url = models.CharField(max_length=500)
    token_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.base_url

    @property
    def token(self) -> str:
        return crypto.decrypt_json(self.token_encrypted).get("token", "")

    def set_token(self, value: str) -> None:
        self.token_encrypted = crypto.encrypt_json({"token": value})


class ScimResource(models.TextChoices):
    USER = "user"  # a Person, as /Users
    GROUP = "group"  # a Classroom, as /Groups


class ScimLink(models.Model):
    """The SCIM id the service provider gave one of our entities."""

    tenant = models.ForeignKey("sis_sync.Tenant", on_delete=models.CASCADE, related_name="+")
    resource = models.CharField(max_length=8, choices=ScimResource.choices)
    entity_id = models.BigIntegerField()
    scim_id = models.CharField(max_length=255)
    pushed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "resource", "entity_id"], name="scim_link_once"
            )
        ]


class ScimChangeStatus(models.TextChoices):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # gave up retrying on its own: `scim_reconcile` pushes it again


class ScimChange(models.Model):
    """One entity a run changed, to push. The push sends the entity's state at push time, so
    retries and several rows for one entity always converge on the latest state."""

    tenant = models.ForeignKey("sis_sync.Tenant", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(
        "sis_sync.SisSyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resource = models.CharField(max_length=8, choices=ScimResource.choices)
    entity_id = models.BigIntegerField()
    status = models.CharField(
        max_length=8, choices=ScimChangeStatus.choices, default=ScimChangeStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "SCIM change (outbox)"
        verbose_name_plural = "SCIM outbox"
        indexes = [
            models.Index(fields=["tenant", "status", "next_attempt_at"], name="scim_change_due"),
            models.Index(fields=["tenant", "resource", "entity_id"], name="scim_change_entity"),
            models.Index(fields=["run", "status"], name="scim_change_run"),
        ]

    def __str__(self) -> str:
        return f"{self.resource} {self.entity_id}: {self.status}"
