"""A real OpenSSH sshd for the SFTP tests: own config, host key, user and authorized_keys.

`sshd` starts `/usr/sbin/sshd -D -e -f <config>` on a free 127.0.0.1 port for one test and
kills it (and every session process it forked) afterwards. A test module that needs it binds
the three fixtures: `sftp_login, sftp_keys, sshd = sshd_server.sftp_login, …`.

Who logs in: sshd authenticates real system users. Running as root (CI, this machine), the
fixture creates (once, idempotently) the unprivileged user `sis-sftp-test` with no usable shell
and sets a fresh random password on it every session (chpasswd): root itself has no password
we know and should not take SFTP logins, and an unprivileged owner also makes the archive moves
honest about permissions. Served files live in a folder under /tmp owned by that user. Run as
any other user, sshd can only log in that same user, by key: the password tests then skip.

No sshd installed: the tests skip, except with CI=true, where that is a failure.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

SSHD = "/usr/sbin/sshd"
TEST_USER = "sis-sftp-test"
START_TIMEOUT = 10.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true but {reason}: install it with `apt-get install -y openssh-server`")
    pytest.skip(reason)


@dataclass(frozen=True)
class KeyPair:
    private: str  # OpenSSH private key text, as a provider's privateKey
    public: str  # "ssh-ed25519 AAAA…", as authorized_keys and hostKey take it


def make_key(kind: str, *, passphrase: str = "") -> KeyPair:
    generate = {
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1()),
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }[kind]
    key = generate()
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase.encode())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return KeyPair(private, public)


@dataclass(frozen=True)
class Login:
    user: str
    uid: int
    gid: int
    password: str | None  # None: sshd cannot check passwords (not running as root)


@pytest.fixture(scope="session")
def sftp_login() -> Login:
    if not os.path.exists(SSHD):
        _unavailable(f"{SSHD} is not installed")
    if os.geteuid() != 0:
        me = pwd.getpwnam(getpass.getuser())
        return Login(me.pw_name, me.pw_uid, me.pw_gid, None)
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
            check=True,
            capture_output=True,
            timeout=30,
        )
    password = secrets.token_urlsafe(18)
    subprocess.run(
        ["chpasswd"], input=f"{TEST_USER}:{password}\n", text=True, check=True, timeout=30
    )
    entry = pwd.getpwnam(TEST_USER)
    return Login(entry.pw_name, entry.pw_uid, entry.pw_gid, password)


@pytest.fixture(scope="session")
def sftp_keys() -> dict[str, KeyPair]:
    """Client keys, authorized but `stranger`; `locked` is an ECDSA key with a passphrase."""
    return {kind: make_key(kind) for kind in ("ed25519", "ecdsa", "rsa")} | {
        "stranger": make_key("ed25519"),
        "locked": make_key("ecdsa", passphrase="open sesame"),
    }


@dataclass
class SshServer:
    port: int
    login: Login
    base: Path
    host_key: KeyPair
    keys: dict[str, KeyPair]
    process: subprocess.Popen[bytes]
    log: Path
    host: str = "127.0.0.1"
    killed: bool = field(default=False)

    @property
    def data(self) -> Path:
        """The served folder; its paths are the same on the server (no chroot)."""
        return self.base / "data"

    def path(self, relative: str) -> str:
        return str(self.data / relative)

    # -- what the server serves ----------------------------------------------------------------

    def add_folder(self, relative: str, source: Path, *, mtime: float | None = None) -> str:
        """Copies a bundle folder's files to `relative`; returns its remote path."""
        target = self.data / relative
        target.mkdir(parents=True, exist_ok=True)
        for item in source.iterdir():
            shutil.copyfile(item, target / item.name)
            self._own(target / item.name, mtime)
        self._own(target, mtime)
        self._own_parents(target)
        return str(target)

    def add_zip(self, relative: str, source: Path, *, mtime: float | None = None) -> str:
        target = self.data / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for item in sorted(source.iterdir()):
                archive.write(item, item.name)
        self._own(target, mtime)
        self._own_parents(target)
        return str(target)

    def add_file(self, relative: str, *, size: int, mtime: float | None = None) -> str:
        """A file of `size` zero bytes (sparse: instant at any size)."""
        target = self.data / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            handle.truncate(size)
        self._own(target, mtime)
        self._own_parents(target)
        return str(target)

    def _own(self, path: Path, mtime: float | None) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.login.uid, self.login.gid)
        if mtime is not None:
            os.utime(path, (mtime, mtime))

    def _own_parents(self, path: Path) -> None:
        """Folders made on the way belong to the login user too (archiving writes in them)."""
        for parent in path.parents:
            if parent == self.base:
                break
            self._own(parent, None)

    # -- provider configs ----------------------------------------------------------------------

    def provider_config(
        self, remote_path: str, *, auth: str = "ed25519", host_key: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        sftp: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.login.user,
            "hostKey": host_key or self.host_key.public,
            "timeout": 5,
        }
        if auth == "password":
            if self.login.password is None:
                _unavailable("password logins need the tests to run as root (they set one)")
            sftp["password"] = self.login.password
        elif auth == "wrong-password":
            if self.login.password is None:
                _unavailable("password logins need the tests to run as root (they set one)")
            sftp["password"] = self.login.password + "-not"
        else:
            sftp["privateKey"] = self.keys[auth].private
        return {"sftp": sftp, "remotePath": remote_path, **extra}

    # -- life and death ------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL for sshd and every session process it forked: the server is gone."""
        self.killed = True
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_config(base: Path, port: int, login: Login, keys: dict[str, KeyPair]) -> Path:
    host_key_file = base / "ssh_host_ed25519_key"
    authorized = base / "authorized_keys"
    authorized.write_text(
        "".join(keys[kind].public + "\n" for kind in ("ed25519", "ecdsa", "rsa", "locked"))
    )
    authorized.chmod(0o644)  # read by sshd as the logging-in user
    config = base / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key_file}",
                "PidFile none",
                f"AuthorizedKeysFile {authorized}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication yes",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin no",
                f"AllowUsers {login.user}",
                "StrictModes no",
                "UsePAM no",
                "MaxAuthTries 6",
                "LoginGraceTime 20",
                "LogLevel VERBOSE",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    return config


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.settimeout(2)
                if probe.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not answer on port {port} within {START_TIMEOUT}s")


