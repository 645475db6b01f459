"""A thin WebSocket client for end-to-end tests: frames in, frames out, with timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

Frame = dict[str, Any]


class WsClient:
    def __init__(self, connection: ClientConnection, hello: Frame) -> None:
        self.connection = connection
        self.hello = hello

    @classmethod
    async def connect(
        cls,
        url: str,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> WsClient:
        if query:
            url = url + "?" + urlencode({k: v for k, v in query.items() if v is not None})
        options.setdefault("max_queue", None)  # unread frames must not stall the close
        connection = await websockets.connect(
            url, additional_headers=headers, compression=None, open_timeout=10, **options
        )
        hello = orjson.loads(await asyncio.wait_for(connection.recv(), 10))
        assert hello["type"] == "hello", hello
        return cls(connection, hello)

    async def send(self, frame: Frame) -> None:
        await self.connection.send(orjson.dumps(frame).decode())

    async def recv(self, timeout: float = 10.0) -> Frame:
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        frame: Frame = orjson.loads(raw)
        return frame

    async def until(self, predicate: Callable[[Frame], bool], timeout: float = 20.0) -> list[Frame]:
        """Receive frames until one matches; return all of them, the match last."""
        frames: list[Frame] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(deadline - loop.time(), 0.001))
            frames.append(frame)
            if predicate(frame):
                return frames

    async def close(self) -> None:
        await self.connection.close()


def is_done(frame: Frame) -> bool:
    return frame.get("type") == "done"


def of_type(kind: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.get("type") == kind
