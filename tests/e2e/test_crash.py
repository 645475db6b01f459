"""kill -9 mid-reply loses at most the flush window; recovery happens before /healthz."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from tests.e2e.conftest import MakeServer
from tests.e2e.test_streaming import demo_text, start
from tests.e2e.wsclient import WsClient

FLUSH_CHUNKS = 5


async def test_kill_9_loses_at_most_the_flush_window(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_FLUSH_CHUNKS": str(FLUSH_CHUNKS), "DURACHAT_FLUSH_MS": "250"})
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=5000 delay_ms=10")
    received = 0
    while received < 103:
        frame = await client.recv()
        if frame["type"] == "text":
            received = frame["seq"]
    server.kill()
    await client.close()

    server.start(wait=False)
    server.wait_healthy()
    catchup = server.get(f"/api/conversations/{created['conversationId']}/catchup")
    reply = next(m for m in catchup["messages"] if m["id"] == created["messageId"])
    assert reply["status"] == "interrupted", "recovery must be done before /healthz answers"
    assert catchup["hasActiveStream"] is False and catchup["activeMessageId"] is None
    stored = reply["seq"]
    assert reply["content"] == demo_text(stored), "content and seq move together"
    lost = received - stored
    # At 10 ms a chunk, the count rule (5 chunks) fires long before the 250 ms one.
    assert lost <= FLUSH_CHUNKS, f"lost {lost} chunks"


async def test_restart_marks_interrupted_even_when_killed_right_after_start(
    make_server: MakeServer,
) -> None:
    server = make_server()
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=5000 delay_ms=50")
    server.kill()
    server.start()
    catchup = server.get(f"/api/conversations/{created['conversationId']}/catchup")
    assert catchup["messages"][-1]["status"] == "interrupted"
    await asyncio.sleep(0)


def test_port_in_use_is_one_line(make_server: MakeServer) -> None:
    server = make_server()
    result = subprocess.run(
        [sys.executable, "-m", "durachat.cli", "serve", "--port", str(server.port)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"DURACHAT_AUTH": "off", "DURACHAT_DATA_DIR": str(server.data_dir)},
        check=False,
    )
    assert result.returncode != 0
    assert "cannot listen" in result.stderr and "Traceback" not in result.stderr
