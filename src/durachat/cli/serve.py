"""`durachat serve`: check the settings, bind the port, run the server.

The listening socket is bound here first so that a port in use is reported in one
line; `durachat.server` runs the app on it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path
from typing import Annotated

import typer

from durachat import logs
from durachat.cli import common
from durachat.settings import Settings

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        common.fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    sock.set_inheritable(True)
    return sock


def _check(config: Settings) -> None:
    off_loopback = not config.auth_enabled and not _is_loopback(config.host)
    if off_loopback and not config.auth_off_i_understand:
        common.fail(
            f"DURACHAT_AUTH=off on {config.host} would let anyone on the network use "
            "this server; listen on 127.0.0.1 or set DURACHAT_AUTH_OFF_I_UNDERSTAND=1"
        )
    if config.database_url == "":
        try:
            Path(config.data_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            common.fail(f"cannot create the data directory {config.data_dir}: {exc.strerror}")


def _check_workers(config: Settings, workers: int) -> None:
    """Each worker is a node of its own: more than one needs what many nodes need."""
    if workers < 1:
        common.fail(f"--workers must be at least 1, not {workers}")
    if workers == 1:
        return
    if not config.redis_url:
        common.fail(
            f"--workers {workers} needs DURACHAT_REDIS_URL: each worker is a node, and "
            "nodes share live replies, leases and stops through Redis"
        )
    if not config.database_url.startswith("postgresql"):
        common.fail(
            f"--workers {workers} needs PostgreSQL (DURACHAT_DATABASE_URL=postgresql://...): "
            "SQLite serves one process"
        )


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data directory.")] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes; more than 1 needs Redis and PostgreSQL.")
    ] = 1,
) -> None:
    """Run the server: HTTP API, WebSocket and web UI."""
    config = common.settings(host=host, port=port, data_dir=data_dir)
    _check_workers(config, workers)
    _check(config)
    logs.configure(config.log_format, config.log_level)
    sock = _bind(config.host, config.port)
    from durachat.server import run  # the server stack loads only for `serve`

    # a log line, so that with DURACHAT_LOG_FORMAT=json every line on stderr is JSON
    log.info("DuraChat serving on http://%s:%d", config.host, config.port)
    if workers > 1:
        from durachat.supervisor import Supervisor

        log.info("starting %d worker processes", workers)
        raise SystemExit(Supervisor(lambda bound: run(config, bound), sock, workers).run())
    if not run(config, sock):
        raise SystemExit(1)
