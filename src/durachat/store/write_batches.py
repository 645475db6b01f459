"""Group commit for every write on SQLite: writes that wait together commit together.

SQLite has one writer, so writes queue for it anyway. Instead of a transaction each
(BEGIN, the statements, COMMIT and its WAL writes), the writes waiting when the
writer comes free run one after another in one transaction: a burst of 1,000 new
turns costs a few dozen commits, not 1,000. Each caller still gets its own result
or its own error, and only after the commit:

- a batch is capped by `budget_s` of work (and `max_items`), so one batch never
  holds the event loop for long (the writer runs inline, `inline_sqlite.py`);
- when any write of a batch fails, or the commit does, the whole transaction rolls
  back and each of its writes runs again alone, in a transaction of its own, so a
  write that conflicts fails alone, with its own message, and the others land.
  A write is therefore a function of the connection only, safe to run twice when
  the first run was rolled back (every write of `SqlStore` is).

A write, once queued, runs whole whatever happens to its caller (a cancelled
caller stops waiting; the write still commits or fails).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from durachat.store.engine import translate_errors

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[T]]
"""The body of one write: statements on the connection it is given, nothing else."""

BUDGET_S = 0.002
MAX_ITEMS = 256


@dataclass(slots=True)
class _Pending:
    work: Work[Any]
    conflict: str
    future: asyncio.Future[Any]


class WriteBatches:
    """The queue of writes for one writer engine, drained in batched transactions."""

    def __init__(
        self,
        engine: AsyncEngine,
        on_begin: Callable[[], None],
        on_commit: Callable[[], None],
        budget_s: float = BUDGET_S,
        max_items: int = MAX_ITEMS,
    ) -> None:
        self._engine = engine
        self._on_begin = on_begin
        self._on_commit = on_commit
        self._budget_s = budget_s
        self._max_items = max_items
        self._queue: deque[_Pending] = deque()
        self._drainer: asyncio.Task[None] | None = None

    async def run(self, work: Work[T], conflict: str) -> T:
        """Queue `work` and wait until it has committed (its result) or failed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(work, conflict, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(), name="sqlite-writes")
        return await asyncio.shield(future)

    async def idle(self) -> None:
        """Wait until every queued write has run."""
        while self._drainer is not None:
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._batch()
                await asyncio.sleep(0)  # what the batch woke runs before the next one
        except BaseException as exc:  # cancelled with the loop: nobody waits forever
            while self._queue:
                _settle(self._queue.popleft().future, exc=exc)
            raise
        finally:
            self._drainer = None

    async def _batch(self) -> None:
        batch = [self._queue.popleft()]  # taken first: a failed BEGIN fails it too
        results: list[Any] = []
        try:
            async with self._engine.begin() as conn:
                self._on_begin()
                deadline = time.perf_counter() + self._budget_s
                results.append(await batch[0].work(conn))
                while (
                    self._queue and len(batch) < self._max_items and time.perf_counter() < deadline
                ):
                    pending = self._queue.popleft()
                    batch.append(pending)
                    results.append(await pending.work(conn))
        except Exception:
            # rolled back: each write again, alone, to fail or land on its own
            for pending in batch:
                await self._alone(pending)
            return
        except BaseException as exc:
            for pending in batch:
                _settle(pending.future, exc=exc)
            raise
        self._on_commit()
        for pending, result in zip(batch, results, strict=True):
            _settle(pending.future, result)

    async def _alone(self, pending: _Pending) -> None:
        try:
            with translate_errors(pending.conflict):
                async with self._engine.begin() as conn:
                    self._on_begin()
                    result = await pending.work(conn)
        except Exception as exc:
            _settle(pending.future, exc=exc)
        else:
            self._on_commit()
            _settle(pending.future, result)


def _settle(
    future: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
