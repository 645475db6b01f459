"""Graceful shutdown (SPEC 4): finish what fits in the grace, store the rest, 1001."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import websockets

from tests.e2e.conftest import MakeServer
from tests.e2e.test_streaming import demo_text, start
from tests.e2e.wsclient import WsClient, of_type


async def test_sigterm_finishes_short_replies_and_stores_long_ones(
    make_server: MakeServer,
) -> None:
    server = make_server({"DURACHAT_SHUTDOWN_GRACE_S": "1.5"})
    short_client = await WsClient.connect(server.ws)
    long_client = await WsClient.connect(server.ws)
    short = await start(short_client, "!demo chunks=60 delay_ms=10")  # about 0.6 s
    long = await start(long_client, "!demo chunks=5000 delay_ms=10")  # about 50 s
    await long_client.until(of_type("text"))
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    began = time.monotonic()

    async def frames_until_closed(client: WsClient) -> tuple[list[dict[str, object]], int]:
        frames: list[dict[str, object]] = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                frames.append(await client.recv(timeout=15))
        assert closed.value.rcvd is not None
        return frames, closed.value.rcvd.code

    (short_frames, short_code), (long_frames, long_code) = await asyncio.gather(
        frames_until_closed(short_client), frames_until_closed(long_client)
    )
    assert short_code == long_code == 1001
    assert time.monotonic() - began < 1.5 + 3.0
    short_done = [f for f in short_frames if f["type"] == "done"]
    long_done = [f for f in long_frames if f["type"] == "done"]
    assert short_done and short_done[-1]["status"] == "complete"
    assert long_done and long_done[-1]["status"] == "interrupted"
    server.process.wait(10)

    server.start()
    for created, status in ((short, "complete"), (long, "interrupted")):
        catchup = server.get(f"/api/conversations/{created['conversationId']}/catchup")
        reply = catchup["messages"][-1]
        assert reply["status"] == status
        assert reply["content"] == demo_text(reply["seq"]), "nothing generated was lost"
    assert catchup["messages"][-1]["seq"] == long_done[-1]["seq"]


async def test_new_replies_are_refused_while_draining(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_SHUTDOWN_GRACE_S": "2"})
    client = await WsClient.connect(server.ws)
    await start(client, "!demo chunks=5000 delay_ms=10")
    await client.until(of_type("text"))
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    await client.send({"type": "start_chat", "prompt": "one more?"})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "unavailable"
