"""Checks an uploaded OneRoster bundle (.zip) before it is kept and synced.

An upload comes from a browser or an API client, so the zip is untrusted input. It is refused,
with a message the uploader can act on, when it:

- weighs more than `max_bytes`, or is not a zip at all (or is password-protected);
- has more than `max_members` entries;
- has an entry that would land outside the bundle if extracted ("zip slip": an absolute
  path, a drive letter, `..`), or a symbolic link, or an entry that is neither file nor folder;
- looks like a zip bomb: an entry that expands more than `max_ratio` times, or entries that
  together would expand past `max_total_bytes`.

The declared sizes are what the reader can ever get: zipfile stops a member at its declared
size and checks its CRC, so a member that lies about its size fails instead of expanding. Only
the central directory is read here; nothing is extracted.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from connectors.base import ConnectorError
from connectors.oneroster_csv.bundle import ZIP_OPEN_DAMAGE

MAX_BYTES = 1_000_000_000  # the upload itself
MAX_TOTAL_BYTES = 20_000_000_000  # all members expanded: a 1,000,000-student district is ~2 GB
MAX_RATIO = 200  # CSV text compresses 5-20 times; 200 leaves room and stops bombs (1000+)
MAX_MEMBERS = 1_000


def check_upload(
    path: Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
    max_members: int = MAX_MEMBERS,
) -> None:
    """Returns if the uploaded zip at `path` is safe to keep and read; ConnectorError if not."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ConnectorError(
            f"The upload is {_mb(size)}; the most SIS Sync accepts is {_mb(max_bytes)}. "
            "Upload the bundle zipped, or use SFTP for a district this size"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except ZIP_OPEN_DAMAGE:
        raise ConnectorError(
            "The upload is not a .zip file (or it is damaged): upload the OneRoster bundle as a "
            "zip of its CSV files"
        ) from None
    if len(members) > max_members:
        raise ConnectorError(
            f"The zip has {len(members):,} entries; a OneRoster bundle has a dozen or so "
            f"(at most {max_members:,} are accepted)"
        )
    total = 0
    for member in members:
        _check_member(member, max_ratio=max_ratio)
        total += member.file_size
        if total > max_total_bytes:
            raise ConnectorError(
                f"The zip would expand to more than {_mb(max_total_bytes)}; "
                "that is not a OneRoster bundle (a zip bomb?)"
            )


def _check_member(member: zipfile.ZipInfo, *, max_ratio: float) -> None:
    name = member.filename
    if _escapes(name):
        raise ConnectorError(
            f"The zip holds {name!r}, a path outside the bundle; it is refused. "
            "Zip the CSV files themselves (or one folder holding them)"
        )
    if member.flag_bits & 0x1:
        raise ConnectorError(
            f"{name} in the zip is password-protected: upload the bundle without a password"
        )
    mode = member.external_attr >> 16
    if member.create_system == 3 and stat.S_IFMT(mode):  # a Unix file type is recorded
        if stat.S_ISLNK(mode):
            raise ConnectorError(
                f"{name} in the zip is a symbolic link; a bundle may hold only CSV files"
            )
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ConnectorError(
                f"{name} in the zip is not a file; a bundle may hold only CSV files"
            )
    if member.is_dir():
        return
    if member.file_size and member.compress_size == 0:
        raise ConnectorError(f"{name} in the zip claims to expand from nothing: it is damaged")
    if member.compress_size and member.file_size / member.compress_size > max_ratio:
        ratio = member.file_size / member.compress_size
        raise ConnectorError(
            f"{name} in the zip expands {ratio:,.0f} times ({_mb(member.compress_size)} to "
            f"{_mb(member.file_size)}); real CSV files do not: it is refused as a zip bomb"
        )


def _escapes(name: str) -> bool:
    if not name or "\0" in name:
        return True
    for flavour in (PurePosixPath(name), PureWindowsPath(name)):
        if flavour.is_absolute() or flavour.anchor or ".." in flavour.parts:
            return True
    return False


def _mb(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"