@pytest.fixture
def sshd(sftp_login: Login, sftp_keys: dict[str, KeyPair], settings: Any) -> Iterator[SshServer]:
    """A running sshd serving an empty folder, for one test. Private hosts are allowed."""
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    base = Path(tempfile.mkdtemp(prefix="sis-sshd-"))
    base.chmod(0o755)  # the login user reaches data/ and authorized_keys through it
    server = None
    try:
        (base / "data").mkdir()
        if os.geteuid() == 0:
            os.chown(base / "data", sftp_login.uid, sftp_login.gid)
        host_key = make_key("ed25519")
        host_key_file = base / "ssh_host_ed25519_key"
        host_key_file.write_text(host_key.private)
        host_key_file.chmod(0o600)
        server = _start(base, sftp_login, sftp_keys, host_key)
        yield server
    finally:
        if server is not None:
            server.kill()
        shutil.rmtree(base, ignore_errors=True)


def _start(base: Path, login: Login, keys: dict[str, KeyPair], host_key: KeyPair) -> SshServer:
    log = base / "sshd.log"
    last_error: Exception | None = None
    for _ in range(3):  # the free port may be taken between the probe and sshd's bind
        port = _free_port()
        config = _write_config(base, port, login, keys)
        with open(log, "ab") as log_file:
            process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        server = SshServer(port, login, base, host_key, keys, process, log)
        try:
            _wait_ready(process, port, log)
            return server
        except RuntimeError as exc:
            server.kill()
            last_error = exc
    raise RuntimeError(f"sshd would not start: {last_error}")
