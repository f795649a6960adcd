"""CLEVER: a district's roster from the Clever Data API v3.0, in full or by its event feed.

Config (SPEC §2): `districtId`; `accessToken`, or the app's `clientId`/`clientSecret` from
which the district token is fetched; optional `baseUrl` (default https://api.clever.com),
`tokenUrl` (default https://clever.com/oauth/tokens for Clever itself, else
<baseUrl>/oauth/tokens) and `pageSize` (1 to 10,000; default 1,000). Clever contacts are synced
as people with role contact only when the provider's option `includeContacts` is true.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connectors.clever import events, mapping
from connectors.clever.client import MAX_PAGE_SIZE, CleverClient
from connectors.clever.extraction import CleverExtraction
from connectors.clever.spool import Spool

# The connection test counts at most this many full pages per collection, then says "N+".
SUMMARY_PAGES = 2
SUMMARY_ROLES = (
    ("student", "students"),
    ("teacher", "teachers"),
    ("staff", "staff"),
    ("district_admin", "district admins"),
)


class CleverConnector:
    def __init__(self, config: dict[str, Any], *, options: dict[str, Any]) -> None:
        self.config = config
        self.options = options

    def client(self) -> CleverClient:
        return CleverClient.from_config(self.config)

    def test_connection(self) -> str:
        """The token works, the district matches, and what the district holds."""
        client = self.client()
        district = client.district()
        parts = [_count(client, "schools", "schools"), _count(client, "sections", "sections")]
        roles = [*SUMMARY_ROLES, ("contact", "contacts")] if self._contacts() else SUMMARY_ROLES
        parts += [_count(client, "users", label, role=role) for role, label in roles]
        try:
            newest = events.newest_event(client)
            feed = "events are on" if newest else "no events yet (are events enabled?)"
        except events.EventsUnavailable:
            feed = "events are not enabled for the app: delta syncs will run as full syncs"
        name = mapping.text(district.get("name")) or "(no name)"
        return (
            f"Clever district {name} ({district.get('id')}): the token works; "
            f"{', '.join(parts)}; {feed}"
        )

    def _contacts(self) -> bool:
        return self.options.get("includeContacts") is True

    @contextmanager
    def extract(self, *, mode: str, state: dict[str, Any]) -> Iterator[CleverExtraction]:
        client = self.client()
        with Spool() as spool:
            extraction = CleverExtraction(client, spool, options=self.options)
            extraction.start(mode=mode, state=state)
            yield extraction


def _count(client: CleverClient, path: str, label: str, *, role: str | None = None) -> str:
    params: dict[str, Any] = {"limit": MAX_PAGE_SIZE}
    if role:
        params["role"] = role
    total = 0
    pages = client.pages(path, params)
    for number, page in enumerate(pages, 1):
        total += len(page)
        if number >= SUMMARY_PAGES and len(page) == MAX_PAGE_SIZE:
            pages.close()
            return f"{total:,}+ {label}"
    return f"{total:,} {label}"
