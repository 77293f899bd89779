"""The cache interface the serving layer uses, a Redis implementation and an in-process LRU one.

Both store bytes under string keys with a TTL, and both offer ``add`` (set only if absent, with a
TTL: Redis ``SET NX PX``), on which :func:`get_or_compute` builds single-flight recomputation: the
first request that misses takes a short lock and computes; the others poll the key briefly.

The Redis cache never raises: a connection error or a timeout opens a circuit breaker that skips
Redis for a few seconds, so a dead or slow Redis costs one timeout, not one per request.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

PREFIX = "recsys:cache:"  # <namespace>:cache:, beside the reindex control keys (<namespace>:job:*, ...)
LOCK_TTL_S = 2.0  # how long a computing request holds the single-flight lock at most
WAIT_S = 0.5  # how long a waiter polls for the value before computing it itself
POLL_S = 0.005


class Cache(Protocol):
    """Bytes under string keys, with TTLs. Implementations must never raise on a backend failure."""

    name: str

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Set ``key`` only if it is absent. True if this call set it (or the backend is unavailable)."""
        ...

    def delete(self, key: str, only_if: bytes | None = None) -> None: ...

    def purge(self) -> int:
        """Drop every entry of this cache; returns how many were dropped (or -1 if unknown)."""
        ...

    def ping(self) -> bool:
        """True if the backend answers now."""
        ...


def get_or_compute(
    cache: Cache, key: str, compute: Callable[[], bytes], ttl_s: float, wait_s: float = WAIT_S
) -> tuple[bytes, bool]:
    """The cached value of ``key`` or, once across all requests, ``compute()``. Returns (value, hit)."""
    value = cache.get(key)
    if value is not None:
        return value, True
    lock, token = key + ":lock", uuid.uuid4().bytes
    if cache.add(lock, token, LOCK_TTL_S):
        try:
            value = cache.get(key)  # someone may have finished between our get and our lock
            if value is not None:
                return value, True
            value = compute()
            cache.set(key, value, ttl_s)
            return value, False
        finally:
            cache.delete(lock, only_if=token)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(POLL_S)
        value = cache.get(key)
        if value is not None:
            return value, True
    return compute(), False  # the holder is slow or gone: answer anyway, without storing


class InProcessCache:
    """A thread-safe LRU with per-entry expiry. The default when no Redis is configured."""

    name = "memory"

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return entry[1]

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        with self._lock:
            self._data[key] = (self._clock() + ttl_s, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and entry[0] > self._clock():
                return False
            self._data[key] = (self._clock() + ttl_s, value)
            return True

    def delete(self, key: str, only_if: bytes | None = None) -> None:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and (only_if is None or entry[1] == only_if):
                del self._data[key]

    def purge(self) -> int:
        with self._lock:
            count = len(self._data)
            self._data.clear()
            return count

    def ping(self) -> bool:
        return True


class NullCache:
    """Caches nothing (``RECSYS_CACHE=off``)."""

    name = "off"

    def get(self, key: str) -> bytes | None:
        return None

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        return None

    def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        return True

    def delete(self, key: str, only_if: bytes | None = None) -> None:
        return None

    def purge(self) -> int:
        return 0

    def ping(self) -> bool:
        return True


_DELETE_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class RedisCache:
    """Redis with short socket timeouts behind a circuit breaker; every key is under :data:`PREFIX`."""

    name = "redis"

    def __init__(self, client: Any, breaker_s: float = 5.0, prefix: str = PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self.breaker_s = breaker_s
        self._open_until = 0.0
        self._delete_if = client.register_script(_DELETE_IF)

    @classmethod
    def from_url(
        cls, url: str, timeout_s: float = 0.05, breaker_s: float = 5.0, namespace: str = "recsys"
    ) -> RedisCache:
        import redis

        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=0,
            retry_on_timeout=False,
        )
        return cls(client, breaker_s, prefix=f"{namespace}:cache:")

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._open_until

    def _call(self, default: Any, fn: Callable[[], Any]) -> Any:
        import redis

        if not self.available:
            return default
        try:
            return fn()
        except (redis.RedisError, OSError):
            self._open_until = time.monotonic() + self.breaker_s
            return default

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self._call(None, lambda: self.client.get(self.prefix + key))
        return value

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s > 0:
            self._call(None, lambda: self.client.set(self.prefix + key, value, px=int(ttl_s * 1000)))

    def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        return bool(
            self._call(
                True, lambda: self.client.set(self.prefix + key, value, nx=True, px=max(1, int(ttl_s * 1000)))
            )
        )

    def delete(self, key: str, only_if: bytes | None = None) -> None:
        if only_if is None:
            self._call(None, lambda: self.client.delete(self.prefix + key))
        else:
            self._call(None, lambda: self._delete_if(keys=[self.prefix + key], args=[only_if]))

    def purge(self) -> int:
        def scan_and_unlink() -> int:
            count = 0
            batch: list[bytes] = []
            for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    count += self.client.unlink(*batch)
                    batch = []
            if batch:
                count += self.client.unlink(*batch)
            return count

        result: int = self._call(-1, scan_and_unlink)
        return result

    def ping(self) -> bool:
        """Probe Redis even while the breaker is open (used by /readyz); a success closes it."""
        import redis

        try:
            self.client.ping()
        except (redis.RedisError, OSError):
            self._open_until = time.monotonic() + self.breaker_s
            return False
        self._open_until = 0.0
        return True


def make_cache(
    enabled: bool, redis_url: str | None, timeout_ms: int = 50, namespace: str = "recsys"
) -> Cache:
    """The cache the settings ask for: off, Redis (keys under ``<namespace>:cache:``), or in-process."""
    if not enabled:
        return NullCache()
    if redis_url:
        return RedisCache.from_url(redis_url, timeout_s=timeout_ms / 1000, namespace=namespace)
    return InProcessCache()
