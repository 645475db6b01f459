"""A thin raw WebSocket client for the load generator: counts frames, keeps times.

The client library (`durachat.client`) opens a new socket inside each `chat()`
and hides when `start_chat` went out; the scenarios need sockets opened before the
measured window (and kept idle for `idle`), the send time of each command (for
`firsttoken`) and a seq check per frame. Measured on the 2-core machine (200
replies x 200 chunks), the library costs about the same client CPU per frame as
this client (20-25 against 27-48 microseconds, noisy), so it is not avoided for
speed. This client only decodes each frame with orjson, checks `text` seq order
per message and notes when the first `text` of each message arrived. It must
never do more per `text` frame than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from durachat.bench.servers import STEP_TIMEOUT_S


class Client:
    """One WebSocket: counts `text` frames per message, queues the other frames."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.counts: dict[str, int] = {}
        self.last_seq: dict[str, int] = {}
        self.first_text_at: dict[str, float] = {}
        self.other_frames = 0
        self.problems: list[str] = []
        self._inbox: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._closed = False
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        recv = self.ws.recv
        loads = orjson.loads
        counts = self.counts
        last_seq = self.last_seq
        try:
            while True:
                raw = await recv(decode=False)
                frame = loads(raw)
                if frame["type"] == "text":
                    message_id = frame["messageId"]
                    seq = frame["seq"]
                    previous = last_seq.get(message_id, 0)
                    if seq != previous + 1:
                        self.problems.append(f"{message_id}: seq {seq} after {previous}")
                    if previous == 0:
                        self.first_text_at[message_id] = time.perf_counter()
                    last_seq[message_id] = seq
                    counts[message_id] = counts.get(message_id, 0) + 1
                    continue
                frame["_at"] = time.perf_counter()
                self.other_frames += 1
                if frame["type"] in ("error", "resync"):
                    self.problems.append(f"unexpected frame {frame}")
                self._inbox.append(frame)
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            self._arrived.set()

    async def wait_for(self, kind: str, **match: Any) -> dict[str, Any]:
        """The first unclaimed non-text frame of `kind` whose fields equal `match`."""
        while True:
            for index, frame in enumerate(self._inbox):
                if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                    del self._inbox[index]
                    return frame
            if self._closed:
                raise ConnectionError(f"socket closed while waiting for {kind} {match}")
            self._arrived.clear()
            await self._arrived.wait()

    async def send(self, payload: dict[str, Any]) -> float:
        """Send a frame; the `perf_counter` time just before it went out."""
        data = orjson.dumps(payload).decode()
        at = time.perf_counter()
        await self.ws.send(data)
        return at

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def open_client(url: str) -> Client:
    ws = await connect(
        url,
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=STEP_TIMEOUT_S,
        close_timeout=2,
        max_queue=1024,
    )
    client = Client(ws)
    await asyncio.wait_for(client.wait_for("hello"), STEP_TIMEOUT_S)
    return client


async def open_clients(url: str, count: int, batch: int = 50) -> list[Client]:
    """`count` connected clients (each past `hello`), opened `batch` at a time."""
    clients: list[Client] = []
    try:
        for start in range(0, count, batch):
            group = [open_client(url) for _ in range(start, min(start + batch, count))]
            clients += await asyncio.wait_for(asyncio.gather(*group), STEP_TIMEOUT_S)
    except BaseException:
        await close_clients(clients)
        raise
    return clients


async def close_clients(clients: list[Client]) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.close() for c in clients)), STEP_TIMEOUT_S)


def demo_prompt(chunks: int, delay_ms: int = 0) -> str:
    return f"!demo chunks={chunks} delay_ms={delay_ms}"
