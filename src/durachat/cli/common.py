"""What every command shares: reading settings, opening the store, failing cleanly.

A user mistake (bad setting, unreadable config, unknown user) ends the command with
a one-line reason on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

from durachat.errors import ConfigError, DuraChatError
from durachat.settings import Settings, load_settings
from durachat.store.base import Store

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    print(f"durachat: {message}", file=sys.stderr)
    raise SystemExit(1)


def settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        fail(str(exc))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, turning expected errors into one line."""
    try:
        return asyncio.run(coro)
    except (DuraChatError, ConfigError) as exc:
        fail(getattr(exc, "message", str(exc)))
    except OSError as exc:
        fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))


async def with_store(config: Settings, body: Callable[[Store], Awaitable[T]]) -> T:
    """Open the database (creating it and applying migrations), run body, close."""
    # imported here: commands that need no database (chat, --help) start faster
    from durachat.store.configured import open_configured_store

    store = await open_configured_store(config)
    try:
        await store.migrate()
        return await body(store)
    finally:
        await store.close()
