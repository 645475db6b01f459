"""Share links against a real server: a snapshot of the current branch only, logged-in
by default, public on request, listed, revocable, copied by a signed-in reader."""

from __future__ import annotations

from tests.e2e.browser import call
from tests.e2e.server import Server
from tests.e2e.test_export_import import branched, turn
from tests.e2e.test_http_and_auth import bearer, two_users  # noqa: F401 (fixture)
from tests.e2e.wsclient import WsClient, is_done, of_type

DEMO = "!demo chunks=2 delay_ms=0\n"


async def test_a_share_is_a_snapshot_of_the_shown_branch(
    two_users: tuple[Server, str, str],  # noqa: F811
) -> None:
    server, alice, bob = two_users
    cid = await branched(server, bearer(alice))
    created = call(server, "POST", f"/api/conversations/{cid}/shares", {}, bearer(alice))
    assert created.status == 201
    share = created.body["share"]
    assert share["public"] is False and share["url"] == f"/share/{share['token']}"
    assert len(share["token"]) >= 32  # 192 bits, URL-safe base64
    # later turns are not in it
    client = await WsClient.connect(server.ws, headers=bearer(alice))
    await turn(client, {"type": "start_chat", "conversationId": cid, "prompt": DEMO + "later"})
    await client.close()
    seen = call(server, "GET", f"/api/share/{share['token']}", headers=bearer(bob)).body
    contents = [m["content"] for m in seen["messages"]]
    assert [m["role"] for m in seen["messages"]] == ["user", "assistant"] * 2
    assert contents[2].endswith("b") and not any(c.endswith("\na") for c in contents)
    assert not any("later" in c for c in contents)
    assert "userId" not in str(seen) and seen["canCopy"] is True
    assert call(server, "GET", f"/api/share/{share['token']}").status == 401
    listed = call(server, "GET", "/api/shares", headers=bearer(alice)).body["shares"]
    assert [s["id"] for s in listed] == [share["id"]]
    # continue as a copy: Bob's own conversation with the same messages
    copied = call(server, "POST", f"/api/share/{share['token']}/copy", {}, bearer(bob))
    assert copied.status == 201
    mine = call(
        server, "GET", f"/api/conversations/{copied.body['conversationId']}", headers=bearer(bob)
    )
    assert [m["content"] for m in mine.body["messages"]] == contents
    assert mine.body["conversation"]["currentLeafId"] == mine.body["messages"][-1]["id"]


async def test_public_shares_need_no_login_and_die_with_their_conversation(
    two_users: tuple[Server, str, str],  # noqa: F811
) -> None:
    server, alice, _ = two_users
    cid = await branched(server, bearer(alice))
    share = call(
        server, "POST", f"/api/conversations/{cid}/shares", {"public": True}, bearer(alice)
    ).body["share"]
    anonymous = call(server, "GET", f"/api/share/{share['token']}")
    assert anonymous.status == 200 and anonymous.body["canCopy"] is False
    assert anonymous.headers["Cache-Control"] == "no-store"
    assert call(server, "POST", f"/api/share/{share['token']}/copy", {}).status == 401
    assert call(server, "DELETE", f"/api/conversations/{cid}", headers=bearer(alice)).status == 204
    assert call(server, "GET", f"/api/share/{share['token']}").status == 404
    assert call(server, "GET", "/api/shares", headers=bearer(alice)).body["shares"] == []


async def test_a_streaming_branch_cannot_be_shared(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    await client.send({"type": "start_chat", "prompt": "!demo chunks=200 delay_ms=20\nlong"})
    cid = (await client.until(of_type("conversation_created")))[-1]["conversationId"]
    refused = call(server, "POST", f"/api/conversations/{cid}/shares", {})
    assert (refused.status, refused.code) == (409, "conflict")
    await client.send({"type": "stop", "conversationId": cid})
    await client.until(is_done)
    await client.close()
    assert call(server, "POST", f"/api/conversations/{cid}/shares", {}).status == 201
