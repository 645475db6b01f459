"""A reply streams, is stored, reaches every socket of its user, and survives them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from durachat.client.state import ConversationState
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.wsclient import WsClient, is_done, of_type


def demo_text(chunks: int) -> str:
    return "".join(f"w{i} " for i in range(1, chunks + 1))


async def start(client: WsClient, prompt: str, **fields: object) -> dict[str, Any]:
    await client.send({"type": "start_chat", "prompt": prompt, **fields})
    frames = await client.until(of_type("conversation_created"))
    return frames[-1]


async def wait_status(
    server: Server, conversation_id: str, message_id: str, timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        catchup = server.get(f"/api/conversations/{conversation_id}/catchup")
        message = next(m for m in catchup["messages"] if m["id"] == message_id)
        if message["status"] != "streaming":
            return message  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise TimeoutError("reply did not finish")


async def test_reply_streams_and_is_stored(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    created = await start(client, "Hello, durable world")
    frames = await client.until(is_done)
    texts = [f for f in frames if f["type"] == "text"]
    assert [f["seq"] for f in texts] == list(range(1, len(texts) + 1))
    streamed = "".join(f["content"] for f in texts)
    assert streamed.startswith("## Echo")
    assert frames[-1]["status"] == "complete"
    assert frames[-1]["seq"] == len(texts)
    catchup = server.get(f"/api/conversations/{created['conversationId']}/catchup")
    reply = catchup["messages"][-1]
    assert reply["content"] == streamed
    assert reply["seq"] == len(texts)
    assert reply["status"] == "complete" and reply["streamCompleted"] is True
    assert catchup["activeMessageId"] is None and catchup["hasActiveStream"] is False
    await client.close()


async def test_second_socket_of_the_user_sees_the_reply_live(server: Server) -> None:
    first = await WsClient.connect(server.ws)
    created = await start(first, "!demo chunks=80 delay_ms=10")
    conversation_id = str(created["conversationId"])
    await first.until(of_type("text"))
    second = await WsClient.connect(server.ws, {"conversationId": conversation_id})
    state = ConversationState(conversation_id)
    live = 0
    while True:
        frame = await second.recv()
        if frame["type"] == "text":
            live += 1
        assert state.apply(frame) is None
        if is_done(frame):
            break
    assert live > 10, "the second socket should have seen text live, not only a snapshot"
    reply = state.newest_assistant()
    assert reply is not None and reply.content == demo_text(80)
    assert state.duplicates == 0 and state.gaps == 0
    await first.close()
    await second.close()


async def test_reply_completes_and_is_stored_when_every_client_left(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=60 delay_ms=5")
    await client.until(of_type("text"))
    await client.close()
    message = await wait_status(server, str(created["conversationId"]), str(created["messageId"]))
    assert message["status"] == "complete"
    assert message["content"] == demo_text(60)
    assert message["seq"] == 60


async def test_stop_lands_within_a_second_and_keeps_the_text(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=2000 delay_ms=20")
    frames = await client.until(lambda f: f.get("type") == "text" and f["seq"] == 5)
    asked = time.monotonic()
    await client.send({"type": "stop", "conversationId": created["conversationId"]})
    frames += await client.until(is_done)
    took = time.monotonic() - asked
    assert took < 1.0
    assert frames[-1]["status"] == "cancelled"
    streamed = "".join(f["content"] for f in frames if f["type"] == "text")
    message = await wait_status(server, str(created["conversationId"]), str(created["messageId"]))
    assert message["status"] == "cancelled"
    assert message["content"] == streamed
    assert message["seq"] == frames[-1]["seq"]
    await client.close()


async def test_stop_over_http(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=2000 delay_ms=20")
    await client.until(of_type("text"))
    path = f"/api/conversations/{created['conversationId']}/stop"
    assert server.request("POST", path) == (200, {"stopped": True})
    done = (await client.until(is_done))[-1]
    assert done["status"] == "cancelled"
    assert server.request("POST", path) == (200, {"stopped": False})
    await client.close()


async def test_provider_failure_mid_reply_keeps_the_partial_text(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=50 fail_after=10 delay_ms=1")
    frames = await client.until(is_done)
    kinds = [f["type"] for f in frames]
    assert kinds[-2:] == ["error", "done"]
    assert frames[-2]["code"] == "provider_error"
    assert frames[-2]["messageId"] == created["messageId"]
    assert frames[-1]["status"] == "error" and frames[-1]["seq"] == 10
    message = await wait_status(server, str(created["conversationId"]), str(created["messageId"]))
    assert message["status"] == "error"
    assert message["content"] == demo_text(10)
    assert message["error"]["code"] == "provider_error"
    await client.close()


async def test_a_stream_that_ends_without_finishing_is_an_error(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    await start(client, "!demo chunks=3 no_finish=1 delay_ms=1")
    frames = await client.until(is_done)
    assert frames[-2]["type"] == "error"
    assert "without finishing" in frames[-2]["message"]
    assert frames[-1]["status"] == "error"
    await client.close()


async def test_reply_size_cap_ends_the_reply_complete(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_MAX_REPLY_CHARS": "25"})
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=100 delay_ms=0")
    done = (await client.until(is_done))[-1]
    assert done["status"] == "complete"
    message = await wait_status(server, str(created["conversationId"]), str(created["messageId"]))
    assert message["content"] == demo_text(100)[:25]
    await client.close()


async def test_per_user_limit_of_concurrent_replies(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_USER_CONCURRENT_REPLIES": "2"})
    client = await WsClient.connect(server.ws)
    for _ in range(2):
        await start(client, "!demo chunks=500 delay_ms=20")
    await client.send({"type": "start_chat", "prompt": "one too many"})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "rate_limited"
    await client.close()
