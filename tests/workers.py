"""Real Celery worker processes for the chain tests: Redis broker, the test's PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    s = connection.settings_dict
    host, port = s["HOST"] or "127.0.0.1", s["PORT"] or 5432
    return f"postgresql://{s['USER'] or 'postgres'}@{host}:{port}/{s['NAME']}"


@contextmanager
def celery_workers(
    redis_url: str, data_dir: Path, *, count: int = 1, concurrency: int = 1, env: dict | None = None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Starts `count` worker processes (as two machines would) and stops them afterwards."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "SIS_SYNC_DATA_DIR": str(data_dir),
        "SIS_SYNC_ALLOW_PRIVATE_HOSTS": "true",
        # The keys this test process encrypted the providers' configs with.
        "SIS_SYNC_ENCRYPTION_KEYS": ",".join(settings.SIS_SYNC_ENCRYPTION_KEYS),
        **(env or {}),
    }
    workers = []
    for n in range(count):
        log = open(data_dir / f"worker-{n}.log", "wb")  # noqa: SIM115 - closed with the process
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    "sync",
                    "--pool",
                    "prefork",
                    "--concurrency",
                    str(concurrency),
                    "-n",
                    f"test{n}-{os.getpid()}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)


def children(pid: int) -> list[int]:
    """The pool processes of a worker (its direct children)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
