"""OpenAI, and any OpenAI-compatible server (vLLM, llama.cpp, LM Studio, OpenRouter,
Ollama's `/v1`), through the official `openai` SDK.

Models come from `GET {base}/models`, named `<provider>/<id>`, non-chat models
hidden. A reply is one streamed chat completion (`stream_options.include_usage`)
read chunk by chunk: text, reasoning, then a `Finish` once the finish reason and
the usage chunk have come; a stream that ends without a finish reason ends without
`Finish`, and the runner reports it. Retries and timeouts are `guarded()`'s, so the
SDK's own retries are off. Cancelling the stream closes the HTTP response at once.
This module never logs or reports the API key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from openai import AsyncOpenAI, AsyncStream, OpenAIError, Timeout
from openai.types.chat import ChatCompletionChunk

from durachat.domain import Usage
from durachat.errors import ProviderError
from durachat.providers.base import (
    ChatRequest,
    Finish,
    ModelInfo,
    ProviderConfig,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
)
from durachat.providers.openai_errors import ErrorContext, describe
from durachat.providers.openai_wire import (
    OPENAI_API_URL,
    MalformedChunk,
    build_messages,
    context_tokens,
    display_url,
    extra_body,
    is_chat_model,
    is_openai_api,
    model_info,
    read_chunk,
)
from durachat.providers.resilience import guarded

NO_KEY = "not-needed"
"""Sent as the key to servers configured without one (local servers ignore it)."""

LIST_TIMEOUT_S = 15.0
"""Read timeout of `GET /models`: the listing runs at start-up and must not hang it."""

FINISH_GRACE_S = 2.0
"""After the finish reason, how long to wait for the usage chunk and the end."""

Chunks = AsyncStream[ChatCompletionChunk]


class OpenAIProvider:
    """One OpenAI-compatible endpoint: `openai` from the environment, or a named one."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._openai_api = is_openai_api(config.base_url)
        self._errors = ErrorContext(config.name, display_url(config.base_url), config.api_key)
        self._client = AsyncOpenAI(
            api_key=config.api_key or NO_KEY,
            base_url=config.base_url or OPENAI_API_URL,
            timeout=Timeout(None, connect=config.policy.connect_s, pool=config.policy.connect_s),
            max_retries=0,
        )
        self._models: list[ModelInfo] | None = None

    @property
    def name(self) -> str:
        return self._config.name

    async def models(self) -> list[ModelInfo]:
        """The chat models of `GET /models`, listed once and then cached."""
        if self._models is None:
            found: dict[str, int | None] = {}
            timeout = Timeout(LIST_TIMEOUT_S, connect=self._config.policy.connect_s)
            try:
                async for model in self._client.models.list(timeout=timeout):
                    if isinstance(model.id, str) and is_chat_model(model.id, self._openai_api):
                        found[model.id] = context_tokens(model)
            except OpenAIError as exc:
                raise describe(exc, self._errors) from None
            except ValueError:  # a body that is not JSON
                raise ProviderError(f"{self.name} sent a malformed models list") from None
            self._models = [
                model_info(self.name, upstream, self._openai_api, found[upstream])
                for upstream in sorted(found)
            ]
        return list(self._models)

    def stream(self, request: ChatRequest) -> AsyncGenerator[ProviderEvent, None]:
        """The reply's events, with retries before the first one and timeouts."""
        label = f"{self.name}/{request.model}"
        return guarded(lambda: self._attempt(request), self._config.policy, label)

    async def _open(self, request: ChatRequest) -> Chunks:
        try:
            return await self._client.chat.completions.create(
                model=request.model,
                messages=build_messages(request),
                stream=True,
                stream_options={"include_usage": True},
                extra_body=extra_body(request, self._openai_api),
            )
        except OpenAIError as exc:
            raise self._failure(exc, request, opened=False, started=False) from None

    async def _attempt(self, request: ChatRequest) -> AsyncGenerator[ProviderEvent, None]:
        """One try: open the stream, translate its chunks, close it whatever happens."""
        chunks = await self._open(request)
        started = False
        finish: str | None = None
        usage: Usage | None = None
        try:
            while True:
                try:
                    chunk = await self._next(chunks, finish is not None)
                except OpenAIError as exc:
                    raise self._failure(exc, request, opened=True, started=started) from None
                except ValueError:  # the SDK's JSON decoding of a data line
                    raise self._malformed("not JSON") from None
                if chunk is None:
                    break
                try:
                    parts = read_chunk(chunk)
                except MalformedChunk as exc:
                    raise self._malformed(str(exc)) from None
                usage = parts.usage or usage
                if finish is not None:
                    continue  # after the finish reason only the usage matters
                if parts.reasoning:
                    started = True
                    yield ReasoningDelta(parts.reasoning)
                if parts.text:
                    started = True
                    yield TextDelta(parts.text)
                finish = parts.finish_reason
        finally:
            await chunks.close()
        if finish is not None:
            yield Finish(finish, usage)

    @staticmethod
    async def _next(chunks: Chunks, finishing: bool) -> ChatCompletionChunk | None:
        """The next chunk; None at the end, or when finishing and nothing more comes soon."""
        if not finishing:
            return await anext(chunks, None)
        try:
            async with asyncio.timeout(FINISH_GRACE_S):
                return await anext(chunks, None)
        except TimeoutError:
            return None

    def _failure(
        self, exc: OpenAIError, request: ChatRequest, *, opened: bool, started: bool
    ) -> ProviderError:
        return describe(
            exc,
            self._errors,
            request.model,
            opened=opened,
            started=started,
            max_wait_s=self._config.policy.backoff_cap_s,
        )

    def _malformed(self, what: str) -> ProviderError:
        return ProviderError(f"{self.name} sent a malformed chunk ({what})")

    async def aclose(self) -> None:
        await self._client.close()


__all__ = ["OpenAIProvider"]
