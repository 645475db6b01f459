"""SQLite on the event loop's own thread: an aiosqlite-shaped driver without the hops.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a thread of its
own and wakes the event loop for each answer; a four-statement transaction is about
twenty round trips between threads, each a GIL hand-over, and cost 2.4 ms of CPU
per new turn where SQLite itself needs a few tens of microseconds. This driver runs
the same calls inline, so SQLAlchemy's aiosqlite dialect works unchanged (it is
handed `connect` as its `async_creator`).

That is only sound for short statements that never wait, so `store/engine.py` uses
it for SQLite's single writer and for reads by key, and:

- the two calls whose cost grows with the data, `executemany` (a flush rewrites
  every growing reply's row) and `commit` (every changed page to the WAL), run on a
  thread: one hop per batch, not one per statement;

- a lock held by another process never blocks the loop: the connection's own busy
  timeout is 0 and a statement refused with `SQLITE_BUSY` is retried after an
  `asyncio.sleep`, with growing pauses, until `busy_ms` has passed (a refused
  statement had no effect, so retrying it is safe);
- the writer does not checkpoint on commit (`wal_autocheckpoint=0`): a checkpoint
  writes and syncs the database file, and `SqlStore` runs it on a reader's thread.

Reads that may be long (search, history, export) keep aiosqlite's threads.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

SQLITE_BUSY = 5
_FIRST_PAUSE_S = 0.001
_MAX_PAUSE_S = 0.05


def _busy(exc: sqlite3.OperationalError) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == SQLITE_BUSY


class Cursor:
    """An `aiosqlite.Cursor` look-alike whose coroutines never suspend, except to
    wait out another process's lock."""

    __slots__ = ("_connection", "_cursor")

    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Cursor:
        cursor = self._cursor
        if parameters is None:
            await self._connection.patiently(lambda: cursor.execute(sql))
        else:
            await self._connection.patiently(lambda: cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        # on a thread: a flush rewrites each growing reply's row, which for a long
        # reply is milliseconds of SQLite work that must not hold the loop
        rows = list(parameters)  # a retry must see every row again
        cursor = self._cursor
        await self._connection.patiently(lambda: cursor.executemany(sql, rows), thread=True)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if size is None:
            return self._cursor.fetchmany()
        return self._cursor.fetchmany(size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _CursorContext:
    """What `Connection.cursor()` returns: awaitable, and an async context manager."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self._cursor.__aenter__().__await__()

    async def __aenter__(self) -> Cursor:
        return self._cursor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._cursor.close()


class _Inline:
    """aiosqlite's call queue (`Connection._tx`), which SQLAlchemy's dialect uses to
    set the isolation level: the call runs at once."""

    __slots__ = ()

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class Connection:
    """An `aiosqlite.Connection` look-alike over a `sqlite3.Connection` used inline."""

    def __init__(self, connection: sqlite3.Connection, busy_ms: int) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._busy_s = busy_ms / 1000
        self._tx = _Inline()

    def __await__(self) -> Generator[Any, None, Connection]:
        yield from ()
        return self

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    async def patiently(self, call: Callable[[], T], thread: bool = False) -> T:
        """`call()` (on a thread if `thread`), retried while another connection
        holds the lock it needs."""
        deadline: float | None = None
        pause = _FIRST_PAUSE_S
        while True:
            try:
                return await asyncio.to_thread(call) if thread else call()
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self._busy_s
                if now >= deadline:
                    raise
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, _MAX_PAUSE_S)

    def cursor(self) -> _CursorContext:
        return _CursorContext(Cursor(self, self._conn.cursor()))

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Cursor:
        cursor = Cursor(self, self._conn.cursor())
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        # on a thread: it writes every page the transaction changed to the WAL
        await self.patiently(self._conn.commit, thread=True)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """aiosqlite's forced close (no thread to stop here)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction


def connector(database: str, busy_ms: int) -> Callable[[], Connection]:
    """The `async_creator` of an engine whose connections run inline."""

    def connect() -> Connection:
        # used by one task at a time, inline or, for the big writes, from a thread
        connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout=0")
        return Connection(connection, busy_ms)

    return connect
