"""The command line (SPEC §5): output, --json, exit codes, one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sis_sync.models import Person, RunStatus, SisProvider, SisSyncRun
from tests import bundles

pytestmark = pytest.mark.django_db


def run_command(*args: str) -> tuple[int, str, str]:
    """Runs a command as manage.py would; returns (exit code, stdout, stderr).

    Not through ManagementUtility: it closes the database connections afterwards, which would
    end the test's transaction. CommandError is turned into its message and exit code the way
    manage.py prints it.
    """
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        code = exc.returncode
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def test_it_imports_and_prints_the_run_as_json_on_the_last_line(sample_bundle: Path) -> None:
    code, out, _ = run_command(
        "import_oneroster_csv", str(sample_bundle), "--tenant", "t1", "--json"
    )

    assert code == 0
    run = json.loads(out.strip().splitlines()[-1])
    assert set(run) >= {"id", "providerId", "status", "stats", "errorMessage"}
    assert run["status"] == "SUCCESS"
    assert run["stats"]["users"]["created"] == Person.objects.count() > 0
    provider = SisProvider.objects.get(pk=run["providerId"])
    assert provider.name == "CSV import" and provider.tenant.slug == "t1"


def test_it_exits_1_with_one_readable_line_for_a_broken_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "users.csv").write_text("sourcedId,givenName\n", encoding="utf-8")

    code, out, err = run_command("import_oneroster_csv", str(bundle), "--tenant", "t1", "--json")

    assert code == 1
    run = json.loads(out.strip().splitlines()[-1])
    assert run["status"] == "FAILURE"
    assert "no orgs.csv" in run["errorMessage"]
    assert "Traceback" not in out + err


def test_it_exits_2_for_a_path_that_does_not_exist(tmp_path: Path) -> None:
    code, _, err = run_command("import_oneroster_csv", str(tmp_path / "nope.zip"), "--tenant", "t1")

    assert code == 2
    assert "No such file or folder" in err
    assert len(err.strip().splitlines()) == 1


def test_it_exits_4_when_the_sync_is_held(tmp_path: Path, sample_bundle: Path) -> None:
    district = bundles.copy(sample_bundle, tmp_path / "d")
    run_command("import_oneroster_csv", str(district), "--tenant", "t1")
    bundles.drop_users(district, {s["sourcedId"] for s in bundles.students(district)[:300]})

    code, out, _ = run_command("import_oneroster_csv", str(district), "--tenant", "t1", "--json")

    assert code == 4
    assert json.loads(out.strip().splitlines()[-1])["status"] == "HELD"


def test_it_exits_3_and_names_the_running_run_when_a_provider_is_busy(
    sample_bundle: Path,
) -> None:
    run_command("import_oneroster_csv", str(sample_bundle), "--tenant", "t1")
    provider = SisProvider.objects.get()
    busy = SisSyncRun.objects.create(provider=provider, status=RunStatus.IN_PROGRESS)

    code, _, err = run_command("sync_provider", str(provider.pk))

    assert code == 3
    assert f"run {busy.pk}" in err


def test_it_reruns_an_upload_providers_last_bundle(sample_bundle: Path) -> None:
    run_command("import_oneroster_csv", str(sample_bundle), "--tenant", "t1")
    provider = SisProvider.objects.get()

    code, out, _ = run_command("sync_provider", str(provider.pk), "--json", "--dry-run")

    assert code == 0
    run = json.loads(out.strip().splitlines()[-1])
    assert run["dryRun"] is True
    assert run["stats"]["users"]["unchanged"] == Person.objects.count()


def test_it_adds_a_provider_and_prints_its_id_last() -> None:
    config = json.dumps({"sftp": None})
    code, out, _ = run_command(
        "add_provider",
        "--tenant",
        "t2",
        "--type",
        "ONEROSTER_CSV",
        "--name",
        "Nightly",
        "--config",
        config,
        "--schedule",
        "daily",
    )

    assert code == 0
    provider = SisProvider.objects.get(pk=int(out.strip().splitlines()[-1]))
    assert provider.sync_schedule == "0 2 * * *"
    assert provider.tenant.slug == "t2"


def test_it_refuses_a_bad_provider_config_with_exit_2(tmp_path: Path) -> None:
    code, _, err = run_command(
        "add_provider",
        "--tenant",
        "t2",
        "--type",
        "ONEROSTER_API",
        "--name",
        "X",
        "--config",
        '{"baseUrl": "http://example.org"}',
    )

    assert code == 2
    assert "config is missing clientId, clientSecret, tokenUrl" in err
    code, _, err = run_command(
        "add_provider",
        "--tenant",
        "t2",
        "--type",
        "ONEROSTER_CSV",
        "--name",
        "X",
        "--config",
        "{}",
        "--schedule",
        "every tuesday",
    )
    assert code == 2
    assert "neither a preset" in err


def test_it_stores_secrets_encrypted(settings: object) -> None:
    code, out, _ = run_command(
        "add_provider",
        "--tenant",
        "t3",
        "--type",
        "CLEVER",
        "--name",
        "Clever",
        "--config",
        '{"districtId": "d1", "accessToken": "tok-SECRET-123"}',
    )
    assert code == 0
    provider = SisProvider.objects.get(pk=int(out.strip().splitlines()[-1]))
    assert "tok-SECRET-123" not in provider.config_encrypted
    assert provider.config["accessToken"] == "tok-SECRET-123"


def test_it_tests_a_provider_connection(sample_bundle: Path) -> None:
    run_command("import_oneroster_csv", str(sample_bundle), "--tenant", "t1")
    provider = SisProvider.objects.get()

    code, out, _ = run_command("test_provider", str(provider.pk))

    assert code == 0
    assert out.startswith("OK: manifest.csv + 6 files")


def test_it_reports_status_and_history(sample_bundle: Path) -> None:
    run_command("import_oneroster_csv", str(sample_bundle), "--tenant", "t1")
    run_command("import_oneroster_csv", str(sample_bundle), "--tenant", "t1")
    provider = SisProvider.objects.get()

    _, out, _ = run_command("sync_status", str(provider.pk), "--json")
    status = json.loads(out.strip().splitlines()[-1])
    _, out, _ = run_command("runs", str(provider.pk), "--json", "--limit", "5")
    history = json.loads(out.strip().splitlines()[-1])

    assert status["isRunning"] is False and status["lastStatus"] == "SUCCESS"
    assert [r["id"] for r in history] == sorted((r["id"] for r in history), reverse=True)
    assert len(history) == 2


def test_it_generates_a_district_that_imports_cleanly(tmp_path: Path) -> None:
    call_command("generate_district", str(tmp_path / "g"), "--students", "120", "--seed", "3")

    code, out, _ = run_command(
        "import_oneroster_csv", str(tmp_path / "g"), "--tenant", "g", "--json"
    )

    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["status"] == "SUCCESS"
