"""Clever's event feed: the cursor a full sync records, and the changes a delta sync reads.

The feed (`GET /v3.0/events`) runs oldest to newest and keeps 30 days. Each event is
`{id, created, type: "<record type>.<created|updated|deleted>", data: {object,
previous_attributes}}`; `object` is the whole record after the change (for a deletion, the
record deleted), `previous_attributes` the changed fields' old values (updates only).

A full sync records the newest event id *before* it reads the data, so nothing that changes
during the read is lost: the next delta reads from there, and re-applying a change already
seen is harmless (applying events is idempotent). A delta reads every event after the stored
id and collapses them into the spool, one final state per record.

Events are opt-in for a Clever app; Clever's answer to an app without them, and to a cursor
that has dropped out of the 30 days, is not documented: a 403 (or 404 without a cursor) is read
as "not enabled", and a 400/404/410 for a cursor as "expired". Events for record types the
roster does not hold (districts, resources) are skipped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from connectors.clever import mapping
from connectors.clever.client import CleverClient, Refused
from connectors.clever.errors import clever_said
from connectors.clever.spool import Spool

RETENTION = dt.timedelta(days=30)
RECORD_TYPES = ("schools", "sections", "users", "courses", "terms")
KINDS = ("created", "updated", "deleted")


class EventsUnavailable(Exception):  # noqa: N818 - a condition the caller handles
    """The app cannot read the event feed (events not enabled for it)."""


class CursorExpired(Exception):  # noqa: N818
    """Clever no longer knows the stored event id."""


class Newest(NamedTuple):
    id: str
    created: str  # ISO 8601, as Clever sent it ('' when it did not)


class Collected(NamedTuple):
    events: int  # events read
    applied: dict[str, int]  # changes kept per record type
    newest: Newest | None


def newest_event(client: CleverClient) -> Newest | None:
    """The feed's newest event, or None when the feed is empty.

    `ending_before=last&limit=1` asks for the newest event directly; the pages after it are
    read too, so a server that ignores the idiom still yields the true newest event, and one
    that refuses it (400) has its whole feed read instead.
    """
    newest: Newest | None = None
    try:
        pages = client.pages(
            "events", {"ending_before": "last", "limit": 1}, refused=frozenset({400, 403, 404})
        )
        newest = _last(next(pages, []))
        pages.close()
    except Refused as exc:
        if exc.response.status_code != 400:
            raise EventsUnavailable(clever_said(exc.response)) from None
    else:
        if newest is None:
            return None
    params = {"starting_after": newest.id} if newest else {}
    for page in client.pages("events", params):
        newest = _last(page) or newest
    return newest


def _last(page: list[dict[str, Any]]) -> Newest | None:
    for event in reversed(page):
        event_id = mapping.text(event.get("id"))
        if event_id:
            return Newest(event_id, mapping.text(event.get("created")))
    return None


def collect(client: CleverClient, spool: Spool, *, after: str) -> Collected:
    """Reads the events after `after` ('' = the whole feed) into the spool's changes."""
    params = {"starting_after": after} if after else {}
    refused = frozenset({400, 403, 404, 410}) if after else frozenset({403, 404})
    events = 0
    applied = dict.fromkeys(RECORD_TYPES, 0)
    newest: Newest | None = None
    try:
        for page in client.pages("events", params, refused=refused):
            for event in page:
                events += 1
                newest = _last([event]) or newest
                kept = _keep(spool, event)
                if kept:
                    applied[kept] += 1
    except Refused as exc:
        status = exc.response.status_code
        if after and status != 403:
            raise CursorExpired(clever_said(exc.response)) from None
        raise EventsUnavailable(clever_said(exc.response)) from None
    return Collected(events, applied, newest)


def _keep(spool: Spool, event: dict[str, Any]) -> str | None:
    """Puts one event's change into the spool; returns its record type, or None if skipped."""
    record_type, _, kind = mapping.text(event.get("type")).partition(".")
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    obj = data.get("object") if isinstance(data.get("object"), dict) else {}
    record_id = mapping.text(obj.get("id"))
    if record_type not in RECORD_TYPES or kind not in KINDS or not record_id:
        return None
    spool.put_change(record_type, record_id, kind, obj)
    previous = data.get("previous_attributes")
    if record_type == "sections" and isinstance(previous, dict):
        before = [(u, "teacher") for u in mapping.ids(previous.get("teachers"))]
        old_primary = mapping.text(previous.get("teacher"))
        if old_primary:
            before.append((old_primary, "teacher"))
        before += [(u, "student") for u in mapping.ids(previous.get("students"))]
        spool.add_removed(record_id, before)
    return record_type


def cursor_age(stored_at: Any, now: dt.datetime) -> dt.timedelta | None:
    """How old a stored cursor is, from its ISO timestamp; None when unknown."""
    value = mapping.text(stored_at)
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return now - when
