"""docker-compose.yml: five services, their health checks, and commands that point at real code."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.utils.module_loading import import_string

ROOT = Path(__file__).resolve().parent.parent
SPEC_7_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SIS_SYNC_ENCRYPTION_KEYS",
    "MAX_CONCURRENT_SYNCS",
    "SYNC_LOCK_TIMEOUT",
    "SIS_SYNC_ALLOW_PRIVATE_HOSTS",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "LOG_LEVEL",
)
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_it_defines_the_five_services(services) -> None:
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert all(services[name]["build"] == "." for name in APP_SERVICES)


def test_it_health_checks_postgres_redis_web_and_worker(services) -> None:
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/admin/login/" in " ".join(services["web"]["healthcheck"]["test"])
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])


def test_it_waits_for_healthy_postgres_and_redis(services) -> None:
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}, name
        assert depends_on["redis"] == {"condition": "service_healthy"}, name
    # Migrations run in web, so the worker and beat start once web is healthy.
    for name in ("worker", "beat"):
        assert services[name]["depends_on"]["web"] == {"condition": "service_healthy"}


def test_it_shares_every_spec_7_variable_with_the_app_services(services) -> None:
    environment = services["web"]["environment"]
    for name in APP_SERVICES:
        assert services[name]["environment"] == environment, name
    missing = [variable for variable in SPEC_7_VARIABLES if not environment.get(variable)]
    assert missing == []
    assert environment["SIS_SYNC_ALLOW_PRIVATE_HOSTS"].endswith("false}")


def test_it_points_the_urls_at_the_compose_services(services) -> None:
    environment = services["web"]["environment"]
    database = urlsplit(environment["DATABASE_URL"])
    postgres = services["postgres"]["environment"]
    assert database.scheme == "postgresql"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path == f"/{postgres['POSTGRES_DB']}"
    assert urlsplit(environment["REDIS_URL"]).hostname == "redis"


def test_it_runs_web_through_manage_py(services) -> None:
    command = " ".join(command_of(services["web"]))
    assert "python manage.py migrate" in command
    assert "python manage.py runserver 0.0.0.0:8000" in command
    assert (ROOT / "manage.py").is_file()


def test_it_runs_celery_against_the_real_app_and_scheduler(services) -> None:
    worker, beat = command_of(services["worker"]), command_of(services["beat"])
    assert worker[:2] == beat[:2] == ["celery", "-A"]
    assert option(worker, "-A") == option(beat, "-A") == "config"
    assert "Celery(" in (ROOT / "config" / "celery.py").read_text(encoding="utf-8")
    assert worker[3] == "worker" and beat[3] == "beat"
    module, _, name = option(beat, "--scheduler").partition(":")
    assert import_string(f"{module}.{name}").__name__ == "DatabaseScheduler"


def test_it_builds_from_the_slim_image_with_the_pinned_constraints() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in dockerfile.splitlines()
    assert "pip install -c constraints.txt ." in dockerfile
    assert (ROOT / "constraints.txt").is_file()
