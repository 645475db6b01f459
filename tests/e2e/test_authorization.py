"""Authorization, generated from the app's route table and the protocol's message types.

A new route or message type is covered without anyone remembering: every HTTP
route (walked from `create_app`) and every client message type (from
`api/protocol.py`) is tried with no credentials (401 / close 4401), with a
disabled user's token (refused), and as another user on Alice's objects (404 /
`not_found`, admin routes 403), and no answer to another user contains a word of
Alice's prompt (search is given that word in `QUERIES`). A route whose path names an
object this test does not know fails the test until it is classified here. The SSE stream and its
resume positions are covered explicitly.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import websockets
from fastapi.routing import APIRoute

from durachat.api import protocol
from durachat.app import create_app
from durachat.settings import Settings
from tests.e2e.browser import call
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_accounts import closed_code
from tests.e2e.test_http_and_auth import bearer, cli, make_user
from tests.e2e.test_streaming import start
from tests.e2e.test_uploads import upload
from tests.e2e.wsclient import WsClient, is_done, of_type

PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/auth/status",
    "/api/auth/setup",
    "/api/auth/login",
}
ADMIN_PREFIX = "/api/admin/"
SECRET = "zanzibarquokka"  # in Alice's prompt: no answer to anyone else may contain it
QUERIES = {"/api/search": f"?q={SECRET}"}  # routes that look Alice's text up by content
# A share's token is a capability: any signed-in user may read it (anyone when
# public). Tested on their own below, with Alice's logged-in-only share.
CAPABILITY_ROUTES = {"/api/share/{token}", "/api/share/{token}/copy"}
NO_OBJECT_TYPES = {"ping", "unsubscribe"}  # carry no id of anything a user owns


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's included router
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            for method in sorted(route.methods or ()):
                yield method, prefix + route.path


ROUTES = sorted(set(_walk(create_app(Settings()).routes)))


def client_frame_models() -> dict[str, type[protocol.ClientFrame]]:
    found: dict[str, type[protocol.ClientFrame]] = {}
    for value in vars(protocol).values():
        if inspect.isclass(value) and issubclass(value, protocol.ClientFrame):
            literal = value.model_fields.get("type")
            if literal is not None and literal.annotation is not None:
                args = getattr(literal.annotation, "__args__", ())
                if args:
                    found[args[0]] = value
    assert set(found) == set(protocol.CLIENT_TYPES)
    return found


class World:
    """Alice owns a conversation and a token; Bob is another user; Carol is disabled."""

    def __init__(self, server: Server, tokens: dict[str, str], ids: dict[str, str]) -> None:
        self.server = server
        self.tokens = tokens
        self.ids = ids

    def path(self, template: str) -> str:
        path = template
        for name in (
            "conversation_id",
            "message_id",
            "share_id",
            "token",
            "token_id",
            "upload_id",
            "user_id",
        ):
            path = path.replace("{" + name + "}", self.ids[name])
        assert "{" not in path, f"classify the object in {template} in test_authorization.py"
        return path + QUERIES.get(template, "")

    def body(self, method: str, path: str) -> Any:
        if path == "/api/chat":
            return {"prompt": "hi", "conversationId": self.ids["conversation_id"]}
        if method == "PATCH":
            return {"title": "stolen"} if "conversations" in path else {"disabled": True}
        if method == "POST":
            return {}
        return None


@pytest.fixture
async def world(make_server: MakeServer) -> World:
    server = make_server({"DURACHAT_AUTH": "on"}, start=False)
    tokens = {name: make_user(server.data_dir, name) for name in ("alice", "bob", "carol")}
    assert cli(server.data_dir, "user", "disable", "carol").returncode == 0
    server.start()
    alice = await WsClient.connect(server.ws, headers=bearer(tokens["alice"]))
    created = await start(alice, f"!demo chunks=2 delay_ms=1\n{SECRET}")
    await alice.until(is_done)
    await alice.close()
    me = call(server, "GET", "/api/auth/me", headers=bearer(tokens["alice"])).body["user"]
    listed = call(server, "GET", "/api/auth/tokens", headers=bearer(tokens["alice"])).body
    share_path = f"/api/conversations/{created['conversationId']}/shares"
    share = call(server, "POST", share_path, {}, bearer(tokens["alice"])).body["share"]
    attached = upload(server, "alice.txt", SECRET.encode(), bearer(tokens["alice"]))
    ids = {
        "conversation_id": created["conversationId"],
        "message_id": created["messageId"],
        "share_id": share["id"],
        "token": share["token"],
        "token_id": listed["tokens"][0]["id"],
        "upload_id": attached.body["upload"]["id"],
        "user_id": me["id"],
    }
    return World(server, tokens, ids)


def test_the_route_table_is_walked() -> None:
    paths = {path for _, path in ROUTES}
    assert "/api/conversations/{conversation_id}/events" in paths
    assert "/api/auth/tokens/{token_id}" in paths and len(ROUTES) > 20


async def test_every_route_refuses_strangers_disabled_users_and_other_users(
    world: World,
) -> None:
    server = world.server
    for method, template in ROUTES:
        if template in PUBLIC or template in CAPABILITY_ROUTES:
            continue
        path, body = world.path(template), world.body(method, template)
        if template == "/test/chat":
            path += f"?prompt=hi&conversationId={world.ids['conversation_id']}"
        nobody = call(server, method, path, body)
        assert (nobody.status, nobody.code) == (401, "unauthorized"), (method, template)
        disabled = call(server, method, path, body, bearer(world.tokens["carol"]))
        assert disabled.status in (401, 403), (method, template)
        bob = call(server, method, path, body, bearer(world.tokens["bob"]))
        if template.startswith(ADMIN_PREFIX):
            assert (bob.status, bob.code) == (403, "forbidden"), (method, template)
        elif "{" in template or template in ("/api/chat", "/test/chat"):
            assert (bob.status, bob.code) == (404, "not_found"), (method, template, bob.body)
        assert SECRET not in str(bob.body), (method, template, "leaks Alice's text")
    # Alice's objects are untouched and listed for nobody else
    alice = bearer(world.tokens["alice"])
    conversation = f"/api/conversations/{world.ids['conversation_id']}"
    assert call(server, "GET", conversation, headers=alice).status == 200
    others = bearer(world.tokens["bob"])
    assert call(server, "GET", "/api/conversations", headers=others).body["conversations"] == []
    # the content lookups do find Alice's text for Alice: the leak check above is live
    for template, query in QUERIES.items():
        assert SECRET in str(call(server, "GET", template + query, headers=alice).body)


async def test_a_share_token_is_read_by_signed_in_users_only_until_revoked(
    world: World,
) -> None:
    server, ids = world.server, world.ids
    read, copy = f"/api/share/{ids['token']}", f"/api/share/{ids['token']}/copy"
    alice, bob = bearer(world.tokens["alice"]), bearer(world.tokens["bob"])
    assert call(server, "GET", read).status == 401  # logged-in only
    assert call(server, "POST", copy, {}).status == 401
    assert call(server, "GET", read, headers=bearer(world.tokens["carol"])).status in (401, 403)
    assert SECRET in str(call(server, "GET", read, headers=bob).body)
    # Bob can neither list nor revoke it
    assert call(server, "GET", "/api/shares", headers=bob).body == {"shares": []}
    revoke = f"/api/shares/{ids['share_id']}"
    assert call(server, "DELETE", revoke, headers=bob).status == 404
    assert call(server, "DELETE", revoke, headers=alice).status == 204
    for headers in ({}, bob, alice):
        assert call(server, "GET", read, headers=headers).status == 404
    guessed = call(server, "GET", "/api/share/" + "A" * 32, headers=bob)
    assert (guessed.status, guessed.code) == (404, "not_found")


async def test_the_event_stream_and_its_resume_positions_are_owned(world: World) -> None:
    server, ids = world.server, world.ids
    events = f"/api/conversations/{ids['conversation_id']}/events"
    position = f"{ids['message_id']}:0"
    bob = bearer(world.tokens["bob"])
    for path, headers in [
        (events, {}),
        (f"{events}?after={position}", {}),
        (events, {"Last-Event-ID": position}),
    ]:
        assert call(server, "GET", path, headers=headers).status == 401
        answer = call(server, "GET", path, headers={**headers, **bob})
        assert (answer.status, answer.code) == (404, "not_found"), path


async def test_every_message_type_refuses_other_users(world: World) -> None:
    server, ids = world.server, world.ids
    values = {
        "conversationId": ids["conversation_id"],
        "messageId": ids["message_id"],
        "afterMessageId": ids["message_id"],
        "prompt": "hi",
    }
    bob = await WsClient.connect(server.ws, headers=bearer(world.tokens["bob"]))
    for kind, model in sorted(client_frame_models().items()):
        if kind in NO_OBJECT_TYPES:
            continue
        frame: dict[str, Any] = {"type": kind}
        for name, info in model.model_fields.items():
            key = info.alias or name
            if key in values:
                frame[key] = values[key]
            else:
                assert not info.is_required() or key == "type", f"classify {kind}.{key}"
        await bob.send(frame)
        error = (await bob.until(of_type("error")))[-1]
        assert error["code"] == "not_found", (kind, error)
    await bob.close()
    for query in (
        {"conversationId": ids["conversation_id"]},
        {
            "conversationId": ids["conversation_id"],
            "afterMessageId": ids["message_id"],
            "afterSeq": "0",
        },
    ):
        resumed = await WsClient.connect(server.ws, query, headers=bearer(world.tokens["bob"]))
        assert (await resumed.until(of_type("error")))[-1]["code"] == "not_found"
        await resumed.close()


async def test_sockets_refuse_strangers_disabled_users_and_foreign_origins(world: World) -> None:
    server = world.server
    for headers in (None, bearer(world.tokens["carol"]), bearer("dct_wrong")):
        connection = await websockets.connect(server.ws, additional_headers=headers)
        assert await closed_code(connection) == 4401
    login = call(
        server, "POST", "/api/auth/login", {"username": "alice", "password": "long enough pw"}
    )
    cookie = login.headers["set-cookie"].split(";")[0]
    hijack = await websockets.connect(
        server.ws,
        additional_headers={"Cookie": cookie},
        origin="http://evil.example",  # type: ignore[arg-type]
    )
    assert await closed_code(hijack) == 4403
    own = await WsClient.connect(
        server.ws, headers={"Cookie": cookie}, origin=f"http://127.0.0.1:{server.port}"
    )
    await own.close()
    # a cookie-authenticated write from a foreign page is refused too
    foreign = {"Cookie": cookie, "Origin": "http://evil.example"}
    patch = call(
        server,
        "PATCH",
        f"/api/conversations/{world.ids['conversation_id']}",
        {"title": "csrf"},
        foreign,
    )
    assert (patch.status, patch.code) == (403, "forbidden")
