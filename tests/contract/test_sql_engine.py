"""How `open_store` connects: URL forms, SQLite pragmas and roles, error translation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from durachat.errors import Conflict, StoreError
from durachat.store.base import FlushItem
from durachat.store.engine import open_engines, translate_errors
from durachat.store.sql import open_store
from tests.contract.test_store import make_user, start_conversation
from tests.pg import PrivatePostgres, free_port


@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+aiosqlite"])
async def test_sqlite_urls_create_the_directory(tmp_path: Path, scheme: str) -> None:
    path = tmp_path / "nested" / "dir" / "durachat.db"
    store = await open_store(f"{scheme}:///{path}")
    try:
        assert store.dialect == "sqlite"
        await store.migrate()
        await store.ping()
    finally:
        await store.close()
    assert path.exists()


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+asyncpg"])
async def test_postgresql_urls(private_postgres: PrivatePostgres, driver: str) -> None:
    url = private_postgres.url.replace("postgresql", driver, 1)
    store = await open_store(url)
    try:
        assert store.dialect == "postgresql"
        await store.ping()
    finally:
        await store.close()


async def test_the_postgresql_pool_is_sized_per_process() -> None:
    engines = open_engines("postgresql://nobody@127.0.0.1:1/none", pool_size=3)
    try:
        pool = engines.writer.pool
        assert pool.size() == 3  # type: ignore[attr-defined]
        assert engines.reader is engines.writer
    finally:
        await engines.dispose()


@pytest.mark.parametrize(
    "url", ["mysql://localhost/db", "sqlite://", "sqlite:///:memory:", "sqlite+pysqlite:///x.db"]
)
async def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        await open_store(url)


async def _pragma(engine: AsyncEngine, name: str) -> object:
    async with engine.connect() as conn:
        return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()


async def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    engines = open_engines(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        for engine in (engines.writer, engines.reader, engines.quick):
            assert await _pragma(engine, "journal_mode") == "wal"
            assert await _pragma(engine, "synchronous") == 1  # NORMAL
            assert await _pragma(engine, "foreign_keys") == 1
        # threads wait for locks in SQLite; inline connections wait with asyncio
        assert await _pragma(engines.reader, "busy_timeout") == 5000
        assert await _pragma(engines.writer, "busy_timeout") == 0
        assert await _pragma(engines.quick, "busy_timeout") == 0
        # the writer never checkpoints inside a commit (store/checkpoints.py does)
        assert await _pragma(engines.writer, "wal_autocheckpoint") == 0
        assert await _pragma(engines.writer, "query_only") == 0
        assert await _pragma(engines.reader, "query_only") == 1
        assert await _pragma(engines.quick, "query_only") == 1
        assert engines.writer.pool.size() == 1  # type: ignore[attr-defined]
    finally:
        await engines.dispose()


async def _cap_file_size(conn: AsyncConnection) -> None:
    """Let the writer connection's database grow by two pages at most."""
    pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar()
    await conn.exec_driver_sql(f"PRAGMA max_page_count = {int(str(pages)) + 2}")


async def test_sqlite_disk_full_is_a_store_error(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'full.db'}")
    try:
        await store.migrate()
        alice = await make_user(store)
        reply = (await start_conversation(store, alice)).reply
        await store._write(_cap_file_size)
        with pytest.raises(StoreError, match="disk is full"):
            await store.apply_flush(
                [FlushItem(reply.id, 0, "x" * 1_000_000, 1, base=0, reasoning_base=0)]
            )
        assert (await store.get_message(alice.id, reply.id)).content == ""
    finally:
        await store.close()


async def test_unreachable_postgresql_is_a_store_error() -> None:
    store = await open_store(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(StoreError, match="unreachable"):
            await store.ping()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("driver_error", "message"),
    [
        (sqlite3.OperationalError("database is locked"), "busy"),
        (sqlite3.OperationalError("database or disk is full"), "disk is full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
        (sqlite3.OperationalError("disk I/O error"), "I/O"),
    ],
)
def test_translate_errors_names_the_cause(driver_error: Exception, message: str) -> None:
    with pytest.raises(StoreError, match=message), translate_errors():
        raise sa_exc.OperationalError("UPDATE messages", {}, driver_error)


def test_translate_errors_conflicts_and_bugs() -> None:
    integrity = sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE"))
    with pytest.raises(Conflict, match="taken"), translate_errors("taken"):
        raise integrity
    bug = sa_exc.ProgrammingError("SELEC", {}, sqlite3.ProgrammingError("syntax"))
    with pytest.raises(sa_exc.ProgrammingError), translate_errors():
        raise bug
