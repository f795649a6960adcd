"""Rows of one CSV file of a bundle, as dicts keyed by canonical column names.

Columns are found by header name, never by position, case-insensitively; unknown (extension)
columns are kept in the row but never required. Any problem that makes the file unreadable as a
whole (not UTF-8, an unterminated quote, a required column missing) raises a permanent
ConnectorError naming the file and line. A row problem is the caller's to reject.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator

from connectors.base import ConnectorError
from connectors.oneroster_csv.bundle import Bundle

# One cell may legitimately be long (a class with hundreds of term ids); 10 MB is not a roster.
FIELD_SIZE_LIMIT = 10 * 1024 * 1024
csv.field_size_limit(min(FIELD_SIZE_LIMIT, sys.maxsize))


# (line, values, problem): `problem` says why the row as a whole is unusable ('' when it is
# fine). A plain tuple: a NamedTuple would cost more than the checks that make it.
Row = tuple[int, dict[str, str], str]


def read_rows(
    bundle: Bundle, filename: str, *, columns: tuple[str, ...], required: tuple[str, ...]
) -> Iterator[Row]:
    """Yields the rows of `filename` (Row), keyed by the spelling of `columns` (plus unknown
    headers)."""
    with bundle.open_text(filename) as text:
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _unreadable(filename, 1, exc) from None
        if header is None:
            raise ConnectorError(f"{filename} is empty: it needs at least a header row")
        keys = _header_keys(filename, header, columns, required)
        width = len(keys)
        try:
            for cells in reader:
                joined = "".join(cells)  # one string to test, not one per cell
                if not joined or joined.isspace():
                    continue  # a blank line, or a row of empty cells (",,,," as spreadsheets save)
                problem = ""
                if len(cells) > width and not _blank(cells[width:]):
                    problem = f"the row has {len(cells)} fields but the header has {width}"
                elif "\x00" in joined:
                    problem = "the row contains a NUL byte"
                    cells = [c.replace("\x00", "") for c in cells]
                if len(cells) < width:
                    cells = cells + [""] * (width - len(cells))
                yield reader.line_num, dict(zip(keys, cells, strict=False)), problem
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _unreadable(filename, reader.line_num + 1, exc) from None


def _blank(cells: list[str]) -> bool:
    joined = "".join(cells)
    return not joined or joined.isspace()


def _header_keys(
    filename: str, header: list[str], columns: tuple[str, ...], required: tuple[str, ...]
) -> list[str]:
    if any("\x00" in cell for cell in header):
        raise ConnectorError(
            f"{filename} is not UTF-8 text: its header holds NUL bytes (UTF-16 or a binary "
            "file?): export it again as UTF-8"
        )
    canonical = {c.lower(): c for c in columns}
    keys = []
    for cell in header:
        name = cell.strip().lstrip("\ufeff")
        keys.append(canonical.get(name.lower(), name))
    missing = [c for c in required if c not in keys]
    if missing:
        shown = _printable(", ".join(h.strip() for h in header))
        raise ConnectorError(
            f"{filename} is missing the required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (its header is: {shown}){_delimiter_hint(header)}"
        )
    return keys


def _delimiter_hint(header: list[str]) -> str:
    if len(header) == 1:
        for mark, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if header[0].count(mark) >= 2:
                return f"; the file is separated by {name}, but OneRoster CSV uses commas"
    return ""


def _printable(text: str, limit: int = 300) -> str:
    """Text from the file, safe to show in a message: control characters become '?'."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("…" if len(text) > limit else "")


def _unreadable(filename: str, line: int, exc: Exception) -> ConnectorError:
    if isinstance(exc, UnicodeDecodeError):
        return ConnectorError(
            f"{filename} is not UTF-8 text (near line {line}): export it again as UTF-8"
        )
    message = str(exc)
    if "field larger than field limit" in message:
        detail = f"a field longer than {FIELD_SIZE_LIMIT // (1024 * 1024)} MB"
    elif "unexpected end of data" in message or "EOF" in message:
        detail = "a quoted field that never ends (an unterminated quote)"
    elif "NUL" in message:
        detail = "a NUL byte: the file is binary or damaged"
    else:
        detail = message
    return ConnectorError(f"{filename} cannot be read as CSV at line {line}: {detail}")
