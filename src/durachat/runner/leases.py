"""Generation leases: which node owns a streaming reply (DESIGN.md invariant 1).

One node (`LocalLeases`) owns everything it generates; nothing to share. With
Redis (`RedisLeases`), a node takes a reply's lease (`SET NX PX`) before the reply
exists in the store as `streaming`, renews the leases of all its replies in one
pipeline every ninth of `DURACHAT_LEASE_MS` (each lives a third of it), and drops
one when its reply ends. A lease that could not be renewed because another node holds
it means the reply was taken over: the runner stops it here (its store writes are
fenced by the epoch anyway). If Redis lost the key (a restart), renewal takes it
again: the epoch in the store stays the judge.

`stop` reaches the owner wherever it was received: a node that does not generate
the reply publishes the message id on a Redis channel, and the owner's listener
stops it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from durachat.settings import Settings


class Leases(Protocol):
    """What the runner and the sweeper need of leases."""

    @property
    def shared(self) -> bool:
        """True when other nodes exist (the sweeper runs, stops travel)."""
        ...

    async def start(self, on_lost: Callable[[str], None], on_stop: Callable[[str], None]) -> None:
        """Begin renewing; `on_lost(message_id)` when another node took a reply,
        `on_stop(message_id)` when a stop for a reply arrives from elsewhere."""
        ...

    async def close(self) -> None: ...

    async def acquire(self, message_id: str) -> None:
        """Own the reply from now on; `Conflict` if another node does."""
        ...

    def release(self, message_id: str) -> None:
        """The reply ended here: let the lease go (in the background)."""
        ...

    async def held(self, message_ids: Collection[str]) -> set[str]:
        """Which of these replies some node holds a lease on."""
        ...

    async def send_stop(self, message_id: str) -> None:
        """Ask the reply's owner, wherever it runs, to stop it."""
        ...


class LocalLeases:
    """One node: it owns all it generates."""

    shared = False

    async def start(self, on_lost: Callable[[str], None], on_stop: Callable[[str], None]) -> None:
        return None

    async def close(self) -> None:
        return None

    async def acquire(self, message_id: str) -> None:
        return None

    def release(self, message_id: str) -> None:
        return None

    async def held(self, message_ids: Collection[str]) -> set[str]:
        return set(message_ids)

    async def send_stop(self, message_id: str) -> None:
        return None


def configured_leases(settings: Settings, node_id: str) -> Leases:
    """`RedisLeases` for this node when `DURACHAT_REDIS_URL` is set, else local."""
    if not settings.redis_url:
        return LocalLeases()
    from durachat.runner.redis_leases import RedisLeases

    return RedisLeases(
        settings.redis_url, node_id, settings.lease_ms, settings.redis_timeout_ms / 1000
    )
