"""`test_provider PROVIDER_ID`: check credentials and reachability; exit 0 on success."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sis_sync.connections import provider_test_connection
from sis_sync.management.base import EXIT_FAILED, SisCommand


class Command(SisCommand):
    help = "Test a provider's connection without changing any data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        provider = self.get_provider(options["provider_id"])
        result = provider_test_connection(provider=provider, actor="command line")
        if result.success:
            self.stdout.write(f"OK: {result.message}")
            return
        self.stderr.write(f"Failed: {result.message}")
        raise SystemExit(EXIT_FAILED)
