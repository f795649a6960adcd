"""`runs PROVIDER_ID [--limit N] [--json]`: run history, newest first."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from sis_sync.management.base import SisCommand, run_json


class Command(SisCommand):
    help = "List a provider's sync runs, newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider_id", type=int)
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        provider = self.get_provider(options["provider_id"])
        runs = list(provider.runs.order_by("-created_at", "-id")[: max(options["limit"], 0)])
        if options["json"]:
            self.stdout.write(json.dumps([run_json(r) for r in runs], ensure_ascii=False))
            return
        for run in runs:
            when = run.started_at.isoformat(timespec="seconds") if run.started_at else "-"
            kind = "manual" if run.is_manual else "scheduled"
            extra = " (dry run)" if run.dry_run else ""
            self.stdout.write(f"{run.pk:>6}  {when}  {run.status:<11} {run.mode:<5} {kind}{extra}")
