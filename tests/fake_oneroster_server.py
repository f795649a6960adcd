"""A OneRoster 1.1 REST server for tests, serving a district generated as a CSV bundle.

`FakeOneRoster(district_objects(bundle))` listens on 127.0.0.1 (an ephemeral port) in a thread:
use it as a context manager, or `start()`/`stop()`; it also stops by itself after `lifetime`
seconds, and idle connections time out, so a test that forgets it cannot hang the suite.

It speaks what the connector relies on (reference/oneroster.md §2–3): limit/offset paging with
X-Total-Count and a Link header (first/prev/next/last, pointing at *another host*, as ClassLink's
hrefs do: a client must never follow them), `filter=dateLastModified>'…'` (and the other
comparison operators, up to two clauses with AND/OR), envelopes keyed as the spec has them,
`imsx` error envelopes, an OAuth 2 client-credentials token endpoint, and OAuth 1.0a requests
verified with oauthlib's SignatureOnlyEndpoint (HMAC-SHA256 or HMAC-SHA1, every query parameter
signed). The objects carry the quirks real servers have (`district_objects(quirks=True)`).

Faults, for the failure paths: `latency` per page; `inject("429" | "500" | "drop" | "cut",
times=, path=)` for the next matching requests (429 with a text body and Retry-After; 500 with
an imsx body; a connection closed before any answer; an answer cut off mid-body); `page_cap`
(pages shorter than asked); `ignore_offset`; `extra_total` (an X-Total-Count larger than what is
delivered); `send_total` / `send_links`; `refuse` (path -> status); `supports_filter`.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint

BASE_PATH = "/ims/oneroster/v1p1"
TOKEN_PATH = "/oauth/token"
BASE_DATE = "2025-08-01T12:00:00.000Z"
FOREIGN_HOST = "https://elsewhere-nj-v2.rosterserver.example"
COLLECTIONS = ("orgs", "academicSessions", "courses", "classes", "users", "enrollments")


# -- a CSV bundle as REST objects -------------------------------------------------------------


def _csv(bundle: Path, name: str) -> list[dict[str, str]]:
    with open(bundle / f"{name}.csv", newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(",") if part.strip()]


class _Quirks:
    """Deterministic sloppiness, as seen in real servers."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self.n = 0

    def tick(self) -> int:
        self.n += 1
        return self.n

    def ref(self, kind: str, plural: str, sourced_id: str) -> dict[str, str]:
        n = self.tick()
        wrong = self.on and n % 3 == 0
        host = FOREIGN_HOST if self.on else ""
        return {
            "href": f"{host}{BASE_PATH}/{plural}/{sourced_id}",
            "sourcedId": sourced_id,
            "type": "academicSession" if wrong else kind,  # wrong types happen
        }

    def boolean(self, value: str) -> Any:
        truth = value.strip().lower() == "true"
        if not self.on:
            return truth
        return (truth, "true" if truth else "false", 1 if truth else 0)[self.tick() % 3]

    def base(self, row: dict[str, str]) -> dict[str, Any]:
        n = self.tick()
        obj: dict[str, Any] = {
            "sourcedId": row["sourcedId"],
            "status": row.get("status") or "active",
            "dateLastModified": BASE_DATE[:10] if self.on and n % 4 == 0 else BASE_DATE,
        }
        if self.on:
            obj["metadata"] = {"vendor.campus": "main"}
            if n % 5 == 0:
                obj["x_vendorExtra"] = [1, 2]
        return obj

    def optional(self, obj: dict[str, Any], key: str, value: Any) -> None:
        """Optional fields: left out when empty (quirky servers), else present even if empty."""
        if value in ("", [], None) and self.on:
            return
        obj[key] = value


