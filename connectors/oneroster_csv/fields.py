"""Cell parsers for OneRoster CSV values. Each raises RowError with an admin-readable reason."""

from __future__ import annotations

import datetime as dt

from staging.records import ACTIVE, DELETED


class RowError(ValueError):
    """This row cannot be used; the message says why."""


def text(row: dict[str, str], column: str) -> str:
    return (row.get(column) or "").strip()


def required(row: dict[str, str], column: str) -> str:
    value = text(row, column)
    if not value:
        raise RowError(f"missing required field {column}")
    return value


def status(row: dict[str, str]) -> str:
    value = text(row, "status").lower()
    if value in ("", "active"):
        return ACTIVE
    if value in ("tobedeleted", "inactive"):
        return DELETED
    raise RowError(f"unknown status {row.get('status')!r} (expected active or tobedeleted)")


def date(row: dict[str, str], column: str) -> dt.date | None:
    return parse_date(text(row, column), column)


def parse_date(value: str, column: str) -> dt.date | None:
    """A date: YYYY-MM-DD, or a full ISO datetime of which the date is kept ('' is None)."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        return dt.datetime.fromisoformat(value).date()
    except ValueError:
        raise RowError(f"{column} {value!r} is not a date (expected YYYY-MM-DD)") from None


def boolean(row: dict[str, str], column: str, *, default: bool) -> bool:
    value = text(row, column).lower()
    if not value:
        return default
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise RowError(f"{column} {row.get(column)!r} is not true or false")


def id_list(row: dict[str, str], column: str) -> tuple[str, ...]:
    """A multi-valued cell: comma-separated inside one quoted cell, spaces trimmed."""
    return tuple(part.strip() for part in text(row, column).split(",") if part.strip())


def grades(row: dict[str, str], column: str = "grades") -> str:
    """Grade codes, comma-joined, single digits padded to two ('2' -> '02')."""
    return ",".join(g.zfill(2) if g.isdigit() and len(g) == 1 else g for g in id_list(row, column))


def joined(row: dict[str, str], column: str) -> str:
    return ",".join(id_list(row, column))
