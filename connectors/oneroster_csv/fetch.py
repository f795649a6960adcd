"""Which bundle to take from an SFTP folder; downloading it; archiving it after a load.

`remotePath` may be:

- a `.zip` file: that bundle;
- a folder holding the CSV files themselves (it has manifest.csv, or users.csv for a
  OneRoster 1.0 export without a manifest): those `.csv` files;
- a folder of `.zip` bundles and/or dated sub-folders: the newest (modification time, then
  name) of the zips matching `bundlePattern` (default `*.zip`) and the *complete* sub-folders
  matching `folderPattern` (default `*`). A sub-folder is complete when it holds manifest.csv
  and every file the manifest marks bulk or delta; a newer incomplete one (an export still being
  written) is skipped, with a note on the run.

Patterns match file names case-insensitively (fnmatch). Hidden entries (`.name`), symbolic links
and the archive folder are never candidates. Files are streamed into a private local folder and
the whole bundle may not exceed `maxBundleBytes`.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import io
import os
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from connectors.base import ConnectorError
from connectors.oneroster_csv.sftp import sftp_error

CHUNK = 256 * 1024
PREFETCH_REQUESTS = 64  # read requests in flight: fast on long links, bounded memory
MANIFEST_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    mtime: int

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


@dataclass(frozen=True)
class RemoteBundle:
    kind: str  # "zip" (one .zip file) or "folder" (CSV files in a folder)
    path: str  # the .zip, or the folder holding the CSV files
    files: tuple[RemoteFile, ...]  # what is downloaded
    at_root: bool = False  # the CSV files sit in remotePath itself
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/")) or self.path

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def newest(self) -> int:
        return max((f.mtime for f in self.files), default=0)

    def describe(self) -> str:
        """'manifest.csv + 6 files, 12.3 MB, newest 2026-11-20 02:00 UTC' and the like."""
        when = dt.datetime.fromtimestamp(self.newest, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        size = _megabytes(self.size)
        if self.kind == "zip":
            return f"{self.name}, {size}, {when}"
        names = {f.name.lower() for f in self.files}
        head = "manifest.csv + " if "manifest.csv" in names else "no manifest.csv, "
        count = len(names - {"manifest.csv"})
        where = "" if self.at_root else f"{self.name}/: "
        return f"{where}{head}{count} files, {size}, newest {when}"

    def state(self) -> dict[str, Any]:
        """What the pipeline keeps of the bundle (`state_after`), to archive it later."""
        return {
            "kind": self.kind,
            "path": self.path,
            "atRoot": self.at_root,
            "files": [[f.path, f.size, f.mtime] for f in self.files],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RemoteBundle:
        files = tuple(RemoteFile(str(p), int(s), int(m)) for p, s, m in state["files"])
        return cls(str(state["kind"]), str(state["path"]), files, bool(state.get("atRoot")))


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _listing(sftp: paramiko.SFTPClient, path: str, *, where: str) -> list[Any]:
    try:
        entries = sftp.listdir_attr(path)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise sftp_error(exc, doing=f"Listing {path}", where=where, client=sftp) from None
    return [e for e in entries if not e.filename.startswith(".")]


def _regular(entry: Any) -> bool:
    return entry.st_mode is not None and stat.S_ISREG(entry.st_mode)


def _folder(entry: Any) -> bool:
    return entry.st_mode is not None and stat.S_ISDIR(entry.st_mode)


def _file(folder: str, entry: Any) -> RemoteFile:
    return RemoteFile(
        posixpath.join(folder, entry.filename), entry.st_size or 0, entry.st_mtime or 0
    )


def _csv_files(folder: str, entries: Iterable[Any]) -> tuple[RemoteFile, ...]:
    return tuple(
        _file(folder, e) for e in entries if _regular(e) and e.filename.lower().endswith(".csv")
    )


def choose_bundle(
    sftp: paramiko.SFTPClient,
    remote_path: str,
    *,
    where: str,
    bundle_pattern: str = "*.zip",
    folder_pattern: str = "*",
    exclude: str | None = None,
) -> RemoteBundle:
    """The bundle to fetch from `remote_path` (see the module docstring)."""
    try:
        top = sftp.stat(remote_path)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise sftp_error(exc, doing=f"remotePath {remote_path}", where=where, client=sftp) from None
    if _regular(top):
        if not remote_path.lower().endswith(".zip"):
            raise ConnectorError(
                f"remotePath {remote_path} is a file but not a .zip: point it at the bundle "
                "(.zip) or at the folder that holds the bundles"
            )
        only = RemoteFile(remote_path, top.st_size or 0, top.st_mtime or 0)
        return RemoteBundle("zip", remote_path, (only,))
    entries = _listing(sftp, remote_path, where=where)
    names = {e.filename.lower() for e in entries if _regular(e)}
    if "manifest.csv" in names or "users.csv" in names:
        return RemoteBundle("folder", remote_path, _csv_files(remote_path, entries), at_root=True)

    candidates = [
        e
        for e in entries
        if e.filename != exclude
        and (
            (_regular(e) and fnmatch.fnmatch(e.filename.lower(), bundle_pattern.lower()))
            or (_folder(e) and fnmatch.fnmatch(e.filename.lower(), folder_pattern.lower()))
        )
    ]
    candidates.sort(key=lambda e: (e.st_mtime or 0, e.filename), reverse=True)
    skipped: list[str] = []
    for entry in candidates:
        path = posixpath.join(remote_path, entry.filename)
        if _regular(entry):
            return RemoteBundle("zip", path, (_file(remote_path, entry),), notes=tuple(skipped))
        files, why = _complete_folder(sftp, path, where=where)
        if why is None:
            return RemoteBundle("folder", path, files, notes=tuple(skipped))
        skipped.append(f"Skipped {path}/ on the SFTP server, newer but incomplete: {why}")
    raise ConnectorError(
        f"remotePath {remote_path} holds no OneRoster bundle: no manifest.csv or users.csv, "
        f"no .zip matching {bundle_pattern!r} and no complete sub-folder"
        + "".join(f". {note}" for note in skipped)
    )


def _complete_folder(
    sftp: paramiko.SFTPClient, path: str, *, where: str
) -> tuple[tuple[RemoteFile, ...], str | None]:
    """The folder's CSV files, and why it is not a complete bundle (None when it is)."""
    entries = _listing(sftp, path, where=where)
    files = _csv_files(path, entries)
    present = {f.name.lower(): f for f in files}
    manifest = present.get("manifest.csv")
    if manifest is None:
        return files, "it has no manifest.csv"
    declared = _declared_files(_read_small(sftp, manifest, where=where))
    if declared is None:
        return files, "its manifest.csv cannot be read"
    missing = sorted(n for n in declared if n.lower() not in present)
    if missing:
        return files, f"it has no {', '.join(missing)}, which its manifest.csv lists"
    return files, None


