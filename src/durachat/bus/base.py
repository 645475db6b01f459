"""The `Bus` protocol: how events get from a reply's generation to every socket.

A generation publishes encoded frames; sockets attach an `Outbox` and subscribe to
conversations. Each reply keeps a replay log of its `text` frames, from which a
reconnecting client gets exactly what it missed; the log is a cache that expires
some minutes after the reply ends (DESIGN.md invariant 6). `memory.py` is the
single-process bus; a Redis bus for many nodes implements the same protocol.
"""

from __future__ import annotations

from typing import Protocol

from durachat.bus.outbox import Outbox
from durachat.events import Frame


class Bus(Protocol):
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

    def publish(self, frame: Frame) -> None:
        """Send a conversation's frame to its subscribers; log `text` frames."""
        ...

    def publish_user(self, user_id: str, frame: Frame) -> None:
        """Send a frame to every socket of the user (conversation-list events)."""
        ...

    def end_log(self, message_id: str) -> None:
        """The reply ended: keep its replay log for the TTL, then drop it."""
        ...

    def replay(self, message_id: str, after_seq: int) -> list[Frame] | None:
        """The logged `text` frames with seq > after_seq, or None if the log does not
        hold all of them."""
        ...

    def log_tail(self, message_id: str, after_seq: int) -> list[Frame]:
        """Whatever the log holds past after_seq, contiguous from after_seq + 1."""
        ...

    def sockets(self, user_id: str) -> int: ...

    @property
    def total_sockets(self) -> int: ...
