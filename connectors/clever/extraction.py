"""One extraction from Clever, full or by events. See connectors.base for the contract.

Full: the district is checked, the newest event id is recorded first (`state_after`), then
schools, sections (with terms and courses looked up) and users are paged from the top-level
endpoints; each section's members are spooled as the sections pass and come back as
enrollments. Every entity type is FULL.

Delta: the events after the stored id are read and collapsed (connectors.clever.events), then
each changed record is delivered once, in its final state, as a change: every entity type is
DELTA. A `sections.updated` event carries the section's whole member lists, and its
`previous_attributes` the lists before the change: members that were there before and are not
now are delivered as DELETED enrollments, so a delta takes students out of classes as well as
putting them in. A deleted section or user is delivered as DELETED; the loader takes its
memberships along.

Fallbacks to a full sync, each said in `notes`: no stored cursor (the first sync, or events
were off), a cursor older than Clever's 30-day retention, a cursor Clever no longer knows, or
events not enabled for the app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from connectors.base import EntityMode
from connectors.clever import events, mapping
from connectors.clever.client import CleverClient
from connectors.clever.mapping import Course, Member, Term
from connectors.clever.spool import Spool
from staging.records import DELETED, ENTITIES, Record

EVENTS_OFF = (
    "Clever events are not enabled for this app (Clever dashboard: the app's Settings, "
    "Integrations, Enable events)"
)


class CleverExtraction:
    def __init__(self, client: CleverClient, spool: Spool, *, options: dict[str, Any]) -> None:
        self.client = client
        self.spool = spool
        self.options = options
        # Clever contacts (parents, guardians) are people only when the provider asks.
        self.contacts = options.get("includeContacts") is True
        self.mode = "full"
        self.modes: dict[str, EntityMode] = dict.fromkeys(ENTITIES, EntityMode.FULL)
        self.announced: dict[str, int] = {}  # Clever announces no totals
        self.received: dict[str, int] = {}
        self.state_after: dict[str, Any] = {}
        self.notes: list[str] = []
        self.district: dict[str, Any] = {}
        self._members_spooled = False
        self._terms: dict[str, Term] = {}
        self._courses: dict[str, Course] = {}

    # -- starting: which kind of extraction this is -------------------------------------------

    def start(self, *, mode: str, state: dict[str, Any], now: dt.datetime | None = None) -> None:
        now = now or dt.datetime.now(dt.UTC)
        self.district = self.client.district()
        if mode == "delta":
            why_not = self._start_delta(state, now)
            if why_not is None:
                return
            self.notes.append(f"{why_not}: ran a full sync instead")
        self._start_full(now)

    def _start_full(self, now: dt.datetime) -> None:
        self.mode = "full"
        self.modes = dict.fromkeys(ENTITIES, EntityMode.FULL)
        try:
            newest = events.newest_event(self.client)
        except events.EventsUnavailable:
            self.notes.append(f"{EVENTS_OFF}: delta syncs will run as full syncs")
            self.state_after = {"cleverEventId": None, "cleverEventAt": None}
            return
        # An empty feed is a cursor too: everything in it later is newer than this sync.
        self.state_after = {
            "cleverEventId": newest.id if newest else "",
            "cleverEventAt": (newest.created if newest and newest.created else now.isoformat()),
        }

    def _start_delta(self, state: dict[str, Any], now: dt.datetime) -> str | None:
        """Reads the events into the spool; or says why a full sync must run instead."""
        cursor = state.get("cleverEventId")
        if not isinstance(cursor, str):
            return (
                "No Clever event cursor is stored (no full sync has recorded one yet, or Clever "
                "events were not enabled for the app at the last one)"
            )
        age = events.cursor_age(state.get("cleverEventAt"), now)
        if age is not None and age > events.RETENTION:
            return (
                f"The stored Clever event cursor is {age.days} days old, older than the "
                "30 days Clever keeps events"
            )
        try:
            collected = events.collect(self.client, self.spool, after=cursor)
        except events.CursorExpired:
            return (
                "Clever no longer has the event this provider last synced to (Clever keeps "
                "events 30 days)"
            )
        except events.EventsUnavailable:
            return EVENTS_OFF
        self.mode = "delta"
        self.modes = dict.fromkeys(ENTITIES, EntityMode.DELTA)
        newest = collected.newest
        self.state_after = {
            "cleverEventId": newest.id if newest else cursor,
            "cleverEventAt": (
                (newest.created or now.isoformat()) if newest else state.get("cleverEventAt")
            ),
        }
        kinds = ", ".join(f"{n:,} {t}" for t, n in collected.applied.items() if n)
        self.notes.append(
            f"Read {collected.events:,} Clever events after the last sync"
            + (f" (changes to {kinds})" if kinds else "")
        )
        return None

    # -- records ------------------------------------------------------------------------------

    def records(self, entity: str) -> Iterator[Record]:
        self.received[entity] = 0
        prefix = "_delta_" if self.mode == "delta" else "_full_"
        producer: Callable[[], Iterator[Record | None]] = getattr(self, f"{prefix}{entity}")
        return (record for record in producer() if record is not None)

    def _count(self, entity: str) -> None:
        self.received[entity] = self.received.get(entity, 0) + 1

    # full ------------------------------------------------------------------------------------

    def _full_schools(self) -> Iterator[Record | None]:
        for line, record in enumerate(self.client.records("schools"), 1):
            self._count("schools")
            yield mapping.school(record, line=line)

    def _full_classes(self) -> Iterator[Record | None]:
        self._terms = {
            mapping.text(t.get("id")): mapping.term(t) for t in self.client.records("terms")
        }
        self._courses = {
            mapping.text(c.get("id")): mapping.course(c) for c in self.client.records("courses")
        }
        for line, record in enumerate(self.client.records("sections"), 1):
            self._count("classes")
            section_id = mapping.text(record.get("id"))
            if section_id:
                school = mapping.text(record.get("school"))
                self.spool.add_members([(section_id, school, *m) for m in mapping.members(record)])
            yield self._class(record, line)
        self._members_spooled = True

    def _class(self, record: dict[str, Any], line: int = 0) -> Record:
        term = self._terms.get(mapping.text(record.get("term_id")), mapping.NO_TERM)
        course = self._courses.get(mapping.text(record.get("course")), mapping.NO_COURSE)
        return mapping.section(record, term=term, course=course, line=line)

    def _clever_roles(self) -> list[str]:
        """The Clever roles to page: those whose people the provider's `roles` option keeps."""
        synced = mapping.clever_roles(contacts=self.contacts)
        wanted = self.options.get("roles")
        if not isinstance(wanted, list) or not wanted:
            return list(synced)
        return [r for r in synced if mapping.OUR_ROLE[r] in wanted]

    def _full_users(self) -> Iterator[Record | None]:
        line = 0
        for clever_role in self._clever_roles():
            for record in self.client.records("users", {"role": clever_role}):
                user_id = mapping.text(record.get("id"))
                # Staff, teachers and district admins merge into one Clever user listed under
                # each of its roles; students never merge, so need no bookkeeping.
                if clever_role != "student" and user_id and not self.spool.first_sight(user_id):
                    continue
                line += 1
                self._count("users")
                yield mapping.user(record, line=line, contacts=self.contacts)

    def _full_enrollments(self) -> Iterator[Record | None]:
        if self._members_spooled:
            rows: Iterator[tuple[str, str, str, str, bool]] = self.spool.members()
        else:  # classes were not asked for in this run: read the sections for their members
            rows = (
                (mapping.text(s.get("id")), mapping.text(s.get("school")), *m)
                for s in self.client.records("sections")
                if mapping.text(s.get("id"))
                for m in mapping.members(s)
            )
        for line, (section_id, school, user_id, role, primary) in enumerate(rows, 1):
            self._count("enrollments")
            yield mapping.enrollment(section_id, school, Member(user_id, role, primary), line=line)

    # delta -----------------------------------------------------------------------------------

    def _delta_schools(self) -> Iterator[Record | None]:
        for _, kind, obj in self.spool.changes("schools"):
            self._count("schools")
            yield mapping.deleted("schools", obj) if kind == "deleted" else mapping.school(obj)

    def _delta_classes(self) -> Iterator[Record | None]:
        self._seed_lookups()
        self._refetch_sections_of_changed_courses_and_terms()
        for _, kind, obj in self.spool.changes("sections"):
            self._count("classes")
            if kind == "deleted":
                yield mapping.deleted("classes", obj)
                continue
            self._look_up(obj)
            yield self._class(obj)

    def _seed_lookups(self) -> None:
        """Terms and courses the events carry are the newest we can know."""
        for _, kind, obj in self.spool.changes("terms"):
            if kind != "deleted":
                self._terms[mapping.text(obj.get("id"))] = mapping.term(obj)
        for _, kind, obj in self.spool.changes("courses"):
            if kind != "deleted":
                self._courses[mapping.text(obj.get("id"))] = mapping.course(obj)

    def _refetch_sections_of_changed_courses_and_terms(self) -> None:
        """A renamed course or term changes its sections' classes, with no section event."""
        for record_type in ("courses", "terms"):
            for record_id, kind, _ in list(self.spool.changes(record_type)):
                if kind != "updated":
                    continue
                for section in self.client.records(f"{record_type}/{record_id}/sections"):
                    section_id = mapping.text(section.get("id"))
                    if section_id and not self.spool.has_change("sections", section_id):
                        self.spool.put_change("sections", section_id, "updated", section)

    def _look_up(self, section: dict[str, Any]) -> None:
        """Fetches a section's term and course when no event or earlier lookup had them."""
        term_id = mapping.text(section.get("term_id"))
        if term_id and term_id not in self._terms:
            self._terms[term_id] = mapping.term(self.client.one(f"terms/{term_id}"))
        course_id = mapping.text(section.get("course"))
        if course_id and course_id not in self._courses:
            self._courses[course_id] = mapping.course(self.client.one(f"courses/{course_id}"))

    def _delta_users(self) -> Iterator[Record | None]:
        for _, kind, obj in self.spool.changes("users"):
            self._count("users")
            if kind == "deleted":
                yield mapping.deleted("users", obj, contacts=self.contacts)
                continue
            mapped = mapping.user(obj, contacts=self.contacts)
            if mapped is None and kind == "updated":
                # No longer in a role we keep (only a contact now): gone from the roster.
                yield mapping.deleted("users", obj, contacts=self.contacts)
            else:
                yield mapped

    def _delta_enrollments(self) -> Iterator[Record | None]:
        for section_id, kind, obj in self.spool.changes("sections"):
            if kind == "deleted":
                continue  # the class's deactivation takes its memberships along
            school = mapping.text(obj.get("school"))
            current = mapping.members(obj)
            # A member deleted in this same delta leaves with their own deactivation.
            gone = self.spool.deleted_ids("users", [m.user_id for m in current])
            for member in current:
                if member.user_id not in gone:
                    self._count("enrollments")
                    yield mapping.enrollment(section_id, school, member)
            now_in = {m.user_id for m in current}
            for user_id, role in self.spool.removed(section_id):
                if user_id not in now_in:
                    self._count("enrollments")
                    yield mapping.enrollment(
                        section_id, school, Member(user_id, role, False), status=DELETED
                    )
