"""A fake Gemini API: an ASGI app that speaks `generativelanguage.googleapis.com`.

`GET /{version}/models` answers the models list (`models/<name>`,
`supportedGenerationMethods`, `inputTokenLimit`, `thinking`); `POST
/{version}/models/<name>:streamGenerateContent?alt=sse` answers `text/event-stream`:
one `data: {GenerateContentResponse}` event per chunk (candidates[0].content.parts
with `text`, thought parts with `thought: true`, the running `usageMetadata` on
every chunk, `finishReason` on the last), and no end marker: the stream ends when
the response does. Errors have Google's shape (`{"error": {"code", "message",
"status", "details"}}`); a wrong `x-goog-api-key` answers 400 `API_KEY_INVALID`
and, like Google's debug details, quotes the key it was sent.

Each stream request is recorded, each answer follows the next scripted behaviour
(`script(Reply(...), Fail(429, ...))`) or `default`, and client disconnects are
observed. Serve it with `tests.providers.http_server.serve_app(fake)`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from tests.providers.streaming import Disconnects, Line, send_stream

_STREAM = re.compile(r"^/(v1[a-z0-9]*)/models/([^/:]+):streamGenerateContent$")
_MODELS = re.compile(r"^/(v1[a-z0-9]*)/models$")


@dataclass(frozen=True)
class Reply:
    """A streamed answer and the ways it can go wrong."""

    chunks: tuple[str, ...] = ("Hello", ", ", "world", "!")
    thoughts: tuple[str, ...] = ()
    first_delay_s: float = 0.0
    delay_s: float = 0.0
    finish_reason: str | None = "STOP"
    usage: tuple[int, int, int] = (9, 4, 0)
    """(promptTokenCount, candidatesTokenCount, thoughtsTokenCount) of the whole reply."""
    drop_after: int | None = None
    """Close the connection abruptly after this many text chunks."""
    raw_after: int | None = None
    """Send `raw` as an event after this many text chunks."""
    raw: bytes = b"data: {not json\r\n\r\n"
    blocked: str | None = None
    """Block the prompt with this reason: no candidates, only `promptFeedback`."""


@dataclass(frozen=True)
class Fail:
    """An HTTP error with Google's error body."""

    status: int
    message: str = "something went wrong"
    status_name: str = "INTERNAL"
    details: tuple[dict[str, Any], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


def rate_limited(retry_delay: str | None = "0.2s") -> Fail:
    """Google's 429 for a per-minute quota, with its `RetryInfo` when given."""
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []}
    ]
    if retry_delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    message = "You exceeded your current quota, please check your plan and billing details."
    return Fail(429, message, "RESOURCE_EXHAUSTED", tuple(details))


def invalid_key(key: str) -> Fail:
    """Google's answer to a wrong key, which quotes the key in its debug details."""
    details = (
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": f"Invalid API key: {key}"},
    )
    message = "API key not valid. Please pass a valid API key."
    return Fail(400, message, "INVALID_ARGUMENT", details)


Behaviour = Reply | Fail


@dataclass
class Recorded:
    """One stream request as the fake received it."""

    version: str
    model: str
    query: str
    body: dict[str, Any]


def model_entry(name: str, thinking: bool = True, methods: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name.replace("-", " ").title(),
        "description": "a fake model",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": list(methods or ("generateContent", "countTokens")),
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2.0,
        "thinking": thinking,
    }


DEFAULT_MODELS = (
    model_entry("gemini-fake-pro"),
    model_entry("gemini-fake-lite", thinking=False),
    model_entry("gemini-embedding-fake", thinking=False, methods=("embedContent",)),
    model_entry("gemini-fake-tts", thinking=False),
)


