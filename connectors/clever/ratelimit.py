"""Staying under Clever's rate limit: a client-side bucket in front of every request.

Clever allows 1,200 requests a minute per bearer token in a fixed window that resets every
minute. A bucket of `capacity` tokens refilled at `rate` per second lets through at most
`capacity + 60 * rate` requests in any 60 seconds, so the defaults (100 + 60 * 18 = 1,180) keep
under the limit whatever the window's phase. A 429 that still comes is handled by
connectors.http, which waits for the reset.

The limit is per token, not per extraction: two syncs of one district at once, or the parts
of one sync on several workers, share it. `SharedBucket` therefore counts every process's
requests in Django's cache (Redis when REDIS_URL is set; process memory in the embedded mode,
where every sync runs in one process anyway), under a hash of the token, never the token.
When the cache cannot be reached it falls back to a `TokenBucket` of its own, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import requests

log = logging.getLogger(__name__)

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


class Bucket(Protocol):
    def take(self) -> float: ...


# The shared bucket's counts: requests per one-second slot, over a window of 60 slots. Any
# 60 seconds of Clever's window touch at most 61 slots: PER_MINUTE + PER_SECOND = 1,180 at most,
# the same bound as the local bucket's defaults.
SLOT_SECONDS = 1
WINDOW_SLOTS = 60
PER_MINUTE = 1080
PER_SECOND = 100
KEY_PREFIX = "clever-rate"
RETRY_CACHE_AFTER = 60.0  # seconds on the local bucket before the cache is tried again


def token_key(token: str) -> str:
    """The cache key prefix for a token: a hash of it (the token itself is a secret)."""
    return f"{KEY_PREFIX}:{hashlib.sha256(token.encode()).hexdigest()[:32]}"


class SharedBucket:
    """Every process's requests with one token, counted per second in a shared cache.

    `take` counts the request in the current slot first and then reads the window, so two
    processes racing for the last requests of a minute both see each other and one waits:
    the count errs on the safe side, never over. A request that may not go now gives its
    count back and sleeps until enough of the window has aged out.

    `token` says which token the next request carries (it may be fetched, and rotate, during
    an extraction); `cache` is a Django cache (default: the project's). The clock is the wall
    clock: other processes read the same slots.
    """

    def __init__(
        self,
        *,
        token: Callable[[], str],
        cache: Any = None,
        per_minute: int = PER_MINUTE,
        per_second: int = PER_SECOND,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        fallback: TokenBucket | None = None,
    ) -> None:
        if per_minute < 1 or per_second < 1:
            raise ValueError("a shared bucket needs limits of at least 1")
        self.token = token
        self._cache = cache
        self.per_minute = per_minute
        self.per_second = per_second
        self.clock = clock
        self.sleep = sleep
        self.fallback = fallback or TokenBucket(sleep=sleep)
        self._cache_down_until = -math.inf
        self._warned = False

    @property
    def cache(self) -> Any:
        if self._cache is None:
            from django.core.cache import cache

            self._cache = cache
        return self._cache

    def take(self) -> float:
        """Takes one request of the token's minute, sleeping until it may go; returns the
        time slept."""
        waited = 0.0
        while True:
            if self.clock() < self._cache_down_until:
                return waited + self.fallback.take()
            try:
                wait = self._try()
            except Exception as exc:  # noqa: BLE001 - any cache failure: count locally
                self._cache_failed(exc)
                continue
            if wait <= 0:
                return waited
            self.sleep(wait)
            waited += wait

    def _try(self) -> float:
        """Counts one request now if the window allows it (returns 0), else how long to wait."""
        now = self.clock()
        slot = int(now // SLOT_SECONDS)
        prefix = token_key(self.token())
        key = f"{prefix}:{slot}"
        timeout = (WINDOW_SLOTS + 5) * SLOT_SECONDS
        self.cache.add(key, 0, timeout=timeout)
        try:
            count = self.cache.incr(key)
        except ValueError:  # the slot expired between add and incr: it is a new one
            self.cache.add(key, 0, timeout=timeout)
            count = self.cache.incr(key)
        if count > self.per_second:
            self._give_back(key)
            return (slot + 1) * SLOT_SECONDS - now
        earlier = [f"{prefix}:{s}" for s in range(slot - WINDOW_SLOTS + 1, slot)]
        found = self.cache.get_many(earlier)
        counts = [int(found.get(k) or 0) for k in earlier]
        excess = count + sum(counts) - self.per_minute
        if excess <= 0:
            return 0.0
        self._give_back(key)
        # Wait until the oldest slots holding `excess` requests have left the window.
        dropped = 0
        for offset, n in enumerate(counts):
            dropped += n
            if dropped >= excess:
                return (slot - WINDOW_SLOTS + 1 + offset + WINDOW_SLOTS) * SLOT_SECONDS - now
        return (slot + 1) * SLOT_SECONDS - now  # this slot alone is over: the next one

    def _give_back(self, key: str) -> None:
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing to give back
            self.cache.decr(key)

    def _cache_failed(self, exc: Exception) -> None:
        self._cache_down_until = self.clock() + RETRY_CACHE_AFTER
        if not self._warned:
            self._warned = True
            log.warning(
                "Clever rate limit: the shared cache is unreachable (%s); this extraction "
                "counts only its own requests",
                type(exc).__name__,
            )


class RateLimitedSession(requests.Session):
    """A requests session that takes a bucket token before each request (retries included).

    It also folds multi-valued rate-limit headers (Clever has sent two buckets at once,
    "X-RateLimit-Reset: 1443289303, 1443289310") into the latest reset, which is what
    connectors.http reads to know how long a 429 asks us to wait.
    """

    def __init__(self, bucket: Bucket) -> None:
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
