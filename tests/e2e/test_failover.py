"""Many nodes when things go wrong: leases, the sweeper, stop across nodes, and
restarts of Redis and PostgreSQL during a reply. Two real server processes on a
private PostgreSQL and a private Redis (tests/pg.py, tests/redis_server.py), with
a short `DURACHAT_LEASE_MS`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from durachat.client.state import ConversationState
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_multinode import node_env
from tests.e2e.test_streaming import demo_text, start, wait_status
from tests.e2e.wsclient import WsClient, is_done, of_type
from tests.pg import PrivatePostgres
from tests.redis_server import PrivateRedis

LEASE_MS = 3000


def newest(server: Server, conversation_id: str) -> dict[str, Any]:
    messages = server.get(f"/api/conversations/{conversation_id}/catchup")["messages"]
    return messages[-1]  # type: ignore[no-any-return]


async def until_status(server: Server, conversation_id: str, status: str, timeout: float) -> float:
    """Poll until the newest message has `status`; the seconds it took."""
    started = time.monotonic()
    while newest(server, conversation_id)["status"] != status:
        assert time.monotonic() - started < timeout, newest(server, conversation_id)
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def mid_reply(server: Server, prompt: str, seq: int) -> tuple[WsClient, str, str]:
    """A socket on `server` whose reply to `prompt` has streamed up to `seq`; the
    socket, the conversation id and the reply's id."""
    client = await WsClient.connect(server.ws)
    created = await start(client, prompt)
    await client.until(lambda f: f.get("type") == "text" and f["seq"] >= seq)
    return client, created["conversationId"], created["messageId"]


