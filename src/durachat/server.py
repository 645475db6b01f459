"""Running the app under uvicorn, with DuraChat's graceful drain.

WebSocket per-message compression is off (tiny token frames gain nothing and each
socket would cost 25-90 KB); the frame size limit is `DURACHAT_MAX_FRAME_BYTES`.
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from durachat.app import create_app, drain
from durachat.settings import Settings


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


def run(config: Settings, sock: socket.socket) -> bool:
    """Serve on the bound socket until a signal ends it; False if it never started."""
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
        # forwarded headers are judged by `auth/network.py` against
        # DURACHAT_TRUSTED_PROXIES; uvicorn's own default trusts 127.0.0.1
        proxy_headers=False,
    )
    server = _Server(uvicorn_config, app)
    server.run(sockets=[sock])
    return bool(server.started)
