"""Rate limits that hold across processes: every worker process calling one vendor for one connection counts
against the same limit, kept in the shared cache (Redis in production, CACHE_URL). Without a shared cache (the
embedded development setup) each process keeps its own token bucket, and the limit is per process.

The shared limit counts calls in short fixed windows; a caller over a window's count sleeps to the next one. With n
windows a second, any one-second span touches at most n + 1 windows, so each window allows rate / (n + 1) calls:
never more than `rate` in any second, at a sustained pace of n * floor(rate / (n + 1)) — n is chosen to make that
pace the highest (140/s for 150/s with 14 windows a second).

While the shared count cannot be read (Redis down or restarting), no call goes: a call that waited longer than
RATE_LIMIT_CACHE_WAIT_SECONDS is held back (`LimitUnknown`) and its work waits for a later run. A per-process
stand-in cannot keep the promise: its calls are counted nowhere, so the first second after the cache returns would
let a whole rate go on top of them. A restart also loses the last second's counts, so a process that saw the cache
unreachable waits until a second after it first did before counting again.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache

from integrations.http import LimitUnknown, RateLimiter, shared_rate_limiter

KEY_PREFIX = "ratelimit"
# Windows shorter than 1/20 s would make every process's clock matter and a waiting caller poll the cache often.
MAX_WINDOWS_PER_SECOND = 20
CACHE_RETRY_SECONDS = 0.25


def windows_for(rate: float) -> tuple[float, int]:
    """(window length in seconds, calls per window) for `rate` calls per second: the number of windows a second, up to
    MAX_WINDOWS_PER_SECOND, whose sustained pace n * floor(rate / (n + 1)) is the highest (the fewest windows on a tie).
    Below 2 calls a second no whole number of calls per window fits; one call per 2/rate seconds keeps the pace."""
    pace, n = max((n * math.floor(rate / (n + 1)), -n) for n in range(1, MAX_WINDOWS_PER_SECOND + 1))
    if pace == 0:
        return 2.0 / rate, 1
    return 1.0 / -n, math.floor(rate / (-n + 1))


class SharedWindowLimiter:
    """`rate` calls per second for `key`, counted in the shared cache by every process."""

    def __init__(self, key: str, rate: float) -> None:
        self.key = key
        self.rate = rate
        self.window, self.per_window = windows_for(rate)

    def acquire(self) -> float:
        """Take one call in the current window, sleeping to the next window while this one is full; returns the
        seconds waited. Raises `LimitUnknown` when the shared count stays unreachable too long (nothing was sent)."""
        started = time.time()
        unreachable_since: float | None = None
        while True:
            now = time.time()
            slot = math.floor(now / self.window)
            try:
                count = self.count_in(slot)
            except Exception as exc:  # any cache backend's connection error: the count is unknown
                unreachable_since = unreachable_since or now
                self.wait_for_cache(now - unreachable_since, exc)
                continue
            if unreachable_since is not None and now < unreachable_since + 1:
                time.sleep(unreachable_since + 1 - now)  # the counts of the second before may have been lost
                unreachable_since = None
                continue
            if count <= self.per_window:
                return time.time() - started
            time.sleep((slot + 1) * self.window - now)

    def wait_for_cache(self, unreachable_for: float, error: Exception) -> None:
        if unreachable_for >= settings.RATE_LIMIT_CACHE_WAIT_SECONDS:
            raise LimitUnknown(
                f"the shared rate limit has been unreachable for {unreachable_for:.0f} s "
                f"({error.__class__.__name__}); the call waits for a later run"
            ) from error
        time.sleep(CACHE_RETRY_SECONDS)

    def count_in(self, slot: int) -> int:
        counter = f"{KEY_PREFIX}:{self.key}:{slot}"
        cache.add(counter, 0, timeout=max(2, math.ceil(self.window * 2)))
        return cache.incr(counter)


def cache_is_shared() -> bool:
    backend = settings.CACHES["default"]["BACKEND"]
    return not backend.endswith(("locmem.LocMemCache", "dummy.DummyCache"))


def rate_limiter(key: str, rate: float) -> RateLimiter:
    """The limiter for one connection (or one of its endpoints): shared by all processes when the cache is."""
    if cache_is_shared():
        return SharedWindowLimiter(key, rate)
    return shared_rate_limiter(key, rate)
