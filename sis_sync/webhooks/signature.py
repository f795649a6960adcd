"""The webhook signature: `X-SIS-Signature: t=<unix seconds>,v1=<hex>`, where the hex is the
HMAC-SHA256 of `"<t>.<raw body>"` keyed with the provider's `webhookSecret`.

Several `v1=` values may be sent (a sender rotating its secret); one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

HEADER = "X-SIS-Signature"
TOLERANCE_SECONDS = 300


class SignatureMalformed(ValueError):
    pass


@dataclass(frozen=True)
class Signature:
    timestamp: int
    digests: tuple[str, ...]


def parse(header: str) -> Signature:
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureMalformed("t must be a Unix time in seconds") from None
        elif key == "v1" and value:
            digests.append(value.strip().lower())
    if timestamp is None or not digests:
        raise SignatureMalformed(f"{HEADER} must look like t=<unix seconds>,v1=<hex HMAC-SHA256>")
    return Signature(timestamp, tuple(digests))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The v1 digest of a body (what a sender computes; tests and docs use it too)."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def header_value(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verifies(signature: Signature, secret: str, body: bytes) -> bool:
    expected = sign(secret, signature.timestamp, body)
    return any(hmac.compare_digest(expected, digest) for digest in signature.digests)
