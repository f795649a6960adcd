"""A small SCIM 2.0 client (RFC 7644) over the HTTP choke point, connectors.http.

Every method returns the parsed JSON body (or None) for a 2xx, or raises ScimError: transient
(the server is down, 5xx, timeouts: try again later) or permanent (a 4xx the caller may act
on, `status` says which). The bearer token goes in a header only, never in a message.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.base import ConnectorError
from connectors.http import HttpClient

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CLIENT_ERRORS = frozenset(range(400, 500)) - {429}


class ScimError(Exception):
    def __init__(self, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status = status


class ScimClient:
    def __init__(
        self, *, base_url: str, token: str, max_retries: int = 2, backoff: float = 0.5
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.http = HttpClient(
            label="the SCIM server",
            max_retries=max_retries,
            backoff=backoff,
            timeout=(5.0, 30.0),
            max_bytes=8 * 1024 * 1024,
        )

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": SCIM_JSON}
        if body is not None:
            headers["Content-Type"] = SCIM_JSON
        try:
            response = self.http.request(
                method,
                f"{self.base_url}{path}",
                headers=headers,
                data=json.dumps(body) if body is not None else None,
                ok_statuses=CLIENT_ERRORS,
            )
        except ConnectorError as exc:
            raise ScimError(exc.message, permanent=exc.permanent) from None
        if response.status_code >= 400:
            raise ScimError(
                f"the SCIM server answered HTTP {response.status_code} to {method} "
                f"{path.split('?')[0]}: {_detail(response)}",
                permanent=True,
                status=response.status_code,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ScimError(
                f"the SCIM server answered {method} {path} with something that is not JSON",
                permanent=True,
            ) from None

    def find_by_external_id(self, endpoint: str, external_id: str) -> str | None:
        """The SCIM id of the resource whose externalId is ours, if the server has one."""
        quoted = external_id.replace("\\", "\\\\").replace('"', '\\"')
        found = self.request("GET", f"/{endpoint}?filter=externalId%20eq%20%22{quoted}%22")
        resources = (found or {}).get("Resources") or []
        return str(resources[0]["id"]) if resources else None


def _detail(response: Any) -> str:
    """The SCIM error's own words (RFC 7644 §3.12), short; never a header."""
    try:
        body = response.json()
    except ValueError:
        return "no details"
    if not isinstance(body, dict):
        return "no details"
    detail = str(body.get("detail") or body.get("scimType") or "no details")
    return detail[:300]
