"""The OneRoster REST client at the HTTP choke point (`responses`): paging, auth, errors."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint

from connectors.base import ConnectorError
from connectors.classlink.connector import classlink_settings
from connectors.oneroster_api.client import ClientSettings, OneRosterClient, Refused
from connectors.oneroster_api.connector import settings_from_config

API = "https://roster.example.test/ims/oneroster/v1p1"
TOKEN_URL = "https://roster.example.test/oauth/token"
SECRET = "client-secret-that-must-not-leak"


@pytest.fixture(autouse=True)
def _public_hosts(settings: Any) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True  # made-up hosts: skip DNS


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(sleeps: Sleeps | None = None, **overrides: Any) -> OneRosterClient:
    fields: dict[str, Any] = {
        "base_url": API,
        "client_id": "client-id",
        "client_secret": SECRET,
        "auth_method": "oauth2",
        "token_url": TOKEN_URL,
        "page_size": 2,
        "concurrency": 1,
    }
    fields.update(overrides)
    return OneRosterClient(ClientSettings(**fields), sleep=Sleeps() if sleeps is None else sleeps)


def token_endpoint(*tokens: str) -> None:
    for token in tokens or ("token-1",):
        responses.post(TOKEN_URL, json={"access_token": token, "expires_in": 3600})


def users(n: int) -> list[dict[str, Any]]:
    return [{"sourcedId": f"u{i}"} for i in range(n)]


def serve(
    path: str,
    items: list[dict[str, Any]],
    *,
    key: str = "users",
    total: bool = True,
    links: bool = False,
    cap: int | None = None,
    ignore_offset: bool = False,
    extra_total: int = 0,
) -> list[int]:
    """A paged collection; returns the list the offsets asked for are appended to."""
    asked: list[int] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        limit, offset = int(query["limit"][0]), int(query["offset"][0])
        asked.append(offset)
        if cap:
            limit = min(limit, cap)
        if ignore_offset:
            offset = 0
        headers = {}
        if total:
            headers["X-Total-Count"] = str(len(items) + extra_total)
        if links:
            rels = ['<https://elsewhere.example/ims/oneroster/v1p1/x?offset=0>; rel="first"']
            if offset + limit < len(items):
                nxt = f"https://elsewhere.example/x?limit={limit}&offset={offset + limit}"
                rels.append(f'<{nxt}>; rel="next"')
            headers["Link"] = ", ".join(rels)
        return 200, headers, json.dumps({key: items[offset : offset + limit]})

    responses.add_callback(responses.GET, re.compile(re.escape(f"{API}/{path}") + r"\?"), answer)
    return asked


def ids(client: OneRosterClient, path: str = "users") -> list[str]:
    return [obj["sourcedId"] for _, obj in client.collection(path, "users")]


# -- paging -----------------------------------------------------------------------------------


@responses.activate
def test_it_stops_paging_at_the_announced_total() -> None:
    token_endpoint()
    asked = serve("users", users(5))
    client = make_client()

    collection = client.collection("users", "users")
    found = [obj["sourcedId"] for _, obj in collection]

    assert found == [f"u{i}" for i in range(5)]
    assert asked == [0, 2, 4]
    assert (collection.announced, collection.received) == (5, 5)


@responses.activate
def test_it_fetches_pages_concurrently_when_the_total_is_known_and_keeps_their_order() -> None:
    token_endpoint()
    asked = serve("users", users(9))
    client = make_client(concurrency=3)

    collection = client.collection("users", "users")
    found = [obj["sourcedId"] for _, obj in collection]

    assert found == [f"u{i}" for i in range(9)]
    assert sorted(asked) == [0, 2, 4, 6, 8]
    assert collection.concurrent


@responses.activate
def test_it_pages_by_what_a_capped_server_sends_not_by_what_it_asked() -> None:
    token_endpoint()
    asked = serve("users", users(7), cap=2)
    client = make_client(page_size=5, concurrency=2)

    assert ids(client) == [f"u{i}" for i in range(7)]
    assert sorted(asked) == [0, 2, 4, 6]


@responses.activate
def test_it_stops_when_the_link_header_has_no_next_and_never_follows_its_host() -> None:
    token_endpoint()
    asked = serve("users", users(5), total=False, links=True)

    assert ids(make_client()) == [f"u{i}" for i in range(5)]
    assert asked == [0, 2, 4]
    assert all(urlsplit(c.request.url).hostname == "roster.example.test" for c in responses.calls)


@responses.activate
def test_without_total_or_links_it_confirms_a_short_first_page_with_one_more_request() -> None:
    token_endpoint()
    asked = serve("users", users(1), total=False)

    assert ids(make_client()) == ["u0"]
    assert asked == [0, 1]  # the server might cap pages at 1: ask once more, get nothing


@responses.activate
def test_without_total_or_links_it_stops_at_a_page_shorter_than_the_ones_before() -> None:
    token_endpoint()
    asked = serve("users", users(5), total=False, cap=2)

    assert ids(make_client(page_size=10)) == [f"u{i}" for i in range(5)]
    assert asked == [0, 2, 4]


@responses.activate
def test_it_fails_clearly_instead_of_looping_when_the_server_ignores_offset() -> None:
    token_endpoint()
    asked = serve("users", users(6), total=False, ignore_offset=True)

    with pytest.raises(ConnectorError, match="ignore offset") as caught:
        ids(make_client())

    assert asked == [0, 2]
    assert caught.value.permanent is True


@responses.activate
def test_it_detects_an_ignored_offset_among_concurrent_pages_too() -> None:
    token_endpoint()
    serve("users", users(6), ignore_offset=True)

    with pytest.raises(ConnectorError, match="same page of /users for offset 0 and offset 2"):
        ids(make_client(concurrency=3))


@responses.activate
def test_it_reports_what_it_received_when_the_server_runs_dry_before_its_total() -> None:
    token_endpoint()
    serve("users", users(3), extra_total=4)

    collection = make_client(concurrency=2).collection("users", "users")
    list(collection)

    assert (collection.announced, collection.received) == (7, 3)


@responses.activate
def test_it_takes_the_one_list_when_the_envelope_key_is_not_the_endpoint_name() -> None:
    token_endpoint()
    responses.get(f"{API}/classes/c1/teachers", json={"users": [{"sourcedId": "t1"}]})

    page = make_client().page("classes/c1/teachers", "teachers", offset=0)

    assert page.items == [{"sourcedId": "t1"}]


@responses.activate
def test_it_says_when_an_answer_is_not_json() -> None:
    token_endpoint()
    responses.get(f"{API}/orgs", body="<html>login</html>", content_type="text/html")

    with pytest.raises(ConnectorError, match="not JSON .*check baseUrl"):
        make_client().page("orgs", "orgs", offset=0)


# -- OAuth 2 ----------------------------------------------------------------------------------


@responses.activate
def test_it_caches_the_token_until_it_is_about_to_expire() -> None:
    token_endpoint("token-1", "token-2")
    responses.get(re.compile(re.escape(f"{API}/orgs")), json={"orgs": []})
    now = [1000.0]
    client = make_client()
    client.auth.clock = lambda: now[0]

    client.page("orgs", "orgs", offset=0)
    client.page("orgs", "orgs", offset=0)
    now[0] += 3600 - 30  # within the safety margin of expiry
    client.page("orgs", "orgs", offset=0)

    tokens = [
        c.request.headers.get("Authorization") for c in responses.calls if "orgs" in c.request.url
    ]
    assert tokens == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    assert client.auth.fetched == 2


@responses.activate
def test_it_fetches_a_fresh_token_once_when_the_server_refuses_the_cached_one() -> None:
    token_endpoint("stale", "fresh")
    orgs = f"{API}/orgs"
    responses.get(re.compile(re.escape(orgs)), status=401, json={})
    responses.get(re.compile(re.escape(orgs)), json={"orgs": [{"sourcedId": "o1"}]})

    page = make_client().page("orgs", "orgs", offset=0)

    assert page.items == [{"sourcedId": "o1"}]
    data_calls = [c for c in responses.calls if c.request.url.startswith(orgs)]
    assert [c.request.headers["Authorization"] for c in data_calls] == [
        "Bearer stale",
        "Bearer fresh",
    ]


@responses.activate
def test_a_second_401_is_a_permanent_error_naming_the_credentials_never_the_secret() -> None:
    token_endpoint("t-1", "t-2")
    envelope = {
        "statusInfoSet": [
            {
                "imsx_codeMajor": "failure",
                "imsx_description": f"Token rejected (secret was {SECRET})",
                "imsx_CodeMinor": {
                    "imsx_codeMinorField": [{"imsx_codeMinorFieldValue": "unauthorisedrequest"}]
                },
            }
        ]
    }
    responses.get(re.compile(re.escape(f"{API}/orgs")), status=401, json=envelope)

    with pytest.raises(ConnectorError) as caught:
        make_client().page("orgs", "orgs", offset=0)

    message = caught.value.message
    assert message.startswith("The OneRoster server rejected the client id/secret")
    assert "unauthorisedrequest" in message
    assert SECRET not in message and "********" in message
    assert caught.value.permanent is True


@responses.activate
def test_a_token_endpoint_refusal_says_to_check_the_credentials() -> None:
    responses.post(TOKEN_URL, status=401, json={"error": "invalid_client"})

    with pytest.raises(ConnectorError) as caught:
        make_client().page("orgs", "orgs", offset=0)

    assert caught.value.message == (
        "the OneRoster server rejected the client id/secret at the token URL "
        "(HTTP 401: invalid_client): check clientId and clientSecret"
    )


@responses.activate
def test_it_sends_the_client_credentials_grant_with_basic_auth_and_scope() -> None:
    token_endpoint()
    responses.get(re.compile(re.escape(f"{API}/orgs")), json={"orgs": []})

    make_client(scope="https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly").page(
        "orgs", "orgs", offset=0
    )

    token_request = responses.calls[0].request
    assert token_request.headers["Authorization"].startswith("Basic ")
    assert parse_qs(token_request.body) == {
        "grant_type": ["client_credentials"],
        "scope": ["https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly"],
    }


# -- errors -----------------------------------------------------------------------------------


@responses.activate
def test_a_404_on_the_base_path_says_there_is_no_oneroster_api_there() -> None:
    token_endpoint()
    responses.get(re.compile(re.escape(f"{API}/orgs")), status=404, body="Not Found")

    with pytest.raises(ConnectorError) as caught:
        make_client().page("orgs", "orgs", offset=0)

    assert caught.value.message.startswith("No OneRoster API at this URL")
    assert "check baseUrl" in caught.value.message
    assert caught.value.permanent is True


@responses.activate
def test_a_403_carries_the_imsx_description() -> None:
    token_endpoint()
    envelope = {
        "imsx_codeMajor": "failure",
        "imsx_description": "Application not approved for this district",
        "imsx_CodeMinor": {"imsx_codeMinorField": {"imsx_codeMinorFieldValue": "forbidden"}},
    }
    responses.get(re.compile(re.escape(f"{API}/users")), status=403, json=envelope)

    with pytest.raises(ConnectorError) as caught:
        make_client().page("users", "users", offset=0)

    assert caught.value.message == (
        "The OneRoster server refused access to /users (HTTP 403: forbidden: Application not "
        "approved for this district): check that this application may read rosters"
    )


@responses.activate
def test_a_refusal_the_caller_handles_is_raised_as_refused() -> None:
    token_endpoint()
    responses.get(re.compile(re.escape(f"{API}/enrollments")), status=405)

    with pytest.raises(Refused) as caught:
        make_client().collection("enrollments", "enrollments", refusals=frozenset({405})).start()

    assert caught.value.status == 405


@responses.activate
def test_it_waits_out_a_429_with_a_text_body_and_goes_on() -> None:
    token_endpoint()
    responses.get(
        re.compile(re.escape(f"{API}/orgs")),
        status=429,
        body="Rate limit exceeded",
        headers={"Retry-After": "3"},
    )
    responses.get(re.compile(re.escape(f"{API}/orgs")), json={"orgs": [{"sourcedId": "o1"}]})
    sleeps = Sleeps()

    page = make_client(sleeps).page("orgs", "orgs", offset=0)

    assert page.items == [{"sourcedId": "o1"}]
    assert sleeps == [3.0]


@responses.activate
def test_server_errors_are_retried_then_fail_transiently() -> None:
    token_endpoint()
    responses.get(re.compile(re.escape(f"{API}/orgs")), status=502)
    sleeps = Sleeps()

    with pytest.raises(ConnectorError) as caught:
        make_client(sleeps).page("orgs", "orgs", offset=0)

    assert caught.value.permanent is False
    assert "HTTP 502" in caught.value.message
    assert len(sleeps) == 4


# -- OAuth 1.0a, verified the way a server verifies it -----------------------------------------


class Validator(RequestValidator):
    enforce_ssl = True
    client_key_length = (3, 50)
    nonce_length = (8, 64)
    dummy_client = "dummy"

    def __init__(self, secret: str, methods: tuple[str, ...]) -> None:
        super().__init__()
        self.secret = secret
        self.methods = methods
        self.nonces: set[str] = set()

    @property
    def safe_characters(self) -> set[str]:
        return set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:
        return self.methods

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key == "client-id"

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return self.secret

    def validate_timestamp_and_nonce(
        self, client_key: str, timestamp: str, nonce: str, request: Any, **kwargs: Any
    ) -> bool:
        fresh = nonce not in self.nonces
        self.nonces.add(nonce)
        return fresh


def oauth1_server(secret: str = SECRET, methods: tuple[str, ...] = ("HMAC-SHA256",)) -> list:
    """Answers /orgs when the signature verifies; returns the verified oauth params."""
    endpoint = SignatureOnlyEndpoint(Validator(secret, methods))
    verified: list[dict[str, str]] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        valid, checked = endpoint.validate_request(
            request.url, request.method, None, dict(request.headers)
        )
        if not valid:
            return 401, {}, json.dumps({"imsx_description": "Invalid signature"})
        verified.append(dict(checked.oauth_params))
        return 200, {"X-Total-Count": "1"}, json.dumps({"orgs": [{"sourcedId": "o1"}]})

    responses.add_callback(responses.GET, re.compile(re.escape(f"{API}/orgs")), answer)
    return verified


@responses.activate
def test_oauth1_signs_with_hmac_sha256_over_every_query_parameter() -> None:
    verified = oauth1_server()
    client = make_client(auth_method="oauth1", sort="sourcedId")

    page = client.page("orgs", "orgs", offset=40, filter="dateLastModified>'2026-01-01T00:00:00Z'")

    assert page.items == [{"sourcedId": "o1"}]
    assert verified[0]["oauth_signature_method"] == "HMAC-SHA256"
    assert verified[0]["oauth_version"] == "1.0"
    sent = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert set(sent) == {"limit", "offset", "filter", "sort"}  # all inside the verified signature


@responses.activate
def test_oauth1_signs_with_hmac_sha1_when_configured() -> None:
    verified = oauth1_server(methods=("HMAC-SHA1",))

    make_client(auth_method="oauth1", signature_method="HMAC-SHA1").page("orgs", "orgs", offset=0)

    assert verified[0]["oauth_signature_method"] == "HMAC-SHA1"


@responses.activate
def test_a_signature_made_with_the_wrong_secret_does_not_verify() -> None:
    verified = oauth1_server(secret="the-secret-the-server-knows")

    with pytest.raises(ConnectorError) as caught:
        make_client(auth_method="oauth1").page("orgs", "orgs", offset=0)

    assert verified == []
    assert "rejected the client id/secret (the OAuth 1.0a signature" in caught.value.message


@responses.activate
def test_classlink_signs_like_its_samples_without_oauth_version() -> None:
    verified = oauth1_server()
    settings = classlink_settings(
        {"baseUrl": "https://roster.example.test", "clientId": "client-id", "clientSecret": SECRET}
    )
    client = OneRosterClient(settings, sleep=Sleeps())

    client.page("orgs", "orgs", offset=0, limit=1)

    assert settings.base_url == API
    assert "oauth_version" not in verified[0]
    assert verified[0]["oauth_signature_method"] == "HMAC-SHA256"


@responses.activate
def test_classlinks_proxy_sends_its_access_token_as_a_bearer() -> None:
    responses.get(re.compile(re.escape(f"{API}/orgs")), json={"orgs": []})
    settings = classlink_settings(
        {"baseUrl": API, "clientId": "app", "accessToken": "proxy-token", "authMethod": "proxy"}
    )

    OneRosterClient(settings, sleep=Sleeps()).page("orgs", "orgs", offset=0)

    assert responses.calls[0].request.headers["Authorization"] == "Bearer proxy-token"


def test_config_mistakes_are_reported_before_any_request() -> None:
    with pytest.raises(ConnectorError, match="missing clientSecret, tokenUrl"):
        settings_from_config({"baseUrl": API, "clientId": "x"})
    with pytest.raises(ConnectorError, match="pageSize must be from 1 to 10000"):
        settings_from_config(
            {
                "baseUrl": API,
                "clientId": "x",
                "clientSecret": "y",
                "tokenUrl": TOKEN_URL,
                "pageSize": 0,
            }
        )
    with pytest.raises(ConnectorError, match="signatureMethod"):
        make_client(auth_method="oauth1", signature_method="RSA-SHA1")
