"""Backups of a SQLite data directory: an online, consistent copy, and putting one back.

`backup` copies the database with SQLite's online backup API
(`sqlite3.Connection.backup`) in one step: it reads one consistent snapshot while
the server keeps writing (WAL mode lets writers go on), checks the copy with
`PRAGMA integrity_check`, and then copies the uploads directory. Upload files are
written before their rows, so every upload the snapshot knows is already on disk
when the files are copied. `restore` refuses to overwrite a database in use or an
existing one unless forced, and then moves what was there aside rather than
deleting it. PostgreSQL is backed up with `pg_dump`; `pg_guidance` says how.

This module works on files only; it never opens the server's store or its engine.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from durachat.domain import now_iso
from durachat.errors import BadRequest, Conflict, NotFound

DB_NAME = "durachat.db"
UPLOADS_NAME = "uploads"
MANIFEST_NAME = "backup.json"
BUSY_MS = 30_000


@dataclass(frozen=True, slots=True)
class BackupReport:
    destination: Path
    database_bytes: int
    conversations: int
    messages: int
    uploads: int


def sqlite_file(database_url: str) -> Path | None:
    """The SQLite file of a `sqlite:///...` URL; None for any other database."""
    scheme, sep, rest = database_url.partition(":///")
    if not sep or not scheme.startswith("sqlite"):
        return None
    return Path(rest.split("?", 1)[0])


def pg_guidance(database_url: str, uploads: Path, command: str) -> str:
    """How to do `command` (backup or restore) for PostgreSQL, with pg_dump/pg_restore."""
    scheme, _, rest = database_url.partition("://")
    where = rest.rsplit("@", 1)[-1]  # no user or password in what is printed
    url = f"postgresql://USER@{where}"
    if command == "backup":
        steps = (
            f"  pg_dump --format=custom --file=durachat.dump '{url}'\n"
            f"  cp -a {uploads} durachat-uploads"
        )
    else:
        steps = (
            f"  pg_restore --clean --if-exists --no-owner --dbname='{url}' durachat.dump\n"
            f"  cp -a durachat-uploads/. {uploads}"
        )
    return (
        f"the database is PostgreSQL ({scheme}); durachat {command} copies SQLite only. "
        f"Use PostgreSQL's own tools (pg_dump takes a consistent snapshot while the "
        f"server runs), and copy the uploads directory too:\n{steps}"
    )


def backup(database: Path, uploads: Path, destination: Path) -> BackupReport:
    """Copy a (running) server's SQLite database and uploads into a new directory."""
    if not database.is_file():
        raise NotFound(f"there is no database at {database}")
    if destination.exists() and any(destination.iterdir()):
        raise Conflict(f"{destination} exists and is not empty; choose a new directory")
    destination.mkdir(parents=True, exist_ok=True)
    copy = destination / DB_NAME
    _copy_database(database, copy)
    counts = _check(copy)
    files = _copy_uploads(uploads, destination / UPLOADS_NAME)
    report = BackupReport(destination, copy.stat().st_size, counts[0], counts[1], files)
    manifest = {
        "createdAt": now_iso(),
        "source": str(database.resolve()),
        "databaseBytes": report.database_bytes,
        "conversations": report.conversations,
        "messages": report.messages,
        "uploads": report.uploads,
    }
    (destination / MANIFEST_NAME).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return report


def in_use(database: Path) -> bool:
    """Whether a process seems to have the database open: SQLite in WAL mode keeps a
    `-wal` file while any connection is open and removes it when the last one
    closes cleanly (a crashed server leaves it too)."""
    return Path(f"{database}-wal").exists()


def restore(source: Path, database: Path, uploads: Path, force: bool) -> list[Path]:
    """Put a backup back; what was there before is moved aside (returned)."""
    backed_up = source / DB_NAME
    if not backed_up.is_file():
        raise NotFound(f"{source} is not a DuraChat backup (no {DB_NAME} in it)")
    _check(backed_up)
    if in_use(database) and not force:
        raise Conflict(
            f"{database} seems to be in use by a running server (its -wal file exists); "
            "stop the server first (or pass --force if it crashed)"
        )
    has_uploads = uploads.exists() and any(uploads.iterdir())
    if (database.exists() or has_uploads) and not force:
        raise Conflict(
            f"{database if database.exists() else uploads} exists; restore into a new "
            "data directory, or pass --force to move the current data aside"
        )
    moved = _move_aside([database, Path(f"{database}-wal"), Path(f"{database}-shm"), uploads])
    database.parent.mkdir(parents=True, exist_ok=True)
    incoming = database.with_name(database.name + ".restoring")
    incoming.unlink(missing_ok=True)
    _copy_database(backed_up, incoming)
    incoming.replace(database)
    _copy_uploads(source / UPLOADS_NAME, uploads)
    return moved


def _copy_database(source: Path, target: Path) -> None:
    """One consistent snapshot of `source` into `target` (the backup API, one step)."""
    reader = sqlite3.connect(source, timeout=BUSY_MS / 1000)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
        writer.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        writer.close()
        reader.close()


def _check(database: Path) -> tuple[int, int]:
    """`PRAGMA integrity_check` must say `ok`; the numbers of conversations and messages."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        result = connection.execute("PRAGMA integrity_check").fetchall()
        if result != [("ok",)]:
            raise BadRequest(f"{database} failed its integrity check: {result[:5]}")
        try:
            conversations = connection.execute("SELECT count(*) FROM conversations").fetchone()
            messages = connection.execute("SELECT count(*) FROM messages").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BadRequest(f"{database} is not a DuraChat database: {exc}") from None
        return int(conversations[0]), int(messages[0])
    except sqlite3.DatabaseError as exc:
        raise BadRequest(f"{database} is not a readable SQLite database: {exc}") from None
    finally:
        connection.close()


def _copy_uploads(source: Path, target: Path) -> int:
    """Copy the uploaded files (not the half-written `.incoming` ones); how many."""
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not source.is_dir():
        return 0
    copied = 0
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            shutil.copy2(path, target / path.name)
            copied += 1
    return copied


def _move_aside(paths: list[Path]) -> list[Path]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved = []
    for path in paths:
        if path.exists():
            aside = path.with_name(f"{path.name}.before-restore-{stamp}")
            path.rename(aside)
            moved.append(aside)
    return moved


__all__ = ["BackupReport", "backup", "in_use", "pg_guidance", "restore", "sqlite_file"]