def _read_small(sftp: paramiko.SFTPClient, remote: RemoteFile, *, where: str) -> bytes:
    if remote.size > MANIFEST_MAX_BYTES:
        return b""
    try:
        with sftp.open(remote.path, "rb") as handle:
            return handle.read(MANIFEST_MAX_BYTES)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise sftp_error(exc, doing=f"Reading {remote.path}", where=where, client=sftp) from None


def _declared_files(data: bytes) -> list[str] | None:
    """The CSV files a manifest marks bulk or delta; None if it is not a readable manifest.

    Only enough to judge completeness: the reader checks the manifest fully after download.
    """
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), strict=True))
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["propertyname", "value"]:
        return None
    return [
        f"{row[0].strip()[5:]}.csv"
        for row in rows[1:]
        if len(row) > 1
        and row[0].strip().lower().startswith("file.")
        and row[1].strip().lower() in ("bulk", "delta")
    ]


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int, name: str) -> None:
        self.used += size
        if self.used > self.limit:
            raise ConnectorError(
                f"{name} grew past the size limit while downloading "
                f"(maxBundleBytes {_megabytes(self.limit)}): nothing was loaded"
            )


def download(
    sftp: paramiko.SFTPClient, bundle: RemoteBundle, into: Path, *, max_bytes: int, where: str
) -> Path:
    """Streams the bundle into the (empty, private) folder `into`; the local bundle path."""
    if bundle.size > max_bytes:
        raise ConnectorError(
            f"The bundle {bundle.path} is {_megabytes(bundle.size)}, over the size limit "
            f"(maxBundleBytes {_megabytes(max_bytes)}): nothing was fetched"
        )
    budget = _Budget(max_bytes)
    if bundle.kind == "zip":
        (remote,) = bundle.files
        target = into / _local_name(remote.name)
        _download_file(sftp, remote, target, budget, where=where)
        return target
    folder = into / "bundle"
    folder.mkdir(mode=0o700)
    for remote in bundle.files:
        _download_file(sftp, remote, folder / _local_name(remote.name), budget, where=where)
    return folder


def _local_name(name: str) -> str:
    if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
        raise ConnectorError(f"The SFTP server listed a file named {name!r}, which is not safe")
    return name


def _download_file(
    sftp: paramiko.SFTPClient, remote: RemoteFile, target: Path, budget: _Budget, *, where: str
) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        try:
            with sftp.open(remote.path, "rb") as source:
                source.prefetch(remote.size, PREFETCH_REQUESTS)
                while chunk := source.read(CHUNK):
                    budget.take(len(chunk), remote.name)
                    _write(out, chunk, target)
        except ConnectorError:
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise sftp_error(
                exc, doing=f"Downloading {remote.path}", where=where, client=sftp
            ) from None


def _write(out: Any, chunk: bytes, target: Path) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        # Our disk, not the server: a full disk may clear, so the run may be retried.
        raise ConnectorError(
            f"Cannot store the download in {target.parent}: {exc.strerror}", permanent=False
        ) from None


def archive(
    sftp: paramiko.SFTPClient,
    bundle: RemoteBundle,
    archive_path: str,
    *,
    where: str,
    now: dt.datetime,
) -> str:
    """Moves a fetched bundle into `archive_path` on the server; returns what it did.

    A bundle that changed on the server since it was fetched (a new export under the same
    name) is left where it is: it has not been loaded.
    """
    try:
        for remote in bundle.files:
            current = sftp.stat(remote.path)
            if (current.st_size, current.st_mtime) != (remote.size, remote.mtime):
                raise ConnectorError(
                    f"{remote.path} changed on the SFTP server after it was fetched: "
                    "left in place, it has not been loaded"
                )
        _make_folders(sftp, archive_path)
        stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        if bundle.at_root:
            target = posixpath.join(archive_path, stamp)
            sftp.mkdir(target)
            for remote in bundle.files:
                sftp.rename(remote.path, posixpath.join(target, remote.name))
        else:
            target = posixpath.join(archive_path, bundle.name)
            if _exists(sftp, target):
                target = posixpath.join(archive_path, f"{stamp}-{bundle.name}")
            sftp.rename(bundle.path, target)
    except ConnectorError:
        raise
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise sftp_error(exc, doing=f"Archiving {bundle.path}", where=where, client=sftp) from None
    return f"Moved {bundle.path} to {target} on the SFTP server"


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def _make_folders(sftp: paramiko.SFTPClient, path: str) -> None:
    if _exists(sftp, path):
        return
    parent = posixpath.dirname(path.rstrip("/"))
    if parent and parent != path:
        _make_folders(sftp, parent)
    sftp.mkdir(path)
