"""The connector contract: every provider type speaks its protocol behind this one shape.

A connector is built from a provider's decrypted config (and options) and does two things:

- `test_connection()` checks credentials and reachability without changing anything and returns
  a one-line description of what it found ("manifest.csv + 6 files, 12 MB").
- `extract(mode=...)` is a context manager yielding an `Extraction`:
    * `modes[entity]` says, for each of `staging.records.ENTITIES`, whether the source delivered
      that entity type in full (`FULL`: anything not delivered is gone), as changes only
      (`DELTA`: only records marked deleted are gone) or not at all (`ABSENT`: keep what we have);
    * `records(entity)` yields that entity type's normalized records (`staging.records`), or
      `Reject`s for source rows that cannot be normalized, streaming: a connector never holds a
      whole collection in memory. Records of one entity type come in one iterator; the caller
      asks for schools, classes, users, enrollments in that order, once each;
    * `announced[entity]`, where the source announced a total (X-Total-Count), that total, so
      pull integrity can be checked before anything is loaded.
  Leaving the context releases whatever the extraction held (temporary files, sessions).

Connectors never touch the database; they only read the source. Extraction must be
idempotent: extracting twice from an unchanged source yields the same records.

Errors: anything that stops an extraction is raised as `ConnectorError(message, permanent=…)`,
with a message a district admin can act on ("the bundle has no users.csv"), never a secret.
`permanent=True` means retrying cannot help (bad credentials, broken bundle); `False` means it
may (timeouts, 5xx, a dropped connection).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from staging.records import Record


class ConnectorError(Exception):
    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent

    def __str__(self) -> str:
        return self.message


class EntityMode(enum.StrEnum):
    FULL = "full"
    DELTA = "delta"
    ABSENT = "absent"


class Extraction(Protocol):
    modes: dict[str, EntityMode]
    announced: dict[str, int]

    def records(self, entity: str) -> Iterator[Record]: ...


class Connector(Protocol):
    def __init__(self, config: dict[str, Any], *, options: dict[str, Any]) -> None: ...

    def test_connection(self) -> str: ...

    def extract(self, *, mode: str) -> AbstractContextManager[Extraction]: ...
