"""Locks and limits: one sync per provider, at most MAX_CONCURRENT_SYNCS service-wide.

With REDIS_URL they live in Redis, shared by every worker on every machine; without it
(embedded mode, tasks in-process) in this process's memory, with the same behaviour.

- `ProviderLock`: a token lock with a TTL (SYNC_LOCK_TIMEOUT). Renewed while work continues,
  released only by its owner (compare-and-delete), expires if the owner dies.
- `SyncSlots`: a counting semaphore. Each holder has an expiry score in a sorted set; expired
  holders are dropped on every acquire, so a crashed worker cannot keep a slot forever.
The database fences loads independently (sis_sync.sync): an expired lock can never let two
loads of one provider apply.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import Protocol

from django.conf import settings

PREFIX = "sis_sync"

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_SLOT_ACQUIRE = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zscore', KEYS[1], ARGV[3]) then
  redis.call('zadd', KEYS[1], ARGV[2], ARGV[3]) return 1
end
if redis.call('zcard', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('zadd', KEYS[1], ARGV[2], ARGV[3]) return 1
end
return 0
"""
_SLOT_RENEW = """
if redis.call('zscore', KEYS[1], ARGV[2]) then
  redis.call('zadd', KEYS[1], ARGV[1], ARGV[2]) return 1
end
return 0
"""


class Store(Protocol):
    def lock_acquire(self, key: str, token: str, ttl: float) -> bool: ...
    def lock_renew(self, key: str, token: str, ttl: float) -> bool: ...
    def lock_release(self, key: str, token: str) -> bool: ...
    def lock_owner(self, key: str) -> str | None: ...
    def slot_acquire(self, key: str, token: str, ttl: float, limit: int) -> bool: ...
    def slot_renew(self, key: str, token: str, ttl: float) -> bool: ...
    def slot_release(self, key: str, token: str) -> None: ...
    def slot_holders(self, key: str) -> list[str]: ...


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        # A Redis restart or failover takes seconds: ride it out (about 10 s of retries)
        # rather than fail every running sync on its next lock renewal.
        self.redis = redis.Redis.from_url(
            url,
            socket_timeout=10,
            socket_connect_timeout=5,
            retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), 9),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        self._release = self.redis.register_script(_RELEASE)
        self._renew = self.redis.register_script(_RENEW)
        self._slot_acquire = self.redis.register_script(_SLOT_ACQUIRE)
        self._slot_renew = self.redis.register_script(_SLOT_RENEW)

    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        return bool(self.redis.set(key, token, nx=True, px=int(ttl * 1000)))

    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        return bool(self._renew(keys=[key], args=[token, int(ttl * 1000)]))

    def lock_release(self, key: str, token: str) -> bool:
        return bool(self._release(keys=[key], args=[token]))

    def lock_owner(self, key: str) -> str | None:
        value = self.redis.get(key)
        return value.decode() if value is not None else None

    def slot_acquire(self, key: str, token: str, ttl: float, limit: int) -> bool:
        now = time.time()
        return bool(self._slot_acquire(keys=[key], args=[now, now + ttl, token, limit]))

    def slot_renew(self, key: str, token: str, ttl: float) -> bool:
        return bool(self._slot_renew(keys=[key], args=[time.time() + ttl, token]))

    def slot_release(self, key: str, token: str) -> None:
        self.redis.zrem(key, token)

    def slot_holders(self, key: str) -> list[str]:
        self.redis.zremrangebyscore(key, "-inf", time.time())
        return [m.decode() for m in self.redis.zrange(key, 0, -1)]


