"""The in-process event bus: one node, no Redis.

Publishing never awaits: a frame is appended to each subscriber's bounded outbox
(the same string object for all of them) and to the reply's replay log. Logs of
finished replies are dropped `replay_ttl_s` seconds after the end. The Redis bus
uses one of these for its own node's sockets and replies (`fan_out` delivers a
frame that came from another node without logging it).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from durachat.bus.outbox import Outbox
from durachat.events import Frame


class _Log:
    __slots__ = ("first_seq", "frames")

    def __init__(self, first_seq: int) -> None:
        self.first_seq = first_seq
        self.frames: list[Frame] = []

    def after(self, seq: int) -> list[Frame]:
        start = max(seq + 1 - self.first_seq, 0)
        return self.frames[start:]


class MemoryBus:
    """The `Bus` of a single process."""

    def __init__(self, replay_ttl_s: float) -> None:
        self._ttl = replay_ttl_s
        self._topics: dict[str, set[Outbox]] = defaultdict(set)
        self._users: dict[str, set[Outbox]] = defaultdict(set)
        self._logs: dict[str, _Log] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()

    async def ping(self) -> bool:
        return True

    async def settle(self, conversation_id: str) -> None:
        return None  # publishing delivers synchronously: nothing is in flight

    def attach(self, outbox: Outbox) -> None:
        self._users[outbox.user_id].add(outbox)

    def detach(self, outbox: Outbox) -> None:
        for conversation_id in list(outbox.conversations):
            self.unsubscribe(outbox, conversation_id)
        sockets = self._users.get(outbox.user_id)
        if sockets is not None:
            sockets.discard(outbox)
            if not sockets:
                del self._users[outbox.user_id]
        outbox.close()

    def subscribe(self, outbox: Outbox, conversation_id: str) -> None:
        self._topics[conversation_id].add(outbox)
        outbox.conversations.add(conversation_id)

    def unsubscribe(self, outbox: Outbox, conversation_id: str) -> None:
        subscribers = self._topics.get(conversation_id)
        if subscribers is not None:
            subscribers.discard(outbox)
            if not subscribers:
                del self._topics[conversation_id]
        outbox.drop(conversation_id)

    def publish(self, frame: Frame) -> None:
        if frame.kind == "text" and frame.message_id is not None:
            log = self._logs.get(frame.message_id)
            if log is None:
                log = self._logs[frame.message_id] = _Log(frame.seq)
            log.frames.append(frame)
        subscribers = self._topics.get(frame.conversation_id or "")
        if subscribers:
            for outbox in subscribers:
                outbox.push(frame)

    def publish_user(self, user_id: str, frame: Frame) -> None:
        self.fan_out_user(user_id, frame.data)

    def fan_out(self, frame: Frame) -> None:
        """Deliver a conversation's frame to its subscribers here, without logging it."""
        subscribers = self._topics.get(frame.conversation_id or "")
        if subscribers:
            for outbox in subscribers:
                outbox.push(frame)

    def fan_out_user(self, user_id: str, data: str) -> None:
        for outbox in self._users.get(user_id, ()):
            outbox.push_data(data)

    def subscribers(self, conversation_id: str) -> set[Outbox]:
        """The outboxes subscribed to a conversation here (do not change the set)."""
        return self._topics.get(conversation_id) or set()

    def conversations(self) -> list[str]:
        """The conversations that have a subscriber here."""
        return list(self._topics)

    def users(self) -> list[str]:
        """The users that have a socket attached here."""
        return list(self._users)

    def forget_log(self, message_id: str) -> None:
        """Drop a reply's log now (a new generation of it starts afresh)."""
        handle = self._expiry.pop(message_id, None)
        if handle is not None:
            handle.cancel()
        self._logs.pop(message_id, None)

    def end_log(self, message_id: str) -> None:
        if message_id not in self._logs:
            return
        old = self._expiry.pop(message_id, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._expiry[message_id] = loop.call_later(self._ttl, self._expire, message_id)

    def _expire(self, message_id: str) -> None:
        self._logs.pop(message_id, None)
        self._expiry.pop(message_id, None)

    def logged(self, message_id: str, after_seq: int) -> list[Frame] | None:
        """`replay`, synchronously."""
        log = self._logs.get(message_id)
        if log is None or log.first_seq > after_seq + 1:
            return None
        return log.after(after_seq)

    async def replay(self, message_id: str, after_seq: int) -> list[Frame] | None:
        return self.logged(message_id, after_seq)

    async def log_tail(self, message_id: str, after_seq: int) -> list[Frame]:
        return self.logged(message_id, after_seq) or []

    def sockets(self, user_id: str) -> int:
        return len(self._users.get(user_id, ()))

    @property
    def total_sockets(self) -> int:
        return sum(len(s) for s in self._users.values())
