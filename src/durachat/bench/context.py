"""What every scenario is handed: the options, the servers and a progress callback.

`quick` shrinks every size so the whole suite runs as a smoke test in seconds;
the sizes of a full run are the ones SPEC.md section 9 names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from durachat.bench.servers import Servers


@dataclass(frozen=True)
class Options:
    clients: int | None = None
    """Concurrent clients for `throughput`, `latency` and `resume-storm` (default 1,000;
    20 with `quick`)."""
    rounds: int | None = None
    """Rounds per compared scenario (default 3; 1 with `quick`)."""
    quick: bool = False

    def pick(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    @property
    def client_count(self) -> int:
        return self.clients or self.pick(1000, 20)

    @property
    def round_count(self) -> int:
        return self.rounds if self.rounds is not None else self.pick(3, 1)


@dataclass
class Context:
    options: Options
    servers: Servers
    step: Callable[[str], None]
    """Report progress: a short description of what runs now."""
    measured: dict[str, float] = field(default_factory=dict)
    """Figures later scenarios of the same run reuse (`throughput`'s saturation)."""
