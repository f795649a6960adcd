"""Security guarantees (SPEC §2): outbound address checks, DNS rebinding, redirects, secrets in
logs, `check --deploy`. Zip-slip, symlinks and zip bombs are corpus cases (tests/corpus, zip:),
refused through both doors a zip comes in by.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import responses
import urllib3.util.connection
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from connectors import netcheck
from connectors.base import ConnectorError
from connectors.http import HttpClient
from connectors.netcheck import AddressNotAllowed, check_host
from connectors.oneroster_csv.connector import OneRosterCsvConnector
from sis_sync.errors import BadRequest
from sis_sync.provider_config import validate_config
from tests.conftest import SECRET_LOG

ROOT = Path(__file__).resolve().parent.parent

# Every kind of address a provider URL or SFTP host must never reach.
REFUSED = {
    "loopback": ["127.0.0.1", "127.8.9.10", "::1"],
    "RFC 1918": ["10.0.0.1", "10.255.255.254", "172.16.0.1", "172.31.255.1", "192.168.1.10"],
    "link-local": ["169.254.1.1", "fe80::1"],
    "cloud metadata": ["169.254.169.254", "fd00:ec2::254"],
    "carrier-grade NAT": ["100.64.0.1", "100.100.100.200", "100.127.255.254"],
    "this network": ["0.0.0.0", "0.1.2.3", "::"],
    "IPv6 unique local": ["fd00::1", "fc00::5"],
    "IPv4-mapped IPv6": [
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:100.64.0.1",
    ],
    "IPv4-compatible IPv6": ["::127.0.0.1", "::10.0.0.1"],
    "6to4 of an internal address": ["2002:7f00:1::1", "2002:a9fe:a9fe::1"],
    "NAT64 of an internal address": ["64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1"],
    "Teredo": ["2001:0:4136:e378:8000:63bf:80ff:fffe"],
    "multicast": ["224.0.0.1", "239.255.255.250", "ff02::1"],
    "reserved and broadcast": ["240.0.0.1", "255.255.255.255", "198.18.0.1"],
    "documentation": ["192.0.2.10", "2001:db8::1"],
}
REFUSED_ADDRESSES = [(kind, a) for kind, addresses in REFUSED.items() for a in addresses]
ALLOWED = ["8.8.8.8", "140.82.112.3", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
PUBLIC = "140.82.112.3"


def host_key_line() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


@pytest.fixture(autouse=True)
def _checks_on(settings: Any) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = False


class Resolver:
    """A DNS that answers `name` with the next of `answers` each time it is asked; every
    other name (IP literals included) is resolved by the real resolver."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, *answers: list[str]) -> None:
        self.name, self.answers, self.asked = name, list(answers), 0
        self.real = socket.getaddrinfo
        monkeypatch.setattr(netcheck.socket, "getaddrinfo", self)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        addresses = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (a, port or 0),
            )
            for a in addresses
        ]


# -- the address check ------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "address"), REFUSED_ADDRESSES)
def test_it_refuses_every_internal_address(kind: str, address: str) -> None:
    with pytest.raises(AddressNotAllowed, match="an internal address"):
        check_host(address, 443)


