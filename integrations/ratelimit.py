"""Rate limits that hold across processes: every worker process calling one vendor for one connection counts
against the same limit, kept in the shared cache (Redis in production, CACHE_URL). Without a shared cache (the
embedded development setup) each process keeps its own token bucket, and the limit is per process.

The shared limit counts calls in short fixed windows; a caller over a window's count sleeps to the next one. Any
one-second span touches at most 1/window + 1 windows, so each window allows rate * window / (1 + window) calls:
never more than `rate` in any second, at the cost of a sustained pace somewhat below it (120/s for 150/s).
"""

from __future__ import annotations

import math
import threading
import time

from django.conf import settings
from django.core.cache import cache

from integrations.http import RateLimiter, TokenBucket, shared_rate_limiter

KEY_PREFIX = "ratelimit"
_fallbacks: dict[str, TokenBucket] = {}
_fallbacks_lock = threading.Lock()


class SharedWindowLimiter:
    """`rate` calls per second for `key`, counted in the shared cache by every process."""

    def __init__(self, key: str, rate: float) -> None:
        self.key = key
        self.rate = rate
        self.window = max(0.25, 2.0 / rate)
        self.per_window = max(1, math.floor(rate * self.window / (1 + self.window)))

    def acquire(self) -> float:
        """Take one call in the current window, sleeping to the next window while this one is full; returns the
        seconds waited. With the shared cache unreachable, a bucket of this process at a fraction of the rate
        stands in (RATE_LIMIT_FALLBACK_SHARE), so an outage of the cache neither stops sending nor floods the vendor."""
        waited = 0.0
        while True:
            now = time.time()
            slot = math.floor(now / self.window)
            try:
                count = self.count_in(slot)
            except Exception:  # the cache (Redis) is down: this process's own, smaller share
                return waited + self.fallback().acquire()
            if count <= self.per_window:
                return waited
            pause = (slot + 1) * self.window - now
            time.sleep(pause)
            waited += pause

    def fallback(self) -> TokenBucket:
        """This process's share of the rate, without bursts (every process may be falling back at once)."""
        share = self.rate / max(1, settings.RATE_LIMIT_FALLBACK_SHARE)
        with _fallbacks_lock:
            bucket = _fallbacks.get(self.key)
            if bucket is None or bucket.rate != share:
                bucket = _fallbacks[self.key] = TokenBucket(share, burst=1)
            return bucket

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
