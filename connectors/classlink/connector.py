"""CLASSLINK: a ClassLink Roster Server, which speaks OneRoster 1.1 REST.

The OneRoster REST client and mapping (connectors.oneroster_api) with ClassLink's access paths
(reference/oneroster.md §3):
- `authMethod: "oauth1"` (default): straight to the district's Roster Server,
  `https://<tenant>-<state>-v2.rosterserver.com/ims/oneroster/v1p1`, every request signed with
  OAuth 1.0a HMAC-SHA256 (or `signatureMethod: "HMAC-SHA1"`) and, like ClassLink's own samples,
  without `oauth_version`;
- `authMethod: "proxy"`: ClassLink's OAuth 2 proxy,
  `https://oneroster-proxy.classlink.io/<appId>/ims/oneroster/v1p1`, with the access token from
  the ClassLink console as a bearer token (`accessToken`, else `clientSecret`); it does not expire.
A `baseUrl` given as the bare server (no path) gets `/ims/oneroster/v1p1` appended.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from connectors.base import ConnectorError
from connectors.oneroster_api.client import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    MAX_CONCURRENCY,
    MAX_PAGE_SIZE,
    ClientSettings,
    bounded_int,
)
from connectors.oneroster_api.connector import OneRosterApiConnector

API_PATH = "/ims/oneroster/v1p1"


def classlink_base_url(value: str) -> str:
    url = value.rstrip("/")
    if not urlsplit(url).path.strip("/"):
        url += API_PATH
    return url


def classlink_settings(config: Mapping[str, Any]) -> ClientSettings:
    method = str(config.get("authMethod") or "oauth1")
    if method not in ("oauth1", "proxy"):
        raise ConnectorError("config.authMethod must be oauth1 or proxy")
    token = str(config.get("accessToken") or "")
    missing = [k for k in ("baseUrl", "clientId") if not config.get(k)]
    if not config.get("clientSecret") and not (method == "proxy" and token):
        missing.append("clientSecret")
    if missing:
        raise ConnectorError(f"The provider's config is missing {', '.join(missing)}")
    return ClientSettings(
        base_url=classlink_base_url(str(config["baseUrl"])),
        client_id=str(config["clientId"]),
        client_secret=str(config.get("clientSecret") or ""),
        auth_method="oauth1" if method == "oauth1" else "bearer",
        bearer_token=token,
        signature_method=str(config.get("signatureMethod") or "HMAC-SHA256"),
        send_oauth_version=False,
        page_size=bounded_int(config, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
        concurrency=bounded_int(config, "concurrency", DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY),
        sort=str(config.get("sort") or ""),
        label="ClassLink",
    )


class ClassLinkConnector(OneRosterApiConnector):
    def client_settings(self, config: Mapping[str, Any]) -> ClientSettings:
        return classlink_settings(config)
