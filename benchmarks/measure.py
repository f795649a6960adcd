"""Two ways of timing one sync, each honest about what it includes.

`sync_by_command` runs `manage.py import_oneroster_csv … --json` in a child process, exactly as
an operator would: its wall time (interpreter and Django start-up, copying the bundle to the
provider's folder, extract, stage, plan, apply, commit, staging clean-up, exit) and the child's
peak resident memory, read from the kernel with wait4().

`sync_in_process` runs the same domain functions as that command (tenant, upload provider,
bundle, sync_start, sync_extract, sync_load) in this process, to split the time by stage. It
uses only the pipeline's own progress callback, the run's `loaded_at`, and Django's public
`connection.execute_wrapper` to time each SQL statement: nothing in the project is patched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.db import connection

PROJECT_DIR = Path(__file__).resolve().parent.parent
ENTITIES = ("schools", "classes", "users", "enrollments")
SQL_CHARS = 150  # enough of a statement's text to tell the loader's statements apart


class BenchError(Exception):
    """A sync did not end the way the benchmark needs (SUCCESS, and the expected changes)."""


def entity_stats(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {entity: stats.get(entity, {}) for entity in ENTITIES}


def sync_by_command(*, bundle: Path, tenant: str) -> dict[str, Any]:
    """One import in a child process (environment inherited): wall seconds, peak RSS, stats."""
    command = [
        sys.executable,
        "manage.py",
        "import_oneroster_csv",
        str(bundle),
        "--tenant",
        tenant,
        "--json",
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=out, stderr=err)
        # wait4 reports this child's own resource use, unlike RUSAGE_CHILDREN's running maximum.
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    lines = stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        # The last lines say what failed; the results file must not carry this machine's paths.
        tail = (stderr.strip() or stdout.strip())[-2000:].replace(str(PROJECT_DIR), "<project>")
        raise BenchError(f"import_oneroster_csv exited with {child.returncode}:\n{tail}")
    run = json.loads(lines[-1])
    if run["status"] != "SUCCESS":
        raise BenchError(f"run {run['id']} ended {run['status']}: {run['errorMessage']}")
    return {
        "seconds": round(seconds, 3),
        "runDurationSeconds": run["stats"].get("durationSeconds"),
        "peakRssBytes": usage.ru_maxrss * 1024,  # Linux reports kilobytes
        "stats": entity_stats(run["stats"]),
    }


class StatementTimer:
    """A Django execute wrapper: seconds per SQL statement, grouped by phase and text.

    COPY goes to psycopg directly, not through Django's execute, so it is not in here.
    """

    def __init__(self) -> None:
        self.phase = ""
        self.totals: dict[tuple[str, str], list[float]] = {}

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = (self.phase, " ".join(sql.split())[:SQL_CHARS])
            entry = self.totals.setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    def seconds_by_phase(self) -> dict[str, float]:
        by_phase: dict[str, float] = {}
        for (phase, _), (_, seconds) in self.totals.items():
            by_phase[phase] = by_phase.get(phase, 0.0) + seconds
        return {phase: round(seconds, 3) for phase, seconds in by_phase.items()}

    def top(self, how_many: int) -> list[dict[str, Any]]:
        ranked = sorted(self.totals.items(), key=lambda item: item[1][1], reverse=True)
        return [
            {"phase": phase, "sql": text, "calls": int(calls), "seconds": round(seconds, 3)}
            for (phase, text), (calls, seconds) in ranked[:how_many]
        ]


def sync_in_process(*, bundle: Path, tenant: str) -> dict[str, Any]:
    """One import in this process, timed per stage (see the module docstring)."""
    from sis_sync.models import RunStatus
    from sis_sync.providers import provider_store_bundle, upload_provider_get_or_create
    from sis_sync.sync import sync_extract, sync_load, sync_start
    from sis_sync.tenants import tenant_get_or_create

    provider = upload_provider_get_or_create(tenant=tenant_get_or_create(slug=tenant))
    provider_store_bundle(provider=provider, source=bundle)
    run = sync_start(provider=provider, is_manual=True, triggered_by="benchmark")
    timer = StatementTimer()
    marks: dict[str, tuple[float, float]] = {}  # phase -> (perf_counter, wall clock) first seen

    def on_progress(current: Any) -> None:
        timer.phase = current.phase
        marks.setdefault(current.phase, (time.perf_counter(), time.time()))

    with connection.execute_wrapper(timer):
        started = time.perf_counter()
        sync_extract(run_id=run.pk, on_progress=on_progress)
        extracted = time.perf_counter()
        run = sync_load(run_id=run.pk, on_progress=on_progress)
        finished = time.perf_counter()
    if run.status != RunStatus.SUCCESS or "load" not in marks or run.loaded_at is None:
        raise BenchError(f"in-process run {run.pk} ended {run.status}: {run.error_message}")
    # sync_load reports the LOAD phase just before loader.apply and stamps loaded_at just after.
    load_started, load_started_wall = marks["load"]
    apply_seconds = run.loaded_at.timestamp() - load_started_wall
    return {
        "seconds": round(finished - started, 3),
        "extractStageSeconds": round(extracted - started, 3),
        "planSeconds": round(load_started - extracted, 3),
        "applySeconds": round(apply_seconds, 3),
        "finishSeconds": round(finished - load_started - apply_seconds, 3),
        "sqlSecondsByPhase": timer.seconds_by_phase(),
        "topStatements": timer.top(12),
        "stats": entity_stats(run.stats),
    }
