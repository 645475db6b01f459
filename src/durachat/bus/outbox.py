"""The bounded outbox of one socket: where the bus puts frames for it.

The bus pushes already-encoded frames here without ever awaiting; the socket's own
writer task drains it. When the outbox is full the socket reads too slowly: its
queue is dropped, it gets one `resync` per subscribed conversation, and further
frames of those conversations are dropped until it subscribes again (DESIGN.md
invariant 5: a slow reader never slows a writer).

While a subscription is being brought up to date ("subscribe, then snapshot"),
its live frames are held aside and released, minus what the snapshot already
covers, by `release()`.

Most sockets are idle most of the time (SPEC 9: an idle socket costs under
32 KB), so an outbox allocates nothing it does not use: the queue exists only
while frames wait (a `deque` costs about 600 bytes even when empty), the waiter
only while a queue-mode consumer waits, and the set of resyncing conversations
is a shared empty `frozenset` until one resyncs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from durachat import events
from durachat.events import Frame


@dataclass(slots=True)
class Watermark:
    """What a snapshot sent to the client already covers, per message."""

    seqs: dict[str, int] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    known: set[str] = field(default_factory=set)

    def covers(self, frame: Frame) -> bool:
        message_id = frame.message_id
        if message_id is None:
            return False
        if frame.kind == "text":
            return frame.seq <= self.seqs.get(message_id, 0)
        if frame.kind == "done":
            return message_id in self.finished
        if frame.kind == "message_started":
            return message_id in self.known
        return False


Sender = Callable[[str], Coroutine[Any, Any, None]]


async def _resume(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    """Run to its end a coroutine that was stepped by hand and suspended.

    This does what an asyncio Task does for each step: wait, without raising, for
    the future the coroutine yielded (clearing its "blocking" mark, which the
    future's own iterator checks), then send the coroutine `None` so that it reads
    the future's result, or its exception, itself.
    """
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                yielded._asyncio_future_blocking = False
                await asyncio.wait([yielded])
        except asyncio.CancelledError:
            coro.close()
            raise
        try:
            yielded = coro.send(None)
        except StopIteration:
            return


class Outbox:
    """Frames waiting to be sent on one socket.

    With a `send` function (WebSocket), a frame is sent at once from the
    publisher's task when nothing is queued and the send completes without
    waiting, which it does while the socket's transport accepts data: no task
    switch per frame. When a send has to wait (the peer reads slowly), it is
    finished by a task of the outbox's own, and frames queue behind it, up to
    `limit`. Without `send` (SSE), the consumer drains the queue with
    `next_batch()`.

    `write`, when given with `send`, is tried first for a frame that would be sent
    at once: it writes the frame synchronously and says True, or says False and
    the frame takes `send` (`api/ws_wire.py`: bytes straight to the transport).
    """

    __slots__ = (
        "_flusher",
        "_held",
        "_queue",
        "_send",
        "_waiter",
        "_write",
        "closed",
        "conversations",
        "limit",
        "resyncing",
        "user_id",
    )

    def __init__(
        self,
        user_id: str,
        limit: int,
        send: Sender | None = None,
        write: Callable[[str], bool] | None = None,
    ) -> None:
        self.user_id = user_id
        self.limit = limit
        self.conversations: set[str] = set()
        self.resyncing: frozenset[str] = frozenset()
        """Copied on change, which is rare: an idle socket shares the empty one."""
        self.closed = False
        self._queue: deque[str] | None = None
        """Frames waiting to be sent; `None` when there are none."""
        self._held: dict[str, list[Frame]] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._send = send
        self._write = write
        self._flusher: asyncio.Task[None] | None = None

    def push(self, frame: Frame) -> None:
        """Queue a frame; never blocks (called by the bus on the publisher's path)."""
        conversation_id = frame.conversation_id
        if conversation_id is not None:
            if conversation_id in self.resyncing:
                return
            held = self._held.get(conversation_id)
            if held is not None:
                held.append(frame)
                return
        self.push_data(frame.data)

    def push_data(self, data: str) -> None:
        if self.closed:
            return
        queue = self._queue
        if not queue:
            if self._send is not None and self._flusher is None:
                write = self._write
                if write is None or not write(data):
                    self._send_now(data)
                return
            if queue is None:
                queue = self._queue = deque()
        elif len(queue) >= self.limit:
            self._overflow()
            return
        queue.append(data)
        if self._send is None:
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _send_now(self, data: str) -> None:
        assert self._send is not None
        coro = self._send(data)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
        except Exception:  # the peer is gone; the socket's reader will notice
            self._gone()
            return
        self._flusher = asyncio.get_running_loop().create_task(self._flush(coro, yielded))

    async def _flush(self, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        assert self._send is not None
        try:
            await _resume(coro, yielded)
            while self._queue:
                await self._send(self._queue.popleft())
            self._queue = None  # drained: an idle socket keeps no buffer
        except Exception:  # the peer is gone
            self._gone()
        finally:
            self._flusher = None

    def _gone(self) -> None:
        self.closed = True
        self._queue = None

    def _overflow(self) -> None:
        self._queue = deque(
            events.resync(conversation_id).data for conversation_id in sorted(self.conversations)
        )
        self.resyncing |= self.conversations
        if self._send is None:
            self._wake()

    def resync(self, conversation_id: str, reason: str = "slow_consumer") -> None:
        """Frames of a conversation may have been lost on their way here: drop what
        is held, send `resync`, and drop further frames until it subscribes again."""
        if conversation_id not in self.conversations or conversation_id in self.resyncing:
            return
        self._held.pop(conversation_id, None)
        self.resyncing |= {conversation_id}
        self.push_data(events.resync(conversation_id, reason).data)

    def hold(self, conversation_id: str) -> None:
        """Start holding live frames of a conversation while a snapshot is made."""
        self._held[conversation_id] = []
        self._stop_resyncing(conversation_id)

    def release(self, conversation_id: str, watermark: Watermark) -> None:
        """Queue the held frames that the snapshot does not cover; resume live flow."""
        held = self._held.pop(conversation_id, [])
        for frame in held:
            if not watermark.covers(frame):
                self.push_data(frame.data)

    def drop(self, conversation_id: str) -> None:
        self._held.pop(conversation_id, None)
        self._stop_resyncing(conversation_id)
        self.conversations.discard(conversation_id)

    def _stop_resyncing(self, conversation_id: str) -> None:
        if conversation_id in self.resyncing:
            self.resyncing -= {conversation_id}

    async def next_batch(self) -> list[str]:
        """Queue mode: wait for frames and take all that are queued (empty once closed).

        One consumer at a time (an event stream's response body).
        """
        while not self._queue:
            if self.closed:
                return []
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self.take()

    def take(self) -> list[str]:
        """Queue mode: take all that is queued now, without waiting."""
        queue, self._queue = self._queue, None
        return list(queue) if queue else []

    def close(self) -> None:
        """Take no more frames; what is queued is still sent."""
        self.closed = True
        self._wake()

    async def drained(self, timeout: float) -> None:
        """Wait (bounded) until what is queued has been sent."""
        flusher = self._flusher
        if flusher is not None:
            await asyncio.wait([flusher], timeout=timeout)

    def __len__(self) -> int:
        return len(self._queue) if self._queue else 0