def district_objects(bundle: Path, *, quirks: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The bundle's rows as OneRoster 1.1 REST objects, per collection."""
    q = _Quirks(quirks)
    data: dict[str, list[dict[str, Any]]] = {name: [] for name in COLLECTIONS}
    for row in _csv(bundle, "orgs"):
        obj = q.base(row) | {"name": row["name"], "type": row["type"]}
        q.optional(obj, "identifier", row["identifier"])
        if row["parentSourcedId"]:
            obj["parent"] = q.ref("org", "orgs", row["parentSourcedId"])
        data["orgs"].append(obj)
    for row in _csv(bundle, "academicSessions"):
        obj = q.base(row) | {"title": row["title"], "type": row["type"]}
        obj |= {"startDate": row["startDate"], "endDate": row["endDate"]}
        q.optional(obj, "schoolYear", row["schoolYear"])
        if row["parentSourcedId"]:
            obj["parent"] = q.ref("academicSession", "academicSessions", row["parentSourcedId"])
        data["academicSessions"].append(obj)
    for row in _csv(bundle, "courses"):
        obj = q.base(row) | {"title": row["title"]}
        q.optional(obj, "courseCode", row["courseCode"])
        q.optional(obj, "grades", _split(row["grades"]))
        q.optional(obj, "subjects", _split(row["subjects"]))
        if row["orgSourcedId"]:
            obj["org"] = q.ref("org", "orgs", row["orgSourcedId"])
        if row["schoolYearSourcedId"]:
            obj["schoolYear"] = q.ref(
                "academicSession", "academicSessions", row["schoolYearSourcedId"]
            )
        data["courses"].append(obj)
    for row in _csv(bundle, "classes"):
        obj = q.base(row) | {"title": row["title"]}
        for key in ("classCode", "classType", "location"):
            q.optional(obj, key, row[key])
        q.optional(obj, "grades", _split(row["grades"]))
        q.optional(obj, "subjects", _split(row["subjects"]))
        periods = _split(row["periods"])
        q.optional(obj, "periods", periods if q.tick() % 2 else ",".join(periods))
        obj["course"] = q.ref("course", "courses", row["courseSourcedId"])
        obj["school"] = q.ref("org", "schools", row["schoolSourcedId"])
        obj["terms"] = [q.ref("academicSession", "terms", t) for t in _split(row["termSourcedIds"])]
        data["classes"].append(obj)
    for row in _csv(bundle, "users"):
        obj = q.base(row) | {"role": row["role"], "username": row["username"]}
        obj |= {"givenName": row["givenName"], "familyName": row["familyName"]}
        obj["enabledUser"] = q.boolean(row["enabledUser"] or "true")
        obj["orgs"] = [q.ref("org", "orgs", o) for o in _split(row["orgSourcedIds"])]
        ids = re.findall(r"\{([^:}]+):([^}]*)\}", row["userIds"])
        q.optional(obj, "userIds", [{"type": t, "identifier": i} for t, i in ids])
        for key in ("middleName", "identifier", "email", "sms", "phone", "password"):
            q.optional(obj, key, row[key])
        q.optional(obj, "grades", _split(row["grades"]))
        q.optional(
            obj, "agents", [q.ref("user", "users", a) for a in _split(row["agentSourcedIds"])]
        )
        data["users"].append(obj)
    for row in _csv(bundle, "enrollments"):
        obj = q.base(row) | {"role": row["role"]}
        obj["class"] = q.ref("class", "classes", row["classSourcedId"])
        obj["user"] = q.ref("user", "users", row["userSourcedId"])
        if row["schoolSourcedId"]:
            obj["school"] = q.ref("org", "schools", row["schoolSourcedId"])
        if row["primary"]:
            obj["primary"] = q.boolean(row["primary"])
        q.optional(obj, "beginDate", row["beginDate"])
        q.optional(obj, "endDate", row["endDate"])
        data["enrollments"].append(obj)
    return data


# -- filters ----------------------------------------------------------------------------------

CLAUSE = re.compile(r"^\s*(\w+)\s*(>=|<=|!=|>|<|=|~)\s*'([^']*)'\s*$")


class BadFilter(ValueError):
    pass


def _comparable(field_name: str, value: Any) -> Any:
    if field_name == "dateLastModified" and isinstance(value, str) and value:
        text = value if len(value) > 10 else f"{value}T00:00:00Z"
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return "" if value is None else str(value)


def _matches(obj: dict[str, Any], clause: tuple[str, str, str]) -> bool:
    name, op, wanted = clause
    have, want = _comparable(name, obj.get(name)), _comparable(name, wanted)
    if op == "~":
        return str(want).lower() in str(have).lower()
    if have == "" and isinstance(want, dt.datetime):
        return False
    return {
        "=": have == want,
        "!=": have != want,
        ">": have > want,
        ">=": have >= want,
        "<": have < want,
        "<=": have <= want,
    }[op]


def parse_filter(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    joiner = "AND"
    parts = [text]
    for word in (" AND ", " OR "):
        if word in text:
            joiner, parts = word.strip(), text.split(word)
    if len(parts) > 2:
        raise BadFilter("at most two clauses")
    clauses = []
    for part in parts:
        match = CLAUSE.match(part)
        if not match:
            raise BadFilter(f"cannot parse {part!r}")
        clauses.append((match[1], match[2], match[3]))
    return joiner, clauses


# -- OAuth 1.0a verification ------------------------------------------------------------------


class _Validator(RequestValidator):
    def __init__(self, fake: FakeOneRoster) -> None:
        super().__init__()
        self.fake = fake
        self._nonces: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    enforce_ssl = False  # the test server speaks plain HTTP on loopback
    client_key_length = (3, 100)
    nonce_length = (8, 64)
    dummy_client = "dummy-client"

    @property
    def safe_characters(self) -> set[str]:
        return set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:
        return (self.fake.signature_method,)

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key == self.fake.client_id

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return self.fake.client_secret if client_key == self.fake.client_id else "dummy-secret"

    def validate_timestamp_and_nonce(
        self, client_key: str, timestamp: str, nonce: str, request: Any, **kwargs: Any
    ) -> bool:
        key = (client_key, timestamp, nonce)
        with self._lock:
            if key in self._nonces:
                return False  # a replayed request
            self._nonces.add(key)
        return True


# -- the server -------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str  # below BASE_PATH for data requests ("users"), or the token path
    query: dict[str, str]
    status: int = 0
    at: float = 0.0
    oauth_params: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    kind: str
    remaining: int
    path: str
    retry_after: str


ROUTES = {  # collection path -> (data collection, envelope key, which objects)
    "orgs": ("orgs", "orgs", None),
    "schools": ("orgs", "orgs", ("type", "school")),
    "academicSessions": ("academicSessions", "academicSessions", None),
    "terms": ("academicSessions", "academicSessions", ("type", "term")),
    "courses": ("courses", "courses", None),
    "classes": ("classes", "classes", None),
    "users": ("users", "users", None),
    "students": ("users", "users", ("role", "student")),
    "teachers": ("users", "users", ("role", "teacher")),
    "enrollments": ("enrollments", "enrollments", None),
}
SCHOOL_ENROLLMENTS = re.compile(r"^schools/([^/]+)/enrollments$")
CLASS_ENROLLMENTS = re.compile(r"^schools/([^/]+)/classes/([^/]+)/enrollments$")


class FakeOneRoster:
    def __init__(
        self,
        data: dict[str, list[dict[str, Any]]],
        *,
        auth: str = "oauth2",  # oauth2 | oauth1 | bearer | none
        client_id: str = "sis-sync-client",
        client_secret: str = "very-secret-value-42",
        signature_method: str = "HMAC-SHA256",
        bearer_token: str = "proxy-token-value-77",
        token_lifetime: int = 3600,
        latency: float = 0.0,
        lifetime: float = 120.0,
        cache_json: bool = False,
    ) -> None:
        self.data = data
        self.auth = auth
        self.client_id = client_id
        self.client_secret = client_secret
        self.signature_method = signature_method
        self.bearer_token = bearer_token
        self.token_lifetime = token_lifetime
        self.latency = latency
        self.lifetime = lifetime
        # Benchmarks: keep each object's JSON, so that the server's own encoding does not hide
        # the client's speed (change cached objects through touch() only).
        self.cache_json = cache_json
        self._json: dict[int, tuple[dict[str, Any], bytes]] = {}
        # Faults and quirks, all off by default.
        self.page_cap: int | None = None
        self.ignore_offset = False
        self.send_total = True
        self.send_links = True
        self.supports_filter = True
        self.extra_total: dict[str, int] = {}
        self.refuse: dict[str, int] = {}
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most data requests served at the same time
        self.log: list[Seen] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._endpoint = SignatureOnlyEndpoint(_Validator(self))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeOneRoster:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.block_on_close = False
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()

    def __enter__(self) -> FakeOneRoster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.origin}{BASE_PATH}"

    @property
    def token_url(self) -> str:
        return f"{self.origin}{TOKEN_PATH}"

    # -- test controls ------------------------------------------------------------------------

    def provider_config(self, **extra: Any) -> dict[str, Any]:
        """An ONEROSTER_API provider's config for this server (OAuth 2 client credentials)."""
        return {
            "baseUrl": self.url,
            "tokenUrl": self.token_url,
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            **extra,
        }

    def inject(self, kind: str, *, times: int = 1, path: str = "", retry_after: str = "0") -> None:
        assert kind in ("429", "500", "drop", "cut"), kind
        with self._lock:
            self._faults.append(_Fault(kind, times, path, retry_after))

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def touch(self, collection: str, sourced_id: str, **changes: Any) -> dict[str, Any]:
        """Changes an object as an SIS edit does: its dateLastModified becomes now."""
        obj = self.find(collection, sourced_id)
        self._json.pop(id(obj), None)
        obj.update(changes)
        obj["dateLastModified"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        return obj

    def mark_deleted(self, collection: str, sourced_id: str) -> dict[str, Any]:
        return self.touch(collection, sourced_id, status="tobedeleted")

    def find(self, collection: str, sourced_id: str) -> dict[str, Any]:
        return next(o for o in self.data[collection] if o["sourcedId"] == sourced_id)

    def encoded(self, obj: dict[str, Any]) -> bytes:
        if not self.cache_json:
            return json.dumps(obj).encode()
        cached = self._json.get(id(obj))
        if cached is None or cached[0] is not obj:
            cached = self._json[id(obj)] = (obj, json.dumps(obj).encode())
        return cached[1]

    def warm(self) -> None:
        """Encodes every object now (with cache_json), not on first request."""
        for objects in self.data.values():
            for obj in objects:
                self.encoded(obj)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.log if s.path == path]

    # -- serving (called from handler threads) ------------------------------------------------

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.path in path:
                    fault.remaining -= 1
                    return fault
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.log.append(seen)

    def _objects(self, path: str) -> tuple[str, list[dict[str, Any]]] | None:
        if path in ROUTES:
            collection, key, where = ROUTES[path]
            items = self.data[collection]
            if where:
                items = [o for o in items if str(o.get(where[0], "")).lower() == where[1]]
            return key, items
        match = SCHOOL_ENROLLMENTS.match(path)
        if match:
            school = unquote(match[1])
            return "enrollments", [
                o
                for o in self.data["enrollments"]
                if o.get("school", {}).get("sourcedId") == school
            ]
        match = CLASS_ENROLLMENTS.match(path)
        if match:
            klass = unquote(match[2])
            return "enrollments", [
                o for o in self.data["enrollments"] if o["class"]["sourcedId"] == klass
            ]
        return None


def _imsx(code_minor: str, description: str) -> dict[str, Any]:
    return {
        "statusInfoSet": [
            {
                "imsx_codeMajor": "failure",
                "imsx_severity": "error",
                "imsx_description": description,
                "imsx_CodeMinor": {
                    "imsx_codeMinorField": [
                        {
                            "imsx_codeMinorFieldName": "TargetEndSystem",
                            "imsx_codeMinorFieldValue": code_minor,
                        }
                    ]
                },
            }
        ]
    }


class _Handler(BaseHTTPRequestHandler):
    seen: Seen  # what the request being served goes down as in the log
    protocol_version = "HTTP/1.1"
    timeout = 5  # idle keep-alive connections close by themselves
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: the test log is `fake.log`

    @property
    def fake(self) -> FakeOneRoster:
        return self.server.fake

    # -- plumbing -----------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: Any,
        *,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> None:
        """Answers with `body`: JSON-encoded, or sent as is when it is bytes already."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.seen.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- token endpoint -----------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        self.seen = Seen("POST", parts.path, {}, at=time.monotonic())
        self.fake._record(self.seen)
        form = dict(parse_qsl(self._body().decode()))
        if parts.path != TOKEN_PATH:
            self._send(404, {"error": "not_found"})
        else:
            self._token(form)

    def _token(self, form: dict[str, str]) -> int:
        fake = self.fake
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            self._send(400, {"error": "unsupported_grant_type"})
            return 400
        if (client_id, secret) != (fake.client_id, fake.client_secret):
            self._send(401, {"error": "invalid_client", "error_description": "bad client"})
            return 401
        token = secrets.token_urlsafe(24)
        with fake._lock:
            fake.tokens[token] = time.monotonic() + fake.token_lifetime
            fake.tokens_issued += 1
        body = {"access_token": token, "token_type": "bearer", "expires_in": fake.token_lifetime}
        self._send(200, body)
        return 200

    # -- data ---------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        path = parts.path.removeprefix(BASE_PATH).strip("/")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.seen = seen = Seen("GET", path, query, at=time.monotonic())
        fake = self.fake
        fake._record(seen)  # first: a client may read the log as soon as it has its answer
        with fake._lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            self._get(path, query, seen)
        finally:
            with fake._lock:
                fake.in_flight -= 1

    def _get(self, path: str, query: dict[str, str], seen: Seen) -> int:
        fake = self.fake
        fault = fake._take_fault(path)
        if fault is not None:
            return self._fault(fault)
        denied = self._authorise(seen)
        if denied:
            return denied
        if path in fake.refuse:
            status = fake.refuse[path]
            self._send(status, _imsx("unsupportedoperation", f"/{path} is not available"))
            return status
        found = fake._objects(path)
        if found is None:
            self._send(404, _imsx("unknownobject", f"no such endpoint /{path}"))
            return 404
        key, items = found
        if query.get("filter"):
            if not fake.supports_filter:
                self._send(400, _imsx("invalid_selection_field", "filter is not supported"))
                return 400
            try:
                joiner, clauses = parse_filter(query["filter"])
            except BadFilter as exc:
                self._send(400, _imsx("invalid_selection_field", str(exc)))
                return 400
            test = all if joiner == "AND" else any
            items = [o for o in items if test(_matches(o, c) for c in clauses)]
        return self._page(path, key, items, query)

    def _page(self, path: str, key: str, items: list[dict[str, Any]], query: dict[str, str]) -> int:
        fake = self.fake
        try:
            limit = max(1, int(query.get("limit", 100)))
            offset = max(0, int(query.get("offset", 0)))
        except ValueError:
            self._send(400, _imsx("invaliddata", "limit and offset must be numbers"))
            return 400
        if fake.page_cap:
            limit = min(limit, fake.page_cap)
        if fake.ignore_offset:
            offset = 0
        if fake.latency:
            time.sleep(fake.latency)
        total = len(items)
        headers = []
        if fake.send_total:
            headers.append(("X-Total-Count", str(total + fake.extra_total.get(path, 0))))
        if fake.send_links:
            headers.append(("Link", self._links(path, query, limit, offset, total)))
        page = b",".join(fake.encoded(o) for o in items[offset : offset + limit])
        self._send(200, b'{"%s":[%s]}' % (key.encode(), page), headers=headers)
        return 200

    def _links(self, path: str, query: dict[str, str], limit: int, offset: int, total: int) -> str:
        def link(at: int, rel: str) -> str:
            params = {**query, "limit": str(limit), "offset": str(at)}
            target = f"{FOREIGN_HOST}{BASE_PATH}/{path}?{urlencode(params, quote_via=quote)}"
            return f'<{target}>; rel="{rel}"'

        last = max(0, (total - 1) // limit * limit)
        links = [link(0, "first"), link(last, "last")]
        if offset > 0:
            links.append(link(max(0, offset - limit), "prev"))
        if offset + limit < total:
            links.append(link(offset + limit, "next"))
        return ", ".join(links)

    def _authorise(self, seen: Seen) -> int:
        """0 when the request is authorised; else the status of the refusal already sent."""
        fake = self.fake
        header = self.headers.get("Authorization", "")
        if fake.auth == "none":
            return 0
        if fake.auth == "oauth1":
            uri = f"http://{self.headers['Host']}{self.path}"
            valid, request = fake._endpoint.validate_request(uri, "GET", None, dict(self.headers))
            if request is not None:
                seen.oauth_params = dict(request.oauth_params)
            if valid:
                return 0
            self._send(401, _imsx("unauthorisedrequest", "Invalid OAuth signature"))
            return 401
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        if fake.auth == "bearer":
            ok = bool(token) and token == fake.bearer_token
        else:
            with fake._lock:
                ok = fake.tokens.get(token, 0.0) > time.monotonic()
        if ok:
            return 0
        self._send(401, _imsx("unauthorisedrequest", "Invalid or expired access token"))
        return 401

    def _fault(self, fault: _Fault) -> int:
        if fault.kind == "429":
            self._send(
                429,
                b"Too Many Requests: slow down",
                headers=[("Retry-After", fault.retry_after)],
                content_type="text/plain",
            )
            return 429
        if fault.kind == "500":
            self._send(500, _imsx("internal_server_error", "the roster database is busy"))
            return 500
        if fault.kind == "drop":
            self.seen.status = -1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return -1
        # "cut": announce a whole body, send half of it, hang up.
        payload = json.dumps({"users": [{"sourcedId": "x"}] * 50}).encode()
        self.seen.status = -2
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
        return -2
