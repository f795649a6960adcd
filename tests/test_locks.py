"""Provider locks and sync slots, on Redis and in process (the embedded mode)."""

from __future__ import annotations

import time

import pytest

from sis_sync import locks


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest) -> locks.Store:
    if request.param == "local":
        return locks.LocalStore()
    return locks.RedisStore(request.getfixturevalue("redis_url"))


def test_it_gives_a_lock_to_one_owner_and_lets_only_it_release(store: locks.Store) -> None:
    assert store.lock_acquire("k", "a", 10)
    assert not store.lock_acquire("k", "b", 10)
    assert not store.lock_release("k", "b")
    assert store.lock_owner("k") == "a"
    assert store.lock_release("k", "a")
    assert store.lock_acquire("k", "b", 10)


def test_it_lets_a_lock_whose_owner_died_expire(store: locks.Store) -> None:
    assert store.lock_acquire("k", "dead", 0.2)
    time.sleep(0.35)
    assert not store.lock_renew("k", "dead", 10)
    assert store.lock_acquire("k", "next", 10)


def test_it_renews_a_lock_only_for_its_owner(store: locks.Store) -> None:
    store.lock_acquire("k", "a", 0.3)
    assert store.lock_renew("k", "a", 10)
    assert not store.lock_renew("k", "b", 10)
    time.sleep(0.4)
    assert store.lock_owner("k") == "a"


def test_it_hands_out_at_most_the_limit_of_slots_and_frees_crashed_holders(
    store: locks.Store,
) -> None:
    assert store.slot_acquire("s", "r1", 10, 2)
    assert store.slot_acquire("s", "r2", 0.2, 2)
    assert not store.slot_acquire("s", "r3", 10, 2)
    assert store.slot_acquire("s", "r1", 10, 2)  # a holder asking again keeps its slot
    time.sleep(0.35)  # r2 crashed without releasing
    assert store.slot_acquire("s", "r3", 10, 2)
    assert sorted(store.slot_holders("s")) == ["r1", "r3"]
    store.slot_release("s", "r1")
    assert store.slot_holders("s") == ["r3"]


def test_it_claims_lock_and_slot_together_for_a_run(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REDIS_URL = None  # type: ignore[attr-defined]
    settings.MAX_CONCURRENT_SYNCS = 1  # type: ignore[attr-defined]
    monkeypatch.setattr(locks, "_local", locks.LocalStore())

    assert locks.acquire_for_run(provider_id=1, run_id=10) is None
    assert locks.acquire_for_run(provider_id=1, run_id=11) == "locked:run:10"
    assert locks.acquire_for_run(provider_id=2, run_id=12) == "no-slot"
    assert locks.acquire_for_run(provider_id=1, run_id=10) is None  # a retried task
    locks.release_for_run(provider_id=1, run_id=10)
    assert locks.acquire_for_run(provider_id=2, run_id=12) is None
