"""Server-Sent Events: `POST /api/chat`, `GET /api/conversations/{id}/events` and
the prototype's `GET /test/chat` (PROTOCOL.md section 7).

The frames are those of the WebSocket, one SSE event each: `event: <type>`, then
`id: <messageId>:<seq>` on `text` and `done` only (so a browser's `EventSource`
resumes with `Last-Event-ID`), then `data: <the frame's JSON>`. A stream reads the
bus through an outbox in queue mode and carries only the frames about its one
conversation: its replies' events and the `conversation_updated` /
`conversation_deleted` of that conversation (not the rest of the user's list).

Everything that can fail runs before the response starts, so such errors are JSON
4xx/5xx answers from `api/errors.py`. A stream never owns a generation: a
disconnect only detaches its outbox; it must never stop a reply (DESIGN.md
invariant 4). The resume logic is `api/sync.py`'s, never re-implemented here.

A stream ends after the `done` of the reply it started (`POST /api/chat`), when
its conversation is deleted, at server shutdown, and on `resync`: the reader was
too slow and frames were dropped, so the stream sends that event and ends; an
`EventSource` reconnects with its `Last-Event-ID` and gets the delta or a catch-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from durachat.api import protocol
from durachat.api.deps import PrincipalDep, Services, ServicesDep, Socket
from durachat.api.sync import bring_up_to_date
from durachat.api.watched_outbox import WatchedOutbox
from durachat.auth.identity import Principal
from durachat.bus.base import Bus
from durachat.bus.outbox import Outbox
from durachat.errors import BadRequest, Forbidden, Unavailable
from durachat.runner.commands import Command, StartChat
from durachat.runner.runner import Started

KEEPALIVE_S = 15.0
"""Idle seconds after which a stream sends a `: keep-alive` comment line."""

SHUTDOWN_WAIT_S = 2.0
"""How long server shutdown waits for a stream to send what is queued."""

_KEEPALIVE = b": keep-alive\n\n"
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_POSITIONED = frozenset({"text", "done"})
_ENDING = frozenset({"resync", "conversation_deleted"})
_MAX_ID = 200
_MAX_SEQ_DIGITS = 18

_DOC_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "the event stream"}
}

router = APIRouter()


class ChatBody(protocol.StartChatFrame):
    """The body of `POST /api/chat`: a `start_chat` frame whose `type` may be left out."""

    type: Literal["start_chat"] = "start_chat"


def parse_position(raw: str | None) -> tuple[str | None, int | None]:
    """A resume position `<messageId>:<seq>` as (messageId, seq); (None, None) if absent."""
    if not raw:
        return None, None
    message_id, colon, seq = raw.rpartition(":")
    valid_seq = seq.isascii() and seq.isdigit() and len(seq) <= _MAX_SEQ_DIGITS
    if not colon or not message_id or len(message_id) > _MAX_ID or not valid_seq:
        raise BadRequest(f"a resume position is <messageId>:<seq>, not {raw[:100]!r}")
    return message_id, int(seq)


def format_event(frame: dict[str, Any], data: str) -> str:
    """One SSE event for a decoded frame and its JSON text."""
    kind = frame["type"]
    if kind in _POSITIONED:
        return f"event: {kind}\nid: {frame['messageId']}:{frame['seq']}\ndata: {data}\n\n"
    return f"event: {kind}\ndata: {data}\n\n"


def _conversation_of(frame: dict[str, Any]) -> str | None:
    found = frame.get("conversationId")
    conversation = frame.get("conversation")
    if found is None and isinstance(conversation, dict):
        found = conversation.get("id")
    return found if isinstance(found, str) else None


class EventStream:
    """One SSE response: an outbox in queue mode, drained as `text/event-stream`."""

    def __init__(
        self,
        bus: Bus,
        outbox: Outbox,
        conversation_id: str | None = None,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self.bus = bus
        self.outbox = outbox
        self.conversation_id = conversation_id
        self.keepalive_s = keepalive_s
        self.reply_id: str | None = None
        self.credential: str | None = None
        """Hash of the session or token that opened it: logging out or revoking
        the token ends the stream."""
        self._closed = False
        self._ended = asyncio.Event()

    def follow(self, started: Started) -> None:
        """The runner's `on_ready`: attach, subscribe, queue the acknowledgement.

        It runs before anything about the reply is published, so the
        acknowledgement is the stream's first event.
        """
        self.conversation_id = started.conversation.id
        self.reply_id = started.message.id
        self.bus.attach(self.outbox)
        if started.repeated:
            self.outbox.push_data(started.ack().data)  # the catch-up follows
            return
        self.bus.subscribe(self.outbox, started.conversation.id)
        if started.created:
            self.outbox.push_data(started.ack().data)  # else the runner publishes it

    def close(self) -> None:
        """Detach from the bus (once). A reply being generated goes on."""
        if not self._closed:
            self._closed = True
            self.bus.detach(self.outbox)
        self._ended.set()

    async def going_away(self) -> None:
        """Server shutdown: end the stream after what is queued (bounded wait)."""
        self.outbox.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_WAIT_S):
                await self._ended.wait()

    async def end(self, code: int, reason: str) -> None:
        """End the stream now (the account was disabled or removed)."""
        self.outbox.close()
        self.close()

    async def events(self) -> AsyncIterator[bytes]:
        """The response body: batches of events, a keep-alive comment when idle."""
        while True:
            try:
                async with asyncio.timeout(self.keepalive_s):
                    batch = await self.outbox.next_batch()
            except TimeoutError:
                yield _KEEPALIVE
                continue
            if not batch:
                return  # the outbox was closed: shutdown
            chunk, last = self._encode(batch)
            if chunk:
                yield chunk
            if last:
                return

    def _encode(self, batch: list[str]) -> tuple[bytes, bool]:
        """The events of a batch, and whether the stream ends with them."""
        parts = []
        for data in batch:
            frame = orjson.loads(data)
            about = _conversation_of(frame)
            if about is not None and about != self.conversation_id:
                continue
            parts.append(format_event(frame, data))
            if self._ends(frame):
                return "".join(parts).encode(), True
        return "".join(parts).encode(), False

    def _ends(self, frame: dict[str, Any]) -> bool:
        kind = frame["type"]
        if kind in _ENDING:
            return True
        if kind == "done":
            return bool(frame["messageId"] == self.reply_id)
        if kind == "catchup" and self.reply_id is not None:  # a repeated command's reply
            return any(
                m["id"] == self.reply_id and m["status"] != "streaming" for m in frame["messages"]
            )
        return False


class EventStreamResponse(StreamingResponse):
    """Streams an `EventStream`; registered for shutdown while it runs, detached after."""

    def __init__(self, stream: EventStream, sockets: set[Socket]) -> None:
        super().__init__(stream.events(), media_type="text/event-stream", headers=_HEADERS)
        self.stream = stream
        self.sockets = sockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.sockets.add(self.stream)
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.sockets.discard(self.stream)
            self.stream.close()


def _new_stream(
    services: Services, principal: Principal, conversation_id: str | None
) -> EventStream:
    if services.draining:
        raise Unavailable("the server is shutting down; try again in a moment")
    outbox = WatchedOutbox(principal.user.id, services.settings.outbox_frames, services.metrics)
    stream = EventStream(services.bus, outbox, conversation_id)
    stream.credential = principal.credential
    return stream


async def _chat(services: Services, principal: Principal, command: Command) -> EventStreamResponse:
    """Start a reply, then stream it; errors before that are JSON answers."""
    user_id = principal.user.id
    stream = _new_stream(services, principal, None)
    try:
        started = await services.runner.start_reply(user_id, command, stream.follow)
        if started.repeated:
            conversation_id = started.conversation.id
            await bring_up_to_date(
                services.store,
                services.bus,
                stream.outbox,
                conversation_id,
                metrics=services.metrics,
            )
    except BaseException:
        stream.close()
        raise
    return EventStreamResponse(stream, services.sockets)


@router.post("/api/chat", responses=_DOC_RESPONSES)
async def post_chat(
    services: ServicesDep, principal: PrincipalDep, body: ChatBody
) -> EventStreamResponse:
    """Start a reply (a `start_chat` without `type`) and stream it until its `done`."""
    return await _chat(services, principal, protocol.to_command(body))


@router.get("/test/chat", responses=_DOC_RESPONSES)
async def prototype_chat(
    services: ServicesDep,
    principal: PrincipalDep,
    request: Request,
    prompt: str,
    model: str | None = None,
    conversation_id: Annotated[str | None, Query(alias="conversationId")] = None,
) -> EventStreamResponse:
    """The first prototype's alias of `POST /api/chat`; empty parameters count as absent.

    A GET that starts a reply: with a session cookie it is refused when the browser
    says another site sent it (`Sec-Fetch-Site`), so a link or a page elsewhere
    cannot spend the user's model budget (SameSite=Lax still sends the cookie on a
    top-level navigation)."""
    site = request.headers.get("sec-fetch-site")
    if principal.via == "session" and site not in (None, "same-origin", "none"):
        raise Forbidden("cross-site request refused (a chat is started from this site only)")
    command = StartChat(prompt, conversation_id or None, model or None)
    return await _chat(services, principal, command)


@router.get("/api/conversations/{conversation_id}/events", responses=_DOC_RESPONSES)
async def conversation_events(
    services: ServicesDep,
    principal: PrincipalDep,
    conversation_id: str,
    after: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStreamResponse:
    """A conversation's events, live. A position (`Last-Event-ID` header, else
    `?after=`, as `<messageId>:<seq>`) first replays what came after it, as
    `subscribe` does; without one the stream starts with a `catchup`."""
    message_id, seq = parse_position(last_event_id or after)
    stream = _new_stream(services, principal, conversation_id)
    try:
        await bring_up_to_date(
            services.store,
            services.bus,
            stream.outbox,
            conversation_id,
            message_id,
            seq,
            services.metrics,
        )
    except BaseException:
        stream.close()
        raise
    services.bus.attach(stream.outbox)  # after the snapshot is queued: it comes first
    return EventStreamResponse(stream, services.sockets)
