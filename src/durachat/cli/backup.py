"""`durachat backup DEST` and `durachat restore SRC`: a data directory copied and put back.

SQLite only (`store/backup.py` does the work); for PostgreSQL both commands print
how to use `pg_dump`/`pg_restore` and exit 1. The server may run during a backup;
a restore refuses a database that seems in use, or any existing one without
`--force`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from durachat.cli import common

T = TypeVar("T")


def _files(command: str) -> tuple[Path, Path]:
    # imported here: the backup code loads only for these commands
    from durachat.store.backup import pg_guidance, sqlite_file

    config = common.settings()
    url = config.resolved_database_url
    database = sqlite_file(url)
    if database is None:
        common.fail(pg_guidance(url, config.uploads_path, command))
    return database, config.uploads_path


def backup(
    destination: Annotated[Path, typer.Argument(help="A new (or empty) directory.")],
) -> None:
    """Copy the database and uploads of a (running) server, consistently."""
    from durachat.store.backup import backup as copy

    database, uploads = _files("backup")
    report = common.run(_sync(lambda: copy(database, uploads, destination)))
    typer.echo(
        f"backed up {report.conversations} conversations, {report.messages} messages, "
        f"{report.uploads} files ({report.database_bytes:,} bytes of database) to "
        f"{report.destination}"
    )


def restore(
    source: Annotated[Path, typer.Argument(help="A directory written by `durachat backup`.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace existing data (moved aside), even if it seems in use."
        ),
    ] = False,
) -> None:
    """Put a backup back into the configured data directory (the server stopped)."""
    from durachat.store.backup import restore as put_back

    database, uploads = _files("restore")
    moved = common.run(_sync(lambda: put_back(source, database, uploads, force)))
    for path in moved:
        typer.echo(f"moved aside: {path}")
    typer.echo(f"restored {source} into {database} and {uploads}")


async def _sync(work: Callable[[], T]) -> T:
    """A blocking step run by `common.run` (which turns its errors into one line)."""
    return work()
