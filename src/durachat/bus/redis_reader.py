"""The Redis bus's reader: one task per node brings other nodes' frames to its sockets.

It runs one blocking XREAD over every stream this node's sockets need: the
conversation streams of the conversations they subscribe to (except those whose
reply this node generates: their frames reach local sockets directly) and the
user streams of the users attached here, plus the node's wake stream, written to
when that set changes so the blocked XREAD returns and is issued again. It fans
the frames out in process (`MemoryBus.fan_out`): one reader per node, never one
per socket (DESIGN.md, "Performance shape").

Per stream it remembers the last entry id it handled, so it reads on from there
after a dropped connection: nothing in between is missed or repeated. It skips
entries its own node wrote and the second copy of a retried write, and watches
each reply's `seq`; where frames may have been lost (a gap in `seq`, a `lost`
entry, a Redis that restarted empty, a subscription it could not settle) it
sends the conversation's sockets `resync`, and they catch up from the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import KeyT, StreamIdT

from durachat.bus import redis_streams as rs
from durachat.bus.memory import MemoryBus

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.05
BLOCK_MS = 1000
READ_COUNT = 1000
LOST_REASON = "events_lost"


class StreamReader:
    """The node's one reader of Redis Streams; see the module docstring.

    `listener` is a client of its own that never retries by itself, so that the
    reader sees every failure and checks, on reconnecting, whether Redis restarted;
    `redis` (shared) serves the short commands of `settle` and the wake-ups.
    """

    def __init__(
        self,
        redis: Redis,
        listener: Redis,
        node_id: str,
        local: MemoryBus,
        *,
        timeout_s: float,
        retry_max_s: float,
    ) -> None:
        self._redis = redis
        self._listener = listener
        self._node = node_id
        self._local = local
        self._timeout = timeout_s
        self._retry_max = retry_max_s
        self._wake = rs.wake_key(node_id)
        self._keys: dict[str, str] = {}
        """Streams read, by key: the conversation or user id they carry."""
        self._positions: dict[str, rs.StreamId] = {}
        self._dirty = True
        self._producing: Counter[str] = Counter()
        self._waiters: list[tuple[str, rs.StreamId, asyncio.Future[None]]] = []
        self._seqs: dict[str, tuple[str, int]] = {}
        """Per conversation: the reply and the `seq` of the last text delivered."""
        self._writes: dict[str, tuple[str, int]] = {}
        """Per conversation stream: the writer and number of the last entry handled."""
        self._blocked = False
        self._waking = False
        self._run_id: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.healthy = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="redis-bus-reader")

    def stop(self) -> None:
        """Begin stopping. A blocked XREAD ends only with its connection (cancelling
        it waits for the block to time out), so close the client, then `close()`."""
        self._closing = True  # a cancelled Redis call may surface as a RedisError
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        self.stop()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=1.0)
        self._fail_waiters()

    # -- what to read -------------------------------------------------------------

    def changed(self) -> None:
        """Local subscriptions changed: read the right streams from the next XREAD."""
        self._dirty = True

    def watch(self, conversation_id: str) -> None:
        """A conversation got a subscriber here: read its stream, now."""
        if rs.conversation_key(conversation_id) not in self._keys:
            self._dirty = True
            self._kick()

    def watch_user(self, user_id: str) -> None:
        """A socket of the user attached here: read the user's stream, now."""
        if rs.user_key(user_id) not in self._keys:
            self._dirty = True
            self._kick()

    def forget(self, key: str) -> None:
        """Nobody here needs this stream any more: a later subscription starts afresh."""
        self._positions.pop(key, None)
        self._writes.pop(key, None)
        if key.startswith(rs.CONVERSATION):
            self._seqs.pop(key[len(rs.CONVERSATION) :], None)
        self._dirty = True

    def produce(self, conversation_id: str) -> None:
        """This node generates a reply of the conversation: its frames reach local
        sockets directly, so its stream is not read meanwhile."""
        self._producing[conversation_id] += 1
        self._dirty = True
        key = rs.conversation_key(conversation_id)
        for waiter in [w for w in self._waiters if w[0] == key]:
            self._resolve(waiter)

    def produced(self, conversation_id: str, last: rs.StreamId | None) -> None:
        """The local reply ended and its frames are written up to `last`: read the
        conversation's stream again from after them."""
        self._producing[conversation_id] -= 1
        if self._producing[conversation_id] <= 0:
            del self._producing[conversation_id]
        key = rs.conversation_key(conversation_id)
        if last is not None and key in self._positions:
            self._positions[key] = max(self._positions[key], last)
        elif last is not None and self._local.subscribers(conversation_id):
            self._positions[key] = last
        self._dirty = True
        self._kick()

    def _rebuild(self) -> None:
        keys: dict[str, str] = {}
        for conversation_id in self._local.conversations():
            if conversation_id not in self._producing:
                keys[rs.conversation_key(conversation_id)] = conversation_id
        for user_id in self._local.users():
            keys[rs.user_key(user_id)] = user_id
        keys[self._wake] = ""
        self._keys = keys
        self._dirty = False

    # -- settling a subscription -----------------------------------------------

    async def settle(self, conversation_id: str) -> None:
        """See `Bus.settle`. On failure (Redis away, too slow) the conversation's
        sockets get `resync` rather than a silent gap."""
        if conversation_id in self._producing or not self._local.subscribers(conversation_id):
            return
        key = rs.conversation_key(conversation_id)
        try:
            async with asyncio.timeout(self._timeout):
                last = await self._last_id(key)
                if conversation_id in self._producing:
                    return
                if key not in self._positions:
                    self._positions[key] = last  # frames up to here are in the snapshot
                    self.watch(conversation_id)
                    return
                if self._positions[key] >= last:
                    return
                waiter = (key, last, asyncio.get_running_loop().create_future())
                self._waiters.append(waiter)
                self.watch(conversation_id)
                await waiter[2]
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("live events of conversation %s may be late (%s)", conversation_id, exc)
            self._lose(conversation_id)

    async def _last_id(self, key: str) -> rs.StreamId:
        newest: Any = await self._redis.xrevrange(key, "+", "-", count=1)
        return rs.parse_id(newest[0][0]) if newest else rs.ORIGIN

    def _resolve(self, waiter: tuple[str, rs.StreamId, asyncio.Future[None]]) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        if not waiter[2].done():
            waiter[2].set_result(None)

    def _check_waiters(self) -> None:
        for waiter in list(self._waiters):
            key, wanted, _ = waiter
            position = self._positions.get(key)
            if position is None or position >= wanted:
                self._resolve(waiter)

    def _fail_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for _, _, future in waiters:
            if not future.done():
                future.set_exception(TimeoutError("the Redis reader stopped"))

    # -- the loop ------------------------------------------------------------------

    def _kick(self) -> None:
        """Make a blocked XREAD return (it then reads the new set of streams)."""
        if self._blocked and not self._waking:
            self._waking = True
            asyncio.get_running_loop().create_task(self._wake_up())

    async def _wake_up(self) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.xadd(self._wake, {"x": 1}, maxlen=1, approximate=False)
            pipe.expire(self._wake, 3600)
            await pipe.execute()
        except (RedisError, OSError):
            pass  # the reader is failing too, and reconnects with the new set
        finally:
            self._waking = False

    async def _run(self) -> None:
        backoff = FIRST_RETRY_S
        while True:
            try:
                await self._connect()
                backoff = FIRST_RETRY_S
                while True:
                    await self._read_once()
            except (RedisError, OSError) as exc:
                if self._closing:
                    return
                if self.healthy:
                    log.warning("lost Redis (%s); reconnecting", exc)
                self.healthy = False
                self._blocked = False
                self._fail_waiters()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max)

    async def _connect(self) -> None:
        info: Any = await self._listener.info("server")
        run_id = str(info.get("run_id", ""))
        if self._run_id is not None and run_id != self._run_id:
            self._restarted()
        self._run_id = run_id
        if not self.healthy:
            log.info("reading events from Redis")
        self.healthy = True

    def _restarted(self) -> None:
        """Redis restarted (empty, or not with what we had read): whatever was in
        flight may be gone. Resync every conversation read from Redis; read every
        stream on from its newest entry."""
        log.warning("Redis restarted: conversations followed from other nodes resync")
        for key, conversation_id in self._keys.items():
            if key.startswith(rs.CONVERSATION):
                self._lose(conversation_id)
        self._positions.clear()
        self._writes.clear()
        self._seqs.clear()
        self._dirty = True

    async def _read_once(self) -> None:
        if self._dirty:
            self._rebuild()
        missing = [k for k in self._keys if k not in self._positions]
        if missing:
            pipe = self._listener.pipeline(transaction=False)
            for key in missing:
                pipe.xrevrange(key, "+", "-", count=1)
            newest: list[Any] = await pipe.execute()
            for key, entries in zip(missing, newest, strict=True):
                if key not in self._positions:
                    self._positions[key] = rs.parse_id(entries[0][0]) if entries else rs.ORIGIN
            if self._dirty:
                return  # the set changed meanwhile: position the new ones first
        streams: dict[KeyT, StreamIdT] = {}
        for key in self._keys:
            position = self._positions.get(key)
            if position is None:  # forgotten and wanted again meanwhile
                return
            streams[key] = rs.format_id(position)
        self._check_waiters()
        self._blocked = True
        try:
            response: Any = await self._listener.xread(streams, count=READ_COUNT, block=BLOCK_MS)
        finally:
            self._blocked = False
        for key, entries in response or ():
            self._handle(key, entries)
        self._check_waiters()

    def _handle(self, key: str, entries: list[tuple[str, dict[str, str]]]) -> None:
        position = self._positions.get(key)
        owner = self._keys.get(key)
        if position is None or owner is None:
            return  # forgotten while the read was on its way
        is_conversation = key.startswith(rs.CONVERSATION)
        is_user = key.startswith(rs.USER)
        for raw_id, fields in entries:
            entry_id = rs.parse_id(raw_id)
            if entry_id <= position:
                continue
            position = entry_id
            if fields.get("n") == self._node:
                continue
            if is_conversation:
                self._conversation_entry(key, owner, fields)
            elif is_user:
                self._local.fan_out_user(owner, fields["d"])
        self._positions[key] = position

    def _conversation_entry(self, key: str, conversation_id: str, fields: dict[str, str]) -> None:
        writer, number = fields["n"], int(fields["o"])
        last = self._writes.get(key)
        if last is not None and last[0] == writer and number <= last[1]:
            return  # the second copy of a write that was retried
        self._writes[key] = (writer, number)
        if conversation_id in self._producing:
            return
        frame = rs.frame_of(conversation_id, fields)
        kind, message_id = frame.kind, frame.message_id
        if kind == rs.LOST:
            self._lose(conversation_id)
            return
        if kind == "text" and message_id is not None:
            seen = self._seqs.get(conversation_id)
            self._seqs[conversation_id] = (message_id, frame.seq)
            if seen is not None and seen[0] == message_id:
                if frame.seq <= seen[1]:
                    self._seqs[conversation_id] = seen
                    return
                if frame.seq != seen[1] + 1:
                    self._lose(conversation_id)
                    return
        elif kind in ("message_started", "done"):
            self._seqs.pop(conversation_id, None)
        self._local.fan_out(frame)

    def _lose(self, conversation_id: str) -> None:
        for outbox in list(self._local.subscribers(conversation_id)):
            outbox.resync(conversation_id, LOST_REASON)
