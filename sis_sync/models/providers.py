from __future__ import annotations

from typing import Any

from django.db import models

from sis_sync import crypto


class ProviderType(models.TextChoices):
    CLEVER = "CLEVER", "Clever"
    CLASSLINK = "CLASSLINK", "ClassLink"
    ONEROSTER_API = "ONEROSTER_API", "OneRoster API"
    ONEROSTER_CSV = "ONEROSTER_CSV", "OneRoster CSV"


class SisProvider(models.Model):
    """One SIS connection of a tenant.

    `config` (SPEC §2) is stored encrypted as a whole: read it with `config`, write it with
    `set_config`. Never render `config` to a user: `sis_sync.provider_config.masked` does that.
    """

    tenant = models.ForeignKey(
        "sis_sync.Tenant", on_delete=models.CASCADE, related_name="providers"
    )
    provider_type = models.CharField(max_length=16, choices=ProviderType.choices)
    name = models.CharField(max_length=200)
    config_encrypted = models.TextField(blank=True, default="", editable=False)
    options = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    sync_schedule = models.CharField(max_length=100, null=True, blank=True)
    # An upload provider (ONEROSTER_CSV without `sftp`) keeps its last bundle here.
    bundle_path = models.CharField(max_length=500, blank=True, default="", editable=False)
    # What connectors carry from one extraction to the next (Clever's last event id, …).
    sync_state = models.JSONField(default=dict, blank=True, editable=False)
    # The fence: the one run allowed to load this provider now (see sis_sync.sync._fence).
    active_run = models.ForeignKey(
        "sis_sync.SisSyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "provider"
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="provider_name_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_type_display()})"

    @property
    def config(self) -> dict[str, Any]:
        return crypto.decrypt_json(self.config_encrypted)

    def set_config(self, value: dict[str, Any]) -> None:
        self.config_encrypted = crypto.encrypt_json(value)
