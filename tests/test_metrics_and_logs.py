"""/metrics in the Prometheus text format, and log lines that name their run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from django.test import Client

from sis_sync.logs import ContextFilter, JsonFormatter, log_context
from tests.sync_helpers import sync

pytestmark = pytest.mark.django_db


def test_it_counts_finished_runs_and_changed_entities(sample_bundle: Path) -> None:
    sync(sample_bundle)
    sync(sample_bundle)

    response = Client().get("/metrics")
    body = response.content.decode()

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'sis_sync_runs_finished_total{provider_type="ONEROSTER_CSV",status="SUCCESS"} 2' in body
    assert 'sis_sync_entities_changed_total{entity="users",kind="created"} 650' in body
    assert 'sis_sync_run_duration_seconds_count{provider_type="ONEROSTER_CSV"} 2' in body
    assert "# TYPE sis_sync_runs_active gauge" in body
    assert "sis_sync_runs_held 0" in body


def test_it_writes_json_log_lines_with_the_run_and_provider() -> None:
    record = logging.LogRecord("sis_sync.x", logging.INFO, __file__, 1, "hello %s", ("w",), None)
    with log_context(run_id=7, provider_id=3):
        ContextFilter().filter(record)

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "hello w"
    assert (line["run_id"], line["provider_id"]) == (7, 3)
