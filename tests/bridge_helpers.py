"""Small districts and signed webhooks for the bridge tests (webhooks, seats, SCIM)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sis_sync.webhooks.signature import header_value
from tests import bundles


def small_district(sample: Path, target: Path, *, students: int = 12) -> Path:
    """The sample district with only its first `students` students and their classes."""
    bundle = bundles.copy(sample, target)
    kept = [r["sourcedId"] for r in bundles.students(bundle)][:students]
    leaving = {r["sourcedId"] for r in bundles.students(bundle)} - set(kept)
    bundles.drop_users(bundle, leaving)
    classes = {
        r["classSourcedId"]
        for r in bundles.read(bundle, "enrollments")
        if r["userSourcedId"] in kept
    }
    bundles.edit(bundle, "classes", lambda rows: [r for r in rows if r["sourcedId"] in classes])
    bundles.edit(
        bundle, "enrollments", lambda rows: [r for r in rows if r["classSourcedId"] in classes]
    )
    return bundle


def signed(
    secret: str, event: dict[str, Any], *, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A webhook body and the Django test client's headers signing it."""
    body = json.dumps(event).encode()
    stamp = int(time.time()) if at is None else at
    return body, {"HTTP_X_SIS_SIGNATURE": header_value(secret, stamp, body)}
