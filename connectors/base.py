"""The connector contract: every provider type speaks its protocol behind this one shape.

A connector is built from a provider's decrypted config (and options) and does two things:

- `test_connection()` checks credentials and reachability without changing anything and returns
  a one-line description of what it found ("manifest.csv + 6 files, 12 MB").
- `extract(mode=..., state=...)` is a context manager yielding an `Extraction`. `mode` is what
  the run asked for ("full" or "delta"); `state` is the provider's sync state: what earlier
  extractions left in `state_after` (a Clever event id, …) plus, from the pipeline,
  `lastSyncStartedAt` and `lastFullSyncStartedAt` (ISO 8601, UTC; absent before the first
  applied sync of that kind). The `Extraction`:
    * `mode` is what the extraction really is: a delta may fall back to "full" (say why in
      `notes`); the pipeline records it on the run, and holds apply to full syncs only;
    * `modes[entity]` says, for each of `staging.records.ENTITIES`, whether the source delivered
      that entity type in full (`FULL`: anything not delivered is gone), as changes only
      (`DELTA`: only records marked deleted are gone) or not at all (`ABSENT`: keep what we have);
    * `records(entity)` yields that entity type's normalized records (`staging.records`), or
      `Reject`s for source rows that cannot be normalized, streaming: a connector never holds a
      whole collection in memory. Records of one entity type come in one iterator; the caller
      asks for schools, classes, users, enrollments in that order, once each;
    * `announced[entity]`, where the source announced a total (X-Total-Count), that total, and
      `received[entity]` the number of source records actually received (before mapping or
      skipping), both filled in by the time the entity's records are exhausted: a source that
      delivered fewer than it announced fails the run before anything is loaded;
    * `state_after` is merged into the provider's sync state once this run's load is applied
      (not for a dry run, a failure or a discarded hold); read it after the records;
    * `notes` are lines an admin should read on the run ("events are not enabled for this app:
      ran a full sync instead").
  Leaving the context releases whatever the extraction held (temporary files, sessions).

Optionally, a connector sets `separate_entities = True` when its entity types can be read
independently of each other (one endpoint each): the pipeline may then open one extraction per
entity type, in parallel on several workers, with the same `mode` and `state`, and read one
entity type from each. Such a connector must decide `mode`, `modes` and the fallback notes the
same way in every one of them (from `mode`, `state` and the source only).

Optionally, `on_applied(*, state_after) -> list[str] | None` runs once a run's load is
committed (never for a dry run, a failure or a hold): a follow-up such as moving a fetched SFTP
bundle into an archive folder. It returns notes for the run; a ConnectorError becomes a note,
and the load stands.

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
    mode: str
    modes: dict[str, EntityMode]
    announced: dict[str, int]
    received: dict[str, int]
    state_after: dict[str, Any]
    notes: list[str]

    def records(self, entity: str) -> Iterator[Record]: ...


class Connector(Protocol):
    def __init__(self, config: dict[str, Any], *, options: dict[str, Any]) -> None: ...

    def test_connection(self) -> str: ...

    def extract(
        self, *, mode: str, state: dict[str, Any]
    ) -> AbstractContextManager[Extraction]: ...
