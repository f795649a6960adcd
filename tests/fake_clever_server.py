"""A Clever-like HTTP server for end-to-end tests: a generated district in Clever v3.0 shapes.

It is a real `http.server.ThreadingHTTPServer` on 127.0.0.1 (an ephemeral port) in a daemon
thread; `with FakeClever.from_bundle(path) as clever:` starts it and stops it, and it stops by
itself after `lifetime` seconds whatever happens. It serves:
- `GET /oauth/tokens?owner_type=district[&district=…]` with HTTP Basic client credentials;
- `GET /v3.0/districts|schools|terms|courses|sections|users[?role=…]` and
  `/v3.0/<type>/<id>[/sections]`, in the `{"data": [{"data", "uri"}], "links"}` envelope,
  paged by `limit` (at most 10,000, else 413) and `starting_after`, with `next` links;
- `GET /v3.0/events` (`starting_after`, `ending_before=last`, `limit`): events recorded by the
  mutation helpers (`add`, `update`, `delete`), with `previous_attributes` on updates;
  an unknown `starting_after` event answers 404, disabled events 403;
- faults: `fail(path, status, …)` answers the next matching requests with an error (a 429 with a
  plain-text body, a 500, …); `rotate_token()` replaces the district token.

Ids are 24 hex digits, ascending in creation order, like Clever's. A record keeps the bundle's
sourcedId as its `sis_id`, and `id_of(sourcedId)` finds its Clever id. A student's
`student_number` and a teacher's `teacher_number` are the bundle's `identifier`; their
`state_id` is that identifier behind "ST" (students) or "TS" (teachers).
"""

from __future__ import annotations

import base64
import copy
import csv
import datetime as dt
import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

VERSION = "v3.0"
TYPES = ("districts", "schools", "terms", "courses", "sections", "users")
SUBJECTS = {
    "homeroom": "homeroom/advisory",
    "english language arts": "english/language arts",
    "mathematics": "math",
    "science": "science",
    "social studies": "social studies",
    "world languages": "language",
    "physical education": "PE and health",
    "visual arts": "arts and music",
    "music": "arts and music",
}
GRADES = {"KG": "Kindergarten", "PK": "PreKindergarten", "TK": "TransitionalKindergarten"}


def clever_grade(code: str) -> str:
    code = code.strip()
    if code.isdigit():
        return str(int(code))
    return GRADES.get(code, code)


