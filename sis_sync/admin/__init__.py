"""The Django admin for district and platform admins (SPEC §5 "Django admin").

A district admin manages their own tenant's providers, starts syncs and connection tests,
reads run history and the roster; a platform admin does the same for every tenant. Access is
by role (sis_sync.access), not by Django model permissions: see `scoping`.
"""

from sis_sync.admin import access, bridge, providers, roster, runs

__all__ = ["access", "bridge", "providers", "roster", "runs"]
