"""The event bus of many nodes: Redis Streams behind the `Bus` protocol.

Selected when `DURACHAT_REDIS_URL` is set. Each node keeps a `MemoryBus` for its
own sockets: a frame published here reaches local subscribers exactly as on one
node (same outboxes, same encoded string, no await), and is queued for Redis,
written in one pipeline per batch by `redis_writer.StreamWriter`. Frames of
replies generated on other nodes come in through the node's one
`redis_reader.StreamReader` and are fanned out to local subscribers. What lives
in Redis, and for how long, is listed in `redis_streams.py`.

Resume by `seq` works from any node: `replay` and `log_tail` read the reply's
stream (paged XRANGE), or this node's memory while it generates the reply (which
also holds what is not yet written to Redis). Nothing durable lives only here
(DESIGN.md invariant 6): if Redis loses data, affected readers get `resync` or a
full catch-up from the store. The node id names this process in Redis, for the
leases that come with the multi-node runner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from durachat.bus import redis_streams as rs
from durachat.bus.memory import MemoryBus
from durachat.bus.outbox import Outbox
from durachat.bus.redis_reader import BLOCK_MS, StreamReader
from durachat.bus.redis_writer import Begin, End, StreamWriter, UserEvent
from durachat.events import Frame

log = logging.getLogger(__name__)

PAGE = 1000
"""Entries read per XRANGE while replaying a log."""


class RedisBus:
    """The `Bus` of one node among many."""

    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        replay_ttl_s: float,
        live_ttl_s: float,
        stream_max: int,
        timeout_s: float,
        retry_max_s: float,
        buffer_max: int,
    ) -> None:
        self.node_id = node_id
        self._timeout = timeout_s
        self._redis = _client(url, timeout_s, retries=1)  # a stale pooled connection
        self._listener = _client(url, timeout_s, retries=0)  # the reader's: it must see
        # every failure, to learn whether Redis restarted (and lost what was in flight)
        self._local = MemoryBus(replay_ttl_s)
        self._writer = StreamWriter(
            self._redis,
            node_id,
            stream_max=stream_max,
            live_ttl_s=live_ttl_s,
            ended_ttl_s=replay_ttl_s,
            buffer_max=buffer_max,
            retry_max_s=retry_max_s,
        )
        self._reader = StreamReader(
            self._redis,
            self._listener,
            node_id,
            self._local,
            timeout_s=timeout_s,
            retry_max_s=retry_max_s,
        )
        self._producing: dict[str, str] = {}
        """Replies generated here, to their conversations; until written to Redis."""

    # -- life ----------------------------------------------------------------------

    async def start(self) -> None:
        if not await self.ping():
            log.warning("Redis does not answer yet; events reach other nodes once it does")
        self._writer.start()
        self._reader.start()

    async def close(self) -> None:
        await self._writer.close(self._timeout)
        self._reader.stop()
        await self._listener.aclose()
        await self._reader.close()
        await self._redis.aclose()
        await self._local.close()

    async def ping(self) -> bool:
        """Whether Redis answers within the timeout (for `/readyz`); never raises."""
        try:
            async with asyncio.timeout(self._timeout):
                return bool(await self._redis.ping())
        except (TimeoutError, RedisError, OSError):
            return False

    # -- sockets -------------------------------------------------------------------

    def attach(self, outbox: Outbox) -> None:
        self._local.attach(outbox)
        self._reader.watch_user(outbox.user_id)

    def detach(self, outbox: Outbox) -> None:
        conversations = list(outbox.conversations)
        self._local.detach(outbox)
        for conversation_id in conversations:
            self._forget_conversation(conversation_id)
        if not self._local.sockets(outbox.user_id):
            self._reader.forget(rs.user_key(outbox.user_id))
        self._reader.changed()

    def subscribe(self, outbox: Outbox, conversation_id: str) -> None:
        self._local.subscribe(outbox, conversation_id)
        self._reader.watch(conversation_id)

    def unsubscribe(self, outbox: Outbox, conversation_id: str) -> None:
        self._local.unsubscribe(outbox, conversation_id)
        self._forget_conversation(conversation_id)

    def _forget_conversation(self, conversation_id: str) -> None:
        if not self._local.subscribers(conversation_id):
            self._reader.forget(rs.conversation_key(conversation_id))

    async def settle(self, conversation_id: str) -> None:
        await self._reader.settle(conversation_id)

    def sockets(self, user_id: str) -> int:
        return self._local.sockets(user_id)

    @property
    def total_sockets(self) -> int:
        return self._local.total_sockets

    # -- publishing ----------------------------------------------------------------

    def publish(self, frame: Frame) -> None:
        message_id = frame.message_id
        if message_id is not None and message_id not in self._producing:
            self._begin(message_id, frame.conversation_id or "")
        self._local.publish(frame)
        self._writer.add(frame)

    def _begin(self, message_id: str, conversation_id: str) -> None:
        """The first frame of a generation here: its logs start afresh (a crashed
        run elsewhere may have logged text that the store never got)."""
        self._producing[message_id] = conversation_id
        self._local.forget_log(message_id)
        self._reader.produce(conversation_id)
        self._writer.add(Begin(message_id))

    def publish_user(self, user_id: str, frame: Frame) -> None:
        self._local.publish_user(user_id, frame)
        self._writer.add(UserEvent(user_id, frame.data))

    def end_log(self, message_id: str) -> None:
        self._local.end_log(message_id)
        conversation_id = self._producing.get(message_id)
        if conversation_id is not None:
            self._writer.add(End(message_id, conversation_id, self._ended(message_id)))

    def _ended(self, message_id: str) -> Callable[[], None]:
        def written() -> None:
            conversation_id = self._producing.pop(message_id, None)
            if conversation_id is not None:
                last = self._writer.own_last.pop(conversation_id, None)
                self._reader.produced(conversation_id, last)

        return written

    # -- replay --------------------------------------------------------------------

    async def replay(self, message_id: str, after_seq: int) -> list[Frame] | None:
        return await self._read(message_id, after_seq, whole=True)

    async def log_tail(self, message_id: str, after_seq: int) -> list[Frame]:
        return await self._read(message_id, after_seq, whole=False) or []

    async def _read(self, message_id: str, after_seq: int, whole: bool) -> list[Frame] | None:
        if message_id in self._producing:
            return self._local.logged(message_id, after_seq)
        try:
            async with asyncio.timeout(self._timeout):
                return await self._read_log(message_id, after_seq, whole)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("cannot read the replay log of %s (%s)", message_id, exc)
            return None  # the caller falls back to a snapshot from the store

    async def _read_log(self, message_id: str, after_seq: int, whole: bool) -> list[Frame] | None:
        """The reply's logged frames after `after_seq`, a page at a time: None if the
        log lacks the first of them; at a gap, None if `whole` is asked, else the
        contiguous part."""
        key = rs.reply_key(message_id)
        frames: list[Frame] = []
        start = rs.seq_id(after_seq + 1)
        expected = after_seq + 1
        while True:
            entries: Any = await self._redis.xrange(key, start, "+", count=PAGE)
            for raw_id, fields in entries:
                if rs.parse_id(raw_id)[0] != expected:
                    return None if whole or not frames else frames
                frames.append(_text_frame(fields["d"]))
                expected += 1
            if len(entries) < PAGE:
                break
            start = "(" + entries[-1][0]
        if not frames and not await self._redis.exists(key):
            return None
        return frames


def _client(url: str, timeout_s: float, retries: int) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout_s + BLOCK_MS / 1000,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), retries),  # beyond that our own loops back off
    )


def _text_frame(data: str) -> Frame:
    payload = orjson.loads(data)
    return Frame(
        "text",
        data,
        payload["conversationId"],
        payload["messageId"],
        payload["seq"],
        payload["content"],
    )
