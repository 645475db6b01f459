"""A bare WebSocket relay: the baseline DuraChat's performance bars are ratios of.

It runs on the same stack as `durachat serve` (uvicorn + Starlette, per-message
compression off, the same frame limit, warnings only, no access log) and speaks
just enough of PROTOCOL.md for the benchmark clients to drive it like DuraChat:

- on connect: `hello`;
- `start_chat` without `conversationId`: `conversation_created` to the sender, then
  the reply streamed to the sender;
- `subscribe`: join a conversation's room, answered by a minimal `catchup`;
- `start_chat` with `conversationId`: `message_started`, the reply and `done` to
  every socket in that room, each frame encoded once and the same string sent to
  every socket;
- `ping`: `pong`; `GET /healthz`: 200 `ok`.

A reply has the shape of `demo/echo` under a `!demo chunks=N delay_ms=D` prompt: N
`text` frames `w1 `, `w2 `, ..., built as a dict and encoded with orjson like
DuraChat does, `await asyncio.sleep(0)` (or `delay_ms`) between chunks, then `done`;
with `stamp=1` each chunk is `w<i>@<CLOCK_MONOTONIC ns> `, as `demo/echo` makes it.

It must never store anything, keep replay logs or do any work per chunk beyond
building, encoding and sending the frame: it is the floor DuraChat is measured
against. Run it with `python -m durachat.bench.relay --port 8765`; `durachat bench` starts it
itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import time
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_FRAME_BYTES = 1_048_576
"""Same as DuraChat's default `DURACHAT_MAX_FRAME_BYTES`."""

DEFAULT_CHUNKS = 20

_ids = itertools.count(1)
_rooms: dict[str, set[WebSocket]] = {}


def _new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):08d}"


def _encode(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


def parse_demo(prompt: str) -> tuple[int, float, bool]:
    """(chunks, delay in seconds, stamp) from a `!demo chunks=N delay_ms=D stamp=S` line."""
    chunks, delay_ms, stamp = DEFAULT_CHUNKS, 0, False
    first = prompt.partition("\n")[0]
    if first.startswith("!demo"):
        for item in first.split()[1:]:
            key, _, raw = item.partition("=")
            if key == "chunks":
                chunks = int(raw)
            elif key == "delay_ms":
                delay_ms = int(raw)
            elif key == "stamp":
                stamp = bool(int(raw))
    return chunks, delay_ms / 1000, stamp


async def _send_all(sockets: list[WebSocket], data: str) -> None:
    for websocket in sockets:
        with contextlib.suppress(Exception):  # a socket that went away misses frames
            await websocket.send_text(data)


async def stream_reply(
    sockets: list[WebSocket], conversation_id: str, message_id: str, prompt: str
) -> None:
    """Stream one reply to `sockets`: each frame encoded once, sent to all of them."""
    chunks, delay, stamp = parse_demo(prompt)
    clock = time.clock_gettime_ns
    for seq in range(1, chunks + 1):
        await asyncio.sleep(delay)
        content = f"w{seq}@{clock(time.CLOCK_MONOTONIC)} " if stamp else f"w{seq} "
        frame = {
            "type": "text",
            "conversationId": conversation_id,
            "messageId": message_id,
            "seq": seq,
            "content": content,
        }
        await _send_all(sockets, _encode(frame))
    done = {
        "type": "done",
        "conversationId": conversation_id,
        "messageId": message_id,
        "seq": chunks,
        "status": "complete",
        "usage": None,
    }
    await _send_all(sockets, _encode(done))


class _Client:
    """One socket: the rooms it joined and the replies it started."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.rooms: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def join(self, conversation_id: str) -> None:
        _rooms.setdefault(conversation_id, set()).add(self.websocket)
        self.rooms.add(conversation_id)

    def leave_all(self) -> None:
        for conversation_id in self.rooms:
            room = _rooms.get(conversation_id)
            if room is not None:
                room.discard(self.websocket)
                if not room:
                    del _rooms[conversation_id]
        for task in self.tasks:
            task.cancel()

    def spawn(
        self, sockets: list[WebSocket], conversation_id: str, message_id: str, prompt: str
    ) -> None:
        task = asyncio.create_task(stream_reply(sockets, conversation_id, message_id, prompt))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "start_chat":
            await self._start_chat(frame)
        elif kind == "subscribe":
            conversation_id = str(frame["conversationId"])
            self.join(conversation_id)
            catchup = {"type": "catchup", "conversation": {"id": conversation_id}, "messages": []}
            await self.websocket.send_text(_encode(catchup))
        elif kind == "ping":
            await self.websocket.send_text('{"type":"pong"}')

    async def _start_chat(self, frame: dict[str, Any]) -> None:
        prompt = str(frame.get("prompt", ""))
        conversation_id = frame.get("conversationId")
        message_id = _new_id("m")
        if conversation_id is None:
            conversation_id = _new_id("c")
            self.join(conversation_id)
            ack = {
                "type": "conversation_created",
                "conversationId": conversation_id,
                "messageId": message_id,
            }
            await self.websocket.send_text(_encode(ack))
            self.spawn([self.websocket], conversation_id, message_id, prompt)
            return
        self.join(conversation_id)
        sockets = list(_rooms[conversation_id])
        started = {
            "type": "message_started",
            "conversationId": conversation_id,
            "messageId": message_id,
        }
        await _send_all(sockets, _encode(started))
        self.spawn(sockets, conversation_id, message_id, prompt)


async def relay_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    client = _Client(websocket)
    hello = {"type": "hello", "sessionId": _new_id("s"), "userId": "relay", "protocol": 1}
    await websocket.send_text(_encode(hello))
    try:
        while True:
            text = await websocket.receive_text()
            await client.handle(orjson.loads(text))
    except WebSocketDisconnect:
        pass
    finally:
        client.leave_all()


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/healthz", healthz), WebSocketRoute("/ws", relay_endpoint)])


def config(port: int, host: str = "127.0.0.1") -> uvicorn.Config:
    """The uvicorn settings of `durachat serve`, for this app."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level="warning",
        access_log=False,
        ws="websockets-sansio",  # the protocol `durachat serve` uses
        ws_per_message_deflate=False,
        ws_max_size=MAX_FRAME_BYTES,
        lifespan="off",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Bare uvicorn + Starlette WebSocket relay.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    uvicorn.Server(config(args.port, args.host)).run()


if __name__ == "__main__":
    main()
