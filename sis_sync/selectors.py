"""Reads shared by the faces (commands, API, admin)."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sis_sync.models import SisProvider, SisSyncRun
from sis_sync.models.runs import ACTIVE_STATUSES


class SyncStatus(NamedTuple):
    current: SisSyncRun | None
    last_sync_at: dt.datetime | None
    last_status: str


def provider_sync_status(*, provider: SisProvider) -> SyncStatus:
    current = provider.runs.filter(status__in=ACTIVE_STATUSES).order_by("-id").first()
    return SyncStatus(current, provider.last_sync_at, provider.last_status)
