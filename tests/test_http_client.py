"""The HTTP choke point (connectors.http): waits, retries, refusals, limits, address checks."""

from __future__ import annotations

import email.utils
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import responses

from connectors import http as http_module
from connectors.base import ConnectorError
from connectors.http import HttpClient, retry_after_seconds

API = "https://roster.example.test/ims/oneroster/v1p1"


@pytest.fixture(autouse=True)
def _public_hosts(settings: Any) -> None:
    # `responses` answers for made-up hosts that DNS cannot resolve: skip the lookup.
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def client(sleeps: Sleeps, **kwargs: Any) -> HttpClient:
    return HttpClient(label="the OneRoster server", sleep=sleeps, **kwargs)


@responses.activate
def test_it_waits_as_long_as_a_429_asks_and_then_goes_on(sleeps: Sleeps) -> None:
    responses.get(
        f"{API}/users",
        status=429,
        body="Too Many Requests",
        content_type="text/plain",
        headers={"Retry-After": "7"},
    )
    responses.get(f"{API}/users", json={"users": []})

    response = client(sleeps).get(f"{API}/users")

    assert response.status_code == 200
    assert sleeps == [7.0]


@responses.activate
def test_it_waits_until_the_rate_limit_reset_when_there_is_no_retry_after(
    sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_module.time, "time", lambda: 1_700_000_000.0)
    responses.get(f"{API}/users", status=429, headers={"X-RateLimit-Reset": "1700000012"})
    responses.get(f"{API}/users", json={})

    client(sleeps).get(f"{API}/users")

    assert sleeps == [12.0]


def test_it_reads_retry_after_as_seconds_or_as_an_http_date() -> None:
    def answer(**headers: str) -> requests.Response:
        response = requests.Response()
        response.headers.update(headers)
        return response

    later = email.utils.formatdate(1_700_000_030, usegmt=True)
    assert retry_after_seconds(answer(**{"Retry-After": "2.5"})) == 2.5
    assert retry_after_seconds(answer(**{"Retry-After": later}), now=1_700_000_000) == 30.0
    assert retry_after_seconds(answer(**{"Retry-After": "soon"})) is None
    assert retry_after_seconds(answer(**{"X-RateLimit-Reset": "4"})) == 4.0
    assert retry_after_seconds(answer()) is None


@responses.activate
def test_it_gives_up_when_429s_never_stop(sleeps: Sleeps) -> None:
    responses.get(f"{API}/users", status=429, body="slow down")

    with pytest.raises(ConnectorError) as caught:
        client(sleeps, max_waits=3).get(f"{API}/users")

    assert "HTTP 429" in caught.value.message
    assert caught.value.permanent is False
    assert len(sleeps) == 3


@responses.activate
def test_it_retries_server_errors_with_growing_jittered_backoff_then_succeeds(
    sleeps: Sleeps,
) -> None:
    for _ in range(3):
        responses.get(f"{API}/users", status=503)
    responses.get(f"{API}/users", json={"users": []})

    response = client(sleeps, backoff=1.0).get(f"{API}/users")

    assert response.status_code == 200
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps, start=1):
        assert 0 <= slept <= 2 ** (attempt - 1)


@responses.activate
def test_it_fails_transiently_after_the_last_retry_without_leaking_the_query(
    sleeps: Sleeps,
) -> None:
    responses.get(f"{API}/users", status=500)

    with pytest.raises(ConnectorError) as caught:
        client(sleeps, max_retries=2).get(f"{API}/users?access_token=hunter2-secret")

    assert caught.value.permanent is False
    assert caught.value.message == (
        f"the OneRoster server failed with HTTP 500 at {API}/users after 3 tries"
    )
    assert len(responses.calls) == 3


@responses.activate
def test_it_retries_dropped_connections_then_says_the_server_did_not_answer(
    sleeps: Sleeps,
) -> None:
    responses.get(f"{API}/users", body=requests.ConnectionError("reset by peer"))

    with pytest.raises(ConnectorError) as caught:
        client(sleeps, max_retries=2).get(f"{API}/users")

    assert caught.value.permanent is False
    assert "did not answer" in caught.value.message
    assert len(sleeps) == 2


@responses.activate
def test_it_treats_a_bad_certificate_as_permanent(sleeps: Sleeps) -> None:
    responses.get(f"{API}/users", body=requests.exceptions.SSLError("certificate verify failed"))

    with pytest.raises(ConnectorError) as caught:
        client(sleeps).get(f"{API}/users")

    assert caught.value.permanent is True
    assert "valid TLS certificate" in caught.value.message
    assert sleeps == []


@responses.activate
def test_it_makes_other_client_errors_permanent_in_the_callers_words(sleeps: Sleeps) -> None:
    responses.get(f"{API}/users", status=403, json={"error": "nope"})

    with pytest.raises(ConnectorError) as caught:
        client(sleeps, describe_error=lambda r: f"refused: {r.status_code}").get(f"{API}/users")

    assert caught.value.permanent is True
    assert caught.value.message == "refused: 403"
    assert sleeps == []


@responses.activate
def test_it_hands_back_statuses_the_caller_handles(sleeps: Sleeps) -> None:
    responses.get(f"{API}/enrollments", status=404)

    response = client(sleeps).get(f"{API}/enrollments", ok_statuses=frozenset({404}))

    assert response.status_code == 404


@responses.activate
def test_it_follows_a_redirect_on_the_same_host(sleeps: Sleeps) -> None:
    responses.get(f"{API}/users", status=302, headers={"Location": "/v2/users"})
    responses.get("https://roster.example.test/v2/users", json={"users": [1]})

    response = client(sleeps).get(f"{API}/users")

    assert response.json() == {"users": [1]}


@responses.activate
def test_it_refuses_a_redirect_to_another_host(sleeps: Sleeps) -> None:
    responses.get(
        f"{API}/users", status=302, headers={"Location": "http://169.254.169.254/latest/"}
    )

    with pytest.raises(ConnectorError, match="redirected .* to another host"):
        client(sleeps).get(f"{API}/users")

    assert len(responses.calls) == 1


@responses.activate
def test_it_refuses_a_body_larger_than_the_limit(sleeps: Sleeps) -> None:
    responses.get(f"{API}/users", body=b"x" * 5000)

    with pytest.raises(ConnectorError, match="larger than"):
        client(sleeps, max_bytes=4096).get(f"{API}/users")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://169.254.169.254/latest/"]
)
def test_it_refuses_internal_addresses_unless_they_are_allowed(
    settings: Any, sleeps: Sleeps, url: str
) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = False

    with pytest.raises(ConnectorError, match="internal address") as caught:
        client(sleeps).get(url)

    assert caught.value.permanent is True


class _EchoHost(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5

    def do_GET(self) -> None:  # noqa: N802
        body = self.headers["Host"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def echo_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHost)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_it_connects_to_the_address_it_checked_not_to_a_second_dns_answer(
    settings: Any, sleeps: Sleeps, echo_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = False
    checked: list[str] = []

    def check_host(host: str, port: int | None = None) -> list[str]:
        checked.append(host)
        return ["127.0.0.1"]  # what the check approved; DNS itself knows no such name

    monkeypatch.setattr(http_module, "check_host", check_host)
    http = client(sleeps)

    first = http.get(f"http://roster.invalid:{echo_server}/a")
    second = http.get(f"http://roster.invalid:{echo_server}/b")

    assert first.text == second.text == f"roster.invalid:{echo_server}"  # the Host header kept
    assert checked == ["roster.invalid"]  # checked once, then pinned
