"""SFTP for OneRoster CSV bundles: connect, check the pinned host key, log in (paramiko).

The `sftp` block of an ONEROSTER_CSV config (SPEC §2):

- `host`, `port` (22), `username`;
- `privateKey`* (OpenSSH or PEM text; Ed25519, ECDSA or RSA) and/or `password`*; with both,
  the key is tried first. `privateKeyPassphrase`* unlocks an encrypted key (if it is not set,
  `password` is tried as the passphrase, as OpenSSH clients do);
- `hostKey`: the server's key, pinned. One or more lines, each either a public key as
  known_hosts or a `.pub` file carries it (`ssh-ed25519 AAAA…`, host names in front allowed)
  or an OpenSSH SHA256 fingerprint (`SHA256:…`, as `ssh-keygen -lf` prints it). Lines starting
  with `#` are comments. `manage.py sftp_hostkey HOST` prints lines to paste here;
- `timeout` (30): seconds for connecting, the SSH handshake, the login and each SFTP reply.

The presented host key is checked right after the key exchange, before any credential is
sent; a key that matches no pinned line is refused with its fingerprint in the message. We
build the Transport ourselves (not SSHClient) so that a fingerprint can be pinned and the host
key algorithm can be restricted to the pinned key's type. The TCP connection goes to an address
that `connectors.netcheck.check_host` accepted (SPEC §2), so DNS cannot swap in an internal one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import io
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import paramiko
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from connectors.base import ConnectorError
from connectors.netcheck import AddressNotAllowed, check_host

DEFAULT_PORT = 22
DEFAULT_TIMEOUT = 30.0

# Host key types we can pin -> the host key algorithms that present such a key.
KEY_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),  # an RSA key, signed with SHA-2 only
}


@dataclass(frozen=True)
class HostKeyPin:
    fingerprint: str  # "SHA256:…"
    key_type: str | None  # None when only the fingerprint was pinned


def fingerprint(blob: bytes) -> str:
    """The OpenSSH SHA256 fingerprint of a public key blob."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    return f"SHA256:{digest.rstrip('=')}"


def host_key_line(key: paramiko.PKey) -> str:
    """The line to pin for a key: `ssh-ed25519 AAAA…`."""
    return f"{key.get_name()} {key.get_base64()}"


