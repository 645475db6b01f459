"""Bench users: one account and API token per load-generator client.

With `DURACHAT_AUTH=off` every socket belongs to the one local user, so every
`conversation_updated` goes to every socket and N streams cost O(N^2) frames.
The streaming scenarios instead run `durachat serve` with `DURACHAT_AUTH=on` and
give each client its own user, as real clients are.

Creating 1,000 users through the store costs about 2 s (argon2 is paid once: every
bench user gets the same hash of a random password nobody knows, so none can log
in with a password; they use their token). The users are written once per run to
a template database, and each DuraChat data directory gets a copy of that file
before its server starts. Nodes that share a PostgreSQL database get theirs
written into that database (`create_in`) before they start. It must never touch a
data directory a server is using.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path

from durachat.auth.passwords import hash_password
from durachat.auth.tokens import new_token
from durachat.settings import load_settings

DB_FILE = "durachat.db"
"""The SQLite file of a data directory (`Settings.resolved_database_url`)."""


async def _create(count: int, data_dir: Path, database_url: str = "") -> list[str]:
    """`count` users with a token each in the data dir's SQLite or `database_url`."""
    # imported here: `durachat bench --help` does not load SQLAlchemy
    from durachat.store.configured import open_configured_store

    environ = {"DURACHAT_DATABASE_URL": database_url} if database_url else {}
    store = await open_configured_store(load_settings(environ, data_dir=str(data_dir)))
    try:
        await store.migrate()
        password_hash = hash_password(secrets.token_urlsafe(24))
        tokens: list[str] = []

        async def one(index: int) -> None:
            user = await store.create_user(f"bench{index:05d}", password_hash, is_admin=False)
            token, token_hash = new_token()
            await store.create_api_token(user.id, "bench", token_hash)
            tokens.append(token)

        await asyncio.gather(*(one(i) for i in range(count)))
        return tokens
    finally:
        await store.close()


class BenchUsers:
    """A template database of bench users; `install` copies it into a data dir."""

    def __init__(self, workdir: Path) -> None:
        self._template = workdir / "bench-users"
        self.tokens: list[str] = []

    async def ensure(self, count: int) -> list[str]:
        """At least `count` users exist in the template; the first `count` tokens."""
        if len(self.tokens) < count:
            shutil.rmtree(self._template, ignore_errors=True)
            self._template.mkdir(parents=True)
            self.tokens = await _create(count, self._template)
        return self.tokens[:count]

    async def create_in(self, database_url: str, count: int) -> list[str]:
        """`count` users in the (migrated here) database of `database_url`; their tokens.

        For nodes that share one PostgreSQL database; `self.tokens` is not changed.
        """
        return await _create(count, self._template, database_url)

    def install(self, data_dir: Path) -> None:
        """Copy the template database into a fresh data directory."""
        if not self.tokens:
            raise RuntimeError("no bench users yet: call ensure() first")
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._template / DB_FILE, data_dir / DB_FILE)
