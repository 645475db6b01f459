"""Group commit of streaming replies: one transaction for the pending text of all.

A reply hands each chunk to `add()` (no I/O, a few list operations). A flush runs
as soon as any reply has `flush_chunks` unflushed chunks, or its oldest unflushed
chunk is `flush_ms` old, or a reply finishes; it writes the pending text of every
active reply in one `Store.apply_flush` transaction. So at most `flush_chunks`
chunks or `flush_ms` of a reply can be lost by a hard crash, and 1,000 concurrent
replies cost tens of transactions per second, not thousands.

Flushes are serialised: appends of one reply reach the database in order, and a
final write (status, usage, end of stream) lands after every earlier append.

Every write is idempotent. A failed flush may have committed all the same (the
connection died after COMMIT, before its acknowledgement), so its retry must not
append the text a second time. The committer knows where each reply's stored text
ends (`begin` is told the stored lengths and seq once per reply; a flush moves them
on when it takes a batch), and each `FlushItem` carries the length its text starts
at and the seq it follows: the store keeps that many characters and writes the text
after them (a plain append when the stored seq shows no attempt has landed). A retry
carries the failed batch's base and its text followed by whatever arrived since, so
it writes the same text whether or not the first attempt landed. `add` does no more
than before; the base is looked up once per reply and flush.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from durachat.errors import StoreError
from durachat.store.base import FinalState, FlushItem

log = logging.getLogger(__name__)


class FlushTarget(Protocol):
    """What group commit needs of a store: `Store.apply_flush`."""

    async def apply_flush(self, items: Sequence[FlushItem]) -> set[str]: ...


class _Pending:
    __slots__ = (
        "base",
        "base_seq",
        "chunks",
        "epoch",
        "final",
        "parts",
        "reasoning",
        "reasoning_base",
        "reasoning_seq",
        "seq",
        "since",
        "waiters",
    )

    def __init__(
        self, epoch: int, since: float, base: int, reasoning_base: int, base_seq: int
    ) -> None:
        self.epoch = epoch
        self.since = since
        self.base = base  # the stored length of content that `parts` follow
        self.reasoning_base = reasoning_base
        self.base_seq = base_seq  # the stored seq they follow
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.seq = 0
        self.reasoning_seq = 0
        self.chunks = 0
        self.final: FinalState | None = None
        self.waiters: list[asyncio.Future[None]] = []

    def merge_after(self, newer: _Pending) -> None:
        """Put this (older, maybe unwritten) pending write in front of a newer one:
        this one's base stays, the newer one's (where this one's text ends) goes."""
        self.parts.extend(newer.parts)
        self.reasoning.extend(newer.reasoning)
        self.seq = max(self.seq, newer.seq)
        self.reasoning_seq = max(self.reasoning_seq, newer.reasoning_seq)
        self.chunks += newer.chunks
        self.final = newer.final or self.final
        self.waiters.extend(newer.waiters)

    def item(self, message_id: str) -> FlushItem:
        return FlushItem(
            message_id,
            self.epoch,
            "".join(self.parts),
            self.seq,
            "".join(self.reasoning),
            self.reasoning_seq,
            self.final,
            base=self.base,
            reasoning_base=self.reasoning_base,
            base_seq=self.base_seq,
        )


class GroupCommitter:
    """Batches the writes of every streaming reply into shared transactions."""

    def __init__(
        self,
        store: FlushTarget,
        flush_chunks: int,
        flush_ms: int,
        on_fenced: Callable[[str], None] = lambda _: None,
        on_failed: Callable[[list[str], str], None] = lambda _ids, _reason: None,
        on_flushed: Callable[[float], None] = lambda _seconds: None,
    ) -> None:
        """`on_flushed` is told the seconds of each flush that committed (metrics)."""
        self._store = store
        self._chunks = flush_chunks
        self._window = flush_ms / 1000
        self._on_fenced = on_fenced
        self._on_failed = on_failed
        self._on_flushed = on_flushed
        self._pending: dict[str, _Pending] = {}
        self._ends: dict[str, tuple[int, int, int]] = {}  # where each reply's next write starts
        self._signal: asyncio.Future[None] | None = None  # what the flush loop waits on
        self._urgent = False  # a reply has flush_chunks unwritten chunks, or has ended
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.last_error: str | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="durachat-group-commit")

    def begin(self, message_id: str, chars: int, reasoning_chars: int, seq: int) -> None:
        """Say how long a reply's stored content and reasoning are (in characters),
        and its stored seq, before its first write: a new reply's are 0, a continued
        one's what it kept. Call once per reply, before `add`."""
        self._ends[message_id] = (chars, reasoning_chars, seq)

    def _entry(self, message_id: str, epoch: int) -> _Pending:
        entry = self._pending.get(message_id)
        if entry is None:
            ends = self._ends.get(message_id)
            if ends is None:
                raise RuntimeError(f"reply {message_id} was not begun (GroupCommitter.begin)")
            entry = _Pending(epoch, time.monotonic(), *ends)
            self._pending[message_id] = entry
            if len(self._pending) == 1:
                self._poke()  # the flush loop arms its timer for this entry
        return entry

    def add(self, message_id: str, epoch: int, text: str, seq: int) -> None:
        """Queue a chunk of a reply's text; `seq` is the seq it brings the reply to."""
        entry = self._entry(message_id, epoch)
        entry.parts.append(text)
        entry.seq = seq
        entry.chunks += 1
        if entry.chunks == self._chunks:
            self._urgent = True
            self._poke()

    def add_reasoning(
        self, message_id: str, epoch: int, text: str, reasoning_seq: int, seq: int
    ) -> None:
        entry = self._entry(message_id, epoch)
        entry.reasoning.append(text)
        entry.reasoning_seq = reasoning_seq
        entry.seq = max(entry.seq, seq)

    async def finish(
        self, message_id: str, epoch: int, seq: int, final: FinalState, reasoning_seq: int = 0
    ) -> None:
        """Write a reply's last text and final state; return once committed."""
        entry = self._entry(message_id, epoch)
        entry.seq = max(entry.seq, seq)
        entry.reasoning_seq = max(entry.reasoning_seq, reasoning_seq)
        entry.final = final
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.waiters.append(waiter)
        self._urgent = True
        self._poke()
        await asyncio.shield(waiter)

    def _poke(self) -> None:
        """Wake the flush loop (it decides whether a flush is due)."""
        signal = self._signal
        if signal is not None and not signal.done():
            signal.set_result(None)

    def _timeout(self) -> float | None:
        if not self._pending:
            return None
        oldest = next(iter(self._pending.values()))
        return max(oldest.since + self._window - time.monotonic(), 0.0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._closing and not self._pending:
                return
            if self._due():
                await self.flush()
                continue
            signal = self._signal = loop.create_future()
            timeout = self._timeout()
            timer = loop.call_later(timeout, self._poke) if timeout is not None else None
            try:
                await signal
            finally:
                self._signal = None
                if timer is not None:
                    timer.cancel()

    def _due(self) -> bool:
        if not self._pending:
            return False
        if self._closing or self._urgent:
            return True
        timeout = self._timeout()
        return timeout is not None and timeout <= 0

    async def flush(self) -> None:
        """Write everything pending in one transaction."""
        batch, self._pending = self._pending, {}
        self._urgent = False
        if not batch:
            return
        items = [entry.item(message_id) for message_id, entry in batch.items()]
        for item in items:  # text that arrives from now on follows this batch's
            chars, reasoning = len(item.delta), len(item.reasoning_delta)
            ends = item.base + chars, item.reasoning_base + reasoning, item.seq
            self._ends[item.message_id] = ends
        started = time.perf_counter()
        try:
            fenced = await self._store.apply_flush(items)
        except Exception as exc:  # the database failed: keep the text, retry
            if not isinstance(exc, StoreError):
                log.exception("unexpected error in a flush")
            self._requeue(batch, str(exc))
            await asyncio.sleep(self._window)
            return
        self._on_flushed(time.perf_counter() - started)
        self.last_error = None
        for message_id, entry in batch.items():
            if message_id in fenced:
                self._on_fenced(message_id)
            if entry.final is not None:
                self._ends.pop(message_id, None)  # the reply has ended
            for waiter in entry.waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _requeue(self, batch: dict[str, _Pending], reason: str) -> None:
        """A flush failed: keep its text in front of what arrived since; retry later."""
        log.error("flush of %d replies failed, will retry: %s", len(batch), reason)
        self.last_error = reason
        self._on_failed(list(batch), reason)
        now = time.monotonic()
        for message_id, entry in batch.items():
            newer = self._pending.pop(message_id, None)
            if newer is not None:
                entry.merge_after(newer)
            entry.since = now
        batch.update(self._pending)
        self._pending = batch

    async def close(self, timeout: float) -> None:
        """Write everything still pending and stop the flush loop (give up after timeout)."""
        self._closing = True
        self._poke()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(task, timeout)
        except TimeoutError:
            log.error("gave up writing %d pending replies at shutdown", len(self._pending))
