"""The Redis bus's writer: a node's frames into Redis Streams, one pipeline a batch.

Publishing appends to an in-memory queue and never awaits; one task drains the
queue, writing everything that was queued since its last write in one pipeline
(never one awaited XADD per chunk: DESIGN.md, "Performance shape"). Streams are
bounded and given an expiry on every write: long while a reply runs, the replay
TTL once it ended (`End`).

When Redis cannot be reached the failed batch is retried as it was, with
exponential backoff, and new frames queue behind it up to `buffer_max`; past that
the oldest frames are dropped and, once Redis answers again, each conversation
that lost frames gets a `lost` entry so that other nodes send its readers
`resync`. The store stays the source of truth throughout (DESIGN.md invariant 6);
this module never touches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from durachat.bus import redis_streams as rs
from durachat.events import Frame

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.05
BATCH_MAX = 5000
"""Most queued operations written in one pipeline."""


@dataclass(slots=True)
class Begin:
    """A generation of the reply starts here: its old log (a crashed run's) goes."""

    message_id: str


@dataclass(slots=True)
class UserEvent:
    user_id: str
    data: str


@dataclass(slots=True)
class Lost:
    conversation_id: str


@dataclass(slots=True)
class End:
    """The reply ended: its streams now expire after the replay TTL. `written` runs
    once everything queued before it is in Redis (or was dropped)."""

    message_id: str
    conversation_id: str
    written: Callable[[], None]


Op = Frame | Begin | UserEvent | Lost | End


class StreamWriter:
    """Queues operations and writes them to Redis in batches, surviving outages."""

    def __init__(
        self,
        redis: Redis,
        node_id: str,
        *,
        stream_max: int,
        live_ttl_s: float,
        ended_ttl_s: float,
        buffer_max: int,
        retry_max_s: float,
    ) -> None:
        self._redis = redis
        self._node = node_id
        self._stream_max = stream_max
        self._live_ttl_ms = max(int(live_ttl_s * 1000), 1)
        self._ended_ttl_ms = max(int(ended_ttl_s * 1000), 1)
        self._buffer_max = buffer_max
        self._retry_max = retry_max_s
        self._ops: deque[Op] = deque()
        self._wanted = asyncio.Event()
        self._idle = asyncio.Event()
        self._retrying: tuple[list[Op], int] | None = None
        self._lost: set[str] = set()
        self._op = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.own_last: dict[str, rs.StreamId] = {}
        """Per conversation, the id of the last entry this node wrote to its stream."""
        self.healthy = True
        self.dropped = 0

    def add(self, op: Op) -> None:
        """Queue an operation; never blocks (the publisher's path)."""
        self._ops.append(op)
        self._wanted.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="redis-bus-writer")

    @property
    def pending(self) -> int:
        return len(self._ops) + (len(self._retrying[0]) if self._retrying else 0)

    async def close(self, timeout: float) -> None:
        """Write what is queued (bounded by `timeout`), then stop."""
        if self.pending and self.healthy:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
        self._closing = True  # a cancelled Redis call may surface as a RedisError
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=1.0)
        if self.pending:
            log.warning("%d events were not written to Redis before shutdown", self.pending)

    async def _run(self) -> None:
        backoff = FIRST_RETRY_S
        while True:
            if self._retrying is None:
                if not self._ops:
                    self._idle.set()
                    self._wanted.clear()
                    await self._wanted.wait()
                    continue
                self._retrying = (self._take(), self._op)
            batch, base = self._retrying
            try:
                await self._write(batch, base)
            except (RedisError, OSError) as exc:
                if self._closing:
                    return
                if self.healthy:
                    log.warning("cannot write to Redis (%s); retrying, events are kept", exc)
                self.healthy = False
                self._bound()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max)
                continue
            self._retrying = None
            backoff = FIRST_RETRY_S
            if not self.healthy:
                log.warning("Redis takes writes again")
                self.healthy = True

    def _take(self) -> list[Op]:
        batch: list[Op] = [Lost(c) for c in sorted(self._lost)]
        self._lost.clear()
        ops = self._ops
        for _ in range(min(len(ops), BATCH_MAX)):
            batch.append(ops.popleft())
        return batch

    def _bound(self) -> None:
        """While Redis is away: drop the oldest frames beyond `buffer_max`."""
        excess = len(self._ops) - self._buffer_max
        if excess <= 0:
            return
        kept: list[Op] = []
        while excess > 0 and self._ops:
            op = self._ops.popleft()
            if isinstance(op, Frame):
                if op.conversation_id is not None:
                    self._lost.add(op.conversation_id)
            elif not isinstance(op, UserEvent):
                kept.append(op)  # begins and ends are few and must not be lost
                continue
            excess -= 1
            self.dropped += 1
        self._ops.extendleft(reversed(kept))
        log.warning("Redis is away: dropped the oldest events beyond %d", self._buffer_max)

    async def _write(self, batch: list[Op], base: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        live: set[str] = set()
        users: set[str] = set()
        ends: list[End] = []
        last_entry: dict[str, int] = {}
        op = base
        stream_max = self._stream_max
        for item in batch:
            if isinstance(item, Frame):
                conversation_id = item.conversation_id
                if conversation_id is None:
                    continue
                if item.kind == "text" and item.message_id is not None:
                    key = rs.reply_key(item.message_id)
                    pipe.xadd(key, {"d": item.data}, id=rs.seq_id(item.seq), maxlen=stream_max)
                    live.add(key)
                op += 1
                key = rs.conversation_key(conversation_id)
                pipe.xadd(key, rs.conversation_entry(self._node, op, item), maxlen=stream_max)
                last_entry[conversation_id] = len(pipe) - 1
                live.add(key)
            elif isinstance(item, Begin):
                pipe.delete(rs.reply_key(item.message_id))
            elif isinstance(item, UserEvent):
                key = rs.user_key(item.user_id)
                pipe.xadd(key, {"n": self._node, "d": item.data}, maxlen=rs.USER_STREAM_MAX)
                users.add(key)
            elif isinstance(item, Lost):
                op += 1
                key = rs.conversation_key(item.conversation_id)
                pipe.xadd(key, rs.lost_entry(self._node, op), maxlen=stream_max)
                live.add(key)
            else:
                ends.append(item)
        for key in live:
            pipe.pexpire(key, self._live_ttl_ms)
        for key in users:
            pipe.pexpire(key, self._ended_ttl_ms)
        for end in ends:
            pipe.pexpire(rs.reply_key(end.message_id), self._ended_ttl_ms)
            pipe.pexpire(rs.conversation_key(end.conversation_id), self._ended_ttl_ms)
        results: list[Any] = await pipe.execute(raise_on_error=False) if len(pipe) else []
        for result in results:
            if isinstance(result, RedisConnectionError | RedisTimeoutError):
                raise result
            if isinstance(result, Exception):  # e.g. a retried reply entry already there
                log.debug("Redis refused one write: %s", result)
        self._op = op
        for conversation_id, index in last_entry.items():
            entry_id = results[index]
            if isinstance(entry_id, str):
                self.own_last[conversation_id] = rs.parse_id(entry_id)
        for end in ends:
            end.written()
