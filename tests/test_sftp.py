"""ONEROSTER_CSV over SFTP, against a real OpenSSH sshd (tests.sshd_server)."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connectors.base import ConnectorError
from connectors.oneroster_csv import connector as connector_module
from connectors.oneroster_csv.connector import OneRosterCsvConnector
from connectors.oneroster_csv.sftp import fingerprint
from sis_sync.district_generator import generate_district
from sis_sync.models import Classroom, Enrollment, Person, RunStatus, School, SisSyncRun
from sis_sync.sync import sync_run_inline, sync_start
from tests import sshd_server
from tests.factories import ProviderFactory
from tests.sshd_server import SshServer, make_key
from tests.test_commands import run_command

pytestmark = pytest.mark.django_db

# The real sshd and what it needs, as fixtures of this module.
sftp_login, sftp_keys, sshd = sshd_server.sftp_login, sshd_server.sftp_keys, sshd_server.sshd

NOV_20 = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC).timestamp()
DAY = 86_400.0


@pytest.fixture(autouse=True)
def _retry_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connector_module, "RETRY_DELAYS", (0.0, 0.0))


def district(tmp_path: Path, name: str, *, students: int, seed: int) -> tuple[Path, dict]:
    out = tmp_path / name
    return out, generate_district(out, students=students, seed=seed)


def run_sync(provider: Any, **kwargs: Any) -> SisSyncRun:
    return sync_run_inline(run_id=sync_start(provider=provider, is_manual=True, **kwargs).pk)


def sync_config(config: dict[str, Any]) -> SisSyncRun:
    return run_sync(ProviderFactory(config=config))


def assert_loaded(run: SisSyncRun, counts: dict[str, int]) -> None:
    assert run.status == RunStatus.SUCCESS, run.error_message
    for entity in ("schools", "classes", "users", "enrollments"):
        assert run.stats[entity]["created"] == counts[entity], entity
    assert Person.objects.count() == counts["users"]
    assert Enrollment.objects.filter(is_active=True).count() == counts["enrollments"]


def temp_files(settings: Any) -> list[Path]:
    return list((Path(settings.SIS_SYNC_DATA_DIR) / "tmp").rglob("*"))


def roster() -> dict[str, list[tuple]]:
    return {
        "schools": list(School.objects.order_by("id").values_list("id", "name", "is_active")),
        "classes": list(Classroom.objects.order_by("id").values_list("id", "title", "is_active")),
        "people": list(Person.objects.order_by("id").values_list("id", "email", "is_active")),
        "enrollments": list(Enrollment.objects.order_by("id").values_list("id", "is_active")),
    }


def pinned_fingerprint(public_line: str) -> str:
    return fingerprint(base64.b64decode(public_line.split()[1]))


# -- logins and layouts --------------------------------------------------------------------------


def test_it_syncs_a_zip_bundle_logging_in_with_an_ed25519_key(
    sshd: SshServer, tmp_path: Path, settings: Any
) -> None:
    folder, counts = district(tmp_path, "d", students=80, seed=3)
    sshd.add_zip("exports/roster.zip", folder, mtime=NOV_20)

    run = sync_config(sshd.provider_config(sshd.path("exports"), auth="ed25519"))

    assert_loaded(run, counts)
    assert any(n.startswith("Fetched roster.zip, ") for n in run.notes), run.notes
    assert run.state_after["sftpBundle"]["path"] == sshd.path("exports/roster.zip")
    assert temp_files(settings) == []


def test_it_syncs_a_folder_of_csv_files_logging_in_with_an_rsa_key(
    sshd: SshServer, tmp_path: Path, settings: Any
) -> None:
    folder, counts = district(tmp_path, "d", students=90, seed=4)
    remote = sshd.add_folder("oneroster", folder, mtime=NOV_20)

    run = sync_config(sshd.provider_config(remote, auth="rsa"))

    assert_loaded(run, counts)
    assert temp_files(settings) == []


def test_it_syncs_logging_in_with_a_password(sshd: SshServer, tmp_path: Path) -> None:
    folder, counts = district(tmp_path, "d", students=80, seed=5)
    sshd.add_zip("roster.zip", folder)

    # remotePath may name the zip itself.
    run = sync_config(sshd.provider_config(sshd.path("roster.zip"), auth="password"))

    assert_loaded(run, counts)


def test_it_describes_the_bundle_found_with_a_passphrase_locked_ecdsa_key_and_a_sha256_pin(
    sshd: SshServer, tmp_path: Path
) -> None:
    folder, _ = district(tmp_path, "d", students=80, seed=3)
    remote = sshd.add_folder("oneroster", folder, mtime=NOV_20)
    config = sshd.provider_config(
        remote, auth="locked", host_key=pinned_fingerprint(sshd.host_key.public)
    )
    config["sftp"]["privateKeyPassphrase"] = "open sesame"

    found = OneRosterCsvConnector(config, options={}).test_connection()

    size = sum(p.stat().st_size for p in folder.iterdir()) / 1_000_000
    assert found == (
        f"127.0.0.1:{sshd.port}, host key verified: "
        f"manifest.csv + 6 files, {size:.1f} MB, newest 2026-11-20 02:00 UTC"
    )


# -- which bundle ---------------------------------------------------------------------------------


def test_it_takes_the_newest_zip_matching_the_pattern(sshd: SshServer, tmp_path: Path) -> None:
    old, _ = district(tmp_path, "old", students=80, seed=3)
    new, new_counts = district(tmp_path, "new", students=90, seed=4)
    other, _ = district(tmp_path, "other", students=70, seed=6)
    # Newest by modification time, not by name; a newer zip not matching the pattern is ignored.
    sshd.add_zip("exports/roster-b.zip", old, mtime=NOV_20 - DAY)
    sshd.add_zip("exports/roster-a.zip", new, mtime=NOV_20)
    sshd.add_zip("exports/unrelated.zip", other, mtime=NOV_20 + DAY)

    run = sync_config(sshd.provider_config(sshd.path("exports"), bundlePattern="roster-*.zip"))

    assert_loaded(run, new_counts)
    assert run.state_after["sftpBundle"]["path"] == sshd.path("exports/roster-a.zip")


def test_it_takes_the_newest_complete_dated_folder_and_skips_a_newer_incomplete_one(
    sshd: SshServer, tmp_path: Path
) -> None:
    old, _ = district(tmp_path, "old", students=80, seed=3)
    new, new_counts = district(tmp_path, "new", students=90, seed=4)
    sshd.add_folder("exports/2026-11-19", old, mtime=NOV_20 - DAY)
    sshd.add_folder("exports/2026-11-20", new, mtime=NOV_20)
    partial = tmp_path / "partial"  # an export still being written: no users, no enrollments
    partial.mkdir()
    for name in ("manifest.csv", "orgs.csv", "academicSessions.csv", "courses.csv"):
        (partial / name).write_bytes((new / name).read_bytes())
    sshd.add_folder("exports/2026-11-21", partial, mtime=NOV_20 + DAY)

    run = sync_config(sshd.provider_config(sshd.path("exports")))

    assert_loaded(run, new_counts)
    assert run.state_after["sftpBundle"]["path"] == sshd.path("exports/2026-11-20")
    assert (
        f"Skipped {sshd.path('exports/2026-11-21')}/ on the SFTP server, newer but incomplete: "
        "it has no classes.csv, enrollments.csv, users.csv, which its manifest.csv lists"
    ) in run.notes


# -- faults ---------------------------------------------------------------------------------------


def test_it_fails_with_a_login_error_for_a_key_the_server_does_not_know(
    sshd: SshServer, tmp_path: Path, settings: Any
) -> None:
    folder, _ = district(tmp_path, "d", students=80, seed=3)
    sshd.add_zip("roster.zip", folder)

    run = sync_config(sshd.provider_config(sshd.data.as_posix(), auth="stranger"))

    assert run.status == RunStatus.FAILURE
    assert run.error_message == (
        f"The SFTP server 127.0.0.1:{sshd.port} rejected the login of "
        f"{sshd.login.user!r} with the privateKey: check config.sftp.username and the credentials"
    )
    assert Person.objects.count() == 0 and temp_files(settings) == []


def test_it_fails_with_a_login_error_for_a_wrong_password(sshd: SshServer) -> None:
    run = sync_config(sshd.provider_config(sshd.data.as_posix(), auth="wrong-password"))

    assert run.status == RunStatus.FAILURE
    assert run.error_message == (
        f"The SFTP server 127.0.0.1:{sshd.port} rejected the login of "
        f"{sshd.login.user!r} with the password: check config.sftp.username and the credentials"
    )


def test_it_refuses_a_changed_host_key_showing_the_presented_fingerprint_and_fetches_nothing(
    sshd: SshServer, tmp_path: Path, settings: Any
) -> None:
    folder, _ = district(tmp_path, "d", students=80, seed=3)
    sshd.add_zip("roster.zip", folder)
    other_key = make_key("ed25519").public

    run = sync_config(sshd.provider_config(sshd.data.as_posix(), host_key=other_key))

    assert run.status == RunStatus.FAILURE
    presented = pinned_fingerprint(sshd.host_key.public)
    assert run.error_message.startswith(
        f"The SFTP server 127.0.0.1:{sshd.port} presented the host key {presented} "
        "(ssh-ed25519), which is not the pinned config.sftp.hostKey: nothing was fetched."
    )
    assert "Accepted" not in sshd.log_text()  # no credential was ever sent
    assert Person.objects.count() == 0 and temp_files(settings) == []


def test_it_fails_clearly_when_the_remote_path_does_not_exist(sshd: SshServer) -> None:
    missing = sshd.path("no/such/folder")

    run = sync_config(sshd.provider_config(missing))

    assert run.status == RunStatus.FAILURE
    assert run.error_message == (
        f"remotePath {missing}: no such file or folder on the SFTP server 127.0.0.1:{sshd.port}"
    )


def test_it_refuses_a_bundle_over_the_size_limit_before_fetching_it(
    sshd: SshServer, tmp_path: Path, settings: Any
) -> None:
    folder, _ = district(tmp_path, "d", students=80, seed=3)
    zipped = sshd.add_zip("roster.zip", folder)

    run = sync_config(sshd.provider_config(zipped, maxBundleBytes=1_000))

    assert run.status == RunStatus.FAILURE
    assert "over the size limit (maxBundleBytes 0.0 MB): nothing was fetched" in run.error_message
    assert temp_files(settings) == []


# paramiko's prefetch thread dies with the connection and says so; the download reports it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_it_fails_the_run_and_keeps_the_roster_when_sshd_dies_mid_download(
    sshd: SshServer, tmp_path: Path, settings: Any
) -> None:
    folder, counts = district(tmp_path, "d", students=80, seed=3)
    sshd.add_zip("exports/a.zip", folder, mtime=NOV_20 - DAY)
    provider = ProviderFactory(config=sshd.provider_config(sshd.path("exports")))
    assert_loaded(run_sync(provider), counts)
    before = roster()
    big = sshd.add_file("exports/b.zip", size=512_000_000, mtime=NOV_20)  # the newest bundle
    killer = _KillOnFirstBytes(sshd, Path(settings.SIS_SYNC_DATA_DIR) / "tmp")
    killer.start()

    run = run_sync(provider)

    killer.join(timeout=10)
    assert killer.killed_at_bytes, "sshd was not killed during the download"
    assert run.status == RunStatus.FAILURE
    assert run.error_message == (
        f"The SFTP server 127.0.0.1:{sshd.port} refused the connection: is the server up and "
        f"the port right? (tried 3 times; first: Downloading {big}: the connection to the SFTP "
        f"server 127.0.0.1:{sshd.port} dropped)"
    )
    assert roster() == before
    assert temp_files(settings) == []


class _KillOnFirstBytes(threading.Thread):
    """Kills sshd as soon as a downloaded file under `folder` holds data."""

    def __init__(self, server: SshServer, folder: Path) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.folder = folder
        self.killed_at_bytes = 0

    def run(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                sizes = [p.stat().st_size for p in self.folder.rglob("*.zip")]
            except OSError:  # a folder removed while we looked
                sizes = []
            if any(sizes):
                self.server.kill()
                self.killed_at_bytes = max(sizes)
                return
            time.sleep(0.002)


# -- archive --------------------------------------------------------------------------------------


def test_it_archives_the_bundle_only_once_the_load_is_applied(
    sshd: SshServer, tmp_path: Path
) -> None:
    folder, counts = district(tmp_path, "d", students=80, seed=3)
    bundle = sshd.add_zip("exports/roster.zip", folder, mtime=NOV_20)
    config = sshd.provider_config(sshd.path("exports"), archivePath=sshd.path("exports/archive"))
    provider = ProviderFactory(config=config)

    run = run_sync(provider)

    assert_loaded(run, counts)
    assert Path(bundle).exists()  # extracting never moves it: the load could still fail
    connector = OneRosterCsvConnector(config, options={})
    notes = connector.on_applied(state_after=run.state_after)
    archived = sshd.path("exports/archive/roster.zip")
    assert notes == [f"Moved {bundle} to {archived} on the SFTP server"]
    assert Path(archived).exists() and not Path(bundle).exists()
    # The archive folder inside remotePath is never taken for a bundle.
    again = run_sync(provider)
    assert again.status == RunStatus.FAILURE
    assert again.error_message.startswith(f"remotePath {sshd.path('exports')} holds no OneRoster")


def test_it_archives_through_the_pipeline_after_the_commit_but_not_for_a_dry_run(
    sshd: SshServer, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    folder, counts = district(tmp_path, "d", students=80, seed=3)
    bundle = sshd.add_zip("exports/roster.zip", folder, mtime=NOV_20)
    config = sshd.provider_config(sshd.path("exports"), archivePath=sshd.path("archive"))
    provider = ProviderFactory(config=config)

    with django_capture_on_commit_callbacks(execute=True):
        preview = run_sync(provider, dry_run=True)
    assert preview.status == RunStatus.SUCCESS and Path(bundle).exists()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = run_sync(provider)

    assert_loaded(run, counts)
    assert len(callbacks) == 1
    run.refresh_from_db()
    archived = sshd.path("archive/roster.zip")
    assert run.notes[-1] == f"Moved {bundle} to {archived} on the SFTP server"
    assert Path(archived).exists() and not Path(bundle).exists()


def test_it_leaves_the_bundle_in_place_after_a_failed_load_or_a_change_on_the_server(
    sshd: SshServer, tmp_path: Path
) -> None:
    folder, _ = district(tmp_path, "d", students=80, seed=3)
    (folder / "users.csv").unlink()  # the manifest still lists it: the run fails
    broken = sshd.add_zip("exports/broken.zip", folder, mtime=NOV_20)
    config = sshd.provider_config(sshd.path("exports"), archivePath=sshd.path("archive"))
    connector = OneRosterCsvConnector(config, options={})

    failed = sync_config(config)

    assert failed.status == RunStatus.FAILURE
    assert connector.on_applied(state_after=failed.state_after) == []
    assert Path(broken).exists()

    good, _ = district(tmp_path, "good", students=80, seed=3)
    bundle = sshd.add_zip("exports/roster.zip", good, mtime=NOV_20 + DAY)
    run = sync_config(config)
    assert run.status == RunStatus.SUCCESS, run.error_message
    sshd.add_zip("exports/roster.zip", good, mtime=NOV_20 + 2 * DAY)  # a new export, same name
    with pytest.raises(ConnectorError) as caught:
        connector.on_applied(state_after=run.state_after)
    assert caught.value.message == (
        f"{bundle} changed on the SFTP server after it was fetched: "
        "left in place, it has not been loaded"
    )
    assert Path(bundle).exists()


# -- the admin's host key command -----------------------------------------------------------------


def test_it_prints_the_host_key_as_a_line_to_pin(sshd: SshServer, tmp_path: Path) -> None:
    code, out, err = run_command("sftp_hostkey", "127.0.0.1", "--port", str(sshd.port))

    assert code == 0, err
    assert out.splitlines() == [
        f"# 127.0.0.1:{sshd.port} ssh-ed25519 {pinned_fingerprint(sshd.host_key.public)}",
        sshd.host_key.public,
    ]
    folder, _ = district(tmp_path, "d", students=80, seed=3)
    sshd.add_zip("roster.zip", folder)
    config = sshd.provider_config(sshd.data.as_posix(), host_key=out)  # pasted as printed
    assert (
        "host key verified: roster.zip"
        in OneRosterCsvConnector(config, options={}).test_connection()
    )


def test_it_retries_a_refused_connection_then_fails_as_transient(
    sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = sshd.provider_config("/exports")
    sshd.kill()
    waits: list[float] = []
    # The connector's own clock only: paramiko's threads from earlier tests sleep too.
    monkeypatch.setattr(connector_module, "time", SimpleNamespace(sleep=waits.append))

    extraction = OneRosterCsvConnector(config, options={}).extract(mode="full", state={})
    with pytest.raises(ConnectorError) as caught, extraction:
        pass

    assert caught.value.permanent is False
    assert caught.value.message.endswith("(tried 3 times)")
    assert waits == [0.0, 0.0]
