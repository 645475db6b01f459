"""Accounts against a real server: setup, login, logout, sessions on HTTP and
WebSocket, rate limiting, API tokens, administration and the last-admin rule."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable

import httpx
import pytest
import websockets

from tests.e2e.browser import Session, call, login, session_cookie
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_http_and_auth import cli, make_user
from tests.e2e.wsclient import WsClient, of_type

PASSWORD = "long enough pw"
ADMIN_PASSWORD = "the admin's password"


async def closed_code(connection: websockets.ClientConnection) -> int | None:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await connection.recv()
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


@pytest.fixture
def accounts(make_server: MakeServer) -> Server:
    """A server with accounts on, an admin `root` and a user `alice` (plus her token)."""
    server = make_server({"DURACHAT_AUTH": "on"}, start=False)
    created = cli(
        server.data_dir,
        "user",
        "create",
        "root",
        "--admin",
        "--password-stdin",
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    make_user(server.data_dir, "alice")
    server.start()
    return server


async def test_setup_login_me_logout(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_AUTH": "on"})
    assert call(server, "GET", "/api/auth/me").status == 401
    before = call(server, "GET", "/api/auth/status").body
    assert before == {
        "authEnabled": True,
        "setupNeeded": True,
        "setupNeedsToken": False,  # loopback
        "user": None,
    }
    weak = call(server, "POST", "/api/auth/setup", {"username": "root", "password": "short"})
    assert weak.status == 400 and "at least 8 characters" in weak.body["error"]["message"]
    setup = call(server, "POST", "/api/auth/setup", {"username": "root", "password": PASSWORD})
    assert setup.status == 201 and setup.body["user"]["isAdmin"] is True
    again = call(server, "POST", "/api/auth/setup", {"username": "eve", "password": PASSWORD})
    assert again.status == 409
    wrong = call(server, "POST", "/api/auth/login", {"username": "root", "password": "nope-nope"})
    assert wrong.status == 401 and wrong.code == "unauthorized"
    assert "nope-nope" not in server.log()

    answer = call(server, "POST", "/api/auth/login", {"username": "root", "password": PASSWORD})
    assert answer.status == 200
    cookie_header = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie_header and "samesite=lax" in cookie_header
    assert "secure" not in cookie_header  # plain HTTP on loopback
    session = Session(server, session_cookie(answer))
    assert session.cookie != session_cookie(setup)  # a login makes a new session id
    assert session.call("GET", "/api/auth/me").body["user"]["username"] == "root"
    after = session.call("GET", "/api/auth/status").body
    assert after["setupNeeded"] is False and after["user"]["username"] == "root"
    assert call(server, "GET", "/api/auth/status").body["user"] is None

    client = await WsClient.connect(server.ws, headers=session.headers)
    await client.send({"type": "ping"})
    assert (await client.until(of_type("pong")))[-1]["type"] == "pong"
    await client.close()

    no_origin = call(
        server, "POST", "/api/auth/logout", headers={"Cookie": session.headers["Cookie"]}
    )
    assert no_origin.status == 403  # a cookie alone never changes state
    open_socket = await websockets.connect(server.ws, additional_headers=session.headers)
    await open_socket.recv()  # hello
    assert session.call("POST", "/api/auth/logout").status == 204
    assert await closed_code(open_socket) == 4401  # the session's sockets end with it
    assert session.call("GET", "/api/auth/me").status == 401
    refused = await websockets.connect(server.ws, additional_headers=session.headers)
    assert await closed_code(refused) == 4401


async def test_setup_from_elsewhere_needs_the_logged_token(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_AUTH": "on", "DURACHAT_TRUSTED_PROXIES": "127.0.0.1"})
    found = re.search(r"setup token (\S+)", server.log())
    assert found is not None, server.log()
    remote = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    status = call(server, "GET", "/api/auth/status", headers=remote).body
    assert status["setupNeeded"] is True and status["setupNeedsToken"] is True
    body = {"username": "root", "password": PASSWORD}
    assert call(server, "POST", "/api/auth/setup", body, remote).status == 403
    wrong = call(server, "POST", "/api/auth/setup", {**body, "setupToken": "dct_x"}, remote)
    assert wrong.status == 403
    ok = call(server, "POST", "/api/auth/setup", {**body, "setupToken": found.group(1)}, remote)
    assert ok.status == 201
    assert "secure" in ok.headers["set-cookie"].lower()  # HTTPS per the trusted proxy


async def test_password_change_ends_other_sessions(accounts: Server) -> None:
    first, second = login(accounts, "alice", PASSWORD), login(accounts, "alice", PASSWORD)
    bad = first.call("POST", "/api/auth/password", {"currentPassword": "x", "newPassword": "y"})
    assert bad.status == 400 and "current password" in bad.body["error"]["message"]
    short = first.call(
        "POST", "/api/auth/password", {"currentPassword": PASSWORD, "newPassword": "short"}
    )
    assert short.status == 400 and "at least 8" in short.body["error"]["message"]
    changed = first.call(
        "POST", "/api/auth/password", {"currentPassword": PASSWORD, "newPassword": "a new one!"}
    )
    assert changed.status == 204
    assert second.call("GET", "/api/auth/me").status == 401
    renewed = Session(accounts, session_cookie(changed))
    assert renewed.call("GET", "/api/auth/me").status == 200
    login(accounts, "alice", "a new one!")


async def test_login_rate_limit_per_account_and_address(make_server: MakeServer) -> None:
    server = make_server(
        {"DURACHAT_AUTH": "on", "DURACHAT_TRUSTED_PROXIES": "127.0.0.1"}, start=False
    )
    make_user(server.data_dir, "alice")
    server.start()

    def attempt(username: str, password: str, address: str) -> int:
        body = {"username": username, "password": password}
        headers = {"X-Forwarded-For": address}
        return call(server, "POST", "/api/auth/login", body, headers).status

    for _ in range(10):
        assert attempt("alice", "wrong password", "198.51.100.1") == 401
    limited = call(
        server,
        "POST",
        "/api/auth/login",
        {"username": "alice", "password": PASSWORD},
        {"X-Forwarded-For": "198.51.100.1"},
    )
    assert limited.status == 429 and limited.code == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 900
    # another address, and another account from that address, are not locked out
    assert attempt("alice", PASSWORD, "198.51.100.2") == 200
    assert attempt("bob", "wrong password", "198.51.100.1") == 401
    # 30 failures from one address in all lock that address for every account
    for n in range(19):
        assert attempt(f"user{n}", "wrong password", "198.51.100.1") == 401
    assert attempt("carol", "wrong password", "198.51.100.1") == 429
    assert attempt("alice", PASSWORD, "198.51.100.3") == 200
    assert "wrong password" not in server.log()
    assert "failed login for 'alice' from 198.51.100.1" in server.log()


async def test_forwarded_headers_of_untrusted_peers_are_ignored(accounts: Server) -> None:
    for n in range(10):
        headers = {"X-Forwarded-For": f"192.0.2.{n}"}
        body = {"username": "alice", "password": "wrong password"}
        assert call(accounts, "POST", "/api/auth/login", body, headers).status == 401
    body = {"username": "alice", "password": PASSWORD}
    forged = call(accounts, "POST", "/api/auth/login", body, {"X-Forwarded-For": "192.0.2.99"})
    assert forged.status == 429  # every attempt counted against 127.0.0.1


async def test_api_tokens_create_list_revoke(accounts: Server) -> None:
    alice, root = login(accounts, "alice", PASSWORD), login(accounts, "root", ADMIN_PASSWORD)
    created = alice.call("POST", "/api/auth/tokens", {"name": "laptop"})
    assert created.status == 201 and created.body["token"].startswith("dct_")
    token = created.body["token"]
    listed = alice.call("GET", "/api/auth/tokens").body["tokens"]
    assert {t["name"] for t in listed} == {"tests", "laptop"}
    assert token not in str(listed)
    assert accounts.request("GET", "/api/auth/me", token=token)[1]["user"]["username"] == "alice"
    assert root.call("DELETE", f"/api/auth/tokens/{created.body['id']}").status == 404
    open_socket = await websockets.connect(
        accounts.ws, additional_headers={"Authorization": f"Bearer {token}"}
    )
    await open_socket.recv()  # hello
    assert alice.call("DELETE", f"/api/auth/tokens/{created.body['id']}").status == 204
    assert await closed_code(open_socket) == 4401
    assert accounts.request("GET", "/api/auth/me", token=token)[0] == 401
    refused = await websockets.connect(
        accounts.ws, additional_headers={"Authorization": f"Bearer {token}"}
    )
    assert await closed_code(refused) == 4401


async def test_admin_disables_a_user_at_once_and_keeps_the_last_admin(accounts: Server) -> None:
    root, alice = login(accounts, "root", ADMIN_PASSWORD), login(accounts, "alice", PASSWORD)
    assert alice.call("GET", "/api/admin/users").status == 403
    users = {u["username"]: u for u in root.call("GET", "/api/admin/users").body["users"]}
    assert set(users) == {"root", "alice"}
    socket = await websockets.connect(accounts.ws, additional_headers=alice.headers)
    await socket.recv()  # hello
    disabled = root.call("PATCH", f"/api/admin/users/{users['alice']['id']}", {"disabled": True})
    assert disabled.status == 200 and disabled.body["user"]["disabled"] is True
    assert await closed_code(socket) == 4403
    assert alice.call("GET", "/api/auth/me").status == 401
    assert (
        call(
            accounts, "POST", "/api/auth/login", {"username": "alice", "password": PASSWORD}
        ).status
        == 401
    )

    for method, body in (("PATCH", {"disabled": True}), ("DELETE", None)):
        refused = root.call(method, f"/api/admin/users/{users['root']['id']}", body)
        assert refused.status == 409 and "last admin" in refused.body["error"]["message"]
    added = root.call(
        "POST", "/api/admin/users", {"username": "bob", "password": PASSWORD, "isAdmin": True}
    )
    assert added.status == 201
    assert root.call("DELETE", f"/api/admin/users/{users['alice']['id']}").status == 204
    assert root.call("DELETE", f"/api/admin/users/{users['root']['id']}").status == 204  # bob stays
    assert root.call("GET", "/api/auth/me").status == 401


def test_user_cli_set_password_disable_list(accounts: Server) -> None:
    data = accounts.data_dir
    listed = cli(data, "user", "list")
    assert listed.returncode == 0 and "root\tadmin\tenabled" in listed.stdout
    assert (
        cli(
            data, "user", "set-password", "alice", "--password-stdin", stdin="fresh password\n"
        ).returncode
        == 0
    )
    login(accounts, "alice", "fresh password")
    assert cli(data, "user", "disable", "alice").returncode == 0
    assert "alice\tuser\tdisabled" in cli(data, "user", "list").stdout
    last = cli(data, "user", "disable", "root")
    assert last.returncode == 1 and "last admin" in last.stderr


async def test_an_expired_session_answers_401(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_AUTH": "on", "DURACHAT_SESSION_TTL_S": "1"}, start=False)
    make_user(server.data_dir, "alice")
    server.start()
    session = login(server, "alice", PASSWORD)
    assert session.call("GET", "/api/auth/me").status == 200
    await asyncio.sleep(1.2)
    expired = session.call("GET", "/api/auth/me")
    assert expired.status == 401 and "expired" in expired.body["error"]["message"]


def test_a_cross_site_get_cannot_start_a_chat_with_the_cookie(accounts: Server) -> None:
    alice = login(accounts, "alice", PASSWORD)
    path = "/test/chat?prompt=!demo%20chunks%3D1%20delay_ms%3D1"
    cookie = {"Cookie": alice.headers["Cookie"]}
    for site in ("cross-site", "same-site"):
        refused = call(accounts, "GET", path, headers={**cookie, "Sec-Fetch-Site": site})
        assert (refused.status, refused.code) == (403, "forbidden"), site
    assert alice.call("GET", "/api/conversations").body["conversations"] == []
    for site in ("same-origin", "none"):  # the app itself, or a typed URL
        allowed = call(accounts, "GET", path, headers={**cookie, "Sec-Fetch-Site": site})
        assert allowed.status == 200, site
    bearer = {"Authorization": f"Bearer {make_user(accounts.data_dir, 'alice2')}"}
    scripted = call(accounts, "GET", path, headers={**bearer, "Sec-Fetch-Site": "cross-site"})
    assert scripted.status == 200  # a token is no ambient credential: no CSRF


def _stream_ends_after(url: str, headers: dict[str, str], end: Callable[[], object]) -> float:
    """Open an event stream, call `end`, and return how long the stream lived on."""
    with httpx.stream("GET", url, headers=headers, timeout=30) as answer:
        assert answer.status_code == 200, answer.read()
        lines = answer.iter_lines()
        next(lines)  # the stream is open (its first event arrives)
        ended = time.monotonic()
        threading.Timer(0.1, end).start()
        for _ in lines:
            pass
        return time.monotonic() - ended


def test_logout_and_token_revocation_end_event_streams(accounts: Server) -> None:
    alice = login(accounts, "alice", PASSWORD)
    created = alice.call("POST", "/api/auth/tokens", {"name": "sse"}).body
    bearer = {"Authorization": f"Bearer {created['token']}"}
    chat = call(accounts, "POST", "/api/chat", {"prompt": "!demo chunks=1 delay_ms=1"}, bearer)
    assert chat.status == 200
    conversation_id = alice.call("GET", "/api/conversations").body["conversations"][0]["id"]
    events = f"{accounts.http}/api/conversations/{conversation_id}/events"

    revoke = lambda: alice.call("DELETE", f"/api/auth/tokens/{created['id']}")  # noqa: E731
    assert _stream_ends_after(events, bearer, revoke) < 5
    logout = lambda: alice.call("POST", "/api/auth/logout")  # noqa: E731
    assert _stream_ends_after(events, alice.headers, logout) < 5
