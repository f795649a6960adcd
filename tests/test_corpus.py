"""The malformed-input corpus (tests/corpus/): every case runs through the real pipeline.

`tests/corpus/cases.yaml` lists each case with what it feeds the pipeline and the outcome it
must end in: a status, the words of its error, its exact rejects. A case starts from a synced
roster (tests/corpus/base, a small valid district) and then syncs the damaged input, so that
"the roster is unchanged when the run fails" is checked for every failing case. Whatever the
input, a run ends with a clear message or precise rejects, never with a traceback: no
unforeseen-exception message ("Extraction failed: KeyError: …"), no logged exception.

- `csv` cases: `tests/corpus/csv/<id>/` holds the files that replace the base bundle's
  (`remove` names files to leave out); the bundle is synced as a folder.
- `zip` cases: `tests/corpus/zip/<file>` is offered through both doors a zip comes in by: an
  upload (refused before it is kept) and a bundle the provider already holds, as an SFTP fetch
  leaves it (the run fails, nothing applied).
- `api` cases: a OneRoster REST server (tests/fake_oneroster_server.py) serves the base
  district, except that requests to one collection get the case's answer (`respond`: a
  status, headers and body; `hang`; `truncate`; `redirect`; `oversize`), or its data is
  changed (`data`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.oneroster_api import connector as oneroster_connector
from sis_sync.errors import BadRequest
from sis_sync.models import (
    Classroom,
    Enrollment,
    Person,
    ProviderType,
    RunStatus,
    School,
    SisProvider,
    SisSyncRun,
)
from sis_sync.providers import (
    provider_create,
    provider_store_bundle,
    upload_provider_get_or_create,
)
from sis_sync.sync import sync_run_inline, sync_start
from sis_sync.tenants import tenant_get_or_create
from staging.models import RunReject
from tests.fake_oneroster_server import BASE_PATH, FakeOneRoster, _Handler, district_objects

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).resolve().parent / "corpus"
BASE = CORPUS / "base"
CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())
FAILED = (RunStatus.FAILURE, RunStatus.HELD)
# What sis_sync.sync writes when an exception nobody foresaw ends a run: a traceback in words.
UNFORESEEN = re.compile(
    r"(Extraction failed|The load failed and nothing was changed): [A-Za-z_.]*(Error|Exception)"
)


def case_ids(kind: str) -> list[Any]:
    return [pytest.param(case, id=case["id"]) for case in CASES[kind]]


# -- the roster and the outcome ---------------------------------------------------------------


def roster() -> dict[str, list[tuple[Any, ...]]]:
    """Everything a sync may change, row by row."""
    return {
        "schools": list(School.objects.order_by("id").values_list()),
        "classes": list(Classroom.objects.order_by("id").values_list()),
        "people": list(Person.objects.order_by("id").values_list()),
        "enrollments": list(Enrollment.objects.order_by("id").values_list()),
    }


class Logged(logging.Handler):
    """Every record the sync's loggers emit while a case runs."""

    NAMES = ("sis_sync", "connectors", "loader", "staging")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Logged:
        for name in self.NAMES:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.NAMES:
            logging.getLogger(name).removeHandler(self)


def check_outcome(
    run: SisSyncRun, expect: dict[str, Any], before: dict[str, Any], logged: Logged
) -> None:
    run.refresh_from_db()
    message = run.error_message
    assert run.status == expect["status"], f"{run.status}: {message}"
    if "error" in expect:
        assert expect["error"] in message, message
    assert not UNFORESEEN.search(message) and "Traceback" not in message, message
    tracebacks = [r.getMessage() for r in logged.records if r.exc_info]
    assert not tracebacks, f"an exception was logged: {tracebacks}"
    rejects = {(r.entity, r.external_id): r.reason for r in RunReject.objects.filter(run_id=run.pk)}
    wanted = {(r["entity"], r["externalId"]): r["reason"] for r in expect.get("rejects", [])}
    if "rejectCount" in expect:  # a run that rejects many: their number, and those named
        assert len(rejects) == expect["rejectCount"], rejects
        assert set(wanted) <= set(rejects), rejects
    else:
        assert set(rejects) == set(wanted), rejects
    for key, reason in wanted.items():
        assert reason in rejects[key], (key, rejects[key])
    for entity, numbers in expect.get("stats", {}).items():
        got = run.stats[entity]
        assert {k: got[k] for k in numbers} == numbers, (entity, got)
    if run.status in FAILED:
        assert roster() == before, "a run that failed or was held changed the roster"


