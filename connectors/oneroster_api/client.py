"""The OneRoster 1.1 REST wire protocol: settings, authorised GETs, paged collections.

Paging (reference/oneroster.md §2.2) is limit/offset. A collection is read page by page until:
the server's `X-Total-Count` is reached; or its `Link` header has no `next`; or, when it sends
neither, a page comes back empty or shorter than the pages before it (a server may cap `limit`
below what we asked, so one short *first* page proves nothing: we ask once more). A page whose
records repeat an earlier page means the server ignores `offset`: that fails clearly instead of
looping. When the total is known after the first page, the remaining pages are fetched by a
small thread pool (`concurrency`, per provider) and handed out in order while later pages are
still in flight, at most `2 × concurrency` pages held at a time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import requests

from connectors.base import ConnectorError
from connectors.http import HttpClient
from connectors.oneroster_api import auth as oauth
from connectors.oneroster_api.errors import describe_status, redact

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 16
MAX_PAGES = 200_000  # a bound on any one collection: 200 million records at 1,000 a page
# Statuses this client explains itself (HttpClient retries 5xx and waits out 429 before this).
HANDLED = frozenset(range(400, 500)) | {501}
BASE_CHECK_PATH = "orgs"


@dataclass(frozen=True)
class ClientSettings:
    base_url: str
    client_id: str
    client_secret: str
    auth_method: str = "oauth2"  # oauth2 | oauth1 | bearer
    token_url: str = ""
    scope: str = ""
    token_client_auth: str = "basic"  # basic | post (how the client authenticates for a token)
    signature_method: str = "HMAC-SHA256"
    send_oauth_version: bool = True
    bearer_token: str = ""
    page_size: int = DEFAULT_PAGE_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    sort: str = ""
    label: str = "the OneRoster server"  # how messages name the source

    @property
    def secrets(self) -> list[str]:
        return [self.client_secret, self.bearer_token]


def bounded_int(config: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConnectorError(f"config.{key} must be a whole number from {low} to {high}")
    try:
        number = int(value)
    except ValueError:
        raise ConnectorError(f"config.{key} must be a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise ConnectorError(f"config.{key} must be from {low} to {high}, not {number}")
    return number


class Page(NamedTuple):
    offset: int
    items: list[Any]
    total: int | None  # X-Total-Count, when sent
    has_link: bool  # a Link header was sent
    next_offset: int | None  # the offset of its rel="next", when there is one


class Refused(Exception):  # noqa: N818 - a signal the caller handles, not an error
    """The first page of a collection was refused with a status the caller said it handles."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OneRosterClient:
    def __init__(
        self,
        settings: ClientSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        backoff: float = 1.0,
        max_retries: int = 4,
        timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        self.settings = settings
        self.label = settings.label
        self.base_url = settings.base_url.rstrip("/")
        common: dict[str, Any] = {
            "label": settings.label,
            "sleep": sleep,
            "backoff": backoff,
            "max_retries": max_retries,
            "timeout": timeout,
        }
        self.http = HttpClient(pool_size=max(10, settings.concurrency * 2), **common)
        self._token_http = HttpClient(**common)
        self.auth = self._auth(self._token_http)
        self.requests = 0  # data requests sent (summaries, tests)
        self._count_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _auth(self, token_http: HttpClient) -> Any:
        s = self.settings
        if s.auth_method == "oauth1":
            return oauth.oauth1(
                s.client_id,
                s.client_secret,
                signature_method=s.signature_method,
                send_version=s.send_oauth_version,
            )
        if s.auth_method == "bearer":
            return oauth.Bearer(s.bearer_token or s.client_secret)
        if s.auth_method == "oauth2":
            if not s.token_url:
                raise ConnectorError("config.tokenUrl is required for OAuth 2")
            return oauth.OAuth2ClientCredentials(
                token_http,
                token_url=s.token_url,
                client_id=s.client_id,
                client_secret=s.client_secret,
                scope=s.scope,
                client_auth=s.token_client_auth,
                label=s.label,
            )
        raise ConnectorError(f"config.authMethod {s.auth_method!r} is not supported")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.http.session.close()
        self._token_http.session.close()

    # -- single requests ----------------------------------------------------------------------

    def url(self, path: str, params: Mapping[str, Any]) -> str:
        """The full URL: our base + path (never a server-sent href), strict RFC 3986 query."""
        query = urlencode([(k, str(v)) for k, v in params.items()], quote_via=quote, safe="")
        return f"{self.base_url}/{path.lstrip('/')}" + (f"?{query}" if query else "")

    def get(
        self, path: str, params: Mapping[str, Any], *, refusals: frozenset[int] = frozenset()
    ) -> requests.Response:
        """An authorised GET; 2xx, or Refused for a status in `refusals`, or ConnectorError.

        With OAuth 2 a 401 drops the cached token and tries once more with a fresh one.
        """
        url = self.url(path, params)
        refreshed = False
        while True:
            with self._count_lock:
                self.requests += 1
            response = self.http.get(
                url, headers={"Accept": "application/json"}, auth=self.auth, ok_statuses=HANDLED
            )
            status = response.status_code
            if (
                status == 401
                and not refreshed
                and isinstance(self.auth, oauth.OAuth2ClientCredentials)
            ):
                used = response.request.headers.get("Authorization", "").removeprefix("Bearer ")
                self.auth.refresh(used)
                refreshed = True
                continue
            if status < 400:
                return response
            message = self.error_message(path, response)
            if status in refusals:
                raise Refused(status, message)
            raise ConnectorError(message, permanent=True)

    def error_message(self, path: str, response: requests.Response) -> str:
        status = response.status_code
        detail = describe_status(response)
        where = f"/{path.lstrip('/')}"
        name = self.label[0].upper() + self.label[1:]
        method = self.settings.auth_method
        if status == 401 and method == "bearer":
            message = f"{name} rejected the access token (HTTP 401{detail}): check accessToken"
        elif status == 401:
            how = "the OAuth 1.0a signature" if method == "oauth1" else "a fresh OAuth 2 token"
            check = (
                "clientId, clientSecret and signatureMethod"
                if method == "oauth1"
                else ("clientId, clientSecret and scope")
            )
            message = (
                f"{name} rejected the client id/secret ({how}; HTTP 401{detail}): check {check}"
            )
        elif status == 404 and path == BASE_CHECK_PATH:
            message = (
                f"No OneRoster API at this URL: {self.base_url}{where} answered HTTP 404"
                f"{detail}; check baseUrl (it usually ends in /ims/oneroster/v1p1)"
            )
        elif status == 403:
            message = (
                f"{name} refused access to {where} (HTTP 403{detail}): "
                "check that this application may read rosters"
            )
        elif status in (404, 405, 501):
            message = f"{name} does not offer {where} (HTTP {status}{detail})"
        else:
            message = f"{name} refused the request for {where} (HTTP {status}{detail})"
        secrets = [*self.settings.secrets]
        if isinstance(self.auth, oauth.OAuth2ClientCredentials):
            secrets.append(self.auth.current())
        return redact(message, secrets)

    # -- pages --------------------------------------------------------------------------------

    def page(
        self,
        path: str,
        key: str,
        *,
        offset: int,
        limit: int | None = None,
        filter: str = "",  # noqa: A002 - the OneRoster parameter's name
        refusals: frozenset[int] = frozenset(),
    ) -> Page:
        params: dict[str, Any] = {"limit": limit or self.settings.page_size, "offset": offset}
        if filter:
            params["filter"] = filter
        if self.settings.sort:
            params["sort"] = self.settings.sort
        response = self.get(path, params, refusals=refusals)
        return Page(
            offset=offset,
            items=self._items(response, path, key),
            total=_total(response),
            has_link="link" in response.headers,
            next_offset=_next_offset(response),
        )

    def _items(self, response: requests.Response, path: str, key: str) -> list[Any]:
        name = self.label[0].upper() + self.label[1:]
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise ConnectorError(
                f"{name} answered /{path} with something that is not JSON ({kind}): check baseUrl"
            ) from None
        if isinstance(body, dict):
            if isinstance(body.get(key), list):
                return body[key]
            # The envelope key is not always the endpoint's name; take the one list there is.
            lists = [v for v in body.values() if isinstance(v, list)]
            if len(lists) == 1:
                return lists[0]
        raise ConnectorError(f"{name} answered /{path} without a {key!r} list")

    def collection(
        self, path: str, key: str, *, filter: str = "", refusals: frozenset[int] = frozenset()
    ) -> Collection:
        return Collection(self, path, key, filter=filter, refusals=refusals)

    def executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.settings.concurrency, thread_name_prefix="oneroster-page"
            )
        return self._pool


