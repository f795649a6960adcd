"""Small tools to copy and edit OneRoster CSV bundles in tests."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

Row = dict[str, str]


def read(bundle: Path, name: str) -> list[Row]:
    with open(bundle / f"{name}.csv", newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def header(bundle: Path, name: str) -> list[str]:
    with open(bundle / f"{name}.csv", newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle))


def write(bundle: Path, name: str, rows: Iterable[Row], columns: list[str]) -> None:
    with open(bundle / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def edit(bundle: Path, name: str, change: Callable[[list[Row]], list[Row]]) -> None:
    columns = header(bundle, name)
    write(bundle, name, change(read(bundle, name)), columns)


def students(bundle: Path) -> list[Row]:
    return [r for r in read(bundle, "users") if r["role"] == "student"]


def drop_users(bundle: Path, user_ids: set[str]) -> None:
    """Removes users and their enrollments, as an SIS does when students leave."""
    edit(bundle, "users", lambda rows: [r for r in rows if r["sourcedId"] not in user_ids])
    edit(
        bundle, "enrollments", lambda rows: [r for r in rows if r["userSourcedId"] not in user_ids]
    )


def set_manifest(bundle: Path, modes: dict[str, str]) -> None:
    rows = read(bundle, "manifest")
    for row in rows:
        name = row["propertyName"]
        if name.startswith("file.") and name[5:] in modes:
            row["value"] = modes[name[5:]]
    write(bundle, "manifest", rows, ["propertyName", "value"])
