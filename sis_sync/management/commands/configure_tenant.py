"""`configure_tenant SLUG [--timezone TZ] [--seat-limit N|none] [--scim-url URL --scim-token
TOKEN | --no-scim]`: a tenant's settings (SPEC §6); prints them (the token masked) as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from sis_sync.management.base import EXIT_BAD_INPUT, SisCommand
from sis_sync.models import Tenant
from sis_sync.tenants import UNSET, tenant_configure, tenant_settings


def _seat_limit(value: str) -> int | None:
    if value.lower() in ("none", "null", "unlimited"):
        return None
    try:
        return int(value)
    except ValueError:
        raise CommandError(
            f"--seat-limit must be a number or none, not {value!r}", returncode=EXIT_BAD_INPUT
        ) from None


class Command(SisCommand):
    help = "Set a tenant's time zone, seat limit and SCIM target."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--timezone", help="IANA time zone, e.g. America/Chicago")
        parser.add_argument("--seat-limit", help="seats for students; 'none' for no limit")
        parser.add_argument("--scim-url", help="the SCIM 2.0 service provider's base URL")
        parser.add_argument("--scim-token", help="its bearer token (stored encrypted)")
        parser.add_argument("--no-scim", action="store_true", help="stop pushing to SCIM")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["slug"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['slug']!r}", returncode=EXIT_BAD_INPUT)
        scim: Any = UNSET
        if options["no_scim"]:
            scim = None
        elif options["scim_url"] or options["scim_token"]:
            if not options["scim_url"]:
                raise CommandError("--scim-token needs --scim-url", returncode=EXIT_BAD_INPUT)
            scim = {"baseUrl": options["scim_url"]}
            if options["scim_token"]:
                scim["token"] = options["scim_token"]
        tenant_configure(
            tenant=tenant,
            actor="command line",
            timezone=options["timezone"] if options["timezone"] is not None else UNSET,
            seat_limit=(
                _seat_limit(options["seat_limit"]) if options["seat_limit"] is not None else UNSET
            ),
            scim=scim,
        )
        self.stdout.write(json.dumps(tenant_settings(tenant=tenant)))
