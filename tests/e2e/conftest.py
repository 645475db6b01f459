"""Fixtures of the end-to-end suite: real `durachat serve` processes on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server

MakeServer = Callable[..., Server]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by a test module (single-user mode, fast demo model)."""
    instance = Server(tmp_path_factory.mktemp("server"))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    """Servers with their own settings, stopped at the end of the test."""
    started: list[Server] = []

    def make(env: dict[str, str] | None = None, start: bool = True, name: str = "s") -> Server:
        instance = Server(tmp_path / f"{name}{len(started)}", env)
        started.append(instance)
        if start:
            instance.start()
        return instance

    yield make
    for instance in started:
        instance.stop()
