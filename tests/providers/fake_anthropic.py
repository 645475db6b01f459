"""A fake Anthropic API: an ASGI app that speaks the Messages API's wire format.

`GET /v1/models` answers the Models API's paginated list (`limit`, `after_id`,
`has_more`, `last_id`). `POST /v1/messages` with `stream: true` answers
`text/event-stream` in Anthropic's framing, `event: <type>` then `data: {...}`:
`message_start` (input usage), `ping`, for each thinking or text block a
`content_block_start`, its `content_block_delta`s (`thinking_delta` and a
`signature_delta`, or `text_delta`) and a `content_block_stop`, then
`message_delta` (stop reason, output usage) and `message_stop`. Errors have
Anthropic's JSON shape, `{"type": "error", "error": {"type", "message"}}`, over
HTTP before the stream or as an `error` event inside it.

Each message request is recorded with its headers; each answer follows the next
scripted behaviour (`script(Fail(529), Reply(...))`), or `default` once the script
is empty. Client disconnects are observed, so tests can check that a cancelled
stream really closed its HTTP response. Serve it with
`tests.providers.http_server.serve_app(fake)`: it runs in another thread, so tests
only read its records and append to its script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

_WORD = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class Reply:
    """A streamed message and the ways it can go wrong."""

    text: tuple[str, ...] = ("Hello", ", ", "world", "!")
    thinking: tuple[str, ...] = ()
    usage: tuple[int, int] = (12, 5)
    """(input_tokens, output_tokens)."""
    stop_reason: str | None = "end_turn"
    first_delay_s: float = 0.0
    """Before the first content block (`message_start` and a `ping` come at once)."""
    delay_s: float = 0.0
    """Before every later delta."""
    stop: bool = True
    """Send `message_delta` and `message_stop` at the end."""
    drop_after: int | None = None
    """Close the connection abruptly after this many text deltas."""
    raw_after: int | None = None
    """Send `raw` as an event's data after this many text deltas."""
    raw: bytes = b"{not json"
    error_after: int | None = None
    """Send an `error` event after this many text deltas, then end the stream."""
    error_type: str = "overloaded_error"
    error_message: str = "Overloaded"
    continue_prefill: bool = False
    """For a prefilled request, stream only what follows the partial reply in `text`."""


@dataclass(frozen=True)
class Fail:
    """An HTTP error with Anthropic's error body."""

    status: int
    message: str = "something went wrong"
    type: str = "api_error"
    headers: dict[str, str] = field(default_factory=dict)
    error_code: str | None = None
    """`error.details.error_code`, for the errors that have one."""


Behaviour = Reply | Fail


def model_entry(
    model_id: str,
    display_name: str = "",
    *,
    max_input_tokens: int | None = None,
    max_tokens: int | None = None,
    vision: bool | None = None,
    lifecycle: str = "active",
) -> dict[str, Any]:
    """One `ModelInfo` of the Models API (capabilities only when `vision` is given)."""
    entry: dict[str, Any] = {
        "type": "model",
        "id": model_id,
        "display_name": display_name or model_id,
        "created_at": "2025-10-01T00:00:00Z",
        "lifecycle": lifecycle,
        "max_input_tokens": max_input_tokens,
        "max_tokens": max_tokens,
        "capabilities": None,
    }
    if vision is not None:
        supported = {"supported": True}
        entry["capabilities"] = {
            "batch": supported,
            "citations": supported,
            "image_input": {"supported": vision},
            "pdf_input": supported,
            "structured_outputs": supported,
            "thinking": {"supported": True, "types": {"enabled": supported}},
        }
    return entry