def parse_host_keys(text: str) -> list[HostKeyPin]:
    """The pins in a `hostKey` value; ValueError naming the line that is not one."""
    pins = []
    for number, raw in enumerate(str(text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pins.append(_parse_pin(line, number))
    if not pins:
        raise ValueError(
            "hostKey holds no key: paste the line `manage.py sftp_hostkey HOST` prints, "
            "or the key's SHA256 fingerprint"
        )
    return pins


def _parse_pin(line: str, number: int) -> HostKeyPin:
    if line.upper().startswith("SHA256:"):
        digest = line.split()[0][7:]
        try:
            raw = base64.b64decode(digest + "=" * (-len(digest) % 4), validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 32:
            raise ValueError(f"hostKey line {number}: {line[:60]!r} is not a SHA256 fingerprint")
        return HostKeyPin(f"SHA256:{digest.rstrip('=')}", None)
    words = line.split()
    if words[0].startswith("@"):
        raise ValueError(
            f"hostKey line {number}: {words[0]} lines (certificate authorities, revoked keys) "
            "are not supported; pin the server's own key"
        )
    # "TYPE BASE64 [comment]", or a known_hosts line "HOSTS TYPE BASE64 [comment]".
    at = 0 if words[0] in KEY_ALGORITHMS else 1
    if len(words) < at + 2 or words[at] not in KEY_ALGORITHMS:
        raise ValueError(
            f"hostKey line {number}: expected a key type ({', '.join(KEY_ALGORITHMS)}) and "
            "its base64 text, or a SHA256: fingerprint"
        )
    key_type, text = words[at], words[at + 1]
    try:
        blob = base64.b64decode(text, validate=True)
        named = paramiko.Message(blob).get_text()
    except (binascii.Error, paramiko.SSHException, UnicodeDecodeError, IndexError):
        named = ""
    if named != key_type:
        raise ValueError(f"hostKey line {number}: the {key_type} key text is damaged")
    return HostKeyPin(fingerprint(blob), key_type)


@dataclass(frozen=True)
class SftpSettings:
    host: str
    port: int
    username: str
    private_key: str
    password: str
    passphrase: str
    pins: tuple[HostKeyPin, ...]
    timeout: float

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_config(cls, sftp: Any) -> SftpSettings:
        """The settings of a config's `sftp` block; a permanent ConnectorError if unusable."""
        if not isinstance(sftp, dict):
            raise ConnectorError("config.sftp must be an object")
        missing = [k for k in ("host", "username", "hostKey") if not sftp.get(k)]
        if not (sftp.get("privateKey") or sftp.get("password")):
            missing.append("privateKey or password")
        if missing:
            raise ConnectorError(f"config.sftp is missing {', '.join(missing)}")
        try:
            pins = tuple(parse_host_keys(sftp["hostKey"]))
            port = int(sftp.get("port") or DEFAULT_PORT)
            timeout = float(sftp.get("timeout") or DEFAULT_TIMEOUT)
        except (TypeError, ValueError) as exc:
            raise ConnectorError(f"config.sftp: {exc}") from None
        return cls(
            host=str(sftp["host"]).strip(),
            port=port,
            username=str(sftp["username"]),
            private_key=str(sftp.get("privateKey") or ""),
            password=str(sftp.get("password") or ""),
            passphrase=str(sftp.get("privateKeyPassphrase") or ""),
            pins=pins,
            timeout=timeout,
        )


def load_private_key(text: str, passphrase: str = "") -> paramiko.PKey:
    """A paramiko key from OpenSSH or PEM text; a permanent ConnectorError if unusable."""
    data = text.strip().encode() + b"\n"
    secret = passphrase.encode() or None
    try:
        try:
            loaded = _load_with(data, secret)
        except TypeError:
            if secret is None:
                raise ConnectorError(
                    "config.sftp.privateKey is encrypted: set privateKeyPassphrase"
                ) from None
            loaded = _load_with(data, None)  # a passphrase for a key that has none: fine
    except ValueError:
        raise ConnectorError(
            "config.sftp.privateKey cannot be read: it must be an unencrypted or "
            "passphrase-protected OpenSSH or PEM private key, and the passphrase must be right"
        ) from None
    except UnsupportedAlgorithm:
        raise ConnectorError("config.sftp.privateKey is of a kind SIS Sync cannot use") from None
    if isinstance(loaded, ed25519.Ed25519PrivateKey):
        key_class: type[paramiko.PKey] = paramiko.Ed25519Key
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        key_class = paramiko.ECDSAKey
    elif isinstance(loaded, rsa.RSAPrivateKey):
        key_class = paramiko.RSAKey
    else:
        raise ConnectorError("config.sftp.privateKey must be an Ed25519, ECDSA or RSA key")
    # One format for paramiko, whatever the admin pasted (PKCS#1, PKCS#8, SEC1, OpenSSH).
    plain = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return key_class.from_private_key(io.StringIO(plain.decode()))


def _load_with(data: bytes, secret: bytes | None) -> Any:
    if b"BEGIN OPENSSH PRIVATE KEY" in data:
        return serialization.load_ssh_private_key(data, secret)
    return serialization.load_pem_private_key(data, secret)


def sftp_error(
    exc: BaseException, *, doing: str, where: str, client: paramiko.SFTPClient | None = None
) -> ConnectorError:
    """What an error raised while talking to the server means for the admin, and for retries.

    Pass the client when there is one: paramiko reports a closed connection as a bare OSError,
    the same type as a refusal the server sent back, and only the channel tells them apart.
    """
    if isinstance(exc, ConnectorError):
        return exc
    if client is not None and _dropped(client):
        return ConnectorError(
            f"{doing}: the connection to the SFTP server {where} dropped", permanent=False
        )
    if isinstance(exc, FileNotFoundError) or getattr(exc, "errno", None) == errno.ENOENT:
        return ConnectorError(f"{doing}: no such file or folder on the SFTP server {where}")
    if isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EACCES:
        return ConnectorError(
            f"{doing}: permission denied on the SFTP server {where}; "
            "ask its administrator to let this user read (and, for archivePath, move) the files"
        )
    if isinstance(exc, socket.timeout | TimeoutError):
        return ConnectorError(
            f"{doing}: the SFTP server {where} did not answer in time", permanent=False
        )
    if isinstance(exc, EOFError | paramiko.SSHException | ConnectionError):
        return ConnectorError(
            f"{doing}: the connection to the SFTP server {where} dropped", permanent=False
        )
    if isinstance(exc, OSError) and exc.errno is None:
        # A status the SFTP server sent back (SSH_FX_FAILURE and the like): it will say so again.
        return ConnectorError(f"{doing}: the SFTP server {where} refused: {exc}")
    return ConnectorError(f"{doing}: {type(exc).__name__} from {where}: {exc}", permanent=False)


def _dropped(client: paramiko.SFTPClient) -> bool:
    channel = client.get_channel()
    if channel is None or channel.closed:
        return True
    transport = channel.get_transport()
    return transport is None or not transport.is_active()


def _open_socket(s: SftpSettings) -> socket.socket:
    try:
        addresses = check_host(s.host, s.port)
    except AddressNotAllowed as exc:
        raise ConnectorError(f"config.sftp.host: {exc}") from None
    last: OSError | None = None
    for target in addresses or [s.host]:
        try:
            return socket.create_connection((target, s.port), timeout=s.timeout)
        except OSError as exc:
            last = exc
    if isinstance(last, socket.gaierror):
        raise ConnectorError(
            f"The SFTP host {s.host!r} cannot be resolved: check config.sftp.host",
            permanent=False,
        )
    if isinstance(last, ConnectionRefusedError):
        raise ConnectorError(
            f"The SFTP server {s.where} refused the connection: is the server up and the port "
            "right?",
            permanent=False,
        )
    if isinstance(last, socket.timeout | TimeoutError):
        raise ConnectorError(
            f"Connecting to the SFTP server {s.where} timed out after {s.timeout:g}s",
            permanent=False,
        )
    raise ConnectorError(f"Cannot connect to the SFTP server {s.where}: {last}", permanent=False)


def _transport(sock: socket.socket, timeout: float, key_types: tuple[str, ...]) -> Any:
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    transport.auth_timeout = timeout
    if key_types:
        transport.get_security_options().key_types = key_types
    return transport


def _handshake(transport: Any, s: SftpSettings) -> paramiko.PKey:
    try:
        # The banner and the key exchange may each take `timeout`.
        transport.start_client(timeout=2 * s.timeout)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        detail = str(exc) or type(exc).__name__
        if "host key" in detail.lower():
            raise ConnectorError(
                f"The SFTP server {s.where} offers no host key of the pinned type "
                f"({', '.join(sorted({p.key_type for p in s.pins if p.key_type}))}); "
                "run manage.py sftp_hostkey to see the keys it has"
            ) from None
        raise ConnectorError(
            f"The SSH handshake with {s.where} failed: {detail}", permanent=False
        ) from None
    if not transport.is_active() or not transport.initial_kex_done:
        # start_client returns quietly when its own timeout runs out.
        raise ConnectorError(
            f"The SSH handshake with {s.where} did not finish in {2 * s.timeout:g}s",
            permanent=False,
        )
    return transport.get_remote_server_key()


def check_host_key(key: paramiko.PKey, s: SftpSettings) -> None:
    """Refuses a host key that matches none of the pins, showing the one presented."""
    presented = fingerprint(key.asbytes())
    if any(pin.fingerprint == presented for pin in s.pins):
        return
    raise ConnectorError(
        f"The SFTP server {s.where} presented the host key {presented} ({key.get_name()}), "
        "which is not the pinned config.sftp.hostKey: nothing was fetched. If the server's key "
        "really changed, confirm the new fingerprint with its administrator and pin it "
        "(manage.py sftp_hostkey prints the line)"
    )


def _authenticate(transport: Any, s: SftpSettings) -> None:
    tried = []
    try:
        if s.private_key:
            tried.append("privateKey")
            key = load_private_key(s.private_key, s.passphrase or s.password)
            try:
                transport.auth_publickey(s.username, key)
            except paramiko.AuthenticationException:
                if not s.password:
                    raise
        if not transport.is_authenticated() and s.password:
            tried.append("password")
            transport.auth_password(s.username, s.password)
    except paramiko.BadAuthenticationType as exc:
        allowed = ", ".join(exc.allowed_types) or "nothing we offer"
        raise ConnectorError(
            f"The SFTP server {s.where} does not accept this kind of login for "
            f"{s.username!r}; it allows: {allowed}"
        ) from None
    except paramiko.AuthenticationException:
        raise ConnectorError(
            f"The SFTP server {s.where} rejected the login of {s.username!r} with the "
            f"{' and the '.join(tried)}: check config.sftp.username and the credentials"
        ) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise sftp_error(exc, doing="Logging in", where=s.where) from None
    if not transport.is_authenticated():
        raise ConnectorError(
            f"The SFTP server {s.where} wants more than {' and '.join(tried)} to log in "
            f"{s.username!r}"
        )


@contextmanager
def sftp_session(s: SftpSettings) -> Iterator[paramiko.SFTPClient]:
    """An SFTP client logged in to a server whose host key matched a pin; closed on exit."""
    sock = _open_socket(s)
    key_types: tuple[str, ...] = ()
    if all(pin.key_type for pin in s.pins):
        key_types = tuple(
            dict.fromkeys(a for pin in s.pins for a in KEY_ALGORITHMS[pin.key_type or ""])
        )
    try:
        transport = _transport(sock, s.timeout, key_types)
    except BaseException:
        sock.close()
        raise
    try:
        check_host_key(_handshake(transport, s), s)
        _authenticate(transport, s)
        try:
            client = paramiko.SFTPClient.from_transport(transport)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise sftp_error(exc, doing="Opening the SFTP session", where=s.where) from None
        if client is None:
            raise ConnectorError(f"The server {s.where} has no SFTP subsystem")
        client.get_channel().settimeout(s.timeout)
        try:
            yield client
        finally:
            # Closing on a dead connection raises; that must not hide why it died.
            with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
                client.close()
    finally:
        transport.close()


def scan_host_keys(host: str, port: int = DEFAULT_PORT, *, timeout: float = 10.0) -> list[Any]:
    """Every host key the server has, one per key type, checked against nothing (admin tool).

    One handshake per key type: a server presents one key per connection, the one of the
    first algorithm both sides support.
    """
    s = SftpSettings(host, port, "", "", "", "", (), timeout)
    keys: dict[str, Any] = {}
    for algorithms in KEY_ALGORITHMS.values():
        sock = _open_socket(s)
        transport = _transport(sock, timeout, algorithms)
        try:
            key = _handshake(transport, s)
        except ConnectorError as exc:
            if exc.permanent:  # the server has no key of this type
                continue
            raise
        finally:
            transport.close()
        keys.setdefault(key.get_name(), key)
    return list(keys.values())
