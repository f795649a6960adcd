"""An extraction's scratch space on disk: a throwaway SQLite file in a temporary directory.

Clever delivers enrollments inside sections and changes as one mixed event feed, while the
pipeline asks for each entity type once, in order. Rather than hold those in memory, an
extraction keeps them here:
- `members`: each section's members, noted while the sections stream past as classes, read back
  as enrollments;
- `seen`: user ids already delivered (a multi-role user appears under each of its roles);
- `changes`: the event feed collapsed to the last change per record (a record created, updated
  and deleted within one delta is just deleted), with `removed` holding members that sections'
  `previous_attributes` show were taken out.
Closing the spool deletes the file.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE members (seq INTEGER PRIMARY KEY, section TEXT, school TEXT, user TEXT,
                      role TEXT, is_primary INTEGER);
CREATE TABLE seen (id TEXT PRIMARY KEY);
CREATE TABLE changes (record_type TEXT, id TEXT, kind TEXT, object TEXT, seq INTEGER,
                      PRIMARY KEY (record_type, id));
CREATE TABLE removed (section TEXT, user TEXT, role TEXT, PRIMARY KEY (section, user));
"""


class Spool:
    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="sis-sync-clever-")
        self.db = sqlite3.connect(Path(self._dir.name) / "spool.sqlite3", isolation_level=None)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.executescript(SCHEMA)
        self.db.execute("BEGIN")
        self._seq = 0

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            self._dir.cleanup()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- members of sections (full syncs) -----------------------------------------------------

    def add_members(self, rows: list[tuple[str, str, str, str, bool]]) -> None:
        """(section, school, user, role, primary) rows."""
        self.db.executemany(
            "INSERT INTO members (section, school, user, role, is_primary) VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def members(self) -> Iterator[tuple[str, str, str, str, bool]]:
        cursor = self.db.execute(
            "SELECT section, school, user, role, is_primary FROM members ORDER BY seq"
        )
        for section, school, user, role, primary in cursor:
            yield section, school, user, role, bool(primary)

    # -- users already delivered --------------------------------------------------------------

    def first_sight(self, user_id: str) -> bool:
        """True the first time an id is offered, False after."""
        cursor = self.db.execute("INSERT OR IGNORE INTO seen (id) VALUES (?)", (user_id,))
        return cursor.rowcount == 1

    # -- collapsed changes (delta syncs) ------------------------------------------------------

    def put_change(self, record_type: str, record_id: str, kind: str, obj: dict[str, Any]) -> None:
        self._seq += 1
        self.db.execute(
            "INSERT OR REPLACE INTO changes (record_type, id, kind, object, seq) "
            "VALUES (?, ?, ?, ?, ?)",
            (record_type, record_id, kind, json.dumps(obj), self._seq),
        )

    def has_change(self, record_type: str, record_id: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM changes WHERE record_type = ? AND id = ?", (record_type, record_id)
        ).fetchone()
        return row is not None

    def changes(self, record_type: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(id, kind, object) of each changed record of a type, in feed order."""
        cursor = self.db.execute(
            "SELECT id, kind, object FROM changes WHERE record_type = ? ORDER BY seq",
            (record_type,),
        )
        for record_id, kind, obj in cursor:
            yield record_id, kind, json.loads(obj)

    def deleted_ids(self, record_type: str, wanted: list[str]) -> set[str]:
        """Which of `wanted` the collapsed feed ends with deleted."""
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            cursor = self.db.execute(
                f"SELECT id FROM changes WHERE record_type = ? AND kind = 'deleted' "
                f"AND id IN ({marks})",
                (record_type, *chunk),
            )
            found.update(row[0] for row in cursor)
        return found

    def add_removed(self, section: str, users: list[tuple[str, str]]) -> None:
        """Members (user, role) a section's previous_attributes show it had before a change."""
        self.db.executemany(
            "INSERT OR IGNORE INTO removed (section, user, role) VALUES (?, ?, ?)",
            [(section, user, role) for user, role in users],
        )

    def removed(self, section: str) -> list[tuple[str, str]]:
        cursor = self.db.execute(
            "SELECT user, role FROM removed WHERE section = ? ORDER BY rowid", (section,)
        )
        return list(cursor)
