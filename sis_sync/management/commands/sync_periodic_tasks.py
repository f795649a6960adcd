"""`sync_periodic_tasks`: make every provider's beat schedule match the provider (idempotent)."""

from __future__ import annotations

from typing import Any

from sis_sync.management.base import SisCommand
from sis_sync.scheduling import schedules_reconcile


class Command(SisCommand):
    help = "Reconcile django-celery-beat PeriodicTasks with the providers' schedules."

    def handle(self, *args: Any, **options: Any) -> None:
        result = schedules_reconcile()
        self.stdout.write(
            f"{result['scheduled']} providers scheduled, {result['removed']} stray tasks removed"
        )
