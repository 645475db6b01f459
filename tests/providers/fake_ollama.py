"""A fake Ollama: an ASGI app that speaks Ollama's native API.

`GET /api/tags` answers the local models (`name`, `model`, `size`, `digest`,
`details.family`); `POST /api/chat` with `stream: true` answers
`application/x-ndjson`: one JSON object per line, `{"model", "created_at",
"message": {"role": "assistant", "content", "thinking"?}, "done": false}`, then a
last line with `done: true`, `done_reason`, the durations, `prompt_eval_count` and
`eval_count`. Errors are `{"error": "..."}`, with Ollama's status codes (404 and
`model "x" not found, try pulling it first` for a model it does not have). A
request whose last message is the assistant's is continued from it, as Ollama's
chat templates do.

Each chat request is recorded, each answer follows the next scripted behaviour
(`script(Reply(...), Fail(503, ...))`) or `default`, and client disconnects are
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

_WORD = re.compile(r"\S+\s*|\s+")
CREATED_AT = "2026-11-24T08:00:00.000000Z"


@dataclass(frozen=True)
class Reply:
    """A streamed answer and the ways it can go wrong."""

    chunks: tuple[str, ...] = ("Hello", ", ", "world", "!")
    thinking: tuple[str, ...] = ()
    first_delay_s: float = 0.0
    delay_s: float = 0.0
    done: bool = True
    """Send the final `done: true` line."""
    done_reason: str = "stop"
    usage: tuple[int, int] = (12, 4)
    """(prompt_eval_count, eval_count)."""
    drop_after: int | None = None
    """Close the connection abruptly after this many content chunks."""
    raw_after: int | None = None
    """Send `raw` as a line after this many content chunks."""
    raw: bytes = b"{not json\n"
    error_after: int | None = None
    """Send an `{"error": ...}` line after this many content chunks."""
    error: str = "an error was encountered while running the model"


@dataclass(frozen=True)
class Fail:
    """An HTTP error with Ollama's error body."""

    status: int
    error: str = "something went wrong"
    headers: dict[str, str] = field(default_factory=dict)


Behaviour = Reply | Fail


def tag(name: str, family: str = "llama") -> dict[str, Any]:
    """One entry of `/api/tags`."""
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-11-20T10:00:00.000000Z",
        "size": 2_019_393_189,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }


DEFAULT_TAGS = (
    tag("llama3.2:latest"),
    tag("qwen3:0.6b", "qwen3"),
    tag("nomic-embed-text:latest", "nomic-bert"),
)


def remaining(chunks: tuple[str, ...], prefill: str) -> tuple[str, ...]:
    """The chunks after `prefill` (word by word), or all of them if it is not a prefix."""
    full = "".join(chunks)
    if not prefill or not full.startswith(prefill):
        return chunks
    return tuple(_WORD.findall(full[len(prefill) :]))


class FakeOllama:
    """The ASGI app; its attributes are what it received and what it will answer."""

    def __init__(self) -> None:
        self.tags: list[dict[str, Any]] = list(DEFAULT_TAGS)
        self.default: Behaviour = Reply()
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.tags_requests = 0
        self.completed = 0
        self.disconnects = Disconnects()
        self._script: deque[Behaviour] = deque()

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next chat requests with these, in order."""
        self._script.extend(behaviours)

    def reset(self) -> None:
        self.tags = list(DEFAULT_TAGS)
        self.default = Reply()
        self.requests.clear()
        self.authorizations.clear()
        self.tags_requests = 0
        self.completed = 0
        self.disconnects.clear()
        self._script.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        self.authorizations.append(request.headers.get("authorization", ""))
        path = request.url.path
        if path == "/api/tags" and request.method == "GET":
            self.tags_requests += 1
            await JSONResponse({"models": self.tags})(scope, receive, send)
        elif path == "/api/chat" and request.method == "POST":
            await self._chat(request, receive, send)
        else:
            await _error(Fail(404, "404 page not found"))(scope, receive, send)

    async def _chat(self, request: Request, receive: Receive, send: Send) -> None:
        body: dict[str, Any] = await request.json()
        self.requests.append(body)
        model = str(body.get("model", ""))
        behaviour = self._script.popleft() if self._script else self.default
        if model not in {t["name"] for t in self.tags}:
            behaviour = Fail(404, f'model "{model}" not found, try pulling it first')
        if isinstance(behaviour, Fail):
            await _error(behaviour)(request.scope, receive, send)
            return
        lines = _lines(behaviour, body)
        content_type = b"application/x-ndjson"
        if await send_stream(receive, send, content_type, lines, self.disconnects):
            self.completed += 1


def _error(fail: Fail) -> JSONResponse:
    return JSONResponse({"error": fail.error}, fail.status, fail.headers)


def _line(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload) + b"\n"


def _chunk(model: str, content: str = "", thinking: str | None = None) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    return _line({"model": model, "created_at": CREATED_AT, "message": message, "done": False})


def _final(model: str, reply: Reply) -> bytes:
    prompt, completion = reply.usage
    return _line(
        {
            "model": model,
            "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": reply.done_reason,
            "total_duration": 4_883_583_458,
            "load_duration": 1_334_875,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": 342_546_000,
            "eval_count": completion,
            "eval_duration": 4_535_599_000,
        }
    )


def _lines(reply: Reply, body: dict[str, Any]) -> Iterator[Line]:
    """(delay before it, line or None for "drop the connection here")."""
    model = str(body.get("model", ""))
    chunks = reply.chunks
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "assistant":
        chunks = remaining(chunks, str(messages[-1].get("content", "")))
    delay = reply.first_delay_s
    for text in reply.thinking:
        yield delay, _chunk(model, thinking=text)
        delay = reply.delay_s
    for sent, text in enumerate(chunks):
        if reply.drop_after == sent:
            yield delay, None
        if reply.raw_after == sent:
            yield delay, reply.raw
        if reply.error_after == sent:
            yield delay, _line({"error": reply.error})
            return
        yield delay, _chunk(model, text)
        delay = reply.delay_s
    if reply.drop_after is not None and reply.drop_after >= len(chunks):
        yield delay, None
    if reply.done:
        yield delay, _final(model, reply)


__all__ = ["DEFAULT_TAGS", "Behaviour", "Fail", "FakeOllama", "Reply", "remaining", "tag"]
