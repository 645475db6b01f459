"""The WebSocket endpoint `/ws` (alias `/test/ws`): PROTOCOL.md sections 2 to 5.

A socket never owns a generation: it asks the runner to start or stop replies and
reads the bus through its outbox, which sends frames straight from the publisher
while the socket keeps up (see `bus/outbox.py`). The receive loop handles one
client frame at a time. Refusals (foreign Origin, no
credentials) accept the upgrade and then close with 4403/4401 so a browser can
read the reason.

`install` mounts the endpoint in front of the app's middleware and router rather
than as a route: every layer there stays suspended, holding its frames (and
FastAPI's three `AsyncExitStack`s), for the whole life of the socket, which was
about a quarter of what an idle socket costs (SPEC 9: under 32 KB), and one of
them wrapped every frame sent. None of them has work to do for these sockets:
the security headers and error handlers answer HTTP. Nothing here may hold
per-socket memory that an idle socket does not need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, cast

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from durachat import events
from durachat.api import protocol
from durachat.api.deps import Services
from durachat.api.errors import error_frame
from durachat.api.sync import bring_up_to_date
from durachat.api.watched_outbox import WatchedOutbox
from durachat.api.ws_wire import direct_writer
from durachat.bus.outbox import Outbox
from durachat.domain import User, new_id
from durachat.errors import BadRequest, DuraChatError, Forbidden
from durachat.runner.commands import Command
from durachat.runner.runner import Started

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
PATHS = frozenset({"/ws", "/test/ws"})


class Connection:
    """One client socket: its user, its outbox and its frame handlers."""

    __slots__ = ("credential", "outbox", "services", "user", "websocket")

    def __init__(
        self, services: Services, websocket: WebSocket, user: User, credential: str | None = None
    ) -> None:
        self.services = services
        self.websocket = websocket
        self.user = user
        self.credential = credential
        send = websocket._send  # the raw ASGI send: one dict per frame, nothing else

        def send_text(data: str) -> Coroutine[Any, Any, None]:
            # ASGI servers implement `send` as a coroutine function
            return cast(Coroutine[Any, Any, None], send({"type": "websocket.send", "text": data}))

        limit = services.settings.outbox_frames
        write = direct_writer(send)
        self.outbox: Outbox = WatchedOutbox(user.id, limit, services.metrics, send_text, write)

    async def run(self) -> None:
        services = self.services
        params = self.websocket.query_params
        session_id = params.get("sessionId") or new_id()
        services.bus.attach(self.outbox)
        self.outbox.push_data(events.hello(session_id, self.user.id).data)
        try:
            if params.get("conversationId"):
                await self._guarded(self._subscribe_from_query)
            await self._receive_loop()
        finally:
            services.bus.detach(self.outbox)

    async def going_away(self) -> None:
        """Server shutdown: send what is queued (bounded), then close with 1001."""
        self.outbox.close()
        await self.outbox.drained(timeout=2.0)
        with contextlib.suppress(Exception):
            await self.websocket.close(CLOSE_GOING_AWAY, "server shutting down")

    async def end(self, code: int, reason: str) -> None:
        """Close now (the account was disabled or removed): nothing more is sent."""
        self.outbox.close()
        with contextlib.suppress(Exception):
            await self.websocket.close(code, reason)

    async def _receive_loop(self) -> None:
        receive = self.websocket.receive
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self._send_error(BadRequest("binary frames are not supported; send JSON text"))
                continue
            await self._guarded(self._handle, text)

    async def _guarded(self, handler: object, *args: object) -> None:
        """Run a handler; turn its failure into an `error` frame, keep the socket."""
        try:
            await handler(*args)  # type: ignore[operator]
        except (WebSocketDisconnect, asyncio.CancelledError):
            raise
        except Exception as exc:  # every failure of one frame becomes its error frame
            self._send_error(exc)

    def _send_error(self, exc: BaseException, conversation_id: str | None = None) -> None:
        self.outbox.push_data(error_frame(exc, conversation_id).data)

    async def _subscribe_from_query(self) -> None:
        params = self.websocket.query_params
        after_seq = params.get("afterSeq")
        if after_seq is not None and not after_seq.isdigit():
            raise BadRequest("afterSeq must be a whole number")
        await bring_up_to_date(
            self.services.store,
            self.services.bus,
            self.outbox,
            params["conversationId"],
            params.get("afterMessageId"),
            int(after_seq) if after_seq is not None else None,
            self.services.metrics,
        )

    async def _handle(self, text: str) -> None:
        frame = protocol.parse_client_frame(text)
        conversation_id = getattr(frame, "conversation_id", None)
        try:
            await self._dispatch(frame)
        except DuraChatError as exc:
            self._send_error(exc, conversation_id)

    async def _dispatch(self, frame: protocol.AnyClientFrame) -> None:
        services = self.services
        match frame:
            case protocol.PingFrame():
                self.outbox.push_data(events.PONG.data)
            case (
                protocol.StartChatFrame()
                | protocol.EditFrame()
                | protocol.RegenerateFrame()
                | protocol.ContinueFrame()
            ):
                await self._start(protocol.to_command(frame))
            case protocol.SubscribeFrame():
                await bring_up_to_date(
                    services.store,
                    services.bus,
                    self.outbox,
                    frame.conversation_id,
                    frame.after_message_id,
                    frame.after_seq,
                    services.metrics,
                )
            case protocol.UnsubscribeFrame():
                services.bus.unsubscribe(self.outbox, frame.conversation_id)
            case protocol.StopFrame():
                await services.store.get_conversation(self.user.id, frame.conversation_id)
                await services.runner.stop_anywhere(
                    self.user.id, frame.conversation_id, frame.message_id
                )

    async def _start(self, command: Command) -> None:
        services = self.services
        started = await services.runner.start_reply(self.user.id, command, self._on_started)
        if started.repeated:
            await bring_up_to_date(
                services.store,
                services.bus,
                self.outbox,
                started.conversation.id,
                metrics=services.metrics,
            )

    def _on_started(self, started: Started) -> None:
        if started.repeated:
            self.outbox.push_data(started.ack().data)  # the catch-up follows
            return
        self.services.bus.subscribe(self.outbox, started.conversation.id)
        if started.created:
            self.outbox.push_data(started.ack().data)


async def websocket_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    identity = services.identity
    await websocket.accept()
    if not identity.origin_allowed(websocket.headers):
        await websocket.close(CLOSE_FORBIDDEN, "origin not allowed")
        return
    try:
        principal = await identity.authenticate(websocket.headers)
    except Forbidden as exc:
        await websocket.close(CLOSE_FORBIDDEN, exc.message)
        return
    except DuraChatError as exc:
        await websocket.close(CLOSE_UNAUTHORIZED, exc.message)
        return
    connection = Connection(services, websocket, principal.user, principal.credential)
    services.sockets.add(connection)
    try:
        await connection.run()
    except WebSocketDisconnect:
        pass
    finally:
        services.sockets.discard(connection)


def _route_path(scope: Scope) -> str:
    """The path without the app's `root_path`, as Starlette's router matches it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        return path[len(root_path) :]
    return path


class WebSocketShortcut:
    """The app's outermost layer: WebSockets on `PATHS` go straight to the endpoint.

    A plain function returning the awaitable, not a coroutine function, so that
    it adds no frame of its own to any connection.
    """

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket" and _route_path(scope) in PATHS:
            return websocket_endpoint(WebSocket(scope, receive, send))
        return self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """Serve `PATHS` from outside the app's whole middleware stack (see above)."""
    build = app.build_middleware_stack

    def build_with_shortcut() -> ASGIApp:
        return WebSocketShortcut(build())

    app.build_middleware_stack = build_with_shortcut  # type: ignore[method-assign]
