"""Rate limits per API key and per workspace (contract §2), on the `limits` library.

State lives in Redis when ``PAYROSTER_REDIS_URL`` is set, so every server process shares one budget;
otherwise in this process. The per-key limit allows a burst of twice its rate: ``100/second`` is
enforced as a moving window of 200 requests per 2 seconds, so a client may send 200 at once and then
averages 100 a second. If Redis stops answering, requests are let through and a warning is logged:
a rate limiter must never turn into an outage.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from payroster.config import Settings
from payroster.domain.errors import RateLimited

log = logging.getLogger("payroster.ratelimit")


def with_burst(item: RateLimitItem) -> RateLimitItem:
    """The same average rate over a window twice as long: a burst of twice the amount."""
    return type(item)(item.amount * 2, item.multiples * 2, item.namespace)


class RateLimiter:
    """Checks and counts one request against its key's and its workspace's budgets."""

    def __init__(self, settings: Settings) -> None:
        self.per_key = with_burst(parse(settings.rate_limit_per_key))
        self.per_workspace = parse(settings.rate_limit_per_workspace)
        url = settings.redis_url or "memory://"
        storage = storage_from_string(url)
        assert isinstance(storage, Storage)  # a synchronous scheme, never limits' async storages
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
                    raise RateLimited(
                        f"rate limit of {item} for {scope} exceeded on the {door} door; retry in {wait} s",
                        retry_after=wait,
                    )
        except self.storage.base_exceptions:
            log.warning("rate limiter: storage unavailable, request let through", exc_info=True)
