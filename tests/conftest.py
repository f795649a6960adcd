"""Shared fixtures. The suite runs twice in `make test`: on the embedded SQLite default and on
PostgreSQL. Set SIS_SYNC_EXPECT_DB=postgresql to make a run fail (not skip) when the database
is not PostgreSQL: CI does, so PostgreSQL tests can never silently not run there.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

TEST_KEY = Fernet.generate_key().decode()
os.environ.setdefault("SIS_SYNC_ENCRYPTION_KEYS", TEST_KEY)

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "district-small"

# The API tests' fixtures (clients per role, tenants, secret configs).
pytest_plugins = ["tests.api_helpers"]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests skip on SQLite, except in CI, where that is an error."""
    from django.db import connection

    needing = [item for item in items if "postgres" in item.keywords]
    if connection.vendor == "postgresql" or not needing:
        return
    if os.environ.get("CI", "").lower() == "true":
        raise pytest.UsageError(
            f"CI=true: {len(needing)} PostgreSQL tests were collected but DATABASE_URL is "
            f"{connection.vendor}; run them against PostgreSQL or deselect with -m 'not postgres'"
        )
    skip = pytest.mark.skip(reason="needs PostgreSQL: runs in the PostgreSQL pass of make test")
    for item in needing:
        item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _expected_database(django_db_blocker: object) -> None:
    from django.db import connection

    expected = os.environ.get("SIS_SYNC_EXPECT_DB")
    if expected and connection.vendor != expected:
        pytest.exit(
            f"SIS_SYNC_EXPECT_DB={expected} but DATABASE_URL points at {connection.vendor}",
            returncode=1,
        )


@pytest.fixture(autouse=True)
def _data_dir(settings: object, tmp_path: Path) -> None:
    settings.SIS_SYNC_DATA_DIR = tmp_path / "data"  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _fresh_local_locks() -> object:
    """Each test starts with no in-process locks or slots: a test that leaves a run unfinished
    (on purpose) must not hold a sync slot for the tests after it."""
    yield
    from sis_sync import locks

    locks._local = locks.LocalStore()


@pytest.fixture
def sample_bundle() -> Path:
    return SAMPLE


@pytest.fixture
def redis_url() -> str:
    """A Redis database for tests, emptied first. Missing Redis skips, except in CI."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
    except redis.RedisError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Redis is not reachable at {url}: {exc}")
        pytest.skip(f"Redis not reachable at {url}")
    return url


# -- secrets never reach a log line (SPEC §2), over the whole suite --------------------------


class SecretLog(logging.Handler):
    """Keeps every log line the suite emits, and every secret a provider config held.

    A secret is any value stored under a secret key of a provider config (SisProvider
    .set_config is watched), whatever the test; at the end of the session no line may hold one.
    """

    LOGGERS = ("", "sis_sync", "connectors", "loader", "staging", "celery", "django")
    SHORTEST = 8  # shorter values ("x", "pw") would match by chance

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.secrets: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record whose message cannot be formatted is not a leak
            self.lines.append(str(record.msg))

    def attach(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)

    def remember(self, config: dict) -> None:
        from sis_sync.provider_config import SECRETS, SFTP_SECRETS

        found = [config.get(k) for k in SECRETS]
        sftp = config.get("sftp")
        if isinstance(sftp, dict):
            found += [sftp.get(k) for k in SFTP_SECRETS]
        for value in found:
            if not isinstance(value, str):
                continue
            lines = [line.strip() for line in value.splitlines() if "-----" not in line]
            for part in [value.strip(), *lines]:
                if len(part) >= self.SHORTEST and part != "********":
                    self.secrets.add(part)

    def leaks(self) -> list[tuple[str, str]]:
        return [(secret, line) for line in self.lines for secret in self.secrets if secret in line]


SECRET_LOG = SecretLog()


@pytest.fixture(scope="session", autouse=True)
def _watch_secrets() -> None:
    from sis_sync.models import SisProvider

    original = SisProvider.set_config

    def set_config(self: SisProvider, value: dict) -> None:
        if isinstance(value, dict):
            SECRET_LOG.remember(value)
        original(self, value)

    SisProvider.set_config = set_config  # type: ignore[method-assign]
    yield
    SisProvider.set_config = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _capture_logs() -> None:
    SECRET_LOG.attach()  # again for each test: a test may have reconfigured logging


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = SECRET_LOG.leaks()
    if leaks:
        shown = "\n".join(f"  {secret[:4]}… in: {line[:300]}" for secret, line in leaks[:20])
        print(f"\nSECRETS IN LOGS: {len(leaks)} log lines hold a provider secret:\n{shown}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
