"""Ollama through its native API (`/api/tags`, `/api/chat`), with `httpx`.

Models are the local models of `GET /api/tags`, named `<provider>/<name>`
(embedding models hidden). A reply is one `POST /api/chat` with `stream: true`,
read as NDJSON: each line's `message.content` is text and `message.thinking` is
reasoning; the line with `done: true` carries `done_reason`, `prompt_eval_count`
and `eval_count`, and becomes the `Finish`. A line with `error` fails the reply.
The system prompt is a first `system` message. Prefill is supported: the partial
reply goes last as an `assistant` message and Ollama's chat templates continue it.

Only a connect timeout is set here; first-token and idle limits and retries are
`guarded()`'s. Closing the stream closes the HTTP response at once. A key (for an
Ollama behind an authenticating proxy) is sent as a bearer token and never shown.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import orjson

from durachat.domain import Usage
from durachat.errors import ProviderError
from durachat.providers import vendor_errors
from durachat.providers.base import (
    Capabilities,
    ChatRequest,
    Finish,
    ModelInfo,
    ProviderConfig,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
)
from durachat.providers.resilience import Retryable, guarded

LIST_TIMEOUT_S = 15.0
"""Read timeout of `GET /api/tags`: the listing runs at start-up and must not hang it."""

_DETAIL_CHARS = 300


def display_url(base_url: str) -> str:
    """`base_url` without credentials or query, fit for a message."""
    return vendor_errors.display_url(base_url, base_url)


def build_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """System prompt, the branch path, then the partial reply to continue, if any.
    A message's images go in its `images` array, base64-encoded."""
    messages: list[dict[str, Any]] = []
    if request.system_prompt:
        messages.append({"role": "system", "content": request.system_prompt})
    for m in request.messages:
        message: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.images:
            message["images"] = [image.base64() for image in m.images]
        messages.append(message)
    if request.prefill:
        messages.append({"role": "assistant", "content": request.prefill})
    return messages


def is_chat_model(entry: dict[str, Any]) -> bool:
    """Not an embedding model (BERT families, `*embed*` names)."""
    name = str(entry.get("name", ""))
    details = entry.get("details")
    families: list[object] = []
    if isinstance(details, dict):
        families = [details.get("family"), *(details.get("families") or [])]
    bert = any(isinstance(f, str) and f.endswith("bert") for f in families)
    return bool(name) and "embed" not in name and not bert


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Malformed(ValueError):
    """A stream line that is not one of Ollama's chat chunks."""


def read_line(line: str) -> tuple[str, str, Finish | None]:
    """(text, thinking, the finish if this is the last line) of one NDJSON line."""
    try:
        chunk = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise Malformed("a line that is not JSON") from None
    if not isinstance(chunk, dict):
        raise Malformed("a line that is not an object")
    if "error" in chunk:
        raise ProviderError(f"Ollama reported an error: {chunk['error']}")
    message = chunk.get("message") or {}
    if not isinstance(message, dict):
        raise Malformed("a message that is not an object")
    content, thinking = message.get("content") or "", message.get("thinking") or ""
    if not isinstance(content, str) or not isinstance(thinking, str):
        raise Malformed("content that is not text")
    finish = None
    if chunk.get("done") is True:
        usage = Usage(_count(chunk.get("prompt_eval_count")), _count(chunk.get("eval_count")))
        finish = Finish(str(chunk.get("done_reason") or "stop"), usage)
    return content, thinking, finish


class OllamaProvider:
    """One Ollama server (`OLLAMA_BASE_URL`, or a `[[providers]]` of kind `ollama`)."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._url = display_url(config.base_url)
        self._who = "Ollama" if config.name == "ollama" else f"{config.name} (Ollama)"
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers=headers,
            timeout=httpx.Timeout(None, connect=config.policy.connect_s),
        )
        self._models: list[ModelInfo] | None = None

    @property
    def name(self) -> str:
        return self._config.name

    async def models(self) -> list[ModelInfo]:
        """The local chat models of `GET /api/tags`, listed once and then cached."""
        if self._models is None:
            timeout = httpx.Timeout(LIST_TIMEOUT_S, connect=self._config.policy.connect_s)
            try:
                response = await self._client.get("/api/tags", timeout=timeout)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, started=False) from None
            if response.status_code != 200:
                raise self._status_error(response, None)
            try:
                entries = response.json()["models"]
                names = sorted({str(e["name"]) for e in entries if is_chat_model(e)})
            except (ValueError, KeyError, TypeError):
                raise ProviderError(f"{self._who} sent a malformed models list") from None
            capabilities = Capabilities(prefill=True)
            self._models = [
                ModelInfo(f"{self.name}/{n}", n.removesuffix(":latest"), self.name, capabilities)
                for n in names
            ]
        return list(self._models)

    def stream(self, request: ChatRequest) -> AsyncGenerator[ProviderEvent, None]:
        """The reply's events, with retries before the first one and timeouts."""
        label = f"{self.name}/{request.model}"
        return guarded(lambda: self._attempt(request), self._config.policy, label)

    async def _attempt(self, request: ChatRequest) -> AsyncGenerator[ProviderEvent, None]:
        """One try: one streamed `/api/chat`, closed whatever happens."""
        body = {"model": request.model, "messages": build_messages(request), "stream": True}
        started = False
        finish: Finish | None = None
        try:
            async with self._client.stream("POST", "/api/chat", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self._status_error(response, request.model)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        text, thinking, finish = read_line(line)
                    except Malformed as exc:
                        raise ProviderError(f"{self._who} sent a malformed chunk ({exc})") from None
                    if thinking:
                        started = True
                        yield ReasoningDelta(thinking)
                    if text:
                        started = True
                        yield TextDelta(text)
                    if finish is not None:
                        break
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, started) from None
        if finish is not None:
            yield finish

    def _scrub(self, text: str) -> str:
        if self._config.api_key:
            text = text.replace(self._config.api_key, "***")
        text = " ".join(text.split())
        return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."

    def _status_error(self, response: httpx.Response, model: str | None) -> ProviderError:
        status = response.status_code
        try:
            detail = str(response.json().get("error") or "")
        except (ValueError, AttributeError):
            detail = response.text
        detail = self._scrub(detail)
        suffix = f": {detail}" if detail else ""
        if status == 404 and model is not None:
            return ProviderError(f"model not found in {self._who}: {model} (ollama pull {model})")
        if status == 404:
            return ProviderError(f"{self._who} has no API at {self._url} (404)")
        if status in (401, 403):
            return ProviderError(f"{self._who} refused access ({status}){suffix}")
        if status == 429 or status >= 500:
            wait = vendor_errors.retry_after(response.headers)
            if wait is not None and wait > self._config.policy.backoff_cap_s:
                return ProviderError(
                    f"{self._who} is busy ({status}), retry in {math.ceil(wait)} s"
                )
            return Retryable(f"{self._who} failed ({status}){suffix}", wait)
        return ProviderError(f"{self._who} refused the request ({status}){suffix}")

    def _transport_error(self, exc: httpx.HTTPError, started: bool) -> ProviderError:
        reason = "timed out" if isinstance(exc, httpx.TimeoutException) else self._scrub(str(exc))
        because = f" ({reason})" if reason else ""
        if started:
            return ProviderError(f"{self._who} dropped the connection mid-reply{because}")
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Retryable(f"cannot reach {self._who} at {self._url}{because}")
        return Retryable(f"{self._who} dropped the connection before the first token{because}")

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = ["OllamaProvider", "build_messages", "display_url", "is_chat_model", "read_line"]
