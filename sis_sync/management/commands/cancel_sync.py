"""`cancel_sync PROVIDER_ID`: cancel the provider's running sync; nothing of it is applied."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sis_sync.management.base import SisCommand
from sis_sync.runs import sync_cancel


class Command(SisCommand):
    help = "Cancel a provider's running sync."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        run = sync_cancel(
            provider=self.get_provider(options["provider_id"]), cancelled_by="command line"
        )
        self.stdout.write(f"Run {run.pk} cancelled")
