"""Faults, injected for real: worker processes SIGKILLed in each stage, the loading PostgreSQL
connection terminated, Redis restarted under a running sync, SFTP sessions dropped mid-transfer.

Whatever happens, a load is all or nothing: the roster is either what it was before the run or
exactly what the source says, never a mix; and a provider never has two syncs at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection

from sis_sync.district_generator import generate_district
from sis_sync.errors import AlreadyRunning
from sis_sync.models import (
    Enrollment,
    ExternalIdentity,
    Person,
    RunStatus,
    SisProvider,
    SisSyncRun,
)
from sis_sync.sync import sync_run_inline, sync_start
from sis_sync.tasks import enqueue_run
from tests import bundles, sshd_server
from tests.sshd_server import SshServer
from tests.test_workers import FINISHED, broker, upload_provider  # noqa: F401 - a fixture
from tests.workers import celery_workers, children, wait_for

# -- the roster as the trials see it ----------------------------------------------------------


def fingerprint() -> tuple[int, int, int]:
    """(active people, active enrollments, people renamed by bundle B): enough to tell the
    roster of bundle A, the roster of bundle B and any mix of the two apart."""
    return (
        Person.objects.filter(is_active=True).count(),
        Enrollment.objects.filter(is_active=True).count(),
        Person.objects.filter(family_name__endswith="-B").count(),
    )


def make_bundles(root: Path, *, students: int) -> tuple[Path, Path, dict[Path, tuple]]:
    """District A, and B: A with 5% of the students gone and 5% renamed."""
    a, b = root / "a", root / "b"
    generate_district(a, students=students, seed=11)
    shutil.copytree(a, b)
    pupils = bundles.students(b)
    gone = {r["sourcedId"] for r in pupils[: len(pupils) // 20]}
    renamed = {r["sourcedId"] for r in pupils[len(pupils) // 20 : len(pupils) // 10]}
    bundles.drop_users(b, gone)

    def rename(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        for row in rows:
            if row["sourcedId"] in renamed:
                row["familyName"] += "-B"
        return rows

    bundles.edit(b, "users", rename)
    expected = {}
    for bundle, renamed_count in ((a, 0), (b, len(renamed))):
        users = bundles.read(bundle, "users")
        kept = {u["sourcedId"] for u in users}
        enrollments = [e for e in bundles.read(bundle, "enrollments") if e["userSourcedId"] in kept]
        expected[bundle] = (len(users), len(enrollments), renamed_count)
    return a, b, expected


# -- SIGKILL of a worker in each stage --------------------------------------------------------


def load_backends() -> list[tuple[int, str]]:
    """(pid, query) of other sessions of the test database inside a transaction that wrote."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )
        return cursor.fetchall()


