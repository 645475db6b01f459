"""`durachat serve --workers N`: N server processes sharing one listening socket.

The parent binds the port (so a port in use is one line of error), forks N
workers that each run the whole server on that socket (the kernel spreads the
connections), and then only supervises: a worker that dies is started again
(after a pause that grows while workers keep dying at once), SIGTERM/SIGINT is
passed on to every worker, and the parent exits when all of them have drained.
Each worker is a node of its own (its own leases, its own sockets), so N > 1
needs what many nodes need: Redis and PostgreSQL (`cli/serve.py` checks).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 0.5
RESTART_PAUSE_MAX_S = 10.0
EARLY_DEATH_S = 5.0
"""A worker that dies sooner than this after its start counts as failing to start."""
MAX_EARLY_DEATHS = 5
"""Consecutive early deaths after which the supervisor gives up."""
_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class Supervisor:
    """Forks and watches the workers; `serve_one(sock)` is what a worker runs (it
    returns whether the server started)."""

    def __init__(
        self, serve_one: Callable[[socket.socket], bool], sock: socket.socket, workers: int
    ) -> None:
        self._serve_one = serve_one
        self._sock = sock
        self._workers = workers
        self._children: dict[int, float] = {}  # pid -> start time
        self._stopping = False
        self._early_deaths = 0

    def run(self) -> int:
        """Supervise until a signal stops the workers; the exit status."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        try:
            for _ in range(self._workers):
                self._spawn()
            return self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self) -> None:
        # Signals wait until the child has dropped the parent's handlers and the
        # parent has recorded the child: neither may act on a half-made state.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                for sig in _SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)  # uvicorn installs its own
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
                status = 0 if self._serve_one(self._sock) else 1
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(status)
        self._children[pid] = time.monotonic()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        log.info("worker %d started", pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        for pid in list(self._children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _watch(self) -> int:
        pause = RESTART_PAUSE_S
        while self._children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries wait()
                continue
            started = self._children.pop(pid, None)
            if started is None:
                continue
            if self._stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            lived = time.monotonic() - started
            log.error("worker %d exited (%d) after %.1f s; starting another", pid, code, lived)
            if lived < EARLY_DEATH_S:
                self._early_deaths += 1
                if self._early_deaths >= MAX_EARLY_DEATHS:
                    log.error("workers keep dying at start; stopping")
                    self._on_signal(signal.SIGTERM, None)
                    self._drain()
                    return 1
                time.sleep(pause)
                pause = min(pause * 2, RESTART_PAUSE_MAX_S)
            else:
                self._early_deaths = 0
                pause = RESTART_PAUSE_S
            if not self._stopping:
                self._spawn()
        return 0

    def _drain(self) -> None:
        while self._children:
            try:
                pid, _ = os.wait()
            except ChildProcessError:
                return
            self._children.pop(pid, None)
