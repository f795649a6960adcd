"""The provider form: labelled fields per provider type instead of a raw JSON box.

The form turns its fields into the provider's `config`, `options` and `syncSchedule` (SPEC §2,
§4) and checks them with the same validators the API and the commands use
(`validate_config`, `validate_options`, `normalize_schedule`); saving is the ModelAdmin's job,
through `provider_create` / `provider_update`.

Secrets are write-only: their inputs never render a value (not even after a failed submit),
a blank one keeps the stored secret (`merged`), and a "remove" box clears it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from connectors.base import ConnectorError
from connectors.oneroster_csv.upload import check_upload
from sis_sync.errors import BadRequest
from sis_sync.models import ProviderType, SisProvider
from sis_sync.provider_config import merged, validate_config, validate_options
from sis_sync.schedules import PRESETS, normalize_schedule

CUSTOM = "custom"


@dataclass(frozen=True)
class ConfigField:
    key: str  # the config key; "sftp.host" is `host` inside the `sftp` block
    label: str
    kind: str = "text"  # text | url | int | choice | secret | secret_text | text_area | list
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()

    @property
    def secret(self) -> bool:
        return self.kind in ("secret", "secret_text")


WEBHOOK_FIELDS = (
    ConfigField(
        "webhookSecret", "Webhook secret", "secret", "Signs the events this SIS sends to SIS Sync."
    ),
    ConfigField(
        "webhookAllowIps",
        "Webhook allowed addresses",
        "list",
        "Optional: CIDRs the events may come from, comma-separated (e.g. 203.0.113.0/24).",
    ),
)

CONFIG_FIELDS: dict[str, tuple[ConfigField, ...]] = {
    ProviderType.CLEVER: (
        ConfigField("districtId", "District id", help="The district's Clever id."),
        ConfigField(
            "accessToken",
            "District token",
            "secret",
            "The district's bearer token; or leave it empty and give the app's client id and "
            "secret below.",
        ),
        ConfigField("clientId", "Client id"),
        ConfigField("clientSecret", "Client secret", "secret"),
        ConfigField("baseUrl", "API address", "url", "Empty for https://api.clever.com."),
        ConfigField("pageSize", "Page size", "int", "Records per request (up to 10,000)."),
        *WEBHOOK_FIELDS,
    ),
    ProviderType.CLASSLINK: (
        ConfigField(
            "baseUrl",
            "Roster Server address",
            "url",
            "https://<tenant>-<region>-v2.rosterserver.com/ims/oneroster/v1p1",
        ),
        ConfigField("tenantId", "ClassLink tenant id"),
        ConfigField(
            "authMethod",
            "Authentication",
            "choice",
            choices=(("oauth1", "OAuth 1.0a signatures"), ("proxy", "Bearer token (proxy)")),
        ),
        ConfigField("clientId", "Client id"),
        ConfigField("clientSecret", "Client secret", "secret"),
        ConfigField("accessToken", "Bearer token", "secret", "Only for the proxy method."),
        ConfigField("pageSize", "Page size", "int", "Records per request (1–10,000)."),
        *WEBHOOK_FIELDS,
    ),
    ProviderType.ONEROSTER_API: (
        ConfigField("baseUrl", "API address", "url", "Ends with /ims/oneroster/v1p1."),
        ConfigField(
            "authMethod",
            "Authentication",
            "choice",
            choices=(("oauth2", "OAuth 2.0 client credentials"), ("oauth1", "OAuth 1.0a")),
        ),
        ConfigField("clientId", "Client id"),
        ConfigField("clientSecret", "Client secret", "secret"),
        ConfigField("tokenUrl", "Token address", "url", "OAuth 2.0 only."),
        ConfigField("scope", "Scope", help="OAuth 2.0 only; optional."),
        ConfigField(
            "tokenClientAuth",
            "Client authentication for the token",
            "choice",
            choices=(("basic", "HTTP Basic"), ("post", "In the request body")),
        ),
        ConfigField(
            "signatureMethod",
            "Signature method",
            "choice",
            "OAuth 1.0a only.",
            choices=(("HMAC-SHA256", "HMAC-SHA256"), ("HMAC-SHA1", "HMAC-SHA1")),
        ),
        ConfigField("pageSize", "Page size", "int", "Records per request (1–10,000)."),
        ConfigField("concurrency", "Pages fetched at once", "int", "1–16; default 4."),
        ConfigField(
            "fullSyncEveryDays", "Full sync every (days)", "int", "A delta becomes full after this."
        ),
    ),
    ProviderType.ONEROSTER_CSV: (
        ConfigField(
            "sftp.host",
            "SFTP server",
            help="Leave empty to upload bundles here instead of fetching them over SFTP.",
        ),
        ConfigField("sftp.port", "SFTP port", "int", "Default 22."),
        ConfigField("sftp.username", "SFTP user name"),
        ConfigField("sftp.password", "SFTP password", "secret", "Or a private key below."),
        ConfigField("sftp.privateKey", "SFTP private key", "secret_text", "OpenSSH or PEM text."),
        ConfigField("sftp.privateKeyPassphrase", "Private key passphrase", "secret"),
        ConfigField(
            "sftp.hostKey",
            "Server host key",
            "text_area",
            "The key to pin: `manage.py sftp_hostkey HOST` prints it.",
        ),
        ConfigField("remotePath", "Remote path", help="A .zip or a folder on the server."),
        ConfigField("archivePath", "Archive folder", help="Optional: fetched bundles move here."),
        ConfigField("bundlePattern", "Bundle file pattern", help="Default *.zip."),
        ConfigField("folderPattern", "Bundle folder pattern", help="Default *."),
    ),
}

ROLE_CHOICES = (
    ("student", "Students"),
    ("teacher", "Teachers"),
    ("administrator", "Admins"),
    ("contact", "Contacts (Clever, with the option below)"),
)


def field_name(provider_type: str, key: str) -> str:
    return f"cfg_{provider_type}_{key.replace('.', '__')}"


def clear_name(provider_type: str, key: str) -> str:
    return f"{field_name(provider_type, key)}__clear"


class SecretTextarea(forms.Textarea):
    """A textarea for a multi-line secret (a private key) that never renders its value."""

    def format_value(self, value: Any) -> None:
        return None


def _form_field(spec: ConfigField) -> forms.Field:
    common: dict[str, Any] = {"label": spec.label, "help_text": spec.help, "required": False}
    if spec.kind == "secret":
        return forms.CharField(
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            strip=False,
            **common,
        )
    if spec.kind == "secret_text":
        return forms.CharField(
            widget=SecretTextarea(attrs={"rows": 4, "class": "sis-secret", "spellcheck": "false"}),
            **common,
        )
    if spec.kind == "text_area":
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), **common)
    if spec.kind == "int":
        return forms.IntegerField(min_value=1, **common)
    if spec.kind == "url":
        return forms.CharField(widget=forms.URLInput(attrs={"size": 60}), **common)
    if spec.kind == "choice":
        return forms.ChoiceField(choices=(("", "Default"), *spec.choices), **common)
    return forms.CharField(**common)


def _declared_fields() -> dict[str, forms.Field]:
    """Every type's config fields, declared on the form class so the admin can lay them out."""
    fields: dict[str, forms.Field] = {}
    for provider_type, specs in CONFIG_FIELDS.items():
        for spec in specs:
            fields[field_name(provider_type, spec.key)] = _form_field(spec)
            if spec.secret:
                fields[clear_name(provider_type, spec.key)] = forms.BooleanField(
                    label=f"Remove the stored {spec.label.lower()}", required=False
                )
    return fields