class _Drop(Exception):
    """Raised after the response started: uvicorn then closes the connection."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _Drop))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


def remaining(text: tuple[str, ...], prefill: str) -> tuple[str, ...]:
    """The deltas after `prefill` (word by word), or all of them if it is not a prefix."""
    full = "".join(text)
    if not prefill or not full.startswith(prefill):
        return text
    return tuple(_WORD.findall(full[len(prefill) :]))


class FakeAnthropic:
    """The ASGI app; its attributes are what it received and what it will answer."""

    def __init__(self, models: list[dict[str, Any]] | None = None, api_key: str = "") -> None:
        self.models = models if models is not None else [model_entry("claude-test")]
        self.api_key = api_key
        """When set, requests must carry it (`x-api-key`, or `Authorization: Bearer`)."""
        self.default: Behaviour = Reply()
        self.calls = 0
        """Every HTTP request, refused ones included."""
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.models_requests: list[dict[str, str]] = []
        self.completed = 0
        self.disconnects: list[float] = []
        self.disconnected = threading.Event()
        self._script: deque[Behaviour] = deque()

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next message requests with these, in order."""
        self._script.extend(behaviours)

    def reset(self) -> None:
        self.models = [model_entry("claude-test")]
        self.default = Reply()
        self.api_key = ""
        self.calls = 0
        self.requests.clear()
        self.headers.clear()
        self.models_requests.clear()
        self.completed = 0
        self.disconnects.clear()
        self.disconnected.clear()
        self._script.clear()

    def _key_of(self, request: Request) -> str:
        given = request.headers.get("x-api-key")
        if given is None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
        return given

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        self.calls += 1
        given = self._key_of(request)
        if self.api_key and given != self.api_key:
            # Echo the key, as a careless server might: the client must not repeat it.
            fail = Fail(401, f"invalid x-api-key: {given}", "authentication_error")
            await _error(fail)(scope, receive, send)
        elif request.url.path == "/v1/models" and request.method == "GET":
            self.models_requests.append(dict(request.query_params))
            await self._list(request)(scope, receive, send)
        elif request.url.path == "/v1/messages" and request.method == "POST":
            await self._messages(request, receive, send)
        else:
            await _error(Fail(404, "Not found", "not_found_error"))(scope, receive, send)

    def _list(self, request: Request) -> JSONResponse:
        limit = int(request.query_params.get("limit", "20"))
        after = request.query_params.get("after_id")
        ids = [m["id"] for m in self.models]
        start = ids.index(after) + 1 if after in ids else 0
        page = self.models[start : start + limit]
        return JSONResponse(
            {
                "data": page,
                "has_more": start + limit < len(self.models),
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            }
        )

    async def _messages(self, request: Request, receive: Receive, send: Send) -> None:
        body: dict[str, Any] = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        behaviour = self._script.popleft() if self._script else self.default
        if isinstance(behaviour, Fail):
            await _error(behaviour)(request.scope, receive, send)
        elif body.get("stream") is not True:
            fail = Fail(400, "this fake only streams", "invalid_request_error")
            await _error(fail)(request.scope, receive, send)
        else:
            await self._stream(behaviour, body, receive, send)

    async def _stream(
        self, reply: Reply, body: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnects.append(time.monotonic())
            self.disconnected.set()
            gone.set()

        watcher = asyncio.create_task(watch())
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for delay, chunk in _events(reply, body):
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(gone.wait(), delay)
                if gone.is_set():
                    return
                if chunk is None:
                    raise _Drop
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self.completed += 1
        except OSError:
            gone.set()
        finally:
            watcher.cancel()


def _error(fail: Fail) -> JSONResponse:
    error: dict[str, Any] = {"type": fail.type, "message": fail.message}
    if fail.error_code is not None:
        error["details"] = {"error_code": fail.error_code}
    body = {"type": "error", "error": error, "request_id": "req_fake"}
    return JSONResponse(body, fail.status, fail.headers)


def sse(event: str, payload: dict[str, Any] | bytes) -> bytes:
    """One server-sent event in Anthropic's framing."""
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def _typed(kind: str, **fields: Any) -> bytes:
    return sse(kind, {"type": kind, **fields})


def _prefilled(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "assistant":
        return ""
    content = messages[-1].get("content", "")
    return content if isinstance(content, str) else ""


def _events(reply: Reply, body: dict[str, Any]) -> Iterator[tuple[float, bytes | None]]:
    """(delay before it, event bytes or None for "drop the connection here")."""
    text = reply.text
    if reply.continue_prefill:
        text = remaining(text, _prefilled(body))
    input_tokens, output_tokens = reply.usage
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": str(body.get("model", "")),
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    yield 0.0, _typed("message_start", message=message)
    yield 0.0, _typed("ping")
    delay = reply.first_delay_s
    index = 0
    if reply.thinking:
        thinking = {"type": "thinking", "thinking": "", "signature": ""}
        yield delay, _typed("content_block_start", index=index, content_block=thinking)
        for part in reply.thinking:
            delta = {"type": "thinking_delta", "thinking": part}
            yield delay, _typed("content_block_delta", index=index, delta=delta)
            delay = reply.delay_s
        delta = {"type": "signature_delta", "signature": "EqQBCkYIARgCIkD="}
        yield 0.0, _typed("content_block_delta", index=index, delta=delta)
        yield 0.0, _typed("content_block_stop", index=index)
        index += 1
    block = {"type": "text", "text": ""}
    yield delay, _typed("content_block_start", index=index, content_block=block)
    for sent, part in enumerate(text):
        if reply.drop_after == sent:
            yield delay, None
        if reply.raw_after == sent:
            yield delay, sse("content_block_delta", reply.raw)
        if reply.error_after == sent:
            error = {"type": reply.error_type, "message": reply.error_message}
            yield delay, _typed("error", error=error)
            return
        delta = {"type": "text_delta", "text": part}
        yield delay, _typed("content_block_delta", index=index, delta=delta)
        delay = reply.delay_s
    if reply.drop_after is not None and reply.drop_after >= len(text):
        yield delay, None
    if reply.error_after is not None and reply.error_after >= len(text):
        error = {"type": reply.error_type, "message": reply.error_message}
        yield delay, _typed("error", error=error)
        return
    yield 0.0, _typed("content_block_stop", index=index)
    if not reply.stop:
        return
    stop = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    yield 0.0, _typed("message_delta", delta=stop, usage={"output_tokens": output_tokens})
    yield 0.0, _typed("message_stop")


__all__ = ["Behaviour", "Fail", "FakeAnthropic", "Reply", "model_entry", "remaining", "sse"]