@pytest.fixture
async def nodes(
    make_server: MakeServer, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> tuple[Server, Server]:
    env = {**await node_env(private_postgres, private_redis), "DURACHAT_LEASE_MS": str(LEASE_MS)}
    return make_server(env, name="a"), make_server(env, name="b")


async def test_stop_sent_to_node_b_stops_node_a_reply_within_a_second(
    nodes: tuple[Server, Server],
) -> None:
    a, b = nodes
    on_a, cid, mid = await mid_reply(a, "!demo chunks=3000 delay_ms=5", 5)
    on_b = await WsClient.connect(b.ws, {"conversationId": cid})
    await on_b.until(of_type("catchup"))
    asked = time.monotonic()
    await on_b.send({"type": "stop", "conversationId": cid, "messageId": mid})
    done = (await on_b.until(is_done, timeout=5))[-1]
    assert time.monotonic() - asked < 1.0
    assert done["status"] == "cancelled"
    stored = await wait_status(b, cid, mid)
    assert stored["status"] == "cancelled" and stored["seq"] < 3000
    # over HTTP too, and never for another user's conversation (404 first)
    again = await start(on_a, "!demo chunks=3000 delay_ms=5")
    await on_a.until(lambda f: f.get("type") == "text" and f.get("messageId") == again["messageId"])
    status, body = b.request("POST", f"/api/conversations/{again['conversationId']}/stop")
    assert (status, body) == (200, {"stopped": True})
    final = await wait_status(a, again["conversationId"], again["messageId"], timeout=2)
    assert final["status"] == "cancelled"
    for client in (on_a, on_b):
        await client.close()


async def test_kill_9_of_node_a_is_noticed_by_node_b_and_continue_completes_there(
    nodes: tuple[Server, Server],
) -> None:
    a, b = nodes
    _on_a, cid, mid = await mid_reply(a, "!demo chunks=600 delay_ms=10", 40)  # A dies
    watcher = await WsClient.connect(b.ws, {"conversationId": cid})
    await watcher.until(of_type("catchup"))
    a.kill()
    took = await until_status(b, cid, "interrupted", timeout=LEASE_MS / 1000 + 2)
    assert took <= LEASE_MS / 1000, f"marked after {took:.2f} s, lease {LEASE_MS} ms"
    resync = (await watcher.until(of_type("resync")))[-1]
    assert resync["reason"] == "owner_lost"
    interrupted = newest(b, cid)
    stored_seq = interrupted["seq"]
    assert interrupted["content"] == demo_text(stored_seq), "stored text is a clean prefix"

    follower = await WsClient.connect(b.ws, {"conversationId": cid})
    state = ConversationState(cid)
    state.apply(await follower.recv())
    await watcher.send({"type": "continue", "conversationId": cid, "messageId": mid})
    frames = await watcher.until(is_done)
    texts = [f for f in frames if f["type"] == "text"]
    assert texts[0]["seq"] == stored_seq + 1
    assert frames[-1]["status"] == "complete"
    while True:
        frame = await follower.recv()
        assert state.apply(frame) is None
        if is_done(frame):
            break
    reply = state.newest_assistant()
    assert reply is not None and reply.content == demo_text(600)
    assert state.duplicates == 0 and state.gaps == 0
    final = await wait_status(b, cid, mid)
    assert final["content"] == demo_text(600) and final["status"] == "complete"
    for client in (watcher, follower):
        await client.close()


async def test_a_node_whose_lease_was_taken_over_cannot_write_the_reply(
    nodes: tuple[Server, Server],
) -> None:
    a, b = nodes
    on_a = await WsClient.connect(a.ws)
    created = await start(on_a, "!demo chunks=2000 delay_ms=5")
    cid = created["conversationId"]
    await on_a.until(lambda f: f.get("type") == "text" and f["seq"] >= 20)
    assert a.process is not None
    os.kill(a.process.pid, signal.SIGSTOP)  # a zombie: alive, but renews nothing
    try:
        await until_status(b, cid, "interrupted", timeout=LEASE_MS / 1000 + 2)
        taken = newest(b, cid)
    finally:
        os.kill(a.process.pid, signal.SIGCONT)
    await asyncio.sleep(LEASE_MS / 1000)  # node A wakes up and tries to go on
    after = newest(b, cid)
    assert (after["status"], after["seq"], after["content"]) == (
        "interrupted",
        taken["seq"],
        taken["content"],
    ), "the zombie's writes are fenced off"
    assert "taken over elsewhere" in a.log() or "lease" in a.log()
    assert a.request("GET", "/healthz")[0] == 200
    await on_a.close()


async def test_a_redis_restart_during_a_reply_is_survived(
    nodes: tuple[Server, Server], private_redis: PrivateRedis
) -> None:
    a, b = nodes
    on_a, cid, mid = await mid_reply(a, "!demo chunks=500 delay_ms=8", 50)
    private_redis.restart()  # every lease, log and stream is gone
    frames = await on_a.until(is_done, timeout=30)
    assert frames[-1]["status"] == "complete", "the reply's own node streams on"
    final = await wait_status(b, cid, mid)
    assert final["content"] == demo_text(500) and final["status"] == "complete"
    # a client on node B that comes later gets the exact text (from the store)
    late = await WsClient.connect(b.ws, {"conversationId": cid})
    snapshot = (await late.until(of_type("catchup")))[-1]
    assert snapshot["messages"][-1]["content"] == demo_text(500)
    await asyncio.sleep(LEASE_MS / 1000)
    assert newest(b, cid)["status"] == "complete", "no sweeper marked a live reply"
    for client in (on_a, late):
        await client.close()


async def test_a_postgresql_restart_during_a_reply_is_survived(
    nodes: tuple[Server, Server], private_postgres: PrivatePostgres
) -> None:
    a, b = nodes
    on_a, cid, mid = await mid_reply(a, "!demo chunks=500 delay_ms=8", 50)
    private_postgres.restart(down_s=1.0)
    frames = await on_a.until(is_done, timeout=60)
    texts = [f for f in frames if f["type"] == "text"]
    assert frames[-1]["status"] == "complete"
    assert texts[-1]["seq"] == 500
    final = await wait_status(b, cid, mid, timeout=30)
    assert (final["status"], final["seq"]) == ("complete", 500)
    assert len(final["content"]) == len(demo_text(500)), final["content"]
    assert final["content"] == demo_text(500)
    await on_a.close()
