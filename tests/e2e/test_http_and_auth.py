"""HTTP endpoints, API tokens, ownership and the Origin rule, against a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import websockets

from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done, of_type


def cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durachat.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={"DURACHAT_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def make_user(data_dir: Path, name: str) -> str:
    created = cli(data_dir, "user", "create", name, "--password-stdin", stdin="long enough pw\n")
    assert created.returncode == 0, created.stderr
    token = cli(data_dir, "token", "create", name, "--name", "tests")
    assert token.returncode == 0, token.stderr
    return token.stdout.strip()


@pytest.fixture
def two_users(make_server: MakeServer) -> tuple[Server, str, str]:
    server = make_server({"DURACHAT_AUTH": "on"}, start=False)
    alice, bob = make_user(server.data_dir, "alice"), make_user(server.data_dir, "bob")
    server.start()
    return server, alice, bob


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_authenticate_and_other_users_objects_are_not_found(
    two_users: tuple[Server, str, str],
) -> None:
    server, alice, bob = two_users
    client = await WsClient.connect(server.ws, headers=bearer(alice))
    created = await start(client, "!demo chunks=3 delay_ms=1")
    await client.until(is_done)
    conversation = f"/api/conversations/{created['conversationId']}"
    assert server.request("GET", conversation, token=alice)[0] == 200
    for method, path, body in [
        ("GET", conversation, None),
        ("GET", conversation + "/catchup", None),
        ("PATCH", conversation, {"title": "mine now"}),
        ("DELETE", conversation, None),
        ("POST", conversation + "/stop", None),
    ]:
        status, answer = server.request(method, path, body, token=bob)
        assert status == 404, (method, path)
        assert answer["error"]["code"] == "not_found"
    assert server.request("GET", "/api/conversations", token=bob)[1]["conversations"] == []
    intruder = await WsClient.connect(server.ws, headers=bearer(bob))
    await intruder.send({"type": "subscribe", "conversationId": created["conversationId"]})
    error = (await intruder.until(of_type("error")))[-1]
    assert error["code"] == "not_found"
    await intruder.send(
        {"type": "start_chat", "prompt": "hi", "conversationId": created["conversationId"]}
    )
    assert (await intruder.until(of_type("error")))[-1]["code"] == "not_found"
    refused = await WsClient.connect(
        server.ws, {"conversationId": created["conversationId"]}, headers=bearer(bob)
    )
    assert (await refused.until(of_type("error")))[-1]["code"] == "not_found"
    for socket in (client, intruder, refused):
        await socket.close()


async def test_missing_or_bad_credentials(two_users: tuple[Server, str, str]) -> None:
    server, _, _ = two_users
    status, answer = server.request("GET", "/api/conversations")
    assert status == 401 and answer["error"]["code"] == "unauthorized"
    status, answer = server.request("GET", "/api/conversations", token="dct_wrong")
    assert status == 401
    for headers in (None, bearer("dct_wrong")):
        connection = await websockets.connect(server.ws, additional_headers=headers)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await connection.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_foreign_origin_is_refused_even_in_single_user_mode(server: Server) -> None:
    connection = await websockets.connect(server.ws, origin="http://evil.example")  # type: ignore[arg-type]
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await connection.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    own = await WsClient.connect(server.ws, origin=f"http://127.0.0.1:{server.port}")
    await own.close()


async def test_list_patch_delete_and_pagination(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    ids = []
    for n in range(3):
        created = await start(client, f"!demo chunks=2 delay_ms=0\nchat number {n}")
        await client.until(is_done)
        ids.append(created["conversationId"])
    first = server.get("/api/conversations?limit=2")
    assert [c["id"] for c in first["conversations"]][:2] == ids[::-1][:2]
    assert first["conversations"][0]["title"].endswith("chat number 2")
    rest = server.get(f"/api/conversations?limit=2&cursor={quote(first['nextCursor'])}")
    assert ids[0] in [c["id"] for c in rest["conversations"]]
    path = f"/api/conversations/{ids[0]}"
    status, answer = server.request("PATCH", path, {"title": "Renamed", "pinned": True})
    assert status == 200
    assert answer["conversation"]["title"] == "Renamed" and answer["conversation"]["pinned"]
    await client.until(
        lambda f: f["type"] == "conversation_updated" and f["conversation"]["title"] == "Renamed"
    )
    status, answer = server.request("PATCH", path, {"archived": True})
    assert answer["conversation"]["archived"] is True
    archived = server.get("/api/conversations?archived=true")["conversations"]
    assert [c["id"] for c in archived] == [ids[0]]
    assert server.request("DELETE", path) == (204, None)
    deleted = (await client.until(of_type("conversation_deleted")))[-1]
    assert deleted["conversationId"] == ids[0]
    assert server.request("GET", path)[0] == 404
    await client.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("PATCH", "/api/conversations/x", {"pinned": "yes please"}, 400, "bad_request"),
        ("PATCH", "/api/conversations/x", {"colour": "red"}, 400, "bad_request"),
        ("GET", "/api/conversations?limit=0", None, 400, "bad_request"),
        ("GET", "/api/nothing-here", None, 404, "not_found"),
        ("GET", "/api/conversations/nope", None, 404, "not_found"),
    ],
)
def test_http_errors_have_one_shape(
    server: Server, method: str, path: str, body: object, status: int, code: str
) -> None:
    got_status, answer = server.request(method, path, body)
    assert got_status == status
    assert answer["error"]["code"] == code and answer["error"]["message"]


async def test_unknown_model_is_refused_before_anything_is_stored(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    before = len(server.get("/api/conversations?limit=200")["conversations"])
    await client.send({"type": "start_chat", "prompt": "hi", "model": "nope/model"})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "bad_request" and "unknown model 'nope/model'" in error["message"]
    assert len(server.get("/api/conversations?limit=200")["conversations"]) == before
    await client.close()


def test_models_and_health(server: Server) -> None:
    models = server.get("/api/models")
    assert models["default"] == "demo/echo"
    assert models["models"][0]["id"] == "demo/echo"
    assert server.get("/healthz") == {"status": "ok"}
    assert server.get("/readyz") == {"status": "ok"}
