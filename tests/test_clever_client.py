"""The Clever client at the HTTP choke point (`responses`): paging, tokens, errors, limits."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
import responses
from django.core.cache import cache
from responses import matchers

from connectors.base import ConnectorError
from connectors.clever.client import CleverClient, CleverSettings
from connectors.clever.ratelimit import SharedBucket, TokenBucket, token_key

API = "https://api.clever.com"
TOKEN_URL = "https://clever.com/oauth/tokens"
DISTRICT = "5f00000000000000000000d1"
TOKEN = "t0ken-0000000000000000000000000000000001"
NEW_TOKEN = "t0ken-0000000000000000000000000000000002"


@pytest.fixture(autouse=True)
def _no_dns(settings: Any) -> None:
    # connectors.netcheck resolves hosts unless private hosts are allowed; tests have no DNS.
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(sleeps: Sleeps | None = None, **config: Any) -> CleverClient:
    config = {"districtId": DISTRICT, "accessToken": TOKEN, **config}
    sleep = sleeps if sleeps is not None else Sleeps()
    return CleverClient.from_config(config, sleep=sleep, max_retries=2, backoff=0.01)


def page(records: list[dict[str, Any]], next_uri: str | None = None) -> dict[str, Any]:
    links = [{"rel": "self", "uri": "/v3.0/whatever"}]
    if next_uri:
        links.append({"rel": "next", "uri": next_uri})
    return {"data": [{"data": r, "uri": f"/v3.0/x/{r['id']}"} for r in records], "links": links}


def bearer(token: str) -> Any:
    return matchers.header_matcher({"Authorization": f"Bearer {token}"})


# -- config ---------------------------------------------------------------------------------


def test_it_reads_the_config_with_clevers_defaults() -> None:
    s = CleverSettings.from_config({"districtId": DISTRICT, "clientId": "c", "clientSecret": "s"})
    assert (s.base_url, s.token_url, s.page_size) == (API, TOKEN_URL, 1000)
    local = CleverSettings.from_config(
        {"districtId": DISTRICT, "accessToken": "x", "baseUrl": "http://127.0.0.1:8123/v3.0/"}
    )
    assert (local.base_url, local.token_url) == (
        "http://127.0.0.1:8123",
        "http://127.0.0.1:8123/oauth/tokens",
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"accessToken": "x"}, "no districtId"),
        ({"districtId": DISTRICT}, "needs an accessToken, or the app's clientId and clientSecret"),
        ({"districtId": DISTRICT, "accessToken": "x", "pageSize": 10_001}, "1 to 10,000"),
        ({"districtId": DISTRICT, "accessToken": "x", "pageSize": "50"}, "1 to 10,000"),
        ({"districtId": DISTRICT, "accessToken": "x", "baseUrl": "ftp://x"}, "must be a URL"),
        ({"districtId": DISTRICT, "accessToken": "x", "baseUrl": f"{API}/api"}, "without a path"),
    ],
)
def test_it_refuses_a_config_it_cannot_use(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorError, match=message):
        CleverSettings.from_config(config)


# -- paging ---------------------------------------------------------------------------------


@responses.activate
def test_it_follows_relative_next_links_joined_to_the_api_origin() -> None:
    first = responses.get(
        f"{API}/v3.0/users",
        json=page(
            [{"id": "u1"}, {"id": "u2"}], "/v3.0/users?limit=2&role=student&starting_after=u2"
        ),
        match=[matchers.query_param_matcher({"limit": "2", "role": "student"}), bearer(TOKEN)],
    )
    second = responses.get(
        f"{API}/v3.0/users",
        json=page([{"id": "u3"}]),
        match=[
            matchers.query_param_matcher({"limit": "2", "role": "student", "starting_after": "u2"})
        ],
    )

    records = list(client(pageSize=2).records("users", {"role": "student"}))

    assert [r["id"] for r in records] == ["u1", "u2", "u3"]
    assert first.call_count == second.call_count == 1


@responses.activate
def test_it_stops_at_an_empty_page_even_with_a_next_link() -> None:
    responses.get(
        f"{API}/v3.0/schools", json=page([{"id": "s1"}], "/v3.0/schools?starting_after=s1")
    )
    empty = responses.get(
        f"{API}/v3.0/schools",
        json=page([], "/v3.0/schools?starting_after=s1"),
        match=[matchers.query_param_matcher({"starting_after": "s1"})],
    )

    assert [r["id"] for r in client().records("schools")] == ["s1"]
    assert empty.call_count == 1


@responses.activate
def test_it_refuses_a_next_link_that_loops_or_leads_to_another_host() -> None:
    loop = "/v3.0/schools?starting_after=s1"
    responses.get(f"{API}/v3.0/schools", json=page([{"id": "s1"}], loop))
    with pytest.raises(ConnectorError, match="same next-page link twice"):
        list(client().records("schools"))

    responses.reset()
    responses.get(f"{API}/v3.0/users", json=page([{"id": "u1"}], "https://evil.example/v3.0/u"))
    with pytest.raises(ConnectorError, match="another host") as caught:
        list(client().records("users"))
    assert TOKEN not in caught.value.message


@responses.activate
def test_it_checks_the_district_of_the_token() -> None:
    responses.get(f"{API}/v3.0/districts", json=page([{"id": "other", "name": "Elsewhere USD"}]))

    with pytest.raises(ConnectorError) as caught:
        client().district()

    assert caught.value.message == (
        f"This token belongs to Clever district other (Elsewhere USD), not to the configured "
        f"districtId {DISTRICT}: check the provider's districtId and token"
    )


# -- tokens ---------------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def tokens_body(*pairs: tuple[str, str]) -> dict[str, Any]:
    data = [
        {"id": f"rec-{n}", "owner": {"type": "district", "id": district}, "access_token": token}
        for n, (district, token) in enumerate(pairs)
    ]
    return {"data": data, "links": []}


CREDENTIALS = {"clientId": "app-id", "clientSecret": "app-secret-value"}


@responses.activate
def test_it_fetches_the_district_token_with_the_apps_credentials() -> None:
    fetch = responses.get(
        TOKEN_URL,
        json=tokens_body(("someone-else", "wrong-token-value"), (DISTRICT, TOKEN)),
        match=[
            matchers.query_param_matcher({"owner_type": "district", "district": DISTRICT}),
            matchers.header_matcher({"Authorization": basic("app-id", "app-secret-value")}),
        ],
    )
    responses.get(f"{API}/v3.0/schools", json=page([{"id": "s1"}]), match=[bearer(TOKEN)])

    c = CleverClient.from_config({"districtId": DISTRICT, **CREDENTIALS})

    assert [r["id"] for r in c.records("schools")] == ["s1"]
    assert [r["id"] for r in c.records("schools")] == ["s1"]
    assert fetch.call_count == 1  # fetched once, then kept


def requests_counted(token: str) -> int:
    """Requests the shared rate limit counted for a token in the last minute."""
    now = int(time.time())
    keys = [f"{token_key(token)}:{slot}" for slot in range(now - 59, now + 1)]
    return sum(cache.get_many(keys).values())


@responses.activate
def test_requests_are_counted_under_the_token_they_carry_in_the_shared_cache() -> None:
    responses.get(TOKEN_URL, json=tokens_body((DISTRICT, TOKEN)))
    responses.get(f"{API}/v3.0/schools", json=page([{"id": "s1"}]), match=[bearer(TOKEN)])

    c = CleverClient.from_config({"districtId": DISTRICT, **CREDENTIALS})
    list(c.records("schools"))
    list(c.records("schools"))

    assert isinstance(c.bucket, SharedBucket)
    assert requests_counted(TOKEN) == 2
    assert requests_counted(f"app:{CREDENTIALS['clientId']}") == 1  # the token's fetch


@responses.activate
def test_it_fetches_a_rotated_token_once_on_401_and_repeats_the_request() -> None:
    fetch = responses.get(TOKEN_URL, json=tokens_body((DISTRICT, NEW_TOKEN)))
    old = responses.get(
        f"{API}/v3.0/sections", status=401, json={"message": "Unauthorized"}, match=[bearer(TOKEN)]
    )
    new = responses.get(
        f"{API}/v3.0/sections", json=page([{"id": "x1"}]), match=[bearer(NEW_TOKEN)]
    )

    c = client(**CREDENTIALS)  # starts with the configured accessToken

    assert [r["id"] for r in c.records("sections")] == ["x1"]
    assert (old.call_count, fetch.call_count, new.call_count) == (1, 1, 1)


@responses.activate
def test_it_gives_up_after_one_refetch_with_an_admin_message_and_no_token() -> None:
    fetch = responses.get(TOKEN_URL, json=tokens_body((DISTRICT, NEW_TOKEN)))
    api = responses.get(
        f"{API}/v3.0/sections", status=401, json={"error": f"bad token {NEW_TOKEN}"}
    )

    with pytest.raises(ConnectorError) as caught:
        list(client(**CREDENTIALS).records("sections"))

    message = caught.value.message
    assert message.startswith(
        "Clever rejected the token: the district may have disconnected the app "
        "(a freshly fetched district token was rejected too)"
    )
    assert caught.value.permanent
    assert NEW_TOKEN not in message and TOKEN not in message and "********" in message
    assert (fetch.call_count, api.call_count) == (1, 2)


@responses.activate
def test_a_configured_token_alone_is_not_refetched() -> None:
    responses.get(f"{API}/v3.0/schools", status=401, json={"message": "Invalid token"})

    with pytest.raises(ConnectorError) as caught:
        list(client().records("schools"))

    assert caught.value.message == (
        "Clever rejected the token: the district may have disconnected the app, or the "
        "configured accessToken is wrong or was rotated (Clever said: Invalid token)"
    )


@responses.activate
def test_it_says_when_the_app_credentials_are_wrong_or_the_district_has_no_token() -> None:
    responses.get(
        TOKEN_URL,
        status=401,
        json={"error": "invalid_client", "error_description": "Client authentication failed"},
    )
    c = CleverClient.from_config({"districtId": DISTRICT, **CREDENTIALS})
    with pytest.raises(ConnectorError) as caught:
        c.fetch_token()
    assert caught.value.message == (
        "Clever rejected the app's clientId/clientSecret when asked for the district token: "
        "check them in Clever's developer dashboard "
        "(Clever said: invalid_client: Client authentication failed)"
    )
    assert "app-secret-value" not in caught.value.message

    responses.reset()
    responses.get(TOKEN_URL, json=tokens_body(("another-district", "zzzzzzzzzz")))
    with pytest.raises(ConnectorError, match="has no token for district .*disconnected it"):
        c.fetch_token()


# -- errors and limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            404,
            {"message": "Resource not found"},
            "Clever has no sections for this token: the data may have been unshared, or the "
            "token belongs to another district (Clever said: Resource not found)",
        ),
        (
            403,
            {"error": "Resource not in token's scopes"},
            "Clever refused access to sections: the app may lack Secure Sync, or the district "
            "has not shared this data with it (Clever said: Resource not in token's scopes)",
        ),
        (
            400,
            {"error": "invalid_request", "error_description": "bad starting_after"},
            "Clever rejected the request for sections "
            "(Clever said: invalid_request: bad starting_after)",
        ),
        (
            413,
            {"message": "Request Entity Too Large"},
            "Clever refused the page size: config.pageSize may be at most 10,000 "
            "(Clever said: Request Entity Too Large)",
        ),
        (
            404,
            "<!DOCTYPE html><html><body>Not here</body></html>",
            "Clever has no sections for this token: the data may have been unshared, or the "
            "token belongs to another district (Clever sent a web page, not data: check "
            "config.baseUrl)",
        ),
    ],
)
@responses.activate
def test_it_turns_every_error_shape_into_an_admin_sentence(
    status: int, body: Any, expected: str
) -> None:
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.get(f"{API}/v3.0/sections", status=status, **kwargs)

    with pytest.raises(ConnectorError) as caught:
        list(client().records("sections"))

    assert caught.value.message == expected
    assert caught.value.permanent


@responses.activate
def test_it_waits_out_a_429_with_a_plain_text_body_until_the_reset() -> None:
    sleeps = Sleeps()
    limited = responses.get(
        f"{API}/v3.0/schools",
        status=429,
        body="Too Many Requests",
        content_type="text/plain",
        # Two buckets at once, as Clever has sent: the later reset is the one to wait for.
        headers={"X-RateLimit-Reset": "30, 45", "X-RateLimit-Remaining": "0, 3"},
    )
    ok = responses.get(f"{API}/v3.0/schools", json=page([{"id": "s1"}]))

    assert [r["id"] for r in client(sleeps).records("schools")] == ["s1"]
    assert (limited.call_count, ok.call_count) == (1, 1)
    assert sleeps == [45.0]  # seconds from now (small numbers), the later bucket


@responses.activate
def test_it_retries_5xx_and_then_fails_as_transient() -> None:
    sleeps = Sleeps()
    responses.get(f"{API}/v3.0/terms", status=502, body="Bad Gateway")
    responses.get(f"{API}/v3.0/terms", json=page([{"id": "t1"}]))
    assert [r["id"] for r in client(sleeps).records("terms")] == ["t1"]
    assert len(sleeps) == 1

    responses.reset()
    responses.get(f"{API}/v3.0/terms", status=503, json={"message": "Service Unavailable"})
    with pytest.raises(ConnectorError) as caught:
        list(client().records("terms"))
    assert not caught.value.permanent
    assert "HTTP 503" in caught.value.message


@responses.activate
def test_it_says_when_an_answer_is_not_json() -> None:
    responses.get(f"{API}/v3.0/schools", body="<html>login</html>", content_type="text/html")

    with pytest.raises(
        ConnectorError, match="answer for schools is not JSON: check config.baseUrl"
    ):
        list(client().records("schools"))


def test_the_token_bucket_keeps_under_1200_requests_in_any_minute() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(2500):
        bucket.take()
        stamps.append(now[0])

    assert sum(1 for t in stamps if t < 1e-9) == 100  # the burst
    window = 0
    for i, start in enumerate(stamps):  # the busiest 60-second window
        while window < len(stamps) and stamps[window] < start + 60:
            window += 1
        assert window - i < 1200
    assert stamps[-1] == pytest.approx((2500 - 100) / 18.0)
