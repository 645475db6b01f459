"""The shipped migrations build exactly the schema declared in `store/tables.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from durachat.store.engine import async_url
from durachat.store.migrate import alembic_config, current_revision
from durachat.store.search import SEARCH_OBJECT_PREFIX
from durachat.store.sql import open_store
from durachat.store.tables import metadata
from tests.pg import PrivatePostgres


def _not_search_index(name: str | None, type_: str, parents: Any) -> bool:
    """The full-text index is dialect-specific DDL (migration 0004), not in tables.py."""
    return not (name or "").startswith(SEARCH_OBJECT_PREFIX)


def _schema_diff(connection: Connection) -> list[Any]:
    # Alembic misreads SQLite's '' defaults as changed; they are checked in _defaults.
    opts = {
        "compare_type": True,
        "compare_server_default": connection.dialect.name != "sqlite",
        "include_name": _not_search_index,
    }
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, metadata))


def _defaults(connection: Connection) -> dict[str, str | None]:
    columns = inspect(connection).get_columns("messages")
    return {c["name"]: c["default"] for c in columns if c["default"] is not None}


async def _migrated(url: str) -> tuple[list[Any], str | None, dict[str, str | None]]:
    store = await open_store(url)
    await store.migrate()
    await store.close()
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_schema_diff)
            revision = await conn.run_sync(current_revision)
            defaults = await conn.run_sync(_defaults)
    finally:
        await engine.dispose()
    return diff, revision, defaults


HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_sqlite_schema_matches_tables(tmp_path: Path) -> None:
    diff, revision, defaults = await _migrated(f"sqlite:///{tmp_path / 'schema.db'}")
    assert diff == []
    assert revision == HEAD
    zero_columns = ("reasoning_seq", "seq", "epoch")
    assert defaults == {"content": "''", "reasoning": "''"} | dict.fromkeys(zero_columns, "0")


async def test_postgresql_schema_matches_tables(private_postgres: PrivatePostgres) -> None:
    url = await private_postgres.create_database()
    try:
        diff, revision, _ = await _migrated(url)
    finally:
        await private_postgres.drop_database(url)
    assert diff == []
    assert revision == HEAD


def _downgrade_then_list(connection: Connection) -> list[str]:
    command.downgrade(alembic_config(connection), "base")
    return [t for t in inspect(connection).get_table_names() if t != "alembic_version"]


async def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cycle.db'}"
    store = await open_store(url)
    await store.migrate()
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            assert await conn.run_sync(_downgrade_then_list) == []
    finally:
        await engine.dispose()
    await store.migrate()
    await store.ping()
    await store.close()


def test_bare_alembic_without_a_connection_is_refused() -> None:
    with pytest.raises(RuntimeError, match="durachat migrate"):
        command.upgrade(alembic_config(), "head")
