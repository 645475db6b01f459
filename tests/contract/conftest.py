"""The `store` fixture: a migrated `SqlStore` on SQLite and on a private PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from durachat.store.base import StoreStats
from durachat.store.sql import SqlStore, open_store
from durachat.store.tables import metadata
from tests.pg import PrivatePostgres


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A migrated, empty store per test.

    SQLite gets a new file per test. PostgreSQL reuses one database for the session
    (creating one costs ~0.25 s) and empties every table before the test; the server
    starts only when a PostgreSQL test runs, so `-k sqlite` never needs it.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'durachat.db'}"
    else:
        server: PrivatePostgres = request.getfixturevalue("private_postgres")
        url = await server.shared_database("contract_store")
    opened = await open_store(url)
    try:
        await opened.migrate()
        await _empty(opened)
        yield opened
    finally:
        await opened.close()


async def _empty(store: SqlStore) -> None:
    async def work(conn: AsyncConnection) -> None:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())

    await store._write(work)
    store.stats = StoreStats()
