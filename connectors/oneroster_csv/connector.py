"""ONEROSTER_CSV: a OneRoster CSV bundle, uploaded (kept at `bundlePath`) or fetched over SFTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from connectors.base import ConnectorError
from connectors.oneroster_csv.bundle import Bundle
from connectors.oneroster_csv.reader import CsvExtraction


class OneRosterCsvConnector:
    def __init__(self, config: dict[str, Any], *, options: dict[str, Any]) -> None:
        self.config = config
        self.options = options

    def _bundle_path(self) -> Path:
        if self.config.get("sftp"):
            raise ConnectorError(
                "Fetching OneRoster bundles over SFTP is not available in this version; "
                "upload the bundle instead",
                permanent=True,
            )
        path = self.config.get("bundlePath")
        if not path:
            raise ConnectorError("No bundle has been uploaded to this provider yet")
        return Path(path)

    def test_connection(self) -> str:
        with Bundle(self._bundle_path()) as bundle:
            extraction = CsvExtraction(bundle, mode="full")
            return extraction.describe()

    @contextmanager
    def extract(self, *, mode: str, state: dict[str, Any]) -> Iterator[CsvExtraction]:
        with Bundle(self._bundle_path()) as bundle:
            yield CsvExtraction(bundle, mode=mode)
