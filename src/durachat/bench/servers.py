"""Server subprocesses for the benchmarks: `durachat serve` and the bare relay.

Each server runs on a free port of 127.0.0.1 with its log in the run's temporary
directory; CPU time and resident memory come from `/proc/<pid>`. `Servers` is a
context manager that stops (SIGTERM, then SIGKILL) every server it started, then
the private PostgreSQL and Redis servers it was handed (`service`), also when the
run is interrupted. It must never listen on anything but loopback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

from durachat.bench.accounts import BenchUsers

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
STEP_TIMEOUT_S = 30.0
"""Bound on every wait that does not depend on the amount of streamed data."""

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(
    url: str, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """(status, body) of a GET without proxies; raises OSError when nothing answers."""
    request = urllib.request.Request(url, headers=headers or {})
    with _OPENER.open(request, timeout=timeout) as response:
        return int(response.status), response.read().decode()


@dataclass
class Server:
    """A server subprocess on a loopback port, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started_at: float = field(default_factory=time.perf_counter)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (all its threads) so far."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        """Resident memory (`VmRSS`) of the process now."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"{self.name}: no VmRSS in /proc/{self.process.pid}/status")

    def metrics(self) -> dict[str, float]:
        """The `/metrics` samples of DuraChat as name -> value."""
        _, body = http_get(self.base_url + "/metrics")
        samples: dict[str, float] = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    samples[name] = float(value)
        return samples

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_healthy(self, timeout: float = STEP_TIMEOUT_S) -> float:
        """Seconds from spawn until `GET /healthz` answers 200; fail with the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                status, _ = http_get(self.base_url + "/healthz", timeout=1)
                if status == 200:
                    return time.perf_counter() - self.started_at
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _spawn(name: str, command: list[str], env: dict[str, str], port: int, workdir: Path) -> Server:
    log_path = workdir / f"{name}-{port}.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Server(name, process, port, log_path, started)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DURACHAT_")}


def spawn_durachat(
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    users: BenchUsers | None = None,
    auth: bool = False,
) -> Server:
    """`durachat serve` on a fresh data directory (loopback only).

    Without `users` or `auth` auth is off (every socket is the one local user);
    with `users`, auth is on and the data directory starts with their accounts and
    tokens; with `auth` alone, the accounts are in `DURACHAT_DATABASE_URL` already.
    """
    port = free_port()
    data_dir = workdir / f"durachat-data-{port}"
    if users is not None:
        users.install(data_dir)
    env = _clean_env() | {
        "DURACHAT_AUTH": "on" if users is not None or auth else "off",
        "DURACHAT_DATA_DIR": str(data_dir),
        "DURACHAT_USER_CONCURRENT_REPLIES": "100000",
        "DURACHAT_LOG_LEVEL": "warning",
        "DURACHAT_SHUTDOWN_GRACE_S": "5",
    }
    env |= extra_env or {}
    command = [sys.executable, "-m", "durachat.cli", "serve", "--host", HOST, "--port", str(port)]
    return _spawn("durachat", command, env, port, workdir)


def spawn_relay(workdir: Path) -> Server:
    """The bare uvicorn + Starlette relay (`durachat.bench.relay`)."""
    port = free_port()
    command = [sys.executable, "-m", "durachat.bench.relay", "--port", str(port)]
    return _spawn("relay", command, _clean_env(), port, workdir)


class Service(Protocol):
    """A private PostgreSQL or Redis server (`durachat.localservices`)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Service)


class Servers:
    """Every server a run started; leaving the `with` block stops them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.users = BenchUsers(workdir)
        self._started: list[Server] = []
        self._services: list[Service] = []

    def durachat(self, extra_env: dict[str, str] | None = None, auth: bool = False) -> Server:
        """A DuraChat server; with `auth`, it knows every user of `self.users`."""
        server = spawn_durachat(self.workdir, extra_env, self.users if auth else None)
        self._started.append(server)
        return server

    def node(self, env: dict[str, str]) -> Server:
        """A DuraChat node with auth on, its users already in `env`'s database."""
        server = spawn_durachat(self.workdir, env, auth=True)
        self._started.append(server)
        return server

    def service(self, service: S) -> S:
        """Start `service`; it is stopped by `stop_service` or at the end of the run."""
        self._services.append(service)
        service.start()
        return service

    def stop_service(self, service: Service) -> None:
        with contextlib.suppress(ValueError):
            self._services.remove(service)
        service.stop()

    def relay(self) -> Server:
        server = spawn_relay(self.workdir)
        self._started.append(server)
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        with contextlib.suppress(ValueError):
            self._started.remove(server)

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for server in self._started:
            with contextlib.suppress(Exception):
                server.stop()
        self._started.clear()
        for service in self._services:
            with contextlib.suppress(Exception):
                service.stop()
        self._services.clear()
