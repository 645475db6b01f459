"""`durachat serve`: run the server with uvicorn.

WebSocket per-message compression is off (tiny token frames gain nothing and each
socket would cost 25-90 KB); the frame size limit is `DURACHAT_MAX_FRAME_BYTES`.
The listening socket is bound here first so that a port in use is reported in one
line.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from durachat import logs
from durachat.app import create_app, drain
from durachat.cli import common
from durachat.settings import Settings


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


class _Server(uvicorn.Server):
    """uvicorn, with DuraChat's graceful drain before connections are torn down.

    On SIGTERM/SIGINT uvicorn would close every WebSocket at once (1012) and only
    then tell the app; DuraChat first lets running replies finish (up to the
    grace period), stores the rest, and closes sockets itself with 1001.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        services = getattr(self._app.state, "services", None)
        if services is not None:
            for server in self.servers:
                server.close()  # no new connections while draining
            await drain(services)
        await super().shutdown(sockets)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data directory.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (>1 needs Redis).")] = 1,
) -> None:
    """Run the server: HTTP API, WebSocket and web UI."""
    config = common.settings(host=host, port=port, data_dir=data_dir)
    if workers != 1:
        common.fail("--workers > 1 needs DURACHAT_REDIS_URL and PostgreSQL (not available yet)")
    _check(config)
    logs.configure(config.log_format, config.log_level)
    sock = _bind(config.host, config.port)
    app = create_app(config)
    uvicorn_config = uvicorn.Config(
        app,
        log_config=None,
        log_level=config.log_level,
        access_log=False,
        ws_per_message_deflate=False,
        ws_max_size=config.max_frame_bytes,
        timeout_graceful_shutdown=int(config.shutdown_grace_s) + 1,
        lifespan="on",
    )
    server = _Server(uvicorn_config, app)
    typer.echo(f"DuraChat serving on http://{config.host}:{config.port}", err=True)
    server.run(sockets=[sock])
    if server.started is False:
        raise SystemExit(1)
