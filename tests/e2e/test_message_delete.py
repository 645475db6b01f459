"""`DELETE /api/conversations/{id}/messages/{messageId}` against a real server: the
subtree goes, the leaf moves, other tabs get a `catchup`, a streaming branch is 409."""

from __future__ import annotations

from typing import Any

from tests.e2e.browser import call
from tests.e2e.server import Server
from tests.e2e.wsclient import WsClient, is_done, of_type

DEMO = "!demo chunks=2 delay_ms=0\n"


async def turn(client: WsClient, frame: dict[str, Any]) -> dict[str, Any]:
    await client.send(frame)
    frames = await client.until(is_done)
    return next(f for f in frames if f["type"] in ("conversation_created", "message_started"))


def path(cid: str, mid: str) -> str:
    return f"/api/conversations/{cid}/messages/{mid}"


async def test_delete_a_branch_and_other_tabs_follow(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    first = await turn(client, {"type": "start_chat", "prompt": DEMO + "q1"})
    cid = first["conversationId"]
    older = await turn(client, {"type": "start_chat", "conversationId": cid, "prompt": DEMO + "a"})
    edit = {"type": "edit", "conversationId": cid, "messageId": older["userMessageId"]}
    newer = await turn(client, {**edit, "prompt": DEMO + "b"})
    other_tab = await WsClient.connect(server.ws, {"conversationId": cid})
    await other_tab.until(of_type("catchup"))

    answer = call(server, "DELETE", path(cid, newer["userMessageId"]))
    assert answer.status == 200, answer.body
    assert answer.body["conversation"]["currentLeafId"] == older["messageId"]
    pushed = (await other_tab.until(of_type("catchup")))[-1]
    ids = {m["id"] for m in pushed["messages"]}
    assert newer["userMessageId"] not in ids and newer["messageId"] not in ids
    assert older["messageId"] in ids and len(ids) == 4
    assert pushed["conversation"]["currentLeafId"] == older["messageId"]
    stored = server.get(f"/api/conversations/{cid}")
    assert {m["id"] for m in stored["messages"]} == ids
    # gone for good
    again = call(server, "DELETE", path(cid, newer["userMessageId"]))
    assert (again.status, again.code) == (404, "not_found")
    await other_tab.close()
    await client.close()


async def test_a_streaming_branch_is_409_and_a_wrong_conversation_404(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    done = await turn(client, {"type": "start_chat", "prompt": DEMO + "other"})
    await client.send({"type": "start_chat", "prompt": "!demo chunks=200 delay_ms=20\nlong"})
    created = (await client.until(of_type("conversation_created")))[-1]
    cid = created["conversationId"]
    for mid in (created["userMessageId"], created["messageId"]):
        refused = call(server, "DELETE", path(cid, mid))
        assert (refused.status, refused.code) == (409, "conflict"), refused.body
    mismatched = call(server, "DELETE", path(done["conversationId"], created["messageId"]))
    assert (mismatched.status, mismatched.code) == (404, "not_found")
    await client.send({"type": "stop", "conversationId": cid})
    await client.until(is_done)
    assert call(server, "DELETE", path(cid, created["userMessageId"])).status == 200
    await client.close()
