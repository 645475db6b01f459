"""Branches, idempotent commands and `continue`, against a real server process."""

from __future__ import annotations

from typing import Any

from durachat.client.state import ConversationState
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import demo_text, start, wait_status
from tests.e2e.wsclient import WsClient, is_done, of_type

PATH = "!demo show_path=1 delay_ms=0\n"


async def turn(client: WsClient, frame: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Send a generating command; return its acknowledgement and the reply's text."""
    await client.send(frame)
    frames = await client.until(is_done)
    ack = next(f for f in frames if f["type"] in ("conversation_created", "message_started"))
    text = "".join(f["content"] for f in frames if f["type"] == "text")
    return ack, text


def catchup(server: Server, conversation_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = server.get(f"/api/conversations/{conversation_id}/catchup")
    return answer


async def test_edit_and_regenerate_keep_every_branch_and_send_the_branch_path(
    server: Server,
) -> None:
    client = await WsClient.connect(server.ws)
    first, text1 = await turn(client, {"type": "start_chat", "prompt": PATH + "q1"})
    cid = first["conversationId"]
    assert text1 == "user: q1\n"
    second, text2 = await turn(
        client, {"type": "start_chat", "conversationId": cid, "prompt": PATH + "q2"}
    )
    assert text2 == "user: q1\nassistant: user: q1\nuser: q2\n"

    edited, text3 = await turn(
        client,
        {
            "type": "edit",
            "conversationId": cid,
            "messageId": second["userMessageId"],
            "prompt": PATH + "q2 edited",
        },
    )
    assert edited["type"] == "message_started"
    assert edited["userMessage"]["parentId"] == first["messageId"]
    assert text3 == "user: q1\nassistant: user: q1\nuser: q2 edited\n"

    regenerated, text4 = await turn(
        client, {"type": "regenerate", "conversationId": cid, "messageId": first["messageId"]}
    )
    assert regenerated["userMessageId"] == first["userMessageId"]
    assert regenerated["message"]["parentId"] == first["userMessageId"]
    assert text4 == "user: q1\n"

    snapshot = catchup(server, cid)
    by_id = {m["id"]: m for m in snapshot["messages"]}
    assert len(by_id) == 7, "every branch is kept: 3 user messages, 4 replies"
    siblings = [m for m in snapshot["messages"] if m["parentId"] == first["messageId"]]
    assert [m["content"].splitlines()[-1] for m in siblings] == ["q2", "q2 edited"]
    replies_to_q1 = [m for m in snapshot["messages"] if m["parentId"] == first["userMessageId"]]
    assert len(replies_to_q1) == 2
    assert snapshot["conversation"]["currentLeafId"] == regenerated["messageId"]

    # move back to the edited branch and go on from there: the path follows the leaf
    patch = {"currentLeafId": edited["messageId"]}
    assert server.request("PATCH", f"/api/conversations/{cid}", patch)[0] == 200
    _, text5 = await turn(
        client, {"type": "start_chat", "conversationId": cid, "prompt": PATH + "q3"}
    )
    assert text5.endswith("user: q2 edited\nassistant: user: q2 edited\nuser: q3\n")
    await client.close()


async def test_the_same_client_message_id_twice_gives_one_reply(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    frame = {"type": "start_chat", "prompt": "!demo chunks=30 delay_ms=5", "clientMessageId": "k-1"}
    await client.send(frame)
    created = (await client.until(of_type("conversation_created")))[-1]
    await client.send(frame)  # a resend while the reply streams
    repeat = await client.until(of_type("catchup"))
    again = next(f for f in repeat if f["type"] == "conversation_created")
    assert (again["conversationId"], again["messageId"]) == (
        created["conversationId"],
        created["messageId"],
    )
    await client.until(is_done)
    await client.close()

    # after a reconnect, even once the reply is done
    other = await WsClient.connect(server.ws)
    await other.send(frame)
    frames = await other.until(of_type("catchup"))
    acks = [f for f in frames if f["type"] == "conversation_created"]
    assert [a["messageId"] for a in acks] == [created["messageId"]]
    snapshot = frames[-1]
    assert len(snapshot["messages"]) == 2, "one user message, one reply: nothing generated twice"
    assert snapshot["messages"][-1]["content"] == demo_text(30)
    await other.close()


async def test_a_key_is_per_user_across_conversations_and_commands(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    created, _ = await turn(
        client,
        {"type": "start_chat", "prompt": "!demo chunks=2 delay_ms=0", "clientMessageId": "k-2"},
    )
    cid = created["conversationId"]
    await client.send(
        {
            "type": "regenerate",
            "conversationId": cid,
            "messageId": created["messageId"],
            "clientMessageId": "k-2",
        }
    )
    frames = await client.until(of_type("catchup"))
    acks = [f for f in frames if f["type"] in ("conversation_created", "message_started")]
    assert [a["messageId"] for a in acks] == [created["messageId"]], "answered as the first time"
    assert len(frames[-1]["messages"]) == 2
    await client.close()


async def test_kill_9_then_continue_completes_the_reply_exactly(make_server: MakeServer) -> None:
    server = make_server()
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=400 delay_ms=10")
    cid, mid = created["conversationId"], created["messageId"]
    await client.until(lambda f: f.get("type") == "text" and f["seq"] >= 40)
    server.kill()
    await client.close()
    server.start()
    interrupted = catchup(server, cid)["messages"][-1]
    assert interrupted["status"] == "interrupted"
    stored_seq = interrupted["seq"]

    follower = await WsClient.connect(server.ws, {"conversationId": cid})
    state = ConversationState(cid)
    state.apply(await follower.recv())
    client = await WsClient.connect(server.ws)
    await client.send({"type": "continue", "conversationId": cid, "messageId": mid})
    frames = await client.until(is_done)
    started = frames[0]
    assert started["type"] == "message_started" and started["messageId"] == mid
    texts = [f for f in frames if f["type"] == "text"]
    assert texts[0]["seq"] == stored_seq + 1, "seq carries on from the stored value"
    assert frames[-1]["status"] == "complete" and frames[-1]["seq"] == 400
    while True:
        frame = await follower.recv()
        assert state.apply(frame) is None
        if is_done(frame):
            break
    reply = state.newest_assistant()
    assert reply is not None and reply.content == demo_text(400)
    assert state.duplicates == 0 and state.gaps == 0
    final = await wait_status(server, cid, mid)
    assert final["content"] == demo_text(400) and final["status"] == "complete"
    for socket in (client, follower):
        await socket.close()


async def test_continue_and_conflicts(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=2000 delay_ms=20")
    cid, mid = created["conversationId"], created["messageId"]
    await client.send({"type": "start_chat", "conversationId": cid, "prompt": "meanwhile"})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "conflict"
    await client.send({"type": "continue", "conversationId": cid, "messageId": mid})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "conflict"
    await client.send({"type": "stop", "conversationId": cid})
    await client.until(is_done)
    await client.send({"type": "continue", "conversationId": cid, "messageId": mid})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "conflict" and "cancelled" in error["message"]
    await client.send({"type": "edit", "conversationId": cid, "messageId": mid, "prompt": "x"})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "bad_request" and "user message" in error["message"]
    await client.send({"type": "regenerate", "conversationId": cid, "messageId": "nope"})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "not_found"
    await client.close()
