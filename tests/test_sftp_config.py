"""The SFTP settings that need no server: host key pins, private keys, the address check."""

from __future__ import annotations

import base64
import socket
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connectors.base import ConnectorError
from connectors.oneroster_csv import connector as connector_module
from connectors.oneroster_csv.connector import OneRosterCsvConnector
from connectors.oneroster_csv.sftp import (
    fingerprint,
    load_private_key,
    parse_host_keys,
)
from tests.sshd_server import make_key

ED25519 = make_key("ed25519").public


def config(**sftp: Any) -> dict[str, Any]:
    block = {"host": "127.0.0.1", "port": 22, "username": "u", "password": "pw", "hostKey": ED25519}
    return {"sftp": block | sftp, "remotePath": "/exports"}


def test_it_reads_pins_as_pub_lines_known_hosts_lines_and_fingerprints() -> None:
    expected = fingerprint(base64.b64decode(ED25519.split()[1]))
    text = "\n".join(
        [
            "# from manage.py sftp_hostkey",
            f"{ED25519} root@sftp",
            f"[sftp.example.org]:2222,203.0.113.9 {ED25519}",
            f"  {expected}  ",
            "",
        ]
    )

    pins = parse_host_keys(text)

    assert [(p.fingerprint, p.key_type) for p in pins] == [
        (expected, "ssh-ed25519"),
        (expected, "ssh-ed25519"),
        (expected, None),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "hostKey holds no key"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "expected a key type"),
        (f"@cert-authority *.example.org {ED25519}", "@cert-authority lines"),
        ("ssh-ed25519 AAAAC3NzaC1yc2E=", "the ssh-ed25519 key text is damaged"),
        ("SHA256:tooshort", "is not a SHA256 fingerprint"),
    ],
)
def test_it_refuses_host_key_text_it_cannot_pin(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_host_keys(text)


def test_it_refuses_an_internal_sftp_host_without_connecting(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = False

    def no_connection(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("connected to an internal address")

    monkeypatch.setattr(socket, "create_connection", no_connection)

    with pytest.raises(ConnectorError) as caught:
        OneRosterCsvConnector(config(), options={}).test_connection()

    assert caught.value.permanent
    assert caught.value.message == (
        "config.sftp.host: the host '127.0.0.1' resolves to 127.0.0.1, an internal address; "
        "SIS Sync only connects to public hosts"
    )


def test_it_needs_a_remote_path() -> None:
    without = config()
    del without["remotePath"]

    with pytest.raises(ConnectorError, match="config.remotePath is missing"):
        OneRosterCsvConnector(without, options={}).test_connection()


def test_it_reads_pem_private_keys_as_well_as_openssh_ones() -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # BEGIN RSA PRIVATE KEY
        serialization.NoEncryption(),
    )
    ec_pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )

    assert load_private_key(rsa_pem.decode()).get_name() == "ssh-rsa"
    assert load_private_key(ec_pem.decode(), "secret").get_name() == "ecdsa-sha2-nistp384"
    assert load_private_key(make_key("ed25519").private).get_name() == "ssh-ed25519"


@pytest.mark.parametrize(
    ("passphrase", "says"),
    [
        ("", "config.sftp.privateKey is encrypted: set privateKeyPassphrase"),
        ("wrong", "config.sftp.privateKey cannot be read"),
    ],
)
def test_it_says_what_is_wrong_with_a_locked_key(passphrase: str, says: str) -> None:
    locked = make_key("ecdsa", passphrase="hunter2-correct").private

    with pytest.raises(ConnectorError) as caught:
        load_private_key(locked, passphrase)

    assert caught.value.message.startswith(says)
    assert caught.value.permanent
    assert "hunter2" not in caught.value.message


def test_it_refuses_text_that_is_not_a_private_key() -> None:
    with pytest.raises(ConnectorError, match="config.sftp.privateKey cannot be read"):
        load_private_key(ED25519)


def test_it_gives_up_on_a_server_that_never_speaks_ssh_as_a_transient_error(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    monkeypatch.setattr(connector_module, "RETRY_DELAYS", (0.0, 0.0))
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, then says nothing
    port = silent.getsockname()[1]
    started = time.monotonic()

    try:
        extraction = OneRosterCsvConnector(config(port=port, timeout=0.5), options={}).extract(
            mode="full", state={}
        )
        with pytest.raises(ConnectorError) as caught, extraction:
            pass
    finally:
        silent.close()

    assert caught.value.permanent is False
    assert caught.value.message.startswith(f"The SSH handshake with 127.0.0.1:{port} ")
    assert caught.value.message.endswith("(tried 3 times)")
    assert time.monotonic() - started < 10