@pytest.mark.parametrize(("kind", "address"), REFUSED_ADDRESSES)
def test_it_refuses_a_name_whose_dns_answer_is_internal(
    kind: str, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Resolver(monkeypatch, "roster.district.example", [address])

    shown = re.escape(str(ipaddress.ip_address(address)))
    with pytest.raises(AddressNotAllowed, match=f"resolves to {shown}, an internal address"):
        check_host("roster.district.example", 443)


@pytest.mark.parametrize("address", ALLOWED)
def test_it_lets_public_addresses_through(address: str) -> None:
    assert check_host(address, 443) == [str(ipaddress.ip_address(address))]


def test_it_refuses_a_name_with_one_internal_answer_among_public_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Resolver(monkeypatch, "roster.district.example", [PUBLIC, "2606:4700::1", "10.0.0.7"])

    with pytest.raises(AddressNotAllowed, match="resolves to 10.0.0.7"):
        check_host("roster.district.example", 443)


def test_provider_config_refuses_internal_urls_and_sftp_hosts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Resolver(monkeypatch, "metadata.google.internal", ["169.254.169.254"])
    config = {"clientId": "c", "clientSecret": "s" * 12, "tokenUrl": "https://8.8.8.8/token"}

    with pytest.raises(BadRequest, match="config.baseUrl: the host 'metadata.google.internal'"):
        validate_config("ONEROSTER_API", config | {"baseUrl": "https://metadata.google.internal/"})
    with pytest.raises(BadRequest, match="config.baseUrl: .* resolves to 100.64.0.9"):
        validate_config("ONEROSTER_API", config | {"baseUrl": "https://100.64.0.9/ims"})
    sftp = {"username": "u", "password": "p" * 10, "hostKey": host_key_line()}
    with pytest.raises(BadRequest, match=r"config.sftp.host: .*::ffff:127.0.0.1"):
        validate_config(
            "ONEROSTER_CSV", {"remotePath": "/x", "sftp": sftp | {"host": "::ffff:127.0.0.1"}}
        )


# -- DNS rebinding: the address checked is the address connected to ---------------------------


class _Answers(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def internal_server() -> Iterator[int]:
    """An HTTP server on loopback: what a rebinding answer would point the client at."""
    _Answers.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_connects_to_the_checked_address_when_dns_rebinds(
    monkeypatch: pytest.MonkeyPatch, internal_server: int
) -> None:
    """DNS answers a public address to the check, then loopback: loopback is never reached."""
    resolver = Resolver(monkeypatch, "rebind.district.example", [PUBLIC], ["127.0.0.1"])
    connected: list[str] = []
    real_connect = urllib3.util.connection.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        connected.append(address[0])
        if address[0] == PUBLIC:  # no traffic leaves the machine: the public host refuses
            raise ConnectionRefusedError("refused (test)")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    client = HttpClient(label="the OneRoster server", max_retries=2, sleep=lambda s: None)

    with pytest.raises(ConnectorError, match="did not answer"):
        client.get(f"http://rebind.district.example:{internal_server}/ims/oneroster/v1p1/orgs")

    assert connected == [PUBLIC] * 3  # every try went to the checked address
    assert resolver.asked == 1  # resolved once, by the check
    assert _Answers.hits == []


def test_sftp_connects_to_the_checked_address_when_dns_rebinds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    Resolver(monkeypatch, "sftp.district.example", [PUBLIC], ["127.0.0.1"])
    connected: list[str] = []
    real_connect = socket.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        connected.append(address[0])
        if address[0] == PUBLIC:
            raise ConnectionRefusedError("refused (test)")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    sftp = {
        "host": "sftp.district.example",
        "port": port,
        "username": "district",
        "password": "not-used-here-1",
        "hostKey": host_key_line(),
    }
    connector = OneRosterCsvConnector({"sftp": sftp, "remotePath": "/x"}, options={})

    with pytest.raises(ConnectorError):
        connector.test_connection()

    assert connected and set(connected) == {PUBLIC}
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing ever knocked on the loopback port
    listener.close()


# -- redirects are checked hop by hop ---------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://127.0.0.1:6379/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://[::ffff:10.0.0.1]/",
        "http://localhost/admin",
        "https://api.other-vendor.example/ims/oneroster/v1p1/users",
    ],
)
def test_it_refuses_a_redirect_to_any_other_host_without_contacting_it(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Resolver(monkeypatch, "roster.district.example", [PUBLIC])
    origin = "https://roster.district.example/ims/oneroster/v1p1"
    responses.get(f"{origin}/users", status=302, headers={"Location": target})
    client = HttpClient(label="the OneRoster server", sleep=lambda s: None)

    with pytest.raises(ConnectorError, match="to another host .*refusing to follow"):
        client.get(f"{origin}/users")

    assert [call.request.url for call in responses.calls] == [f"{origin}/users"]


@responses.activate
def test_a_same_host_redirect_is_followed_to_the_address_checked_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver = Resolver(monkeypatch, "roster.district.example", [PUBLIC], ["127.0.0.1"])
    origin = "https://roster.district.example/ims/oneroster/v1p1"
    responses.get(f"{origin}/users", status=301, headers={"Location": "/v2/users"})
    responses.get("https://roster.district.example/v2/users", json={"users": []})
    client = HttpClient(label="the OneRoster server", sleep=lambda s: None)

    assert client.get(f"{origin}/users").json() == {"users": []}
    assert resolver.asked == 1  # the second hop was not resolved again: no rebinding there


# -- secrets never reach the logs -------------------------------------------------------------


def test_the_suite_wide_log_watch_catches_a_secret_in_a_log_line() -> None:
    """The check over the whole suite (tests/conftest.py) can fail: a secret logged is seen."""
    secret = "sftp-Passw0rd-" + Fernet.generate_key().decode()[:12]
    SECRET_LOG.remember({"sftp": {"password": secret}})
    before = len(SECRET_LOG.lines)
    logging.getLogger("connectors.oneroster_csv").warning("login as district with %s", secret)

    assert [line for s, line in SECRET_LOG.leaks() if s == secret]
    # Undo the deliberate leak so that the session's own verdict stays about the product.
    SECRET_LOG.lines[before:] = [line for line in SECRET_LOG.lines[before:] if secret not in line]
    SECRET_LOG.secrets.discard(secret)
    assert not [line for s, line in SECRET_LOG.leaks() if s == secret]


@pytest.mark.django_db
def test_the_log_watch_learns_the_secrets_of_every_provider_stored() -> None:
    """Not vacuous: whatever test stores a provider, its secrets are watched for."""
    from sis_sync.providers import provider_create
    from sis_sync.tenants import tenant_get_or_create

    secret = "rotating-client-secret-" + os.urandom(6).hex()
    provider_create(
        tenant=tenant_get_or_create(slug="watch"),
        provider_type="CLEVER",
        name="Clever",
        config={"districtId": "d1", "clientId": "c1", "clientSecret": secret},
    )
    assert secret in SECRET_LOG.secrets
    assert any("provider.created" in line for line in SECRET_LOG.lines)


# -- production settings ----------------------------------------------------------------------


def production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    env |= {
        "DEBUG": "false",
        "SECRET_KEY": Fernet.generate_key().decode() + Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "sis-sync.district.example",
        "SIS_SYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    return env | extra


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = check_deploy(production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_when_production_turns_https_off() -> None:
    """The check above can fail: switching the HTTPS settings off is reported."""
    result = check_deploy(production_env(SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0"))

    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout
    assert "security.W004" in result.stderr + result.stdout
