"""The districts the benchmark syncs: generated once, cached under benchmarks/data/.

`district_bundle` is the generator's district. `changed_bundle` is the same district a night
later, written file to file from it, with every change chosen by the row's own serial number
(no randomness, nothing held in memory):

- 1% of students get a new e-mail (student serial ≡ 50 mod 100);
- 0.5% of students leave, with all their enrollments (serial ≡ 1 mod 200);
- 0.5% of students arrive (one per student with serial ≡ 3 mod 200, their "twin": same
  school and grade, enrolled in the twin's classes, with their own ids, e-mail and number);
- 1% of classes are renamed (class serial ≡ 0 mod 100).

The counts of each change are kept next to the changed bundle, so the run can check that the
sync saw exactly these changes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from sis_sync import district_generator
from sis_sync.district_generator import STUDENT_DOMAIN

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED = 1
DATA_FILES = ("orgs", "academicSessions", "courses", "classes", "users", "enrollments")

EMAIL_EVERY, EMAIL_AT = 100, 50
DROP_EVERY, DROP_AT = 200, 1
TWIN_EVERY, TWIN_AT = 200, 3
RENAME_EVERY, RENAME_AT = 100, 0


def generator_stamp(*, changed: bool = False) -> str:
    """Which version of the generator (and for a changed bundle, of this module) wrote it."""
    digest = hashlib.sha256(Path(district_generator.__file__).read_bytes())
    if changed:
        digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def district_bundle(students: int) -> Path:
    """The cached district of `students` students (seed 1), generated when missing or stale."""
    path = DATA_DIR / f"district-{students}-seed{SEED}"
    stamp_file = path.with_name(path.name + ".stamp")
    stamp = generator_stamp()
    if not path.is_dir() or not stamp_file.is_file() or stamp_file.read_text() != stamp:
        shutil.rmtree(path, ignore_errors=True)
        with _building(path) as scratch:
            district_generator.generate_district(scratch, students=students, seed=SEED)
        stamp_file.write_text(stamp)
    return path


def changed_bundle(students: int) -> tuple[Path, dict[str, dict[str, int]]]:
    """The changed copy of the district, and the stats a sync of it must report."""
    source = district_bundle(students)
    path = DATA_DIR / f"district-{students}-seed{SEED}-changed"
    expected_file = path.with_name(path.name + ".expected.json")
    stamp = generator_stamp(changed=True)
    cached = json.loads(expected_file.read_text()) if expected_file.is_file() else {}
    if not path.is_dir() or cached.get("stamp") != stamp:
        shutil.rmtree(path, ignore_errors=True)
        with _building(path) as scratch:
            cached = {"stamp": stamp, "stats": write_changed(source, scratch)}
        expected_file.write_text(json.dumps(cached, indent=2) + "\n")
    return path, cached["stats"]


def bundle_rows(path: Path) -> dict[str, int]:
    """Data rows (header excluded) per CSV file of a bundle."""
    counts = {}
    for name in DATA_FILES:
        with (path / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
            counts[name] = sum(1 for _ in csv.reader(handle)) - 1
    return counts


class _building:
    """Builds into a scratch folder renamed into place at the end: no half bundle is cached."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.scratch = path.with_name(f"{path.name}.tmp-{os.getpid()}")

    def __enter__(self) -> Path:
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir(parents=True)
        return self.scratch

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.scratch.rename(self.path)
        else:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _serial(sourced_id: str, prefix: str) -> int | None:
    if not sourced_id.startswith(prefix):
        return None
    digits = sourced_id[len(prefix) :]
    return int(digits) if digits.isdigit() else None


def _is(serial: int | None, every: int, at: int) -> bool:
    return serial is not None and serial % every == at


def _rows(path: Path) -> Iterator[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.reader(handle)


Rewrite = Callable[[dict[str, int], list[str]], list[list[str]]]


def _copy_rewritten(source: Path, target: Path, rewrite: Rewrite) -> None:
    """Streams source to target; `rewrite(header_index, row)` yields the rows to write."""
    rows = _rows(source)
    header = next(rows)
    index = {name: position for position, name in enumerate(header)}
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerows(rewrite(index, row))


def write_changed(source: Path, target: Path) -> dict[str, dict[str, int]]:
    """Writes the changed district into `target`; returns the stats its sync must show."""
    counts = dict.fromkeys(
        ("emails", "dropped", "added", "renamed", "dropped_enrollments", "added_enrollments"), 0
    )
    for name in ("manifest", "orgs", "academicSessions", "courses"):
        shutil.copyfile(source / f"{name}.csv", target / f"{name}.csv")

    def classes(index: dict[str, int], row: list[str]) -> list[list[str]]:
        if _is(_serial(row[index["sourcedId"]], "cls-"), RENAME_EVERY, RENAME_AT):
            counts["renamed"] += 1
            row[index["title"]] += " (renamed)"
        return [row]

    def users(index: dict[str, int], row: list[str]) -> list[list[str]]:
        serial = _serial(row[index["sourcedId"]], "stu-")
        if _is(serial, DROP_EVERY, DROP_AT):
            counts["dropped"] += 1
            return []
        if _is(serial, EMAIL_EVERY, EMAIL_AT):
            counts["emails"] += 1
            row[index["email"]] = f"{row[index['username']]}.new@{STUDENT_DOMAIN}"
        if not _is(serial, TWIN_EVERY, TWIN_AT):
            return [row]
        counts["added"] += 1
        twin = list(row)
        number = f"9{serial:07d}"  # generated student numbers start 00 or 01: no clash
        twin[index["sourcedId"]] = f"stu-new-{serial}"
        twin[index["username"]] = f"newstudent{serial}"
        twin[index["userIds"]] = f"{{SIS:{number}}}"
        twin[index["identifier"]] = number
        twin[index["email"]] = f"newstudent{serial}@{STUDENT_DOMAIN}"
        return [row, twin]

    def enrollments(index: dict[str, int], row: list[str]) -> list[list[str]]:
        serial = _serial(row[index["userSourcedId"]], "stu-")
        if _is(serial, DROP_EVERY, DROP_AT):
            counts["dropped_enrollments"] += 1
            return []
        if not _is(serial, TWIN_EVERY, TWIN_AT):
            return [row]
        counts["added_enrollments"] += 1
        twin = list(row)
        twin[index["sourcedId"]] = f"{row[index['sourcedId']]}-new"
        twin[index["userSourcedId"]] = f"stu-new-{serial}"
        return [row, twin]

    _copy_rewritten(source / "classes.csv", target / "classes.csv", classes)
    _copy_rewritten(source / "users.csv", target / "users.csv", users)
    _copy_rewritten(source / "enrollments.csv", target / "enrollments.csv", enrollments)
    return {
        "classes": {"updated": counts["renamed"]},
        "users": {
            "created": counts["added"],
            "updated": counts["emails"],
            "deactivated": counts["dropped"],
        },
        "enrollments": {
            "created": counts["added_enrollments"],
            "deactivated": counts["dropped_enrollments"],
        },
    }
