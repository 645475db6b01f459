"""The async DuraChat client: a reply over `/ws` that survives lost connections.

`DuraChatClient.chat()` sends `start_chat` with a fresh `clientMessageId` and
yields the reply as `ChatEvent`s. When the connection drops it waits (exponential
backoff with jitter, `Backoff`), reconnects and resumes as PROTOCOL.md section 5
says: after the acknowledgement with the resume position in the `/ws` query,
before it by sending the same command again (the server answers a repeated
`clientMessageId` with its first answer and a catch-up, never a second reply).
What to send and what to yield is decided by `ReplySession`; this module only
moves frames and sleeps.

The first connection of a reply must succeed: a server that cannot be reached at
all fails at once (`Unreachable`) rather than after the give-up deadline. A
refused connection (close 4401/4403) raises `AuthError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from durachat.client.backoff import Backoff
from durachat.client.errors import AuthError, ClientError, ServerError, Unreachable
from durachat.client.events import ChatEvent, Done, Reconnecting
from durachat.client.http import ConversationPage, HttpApi
from durachat.client.reply import ReplySession, Send

DEFAULT_URL = "http://127.0.0.1:5787"
_REFUSED = (4401, 4403)
_TRANSPORT_ERRORS = (OSError, TimeoutError, InvalidHandshake, ConnectionClosed)


def websocket_url(base_url: str) -> str:
    """`http(s)://host[:port][/prefix]` -> `ws(s)://host[:port][/prefix]/ws`."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the server URL must be http:// or https://, not {base_url!r}")
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


class DuraChatClient:
    """A client of one DuraChat server; use it as an async context manager.

    `reconnect_initial`, `reconnect_cap` and `give_up_after` (seconds) shape the
    reconnect waits: `reconnect_initial` doubling up to `reconnect_cap`, each
    +-50%, for at most `give_up_after` seconds of one outage.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        reconnect_initial: float = 0.5,
        reconnect_cap: float = 30.0,
        give_up_after: float = 120.0,
        open_timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = websocket_url(self.base_url)
        self.token = token
        self.session_id: str | None = None
        """Our `sessionId`: assigned by the server's first `hello`, sent on every reconnect."""
        self.reconnect_initial = reconnect_initial
        self.reconnect_cap = reconnect_cap
        self.give_up_after = give_up_after
        self.open_timeout = open_timeout
        self._rng = rng or random.Random()
        self._http = HttpApi(self.base_url, token, timeout=open_timeout)

    async def __aenter__(self) -> DuraChatClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def chat(
        self,
        prompt: str,
        conversation_id: str | None = None,
        model: str | None = None,
        *,
        client_message_id: str | None = None,
    ) -> ReplyStream:
        """Start a reply to `prompt` (in a new conversation unless one is given).

        Iterate the result with `async for` for its events, or `await
        stream.result()` for the final `Done`.
        """
        command: dict[str, Any] = {
            "type": "start_chat",
            "prompt": prompt,
            "clientMessageId": client_message_id or uuid.uuid4().hex,
        }
        if conversation_id is not None:
            command["conversationId"] = conversation_id
        if model is not None:
            command["model"] = model
        return ReplyStream(self, ReplySession(command))

    async def list_conversations(
        self, limit: int = 50, cursor: str | None = None, archived: bool = False
    ) -> ConversationPage:
        """A page of conversations, newest activity first."""
        return await self._http.list_conversations(limit, cursor, archived)

    async def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        """A conversation's snapshot (the `catchup` object without `type`)."""
        return await self._http.get_conversation(conversation_id)

    async def stop(self, conversation_id: str) -> bool:
        """Stop the reply streaming in a conversation (over HTTP); False if none was."""
        return await self._http.stop(conversation_id)

    def _backoff(self) -> Backoff:
        return Backoff(
            self.reconnect_initial, self.reconnect_cap, self.give_up_after, rng=self._rng
        )

    async def _open(self, query: dict[str, str]) -> ClientConnection:
        """Open `/ws` with our session and the given query (tests wrap this to inject faults)."""
        if self.session_id is not None:
            query = {"sessionId": self.session_id, **query}
        url = self.ws_url + ("?" + urlencode(query) if query else "")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        return await connect(
            url,
            additional_headers=headers,
            compression=None,
            max_queue=None,  # unread frames must never stall a close
            open_timeout=self.open_timeout,
        )


