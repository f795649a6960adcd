"""REST extraction: a generated district served by the local OneRoster server, against its bound.

The server (tests/fake_oneroster_server.py, the one the end-to-end tests use) runs in its own
process, so its Python work does not share the syncing process's interpreter, and answers every
data request after `latency` seconds (20 ms: a nearby provider). The sync runs the pipeline's own
`sync_extract` for a ONEROSTER_API provider of its own tenant: fetch, map, stage.

The latency-bound minimum is what the requests the client made would cost if only the latency
counted: per collection, the first page (which tells the total) and then the rest
`concurrency` at a time; the collections one after another, as the connector reads them. The
sequential bound (one page at a time) is reported too.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.measure import BenchError

LATENCY = 0.020  # seconds per page, as in the issue
PAGE_SIZE = 1000  # the connector's default
CONCURRENCY = 4  # the connector's default
TOKEN_PATH = "/oauth/token"


def _serve(bundle: str, latency: float, conn: Any) -> None:
    """The child process: the district as REST objects, served until the parent says stop."""
    from tests.fake_oneroster_server import FakeOneRoster, district_objects

    fake = FakeOneRoster(
        district_objects(Path(bundle), quirks=False),
        auth="oauth2",
        latency=latency,
        lifetime=6 * 3600,
        cache_json=True,
    )
    fake.warm()
    with fake:
        conn.send(
            {
                "url": fake.url,
                "tokenUrl": fake.token_url,
                "clientId": fake.client_id,
                "clientSecret": fake.client_secret,
            }
        )
        conn.recv()  # the parent's "report"
        data = [s for s in fake.log if s.path != TOKEN_PATH and s.status == 200]
        conn.send(
            {
                "pagesByPath": dict(Counter(s.path for s in data)),
                "maxInFlight": fake.max_in_flight,
            }
        )


def latency_bound(pages_by_path: dict[str, int], latency: float, concurrency: int) -> float:
    return sum(
        (1 + math.ceil((pages - 1) / concurrency)) * latency for pages in pages_by_path.values()
    )


def rest_measure(bundle: Path, *, tenant: str) -> dict[str, Any]:
    """Extracts the district over REST into staging; seconds against the latency bound."""
    from django.conf import settings

    from sis_sync.models import ProviderType, RunStatus, SisSyncRun
    from sis_sync.providers import provider_create
    from sis_sync.runs import run_fail
    from sis_sync.sync import sync_extract, sync_start
    from sis_sync.tenants import tenant_get_or_create

    context = multiprocessing.get_context("spawn")  # no copy of this process's connections
    ours, theirs = context.Pipe()
    server = context.Process(target=_serve, args=(str(bundle), LATENCY, theirs), daemon=True)
    server.start()
    try:
        if not ours.poll(600):
            raise BenchError("the local OneRoster server did not start within 10 minutes")
        where = ours.recv()
        allowed = settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS
        settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True  # the server is on loopback, over http
        try:
            provider = provider_create(
                tenant=tenant_get_or_create(slug=tenant),
                provider_type=ProviderType.ONEROSTER_API,
                name="bench REST",
                config={
                    "baseUrl": where["url"],
                    "tokenUrl": where["tokenUrl"],
                    "clientId": where["clientId"],
                    "clientSecret": where["clientSecret"],
                    "pageSize": PAGE_SIZE,
                    "concurrency": CONCURRENCY,
                },
            )
            run = sync_start(provider=provider, is_manual=True, triggered_by="benchmark")
            started = time.perf_counter()
            extracted = sync_extract(run_id=run.pk)
            seconds = time.perf_counter() - started
        finally:
            settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = allowed
        run = SisSyncRun.objects.get(pk=run.pk)
        if not extracted or run.status != RunStatus.IN_PROGRESS:
            raise BenchError(
                f"REST extraction: run {run.pk} ended {run.status}: {run.error_message}"
            )
        staged = _staged_rows(run.pk)
        # Only the extraction is measured: the run ends here and its staging is dropped.
        run_fail(run, "benchmark: extraction only")
        ours.send("report")
        report = ours.recv()
    finally:
        server.join(timeout=30)
        if server.is_alive():
            server.kill()
    pages = report["pagesByPath"]
    bound = latency_bound(pages, LATENCY, CONCURRENCY)
    return {
        "latencySeconds": LATENCY,
        "pageSize": PAGE_SIZE,
        "concurrency": CONCURRENCY,
        "seconds": round(seconds, 3),
        "pages": sum(pages.values()),
        "pagesByPath": pages,
        "maxInFlight": report["maxInFlight"],
        "boundSeconds": round(bound, 3),
        "sequentialBoundSeconds": round(sum(pages.values()) * LATENCY, 3),
        "oursOverBound": round(seconds / bound, 2) if bound else None,
        "stagedRows": staged,
        "rowsPerSecond": round(sum(staged.values()) / seconds) if seconds else None,
    }


def _staged_rows(run_id: int) -> dict[str, int]:
    from django.db import connection

    from staging.writer import TABLES

    counts = {}
    with connection.cursor() as cursor:
        for entity, table in TABLES.items():
            cursor.execute(f"SELECT count(*) FROM {table} WHERE run_id = %s", [run_id])
            counts[entity] = cursor.fetchone()[0]
    return counts