class LocalStore:
    """The embedded mode's store: the same semantics, in this process's memory."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[str, tuple[str, float]] = {}
        self._slots: dict[str, dict[str, float]] = {}

    def _live_lock(self, key: str) -> tuple[str, float] | None:
        held = self._locks.get(key)
        if held and held[1] <= time.monotonic():
            del self._locks[key]
            return None
        return held

    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        with self._mutex:
            if self._live_lock(key):
                return False
            self._locks[key] = (token, time.monotonic() + ttl)
            return True

    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        with self._mutex:
            held = self._live_lock(key)
            if not held or held[0] != token:
                return False
            self._locks[key] = (token, time.monotonic() + ttl)
            return True

    def lock_release(self, key: str, token: str) -> bool:
        with self._mutex:
            held = self._live_lock(key)
            if held and held[0] == token:
                del self._locks[key]
                return True
            return False

    def lock_owner(self, key: str) -> str | None:
        with self._mutex:
            held = self._live_lock(key)
            return held[0] if held else None

    def _live_slots(self, key: str) -> dict[str, float]:
        now = time.monotonic()
        slots = {t: exp for t, exp in self._slots.get(key, {}).items() if exp > now}
        self._slots[key] = slots
        return slots

    def slot_acquire(self, key: str, token: str, ttl: float, limit: int) -> bool:
        with self._mutex:
            slots = self._live_slots(key)
            if token in slots or len(slots) < limit:
                slots[token] = time.monotonic() + ttl
                return True
            return False

    def slot_renew(self, key: str, token: str, ttl: float) -> bool:
        with self._mutex:
            slots = self._live_slots(key)
            if token not in slots:
                return False
            slots[token] = time.monotonic() + ttl
            return True

    def slot_release(self, key: str, token: str) -> None:
        with self._mutex:
            self._live_slots(key).pop(token, None)

    def slot_holders(self, key: str) -> list[str]:
        with self._mutex:
            return sorted(self._live_slots(key))


_local = LocalStore()


@lru_cache(maxsize=4)
def _redis_store(url: str) -> RedisStore:
    return RedisStore(url)


def store() -> Store:
    return _redis_store(settings.REDIS_URL) if settings.REDIS_URL else _local


def provider_key(provider_id: int) -> str:
    return f"{PREFIX}:provider:{provider_id}"


SLOTS_KEY = f"{PREFIX}:slots"


def run_token(run_id: int) -> str:
    return f"run:{run_id}"


def acquire_for_run(*, provider_id: int, run_id: int) -> str | None:
    """Takes the provider lock and a service-wide slot for a run.

    Returns None when both are held by the run; otherwise why not: "locked:<owner>" when
    another run holds the provider, "no-slot" when MAX_CONCURRENT_SYNCS syncs are running.
    Re-acquiring what the run already holds (a retried task) succeeds.
    """
    s, token, ttl = store(), run_token(run_id), float(settings.SYNC_LOCK_TIMEOUT)
    key = provider_key(provider_id)
    if not s.lock_acquire(key, token, ttl) and not s.lock_renew(key, token, ttl):
        return f"locked:{s.lock_owner(key)}"
    if not s.slot_acquire(SLOTS_KEY, token, ttl, settings.MAX_CONCURRENT_SYNCS):
        s.lock_release(key, token)
        return "no-slot"
    return None


def renew_for_run(*, provider_id: int, run_id: int) -> bool:
    """Extends the run's lock and slot; False when another run holds the provider's lock.

    A lock that nobody holds any more (Redis restarted without persistence, or was flushed)
    is taken back: no other run of the provider can have started meanwhile, since starting
    one needs this run to have ended in PostgreSQL, and its load is fenced there too. The
    slot is taken back whatever the limit: a running sync keeps running, new ones wait.
    """
    s, token, ttl = store(), run_token(run_id), float(settings.SYNC_LOCK_TIMEOUT)
    key = provider_key(provider_id)
    if not s.slot_renew(SLOTS_KEY, token, ttl):
        s.slot_acquire(SLOTS_KEY, token, ttl, 2**31)
    return s.lock_renew(key, token, ttl) or s.lock_acquire(key, token, ttl)


def release_for_run(*, provider_id: int, run_id: int) -> None:
    s, token = store(), run_token(run_id)
    s.lock_release(provider_key(provider_id), token)
    s.slot_release(SLOTS_KEY, token)
