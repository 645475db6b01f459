"""Fixtures shared by every test suite: a private PostgreSQL server for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg import PrivatePostgres


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
