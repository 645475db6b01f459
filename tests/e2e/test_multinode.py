"""Two real server processes on one PostgreSQL database and one Redis: a reply
generated on node A streams live to a socket on node B, and a client that leaves A
mid-reply resumes exactly (delta by seq) on B. Private servers only
(tests/pg.py, tests/redis_server.py)."""

from __future__ import annotations

import pytest

from durachat.client.state import ConversationState
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import demo_text, start, wait_status
from tests.e2e.wsclient import WsClient, is_done
from tests.pg import PrivatePostgres
from tests.redis_server import PrivateRedis


async def node_env(postgres: PrivatePostgres, redis: PrivateRedis) -> dict[str, str]:
    """The settings of a node: a fresh database on the private PostgreSQL, the
    private Redis, short Redis waits."""
    return {
        "DURACHAT_DATABASE_URL": await postgres.create_database(),
        "DURACHAT_REDIS_URL": redis.url,
        "DURACHAT_REDIS_TIMEOUT_MS": "1000",
        "DURACHAT_REDIS_RETRY_MAX_MS": "200",
    }


@pytest.fixture
async def two_nodes(
    make_server: MakeServer, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> tuple[Server, Server]:
    env = await node_env(private_postgres, private_redis)
    return make_server(env, name="a"), make_server(env, name="b")


async def test_a_reply_on_node_a_streams_live_to_a_socket_on_node_b(
    two_nodes: tuple[Server, Server],
) -> None:
    a, b = two_nodes
    assert a.request("GET", "/readyz") == (200, {"status": "ok"}), "database and Redis answer"
    on_a = await WsClient.connect(a.ws)
    created = await start(on_a, "!demo chunks=300 delay_ms=5")
    conversation_id = str(created["conversationId"])
    await on_a.until(lambda f: f.get("type") == "text" and f["seq"] >= 5)
    on_b = await WsClient.connect(b.ws, {"conversationId": conversation_id})
    state = ConversationState(conversation_id)
    live = 0
    while True:
        frame = await on_b.recv()
        if frame["type"] == "text":
            live += 1
        assert state.apply(frame) is None, frame
        if is_done(frame):
            break
    assert live > 50, "node B should see node A's reply live, not only a snapshot"
    reply = state.newest_assistant()
    assert reply is not None and reply.content == demo_text(300)
    assert state.duplicates == 0 and state.gaps == 0
    stored = await wait_status(b, conversation_id, str(created["messageId"]))
    assert stored["content"] == demo_text(300) and stored["status"] == "complete"
    await on_a.close()
    await on_b.close()


async def test_a_client_that_leaves_node_a_mid_reply_resumes_exactly_on_node_b(
    two_nodes: tuple[Server, Server],
) -> None:
    a, b = two_nodes
    on_a = await WsClient.connect(a.ws)
    created = await start(on_a, "!demo chunks=400 delay_ms=5")
    conversation_id, message_id = str(created["conversationId"]), str(created["messageId"])
    frames = await on_a.until(lambda f: f.get("type") == "text" and f["seq"] >= 40)
    await on_a.close()
    texts = [f for f in frames if f["type"] == "text"]
    assert [f["seq"] for f in texts] == list(range(1, len(texts) + 1))
    last = texts[-1]["seq"]
    query = {"conversationId": conversation_id, "afterMessageId": message_id, "afterSeq": last}
    on_b = await WsClient.connect(b.ws, query)
    resumed = await on_b.until(is_done)
    assert resumed[0]["type"] == "text" and resumed[0]["seq"] == last + 1, "a delta, no catch-up"
    more = [f for f in resumed if f["type"] == "text"]
    assert [f["seq"] for f in more] == list(range(last + 1, resumed[-1]["seq"] + 1))
    text = "".join(f["content"] for f in texts + more)
    assert text == demo_text(400) and resumed[-1]["status"] == "complete"
    await on_b.close()
