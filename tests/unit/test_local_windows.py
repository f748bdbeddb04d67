"""The in-process moving windows behind the rate limits when there is no Redis."""

from __future__ import annotations

import threading
import time

import pytest
from limits import parse
from limits.strategies import MovingWindowRateLimiter

from payroster.auth.ratelimit import LocalWindows, RateLimiter
from payroster.config import Settings


def test_a_window_allows_its_amount_then_refuses_until_the_oldest_entry_leaves_it() -> None:
    limiter = MovingWindowRateLimiter(LocalWindows())
    item = parse("3/second")
    assert [limiter.hit(item, "k") for _ in range(5)] == [True, True, True, False, False]
    assert limiter.hit(item, "other")  # another key has a window of its own
    stats = limiter.get_window_stats(item, "k")
    assert stats.remaining == 0
    assert time.time() < stats.reset_time <= time.time() + 1.0
    time.sleep(1.05)
    assert limiter.hit(item, "k")
    assert limiter.get_window_stats(item, "k").remaining == 2


def test_a_request_that_would_pass_the_limit_takes_no_entry() -> None:
    store = LocalWindows()
    assert store.acquire_entry("k", limit=4, expiry=10, amount=3)
    assert not store.acquire_entry("k", limit=4, expiry=10, amount=2)  # refused whole, not in part
    assert store.get_moving_window("k", limit=4, expiry=10)[1] == 3
    assert store.acquire_entry("k", limit=4, expiry=10, amount=1)


def test_idle_keys_are_swept_and_no_thread_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[threading.Thread] = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self), start(self))[1])
    store = LocalWindows(sweep_every=0.05)
    limiter = MovingWindowRateLimiter(store)
    short = parse("100/second")
    for n in range(50):
        limiter.hit(short, f"key{n}")
        time.sleep(0.002)
    assert len(store.windows) == 50
    assert started == []  # limits' own memory storage starts timer threads here
    time.sleep(1.1)  # every entry has left its 1 s window, and a sweep is due
    limiter.hit(short, "fresh")
    assert list(store.windows) == [parse("100/second").key_for("fresh")]


def test_a_read_keeps_nothing_for_an_unknown_key() -> None:
    """A log-in check reads the window of whatever account name it is given: reads must not fill the store."""
    store = LocalWindows()
    limiter = MovingWindowRateLimiter(store)
    item = parse("5/minute")
    for n in range(100):
        assert limiter.test(item, "login-account", f"made-up-{n}")
        assert limiter.get_window_stats(item, "login-account", f"made-up-{n}").remaining == 5
    assert store.windows == {}


def test_the_limiter_without_redis_counts_in_local_windows() -> None:
    limiter = RateLimiter(Settings(redis_url=None))
    assert isinstance(limiter.storage, LocalWindows)


def test_clear_and_reset_empty_the_windows() -> None:
    store = LocalWindows()
    limiter = MovingWindowRateLimiter(store)
    item = parse("1/minute")
    assert limiter.hit(item, "a") and limiter.hit(item, "b")
    assert not limiter.hit(item, "a")
    limiter.clear(item, "a")
    assert limiter.hit(item, "a")
    assert store.reset() == 2
    assert limiter.hit(item, "b")
