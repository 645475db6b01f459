"""Running the Alembic migrations shipped in `store/migrations/`, from code.

There is no alembic.ini: the configuration is built here and the caller's open
connection is handed to `migrations/env.py`, which never opens one of its own. The
caller owns the transaction (`await conn.run_sync(upgrade)` inside a write).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade the schema on `connection` (a sync connection, e.g. via `run_sync`)."""
    command.upgrade(alembic_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The schema revision stamped in the database, or None before the first migration."""
    return MigrationContext.configure(connection).get_current_revision()
