"""`demo_setup [--tenant SLUG]`: a demo admin for `make demo`, with its credentials printed."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser

from sis_sync.management.base import SisCommand


class Command(SisCommand):
    help = "Create (or reset) the demo admin user and print its credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="demo-district")
        parser.add_argument("--username", default="demo-admin")

    def handle(self, *args: Any, **options: Any) -> None:
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=options["username"])
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write("")
        self.stdout.write("Demo admin (platform administrator):")
        self.stdout.write("  URL:      http://127.0.0.1:8000/admin/")
        self.stdout.write(f"  username: {user.username}")
        self.stdout.write(f"  password: {password}")
        self.stdout.write(f"  tenant:   {options['tenant']}")
        self.stdout.write("")
