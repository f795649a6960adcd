"""`rotate_encryption_keys [--check]`: re-encrypt every stored secret with the first key of
SIS_SYNC_ENCRYPTION_KEYS (SPEC §2), so an old key can then be removed.

To rotate: put the new key first (`SIS_SYNC_ENCRYPTION_KEYS=new,old`), deploy, run this, then
drop the old key. `--check` changes nothing and exits 1 while any value is not yet under the
first key. A value no configured key can decrypt is named, the rest are still rotated, and the
command exits 1.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sis_sync.crypto import ENCRYPTED_COLUMNS, rotate_column
from sis_sync.management.base import EXIT_FAILED, SisCommand


class Command(SisCommand):
    help = "Re-encrypt every stored secret with the first key of SIS_SYNC_ENCRYPTION_KEYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="change nothing; exit 1 if any value needs it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        check = options["check"]
        pending, problems = 0, []
        for label, field in ENCRYPTED_COLUMNS:
            result = rotate_column(label, field, check_only=check)
            verb = "not under the first key" if check else "re-encrypted"
            self.stdout.write(f"{result.column}: {result.rotated} {verb}")
            pending += result.rotated
            if result.unreadable:
                ids = ", ".join(str(pk) for pk in result.unreadable)
                problems.append(f"{result.column} rows {ids}")
        if problems:
            raise CommandError(
                "No configured key decrypts: " + "; ".join(problems) + " (was a key removed?)",
                returncode=EXIT_FAILED,
            )
        if check and pending:
            raise CommandError(
                f"{pending} values are not under the first key: run rotate_encryption_keys",
                returncode=EXIT_FAILED,
            )
