"""integrations/ratelimit.py's rules, pinned for mutation testing (`make mutate`): the window and count that keep
any second within the rate, waiting to the next window, the cache counter, and holding every call while the cache is
down. The limiter's clock is a fake one (the module reads `time`), so no test sleeps."""

from __future__ import annotations

import math
import time as real_time

import pytest
from django.core.cache import cache

from integrations import ratelimit
from integrations.http import LimitUnknown
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
    ("rate", "windows_per_second", "per_window"),
    [(150, 14, 10), (30, 14, 2), (20, 19, 1), (10, 9, 1), (4, 3, 1), (2, 1, 1), (1000, 19, 50)],
)
def test_each_window_allows_what_keeps_any_second_within_the_rate(rate, windows_per_second, per_window):
    limiter = SharedWindowLimiter("k", rate)
    assert (limiter.window, limiter.per_window) == (pytest.approx(1 / windows_per_second), per_window)
    # Any one-second span touches at most n + 1 windows: never more than the rate in it.
    assert per_window * (windows_per_second + 1) <= rate


@pytest.mark.parametrize(("rate", "paces"), [(150, 140), (30, 28), (10, 9)])
def test_the_windows_chosen_keep_the_highest_sustained_pace(rate, paces):
    """No other number of windows a second (up to the most allowed) sustains more without breaking the rate."""
    limiter = SharedWindowLimiter("k", rate)
    assert round(1 / limiter.window) * limiter.per_window == paces
    others = [n * math.floor(rate / (n + 1)) for n in range(1, ratelimit.MAX_WINDOWS_PER_SECOND + 1)]
    assert max(others) == paces


@pytest.mark.parametrize(("rate", "window"), [(1.5, 4 / 3), (0.5, 4.0)])
def test_below_two_calls_a_second_one_call_goes_per_two_periods(rate, window):
    limiter = SharedWindowLimiter("k", rate)
    assert (limiter.window, limiter.per_window) == (pytest.approx(window), 1)


def test_calls_beyond_a_windows_count_wait_for_the_next_window(clock):
    limiter = SharedWindowLimiter("test:wait", 150)  # 10 calls per 1/14 s window
    assert [limiter.acquire() for _ in range(10)] == [0.0] * 10
    assert clock.slept == []
    to_next_window = 14002 / 14 - 1000.1  # 1000.1 is in window 14001
    assert limiter.acquire() == pytest.approx(to_next_window)
    assert clock.now == pytest.approx(14002 / 14)
    assert [limiter.acquire() for _ in range(9)] == [0.0] * 9
    assert limiter.acquire() == pytest.approx(1 / 14)
    assert clock.slept == [pytest.approx(to_next_window), pytest.approx(1 / 14)]


def test_the_count_lives_in_the_shared_cache_under_the_key_and_window(clock):
    limiter = SharedWindowLimiter("test:count", 30)  # 2 calls per 1/14 s window
    limiter.acquire()
    slot = math.floor(1000.1 * 14)
    assert cache.get(f"{KEY_PREFIX}:test:count:{slot}") == 1
    assert cache.get(f"{KEY_PREFIX}:test:count:{slot + 1}") is None
    # Another limiter object for the same key (another process) counts against the same window.
    other = SharedWindowLimiter("test:count", 30)
    assert [other.acquire(), other.acquire()] == [0.0, pytest.approx(14002 / 14 - 1000.1)]
    assert cache.get(f"{KEY_PREFIX}:test:count:{slot}") == 3  # the one that waited counted, then moved on


@pytest.mark.parametrize(("rate", "ttl"), [(20, 2), (0.5, 8), (0.2, 20)])
def test_a_counter_outlives_its_window_and_then_expires(clock, settings, rate, ttl):
    """At least two windows and never under 2 s: a late caller still counts in it; then the cache forgets it."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ttl"}}
    SharedWindowLimiter(f"test:ttl:{rate}", rate).count_in(1)
    expires_at = cache._expire_info[cache.make_and_validate_key(f"{KEY_PREFIX}:test:ttl:{rate}:1")]
    assert expires_at - real_time.time() == pytest.approx(ttl, abs=0.5)


def test_with_the_cache_down_no_call_goes_and_the_wait_is_bounded(clock, settings):
    settings.CACHES = CACHE_DOWN
    settings.RATE_LIMIT_CACHE_WAIT_SECONDS = 2
    with pytest.raises(LimitUnknown, match="unreachable for 2 s"):
        SharedWindowLimiter("test:down", 40).acquire()
    assert clock.slept == [ratelimit.CACHE_RETRY_SECONDS] * 8
    assert clock.now == pytest.approx(1000.1 + 2)


class CacheBackAfter:
    """The shared cache, unreachable until the clock reaches `back_at` (Redis restarting)."""

    def __init__(self, clock: FakeTime, back_at: float) -> None:
        self.clock, self.back_at = clock, back_at

    def __getattr__(self, name: str):
        if self.clock.now < self.back_at:
            raise ConnectionError("Redis is restarting")
        return getattr(cache, name)


@pytest.mark.parametrize(("back_after", "first_call_after"), [(0.3, 1.0), (0.5, 1.0), (1.5, 1.5)])
def test_after_the_cache_returns_a_call_waits_a_second_from_the_outage(
    clock, monkeypatch, back_after, first_call_after
):
    """Counts of the second before the outage may be gone with a restart: nothing goes until a second after the
    process first found the cache unreachable (or at once, when it was down longer than that)."""
    monkeypatch.setattr(ratelimit, "cache", CacheBackAfter(clock, 1000.1 + back_after))
    waited = SharedWindowLimiter("test:back", 150).acquire()
    assert waited == pytest.approx(first_call_after, abs=ratelimit.CACHE_RETRY_SECONDS)
    assert waited >= min(1.0, back_after)


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
    limiter = SharedWindowLimiter("test:full", 150)  # 10 per 1/14 s window
    slot = math.floor(1000.1 * 14)
    cache.set(f"{KEY_PREFIX}:test:full:{slot}", 10)  # this window and the next are full already
    cache.set(f"{KEY_PREFIX}:test:full:{slot + 1}", 10)
    to_next_window = (slot + 1) / 14 - 1000.1
    assert limiter.acquire() == pytest.approx(to_next_window + 1 / 14)
    assert clock.slept == [pytest.approx(to_next_window), pytest.approx(1 / 14)]
