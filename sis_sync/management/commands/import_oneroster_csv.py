"""`import_oneroster_csv PATH --tenant SLUG [--dry-run] [--delta] [--json]` (SPEC §5)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from sis_sync.management.base import ProgressBar, SisCommand
from sis_sync.providers import provider_store_bundle, upload_provider_get_or_create
from sis_sync.sync import sync_run_inline, sync_start
from sis_sync.tenants import tenant_get_or_create


class Command(SisCommand):
    help = "Import a OneRoster 1.1 CSV folder or .zip into a tenant (created if needed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="a folder of OneRoster CSV files, or a .zip")
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument(
            "--dry-run", action="store_true", help="compute the changes, apply none"
        )
        parser.add_argument("--delta", action="store_true", help="treat every file as a delta")
        parser.add_argument("--json", action="store_true", help="print the run as JSON last")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_get_or_create(slug=options["tenant"])
        provider = upload_provider_get_or_create(tenant=tenant)
        provider_store_bundle(provider=provider, source=options["path"])
        run = sync_start(
            provider=provider,
            is_manual=True,
            triggered_by="command line",
            mode="delta" if options["delta"] else "full",
            dry_run=options["dry_run"],
        )
        bar = ProgressBar(sys.stderr)
        try:
            run = sync_run_inline(run_id=run.pk, on_progress=bar)
        finally:
            bar.close()
        self.print_run(run, as_json=options["json"])
        self.finish_with(run)
