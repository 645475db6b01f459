"""WAL checkpoints of a SQLite database, run on a reader's thread, never inline.

The writer runs on the event loop (`inline_sqlite.py`) with `wal_autocheckpoint=0`:
SQLite's automatic checkpoint would copy pages into the database file and sync it
inside a commit, holding the loop for as long as the disk takes. Instead, after a
commit, `Checkpoints.written()` starts a PASSIVE checkpoint on a thread of the
reader pool when none has run for `interval_s`: it copies what no reader still
needs and never blocks the writer or the readers.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

INTERVAL_S = 1.0


class Checkpoints:
    """At most one checkpoint at a time, at most one start per `interval_s`."""

    def __init__(self, reader: AsyncEngine, interval_s: float = INTERVAL_S) -> None:
        self._reader = reader
        self._interval_s = interval_s
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None
        self.done = 0
        """Checkpoints run so far (tests read it)."""

    def written(self) -> None:
        """A write transaction committed: checkpoint if one is due."""
        now = time.monotonic()
        if self._task is None and now - self._last >= self._interval_s:
            self._last = now
            self._task = asyncio.create_task(self._checkpoint(), name="sqlite-checkpoint")

    async def _checkpoint(self) -> None:
        try:
            async with self._reader.connect() as conn:
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection  # aiosqlite: runs on its thread
                assert driver is not None
                await driver.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.done += 1
        except Exception as exc:  # the next write tries again; SQLite stays consistent
            log.warning("WAL checkpoint failed (%s)", exc)
        finally:
            self._task = None

    async def close(self) -> None:
        """Wait for a running checkpoint (closing the last connection checkpoints too)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
