"""`sftp_hostkey HOST [--port P]`: prints the SFTP server's host keys as lines to pin (SPEC §2).

Every printed line can go into a provider's `config.sftp.hostKey` as it is; the `#` lines give
each key's SHA256 fingerprint, to compare with the one the server's administrator reads out
(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`). Nothing here trusts the key: pinning it is
the admin's decision.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from connectors.oneroster_csv.sftp import DEFAULT_PORT, fingerprint, host_key_line, scan_host_keys
from sis_sync.management.base import EXIT_FAILED, SisCommand


class Command(SisCommand):
    help = "Print an SFTP server's host keys as lines to pin in config.sftp.hostKey."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("host")
        parser.add_argument("--port", type=int, default=DEFAULT_PORT)
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds (10)")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        keys = scan_host_keys(host, port, timeout=options["timeout"])
        if not keys:
            self.stderr.write(f"{host}:{port} offered no host key SIS Sync can pin")
            raise SystemExit(EXIT_FAILED)
        for key in keys:
            self.stdout.write(f"# {host}:{port} {key.get_name()} {fingerprint(key.asbytes())}")
            self.stdout.write(host_key_line(key))