def busy_backends() -> list[str]:
    """What other sessions of the test database are running inside a transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND state = 'active'"
        )
        return [row[0] for row in cursor.fetchall()]


def what_it_was_doing(query: str) -> str:
    q = query.lower()
    if "sis_raw_" in q and ("copy" in q or "insert" in q):
        return "staging"
    if any(f"sis_sync_{t}" in q for t in ("person", "enrollment", "school", "classroom")) and any(
        verb in q for verb in ("insert", "update")
    ):
        return "applying"
    return "planning"


class Trial:
    def __init__(self, number: int, stage: str) -> None:
        self.number, self.stage = number, stage
        self.killed_during = ""
        self.outcome = ""
        self.seconds = 0.0


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_twenty_kills_of_a_worker_in_every_stage_never_leave_a_partial_load(
    broker: str,  # noqa: F811 - the fixture
    tmp_path: Path,
    settings: Any,
) -> None:
    """20 trials on one worker, alternating the source between bundles A and B: the worker's
    pool process is SIGKILLed while the run extracts and stages (7 trials), while its load
    transaction is open, planning or applying (12 trials; the task is delivered again), or at
    every delivery of the load (1 trial: the run gives up after 3 interrupted attempts).
    Right after each kill and once the run has ended, the roster is A's or B's, never a mix."""
    rng = random.Random(20)
    a, b, expected = make_bundles(tmp_path, students=800)
    provider = upload_provider("kills", a)
    first = sync_run_inline(run_id=sync_start(provider=provider, is_manual=True).pk)
    assert first.status == RunStatus.SUCCESS
    assert fingerprint() == expected[a]
    trials = [Trial(n, "extract" if n % 3 == 0 else "load") for n in range(19)]
    trials.append(Trial(19, "every load attempt"))
    target = a

    with celery_workers(broker, settings.SIS_SYNC_DATA_DIR) as (worker,):
        for trial in trials:
            source, target = target, (b if target == a else a)
            provider = upload_provider("kills", target)
            started = time.monotonic()
            run = sync_start(provider=provider, is_manual=True)
            enqueue_run(run.pk)
            trial.killed_during = kill_during(trial.stage, run.pk, worker, rng)
            assert fingerprint() in (expected[source], expected[target]), trial.number
            done = wait_run(run.pk, settings, timeout=120)
            trial.outcome = done.status
            trial.seconds = time.monotonic() - started
            now = fingerprint()
            if trial.stage == "every load attempt":
                assert done.status == RunStatus.FAILURE
                assert "interrupted 3 times" in done.error_message
            if done.status == RunStatus.SUCCESS:
                assert now == expected[target], (trial.number, done.error_message)
            else:
                assert done.status == RunStatus.FAILURE, done.status
                assert now == expected[source], trial.number
                target = source  # nothing changed: the next trial starts from here
            assert no_duplicate_identities()

    report = Counter((t.killed_during, t.outcome) for t in trials)
    seconds = sum(t.seconds for t in trials)
    print(f"\nkill trials (stage, outcome): {dict(report)}; {seconds:.0f} s in all")
    assert sum(report.values()) == 20
    stages = {t.killed_during.split(" (")[0] for t in trials}
    assert "extract" in stages and any(s.startswith("load") for s in stages), stages


def kill_during(
    stage: str, run_id: int, worker: subprocess.Popen[bytes], rng: random.Random
) -> str:
    """Waits for the stage, lets it run a random moment, SIGKILLs the pool process; says what
    the run was doing then (for the load, from the statement PostgreSQL was running for it).
    "every load attempt" kills each delivery of the load, until the run gives up."""
    if stage == "every load attempt":
        for attempt in (1, 2, 3):
            wait_for(
                lambda n=attempt: SisSyncRun.objects.filter(
                    pk=run_id, status=RunStatus.IN_PROGRESS, phase="plan", attempts=n
                ).exists(),
                timeout=60,
                interval=0.005,
                what=f"load attempt {attempt}",
            )
            time.sleep(rng.uniform(0.0, 0.1))
            for child in children(worker.pid):
                os.kill(child, signal.SIGKILL)
        return "load, every attempt"
    phases = ("extract", "stage") if stage == "extract" else ("plan",)
    wait_for(
        lambda: SisSyncRun.objects.filter(
            pk=run_id, status=RunStatus.IN_PROGRESS, phase__in=phases
        ).exists(),
        timeout=60,
        interval=0.005,
        what=f"the {stage} to start",
    )
    time.sleep(rng.uniform(0.0, 0.4) if stage == "extract" else rng.uniform(0.0, 0.25))
    doing = busy_backends()
    for child in children(worker.pid):
        os.kill(child, signal.SIGKILL)
    if stage == "extract":
        return "extract"
    return "load: " + (what_it_was_doing(doing[0]) if doing else "between statements")


def worker_log(data_dir: Path) -> str:
    logs = sorted(Path(data_dir).glob("worker-*.log"))
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in logs)


def wait_run(run_id: int, settings: Any, *, timeout: float) -> SisSyncRun:
    try:
        return wait_for(lambda: finished(run_id), timeout=timeout, what=f"run {run_id} to end")
    except AssertionError as exc:
        run = SisSyncRun.objects.get(pk=run_id)
        raise AssertionError(
            f"{exc} ({run.status}, {run.phase}, attempts {run.attempts})\n"
            + worker_log(settings.SIS_SYNC_DATA_DIR)
        ) from None


def finished(run_id: int) -> SisSyncRun | None:
    run = SisSyncRun.objects.get(pk=run_id)
    return run if run.status in (*FINISHED, RunStatus.HELD) else None


def no_duplicate_identities() -> bool:
    keys = ExternalIdentity.objects.values_list("provider_id", "entity_type", "external_id")
    return len(keys) == len(set(keys))


# -- the loading connection terminated --------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_terminated_database_connection_rolls_the_load_back_and_fails_the_run_clearly(
    broker: str,  # noqa: F811 - the fixture
    tmp_path: Path,
    settings: Any,
) -> None:
    a, b, expected = make_bundles(tmp_path, students=1500)
    provider = upload_provider("terminated", a)
    assert sync_run_inline(run_id=sync_start(provider=provider, is_manual=True).pk).status == (
        RunStatus.SUCCESS
    )
    provider = upload_provider("terminated", b)
    run = sync_start(provider=provider, is_manual=True)

    with celery_workers(broker, settings.SIS_SYNC_DATA_DIR):
        enqueue_run(run.pk)
        wait_for(
            lambda: SisSyncRun.objects.filter(pk=run.pk, phase="plan").exists(),
            timeout=60,
            interval=0.005,
            what="the load to start",
        )
        backends = wait_for(load_backends, timeout=60, interval=0.002, what="its transaction")
        with connection.cursor() as cursor:
            for pid, _ in backends:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert fingerprint() == expected[a]
        done = wait_run(run.pk, settings, timeout=60)

    assert done.status == RunStatus.FAILURE
    assert done.error_message.startswith("The load failed and nothing was changed: ")
    assert "terminat" in done.error_message  # the server's own words: what happened
    assert fingerprint() == expected[a]
    provider.refresh_from_db()
    assert provider.active_run_id is None  # the provider is free for the next sync
    again = sync_run_inline(run_id=sync_start(provider=provider, is_manual=True).pk)
    assert again.status == RunStatus.SUCCESS and fingerprint() == expected[b]


# -- Redis restarted under a running sync -----------------------------------------------------


class PrivateRedis:
    """A redis-server of this test's own (never the machine's shared one), restartable."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail("CI=true but redis-server is not installed")
            pytest.skip("redis-server is not installed")
        self.binary, self.folder = binary, folder
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(lambda: _pings(client), timeout=10, interval=0.02, what="redis-server")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_redis_restart_mid_run_never_lets_a_second_run_start(
    private_redis: PrivateRedis, tmp_path: Path, settings: Any
) -> None:
    """Redis forgets the provider lock and the slot when it restarts without persistence; the
    running sync carries on and finishes, and every trigger meanwhile is refused."""
    from config.celery import app
    from tests.test_workers import _forget_connections

    settings.REDIS_URL = private_redis.url
    previous = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url, app.conf.task_always_eager = private_redis.url, False
    _forget_connections()
    folder = tmp_path / "district"
    generate_district(folder, students=4000, seed=12)
    provider = upload_provider("restart", folder)
    run = sync_start(provider=provider, is_manual=True)
    refused: list[int] = []
    first_state: dict[str, Any] = {}
    try:
        with celery_workers(private_redis.url, settings.SIS_SYNC_DATA_DIR):
            enqueue_run(run.pk)
            wait_for(
                lambda: SisSyncRun.objects.filter(pk=run.pk, status=RunStatus.IN_PROGRESS).exists(),
                timeout=60,
                interval=0.01,
                what="the run to start",
            )
            private_redis.kill()
            time.sleep(1.5)  # down across at least one lock renewal (every second)
            private_redis.start()  # empty: the lock and the slot are gone
            _forget_connections()
            refused = trigger_concurrently(provider, 10)
            first_state = SisSyncRun.objects.values("status", "error_message").get(pk=run.pk)
            done = wait_run(run.pk, settings, timeout=120)
            after = trigger_concurrently(provider, 1)
    finally:
        app.conf.broker_url, app.conf.task_always_eager = previous
        _forget_connections()

    assert refused == [run.pk] * 10, (first_state, worker_log(settings.SIS_SYNC_DATA_DIR))
    assert done.status == RunStatus.SUCCESS, done.error_message
    assert Person.objects.count() == len(bundles.read(folder, "users"))
    assert SisSyncRun.objects.filter(provider=provider).count() == 2
    assert after == []  # once it ended, the next sync may start