def _get(config: dict[str, Any], key: str) -> Any:
    if "." in key:
        block, inner = key.split(".", 1)
        value = config.get(block)
        return value.get(inner) if isinstance(value, dict) else None
    return config.get(key)


class ProviderFormBase(forms.ModelForm):
    schedule_preset = forms.ChoiceField(
        label="Schedule",
        required=False,
        choices=(
            ("", "Manual only (no schedule)"),
            *((name, f"{name} ({cron})") for name, cron in PRESETS.items()),
            (CUSTOM, "Custom cron expression…"),
        ),
        help_text="Times are in the district's time zone.",
    )
    schedule_cron = forms.CharField(
        label="Custom cron expression",
        required=False,
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. 30 5 * * 1-5.",
    )
    create_users = forms.BooleanField(
        label="Create people the platform does not know yet", required=False, initial=True
    )
    deactivate_missing = forms.BooleanField(
        label="Deactivate what a full sync no longer sends", required=False, initial=True
    )
    deletion_threshold = forms.CharField(
        label="Hold a sync that would deactivate more than",
        required=False,
        help_text="A fraction of the active records (0.10 = 10%), or per type as JSON: "
        '{"users": 0.2}. Empty for the default, 0.10.',
    )
    update_threshold = forms.CharField(
        label="Hold a sync that would update more than",
        required=False,
        help_text="Same form; empty for the default, 0.75.",
    )
    school_filter = forms.CharField(
        label="Only these schools",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="School sourcedIds, one per line or comma-separated; empty for all schools.",
    )
    roles = forms.MultipleChoiceField(
        label="Roles to sync",
        required=False,
        choices=ROLE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all roles.",
    )
    include_contacts = forms.BooleanField(
        label="Clever: sync contacts (parents, guardians) as people",
        required=False,
        help_text="Off: Clever contacts are left out, as before.",
    )
    bundle = forms.FileField(
        label="OneRoster bundle (.zip)",
        required=False,
        help_text="For a provider without SFTP: the zip of the district's OneRoster CSV files. "
        "It is kept; Run sync now loads it.",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )

    class Meta:
        model = SisProvider
        fields = ("tenant", "name", "provider_type", "enabled")
        help_texts = {
            "provider_type": "Where the roster comes from; its connection settings appear below.",
            "enabled": "A disabled provider never syncs, by schedule or by hand.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config_value: dict[str, Any] = {}
        self.options_value: dict[str, Any] = {}
        self.schedule_value: str | None = None
        if self.instance.pk:
            self._show_stored(self.instance)

    # -- showing a stored provider ---------------------------------------------------------------

    def _show_stored(self, provider: SisProvider) -> None:
        stored = provider.config
        for spec in CONFIG_FIELDS.get(provider.provider_type, ()):
            name = field_name(provider.provider_type, spec.key)
            value = _get(stored, spec.key)
            if spec.secret:
                # Never the value: only whether one is stored.
                if value and name in self.fields:
                    self.fields[name].help_text = (
                        "A value is stored (not shown). Leave empty to keep it. " + spec.help
                    ).strip()
                continue
            if value in (None, ""):
                continue
            self.initial[name] = ", ".join(value) if isinstance(value, list) else value
        schedule = provider.sync_schedule
        preset = next((name for name, cron in PRESETS.items() if cron == schedule), None)
        self.initial["schedule_preset"] = preset or (CUSTOM if schedule else "")
        self.initial["schedule_cron"] = schedule if schedule and not preset else ""
        options = provider.options or {}
        self.initial["create_users"] = options.get("createUsers", True)
        self.initial["deactivate_missing"] = options.get("deactivateMissing", True)
        for name, key in (
            ("deletion_threshold", "deletionThreshold"),
            ("update_threshold", "updateThreshold"),
        ):
            value = options.get(key)
            if value is not None:
                self.initial[name] = json.dumps(value) if isinstance(value, dict) else value
        if options.get("schoolFilter"):
            self.initial["school_filter"] = "\n".join(options["schoolFilter"])
        if options.get("roles"):
            self.initial["roles"] = options["roles"]
        self.initial["include_contacts"] = options.get("includeContacts", False)

    # -- reading the submitted form ----------------------------------------------------------------

    def provider_type(self) -> str:
        if self.instance.pk:
            return self.instance.provider_type
        return self.cleaned_data.get("provider_type") or ""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        name = (cleaned.get("name") or "").strip()
        if self.instance.pk and name:
            # The tenant is not on a change form, so the model's unique check skips it.
            twins = SisProvider.objects.filter(tenant_id=self.instance.tenant_id, name=name)
            if twins.exclude(pk=self.instance.pk).exists():
                self.add_error("name", "This district already has a provider with this name.")
        self.schedule_value = self._clean_schedule(cleaned)
        self.options_value = self._clean_options(cleaned)
        provider_type = self.provider_type()
        if provider_type:
            self.config_value = self._clean_config(provider_type, cleaned)
            self._clean_bundle(provider_type, cleaned)
        return cleaned

    def _clean_schedule(self, cleaned: dict[str, Any]) -> str | None:
        preset = cleaned.get("schedule_preset") or ""
        text = cleaned.get("schedule_cron") or ""
        if preset == CUSTOM and not text.strip():
            self.add_error("schedule_cron", "Type a cron expression, or pick a preset above.")
            return None
        try:
            return normalize_schedule(text if preset == CUSTOM else preset or None)
        except BadRequest as exc:
            self.add_error("schedule_cron" if preset == CUSTOM else "schedule_preset", exc.message)
            return None

    def _clean_options(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        options = dict(self.instance.options or {}) if self.instance.pk else {}
        options["createUsers"] = bool(cleaned.get("create_users"))
        options["deactivateMissing"] = bool(cleaned.get("deactivate_missing"))
        for name, key in (
            ("deletion_threshold", "deletionThreshold"),
            ("update_threshold", "updateThreshold"),
        ):
            text = (cleaned.get(name) or "").strip()
            if not text:
                options.pop(key, None)
                continue
            try:
                options[key] = json.loads(text)
            except ValueError:
                self.add_error(name, "A number such as 0.10, or a JSON object per type.")
        schools = [
            s.strip() for s in (cleaned.get("school_filter") or "").replace(",", "\n").split()
        ]
        if schools:
            options["schoolFilter"] = schools
        else:
            options.pop("schoolFilter", None)
        if cleaned.get("roles"):
            options["roles"] = list(cleaned["roles"])
        else:
            options.pop("roles", None)
        if cleaned.get("include_contacts"):
            options["includeContacts"] = True
        else:
            options.pop("includeContacts", None)
        try:
            return validate_options(options)
        except BadRequest as exc:
            self.add_error(None, exc.message)
            return options

    def _clean_config(self, provider_type: str, cleaned: dict[str, Any]) -> dict[str, Any]:
        stored = self.instance.config if self.instance.pk else {}
        config = {k: v for k, v in stored.items() if k != "sftp"}
        sftp = dict(stored.get("sftp") or {})
        for spec in CONFIG_FIELDS.get(provider_type, ()):
            value = cleaned.get(field_name(provider_type, spec.key))
            if isinstance(value, str):
                value = value.strip() if spec.kind != "secret" else value
            if spec.kind == "list" and value:
                value = [v.strip() for v in value.split(",") if v.strip()]
            target, key = (
                (sftp, spec.key[5:]) if spec.key.startswith("sftp.") else (config, spec.key)
            )
            if spec.secret:
                if cleaned.get(clear_name(provider_type, spec.key)):
                    target[key] = ""  # an empty string, not a missing key: `merged` keeps that
                elif value:
                    target[key] = value
                continue  # empty: `merged` keeps the stored secret
            if value in (None, "", []):
                target.pop(key, None)
            else:
                target[key] = value
        if provider_type == ProviderType.ONEROSTER_CSV and sftp.get("host"):
            config["sftp"] = sftp
        try:
            return validate_config(provider_type, merged(stored, config))
        except BadRequest as exc:
            self._config_error(provider_type, exc.message)
            return config

    def _config_error(self, provider_type: str, message: str) -> None:
        """Puts a validation message on the field it names ("config.baseUrl: …"), else on top."""
        for spec in CONFIG_FIELDS.get(provider_type, ()):
            if f"config.{spec.key}:" in message or f"config.{spec.key} " in message:
                self.add_error(field_name(provider_type, spec.key), message)
                return
        self.add_error(None, message)

    def _clean_bundle(self, provider_type: str, cleaned: dict[str, Any]) -> None:
        upload = cleaned.get("bundle")
        if not upload:
            return
        if provider_type != ProviderType.ONEROSTER_CSV or self.config_value.get("sftp"):
            self.add_error("bundle", "Only a OneRoster CSV provider without SFTP takes a bundle.")
            return
        with uploaded_path(upload) as path:
            try:
                check_upload(path)  # before anything is saved: size, zip-slip, zip bombs, …
            except ConnectorError as exc:
                self.add_error("bundle", exc.message)


@contextmanager
def uploaded_path(upload: UploadedFile) -> Iterator[Path]:
    """The upload as a file on disk (a large one already is), removed afterwards if copied."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    root = Path(settings.SIS_SYNC_DATA_DIR) / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=root, suffix=".zip") as handle:
        upload.seek(0)
        for chunk in upload.chunks():
            handle.write(chunk)
        handle.flush()
        yield Path(handle.name)


ProviderForm = type("ProviderForm", (ProviderFormBase,), _declared_fields())
