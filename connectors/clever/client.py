"""Speaks the Clever Data API v3.0: the district token, the envelope, paging, errors.

Every request goes through connectors.http (retries, 429 waits, address checks, size limits)
on a session that first takes a token from the client-side bucket (connectors.clever.ratelimit),
shared by every process using the same district token.

Tokens: a configured `accessToken` is used as is; with `clientId`/`clientSecret` the district
token is fetched from Clever's token endpoint (`GET /oauth/tokens?owner_type=district`, HTTP
Basic). A 401 from the data API fetches the district token again, once, and repeats the
request: Clever rotates tokens. The token is sent only in the Authorization header, to the
configured API host only, and never appears in a message.

Envelope: a list is `{"data": [{"data": {record}, "uri": …}], "links": [{"rel": "next",
"uri": "/v3.0/…"}]}`; the next link is relative, already carries the version and the query,
and is joined to the API origin. Paging stops at the last page (no next link, or an empty one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from connectors.base import ConnectorError
from connectors.clever import errors
from connectors.clever.ratelimit import Bucket, RateLimitedSession, SharedBucket
from connectors.http import HttpClient

API_VERSION = "v3.0"
DEFAULT_BASE_URL = "https://api.clever.com"
PRODUCTION_API_HOST = "api.clever.com"
PRODUCTION_TOKEN_URL = "https://clever.com/oauth/tokens"  # on clever.com, unversioned
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000  # Clever answers 413 above it
MAX_PAGES = 100_000  # 1e9 records at the largest page size: a bound, not a plan
# Large pages can be slow: Clever's own client waits 120 s.
TIMEOUT = (10.0, 120.0)
# connectors.http's retry policy for 5xx, timeouts and dropped connections. Module-level so a
# test can make retries instant.
MAX_RETRIES = 4
BACKOFF = 1.0

Record = dict[str, Any]


class Refused(Exception):  # noqa: N818 - an answer the caller asked to handle, not a failure
    """Clever answered a paged request with a status the caller said it handles itself."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class CleverSettings:
    """The provider config as the client uses it (SPEC §2: CLEVER)."""

    district_id: str
    base_url: str  # the API origin, "https://api.clever.com"
    token_url: str
    page_size: int
    access_token: str
    client_id: str
    client_secret: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CleverSettings:
        district_id = _text(config.get("districtId"))
        if not district_id:
            raise ConnectorError("The Clever provider has no districtId configured")
        access_token = _text(config.get("accessToken"))
        client_id = _text(config.get("clientId"))
        client_secret = _text(config.get("clientSecret"))
        if not access_token and not (client_id and client_secret):
            raise ConnectorError(
                "The Clever provider needs an accessToken, or the app's clientId and clientSecret"
            )
        base_url = _origin(_text(config.get("baseUrl")) or DEFAULT_BASE_URL, "baseUrl")
        token_url = _text(config.get("tokenUrl"))
        if token_url:
            _origin(token_url, "tokenUrl")
        elif urlsplit(base_url).hostname == PRODUCTION_API_HOST:
            token_url = PRODUCTION_TOKEN_URL
        else:  # a regional or local Clever-like server answers tokens itself
            token_url = f"{base_url}/oauth/tokens"
        return cls(
            district_id=district_id,
            base_url=base_url,
            token_url=token_url,
            page_size=_page_size(config.get("pageSize")),
            access_token=access_token,
            client_id=client_id,
            client_secret=client_secret,
        )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _origin(url: str, name: str) -> str:
    """The scheme://host[:port] of a URL. A trailing /v3.x is accepted and dropped: Clever's
    links carry the version themselves."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConnectorError(f"config.{name} must be a URL like https://api.clever.com")
    path = parts.path.rstrip("/")
    if name == "baseUrl" and path not in ("", "/v3.0", "/v3.1"):
        raise ConnectorError(
            f"config.{name} must be the API's address without a path "
            f"(https://api.clever.com), not {url!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _page_size(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_PAGE_SIZE
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise ConnectorError(
            f"config.pageSize must be a whole number from 1 to {MAX_PAGE_SIZE:,}, not {value!r}"
        )
    return value


class CleverClient:
    def __init__(
        self,
        settings: CleverSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        bucket: Bucket | None = None,
        max_retries: int | None = None,
        backoff: float | None = None,
    ) -> None:
        self.settings = settings
        self._token = settings.access_token
        # Counted per token (Clever's limit is per token); before the district token is known
        # (it is being fetched), under the app's client id.
        self.bucket = bucket or SharedBucket(
            token=lambda: self._token or f"app:{settings.client_id}", sleep=sleep
        )
        session = RateLimitedSession(self.bucket)
        common: dict[str, Any] = {
            "label": "Clever",
            "session": session,
            "timeout": TIMEOUT,
            "max_retries": MAX_RETRIES if max_retries is None else max_retries,
            "backoff": BACKOFF if backoff is None else backoff,
            "sleep": sleep,
        }
        self.http = HttpClient(
            describe_error=errors.redacting(errors.api_error, self._secrets), **common
        )
        self.token_http = HttpClient(
            describe_error=errors.redacting(errors.token_error, self._secrets), **common
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> CleverClient:
        return cls(CleverSettings.from_config(config), **kwargs)

    def _secrets(self) -> list[str]:
        return [self._token, self.settings.access_token, self.settings.client_secret]

    # -- tokens -------------------------------------------------------------------------------

    def _can_fetch_token(self) -> bool:
        return bool(self.settings.client_id and self.settings.client_secret)

    def token(self) -> str:
        if not self._token:
            self._token = self.fetch_token()
        return self._token

    def fetch_token(self) -> str:
        """The district's current token from Clever's token endpoint (client credentials)."""
        s = self.settings
        response = self.token_http.get(
            s.token_url,
            params={"owner_type": "district", "district": s.district_id},
            auth=(s.client_id, s.client_secret),
            headers={"Accept": "application/json"},
        )
        body = self._json(response, "the district-token list")
        for item in body.get("data") or []:
            if not isinstance(item, dict):
                continue
            owner = item.get("owner") if isinstance(item.get("owner"), dict) else {}
            token = item.get("access_token")
            if owner.get("id") == s.district_id and isinstance(token, str) and token:
                return token
        raise ConnectorError(
            f"Clever has no token for district {s.district_id}: the district has not "
            "connected this app, or has disconnected it"
        )

    # -- requests -----------------------------------------------------------------------------

    def url(self, path_or_link: str) -> str:
        """An API path ("users") or a link Clever sent ("/v3.0/users?…") as a full URL.

        Links pointing at another host are refused: the bearer token goes to the API host only.
        """
        if not path_or_link.startswith(("/", "http://", "https://")):
            path_or_link = f"/{API_VERSION}/{path_or_link}"
        url = urljoin(self.settings.base_url + "/", path_or_link)
        if urlsplit(url).netloc != urlsplit(self.settings.base_url).netloc:
            raise ConnectorError(
                f"Clever sent a link to another host ({urlsplit(url).hostname}); "
                "refusing to send the district token there"
            )
        return url

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """GET with the district token; a 401 fetches a fresh token once and tries again."""
        url = self.url(path)
        for refetched in (False, True):
            response = self.http.get(
                url,
                params=params,
                headers={"Authorization": f"Bearer {self.token()}", "Accept": "application/json"},
                ok_statuses=ok_statuses | {401},
            )
            if response.status_code != 401 or 401 in ok_statuses:
                return response
            if refetched or not self._can_fetch_token():
                break
            self._token = self.fetch_token()
        message = errors.api_error(response, refetched=refetched)
        raise ConnectorError(errors.redact(message, self._secrets()))

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> tuple[requests.Response, dict[str, Any]]:
        """The response and its JSON object; the object is {} for a status in ok_statuses."""
        response = self.get(path, params, ok_statuses=ok_statuses)
        if response.status_code >= 400:
            return response, {}
        return response, self._json(response, errors.what(response.url))

    def _json(self, response: requests.Response, what: str) -> dict[str, Any]:
        try:
            body = json.loads(response.content or b"null")
        except ValueError:
            raise ConnectorError(
                f"Clever's answer for {what} is not JSON: check config.baseUrl", permanent=True
            ) from None
        if not isinstance(body, dict):
            raise ConnectorError(f"Clever's answer for {what} is not a JSON object")
        return body

    def pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        refused: frozenset[int] = frozenset(),
    ) -> Iterator[list[Record]]:
        """Each page's records (the inner `data` of each item), following `next` links.

        A status in `refused` raises Refused (for the caller to handle) instead of failing.
        """
        query: Mapping[str, Any] | None = {"limit": self.settings.page_size, **(params or {})}
        url = self.url(path)
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            response, body = self.get_json(url, query, ok_statuses=refused)
            if response.status_code in refused:
                raise Refused(response)
            items = body.get("data")
            if not isinstance(items, list):
                raise ConnectorError(f"Clever's answer for {errors.what(url)} has no data list")
            yield [
                item["data"]
                for item in items
                if isinstance(item, dict) and isinstance(item.get("data"), dict)
            ]
            link = next_link(body)
            if not link or not items:
                return
            url, query = self.url(link), None
            if url in seen:
                raise ConnectorError(
                    f"Clever sent the same next-page link twice for {errors.what(url)}; "
                    "stopping rather than looping"
                )
            seen.add(url)
        raise ConnectorError(f"Clever sent more than {MAX_PAGES:,} pages of {errors.what(url)}")

    def records(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Record]:
        for page in self.pages(path, params):
            yield from page

    def one(self, path: str) -> Record | None:
        """A single record (`/courses/{id}`), or None when Clever has no such record."""
        response, body = self.get_json(path, ok_statuses=frozenset({404}))
        if response.status_code == 404:
            return None
        record = body.get("data")
        return record if isinstance(record, dict) else None

    def district(self) -> Record:
        """The token's district, checked against config.districtId."""
        districts = [d for page in self.pages("districts") for d in page]
        wanted = self.settings.district_id
        if not districts:
            raise ConnectorError(
                "Clever shows no district for this token: the district may have disconnected "
                "the app"
            )
        for district in districts:
            if district.get("id") == wanted:
                return district
        found = districts[0]
        raise ConnectorError(
            f"This token belongs to Clever district {found.get('id')} "
            f"({_text(found.get('name')) or 'no name'}), not to the configured districtId "
            f"{wanted}: check the provider's districtId and token"
        )


def next_link(body: Mapping[str, Any]) -> str | None:
    links = body.get("links")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "next":
            uri = link.get("uri")
            if isinstance(uri, str) and uri.strip():
                return uri.strip()
    return None
