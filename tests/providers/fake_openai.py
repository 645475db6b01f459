"""A fake OpenAI-compatible server: an ASGI app that speaks the chat-completions wire format.

`GET /v1/models` answers the model list; `POST /v1/chat/completions` with `stream:
true` answers `text/event-stream`: `data: {chat.completion.chunk}` lines (a role
chunk, reasoning, content, the finish reason, the usage chunk when
`stream_options.include_usage` asks for it) and `data: [DONE]`, as OpenAI and vLLM
send them. Errors have OpenAI's JSON shape. Each chat request is recorded, each
answer follows the next scripted behaviour (`script(Reply(...), Fail(429, ...))`),
or `default` once the script is empty, and client disconnects are observed, so
tests can check that a cancelled stream really closed its HTTP response.

Serve it with `tests.providers.http_server.serve_app(fake)`; it runs in another
thread, so tests only read its records and append to its script.
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
    """A streamed answer and the ways it can go wrong."""

    chunks: tuple[str, ...] = ("Hello", ", ", "world", "!")
    reasoning: tuple[str, ...] = ()
    reasoning_field: str = "reasoning_content"
    first_delay_s: float = 0.0
    """Before the first reasoning or content chunk (the role chunk comes at once)."""
    delay_s: float = 0.0
    """Before every later chunk."""
    finish_reason: str | None = "stop"
    usage: tuple[int, int] | None = (11, 4)
    """(prompt_tokens, completion_tokens), sent when the client asks for usage."""
    done: bool = True
    hold_s: float = 0.0
    """After the last line, keep the connection open this long before ending the body."""
    drop_after: int | None = None
    """Close the connection abruptly after this many content chunks."""
    raw_after: int | None = None
    """Send `raw` as a data line after this many content chunks."""
    raw: bytes = b"{not json"
    continue_prefill: bool = False
    """For a prefilled request, stream only what follows the partial reply in `chunks`."""


@dataclass(frozen=True)
class Fail:
    """An HTTP error with OpenAI's error body."""

    status: int
    message: str = "something went wrong"
    code: str | None = None
    type: str = "invalid_request_error"
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


Behaviour = Reply | Fail


class _Drop(Exception):
    """Raised after the response started: uvicorn then closes the connection."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _Drop))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


def remaining(chunks: tuple[str, ...], prefill: str) -> tuple[str, ...]:
    """The chunks after `prefill` (word by word), or all of them if it is not a prefix."""
    full = "".join(chunks)
    if not prefill or not full.startswith(prefill):
        return chunks
    return tuple(_WORD.findall(full[len(prefill) :]))


class FakeOpenAI:
    """The ASGI app; its attributes are what it received and what it will answer."""

    def __init__(self, models: tuple[str, ...] = ("fake-chat",), api_key: str = "") -> None:
        self.models = list(models)
        self.model_fields: dict[str, dict[str, Any]] = {}
        """Extra fields of a model's entry in the list (vLLM's `max_model_len`, ...)."""
        self.api_key = api_key
        """When set, requests must carry `Authorization: Bearer <api_key>`."""
        self.default: Behaviour = Reply()
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.models_requests = 0
        self.completed = 0
        self.disconnects: list[float] = []
        self.disconnected = threading.Event()
        self._script: deque[Behaviour] = deque()

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next chat requests with these, in order."""
        self._script.extend(behaviours)

    def reset(self) -> None:
        self.default = Reply()
        self.model_fields.clear()
        self.api_key = ""
        self.requests.clear()
        self.authorizations.clear()
        self.models_requests = 0
        self.completed = 0
        self.disconnects.clear()
        self.disconnected.clear()
        self._script.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        given = request.headers.get("authorization", "")
        self.authorizations.append(given)
        if self.api_key and given != f"Bearer {self.api_key}":
            # Echo the key, as a careless server might: the client must not repeat it.
            key = given.removeprefix("Bearer ")
            fail = Fail(401, f"Incorrect API key provided: {key}", "invalid_api_key")
            await _error(fail)(scope, receive, send)
        elif request.url.path == "/v1/models" and request.method == "GET":
            self.models_requests += 1
            data = [
                {"id": m, "object": "model", "owned_by": "fake", **self.model_fields.get(m, {})}
                for m in self.models
            ]
            await JSONResponse({"object": "list", "data": data})(scope, receive, send)
        elif request.url.path == "/v1/chat/completions" and request.method == "POST":
            await self._chat(request, receive, send)
        else:
            await _error(Fail(404, "no such route", type="not_found"))(scope, receive, send)

    async def _chat(self, request: Request, receive: Receive, send: Send) -> None:
        body: dict[str, Any] = await request.json()
        self.requests.append(body)
        behaviour = self._script.popleft() if self._script else self.default
        if isinstance(behaviour, Fail):
            await _error(behaviour)(request.scope, receive, send)
        elif body.get("stream") is not True:
            await _error(Fail(400, "this fake only streams"))(request.scope, receive, send)
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
            for delay, line in _lines(reply, body):
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(gone.wait(), delay)
                if gone.is_set():
                    return
                if line is None:
                    raise _Drop
                await send({"type": "http.response.body", "body": line, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self.completed += 1
        except OSError:
            gone.set()
        finally:
            watcher.cancel()


def _error(fail: Fail) -> JSONResponse:
    error = {"message": fail.message, "type": fail.type, "param": None, "code": fail.code}
    return JSONResponse({"error": {**error, **fail.extra}}, fail.status, fail.headers)


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return _data(_envelope(model) | {"choices": [choice]})


def _envelope(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
    }


def _data(payload: dict[str, Any] | bytes) -> bytes:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return b"data: " + raw + b"\n\n"


def _lines(reply: Reply, body: dict[str, Any]) -> Iterator[tuple[float, bytes | None]]:
    """(delay before it, data line or None for "drop the connection here")."""
    model = str(body.get("model", ""))
    chunks = reply.chunks
    messages = body.get("messages") or []
    if reply.continue_prefill and messages and messages[-1].get("role") == "assistant":
        chunks = remaining(chunks, str(messages[-1].get("content", "")))
    yield 0.0, _chunk(model, {"role": "assistant", "content": ""})
    delay = reply.first_delay_s
    for text in reply.reasoning:
        yield delay, _chunk(model, {reply.reasoning_field: text})
        delay = reply.delay_s
    for sent, text in enumerate(chunks):
        if reply.drop_after == sent:
            yield delay, None
        if reply.raw_after == sent:
            yield delay, _data(reply.raw)
        yield delay, _chunk(model, {"content": text})
        delay = reply.delay_s
    if reply.drop_after is not None and reply.drop_after >= len(chunks):
        yield delay, None
    if reply.finish_reason is not None:
        yield delay, _chunk(model, {}, reply.finish_reason)
    options = body.get("stream_options") or {}
    if reply.usage is not None and options.get("include_usage"):
        prompt, completion = reply.usage
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        yield 0.0, _data(_envelope(model) | {"choices": [], "usage": usage})
    if reply.done:
        yield 0.0, b"data: [DONE]\n\n"
    if reply.hold_s > 0:
        yield reply.hold_s, b": keep-alive\n\n"


__all__ = ["Behaviour", "Fail", "FakeOpenAI", "Reply", "remaining"]
