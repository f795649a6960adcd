"""Staying under Clever's rate limit: a client-side token bucket in front of every request.

Clever allows 1,200 requests a minute per bearer token in a fixed window that resets every
minute. A bucket of `capacity` tokens refilled at `rate` per second lets through at most
`capacity + 60 * rate` requests in any 60 seconds, so the defaults (100 + 60 * 18 = 1,180) keep
under the limit whatever the window's phase. A 429 that still comes is handled by
connectors.http, which waits for the reset.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests

CLEVER_LIMIT_PER_MINUTE = 1200
DEFAULT_RATE = 18.0  # tokens a second: 1,080 a minute
DEFAULT_CAPACITY = 100  # the burst on top: 1,180 in any minute at most


class TokenBucket:
    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs a positive rate and a capacity of at least 1")
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.sleep = sleep
        self._tokens = float(capacity)
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Takes one token, sleeping until one is there; returns how long it slept."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            # A negative balance is a debt: wait for exactly that much refill.
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait:
            self.sleep(wait)
        return wait


class RateLimitedSession(requests.Session):
    """A requests session that takes a bucket token before each request (retries included).

    It also folds multi-valued rate-limit headers (Clever has sent two buckets at once,
    "X-RateLimit-Reset: 1443289303, 1443289310") into the latest reset, which is what
    connectors.http reads to know how long a 429 asks us to wait.
    """

    def __init__(self, bucket: TokenBucket) -> None:
        super().__init__()
        self.bucket = bucket

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self.bucket.take()
        response = super().request(method, url, *args, **kwargs)
        reset = response.headers.get("X-RateLimit-Reset", "")
        if "," in reset:
            values = []
            for part in reset.split(","):
                try:
                    values.append(float(part.strip()))
                except ValueError:
                    continue
            if values:
                response.headers["X-RateLimit-Reset"] = str(int(max(values)))
        return response
