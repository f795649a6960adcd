"""`demo_setup [--tenant SLUG]`: the demo's two admins for `make demo`, credentials printed.

A platform admin (`demo-admin`, every tenant) and a district admin (`district-admin`, the demo
tenant only), each with a fresh password on every run.
"""

from __future__ import annotations

import secrets
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser
from django.db import transaction

from sis_sync.access import membership_set
from sis_sync.management.base import SisCommand
from sis_sync.models import AdminRole
from sis_sync.tenants import tenant_get_or_create

URL = "http://127.0.0.1:8000/admin/"


class _Account(NamedTuple):
    user: Any
    password: str


class Command(SisCommand):
    help = "Create (or reset) the demo platform admin and district admin; print their credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="demo-district")
        parser.add_argument("--username", default="demo-admin", help="the platform admin")
        parser.add_argument("--district-username", default="district-admin")

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            tenant = tenant_get_or_create(slug=options["tenant"])
            platform = self._admin(options["username"], superuser=True)
            membership_set(user=platform.user, role=AdminRole.PLATFORM_ADMIN, tenant=None)
            district = self._admin(options["district_username"], superuser=False)
            membership_set(user=district.user, role=AdminRole.DISTRICT_ADMIN, tenant=tenant)
        self.stdout.write("")
        self.stdout.write(f"Admin: {URL}")
        for title, account in (
            ("Platform admin (every district)", platform),
            (f"District admin ({tenant.slug} only)", district),
        ):
            self.stdout.write(f"  {title}:")
            self.stdout.write(f"    username: {account.user.username}")
            self.stdout.write(f"    password: {account.password}")
        self.stdout.write("")

    def _admin(self, username: str, *, superuser: bool) -> _Account:
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = superuser
        user.set_password(password)
        user.save()
        return _Account(user, password)
