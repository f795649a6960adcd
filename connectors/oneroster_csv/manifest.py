"""manifest.csv: which files a bundle carries, and whether each is bulk or delta.

No manifest means a OneRoster 1.0 bundle: every file present is bulk.
"""

from __future__ import annotations

import csv
from typing import NamedTuple

from connectors.base import ConnectorError
from connectors.oneroster_csv.bundle import Bundle

MODES = ("bulk", "delta", "absent")


class Manifest(NamedTuple):
    version: str  # oneroster.version, "1.0" when there is no manifest
    files: dict[str, str]  # "users" -> "bulk" | "delta" | "absent"
    present: bool


def read_manifest(bundle: Bundle) -> Manifest:
    if not bundle.has("manifest.csv"):
        files = {name.removesuffix(".csv"): "bulk" for name in bundle.names}
        return Manifest("1.0", files, present=False)
    files: dict[str, str] = {}
    version = "1.1"
    with bundle.open_text("manifest.csv") as text:
        try:
            rows = list(csv.reader(text, strict=True))
        except (csv.Error, UnicodeDecodeError):
            raise ConnectorError("manifest.csv cannot be read as UTF-8 CSV") from None
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["propertyname", "value"]:
        raise ConnectorError("manifest.csv must start with the header propertyName,value")
    for line, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        prop = row[0].strip()
        value = row[1].strip() if len(row) > 1 else ""
        if prop.lower() == "oneroster.version":
            version = value
        elif prop.lower().startswith("file."):
            mode = value.lower() or "absent"
            if mode not in MODES:
                raise ConnectorError(
                    f"manifest.csv line {line}: {prop} is {value!r}; "
                    "it must be bulk, delta or absent"
                )
            files[prop[5:].lower()] = mode
    return Manifest(version, files, present=True)
