"""A private Redis server, started from the installed binary.

`PrivateRedis` runs `/usr/bin/redis-server` (or the one on PATH) in a temporary
directory, on a free loopback port (never 6379), without persistence, and at
`stop()` kills it and deletes the directory. It never touches the machine's own
Redis. `restart()` kills it hard and starts it again on the same port, empty: what
a Redis crash without persistence does. A server whose owning process died without
stopping it is stopped and deleted by the next `start()`. Used by the tests
(`tests/redis_server.py`, fixture in `tests/conftest.py`) and by `durachat bench
throughput-2nodes`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from durachat.localservices import common

DIR_PREFIX = "durachat-redis-"
PID_FILE = "redis.pid"
SYSTEM_PORT = 6379


def find_binary() -> str:
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(
        "redis-server not found in /usr/bin or on PATH; install it "
        "(e.g. apt-get install redis-server; `make test` does)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (never 6379)."""
    return common.free_port(SYSTEM_PORT)


class PrivateRedis:
    """One throwaway Redis server: `start()`, `url`, `restart()`, `stop()`."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or find_binary()
        self.port = 0
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.reap_orphans()
        self._root = common.make_root(DIR_PREFIX)
        for attempt in range(3):
            self.port = free_port()
            try:
                self._launch()
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def restart(self) -> None:
        """Kill the server (SIGKILL) and start an empty one on the same port."""
        self.kill()
        self._launch()

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
        self._process = None

    def stop(self) -> None:
        self.kill()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def reap_orphans(self) -> None:
        """Stop and delete the servers of owning processes that are gone."""
        for root in common.orphans(DIR_PREFIX):
            pid = common.read_pid(root / PID_FILE)
            if pid is not None and common.alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(root, ignore_errors=True)

    def _launch(self, timeout: float = 10.0) -> None:
        assert self._root is not None, "PrivateRedis is not started"
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self._root),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--pidfile", str(self._root / PID_FILE),
            "--logfile", str(self._root / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self._root
        )
        (self._root / PID_FILE).write_text(str(self._process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self._log_tail()}")
            if self._answers():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port}: {self._log_tail()}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        return common.log_tail(self._root / "redis.log" if self._root else None)