class Collection:
    """One paged collection. Iterate for `(position, object)`; `start()` fetches the first
    page (raising Refused for a status in `refusals`), iteration does the rest.

    `announced` is the server's X-Total-Count (None when it sent none) and `received` the number
    of objects handed out so far.
    """

    def __init__(
        self,
        client: OneRosterClient,
        path: str,
        key: str,
        *,
        filter: str = "",  # noqa: A002
        refusals: frozenset[int] = frozenset(),
    ) -> None:
        self.client = client
        self.path = path
        self.key = key
        self.filter = filter
        self.refusals = refusals
        self.announced: int | None = None
        self.received = 0
        self.pages = 0
        self.concurrent = False
        self._first: Page | None = None
        self._fingerprints: dict[tuple[int, str, str], int] = {}

    def start(self) -> Page:
        if self._first is None:
            self._first = self._fetch(0, refusals=self.refusals)
            self.announced = self._first.total
        return self._first

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        for page in self._pages():
            self._check_repeat(page)
            self.pages += 1
            for index, item in enumerate(page.items):
                self.received += 1
                yield page.offset + index + 1, item

    def _fetch(self, offset: int, *, refusals: frozenset[int] = frozenset()) -> Page:
        return self.client.page(
            self.path, self.key, offset=offset, filter=self.filter, refusals=refusals
        )

    def _pages(self) -> Iterator[Page]:
        first = self.start()
        if (
            first.total is not None
            and first.items
            and len(first.items) < first.total
            and self.client.settings.concurrency > 1
        ):
            # The first page's length is the server's page size: it may cap `limit` lower.
            step = len(first.items)
            self.concurrent = True
            yield first
            yield from self._concurrently(range(step, first.total, step))
            return
        yield from self._sequentially(first)

    def _sequentially(self, page: Page) -> Iterator[Page]:
        largest = 0
        for _ in range(MAX_PAGES):
            yield page
            if not page.items:
                return
            shorter = largest and len(page.items) < largest
            largest = max(largest, len(page.items))
            offset = page.offset + len(page.items)
            if page.has_link:
                if page.next_offset is None:
                    return  # a Link header without rel="next": this was the last page
                offset = page.next_offset if page.next_offset > page.offset else offset
            if page.total is not None:
                if offset >= page.total:
                    return
            elif not page.has_link and shorter:
                return  # neither total nor links: a page shorter than the others ends it
            page = self._fetch(offset)
        raise ConnectorError(
            f"{self._name()} sent more than {MAX_PAGES:,} pages of /{self.path}; stopped"
        )

    def _concurrently(self, offsets: range) -> Iterator[Page]:
        """Pages at `offsets`, fetched `concurrency` at a time, handed out in order."""
        if len(offsets) > MAX_PAGES:
            raise ConnectorError(
                f"{self._name()} announced more than {MAX_PAGES:,} pages of /{self.path}"
            )
        pool = self.client.executor()
        window = self.client.settings.concurrency * 2
        remaining = iter(offsets)
        pending: deque[Future[Page]] = deque()
        try:
            for offset in remaining:
                pending.append(pool.submit(self._fetch, offset))
                if len(pending) >= window:
                    break
            while pending:
                page = pending.popleft().result()
                following = next(remaining, None)
                if following is not None:
                    pending.append(pool.submit(self._fetch, following))
                yield page
                if not page.items:
                    return  # ran dry before the announced total: the pipeline fails the run
        finally:
            for future in pending:
                future.cancel()

    def _check_repeat(self, page: Page) -> None:
        if not page.items:
            return
        fingerprint = _fingerprint(page.items)
        earlier = self._fingerprints.get(fingerprint)
        if earlier is not None:
            raise ConnectorError(
                f"{self._name()} sent the same page of /{self.path} for offset {earlier} and "
                f"offset {page.offset}: it seems to ignore offset, so the collection cannot be "
                "paged. Nothing was loaded; ask the vendor to support limit/offset paging",
                permanent=True,
            )
        self._fingerprints[fingerprint] = page.offset

    def _name(self) -> str:
        label = self.client.label
        return label[0].upper() + label[1:]


def _fingerprint(items: list[Any]) -> tuple[int, str, str]:
    """Enough to recognise a page served again: its length and its first and last records."""

    def ident(item: Any) -> str:
        value = item.get("sourcedId") if isinstance(item, dict) else None
        return str(value) if value is not None else repr(item)[:200]

    return len(items), ident(items[0]), ident(items[-1])


def _total(response: requests.Response) -> int | None:
    value = response.headers.get("X-Total-Count", "").strip()
    return int(value) if value.isdigit() else None


def _next_offset(response: requests.Response) -> int | None:
    """The offset of the Link header's rel="next" (-1 when it has no offset); None if absent."""
    link = response.links.get("next")
    if not link:
        return None
    values = parse_qs(urlsplit(link.get("url", "")).query).get("offset")
    if values and values[0].isdigit():
        return int(values[0])
    return -1
