"""A thin raw WebSocket client for the load generator: counts frames, keeps times.

The client library (`durachat.client`) opens a new socket inside each `chat()`
and hides when `start_chat` went out; the scenarios need sockets opened before the
measured window (and kept idle for `idle`), the send time of each command (for
`firsttoken`) and a seq check per frame. Measured on the 2-core machine (200
replies x 200 chunks), the library costs about the same client CPU per frame as
this client (20-25 against 27-48 microseconds, noisy), so it is not avoided for
speed. This client only decodes each frame with orjson, checks `text` seq order
per message and notes when the first `text` of each message arrived; a recording
client (`latency`, `resume-storm`) also keeps each `text` content with its
`CLOCK_MONOTONIC` receipt time. It must never do more per `text` frame than that.

A client may carry an API token (`Authorization: Bearer`, for a server with auth
on; the relay ignores it) and may resume: it starts from the last seq of each
message its predecessor applied and connects with `afterMessageId`/`afterSeq`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from durachat.bench.servers import STEP_TIMEOUT_S


def monotonic_ns() -> int:
    """`CLOCK_MONOTONIC` in ns: comparable with the stamps of `!demo stamp=1` chunks."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


@dataclass
class Recording:
    """Each `text` of a message as (receipt time in `CLOCK_MONOTONIC` ns, content)."""

    texts: list[tuple[int, str]] = field(default_factory=list)
    snapshot: tuple[int, str] | None = None
    """(seq, content) from a full `catchup` that replaced what came before."""


class Client:
    """One WebSocket: counts `text` frames per message, queues the other frames."""

    def __init__(
        self,
        ws: ClientConnection,
        token: str | None = None,
        record: bool = False,
        last_seq: dict[str, int] | None = None,
    ) -> None:
        self.ws = ws
        self.token = token
        self.record = record
        self.recordings: dict[str, Recording] = {}
        self.counts: dict[str, int] = {}
        self.last_seq: dict[str, int] = dict(last_seq or {})
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
        record = self.record
        try:
            while True:
                raw = await recv(decode=False)
                at = monotonic_ns() if record else 0
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
                    if record:
                        self._recording(message_id).texts.append((at, frame["content"]))
                    continue
                frame["_at"] = time.perf_counter()
                self.other_frames += 1
                if frame["type"] in ("error", "resync"):
                    self.problems.append(f"unexpected frame {frame}")
                elif frame["type"] == "catchup":
                    self._apply_catchup(frame)
                self._inbox.append(frame)
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            self._arrived.set()

    def _recording(self, message_id: str) -> Recording:
        recording = self.recordings.get(message_id)
        if recording is None:
            recording = self.recordings[message_id] = Recording()
        return recording

    def _apply_catchup(self, frame: dict[str, Any]) -> None:
        """A full snapshot replaces what this client had: seqs (and text) restart there."""
        for message in frame.get("messages") or []:
            if message.get("role") != "assistant":
                continue
            message_id, seq = message["id"], int(message.get("seq") or 0)
            self.last_seq[message_id] = seq
            if self.record:
                recording = self._recording(message_id)
                recording.texts.clear()
                recording.snapshot = (seq, message.get("content") or "")

    async def wait_for(self, kind: str, **match: Any) -> dict[str, Any]:
        """The first unclaimed non-text frame of `kind` whose fields equal `match`.

        An `error` frame fails the wait at once (nothing here expects one).
        """
        while True:
            for index, frame in enumerate(self._inbox):
                if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                    del self._inbox[index]
                    return frame
                if frame["type"] == "error":
                    raise RuntimeError(f"error frame while waiting for {kind}: {frame}")
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


@dataclass(frozen=True)
class Resume:
    """Where a reconnecting client left a reply (PROTOCOL.md section 5)."""

    conversation_id: str
    message_id: str
    seq: int

    def query(self) -> str:
        return urllib.parse.urlencode(
            {
                "conversationId": self.conversation_id,
                "afterMessageId": self.message_id,
                "afterSeq": self.seq,
            }
        )


async def open_client(
    url: str, token: str | None = None, record: bool = False, resume: Resume | None = None
) -> Client:
    """A connected client past `hello`; with `resume`, it asked for the delta."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    if resume is not None:
        url = f"{url}?{resume.query()}"
    ws = await connect(
        url,
        additional_headers=headers,
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=STEP_TIMEOUT_S,
        close_timeout=2,
        max_queue=1024,
    )
    last_seq = {resume.message_id: resume.seq} if resume is not None else None
    client = Client(ws, token, record, last_seq)
    await asyncio.wait_for(client.wait_for("hello"), STEP_TIMEOUT_S)
    return client


async def open_clients(
    url: str,
    count: int,
    batch: int = 50,
    tokens: list[str] | None = None,
    record: bool = False,
) -> list[Client]:
    """`count` connected clients (each past `hello`), opened `batch` at a time.

    With `tokens`, client i authenticates with `tokens[i % len(tokens)]`.
    """
    clients: list[Client] = []

    def token(index: int) -> str | None:
        return tokens[index % len(tokens)] if tokens else None

    try:
        for start in range(0, count, batch):
            group = [
                open_client(url, token(i), record) for i in range(start, min(start + batch, count))
            ]
            clients += await asyncio.wait_for(asyncio.gather(*group), STEP_TIMEOUT_S)
    except BaseException:
        await close_clients(clients)
        raise
    return clients


async def close_clients(clients: list[Client]) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.close() for c in clients)), STEP_TIMEOUT_S)


def demo_prompt(chunks: int, delay_ms: int = 0, stamp: bool = False) -> str:
    return f"!demo chunks={chunks} delay_ms={delay_ms}" + (" stamp=1" if stamp else "")
