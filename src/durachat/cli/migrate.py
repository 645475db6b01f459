"""`durachat migrate`: create the database or bring its schema up to date."""

from __future__ import annotations

import typer

from durachat.cli import common
from durachat.store.base import Store


async def _nothing(_: Store) -> None:
    return None


def migrate() -> None:
    """Apply database migrations (serve does this on start too)."""
    config = common.settings()
    common.run(common.with_store(config, _nothing))
    typer.echo(f"database is up to date: {config.resolved_database_url}")