def _read(bundle: Path, name: str) -> list[dict[str, str]]:
    with open(bundle / f"{name}.csv", newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


class Fault:
    def __init__(
        self, path: str, status: int, times: int, body: str, headers: dict[str, str]
    ) -> None:
        self.path = path
        self.status = status
        self.times = times
        self.body = body
        self.headers = headers


class FakeClever:
    def __init__(
        self,
        *,
        district_id: str = "5f0000000000000000000d01",
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        lifetime: float = 120.0,
    ) -> None:
        self.district_id = district_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.lifetime = lifetime
        self.token = "a" * 40
        self._token_serial = count(1)
        self.records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        self.events: list[dict[str, Any]] = []
        self.events_enabled = True
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.by_sis_id: dict[str, str] = {}
        self.lock = threading.RLock()
        self._ids = count(1)
        self._server: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None
        self.records["districts"][district_id] = {
            "id": district_id,
            "name": "Fake District",
            "state": "success",
        }

    # -- building the district ----------------------------------------------------------------

    def new_id(self) -> str:
        return f"{0x5F00_0000_0000 + next(self._ids):024x}"

    @classmethod
    def from_bundle(cls, bundle: Path, **kwargs: Any) -> FakeClever:
        """A district converted from a OneRoster CSV bundle (sis_sync.district_generator)."""
        fake = cls(**kwargs)
        fake._load_bundle(Path(bundle))
        return fake

    def id_of(self, sis_id: str) -> str:
        return self.by_sis_id[sis_id]

    def get(self, record_type: str, record_id: str) -> dict[str, Any]:
        return self.records[record_type][record_id]

    def _put(self, record_type: str, record: dict[str, Any]) -> dict[str, Any]:
        record.setdefault("district", self.district_id)
        self.records[record_type][record["id"]] = record
        if record.get("sis_id"):
            self.by_sis_id[record["sis_id"]] = record["id"]
        return record

    def _load_bundle(self, bundle: Path) -> None:
        orgs = _read(bundle, "orgs")
        district = next(o for o in orgs if o["type"] == "district")
        self.records["districts"][self.district_id]["name"] = district["name"]
        users = _read(bundle, "users")
        grades_at: dict[str, list[str]] = defaultdict(list)
        for u in users:
            if u["role"] == "student":
                grades_at[u["orgSourcedIds"].split(",")[0]].append(u["grades"])
        order = ["PK", "TK", "KG"] + [f"{n:02d}" for n in range(1, 14)]
        for org in orgs:
            if org["type"] != "school":
                continue
            grades = sorted(set(grades_at[org["sourcedId"]]), key=order.index)
            self._put(
                "schools",
                {
                    "id": self.new_id(),
                    "name": org["name"],
                    "sis_id": org["sourcedId"],
                    "school_number": org["identifier"][-5:],
                    "nces_id": org["identifier"],
                    "state_id": "",
                    "low_grade": clever_grade(grades[0]) if grades else "",
                    "high_grade": clever_grade(grades[-1]) if grades else "",
                    "phone": "",
                },
            )
        sessions = {s["sourcedId"]: s for s in _read(bundle, "academicSessions")}
        for s in sessions.values():
            self._put(
                "terms",
                {
                    "id": self.new_id(),
                    "sis_id": s["sourcedId"],
                    "name": s["title"],
                    "start_date": s["startDate"],
                    "end_date": s["endDate"],
                },
            )
        for c in _read(bundle, "courses"):
            self._put(
                "courses",
                {"id": self.new_id(), "sis_id": c["sourcedId"], "name": c["title"],
                 "number": c["courseCode"]},
            )  # fmt: skip
        for u in users:
            self._put("users", self._user(u))
        members: dict[str, dict[str, list[str]]] = defaultdict(
            lambda: {"students": [], "teachers": [], "teacher": []}
        )
        for e in _read(bundle, "enrollments"):
            group = members[e["classSourcedId"]]
            user_id = self.id_of(e["userSourcedId"])
            group["students" if e["role"] == "student" else "teachers"].append(user_id)
            if e["role"] == "teacher" and e["primary"] == "true":
                group["teacher"].append(user_id)
        for k in _read(bundle, "classes"):
            group = members[k["sourcedId"]]
            terms = k["termSourcedIds"].split(",")
            # Clever sections have one term: a full-year class gets the school year.
            term = terms[0] if len(terms) == 1 else sessions[terms[0]]["parentSourcedId"]
            self._put(
                "sections",
                {
                    "id": self.new_id(),
                    "name": k["title"],
                    "sis_id": k["sourcedId"],
                    "section_number": k["classCode"],
                    "period": k["periods"],
                    "grade": clever_grade(k["grades"].split(",")[0]),
                    "subject": SUBJECTS.get(k["subjects"].lower(), "other"),
                    "school": self.id_of(k["schoolSourcedId"]),
                    "course": self.id_of(k["courseSourcedId"]),
                    "term_id": self.id_of(term),
                    "teacher": group["teacher"][0] if group["teacher"] else None,
                    "teachers": group["teachers"],
                    "students": group["students"],
                },
            )

    def _user(self, u: dict[str, str]) -> dict[str, Any]:
        schools = [self.id_of(o) for o in u["orgSourcedIds"].split(",") if o in self.by_sis_id]
        credentials = {"district_username": u["username"]}
        if u["role"] == "student":
            roles: dict[str, Any] = {
                "student": {
                    "sis_id": u["sourcedId"],
                    "student_number": u["identifier"],
                    "state_id": f"ST{u['identifier']}",
                    "school": schools[0],
                    "schools": schools,
                    "grade": clever_grade(u["grades"]),
                    "credentials": credentials,
                    "enrollments": [],
                    "graduation_year": "",
                }
            }
        elif u["role"] == "teacher":
            roles = {
                "teacher": {
                    "sis_id": u["sourcedId"],
                    "teacher_number": u["identifier"],
                    "state_id": f"TS{u['identifier']}",
                    "school": schools[0],
                    "schools": schools,
                    "credentials": credentials,
                    "legacy_id": f"v2-{u['sourcedId']}",
                }
            }
        else:
            roles = {"district_admin": {"title": "Administrator", "legacy_id": ""}}
        user: dict[str, Any] = {
            "id": self.new_id(),
            "sis_id": u["sourcedId"],  # not a Clever field: how tests find a user
            "name": {"first": u["givenName"], "middle": u["middleName"], "last": u["familyName"]},
            "roles": roles,
        }
        if u["email"]:
            user["email"] = u["email"]
        return user

    # -- changes, recorded as events ------------------------------------------------------------

    def _event(
        self, record_type: str, kind: str, obj: dict[str, Any], previous: Any = None
    ) -> None:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        self.events.append(
            {
                "id": self.new_id(),
                "created": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                "type": f"{record_type}.{kind}",
                "data": data,
            }
        )

    def add(self, record_type: str, record: dict[str, Any], *, event: bool = True) -> str:
        with self.lock:
            record = {"id": self.new_id(), **record}
            self._put(record_type, record)
            if event:
                self._event(record_type, "created", record)
            return record["id"]

    def update(
        self, record_type: str, record_id: str, *, event: bool = True, **changes: Any
    ) -> None:
        with self.lock:
            record = self.records[record_type][record_id]
            previous = {k: copy.deepcopy(record.get(k)) for k in changes}
            record.update(copy.deepcopy(changes))
            if event:
                self._event(record_type, "updated", record, previous)

    def delete(self, record_type: str, record_id: str, *, event: bool = True) -> None:
        with self.lock:
            record = self.records[record_type].pop(record_id)
            if event:
                self._event(record_type, "deleted", record)

    def event(self, record_type: str, kind: str, obj: dict[str, Any], previous: Any = None) -> None:
        """An event on its own (a replayed or odd one), without changing the data."""
        with self.lock:
            self._event(record_type, kind, obj, previous)

    def expire_events(self) -> None:
        """Every event so far drops out of the feed, as after Clever's 30 days."""
        with self.lock:
            self.events.clear()

    # -- faults and tokens ----------------------------------------------------------------------

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int = 1,
        body: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` requests whose path starts with `path` get this answer."""
        with self.lock:
            self.faults.append(Fault(path, status, times, body, headers or {}))

    def rotate_token(self) -> str:
        with self.lock:
            self.token = f"{next(self._token_serial):040x}"
            return self.token

    def paths(self, prefix: str = "") -> list[str]:
        return [r["path"] for r in self.requests if r["path"].startswith(prefix)]

    # -- serving ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake Clever server is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeClever:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()  # fmt: skip
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if self._timer is not None:
            self._timer.cancel()
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FakeClever:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ------------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> tuple:
        """(status, body text, extra headers) for one GET."""
        with self.lock:
            self.requests.append({"path": path, "query": query, "auth": headers.get("auth", "")})
            for fault in self.faults:
                if fault.times > 0 and path.startswith(fault.path):
                    fault.times -= 1
                    return fault.status, fault.body, fault.headers
            if path == "/oauth/tokens":
                return self._tokens(query, headers.get("auth", ""))
            if headers.get("auth") != f"Bearer {self.token}":
                return 401, json.dumps({"message": "Invalid token"}), {}
            parts = [p for p in path.split("/") if p]
            if not parts or parts[0] != VERSION:
                return 404, json.dumps({"message": "Not found"}), {}
            return self._api(parts[1:], query)

    def _tokens(self, query: dict[str, str], auth: str) -> tuple:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if auth != f"Basic {expected}":
            body = {"error": "invalid_client", "error_description": "Client authentication failed"}
            return 401, json.dumps(body), {}
        if query.get("owner_type") != "district":
            return 400, json.dumps({"error": "invalid_request"}), {}
        tokens = []
        if query.get("district", self.district_id) == self.district_id:
            tokens.append(
                {
                    "id": "tok-1",
                    "created": "2025-08-01T00:00:00.000Z",
                    "owner": {"type": "district", "id": self.district_id},
                    "access_token": self.token,
                    "scopes": ["read:district_admins", "read:sections", "read:students"],
                }
            )
        links = [{"rel": "self", "uri": "/oauth/tokens?owner_type=district"}]
        return 200, json.dumps({"data": tokens, "links": links}), {}

    def _api(self, parts: list[str], query: dict[str, str]) -> tuple:
        if parts == ["events"]:
            return self._events(query)
        if len(parts) == 1 and parts[0] in TYPES:
            items = list(self.records[parts[0]].values())
            if parts[0] == "users" and query.get("role"):
                items = [u for u in items if query["role"] in u.get("roles", {})]
            return self._page(parts[0], items, query, "/".join(parts))
        if len(parts) == 2 and parts[0] in TYPES:
            record = self.records[parts[0]].get(parts[1])
            if record is None:
                return 404, json.dumps({"message": "Resource not found"}), {}
            return 200, json.dumps({"data": record, "links": []}), {}
        if len(parts) == 3 and parts[0] in ("courses", "terms") and parts[2] == "sections":
            key = "course" if parts[0] == "courses" else "term_id"
            items = [s for s in self.records["sections"].values() if s.get(key) == parts[1]]
            return self._page("sections", items, query, "/".join(parts))
        return 404, json.dumps({"message": "Not found"}), {}

    def _page(self, record_type: str, items: list[dict[str, Any]], query: dict, path: str) -> tuple:
        limit = int(query.get("limit", "100"))
        if limit > 10_000:
            return 413, json.dumps({"message": "limit must be 10000 or less"}), {}
        items = sorted(items, key=lambda r: r["id"])
        if query.get("ending_before") == "last":
            page = items[-limit:]
            more = False
        else:
            after = query.get("starting_after")
            if after:
                if record_type == "events" and after not in {e["id"] for e in items}:
                    return 404, json.dumps({"message": f"event {after} not found"}), {}
                items = [r for r in items if r["id"] > after]
            page = items[:limit]
            more = len(page) == limit  # like Clever: a full page always links to a next one
        links = [{"rel": "self", "uri": f"/{VERSION}/{path}?{urlencode(query)}"}]
        if more and page:
            following = {k: v for k, v in query.items() if k != "starting_after"}
            following["starting_after"] = page[-1]["id"]
            links.append({"rel": "next", "uri": f"/{VERSION}/{path}?{urlencode(following)}"})
        data = [{"data": r, "uri": f"/{VERSION}/{record_type}/{r['id']}"} for r in page]
        return 200, json.dumps({"data": data, "links": links}), {}

    def _events(self, query: dict[str, str]) -> tuple:
        if not self.events_enabled:
            return 403, json.dumps({"message": "Events are not enabled for this application"}), {}
        return self._page("events", self.events, query, "events")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        fake: FakeClever = self.server.fake  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        status, body, headers = fake.answer(
            url.path, query, {"auth": self.headers.get("Authorization", "")}
        )
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        content_type = "application/json"
        if data and not data.lstrip().startswith((b"{", b"[")):
            content_type = "text/plain; charset=utf-8"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet tests