def trigger_concurrently(provider: SisProvider, count: int) -> list[int]:
    """Starts `count` syncs at once; the runs named by the refusals (a started one is not)."""
    results: list[int] = []
    barrier = threading.Barrier(count)

    def trigger() -> None:
        barrier.wait()
        try:
            sync_start(provider=provider, is_manual=True)
        except AlreadyRunning as exc:
            results.append(exc.run_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# -- SFTP sessions dropped mid-transfer -------------------------------------------------------


# The real sshd and what it needs, as fixtures of this module.
sftp_login, sftp_keys, sshd = sshd_server.sftp_login, sshd_server.sftp_keys, sshd_server.sshd


class SessionKiller(threading.Thread):
    """Kills the sshd session serving a download (never the listening daemon) as soon as the
    downloaded file holds data, `times` times."""

    def __init__(self, server: SshServer, folder: Path, times: int) -> None:
        super().__init__(daemon=True)
        self.server, self.folder, self.times = server, folder, times
        self.kills: list[int] = []

    def run(self) -> None:
        from tests.sshd_server import _descendants

        deadline = time.monotonic() + 60
        armed, size_at_kill = True, 0
        while time.monotonic() < deadline and len(self.kills) < self.times:
            try:
                sizes = [p.stat().st_size for p in self.folder.rglob("*.zip")]
            except OSError:  # removed while we looked
                sizes = []
            if armed and any(sizes):
                sessions = _descendants(self.server.process.pid)
                for pid in sessions:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.kills.append(max(sizes))
                armed, size_at_kill = False, max(sizes)
            elif not armed and (not sizes or max(sizes) < size_at_kill):
                armed = True  # the next attempt has started over
            time.sleep(0.002)


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("drops", [1, 3])
def test_sftp_sessions_dropped_mid_transfer(
    drops: int, sshd: SshServer, tmp_path: Path, settings: Any
) -> None:
    """One dropped session is retried and the sync succeeds; three (every attempt) fail it
    cleanly: a message naming the drop, the roster unchanged, no temporary file left."""
    from connectors.oneroster_csv import connector as connector_module
    from tests.factories import ProviderFactory

    original_delays = connector_module.RETRY_DELAYS
    connector_module.RETRY_DELAYS = (0.0, 0.0)
    try:
        folder = tmp_path / "district"
        generate_district(folder, students=300, seed=13)
        # Data in front of a zip is skipped by zip readers (as in self-extracting archives):
        # 30 MB of it make the transfer long enough to be cut mid-way.
        padded = tmp_path / "district.zip"
        shutil.make_archive(str(padded.with_suffix("")), "zip", folder)
        body = padded.read_bytes()
        padded.write_bytes(os.urandom(30_000_000) + body)
        sshd.add_file("exports/district.zip", size=0)
        shutil.copyfile(padded, sshd.data / "exports" / "district.zip")
        provider = ProviderFactory(config=sshd.provider_config(sshd.path("exports")))
        killer = SessionKiller(sshd, Path(settings.SIS_SYNC_DATA_DIR) / "tmp", drops)
        killer.start()

        run = sync_run_inline(run_id=sync_start(provider=provider, is_manual=True).pk)
        killer.join(timeout=10)
    finally:
        connector_module.RETRY_DELAYS = original_delays

    assert sshd.process.poll() is None  # the daemon itself lived on
    assert len(killer.kills) == drops
    if drops < 3:
        assert run.status == RunStatus.SUCCESS, run.error_message
        assert Person.objects.count() == len(bundles.read(folder, "users"))
    else:
        assert run.status == RunStatus.FAILURE
        assert "dropped" in run.error_message and "(tried 3 times" in run.error_message
        assert Person.objects.count() == 0
    assert list((Path(settings.SIS_SYNC_DATA_DIR) / "tmp").rglob("*.zip")) == []


# -- 100 concurrent triggers ------------------------------------------------------------------

TRIGGERS = """
import json, os, random, sys, threading, time
import django
django.setup()
from django.db import OperationalError, connection
from sis_sync.errors import AlreadyRunning
from sis_sync.models import SisProvider
from sis_sync.sync import sync_start

provider = SisProvider.objects.get(pk=int(sys.argv[1]))
threads, results, began = int(sys.argv[2]), [], []
pool = threading.BoundedSemaphore(10)  # a web worker's connection pool: 10 at a time
print("ready", flush=True)
start_at = float(sys.stdin.readline())  # sent once every process is ready

def attempt():
    with pool:
        try:
            return ["started", sync_start(provider=provider, is_manual=True).pk]
        except AlreadyRunning as exc:
            return ["refused", exc.run_id]
        finally:
            connection.close()  # back to the pool


def trigger():
    time.sleep(max(0.0, start_at - time.time()))  # every process and thread at one moment
    began.append(time.time())
    for tries in range(100):
        try:
            results.append(attempt())
        except OperationalError as exc:
            # PostgreSQL's max_connections is shared with everyone else: a trigger that found
            # no free connection tries again, as a client would.
            if "too many clients" in str(exc) and tries < 99:
                time.sleep(random.uniform(0.01, 0.1))
                continue
            results.append(["error", repr(exc)])
        except Exception as exc:
            results.append(["error", repr(exc)])
        return

workers = [threading.Thread(target=trigger) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(json.dumps({"results": results, "began": [min(began), max(began)]}))
"""


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_hundred_concurrent_triggers_start_one_run(sample_bundle: Path) -> None:
    """4 processes of 25 threads each (as 4 web workers with 10-connection pools would)
    trigger the same provider at the same instant against PostgreSQL: one run starts, 99 are
    refused naming it. (A trigger that finds PostgreSQL's connections all taken retries.)"""
    from tests.workers import ROOT, database_url

    provider = upload_provider("hundred", sample_bundle)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("REDIS_URL", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", TRIGGERS, str(provider.pk), "25"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    start_at = time.time() + 0.5
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{start_at}\n")
        process.stdin.flush()
    results, began = [], []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        answer = json.loads(out.strip().splitlines()[-1])
        results += answer["results"]
        began += answer["began"]

    assert max(began) - min(began) < 1.0  # they really did come at once
    started = [run for kind, run in results if kind == "started"]
    refused = [run for kind, run in results if kind == "refused"]
    assert len(results) == 100 and not [r for r in results if r[0] == "error"], results
    assert len(started) == 1 and refused == started * 99
    assert SisSyncRun.objects.filter(provider=provider).count() == 1
