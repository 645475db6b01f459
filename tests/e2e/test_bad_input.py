"""Bad input gets a specific error, the socket and everyone else carry on, nothing is lost."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import pytest
import websockets

from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import demo_text, start, wait_status
from tests.e2e.wsclient import WsClient, is_done, of_type


async def bystander(server: Server, chunks: int) -> AsyncIterator[None]:
    """A user streaming a reply while the test misbehaves; checks it came out exact."""
    client = await WsClient.connect(server.ws)
    await start(client, f"!demo chunks={chunks} delay_ms=5")
    frames = await client.until(of_type("text"))
    yield
    frames += await client.until(is_done)
    texts = [f for f in frames if f["type"] == "text"]
    assert [f["seq"] for f in texts] == list(range(1, chunks + 1))
    assert "".join(f["content"] for f in texts) == demo_text(chunks)
    assert frames[-1]["status"] == "complete"
    await client.close()


BAD_FRAMES = [
    ("{not json", "not valid JSON"),
    ("[1, 2, 3]", "must be a JSON object"),
    ("42", "must be a JSON object"),
    ('{"type": "teleport"}', "unknown message type"),
    ('{"no": "type"}', "no 'type'"),
    ('{"type": "start_chat"}', "prompt is required"),
    ('{"type": "start_chat", "prompt": ["a"]}', "prompt"),
    ('{"type": "subscribe"}', "conversationId is required"),
    ('{"type": "subscribe", "conversationId": "c", "afterSeq": "x"}', "afterSeq"),
    ('{"type": "stop", "conversationId": 7}', "conversationId"),
    ('{"type": "edit", "conversationId": "c", "messageId": "m"}', "prompt is required"),
]


async def test_each_bad_frame_gets_its_error_and_the_socket_stays_open(server: Server) -> None:
    watcher = bystander(server, 120)
    await anext(watcher)
    client = await WsClient.connect(server.ws)
    for text, message in BAD_FRAMES:
        await client.connection.send(text)
        error = (await client.until(of_type("error")))[-1]
        assert error["code"] == "bad_request", text
        assert message in error["message"], (text, error["message"])
    await client.connection.send(b"\x00\x01binary")
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "bad_request" and "binary" in error["message"]
    for frame, code in [
        ({"type": "start_chat", "prompt": "hi", "model": "nope/x"}, "bad_request"),
        ({"type": "start_chat", "prompt": "hi", "conversationId": "nope"}, "not_found"),
        ({"type": "subscribe", "conversationId": "nope"}, "not_found"),
        ({"type": "continue", "conversationId": "nope", "messageId": "m"}, "not_found"),
    ]:
        await client.send(frame)
        assert (await client.until(of_type("error")))[-1]["code"] == code, frame
    await client.send({"type": "ping"})
    await client.until(of_type("pong"))
    with pytest.raises(StopAsyncIteration):
        await anext(watcher)
    await client.close()


async def test_limits_on_prompts_and_frames(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_MAX_PROMPT_CHARS": "100", "DURACHAT_MAX_FRAME_BYTES": "4096"})
    client = await WsClient.connect(server.ws)
    await client.send({"type": "start_chat", "prompt": "é" * 101})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "too_large" and "100" in error["message"]
    created = await start(client, "é" * 100)  # the limit counts characters, not bytes
    await client.until(is_done)
    await client.send(
        {
            "type": "edit",
            "conversationId": created["conversationId"],
            "messageId": created["userMessageId"],
            "prompt": "x" * 101,
        }
    )
    assert (await client.until(of_type("error")))[-1]["code"] == "too_large"
    await client.connection.send("x" * 5000)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.until(of_type("never"))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    again = await WsClient.connect(server.ws)  # the server is fine
    await again.close()


def page_count(server: Server) -> int:
    with sqlite3.connect(server.data_dir / "durachat.db") as db:
        count: int = db.execute("PRAGMA page_count").fetchone()[0]
        return count


async def test_a_full_disk_refuses_new_work_and_loses_nothing(make_server: MakeServer) -> None:
    server = make_server()
    server.stop()
    pages = page_count(server)
    # about 320 KB of room: the big prompt takes ~270 KB with its search index (a copy
    # of the text, and the 90,000-character word as one term)
    server.env["DURACHAT_SQLITE_MAX_PAGES"] = str(pages + 80)
    server.start()
    client = await WsClient.connect(server.ws)
    big = await start(client, "!demo chunks=2 delay_ms=0\n" + "x" * 90_000)
    await client.until(is_done)
    reply = await start(client, "!demo chunks=12000 delay_ms=0")
    frames = await client.until(
        lambda f: f["type"] == "error" and f.get("messageId") == reply["messageId"], timeout=30
    )
    warning = frames[-1]
    assert warning["code"] == "unavailable" and "full" in warning["message"]

    other = await WsClient.connect(server.ws)
    await other.send({"type": "start_chat", "prompt": "y" * 90_000})
    refused = (await other.until(of_type("error")))[-1]
    assert refused["code"] == "unavailable" and "full" in refused["message"]
    assert server.get(f"/api/conversations/{big['conversationId']}")["messages"][0]["content"]

    # make room: the reply's end is saved, and only then does `done` come
    assert not any(f["type"] == "done" for f in frames)
    assert server.request("DELETE", f"/api/conversations/{big['conversationId']}")[0] == 204
    done = (await client.until(is_done, timeout=30))[-1]
    assert done["status"] == "complete" and done["seq"] == 12000
    stored = await wait_status(server, reply["conversationId"], reply["messageId"])
    assert stored["content"] == demo_text(12000)
    for socket in (client, other):
        await socket.close()


async def test_a_locked_database_refuses_new_work_then_recovers(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_SQLITE_BUSY_MS": "200", "DURACHAT_FLUSH_MS": "50"})
    client = await WsClient.connect(server.ws)
    reply = await start(client, "!demo chunks=200 delay_ms=5")
    lock = sqlite3.connect(server.data_dir / "durachat.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        frames = await client.until(
            lambda f: f["type"] == "error" and f.get("messageId") == reply["messageId"]
        )
        assert "locked" in frames[-1]["message"]
        other = await WsClient.connect(server.ws)
        await other.send({"type": "start_chat", "prompt": "while locked"})
        refused = (await other.until(of_type("error")))[-1]
        assert refused["code"] == "unavailable" and "locked" in refused["message"]
        await other.close()
    finally:
        lock.execute("COMMIT")
        lock.close()
    done = (await client.until(is_done))[-1]
    assert done["status"] == "complete"
    stored = await wait_status(server, reply["conversationId"], reply["messageId"])
    assert stored["content"] == demo_text(200)
    await client.close()
    await asyncio.sleep(0)
