"""The WebSocket handshake: per-message compression is declined (SPEC 9).

Deflate buys nothing on tiny token frames and would cost each socket 25-90 KB of
compressor state; a client that offers it gets a plain socket that still works.
"""

from __future__ import annotations

import asyncio

import orjson
import websockets

from tests.e2e.server import Server


async def test_an_offer_of_per_message_deflate_is_declined(server: Server) -> None:
    async with websockets.connect(server.ws, compression="deflate", open_timeout=10) as connection:
        assert connection.response is not None
        assert "Sec-WebSocket-Extensions" not in connection.response.headers
        hello = orjson.loads(await asyncio.wait_for(connection.recv(), 10))
        assert hello["type"] == "hello"
