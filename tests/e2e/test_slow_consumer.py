"""A socket that reads nothing gets `resync`; the writer and other sockets don't slow down."""

from __future__ import annotations

import asyncio
import itertools
import socket
import statistics
import time
from typing import Any

import orjson
import websockets

from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import start, wait_status
from tests.e2e.wsclient import WsClient, is_done

HEAVY = 5000


def heavy_text() -> str:
    return "".join(f"w{i}{'.' * 1000} " for i in range(1, HEAVY + 1))


async def median_gap(server: Server, chunks: int = 150) -> float:
    """Stream a reply and return the median time between its chunks, in seconds."""
    client = await WsClient.connect(server.ws)
    await start(client, f"!demo chunks={chunks} delay_ms=5")
    arrivals: list[float] = []
    while True:
        frame = await client.recv()
        if frame["type"] == "text":
            arrivals.append(time.monotonic())
        if is_done(frame):
            break
    await client.close()
    assert len(arrivals) == chunks
    return statistics.median(b - a for a, b in itertools.pairwise(arrivals))


async def open_stalled_socket(server: Server, conversation_id: str) -> Any:
    """A socket with a tiny receive buffer that subscribes, then stops reading."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    raw.connect(("127.0.0.1", server.port))
    raw.setblocking(False)
    connection = await websockets.connect(
        server.ws, sock=raw, compression=None, max_queue=1, max_size=None, open_timeout=10
    )
    await connection.send(
        orjson.dumps({"type": "subscribe", "conversationId": conversation_id}).decode()
    )
    return connection


async def test_a_stalled_socket_gets_resync_and_slows_nobody(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_OUTBOX_FRAMES": "64", "DURACHAT_MAX_REPLY_CHARS": "10000000"})
    unloaded = await median_gap(server)

    producer = await WsClient.connect(server.ws)
    heavy = await start(producer, f"!demo chunks={HEAVY} delay_ms=1 pad=1000")
    stalled = await open_stalled_socket(server, heavy["conversationId"])
    await asyncio.sleep(1.5)  # the stalled socket's buffers and outbox fill up
    loaded = await median_gap(server)
    assert loaded <= unloaded * 1.2 + 0.0005, (unloaded, loaded)

    # the writer did not slow down: the heavy reply runs at its own pace
    await producer.until(is_done, timeout=60)
    stored = await wait_status(server, heavy["conversationId"], heavy["messageId"])
    assert stored["content"] == heavy_text()

    # reading again, the stalled socket finds a `resync` and can catch up
    kinds = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        frame = orjson.loads(await asyncio.wait_for(stalled.recv(), 10))
        kinds.append(frame["type"])
        if frame["type"] == "resync":
            assert frame["conversationId"] == heavy["conversationId"]
            assert frame["reason"] == "slow_consumer"
            break
    assert "resync" in kinds
    await stalled.send(
        orjson.dumps({"type": "subscribe", "conversationId": heavy["conversationId"]}).decode()
    )
    while True:
        frame = orjson.loads(await asyncio.wait_for(stalled.recv(), 10))
        if frame["type"] == "catchup":
            assert frame["messages"][-1]["content"] == heavy_text()
            break
    await stalled.close()
    await producer.close()
    await asyncio.sleep(0)
