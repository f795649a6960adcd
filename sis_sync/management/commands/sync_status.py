"""`sync_status PROVIDER_ID [--json]`: whether a sync runs now, and how the last one ended."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from sis_sync.management.base import SisCommand, run_json
from sis_sync.selectors import provider_sync_status


class Command(SisCommand):
    help = "Show a provider's sync status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider_id", type=int)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        status = provider_sync_status(provider=self.get_provider(options["provider_id"]))
        payload = {
            "isRunning": status.current is not None,
            "lastSync": status.last_sync_at.isoformat() if status.last_sync_at else None,
            "lastStatus": status.last_status or None,
            "currentRun": run_json(status.current) if status.current else None,
        }
        if options["json"]:
            self.stdout.write(json.dumps(payload))
            return
        if status.current:
            progress = status.current.progress or {}
            self.stdout.write(
                f"Running: run {status.current.pk}, phase {status.current.phase}"
                + (
                    f", {progress.get('entity')} {progress.get('rows', 0):,} rows"
                    if progress
                    else ""
                )
            )
        else:
            self.stdout.write("Not running")
        self.stdout.write(
            f"Last sync: {payload['lastSync'] or 'never'} ({payload['lastStatus'] or '-'})"
        )
