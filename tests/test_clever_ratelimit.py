"""Clever's rate limit is per token: every process using one token shares one count."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from connectors.clever.ratelimit import SharedBucket, TokenBucket, token_key

TOKEN = "d1strict-t0ken-00000000000000000000000001"
OTHER = "d1strict-t0ken-00000000000000000000000002"


class Clock:
    """Wall time for the buckets, moved on by their sleeps only (starts now: Redis expires
    the slots in real time, so the slots must be near the real ones)."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(params=["locmem", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "locmem":
        shared = LocMemCache(f"clever-rate-{uuid.uuid4().hex}", {})
    else:
        shared = RedisCache(request.getfixturevalue("redis_url"), {"KEY_PREFIX": "test"})
    shared.clear()
    yield shared
    shared.clear()


def bucket(cache: Any, clock: Clock, token: str = TOKEN, **limits: int) -> SharedBucket:
    return SharedBucket(token=lambda: token, cache=cache, clock=clock, sleep=clock.sleep, **limits)


def busiest_minute(stamps: list[float]) -> int:
    """The most requests in any 60 seconds."""
    most, end = 0, 0
    for start, stamp in enumerate(stamps):
        while end < len(stamps) and stamps[end] < stamp + 60:
            end += 1
        most = max(most, end - start)
    return most


def test_two_buckets_with_one_token_share_its_minute(cache: Any) -> None:
    clock = Clock()
    first, second = bucket(cache, clock), bucket(cache, clock)  # two workers, one district
    stamps = []
    for n in range(2600):
        (first if n % 2 else second).take()
        stamps.append(clock.now)

    # Together they keep under Clever's 1,200 in any minute (each alone would allow 1,180).
    assert busiest_minute(stamps) <= 1180
    assert 1080 <= sum(1 for s in stamps if s < stamps[0] + 60) <= 1180
    assert stamps[-1] - stamps[0] > 120  # 2,600 requests need more than two minutes
    # Another token is another limit: its first request does not wait.
    other = bucket(cache, clock, OTHER)
    before = clock.now
    assert other.take() == 0.0 and clock.now == before


def test_the_cache_never_holds_the_token(cache: Any) -> None:
    clock = Clock()
    bucket(cache, clock).take()

    slot = f"{token_key(TOKEN)}:{int(clock.now)}"
    assert cache.get(slot) == 1
    assert TOKEN not in token_key(TOKEN) and len(token_key(TOKEN)) == len("clever-rate:") + 32


def test_a_request_over_the_second_s_share_waits_for_the_next_second(cache: Any) -> None:
    clock = Clock()
    clock.now = float(int(clock.now)) + 0.25
    shared = bucket(cache, clock, per_second=3, per_minute=100)

    waits = [shared.take() for _ in range(4)]

    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == pytest.approx(0.75)


class Unreachable:
    """A cache whose server is down."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

        return fail


def test_an_unreachable_cache_falls_back_to_a_local_bucket_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    down = Unreachable()
    local = TokenBucket(clock=clock, sleep=clock.sleep)
    shared = SharedBucket(
        token=lambda: TOKEN, cache=down, clock=clock, sleep=clock.sleep, fallback=local
    )
    caplog.set_level(logging.WARNING, logger="connectors.clever.ratelimit")

    stamps = []
    for _ in range(1300):
        shared.take()
        stamps.append(clock.now)

    # As the per-extraction bucket: a burst of 100, then 18 a second.
    assert sum(1 for s in stamps if s == stamps[0]) == 100
    assert stamps[-1] - stamps[0] == pytest.approx(1200 / 18)
    # The cache is tried again once a minute (not before every request), and the admin told
    # once, not each time.
    assert down.calls == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "Clever rate limit: the shared cache is unreachable (ConnectionError); this "
        "extraction counts only its own requests"
    ]
    assert TOKEN not in warnings[0]
