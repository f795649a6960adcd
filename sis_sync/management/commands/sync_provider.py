"""`sync_provider PROVIDER_ID [--dry-run] [--full|--delta] [--json] [--enqueue]` (SPEC §5)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandParser

from sis_sync.management.base import ProgressBar, SisCommand
from sis_sync.sync import sync_run_inline, sync_start


class Command(SisCommand):
    help = "Run one provider's sync now, in this process (or hand it to the workers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider_id", type=int)
        parser.add_argument("--dry-run", action="store_true")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--full", dest="mode", action="store_const", const="full")
        mode.add_argument("--delta", dest="mode", action="store_const", const="delta")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--enqueue", action="store_true", help="hand the sync to the workers")

    def handle(self, *args: Any, **options: Any) -> None:
        provider = self.get_provider(options["provider_id"])
        run = sync_start(
            provider=provider,
            is_manual=True,
            triggered_by="command line",
            mode=options["mode"] or "full",
            dry_run=options["dry_run"],
        )
        if options["enqueue"]:
            from sis_sync.tasks import enqueue_run

            enqueue_run(run.pk)
            run.refresh_from_db()
            self.print_run(run, as_json=options["json"])
            return
        bar = ProgressBar(sys.stderr)
        try:
            run = sync_run_inline(run_id=run.pk, on_progress=bar)
        finally:
            bar.close()
        self.print_run(run, as_json=options["json"])
        self.finish_with(run)
