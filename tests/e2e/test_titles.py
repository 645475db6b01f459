"""Titles are written by the model after the first reply and reach every socket."""

from __future__ import annotations

from tests.e2e.server import Server
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done


async def test_the_title_arrives_after_the_first_reply_on_every_socket(server: Server) -> None:
    asker = await WsClient.connect(server.ws)
    other_tab = await WsClient.connect(server.ws)
    created = await start(asker, "!demo chunks=3 delay_ms=1\nHow do durable streams work?")
    assert created["conversation"]["title"] == "How do durable streams work?"
    await asker.until(is_done)
    for socket in (asker, other_tab):
        frames = await socket.until(
            lambda f: (
                f["type"] == "conversation_updated"
                and f["conversation"]["id"] == created["conversationId"]
                and f["conversation"]["title"].startswith("Echo:")
            )
        )
        assert frames[-1]["conversation"]["title"] == "Echo: How do durable streams work?"
    stored = server.get(f"/api/conversations/{created['conversationId']}")
    assert stored["conversation"]["title"] == "Echo: How do durable streams work?"
    for socket in (asker, other_tab):
        await socket.close()


async def test_a_rename_before_the_title_wins(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=40 delay_ms=5\nsecond question")
    path = f"/api/conversations/{created['conversationId']}"
    assert server.request("PATCH", path, {"title": "Mine"})[0] == 200
    await client.until(is_done)
    await client.send({"type": "ping"})
    await client.until(lambda f: f["type"] == "pong")
    assert server.get(path)["conversation"]["title"] == "Mine"
    await client.close()
