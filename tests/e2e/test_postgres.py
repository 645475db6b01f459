"""The same server on PostgreSQL: streaming, storage and crash recovery."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import MakeServer
from tests.e2e.test_streaming import demo_text, start, wait_status
from tests.e2e.wsclient import WsClient, is_done, of_type
from tests.pg import PrivatePostgres


@pytest.fixture
async def postgres_database(private_postgres: PrivatePostgres) -> str:
    return await private_postgres.create_database()


async def test_a_server_on_postgresql_streams_stores_and_recovers(
    make_server: MakeServer, postgres_database: str
) -> None:
    server = make_server({"DURACHAT_DATABASE_URL": postgres_database})
    client = await WsClient.connect(server.ws)
    done = await start(client, "!demo chunks=50 delay_ms=1")
    await client.until(is_done)
    stored = await wait_status(server, done["conversationId"], done["messageId"])
    assert stored["content"] == demo_text(50) and stored["status"] == "complete"

    long = await start(client, "!demo chunks=5000 delay_ms=10")
    await client.until(lambda f: f.get("type") == "text" and f["seq"] >= 30)
    server.kill()
    await client.close()
    server.start()
    catchup = server.get(f"/api/conversations/{long['conversationId']}/catchup")
    reply = catchup["messages"][-1]
    assert reply["status"] == "interrupted" and reply["seq"] >= 25
    assert reply["content"] == demo_text(reply["seq"])

    client = await WsClient.connect(server.ws)
    await client.send(
        {"type": "continue", "conversationId": long["conversationId"], "messageId": reply["id"]}
    )
    await client.until(of_type("message_started"))
    first = (await client.until(of_type("text")))[-1]
    assert first["seq"] == reply["seq"] + 1
    await client.send({"type": "stop", "conversationId": long["conversationId"]})
    final = (await client.until(is_done))[-1]
    assert final["status"] == "cancelled" and final["seq"] > reply["seq"]
    await client.close()
