"""A run's rejected records as CSV, streamed: one writer for the API and the admin."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

CSV_COLUMNS = ("entity", "externalId", "reason", "line", "raw")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    """Spreadsheets run a cell that starts with = + - @ as a formula: rejects are SIS data."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def rejects_csv(rejects: QuerySet) -> Iterator[str]:
    """The header, then one line per reject, read from the database in chunks."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for reject in rejects.iterator(chunk_size=2000):
        yield writer.writerow(
            [_cell(reject.entity), _cell(reject.external_id), _cell(reject.reason), reject.line,
             _cell(reject.raw)]
        )  # fmt: skip
