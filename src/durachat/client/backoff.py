"""Reconnect delays: exponential backoff with jitter and a give-up deadline (PROTOCOL.md 5.5).

The n-th wait is `initial * 2**n`, capped at `cap`, each randomised by +-`jitter`
(50% by default) so that many clients dropped at once do not come back at once.
An outage lasts at most `give_up_after` seconds. Plain arithmetic: the caller
sleeps and tells the time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.5
    cap: float = 30.0
    give_up_after: float = 120.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0
    outage_began: float | None = None

    def next_delay(self, now: float) -> float | None:
        """The wait before the next attempt, or None once the deadline has passed."""
        if self.outage_began is None:
            self.outage_began = now
        left = self.outage_began + self.give_up_after - now
        if left <= 0:
            return None
        base = min(self.cap, self.initial * 2.0 ** min(self.attempt, 62))
        self.attempt += 1
        delay = base * self.rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return min(delay, left)

    def reset(self) -> None:
        """A connection worked again: the next outage starts from `initial`."""
        self.attempt = 0
        self.outage_began = None