class ReplyStream:
    """One reply being followed: iterate it once, `stop()` it from another task."""

    def __init__(self, client: DuraChatClient, session: ReplySession) -> None:
        self._client = client
        self._session = session
        self._socket: ClientConnection | None = None
        self._iterating = False

    @property
    def conversation_id(self) -> str | None:
        """Known once the server acknowledged (or given by the caller)."""
        return self._session.conversation_id

    @property
    def message_id(self) -> str | None:
        return self._session.message_id

    @property
    def client_message_id(self) -> str:
        return str(self._session.command["clientMessageId"])

    def __aiter__(self) -> AsyncGenerator[ChatEvent, None]:
        if self._iterating:
            raise RuntimeError("a ReplyStream can be iterated only once")
        self._iterating = True
        return self._events()

    async def result(self) -> Done:
        """Follow the reply to its end and return the final `Done`."""
        async for _ in self:
            pass
        assert self._session.result is not None
        return self._session.result

    async def stop(self) -> bool:
        """Ask the server to stop this reply; it then ends `cancelled`.

        Sent on the open connection when there is one, else over HTTP. False if
        the reply is not known yet (no acknowledgement and no conversation).
        """
        frame = self._session.stop_frame()
        if frame is None:
            return False
        if self._socket is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._socket.send(orjson.dumps(frame).decode())
                return True
        return await self._client.stop(str(frame["conversationId"]))

    async def _events(self) -> AsyncGenerator[ChatEvent, None]:
        session = self._session
        backoff = self._client._backoff()
        connected_before = False
        while True:
            try:
                socket = await self._client._open(session.resume_query())
            except _TRANSPORT_ERRORS as exc:
                _raise_refusal(exc)
                if not connected_before:
                    raise Unreachable(
                        f"cannot connect to {self._client.base_url}: {_describe(exc)}"
                    ) from exc
                reason = _describe(exc)
            else:
                connected_before = True
                self._socket = socket
                try:
                    await self._greet(socket)
                    while not session.finished:
                        outputs = session.receive(_decode(await socket.recv()))
                        backoff.reset()  # the server is answering again
                        for output in outputs:
                            if isinstance(output, Send):
                                await socket.send(orjson.dumps(output.frame).decode())
                            else:
                                yield output
                    return
                except _TRANSPORT_ERRORS as exc:
                    _raise_refusal(exc)
                    reason = _describe(exc)
                except ServerError as exc:
                    if not exc.retryable:
                        raise
                    reason = exc.message
                finally:
                    self._socket = None
                    await socket.close()
            delay = backoff.next_delay(time.monotonic())
            if delay is None:
                raise Unreachable(
                    f"gave up reconnecting to {self._client.base_url} after "
                    f"{self._client.give_up_after:g} s: {reason}"
                )
            yield Reconnecting(backoff.attempt, delay, reason)
            await asyncio.sleep(delay)

    async def _greet(self, socket: ClientConnection) -> None:
        """Read `hello` (keep our session id), then send what the session opens with."""
        hello = _decode(await asyncio.wait_for(socket.recv(), self._client.open_timeout))
        if hello.get("type") == "hello" and hello.get("sessionId"):
            self._client.session_id = str(hello["sessionId"])
        for frame in self._session.opening_frames():
            await socket.send(orjson.dumps(frame).decode())


def _decode(raw: str | bytes) -> dict[str, Any]:
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        frame = None
    if not isinstance(frame, dict):
        raise ClientError("the server sent a frame that is not a JSON object: is it DuraChat?")
    return frame


def _raise_refusal(exc: BaseException) -> None:
    """Credentials or origin refused: retrying cannot help."""
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
        code = exc.rcvd.code
        if code in _REFUSED:
            raise AuthError(code, exc.rcvd.reason) from exc
        if code == 1009:
            raise ServerError("too_large", "a frame was over the server's size limit") from exc
        if code == 1008:
            raise ServerError("bad_request", exc.rcvd.reason or "policy violation") from exc
    if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
        raise AuthError(exc.response.status_code, "the server refused the connection") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd
        if frame is None:
            return "connection lost"
        return f"connection closed ({frame.code}{': ' + frame.reason if frame.reason else ''})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
