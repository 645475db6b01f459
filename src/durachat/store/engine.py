"""Opening a database: URL forms, engines per dialect, SQLite pragmas, error translation.

`open_engines(url)` turns a database URL into the engines the store uses: on SQLite
one writer connection (every write is funnelled through it) and a pool of read-only
readers, every connection in WAL mode with `synchronous=NORMAL`, a busy timeout and
foreign keys on; on PostgreSQL one pooled engine for both. `translate_errors()` is
the one place where database exceptions become `Conflict` or `StoreError`.

This module never runs queries of the application and never reads settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from durachat.errors import Conflict, StoreError
from durachat.store import inline_sqlite

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
SQLITE_READERS = 4
POSTGRES_POOL_SIZE = 10

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


@dataclass(frozen=True, slots=True)
class Engines:
    """The engines of one database. On PostgreSQL they are all the same one.

    On SQLite, `writer` and `quick` run inline on the event loop (short writes and
    point reads: a thread hop would cost more than the query), `reader` on threads
    (reads that may be long: search, history, export).
    """

    dialect: str
    writer: AsyncEngine
    reader: AsyncEngine
    quick: AsyncEngine

    async def dispose(self) -> None:
        for engine in {id(e): e for e in (self.writer, self.reader, self.quick)}.values():
            await engine.dispose()


def async_url(url: str) -> URL:
    """The URL with its async driver: `sqlite://` -> aiosqlite, `postgresql://` -> asyncpg."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")
    return parsed.set(drivername=driver)


@dataclass(frozen=True, slots=True)
class SqliteLimits:
    """How long SQLite waits for a lock, and an optional cap on the database's size."""

    busy_ms: int = 5000
    max_pages: int = 0
    """0: no cap. Otherwise writes past this many pages fail as a full disk."""

    def pragmas(self, busy_ms: int | None = None) -> tuple[str, ...]:
        cap = (f"PRAGMA max_page_count={self.max_pages}",) if self.max_pages else ()
        busy = self.busy_ms if busy_ms is None else busy_ms
        return (f"PRAGMA busy_timeout={busy}", *SQLITE_PRAGMAS, *cap)


def open_engines(
    url: str, sqlite: SqliteLimits | None = None, pool_size: int = POSTGRES_POOL_SIZE
) -> Engines:
    """Create (but do not connect) the engines for `url`; on PostgreSQL a pool of
    `pool_size` connections (as many again in bursts) for this process."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engines(parsed, sqlite or SqliteLimits())
    engine = create_async_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    return Engines("postgresql", engine, engine, engine)


def _sqlite_engines(url: URL, limits: SqliteLimits) -> Engines:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ValueError("SQLite needs a database file path, e.g. sqlite:///data/durachat.db")
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # the writer and quick readers run inline (inline_sqlite.py): they wait for locks
    # with asyncio, not a busy timeout, and the writer leaves checkpoints to a thread
    inline = inline_sqlite.connector(str(Path(database).expanduser()), limits.busy_ms)
    writer = create_async_engine(url, pool_size=1, max_overflow=0, async_creator=inline)
    quick = create_async_engine(url, pool_size=2, max_overflow=SQLITE_READERS, async_creator=inline)
    reader = create_async_engine(url, pool_size=SQLITE_READERS, max_overflow=SQLITE_READERS)
    writer_pragmas = (*limits.pragmas(busy_ms=0), "PRAGMA wal_autocheckpoint=0")
    _configure_sqlite(writer, writer_pragmas, begin="BEGIN IMMEDIATE")
    read_only = "PRAGMA query_only=ON"
    # no BEGIN: a quick read is one statement (or a few that need no common snapshot)
    _configure_sqlite(quick, (*limits.pragmas(busy_ms=0), read_only), begin=None)
    _configure_sqlite(reader, (*limits.pragmas(), read_only), begin="BEGIN")
    return Engines("sqlite", writer, reader, quick)


def _configure_sqlite(engine: AsyncEngine, pragmas: tuple[str, ...], *, begin: str | None) -> None:
    """Pragmas on every new connection; SQLAlchemy, not the driver, emits `begin`
    (None: no BEGIN, every statement commits on its own).

    The sqlite3 driver's legacy mode starts transactions only before DML, so reads
    would not be repeatable and DDL would not be transactional; taking BEGIN over
    (SQLAlchemy's documented recipe) fixes both. The writer begins IMMEDIATE so it
    takes the write lock up front instead of failing to upgrade a read lock.
    """

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)
    if begin is not None:
        statement = begin

        def on_begin(connection: Connection) -> None:
            connection.exec_driver_sql(statement)

        event.listen(engine.sync_engine, "begin", on_begin)


@contextmanager
def translate_errors(conflict: str = "the change conflicts with stored data") -> Iterator[None]:
    """Turn database exceptions into DuraChat errors; programming errors pass through.

    A constraint violation becomes `Conflict(conflict)`; a database that is full,
    locked, read-only or unreachable becomes `StoreError` with a message saying so.
    """
    try:
        yield
    except sa_exc.IntegrityError as exc:
        raise Conflict(conflict) from exc
    except (sa_exc.ProgrammingError, sa_exc.DataError, sa_exc.NotSupportedError):
        raise
    except sa_exc.DBAPIError as exc:
        raise StoreError(_describe(exc)) from exc
    except sa_exc.TimeoutError as exc:
        raise StoreError("the database is overloaded: no connection came free in time") from exc
    except OSError as exc:
        raise StoreError(f"the database is unreachable ({type(exc).__name__})") from exc


def _describe(exc: sa_exc.DBAPIError) -> str:
    text = str(exc.orig).lower()
    if "full" in text or "no space" in text:
        return "the database disk is full; the change was not saved"
    if "locked" in text or "busy" in text:
        return "the database is busy (locked); try again shortly"
    if "readonly" in text or "read-only" in text:
        return "the database is read-only; the change was not saved"
    if "disk i/o" in text:
        return "the database had a disk I/O error; the change was not saved"
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return "the database connection was lost"
    return f"the database failed ({type(exc.orig).__name__})"
