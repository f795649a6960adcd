"""How a OneRoster REST request is authorised: OAuth 2.0 client credentials, OAuth 1.0a, bearer.

Each scheme is a `requests` auth object that HttpClient applies to every request it sends
(redirect hops included). Signatures are computed by oauthlib, never by hand: with OAuth 1.0a
every query parameter (limit, offset, filter, sort) is part of the signed base string, because
oauthlib reads them from the URL being signed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import oauthlib.oauth1
import requests
from requests.auth import AuthBase
from requests_oauthlib import OAuth1

from connectors.base import ConnectorError
from connectors.http import HttpClient
from connectors.oneroster_api.errors import describe_status, redact

SIGNATURE_METHODS = {
    "HMAC-SHA256": oauthlib.oauth1.SIGNATURE_HMAC_SHA256,
    "HMAC-SHA1": oauthlib.oauth1.SIGNATURE_HMAC_SHA1,
}
EXPIRY_MARGIN = 60.0  # seconds before a token's announced expiry that we stop using it
DEFAULT_LIFETIME = 3600.0  # when the token response does not say


class _ClientWithoutVersion(oauthlib.oauth1.Client):
    """ClassLink's own samples sign without `oauth_version` (it is optional in RFC 5849)."""

    def get_oauth_params(self, request: Any) -> list[tuple[str, str]]:
        return [(k, v) for k, v in super().get_oauth_params(request) if k != "oauth_version"]


def oauth1(
    client_id: str, client_secret: str, *, signature_method: str, send_version: bool = True
) -> OAuth1:
    """Two-legged OAuth 1.0a (no token), signed in the Authorization header."""
    method = SIGNATURE_METHODS.get(signature_method.upper())
    if method is None:
        raise ConnectorError(
            f"signatureMethod must be HMAC-SHA256 or HMAC-SHA1, not {signature_method!r}"
        )
    return OAuth1(
        client_id,
        client_secret=client_secret,
        signature_method=method,
        signature_type=oauthlib.oauth1.SIGNATURE_TYPE_AUTH_HEADER,
        client_class=oauthlib.oauth1.Client if send_version else _ClientWithoutVersion,
    )


class Bearer(AuthBase):
    """A fixed bearer token (ClassLink's OAuth 2 proxy: the token does not expire)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class OAuth2ClientCredentials(AuthBase):
    """A client-credentials token, fetched when first needed and kept until shortly before it
    expires; `refresh(stale)` drops it after the server refused it (one refresh per 401).

    Thread-safe: the page fetchers share one token and only one of them fetches a new one.
    """

    def __init__(
        self,
        http: HttpClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str = "",
        client_auth: str = "basic",
        label: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.client_auth = client_auth
        self.label = label
        self.clock = clock
        self.fetched = 0  # tokens fetched (summaries, tests)
        self._token = ""
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def token(self) -> str:
        with self._lock:
            if not self._token or self.clock() >= self._expires:
                self._token, lifetime = self._fetch()
                self._expires = self.clock() + max(0.0, lifetime - EXPIRY_MARGIN)
            return self._token

    def current(self) -> str:
        return self._token

    def refresh(self, stale: str) -> None:
        """Forget `stale` (the token a request was refused with), unless a newer one came."""
        with self._lock:
            if self._token == stale:
                self._token = ""

    def secrets(self) -> list[str]:
        return [self.client_secret, self._token]

    def _fetch(self) -> tuple[str, float]:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        auth: Any = (self.client_id, self.client_secret)
        if self.client_auth == "post":
            data.update(client_id=self.client_id, client_secret=self.client_secret)
            auth = None
        response = self.http.request(
            "POST",
            self.token_url,
            data=data,
            auth=auth,
            headers={"Accept": "application/json"},
            ok_statuses=frozenset(range(400, 500)),
        )
        self.fetched += 1
        if response.status_code >= 400:
            raise ConnectorError(self._token_error(response))
        try:
            body = response.json()
            token = body["access_token"]
            lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME)
        except (ValueError, KeyError, TypeError):
            raise ConnectorError(
                f"{self.label}'s token URL did not answer with an OAuth 2 token "
                "(no access_token in the response): check tokenUrl"
            ) from None
        if not isinstance(token, str) or not token:
            raise ConnectorError(f"{self.label}'s token URL sent an empty access_token")
        return token, lifetime

    def _token_error(self, response: requests.Response) -> str:
        status = response.status_code
        detail = describe_status(response)
        if status in (400, 401, 403):
            message = (
                f"{self.label} rejected the client id/secret at the token URL "
                f"(HTTP {status}{detail}): check clientId and clientSecret"
            )
        elif status in (404, 405):
            message = (
                f"No OAuth 2 token endpoint at tokenUrl (HTTP {status}{detail}): check tokenUrl"
            )
        else:
            message = f"{self.label}'s token URL answered HTTP {status}{detail}"
        return redact(message, [self.client_secret])