# -- CSV bundles ------------------------------------------------------------------------------


def csv_bundle(case: dict[str, Any], into: Path) -> Path:
    bundle = into / "bundle"
    shutil.copytree(BASE, bundle)
    for name in case.get("remove", []):
        (bundle / name).unlink()
    overlay = CORPUS / "csv" / case["id"]
    if overlay.is_dir():
        for item in overlay.iterdir():
            shutil.copyfile(item, bundle / item.name)
    return bundle


def upload_provider() -> SisProvider:
    return upload_provider_get_or_create(tenant=tenant_get_or_create(slug="harbor"))


def sync_folder(bundle: Path) -> SisSyncRun:
    provider = upload_provider()
    provider_store_bundle(provider=provider, source=bundle)
    return sync_run_inline(run_id=sync_start(provider=provider, is_manual=True).pk)


def baseline() -> dict[str, Any]:
    first = sync_folder(BASE)
    assert first.status == RunStatus.SUCCESS, first.error_message
    return roster()


@pytest.mark.parametrize("case", case_ids("csv"))
def test_csv_case(case: dict[str, Any], tmp_path: Path) -> None:
    before = baseline()
    bundle = csv_bundle(case, tmp_path)

    with Logged() as logged:
        run = sync_folder(bundle)

    check_outcome(run, case["expect"], before, logged)


# -- zip files --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", case_ids("zip"))
def test_zip_case_as_an_upload(case: dict[str, Any]) -> None:
    baseline()
    path = CORPUS / "zip" / case["file"]
    provider = upload_provider()
    kept = provider.bundle_path

    if "uploadError" not in case["expect"]:
        provider_store_bundle(provider=provider, source=path)
        provider.refresh_from_db()
        assert provider.bundle_path != kept
        return
    with pytest.raises(BadRequest) as refused:
        provider_store_bundle(provider=provider, source=path)

    assert case["expect"]["uploadError"] in refused.value.message
    provider.refresh_from_db()
    assert provider.bundle_path == kept  # the last good bundle is still the one kept


@pytest.mark.parametrize("case", case_ids("zip"))
def test_zip_case_as_a_fetched_bundle(case: dict[str, Any], tmp_path: Path) -> None:
    """As an SFTP fetch leaves a zip: already on disk, never checked by the upload door."""
    before = baseline()
    provider = upload_provider()
    fetched = tmp_path / "fetched.zip"
    shutil.copyfile(CORPUS / "zip" / case["file"], fetched)
    SisProvider.objects.filter(pk=provider.pk).update(bundle_path=str(fetched))

    with Logged() as logged:
        run = sync_run_inline(run_id=sync_start(provider=provider, is_manual=True).pk)

    check_outcome(run, case["expect"], before, logged)
    assert not Path("/tmp/sis-sync-pwned.csv").exists()


# -- API answers ------------------------------------------------------------------------------


class _CorpusHandler(_Handler):
    """The fake OneRoster server's handler, answering one collection as the case says."""

    def _get(self, path: str, query: dict[str, str], seen: Any) -> int:
        case = self.server.case
        if path != case.get("path") or case["remaining"] == 0:
            return super()._get(path, query, seen)
        case["remaining"] -= 1
        seen.status = -3
        if "hang" in case:
            time.sleep(case["hang"])
            return self._answer(200, b'{"%s":[]}' % path.encode(), {})
        if "redirect" in case:
            return self._answer(302, b"", {"Location": case["redirect"]})
        if "oversize" in case:
            return self._oversize(path, case["oversize"])
        respond = case.get("respond", {})
        body = respond.get("body", "")
        if isinstance(body, str) and body.startswith("@"):
            payload = (CORPUS / "api" / body[1:]).read_bytes()
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body).encode()
        headers = {"Content-Type": respond.get("contentType", "application/json")}
        headers |= {k: str(v) for k, v in respond.get("headers", {}).items()}
        if case.get("truncate"):
            return self._truncated(payload, headers)
        return self._answer(int(respond.get("status", 200)), payload, headers)

    def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> int:
        self.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        return status

    def _truncated(self, payload: bytes, headers: dict[str, str]) -> int:
        """Announces the whole body, sends a third of it, hangs up."""
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 3])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
        return -2

    def _oversize(self, path: str, size: int) -> int:
        """A page far larger than asked: `size` bytes of records, streamed."""
        record = (
            b'{"sourcedId":"x","status":"active","role":"student","padding":"'
            + (b"p" * 4000)
            + b'"}'
        )
        count = size // (len(record) + 1) + 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        try:
            chunk(b'{"%s":[' % path.encode())
            block = b",".join([record] * 256)
            for n in range(0, count, 256):
                chunk((b"," if n else b"") + block)
            chunk(b"]}")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up once it had seen enough: what it should do
        self.close_connection = True
        return 200


