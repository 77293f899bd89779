"""One contract for every cache (in-process and Redis), plus single-flight and the circuit breaker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from recsys.query.cache import Cache, InProcessCache, RedisCache, get_or_compute


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    if request.param == "memory":
        yield InProcessCache()
    else:
        url = request.getfixturevalue("redis_url")
        yield RedisCache.from_url(url, timeout_s=1.0)


def test_get_set_ttl_and_purge(cache: Cache) -> None:
    assert cache.get("a") is None
    cache.set("a", b"1", 60)
    assert cache.get("a") == b"1"
    cache.set("short", b"2", 0.05)
    deadline = time.monotonic() + 10
    while cache.get("short") is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cache.get("short") is None
    assert cache.purge() >= 1
    assert cache.get("a") is None
    assert cache.ping()


def test_add_is_set_if_absent_and_delete_checks_the_token(cache: Cache) -> None:
    assert cache.add("lock", b"me", 60)
    assert not cache.add("lock", b"you", 60)
    cache.delete("lock", only_if=b"you")
    assert cache.get("lock") == b"me"
    cache.delete("lock", only_if=b"me")
    assert cache.get("lock") is None


def test_single_flight_computes_a_hot_key_once(cache: Cache) -> None:
    calls = []
    release = threading.Event()

    def compute() -> bytes:
        calls.append(1)
        release.wait(10)
        return b"value"

    results: list[tuple[bytes, bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(get_or_compute(cache, "hot", compute, 60, wait_s=30)))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(30)
    assert len(calls) == 1
    assert sorted(hit for _, hit in results) == [False, True, True, True, True, True]
    assert {value for value, _ in results} == {b"value"}


def test_in_process_cache_evicts_least_recently_used() -> None:
    cache = InProcessCache(max_entries=2)
    cache.set("a", b"1", 60)
    cache.set("b", b"2", 60)
    assert cache.get("a") == b"1"
    cache.set("c", b"3", 60)
    assert cache.get("b") is None
    assert cache.get("a") == b"1"


def test_a_dead_redis_is_skipped_quietly() -> None:
    cache = RedisCache.from_url("redis://127.0.0.1:1/0", timeout_s=0.05, breaker_s=60)
    assert cache.get("k") is None  # connection refused: the breaker opens
    assert not cache.available
    cache.set("k", b"v", 60)
    assert cache.add("k", b"v", 60)  # unavailable: the caller computes
    assert get_or_compute(cache, "k", lambda: b"computed", 60) == (b"computed", False)
    assert cache.purge() == -1
    assert not cache.ping()
