"""OneRoster error bodies as admin-readable text, and keeping secrets out of messages.

A OneRoster server explains a refusal in an `imsx_StatusInfo` envelope, usually wrapped as
`{"statusInfoSet": [{"imsx_codeMajor": "failure", "imsx_description": "…",
"imsx_CodeMinor": {"imsx_codeMinorField": [{"imsx_codeMinorFieldValue": "unauthorisedrequest"}]}}]}`
(reference/oneroster.md §2.3). Servers also send bare envelopes, plain text or HTML.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests

MAX_DETAIL = 200
MASK = "********"


def describe_status(response: requests.Response) -> str:
    """': <codeMinor>: <description>' from the body, or '' when it says nothing useful."""
    parts = _imsx_parts(response)
    if not parts:
        parts = _text_part(response)
    detail = ": ".join(p for p in parts if p)
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 1] + "…"
    return f": {detail}" if detail else ""


def _imsx_parts(response: requests.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    info = _status_info(body)
    if info is None:
        return []
    minors = []
    minor = info.get("imsx_CodeMinor") or info.get("imsx_codeMinor") or {}
    fields = minor.get("imsx_codeMinorField") if isinstance(minor, dict) else None
    if isinstance(fields, dict):
        fields = [fields]
    for field in fields if isinstance(fields, list) else []:
        if isinstance(field, dict) and field.get("imsx_codeMinorFieldValue"):
            value = str(field["imsx_codeMinorFieldValue"])
            if value != "fullsuccess" and value not in minors:
                minors.append(value)
    description = str(info.get("imsx_description") or "").strip()
    return [", ".join(minors), " ".join(description.split())]


def _status_info(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        return None
    for key in ("statusInfoSet", "imsx_statusInfoSet", "imsx_StatusInfo", "statusInfo"):
        value = body.get(key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return value[0]
        if isinstance(value, dict):
            return value
    if "imsx_codeMajor" in body or "imsx_description" in body:
        return body
    # OAuth 2 error bodies ({"error": "invalid_client", "error_description": "…"}).
    if isinstance(body.get("error"), str):
        minor = {"imsx_codeMinorField": [{"imsx_codeMinorFieldValue": body["error"]}]}
        return {"imsx_description": body.get("error_description") or "", "imsx_CodeMinor": minor}
    return None


def _text_part(response: requests.Response) -> list[str]:
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type or not response.content:
        return []
    text = response.content[:500].decode("utf-8", "replace").strip()
    if text.startswith(("<", "{", "[")):
        return []
    return [" ".join(text.split())]


def redact(message: str, secrets: Iterable[str | None]) -> str:
    """The message with every secret (of 4+ characters) it might echo replaced by a mask."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            message = message.replace(secret, MASK)
    return message
