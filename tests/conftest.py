"""Fixtures shared by every test suite: private PostgreSQL and Redis servers for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg import PrivatePostgres
from tests.redis_server import PrivateRedis


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A throwaway PostgreSQL server, started once per test session and deleted after."""
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(private_postgres: PrivatePostgres) -> str:
    """URL of the private server's `postgres` database (use `create_database()` for more)."""
    return private_postgres.url


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    """A throwaway Redis server (no persistence), started once per session and
    deleted after; never the machine's own Redis."""
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
