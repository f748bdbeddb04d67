"""Rate limits per API key and per workspace (docs/operations.md, "Rate limits"), on the `limits` library.

State lives in Redis when ``PAYROSTER_REDIS_URL`` is set, so every server process shares one budget;
otherwise in this process. The per-key limit allows a burst of twice its rate: ``100/second`` is
enforced as a moving window of 200 requests per 2 seconds, so a client may send 200 at once and then
averages 100 a second. If Redis stops answering, requests are let through and a warning is logged:
a rate limiter must never turn into an outage.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque

from limits import RateLimitItem, parse
from limits.storage import MovingWindowSupport, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from payroster.config import Settings
from payroster.domain.errors import RateLimited
from payroster.observability import metrics

log = logging.getLogger("payroster.ratelimit")


def with_burst(item: RateLimitItem) -> RateLimitItem:
    """The same average rate over a window twice as long: a burst of twice the amount."""
    return type(item)(item.amount * 2, item.multiples * 2, item.namespace)


class LocalWindows(Storage, MovingWindowSupport):
    """The moving windows of this process, for ``limits``' moving-window strategy when there is no Redis.

    Written here because ``limits``' own memory storage expires its entries on a timer thread that it
    starts again whenever the previous one has finished (10 ms after it started): at the request rates of
    one server nearly every request started a thread, 0.4–0.6 ms of CPU each, more than the rest of the
    limiter. Here each key is a deque of its entries' times, trimmed when the key is used; keys left idle
    are dropped by a sweep that runs at most once a minute, on the request that finds it due.
    """

    STORAGE_SCHEME = None  # made by RateLimiter itself, never from a URL

    def __init__(self, sweep_every: float = 60.0) -> None:
        self.windows: dict[str, tuple[deque[float], float]] = {}  # key -> (entry times, its expiry)
        self.lock = threading.Lock()
        self.sweep_every = sweep_every
        self.next_sweep = time.time() + sweep_every
        super().__init__()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ()  # nothing here fails the way a remote store does

    def _sweep(self, now: float) -> None:
        """Drop the keys whose every entry has left its window (the caller holds the lock)."""
        if now >= self.next_sweep:
            self.next_sweep = now + self.sweep_every
            for idle in [k for k, (q, e) in self.windows.items() if not q or q[-1] < now - e]:
                del self.windows[idle]

    @staticmethod
    def _trim(q: deque[float], expiry: float, now: float) -> deque[float]:
        while q and q[0] < now - expiry:
            q.popleft()
        return q

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        with self.lock:
            now = time.time()  # read under the lock: each deque stays in time order
            self._sweep(now)
            window = self.windows.get(key)
            if window is None:
                window = self.windows[key] = (deque(), expiry)
            q = self._trim(window[0], expiry, now)
            if len(q) + amount > limit:
                return False
            q.extend([now] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        # A read keeps nothing for a key it does not know (a log-in check is given any account name).
        with self.lock:
            now = time.time()
            window = self.windows.get(key)
            if window is None:
                return now, 0
            q = self._trim(window[0], expiry, now)
            return (q[0] if q else now), len(q)

    def clear(self, key: str) -> None:
        with self.lock:
            self.windows.pop(key, None)

    def reset(self) -> int | None:
        with self.lock:
            count = len(self.windows)
            self.windows.clear()
        return count

    def check(self) -> bool:
        return True

    # The fixed-window operations: the moving-window strategy never calls them.
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("PayRoster's local windows serve the moving-window strategy only")

    def get(self, key: str) -> int:
        raise NotImplementedError("PayRoster's local windows serve the moving-window strategy only")

    def get_expiry(self, key: str) -> float:
        raise NotImplementedError("PayRoster's local windows serve the moving-window strategy only")


class RateLimiter:
    """Checks and counts one request against its key's and its workspace's budgets."""

    def __init__(self, settings: Settings) -> None:
        self.per_key = with_burst(parse(settings.rate_limit_per_key))
        self.per_workspace = parse(settings.rate_limit_per_workspace)
        if settings.redis_url:
            storage = storage_from_string(settings.redis_url)
            assert isinstance(storage, Storage)  # a synchronous scheme, never limits' async storages
        else:
            storage = LocalWindows()
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.shared = settings.redis_url is not None
        self.login = parse(settings.login_throttle)

    def login_wait(self, account: str, address: str) -> int:
        """Seconds before another log-in may be tried for this account or from this address (0: now)."""
        try:
            for ids in (("login-account", account), ("login-address", address)):
                if not self.limiter.test(self.login, *ids):
                    reset, _ = self.limiter.get_window_stats(self.login, *ids)
                    metrics.rate_limited("login")
                    return max(1, math.ceil(reset - time.time()))
        except self.storage.base_exceptions:
            log.warning("rate limiter: storage unavailable, log-in let through", exc_info=True)
        return 0

    def login_failed(self, account: str, address: str) -> None:
        """Count one failed log-in against the account and the address."""
        try:
            for ids in (("login-account", account), ("login-address", address)):
                self.limiter.hit(self.login, *ids)
        except self.storage.base_exceptions:
            log.warning("rate limiter: storage unavailable, failed log-in not counted", exc_info=True)

    def hit(self, door: str, workspace_id: str, key_id: str) -> None:
        """Count one request; raise ``RateLimited`` with the seconds to wait when a budget is spent."""
        try:
            for item, ids in ((self.per_key, ("key", key_id)), (self.per_workspace, ("ws", workspace_id))):
                if not self.limiter.hit(item, *ids):
                    reset, _ = self.limiter.get_window_stats(item, *ids)
                    wait = max(1, math.ceil(reset - time.time()))
                    scope = "this API key" if ids[0] == "key" else "this workspace"
                    metrics.rate_limited("key" if ids[0] == "key" else "workspace")
                    raise RateLimited(
                        f"rate limit of {item} for {scope} exceeded on the {door} door; retry in {wait} s",
                        retry_after=wait,
                    )
        except self.storage.base_exceptions:
            log.warning("rate limiter: storage unavailable, request let through", exc_info=True)
