"""Login rate limiting (SPEC.md section 4).

Failures are counted per (account, client address) and per address within a
sliding window: past `max_per_account` or `max_per_address` failures a login is
refused with 429 and the seconds until the oldest counted failure leaves the
window. Counting per address and account means nobody can lock a user out from
elsewhere. Kept in memory: a restart forgets the counts.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from durachat.errors import RateLimited


class LoginLimiter:
    """Sliding-window failure counters for logins."""

    def __init__(
        self,
        window_s: float,
        max_per_account: int,
        max_per_address: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def check(self, username: str, address: str) -> None:
        """Raise `RateLimited` (with Retry-After) if this login may not be tried now."""
        now = self._clock()
        for key, limit in (
            (("account", f"{username.lower()}\0{address}"), self.max_per_account),
            (("address", address), self.max_per_address),
        ):
            times = self._recent(key, now)
            if not times:
                del self._failures[key]  # forget quiet keys: memory stays bounded
            elif len(times) >= limit:
                retry = times[len(times) - limit] + self.window_s - now
                raise RateLimited("too many failed logins; try again later", max(1.0, retry))

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        for key in (("account", f"{username.lower()}\0{address}"), ("address", address)):
            self._recent(key, now).append(now)

    def succeeded(self, username: str, address: str) -> None:
        self._failures.pop(("account", f"{username.lower()}\0{address}"), None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times
