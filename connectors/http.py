"""The one HTTP choke point for API connectors: address checks, retries, rate limits, limits.

`HttpClient.get` returns a response whose status is below 400 (or one the caller said it
handles), or raises ConnectorError:
- 429: waits `Retry-After` (seconds or an HTTP date) or until `X-RateLimit-Reset` (epoch
  seconds), then tries again — waiting is not failing, up to `max_waits` times;
- 5xx, timeouts, refused or dropped connections: retried with exponential backoff and full
  jitter, `max_retries` times, then a transient ConnectorError;
- other 4xx: a permanent ConnectorError whose message the caller shapes (`describe_error`);
- redirects are followed by hand, only to the same host (a redirect elsewhere is refused) and
  every host is checked by connectors.netcheck before it is contacted; the connection then goes
  to the address that was checked, not to a second DNS answer (which could point inside);
- TLS certificate failures are permanent: retrying cannot fix them;
- a response body larger than `max_bytes` is refused (a page far larger than asked).
Secrets never reach messages: errors name the URL path, never headers or query strings.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

from connectors.base import ConnectorError
from connectors.netcheck import AddressNotAllowed, check_host

RETRY_STATUSES = {500, 502, 503, 504}
DEFAULT_TIMEOUT = (10.0, 60.0)  # connect, read
MAX_BYTES = 64 * 1024 * 1024

ErrorDescriber = Callable[[requests.Response], str]


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def retry_after_seconds(response: requests.Response, *, now: float | None = None) -> float | None:
    """How long a 429 (or 503) asks us to wait, from Retry-After or X-RateLimit-Reset."""
    now = time.time() if now is None else now
    value = response.headers.get("Retry-After", "").strip()
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = response.headers.get("X-RateLimit-Reset", "").strip()
    if reset:
        try:
            number = float(reset)
        except ValueError:
            return None
        # Epoch seconds, or (some servers) seconds from now.
        return max(0.0, number - now) if number > 1_000_000_000 else number
    return None


class HttpClient:
    def __init__(
        self,
        *,
        label: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_waits: int = 20,
        max_wait_seconds: float = 300.0,
        max_bytes: int = MAX_BYTES,
        describe_error: ErrorDescriber | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 10,
    ) -> None:
        self.label = label  # "Clever", "the OneRoster server": how messages name the source
        self.session = session or requests.Session()
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_waits = max_waits
        self.max_wait_seconds = max_wait_seconds
        self.max_bytes = max_bytes
        self.describe_error = describe_error
        self.sleep = sleep
        # host -> the checked address connections go to ("" when connecting by name is fine).
        self._pins: dict[str, str] = {}
        adapter = _PinningAdapter(self._pins, pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname
        if not host:
            raise ConnectorError(f"{url!r} is not a URL")
        if host in self._pins:
            return
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = check_host(host, port)
        except AddressNotAllowed as exc:
            raise ConnectorError(f"Refusing to connect to {self.label}: {exc}") from None
        except ValueError:  # a port that is not a number
            raise ConnectorError(f"{_path(url)!r} is not a valid URL") from None
        self._pins[host] = addresses[0] if addresses else ""

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> requests.Response:
        return self.request(
            "GET", url, params=params, headers=headers, auth=auth, ok_statuses=ok_statuses
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        data: Any = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> requests.Response:
        failures = waits = 0
        while True:
            try:
                response = self._send(method, url, params, headers, auth, data)
            except requests.exceptions.SSLError:
                raise ConnectorError(
                    f"{self.label} at {_path(url)} did not present a valid TLS certificate",
                    permanent=True,
                ) from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                failures += 1
                if failures > self.max_retries:
                    raise ConnectorError(
                        f"{self.label} did not answer at {_path(url)} after {failures} tries "
                        f"({_reason(exc)})",
                        permanent=False,
                    ) from None
                self.sleep(self._backoff(failures))
                continue
            status = response.status_code
            if status == 429:
                waits += 1
                delay = retry_after_seconds(response)
                if waits > self.max_waits:
                    raise ConnectorError(
                        f"{self.label} kept refusing requests as too many (HTTP 429)",
                        permanent=False,
                    )
                self.sleep(min(self.max_wait_seconds, delay if delay is not None else 5.0))
                continue
            if status in RETRY_STATUSES and status not in ok_statuses:
                failures += 1
                if failures > self.max_retries:
                    raise ConnectorError(
                        f"{self.label} failed with HTTP {status} at {_path(url)} "
                        f"after {failures} tries",
                        permanent=False,
                    )
                delay = retry_after_seconds(response)
                self.sleep(delay if delay is not None else self._backoff(failures))
                continue
            if status >= 400 and status not in ok_statuses:
                message = self.describe_error(response) if self.describe_error else ""
                raise ConnectorError(
                    message or f"{self.label} answered HTTP {status} at {_path(url)}",
                    permanent=True,
                )
            return response

    def _send(
        self, method: str, url: str, params: Any, headers: Any, auth: Any, data: Any
    ) -> requests.Response:
        origin = urlsplit(url).hostname
        for _ in range(5):
            self.check(url)
            response = self.session.request(
                method,
                url,
                params=params,
                headers=headers,
                auth=auth,
                data=data,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
            if response.is_redirect:
                target = urljoin(url, response.headers["Location"])
                if urlsplit(target).hostname != origin:
                    raise ConnectorError(
                        f"{self.label} redirected {_path(url)} to another host "
                        f"({urlsplit(target).hostname}); refusing to follow"
                    )
                url, params = target, None
                continue
            self._read_limited(response)
            return response
        raise ConnectorError(f"{self.label} redirected too many times at {_path(url)}")

    def _read_limited(self, response: requests.Response) -> None:
        """Reads the body into the response, refusing one larger than max_bytes."""
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=256 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                response.close()
                raise ConnectorError(
                    f"{self.label} sent a response larger than {self.max_bytes // 1_000_000} MB "
                    f"at {_path(response.url)}; refusing it"
                )
            chunks.append(chunk)
        response._content = b"".join(chunks)  # noqa: SLF001 - requests' own cache of the body

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, self.backoff * 2 ** (attempt - 1))  # full jitter


class _PinnedConnectionMixin:
    """Connects to a pinned address while TLS still checks the certificate for the host name."""

    def __init__(self, *args: Any, pinned_address: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pinned_address = pinned_address

    def _new_conn(self) -> Any:
        if not self.pinned_address:
            return super()._new_conn()
        # urllib3 resolves `_dns_host`; `host` (SNI, certificate check, Host header) is unchanged.
        name, self._dns_host = self._dns_host, self.pinned_address
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinningAdapter(HTTPAdapter):
    """Sends every connection of a host to the address HttpClient.check found for it."""

    def __init__(self, pins: dict[str, str], **kwargs: Any) -> None:
        self.pins = pins
        super().__init__(**kwargs)

    def get_connection_with_tls_context(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        pool = super().get_connection_with_tls_context(request, *args, **kwargs)
        address = self.pins.get(urlsplit(request.url).hostname or "", "")
        # One pool per scheme+host+port, so the pin can live on the pool.
        if pool.conn_kw.get("pinned_address", "") != address:
            secure = pool.scheme == "https"
            pool.ConnectionCls = _PinnedHTTPSConnection if secure else _PinnedHTTPConnection
            pool.conn_kw["pinned_address"] = address
        return pool


def _reason(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection dropped mid-response"
    return "connection refused or dropped"
