"""A OneRoster CSV bundle on disk: a folder of CSV files or a .zip of them.

File names match case-insensitively (`Users.CSV` is users.csv). A zip whose files sit in one
top-level folder is read from that folder. Files are opened as streams: nothing is extracted
and no file is read whole.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, TextIO

from connectors.base import ConnectorError

# What zipfile raises on a damaged, truncated or encrypted archive, when opened or while read:
# a bad CRC or header, a broken deflate stream, a cut-off member, an unknown compression method
# or zip version, a password, a seek past the end.
ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError)
# Opening an archive or a member also decodes the names its headers hold: a name flagged as
# UTF-8 that is not fails there (reading a member's text must not be taken for that).
ZIP_OPEN_DAMAGE = (*ZIP_DAMAGE, UnicodeDecodeError)


class Bundle:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._files: dict[str, str] = {}  # lower-case name -> member name or file path
        self._sizes: dict[str, int] = {}
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and child.suffix.lower() == ".csv":
                    self._files[child.name.lower()] = str(child)
                    self._sizes[child.name.lower()] = child.stat().st_size
        elif path.is_file():
            self._open_zip(path)
        else:
            raise ConnectorError(
                f"No OneRoster bundle at {path.name or path}: no such file or folder"
            )

    def _open_zip(self, path: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except ZIP_OPEN_DAMAGE:
            raise ConnectorError(
                f"{path.name} is not a .zip file: upload the OneRoster bundle as a zip of CSV files"
            ) from None
        # Not ZipInfo.is_dir(): a damaged directory can hold an empty name, which it indexes.
        members = [m for m in self._zip.infolist() if not m.filename.endswith("/")]
        csvs = [m for m in members if m.filename.lower().endswith(".csv") and not _junk(m.filename)]
        folders = {PurePosixPath(m.filename).parent for m in csvs}
        # Files at the root (preferred), or all in one folder (a zipped export folder).
        root = PurePosixPath(".")
        if root in folders:
            folders = {root}
        if len(folders) > 1:
            names = ", ".join(sorted(f"{folder}/" for folder in folders)[:5])
            raise ConnectorError(
                f"{path.name} holds CSV files in several folders ({names}): zip one bundle, "
                "its files at the top or in one folder"
            )
        if len(folders) == 1:
            (folder,) = folders
            for member in (m for m in csvs if PurePosixPath(m.filename).parent == folder):
                name = PurePosixPath(member.filename).name.lower()
                self._files[name] = member.filename
                self._sizes[name] = member.file_size

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, name: str) -> bool:
        return name.lower() in self._files

    @property
    def names(self) -> list[str]:
        return sorted(self._files)

    def describe(self) -> str:
        """What the bundle holds, in one line: 'manifest.csv + 6 files, 12.3 MB'."""
        data = [n for n in self._files if n != "manifest.csv"]
        size = sum(self._sizes.values())
        head = "manifest.csv + " if self.has("manifest.csv") else "no manifest.csv, "
        return f"{head}{len(data)} files, {size / 1_000_000:.1f} MB"

    @contextmanager
    def open_text(self, name: str) -> Iterator[TextIO]:
        """Opens one CSV file as UTF-8 text (a BOM is dropped), for the csv module."""
        key = name.lower()
        target = self._files[key]
        if self._zip is None:
            with _utf8(open(target, "rb")) as text:
                yield text
            return
        try:
            member = self._zip.open(target)
        except ZIP_OPEN_DAMAGE as exc:
            raise self._damaged(name, exc) from None
        # A damaged member's data shows only once it is read, inside the caller's loop: the error
        # comes back through this yield, and leaves as a ConnectorError.
        try:
            with _utf8(member) as text:
                yield text
        except ZIP_DAMAGE as exc:
            raise self._damaged(name, exc) from None

    def _damaged(self, name: str, exc: Exception) -> ConnectorError:
        return ConnectorError(
            f"{self.path.name} is damaged: {name} cannot be extracted ({exc}); "
            "export the bundle again and upload the new zip"
        )


def _utf8(binary: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")


def _junk(name: str) -> bool:
    """Entries archivers add that are not part of the export (macOS resource forks)."""
    path = PurePosixPath(name)
    return path.parts[:1] == ("__MACOSX",) or path.name.startswith("._")
