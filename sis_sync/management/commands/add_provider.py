"""`add_provider --tenant SLUG --type TYPE --name NAME --config JSON|@FILE ...` (SPEC §5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from sis_sync.management.base import EXIT_BAD_INPUT, SisCommand
from sis_sync.providers import provider_create
from sis_sync.tenants import tenant_get_or_create


def _json_argument(value: str, what: str) -> Any:
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(
                f"{what}: cannot read {value[1:]}: {exc.strerror}", returncode=2
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{what} is not valid JSON: {exc.msg} at char {exc.pos}", returncode=2
        ) from None


class Command(SisCommand):
    help = "Create a provider; prints its id alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--type", required=True, dest="provider_type")
        parser.add_argument("--name", required=True)
        parser.add_argument("--config", required=True, help="JSON, or @FILE holding JSON")
        parser.add_argument("--options", default="{}", help="JSON, or @FILE holding JSON")
        parser.add_argument("--schedule", default=None, help="cron expression or preset")
        parser.add_argument("--disabled", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        config = _json_argument(options["config"], "--config")
        provider_options = _json_argument(options["options"], "--options")
        tenant = tenant_get_or_create(slug=options["tenant"])
        provider = provider_create(
            tenant=tenant,
            provider_type=options["provider_type"].upper(),
            name=options["name"],
            config=config,
            options=provider_options,
            sync_schedule=options["schedule"],
            enabled=not options["disabled"],
            actor="command line",
        )
        if provider.pk is None:
            raise CommandError("the provider was not saved", returncode=EXIT_BAD_INPUT)
        self.stdout.write(f"Created {provider.provider_type} provider {provider.name!r}")
        self.stdout.write(str(provider.pk))
