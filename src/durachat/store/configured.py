"""Opening the store that the settings name, with their SQLite limits."""

from __future__ import annotations

from durachat.settings import Settings
from durachat.store.engine import SqliteLimits
from durachat.store.sql import SqlStore, open_store


async def open_configured_store(settings: Settings) -> SqlStore:
    """The store of `DURACHAT_DATABASE_URL` (or the data dir's SQLite); not yet migrated."""
    limits = SqliteLimits(settings.sqlite_busy_ms, settings.sqlite_max_pages)
    return await open_store(settings.resolved_database_url, limits, settings.database_pool_size)