@pytest.fixture
def api_server(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOneRoster]:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True  # the server is on loopback
    monkeypatch.setattr(oneroster_connector, "SLEEP", lambda seconds: None)
    monkeypatch.setattr(oneroster_connector, "RETRY_BACKOFF", 0.0)
    quick = partial(oneroster_connector.OneRosterClient, timeout=(2.0, 0.25))
    monkeypatch.setattr(oneroster_connector, "OneRosterClient", quick)
    with FakeOneRoster(district_objects(BASE, quirks=False), auth="oauth2") as server:
        server._server.RequestHandlerClass = _CorpusHandler  # type: ignore[union-attr]
        server._server.case = {"remaining": 0}  # type: ignore[union-attr]
        yield server


def api_provider(server: FakeOneRoster, **config: Any) -> SisProvider:
    return provider_create(
        tenant=tenant_get_or_create(slug="harbor"),
        provider_type=ProviderType.ONEROSTER_API,
        name="Harbor SIS",
        config={
            "baseUrl": server.url,
            "tokenUrl": server.token_url,
            "clientId": server.client_id,
            "clientSecret": server.client_secret,
            "pageSize": 5,
            "concurrency": 1,
        }
        | config,
    )


def change_data(server: FakeOneRoster, changes: dict[str, str]) -> None:
    for collection, how in changes.items():
        items = server.data[collection]
        if how == "empty":
            server.data[collection] = []
        elif how == "half":
            server.data[collection] = items[::2]
        elif how.startswith("extra-total:"):
            server.extra_total[collection] = int(how.partition(":")[2])
        elif how.startswith("json:"):
            server.data[collection] = json.loads((CORPUS / "api" / how[5:]).read_text())
        else:
            raise AssertionError(f"unknown data change {how!r}")


@pytest.mark.parametrize("case", case_ids("api"))
def test_api_case(case: dict[str, Any], api_server: FakeOneRoster) -> None:
    provider = api_provider(api_server, **case.get("config", {}))
    first = sync_run_inline(run_id=sync_start(provider=provider, is_manual=True).pk)
    assert first.status == RunStatus.SUCCESS, first.error_message
    before = roster()
    change_data(api_server, case.get("data", {}))
    fault = {k: v for k, v in case.items() if k not in ("id", "what", "expect", "data", "config")}
    fault["remaining"] = fault.pop("times", -1)
    if "redirect" in fault:
        fault["redirect"] = fault["redirect"].replace("{origin}", api_server.origin)
        fault["redirect"] = fault["redirect"].replace("{base}", BASE_PATH)
    api_server._server.case = fault  # type: ignore[union-attr]

    with Logged() as logged:
        run = sync_run_inline(run_id=sync_start(provider=provider, is_manual=True).pk)

    check_outcome(run, case["expect"], before, logged)
    assert api_server.client_secret not in run.error_message


# -- the corpus itself ------------------------------------------------------------------------


def test_the_corpus_has_at_least_50_cases_and_every_file_belongs_to_one() -> None:
    ids = [case["id"] for kind in ("csv", "zip", "api") for case in CASES[kind]]
    assert len(ids) >= 50 and len(ids) == len(set(ids))
    csv_folders = {p.name for p in (CORPUS / "csv").iterdir()}
    assert csv_folders <= {case["id"] for case in CASES["csv"]}
    assert {p.name for p in (CORPUS / "zip").iterdir()} == {c["file"] for c in CASES["zip"]}
    api_files = {p.name for p in (CORPUS / "api").iterdir()}
    used = json.dumps(CASES["api"])
    assert all(name in used for name in api_files), api_files
    for case in CASES["csv"] + CASES["zip"] + CASES["api"]:
        assert case.get("what") and case["expect"]["status"] in RunStatus.values, case["id"]
