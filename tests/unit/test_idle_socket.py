"""What an idle WebSocket holds (SPEC 9: under 32 KB): nothing it does not use.

`/ws` reaches its endpoint past the middleware and the router, whose layers would
each stay suspended for the socket's whole life; an outbox keeps no queue and no
waiter while nothing waits to be sent.
"""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Scope
from starlette.websockets import WebSocket

from durachat.api import ws
from durachat.app import create_app
from durachat.bus.outbox import Outbox
from durachat.settings import Settings


def _scope(path: str) -> Scope:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "subprotocols": [],
    }


async def test_ws_paths_reach_the_endpoint_with_the_servers_own_send_and_receive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reached: list[WebSocket] = []

    async def endpoint(websocket: WebSocket) -> None:
        reached.append(websocket)

    monkeypatch.setattr(ws, "websocket_endpoint", endpoint)
    app = create_app(Settings())

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        return None

    for path in ("/ws", "/test/ws", "/nowhere"):
        await app(_scope(path), receive, send)
    assert [w.url.path for w in reached] == ["/ws", "/test/ws"]
    # nothing between the server and the socket: no layer wraps each frame sent
    assert all(w._send is send and w._receive is receive for w in reached)
    assert all(w.app is app for w in reached)  # the endpoint finds the services


async def test_an_idle_outbox_holds_no_queue_until_a_send_has_to_wait() -> None:
    gate = asyncio.Event()
    sent: list[str] = []

    async def send(data: str) -> None:
        if not gate.is_set():
            await gate.wait()
        sent.append(data)

    outbox = Outbox("u", 10, send)
    outbox.push_data("a")  # sent at once: the send is suspended, nothing queued yet
    assert outbox._queue is None and outbox._waiter is None
    outbox.push_data("b")
    assert len(outbox) == 1 and outbox._queue is not None
    gate.set()
    await outbox.drained(timeout=1)
    assert sent == ["a", "b"]
    assert outbox._queue is None, "a drained outbox gives its queue back"


async def test_a_queue_mode_outbox_waits_without_an_event() -> None:
    outbox = Outbox("u", 10)
    assert outbox._queue is None and outbox._waiter is None
    waiting = asyncio.create_task(outbox.next_batch())
    await asyncio.sleep(0)
    assert outbox._waiter is not None
    outbox.push_data("a")
    assert await waiting == ["a"]
    assert outbox._queue is None and outbox._waiter is None
