"""Clever's error answers, turned into sentences a district admin can act on.

Clever answers errors in three shapes: `{"message": …}` (v3 data API), `{"error": …}` (older
API versions) and `{"error": …, "error_description": …}` (the OAuth token endpoint). A 429's
body may be plain text, and a wrong token type can get an HTML page. All are accepted; what
Clever said is quoted at the end of our sentence, never a token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

MAX_QUOTE = 300


def clever_said(response: requests.Response) -> str:
    """What Clever's body says, in one short line; '' when it says nothing usable."""
    text = response.text or ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = _text(body.get("message"))
        error = _text(body.get("error"))
        description = _text(body.get("error_description"))
        if message:
            said = message
        elif error and description:
            said = f"{error}: {description}"
        else:
            said = error or description
    elif body is None and text.strip() and not _looks_like_html(text):
        said = " ".join(text.split())
    else:
        said = ""
    return said[:MAX_QUOTE]


def _text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):  # {"error": {"message": …}} seen in some gateways
        return _text(value.get("message"))
    return ""


def _looks_like_html(text: str) -> bool:
    return bool(re.match(r"\s*<(!doctype|html|head|body)", text, re.IGNORECASE))


def what(url: str) -> str:
    """The resource a URL asks for, as an admin reads it: '/v3.0/users' -> 'users'."""
    path = urlsplit(url).path.strip("/")
    parts = [p for p in path.split("/") if p]
    if parts and re.fullmatch(r"v\d+(\.\d+)?", parts[0]):
        parts = parts[1:]
    return "/".join(parts) or "the API root"


def api_error(response: requests.Response, *, refetched: bool = False) -> str:
    """The admin sentence for a data-API error answer (any 4xx but 429)."""
    status = response.status_code
    said = clever_said(response)
    resource = what(response.url)
    if status == 401:
        sentence = "Clever rejected the token: the district may have disconnected the app"
        if refetched:
            sentence += " (a freshly fetched district token was rejected too)"
        else:
            sentence += ", or the configured accessToken is wrong or was rotated"
    elif status == 403:
        sentence = (
            f"Clever refused access to {resource}: the app may lack Secure Sync, "
            "or the district has not shared this data with it"
        )
    elif status == 404:
        sentence = (
            f"Clever has no {resource} for this token: the data may have been unshared, "
            "or the token belongs to another district"
        )
    elif status == 413:
        sentence = "Clever refused the page size: config.pageSize may be at most 10,000"
    elif status == 400:
        sentence = f"Clever rejected the request for {resource}"
    else:
        sentence = f"Clever answered HTTP {status} for {resource}"
    if said and not _looks_like_html(said):
        sentence += f" (Clever said: {said})"
    elif _looks_like_html(response.text or ""):
        sentence += " (Clever sent a web page, not data: check config.baseUrl)"
    return sentence


def token_error(response: requests.Response) -> str:
    """The admin sentence for an error from the district-token endpoint."""
    status = response.status_code
    said = clever_said(response)
    if status in (400, 401, 403):
        sentence = (
            "Clever rejected the app's clientId/clientSecret when asked for the district "
            "token: check them in Clever's developer dashboard"
        )
    elif status == 404:
        sentence = "Clever has no district-token endpoint at the configured address"
    else:
        sentence = f"Clever answered HTTP {status} when asked for the district token"
    if said:
        sentence += f" (Clever said: {said})"
    return sentence


Describer = Callable[[requests.Response], str]


def redacting(describe: Describer, secrets: Callable[[], list[str]]) -> Describer:
    """Wraps a describer so that no current secret can ever appear in its message."""

    def described(response: requests.Response) -> str:
        return redact(describe(response), secrets())

    return described


def redact(message: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            message = message.replace(secret, "********")
    return message
