from __future__ import annotations

from django.conf import settings
from django.db import models


class AdminRole(models.TextChoices):
    PLATFORM_ADMIN = "PLATFORM_ADMIN"
    DISTRICT_ADMIN = "DISTRICT_ADMIN"


class Membership(models.Model):
    """Who may manage what: a platform admin every tenant, a district admin their own."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sis_memberships"
    )
    tenant = models.ForeignKey(
        "sis_sync.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="memberships",
        help_text="Empty for a platform admin.",
    )
    role = models.CharField(max_length=16, choices=AdminRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_per_tenant"),
            models.CheckConstraint(
                condition=models.Q(role="PLATFORM_ADMIN", tenant__isnull=True)
                | models.Q(role="DISTRICT_ADMIN", tenant__isnull=False),
                name="membership_role_matches_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} {self.tenant or ''}".strip()


class AuditEvent(models.Model):
    """One thing someone did, and how it ended. Never holds a secret."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, help_text="A username, or scheduler/system/webhook.")
    tenant = models.ForeignKey(
        "sis_sync.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="audit"
    )
    action = models.CharField(max_length=40)
    target_type = models.CharField(max_length=40, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    outcome = models.CharField(max_length=16)
    message = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="audit_tenant_newest")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.outcome}"
