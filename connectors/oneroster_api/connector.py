"""ONEROSTER_API: any OneRoster 1.1 REST server (`…/ims/oneroster/v1p1`). See connectors.base.

Where a REST collection becomes records: /orgs -> schools, /classes (+ /courses and
/academicSessions, read first: they are small) -> classes, /users -> users, /enrollments (or,
when a server refuses the flat collection, /schools/{id}/enrollments, then
/schools/{id}/classes/{id}/enrollments) -> enrollments. Mapping rules: `mapping`.

Delta: a delta run asks every collection for `filter=dateLastModified>'<start of the last
applied sync>'` and marks every entity DELTA (`tobedeleted` records deactivate). It runs in full
instead, with a note, when there is no earlier sync, when the last full sync is older than
`fullSyncEveryDays` (default 7: hard deletes are invisible to the filter), or when the server
refuses the filter.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from connectors.base import ConnectorError, EntityMode
from connectors.oneroster_api import mapping
from connectors.oneroster_api.client import (
    BASE_CHECK_PATH,
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    MAX_CONCURRENCY,
    MAX_PAGE_SIZE,
    ClientSettings,
    Collection,
    OneRosterClient,
    Refused,
    bounded_int,
)
from staging.records import ENTITIES, Record

# Statuses with which servers refuse a collection they do not offer (or not to us).
REFUSALS = frozenset({403, 404, 405, 501})
FILTER_REFUSALS = frozenset({400, 403, 404, 405, 422, 501})
DEFAULT_FULL_SYNC_EVERY_DAYS = 7
# Retry pacing; module-level so that tests can shorten it.
RETRY_BACKOFF = 1.0
SLEEP: Callable[[float], None] = time.sleep


def settings_from_config(config: Mapping[str, Any]) -> ClientSettings:
    missing = [k for k in ("baseUrl", "clientId", "clientSecret") if not config.get(k)]
    method = str(config.get("authMethod") or "oauth2")
    if method not in ("oauth2", "oauth1"):
        raise ConnectorError("config.authMethod must be oauth2 or oauth1")
    if method == "oauth2" and not config.get("tokenUrl"):
        missing.append("tokenUrl")
    if missing:
        raise ConnectorError(f"The provider's config is missing {', '.join(missing)}")
    return ClientSettings(
        base_url=str(config["baseUrl"]),
        client_id=str(config["clientId"]),
        client_secret=str(config["clientSecret"]),
        auth_method=method,
        token_url=str(config.get("tokenUrl") or ""),
        scope=str(config.get("scope") or ""),
        token_client_auth="post" if config.get("tokenClientAuth") == "post" else "basic",
        signature_method=str(config.get("signatureMethod") or "HMAC-SHA256"),
        page_size=bounded_int(config, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
        concurrency=bounded_int(config, "concurrency", DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY),
        sort=str(config.get("sort") or ""),
    )


class OneRosterApiConnector:
    # Each entity type is its own endpoint: a sync's types may be extracted in parallel tasks.
    separate_entities = True

    def __init__(self, config: dict[str, Any], *, options: dict[str, Any]) -> None:
        self.config = config
        self.options = options
        self.settings = self.client_settings(config)
        self.full_sync_every_days = bounded_int(
            config, "fullSyncEveryDays", DEFAULT_FULL_SYNC_EVERY_DAYS, 1, 365
        )

    def client_settings(self, config: Mapping[str, Any]) -> ClientSettings:
        return settings_from_config(config)

    def client(self) -> OneRosterClient:
        return OneRosterClient(self.settings, sleep=SLEEP, backoff=RETRY_BACKOFF)

    def test_connection(self) -> str:
        client = self.client()
        try:
            return describe_server(client)
        finally:
            client.close()

    @contextmanager
    def extract(self, *, mode: str, state: dict[str, Any]) -> Iterator[ApiExtraction]:
        client = self.client()
        try:
            yield ApiExtraction(
                client, mode=mode, state=state, full_sync_every_days=self.full_sync_every_days
            )
        finally:
            client.close()


def describe_server(client: OneRosterClient) -> str:
    """One signed orgs?limit=1 (credentials, reachability), then what the server offers."""
    orgs = client.page(BASE_CHECK_PATH, "orgs", offset=0, limit=1)
    parts = []
    try:
        schools = client.page("schools", "orgs", offset=0, limit=1, refusals=REFUSALS).total
    except (Refused, ConnectorError):
        schools = None
    if schools is not None:
        parts.append(_plural(schools, "school"))
    elif orgs.total is not None:
        parts.append(_plural(orgs.total, "org"))
    else:
        parts.append("orgs readable")
    if orgs.total is not None:
        parts.append("paging with X-Total-Count")
    elif orgs.has_link:
        parts.append("paging with Link headers (no X-Total-Count)")
    else:
        parts.append("paging without X-Total-Count or Link headers")
    parts.append("filter supported" if _filter_works(client) else "filter not supported")
    return ", ".join(parts)


def _plural(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _filter_works(client: OneRosterClient) -> bool:
    try:
        client.page(
            BASE_CHECK_PATH,
            "orgs",
            offset=0,
            limit=1,
            filter=delta_filter(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
            refusals=FILTER_REFUSALS,
        )
    except Refused:
        return False
    return True


def delta_filter(since: dt.datetime) -> str:
    # Whole seconds, rounded down: a record changed in the same second comes again (harmless).
    return f"dateLastModified>'{since.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class ApiExtraction:
    """One pass over a OneRoster REST server. See connectors.base for the contract."""

    def __init__(
        self,
        client: OneRosterClient,
        *,
        mode: str,
        state: dict[str, Any],
        full_sync_every_days: int = DEFAULT_FULL_SYNC_EVERY_DAYS,
        now: dt.datetime | None = None,
    ) -> None:
        self.client = client
        self.notes: list[str] = []
        self.announced: dict[str, int] = {}
        self.received: dict[str, int] = {}
        self.state_after: dict[str, Any] = {}
        self.filter = self._plan(mode, state, full_sync_every_days, now or dt.datetime.now(dt.UTC))
        self.mode = "delta" if self.filter else "full"
        entity_mode = EntityMode.DELTA if self.filter else EntityMode.FULL
        self.modes = dict.fromkeys(ENTITIES, entity_mode)
        self._lookups = mapping.Lookups()
        self._orgs: dict[str, bool] | None = None  # every org id -> is it a school

    # -- mode ---------------------------------------------------------------------------------

    def _plan(self, mode: str, state: dict[str, Any], every: int, now: dt.datetime) -> str:
        """The delta filter to use, or '' for a full sync (noting why a delta fell back)."""
        if mode != "delta":
            return ""
        since = _when(state.get("lastSyncStartedAt"))
        if since is None:
            self.notes.append("No earlier sync to take changes from: ran a full sync instead")
            return ""
        last_full = _when(state.get("lastFullSyncStartedAt"))
        if last_full is None or now - last_full > dt.timedelta(days=every):
            self.notes.append(
                f"The last full sync is more than {every} days old (fullSyncEveryDays): ran a "
                "full sync instead, because records deleted at the source only show in a full sync"
            )
            return ""
        wanted = delta_filter(since)
        try:
            self.client.page(
                BASE_CHECK_PATH, "orgs", offset=0, limit=1, filter=wanted, refusals=FILTER_REFUSALS
            )
        except Refused as exc:
            self.notes.append(
                f"The server refused filter=dateLastModified (HTTP {exc.status}): ran a full "
                "sync instead"
            )
            return ""
        return wanted

    # -- records ------------------------------------------------------------------------------

    def records(self, entity: str) -> Iterator[Record]:
        if entity == "schools":
            return self._schools()
        if entity == "classes":
            return self._classes()
        if entity == "users":
            return self._users()
        if entity == "enrollments":
            return self._enrollments()
        raise ValueError(f"unknown entity type {entity!r}")

    def _collection(self, path: str, key: str, **kwargs: Any) -> Collection:
        return self.client.collection(path, key, filter=self.filter, **kwargs)

    def _mapped(
        self,
        entity: str,
        collections: Iterable[Collection],
        observe: Callable[[Any], None] | None = None,
    ) -> Iterator[Record]:
        """Records of every collection in turn; announced/received summed over them."""
        announced: int | None = 0
        received = 0
        for collection in collections:
            source = f"/{collection.path}"
            for position, obj in collection:
                if observe is not None:
                    observe(obj)
                record = mapping.to_record(
                    entity, obj, position=position, lookups=self._lookups, source=source
                )
                if record is not None:
                    yield record
            received += collection.received
            if announced is not None and collection.announced is not None:
                announced += collection.announced
            else:
                announced = None
        self.received[entity] = received
        if announced is not None:
            self.announced[entity] = announced

    def _schools(self) -> Iterator[Record]:
        seen: dict[str, bool] = {}

        def observe(obj: Any) -> None:
            entry = mapping.org_is_school(obj)
            if entry:
                seen[entry[0]] = entry[1]

        yield from self._mapped("schools", [self._collection("orgs", "orgs")], observe)
        if not self.filter:
            self._orgs = seen  # a full pass saw every org: the lookup is complete

    def _classes(self) -> Iterator[Record]:
        lookups = self._lookups
        courses = self._lookup("courses", mapping.course_entry, missing="course titles")
        if courses is not None:
            lookups.courses, lookups.has_courses = courses, True
        sessions = self._lookup(
            "academicSessions", mapping.session_entry, missing="term names or dates"
        )
        if sessions is not None:
            lookups.sessions, lookups.has_sessions = sessions, True
        yield from self._mapped("classes", [self._collection("classes", "classes")])

    def _users(self) -> Iterator[Record]:
        orgs = self._org_types()
        self._lookups.non_school_orgs = {org for org, school in orgs.items() if not school}
        yield from self._mapped("users", [self._collection("users", "users")])

    def _enrollments(self) -> Iterator[Record]:
        flat = self._collection("enrollments", "enrollments", refusals=REFUSALS)
        try:
            flat.start()
        except Refused as exc:
            yield from self._mapped("enrollments", self._enrollments_by_school(exc))
            return
        yield from self._mapped("enrollments", [flat])

    def _enrollments_by_school(self, refusal: Refused) -> Iterator[Collection]:
        schools = sorted(org for org, school in self._org_types().items() if school)
        self.notes.append(
            f"The server refused /enrollments (HTTP {refusal.status}): read enrollments school "
            f"by school ({len(schools)} schools)"
        )
        for number, school in enumerate(schools):
            collection = self._collection(
                f"schools/{quote(school, safe='')}/enrollments",
                "enrollments",
                refusals=REFUSALS if number == 0 else frozenset(),
            )
            try:
                collection.start()
            except Refused as exc:
                yield from self._enrollments_by_class(exc)
                return
            yield collection

    def _enrollments_by_class(self, refusal: Refused) -> Iterator[Collection]:
        self.notes.append(
            f"The server refused enrollments per school too (HTTP {refusal.status}): read "
            "enrollments class by class"
        )
        # Every class (unfiltered, even in a delta): ids only are kept.
        pairs = []
        for _, obj in self.client.collection("classes", "classes"):
            try:
                class_id = mapping.text(obj, "sourcedId")
                school_id = mapping.ref_id(obj, "school")
            except (mapping.MappingError, AttributeError):
                continue  # not an object, or no usable ids: /classes rejects it already
            if class_id and school_id:
                pairs.append((school_id, class_id))
        for school_id, class_id in pairs:
            path = f"schools/{quote(school_id, safe='')}/classes/{quote(class_id, safe='')}"
            yield self._collection(f"{path}/enrollments", "enrollments")

    # -- lookups ------------------------------------------------------------------------------

    def _lookup(
        self, path: str, entry: Callable[[Any], tuple[str, Any] | None], *, missing: str
    ) -> dict[str, Any] | None:
        """A whole small collection (never filtered) as a dict; None if the server refuses it."""
        collection = self.client.collection(path, path, refusals=REFUSALS)
        try:
            collection.start()
        except Refused as exc:
            self.notes.append(
                f"The server refused /{path} (HTTP {exc.status}): classes have no {missing}"
            )
            return None
        found = {}
        for _, obj in collection:
            item = entry(obj)
            if item is not None:
                found[item[0]] = item[1]
        return found

    def _org_types(self) -> dict[str, bool]:
        """Every org's id -> whether it is a school: from the schools pass, or read now."""
        if self._orgs is None:
            self._orgs = {}
            for _, obj in self.client.collection("orgs", "orgs"):
                item = mapping.org_is_school(obj)
                if item is not None:
                    self._orgs[item[0]] = item[1]
        return self._orgs
