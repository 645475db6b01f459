"""The `Bus` protocol: how events get from a reply's generation to every socket.

A generation publishes encoded frames; sockets attach an `Outbox` and subscribe to
conversations. Each reply keeps a replay log of its `text` frames, from which a
reconnecting client gets exactly what it missed; the log is a cache that expires
some minutes after the reply ends (DESIGN.md invariant 6). `memory.py` is the
single-process bus; `redis.py` is the bus of many nodes, held to the same contract
(tests/contract/test_bus.py).

Publishing and subscribing never await: they sit on the per-chunk path. Reading a
log, settling a subscription and the bus's own start and stop may (Redis).
"""

from __future__ import annotations

from typing import Protocol

from durachat.bus.outbox import Outbox
from durachat.events import Frame


class Bus(Protocol):
    async def start(self) -> None:
        """Begin serving (a remote bus connects and starts its reader)."""
        ...

    async def close(self) -> None:
        """Stop: hand what is pending on (bounded), release connections."""
        ...

    async def ping(self) -> bool:
        """Whether the bus can carry events now (for `/readyz`); never raises."""
        ...

    def attach(self, outbox: Outbox) -> None:
        """Register a socket's outbox for its user's conversation-list events."""
        ...

    def detach(self, outbox: Outbox) -> None:
        """Forget a socket and all its subscriptions."""
        ...

    def subscribe(self, outbox: Outbox, conversation_id: str) -> None:
        """Deliver the conversation's events to the outbox from now on."""
        ...

    def unsubscribe(self, outbox: Outbox, conversation_id: str) -> None: ...

    async def settle(self, conversation_id: str) -> None:
        """Wait until the conversation's live delivery here is current: every frame
        published before this call has reached its subscribed outboxes (or, for a
        subscription made just before, is older than it), and every later one will.

        "Subscribe, then snapshot" (DESIGN.md invariant 3) calls it after
        subscribing and again after reading the snapshot, before releasing the
        held frames. In one process delivery is synchronous and this returns at
        once.
        """
        ...

    def publish(self, frame: Frame) -> None:
        """Send a conversation's frame to its subscribers; log `text` frames."""
        ...

    def publish_user(self, user_id: str, frame: Frame) -> None:
        """Send a frame to every socket of the user (conversation-list events)."""
        ...

    def end_log(self, message_id: str) -> None:
        """The reply ended: keep its replay log for the TTL, then drop it."""
        ...

    async def replay(self, message_id: str, after_seq: int) -> list[Frame] | None:
        """The logged `text` frames with seq > after_seq, or None if the log does not
        hold all of them."""
        ...

    async def log_tail(self, message_id: str, after_seq: int) -> list[Frame]:
        """Whatever the log holds past after_seq, contiguous from after_seq + 1."""
        ...

    def sockets(self, user_id: str) -> int: ...

    @property
    def total_sockets(self) -> int: ...
