"""ONEROSTER_CSV: a OneRoster CSV bundle, uploaded (kept at `bundlePath`) or fetched over SFTP.

Config (SPEC §2). Without an `sftp` block the provider syncs its uploaded bundle. With one
(connectors.oneroster_csv.sftp: host, port, username, privateKey / password, hostKey, timeout):

- `remotePath`: where the bundle is on the server: a .zip, a folder of CSV files, or a folder
  of .zip bundles and/or dated sub-folders (connectors.oneroster_csv.fetch says which is taken);
- `bundlePattern` (`*.zip`) and `folderPattern` (`*`): which names in remotePath are bundles;
- `maxBundleBytes` (4,000,000,000): the most a bundle may weigh; a bigger one is not fetched;
- `archivePath` (none): a folder on the server the loaded bundle is moved into, once its load
  has been applied (`on_applied`), never before and never after a failed or held run.

The bundle is downloaded into a private temporary folder under SIS_SYNC_DATA_DIR/tmp, read from
there by the same reader as an upload, and removed when the extraction ends, however it ends.
A fetch that fails for a reason that may pass (timeout, refused or dropped connection) is tried
ATTEMPTS times before the run fails; a permanent one (login, host key, missing path) is not.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings

from connectors.base import ConnectorError
from connectors.oneroster_csv.bundle import Bundle
from connectors.oneroster_csv.fetch import RemoteBundle, archive, choose_bundle, download
from connectors.oneroster_csv.reader import CsvExtraction
from connectors.oneroster_csv.sftp import SftpSettings, sftp_session
from connectors.oneroster_csv.upload import check_upload

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 3
RETRY_DELAYS = (2.0, 10.0)  # seconds before the second and the third attempt
DEFAULT_MAX_BUNDLE_BYTES = 4_000_000_000


class OneRosterCsvConnector:
    def __init__(self, config: dict[str, Any], *, options: dict[str, Any]) -> None:
        self.config = config
        self.options = options

    # -- uploaded bundles ----------------------------------------------------------------------

    def _bundle_path(self) -> Path:
        path = self.config.get("bundlePath")
        if not path:
            raise ConnectorError("No bundle has been uploaded to this provider yet")
        return Path(path)

    # -- the contract --------------------------------------------------------------------------

    def _open(self, path: Path) -> Bundle:
        """The bundle at `path`. A zip is checked first (zip-slip, symlinks, zip bombs) whichever
        door it came in by: an upload is checked when kept, a fetched one only here."""
        if path.is_file():
            check_upload(path, max_bytes=self._max_bytes())
        return Bundle(path)

    def test_connection(self) -> str:
        if not self.config.get("sftp"):
            with self._open(self._bundle_path()) as bundle:
                return CsvExtraction(bundle, mode="full").describe()
        # One attempt: an admin is waiting for the answer.
        sftp = self._sftp_settings()
        with sftp_session(sftp) as client:
            remote = self._choose(client, sftp)
        return f"{sftp.where}, host key verified: {remote.describe()}"

    @contextmanager
    def extract(self, *, mode: str, state: dict[str, Any]) -> Iterator[CsvExtraction]:
        if not self.config.get("sftp"):
            with self._open(self._bundle_path()) as bundle:
                yield CsvExtraction(bundle, mode=mode)
            return
        sftp = self._sftp_settings()
        workdir = Path(tempfile.mkdtemp(prefix="sftp-", dir=_temp_root()))
        try:
            remote, local = self._retrying(lambda: self._fetch(sftp, workdir))
            with self._open(local) as bundle:
                extraction = CsvExtraction(bundle, mode=mode)
                extraction.notes.extend(remote.notes)
                extraction.notes.append(f"Fetched {remote.describe()} from {sftp.where}")
                extraction.state_after["sftpBundle"] = remote.state()
                yield extraction
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def on_applied(self, *, state_after: dict[str, Any]) -> list[str]:
        """After a run's load is applied and committed: moves its bundle into `archivePath`.

        Returns notes for the run. ConnectorError if the move failed: the load stands, the
        bundle stays where it was (the next run loads it again, which changes nothing).
        """
        archive_path = self.config.get("archivePath")
        fetched = state_after.get("sftpBundle")
        if not (self.config.get("sftp") and archive_path and fetched):
            return []
        sftp = self._sftp_settings()
        bundle = RemoteBundle.from_state(fetched)
        with sftp_session(sftp) as client:
            note = archive(
                client, bundle, str(archive_path), where=sftp.where, now=dt.datetime.now(dt.UTC)
            )
        return [note]

    # -- SFTP ----------------------------------------------------------------------------------

    def _sftp_settings(self) -> SftpSettings:
        if not self.config.get("remotePath"):
            raise ConnectorError("config.remotePath is missing: where on the SFTP server to look")
        return SftpSettings.from_config(self.config["sftp"])

    def _choose(self, client: Any, sftp: SftpSettings) -> RemoteBundle:
        remote_path = str(self.config["remotePath"])
        archive_path = self.config.get("archivePath")
        exclude = None
        if archive_path and _parent(str(archive_path)) == posixpath.normpath(remote_path):
            exclude = posixpath.basename(posixpath.normpath(str(archive_path)))
        return choose_bundle(
            client,
            remote_path,
            where=sftp.where,
            bundle_pattern=str(self.config.get("bundlePattern") or "*.zip"),
            folder_pattern=str(self.config.get("folderPattern") or "*"),
            exclude=exclude,
        )

    def _max_bytes(self) -> int:
        value = self.config.get("maxBundleBytes") or DEFAULT_MAX_BUNDLE_BYTES
        try:
            limit = int(value)
        except (TypeError, ValueError):
            limit = 0
        if limit <= 0:
            raise ConnectorError(f"config.maxBundleBytes must be a positive number, not {value!r}")
        return limit

    def _fetch(self, sftp: SftpSettings, workdir: Path) -> tuple[RemoteBundle, Path]:
        for leftover in workdir.iterdir():  # what an interrupted attempt downloaded
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
        with sftp_session(sftp) as client:
            remote = self._choose(client, sftp)
            local = download(client, remote, workdir, max_bytes=self._max_bytes(), where=sftp.where)
        return remote, local

    def _retrying(self, attempt: Callable[[], T]) -> T:
        first: ConnectorError | None = None
        for number in range(1, ATTEMPTS + 1):
            try:
                return attempt()
            except ConnectorError as exc:
                if exc.permanent:
                    raise
                if number == ATTEMPTS:
                    raise _after_attempts(exc, first or exc) from None
                first = first or exc
                log.warning("SFTP fetch attempt %s of %s failed: %s", number, ATTEMPTS, exc)
                time.sleep(RETRY_DELAYS[min(number, len(RETRY_DELAYS)) - 1])
        raise AssertionError("unreachable")


def _after_attempts(last: ConnectorError, first: ConnectorError) -> ConnectorError:
    message = f"{last.message} (tried {ATTEMPTS} times)"
    if first.message != last.message:
        message = f"{last.message} (tried {ATTEMPTS} times; first: {first.message})"
    return ConnectorError(message, permanent=False)


def _parent(path: str) -> str:
    return posixpath.dirname(posixpath.normpath(path))


def _temp_root() -> Path:
    root = Path(settings.SIS_SYNC_DATA_DIR) / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root
