"""integrations/ratelimit.py's rules, pinned for mutation testing (`make mutate`): the window and count that keep
any second within the rate, waiting to the next window, the cache counter, and the process's own share when the
cache is down. The limiter's clock is a fake one (the module reads `time`), so no test sleeps."""

from __future__ import annotations

import math
import time as real_time

import pytest
from django.core.cache import cache

from integrations import ratelimit
from integrations.ratelimit import KEY_PREFIX, SharedWindowLimiter, cache_is_shared, rate_limiter

# Nothing listens on the discard port: every call to this cache fails, as when Redis is down.
CACHE_DOWN = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
}


class FakeTime:
    """Stands in for the `time` module the limiter reads: sleeping moves the clock."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime(1000.1)
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


@pytest.mark.parametrize(
    ("rate", "window", "per_window"),
    [(150, 0.25, 30), (20, 0.25, 4), (8, 0.25, 1), (4, 0.5, 1), (2, 1.0, 1), (0.5, 4.0, 1), (1000, 0.25, 200)],
)
def test_each_window_allows_what_keeps_any_second_within_the_rate(rate, window, per_window):
    limiter = SharedWindowLimiter("k", rate)
    assert (limiter.window, limiter.per_window) == (window, per_window)
    # Any one-second span touches at most 1/window + 1 windows.
    assert per_window * (1 / window + 1) <= max(rate, 1 / window + 1)


def test_calls_beyond_a_windows_count_wait_for_the_next_window(clock):
    limiter = SharedWindowLimiter("test:wait", 20)  # 4 calls per 0.25 s window
    assert [limiter.acquire() for _ in range(4)] == [0.0] * 4
    assert clock.slept == []
    assert limiter.acquire() == pytest.approx(0.15)  # 1000.1 is 0.1 s into its window
    assert clock.now == pytest.approx(1000.25)
    assert [limiter.acquire() for _ in range(3)] == [0.0] * 3
    assert limiter.acquire() == pytest.approx(0.25)
    assert clock.slept == [pytest.approx(0.15), pytest.approx(0.25)]


def test_the_count_lives_in_the_shared_cache_under_the_key_and_window(clock):
    limiter = SharedWindowLimiter("test:count", 20)
    limiter.acquire()
    limiter.acquire()
    slot = math.floor(1000.1 / 0.25)
    assert cache.get(f"{KEY_PREFIX}:test:count:{slot}") == 2
    assert cache.get(f"{KEY_PREFIX}:test:count:{slot + 1}") is None
    # Another limiter object for the same key (another process) counts against the same window.
    other = SharedWindowLimiter("test:count", 20)
    assert [other.acquire(), other.acquire(), other.acquire()] == [0.0, 0.0, pytest.approx(0.15)]


@pytest.mark.parametrize(("rate", "ttl"), [(20, 2), (0.5, 8), (0.2, 20)])
def test_a_counter_outlives_its_window_and_then_expires(clock, settings, rate, ttl):
    """At least two windows and never under 2 s: a late caller still counts in it; then the cache forgets it."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ttl"}}
    SharedWindowLimiter(f"test:ttl:{rate}", rate).count_in(1)
    expires_at = cache._expire_info[cache.make_and_validate_key(f"{KEY_PREFIX}:test:ttl:{rate}:1")]
    assert expires_at - real_time.time() == pytest.approx(ttl, abs=0.5)


def test_with_the_cache_down_each_process_keeps_a_share_of_the_rate(clock, settings):
    settings.CACHES = CACHE_DOWN
    settings.RATE_LIMIT_FALLBACK_SHARE = 4
    limiter = SharedWindowLimiter("test:down", 40)
    bucket = limiter.fallback()
    assert (bucket.rate, bucket.capacity) == (10.0, 1)
    assert limiter.fallback() is bucket  # one bucket per key in this process
    assert SharedWindowLimiter("test:down", 40).fallback() is bucket
    assert SharedWindowLimiter("test:down", 80).fallback().rate == 20.0  # a changed rate, a new bucket
    assert SharedWindowLimiter("test:down-other", 80).fallback() is not bucket
    settings.RATE_LIMIT_FALLBACK_SHARE = 0
    assert SharedWindowLimiter("test:down-zero", 40).fallback().rate == 40.0


class BusyBucket:
    """This process's fallback bucket, already holding back calls: each waits half a second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.acquired = 0

    def acquire(self) -> float:
        self.acquired += 1
        return 0.5


def test_with_the_cache_down_a_call_waits_for_the_fallback_bucket(clock, settings, monkeypatch):
    settings.CACHES = CACHE_DOWN
    settings.RATE_LIMIT_FALLBACK_SHARE = 2
    busy = BusyBucket(2.0)
    monkeypatch.setitem(ratelimit._fallbacks, "test:down-wait", busy)
    assert SharedWindowLimiter("test:down-wait", 4).acquire() == 0.5
    assert busy.acquired == 1 and clock.slept == []


@pytest.mark.parametrize(
    ("backend", "shared"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", False),
        ("django.core.cache.backends.dummy.DummyCache", False),
        ("django.core.cache.backends.redis.RedisCache", True),
        ("django.core.cache.backends.db.DatabaseCache", True),
    ],
)
def test_only_a_cache_every_process_sees_is_shared(settings, backend, shared):
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "redis://127.0.0.1:9/0"}}
    assert cache_is_shared() is shared
    limiter = rate_limiter("test:which", 7)
    assert isinstance(limiter, SharedWindowLimiter) is shared
    assert (getattr(limiter, "key", "test:which"), limiter.rate) == ("test:which", 7)
    if not shared:
        assert rate_limiter("test:which", 7) is limiter  # one bucket per key in this process


def test_a_call_waits_as_many_windows_as_other_processes_filled(clock):
    limiter = SharedWindowLimiter("test:full", 20)  # 4 per window
    slot = math.floor(1000.1 / 0.25)
    cache.set(f"{KEY_PREFIX}:test:full:{slot}", 4)  # this window and the next are full already
    cache.set(f"{KEY_PREFIX}:test:full:{slot + 1}", 4)
    assert limiter.acquire() == pytest.approx(0.15 + 0.25)
    assert clock.slept == [pytest.approx(0.15), pytest.approx(0.25)]
