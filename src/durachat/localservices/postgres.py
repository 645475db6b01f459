"""A private PostgreSQL server, started from the installed binaries.

`PrivatePostgres` runs `initdb` into a temporary directory (as the `postgres` user
when run as root), starts the server on a free loopback port (never 5432)
with fsync off, hands out fresh databases, and at `stop()` kills the server and
deletes the directory. It never touches a system cluster. A server whose owning
process died without stopping it (killed by a timeout, say) is stopped and deleted
by the next `start()`. Used by the tests (`tests/pg.py`, fixtures in
`tests/conftest.py`) and by `durachat bench throughput-2nodes`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from durachat.localservices import common

POSTGRES_USER = "postgres"
DIR_PREFIX = "durachat-pg-"
SYSTEM_PORT = 5432


def find_bin_dir() -> Path:
    """The newest `/usr/lib/postgresql/<version>/bin`, else the directory of `pg_ctl` on PATH."""
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")]
    if candidates:
        return max(candidates, key=lambda p: _version_key(p.parent.name))
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin "
        "or on PATH; install them (e.g. apt-get install postgresql; `make test` does)"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (never 5432)."""
    return common.free_port(SYSTEM_PORT)


class PrivatePostgres:
    """One throwaway PostgreSQL server: `start()`, `url`, `create_database()`, `stop()`."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.port = 0
        self._root: Path | None = None
        self._names = itertools.count(1)
        self._shared: set[str] = set()

    @property
    def url(self) -> str:
        """URL of the server's `postgres` maintenance database."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.reap_orphans()
        root = common.make_root(DIR_PREFIX)
        self._root = root
        (root / "sock").mkdir()
        if os.geteuid() == 0:
            shutil.chown(root, POSTGRES_USER)
            shutil.chown(root / "sock", POSTGRES_USER)
        self._run(["initdb", "-D", str(self._data), "-U", POSTGRES_USER, "--auth=trust"])
        self._start_on_free_port()

    def stop(self) -> None:
        if self._root is None:
            return
        if (self._data / "postmaster.pid").exists():
            self._run(["pg_ctl", "-D", str(self._data), "stop", "-m", "immediate", "-w"])
        shutil.rmtree(self._root, ignore_errors=True)
        self._root = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server (`fast`: every client connection is cut at once, as in a
        restart by an operator or a failover), wait, start it again on the same port
        with the same data. Not `immediate`: with the test server's `fsync=off` and
        `synchronous_commit=off` a crash would lose committed transactions, which a
        production server does not."""
        self._run(["pg_ctl", "-D", str(self._data), "stop", "-m", "fast", "-w"])
        time.sleep(down_s)
        self._start_on(self.port)

    def reap_orphans(self) -> None:
        """Stop and delete the servers of owning processes that are gone."""
        for root in common.orphans(DIR_PREFIX):
            if (root / "data" / "postmaster.pid").exists():
                with contextlib.suppress(RuntimeError):
                    self._run(["pg_ctl", "-D", str(root / "data"), "stop", "-m", "immediate"])
            shutil.rmtree(root, ignore_errors=True)

    async def create_database(self) -> str:
        """Create an empty database with a fresh name; return its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        await self._admin(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    async def shared_database(self, name: str) -> str:
        """The URL of database `name`, created on first use and kept for the session.

        Creating a database costs a few hundred milliseconds; a suite that empties its
        tables between tests can reuse one instead.
        """
        if name not in self._shared:
            await self._admin(f'CREATE DATABASE "{name}"')
            self._shared.add(name)
        return self.url_for(name)

    async def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    @property
    def _data(self) -> Path:
        assert self._root is not None, "PrivatePostgres is not started"
        return self._root / "data"

    def _start_on_free_port(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                self._start_on(free_port())
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise

    def _start_on(self, port: int) -> None:
        assert self._root is not None
        self.port = port
        options = (
            f"-p {port} -k {self._root / 'sock'} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self._root / "server.log")
        command = ["pg_ctl", "-D", str(self._data), "-l", log, "-o", options, "-w", "start"]
        self._run(command)

    def _run(self, command: Sequence[str]) -> None:
        argv = [str(self.bin_dir / command[0]), *command[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", POSTGRES_USER, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command[:2])} failed ({done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        tail = common.log_tail(self._root / "server.log" if self._root else None)
        return "\nserver log:\n" + tail if tail else ""