class FakeGemini:
    """The ASGI app; its attributes are what it received and what it will answer."""

    def __init__(self, api_key: str = "test-gemini-key") -> None:
        self.api_key = api_key
        self.models: list[dict[str, Any]] = list(DEFAULT_MODELS)
        self.default: Behaviour = Reply()
        self.requests: list[Recorded] = []
        self.keys: list[str] = []
        self.models_requests = 0
        self.completed = 0
        self.disconnects = Disconnects()
        self._script: deque[Behaviour] = deque()

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next stream requests with these, in order."""
        self._script.extend(behaviours)

    def reset(self) -> None:
        self.models = list(DEFAULT_MODELS)
        self.default = Reply()
        self.requests.clear()
        self.keys.clear()
        self.models_requests = 0
        self.completed = 0
        self.disconnects.clear()
        self._script.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        key = request.headers.get("x-goog-api-key", "")
        self.keys.append(key)
        path = request.url.path
        stream = _STREAM.match(path)
        if key != self.api_key:
            await _error(invalid_key(key))(scope, receive, send)
        elif _MODELS.match(path) and request.method == "GET":
            self.models_requests += 1
            await JSONResponse({"models": self.models})(scope, receive, send)
        elif stream and request.method == "POST":
            body: dict[str, Any] = await request.json()
            recorded = Recorded(stream[1], stream[2], request.url.query, body)
            self.requests.append(recorded)
            await self._answer(recorded, scope, receive, send)
        else:
            fail = Fail(404, f"Method not found: {path}", "NOT_FOUND")
            await _error(fail)(scope, receive, send)

    async def _answer(self, recorded: Recorded, scope: Scope, receive: Receive, send: Send) -> None:
        behaviour = self._script.popleft() if self._script else self.default
        known = {m["name"] for m in self.models}
        if f"models/{recorded.model}" not in known:
            message = f"models/{recorded.model} is not found for API version {recorded.version}"
            behaviour = Fail(404, message, "NOT_FOUND")
        if isinstance(behaviour, Fail):
            await _error(behaviour)(scope, receive, send)
            return
        lines = _events(behaviour, recorded.model)
        content_type = b"text/event-stream"
        if await send_stream(receive, send, content_type, lines, self.disconnects):
            self.completed += 1


def _error(fail: Fail) -> JSONResponse:
    error = {
        "code": fail.status,
        "message": fail.message,
        "status": fail.status_name,
        "details": list(fail.details),
    }
    return JSONResponse({"error": error}, fail.status, fail.headers)


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"


def _usage(reply: Reply, sent: int) -> dict[str, int]:
    """The running usage after `sent` text chunks (the whole count on the last one)."""
    prompt, candidates, thoughts = reply.usage
    total = len(reply.chunks)
    candidates_so_far = candidates if sent >= total else min(candidates, sent)
    usage = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates_so_far,
        "totalTokenCount": prompt + candidates_so_far + thoughts,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _chunk(
    model: str, parts: list[dict[str, Any]], usage: dict[str, int], finish: str | None
) -> bytes:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    payload = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": "fake-response",
    }
    return _event(payload)


def _events(reply: Reply, model: str) -> Iterator[Line]:
    """(delay before it, event or None for "drop the connection here")."""
    if reply.blocked is not None:
        prompt = reply.usage[0]
        usage = {"promptTokenCount": prompt, "totalTokenCount": prompt}
        feedback = {"blockReason": reply.blocked}
        yield reply.first_delay_s, _event({"promptFeedback": feedback, "usageMetadata": usage})
        return
    delay = reply.first_delay_s
    for text in reply.thoughts:
        yield delay, _chunk(model, [{"text": text, "thought": True}], _usage(reply, 0), None)
        delay = reply.delay_s
    last = len(reply.chunks)
    for sent, text in enumerate(reply.chunks, start=1):
        if reply.drop_after == sent - 1:
            yield delay, None
        if reply.raw_after == sent - 1:
            yield delay, reply.raw
        finish = reply.finish_reason if sent == last else None
        yield delay, _chunk(model, [{"text": text}], _usage(reply, sent), finish)
        delay = reply.delay_s
    if reply.drop_after is not None and reply.drop_after >= last:
        yield delay, None
    if not reply.chunks and reply.finish_reason is not None:
        yield delay, _chunk(model, [{"text": ""}], _usage(reply, 0), reply.finish_reason)


__all__ = [
    "DEFAULT_MODELS",
    "Behaviour",
    "Fail",
    "FakeGemini",
    "Recorded",
    "Reply",
    "invalid_key",
    "model_entry",
    "rate_limited",
]
