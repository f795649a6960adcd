"""`create_api_user USERNAME --role ROLE [--tenant SLUG] [--password P]`: an admin user and its
API token, printed alone on the last line. With --password the user can also sign in to /admin/."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from sis_sync.access import membership_set
from sis_sync.management.base import EXIT_BAD_INPUT, SisCommand
from sis_sync.models import AdminRole, Tenant


class Command(SisCommand):
    help = "Create or update an admin user with a role and print its API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=AdminRole.values)
        parser.add_argument("--tenant", help="the tenant's slug (required for DISTRICT_ADMIN)")
        parser.add_argument("--password", help="also lets the user sign in to the Django admin")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']!r}", returncode=EXIT_BAD_INPUT)
        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(username=options["username"])
            if options["password"]:
                user.set_password(options["password"])
                user.is_staff = True
            elif created:
                user.set_unusable_password()
            user.save()
            membership_set(user=user, role=options["role"], tenant=tenant)
            token, _ = Token.objects.get_or_create(user=user)
        where = f" of {tenant.slug}" if tenant else ""
        self.stdout.write(f"{user.username}: {options['role']}{where}")
        self.stdout.write(token.key)
