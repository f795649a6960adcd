"""`scim_reconcile TENANT`: pushes every person and class of the tenant to its SCIM server
(creates what is missing, corrects what differs, deactivates who left), in this process."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sis_sync.management.base import EXIT_BAD_INPUT, EXIT_FAILED, SisCommand
from sis_sync.models import ScimTarget, Tenant
from sis_sync.scim.outbox import scim_queue_everything
from sis_sync.scim.push import scim_push


class Command(SisCommand):
    help = "Push a tenant's whole roster to its SCIM 2.0 service provider."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="the tenant's slug")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}", returncode=EXIT_BAD_INPUT)
        if not ScimTarget.objects.filter(tenant=tenant).exists():
            raise CommandError(
                f"{tenant.slug} has no SCIM target (configure_tenant --scim-url --scim-token)",
                returncode=EXIT_BAD_INPUT,
            )
        queued = scim_queue_everything(tenant_id=tenant.pk)
        result = scim_push(tenant_id=tenant.pk, force=True)
        self.stdout.write(
            f"{tenant.slug}: {queued:,} queued, {result.pushed:,} pushed, {result.failed:,} failed"
        )
        if result.stopped or result.failed:
            raise CommandError(
                f"The reconcile did not finish: {result.stopped or 'some pushes failed'}; "
                "the rest stays queued and is retried",
                returncode=EXIT_FAILED,
            )
