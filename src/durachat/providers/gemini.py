"""Google Gemini through the official `google-genai` SDK.

Models come from the SDK's models list (those that support `generateContent` and
chat in text), named `<provider>/<name without "models/">`. A reply is one
`streamGenerateContent?alt=sse` request: the branch path as `contents` (roles `user`
and `model`), the system prompt as `system_instruction`, thoughts asked for on the
models that think (`part.thought` becomes reasoning). A stream ends with `Finish`
only once a candidate carried its finish reason; usage is the last
`usage_metadata`. No Gemini model prefills (see `gemini_wire`).

The SDK is given its own `httpx.AsyncClient`: a connect timeout and no other (the
first-token and idle limits are `guarded()`'s, and a request timeout would also be
sent to Google as a deadline for the whole reply), the SDK's retries off (they are
`guarded()`'s too), and every response it opens is closed when the reply's stream
closes, so cancelling a reply closes its HTTP stream at once. The key is never in
a message or a log line.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

import httpx
from google import genai
from google.genai import errors, types

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
from durachat.providers.gemini_errors import context, describe
from durachat.providers.gemini_wire import (
    build_contents,
    generation_config,
    is_chat_model,
    model_info,
    read_chunk,
    upstream_name,
)
from durachat.providers.resilience import guarded

LIST_TIMEOUT_S = 15.0
"""The models listing runs at start-up and must not hang it."""

FINISH_GRACE_S = 2.0
"""After the finish reason, how long to wait for the last usage and the end."""

_opened: contextvars.ContextVar[list[httpx.Response] | None] = contextvars.ContextVar(
    "gemini_opened", default=None
)
"""The HTTP responses opened by the current attempt (set per attempt, per task)."""


async def _track(response: httpx.Response) -> None:
    opened = _opened.get()
    if opened is not None:
        opened.append(response)


def _connect_timeout(connect_s: float) -> Callable[[httpx.Request], Awaitable[None]]:
    """A request hook that limits the connect only: the SDK sends every request with
    its own timeout (None: no limit at all), which would override the client's."""
    limits = httpx.Timeout(None, connect=connect_s).as_dict()

    async def hook(request: httpx.Request) -> None:
        request.extensions["timeout"] = limits

    return hook


class GeminiProvider:
    """The Gemini API, or a server that speaks it at `GEMINI_BASE_URL`."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._errors = context(config.name, config.base_url, config.api_key)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=config.policy.connect_s),
            event_hooks={
                "request": [_connect_timeout(config.policy.connect_s)],
                "response": [_track],
            },
        )
        options = types.HttpOptions(base_url=config.base_url or None, httpx_async_client=self._http)
        self._client = genai.Client(vertexai=False, api_key=config.api_key, http_options=options)
        self._models: list[ModelInfo] | None = None
        self._thinking: dict[str, bool] = {}

    @property
    def name(self) -> str:
        return self._config.name

    async def models(self) -> list[ModelInfo]:
        """The chat models of the models list, listed once and then cached."""
        if self._models is None:
            found: list[types.Model] = []
            try:
                async with asyncio.timeout(LIST_TIMEOUT_S):
                    pager = await self._client.aio.models.list(config={"page_size": 1000})
                    async for model in pager:
                        found.append(model)
            except TimeoutError:
                raise ProviderError(
                    f"{self._errors.who} did not list its models within {LIST_TIMEOUT_S:g} s"
                ) from None
            except (errors.APIError, httpx.HTTPError) as exc:
                raise describe(exc, self._errors) from None
            except ValueError:  # a body that is not JSON, or not a models list
                raise ProviderError(f"{self._errors.who} sent a malformed models list") from None
            chat = sorted((m for m in found if is_chat_model(m)), key=lambda m: m.name or "")
            self._thinking = {upstream_name(m.name or ""): bool(m.thinking) for m in chat}
            self._models = [model_info(self.name, m) for m in chat]
        return list(self._models)

    def stream(self, request: ChatRequest) -> AsyncGenerator[ProviderEvent, None]:
        """The reply's events, with retries before the first one and timeouts."""
        label = f"{self.name}/{request.model}"
        return guarded(lambda: self._attempt(request), self._config.policy, label)

    async def _attempt(self, request: ChatRequest) -> AsyncGenerator[ProviderEvent, None]:
        """One try: open the stream, translate its responses, close it whatever happens."""
        opened: list[httpx.Response] = []
        _opened.set(opened)
        contents, system = build_contents(request)
        config = generation_config(system, self._thinking.get(request.model, False))
        started = False
        finish: str | None = None
        usage: Usage | None = None
        responses: AsyncIterator[types.GenerateContentResponse] | None = None
        try:
            try:
                responses = await self._client.aio.models.generate_content_stream(
                    model=request.model, contents=contents, config=config
                )
            except (errors.APIError, httpx.HTTPError) as exc:
                raise self._failure(exc, request, started) from None
            while True:
                try:
                    response = await self._next(responses, finish is not None)
                except (errors.APIError, httpx.HTTPError) as exc:
                    raise self._failure(exc, request, started) from None
                except ValueError:  # the SDK's JSON decoding or validation of a data line
                    raise ProviderError(f"{self._errors.who} sent a malformed chunk") from None
                if response is None:
                    break
                parts = read_chunk(response)
                if parts.blocked is not None:
                    raise ProviderError(f"{self._errors.who} blocked the prompt ({parts.blocked})")
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
            await _close(responses, opened)
        if finish is not None:
            yield Finish(finish, usage)

    @staticmethod
    async def _next(
        responses: AsyncIterator[types.GenerateContentResponse], finishing: bool
    ) -> types.GenerateContentResponse | None:
        """The next response; None at the end, or when finishing and nothing more comes soon."""
        try:
            if not finishing:
                return await anext(responses)
            async with asyncio.timeout(FINISH_GRACE_S):
                return await anext(responses)
        except (StopAsyncIteration, TimeoutError):
            return None

    def _failure(
        self, exc: errors.APIError | httpx.HTTPError, request: ChatRequest, started: bool
    ) -> ProviderError:
        return describe(
            exc,
            self._errors,
            request.model,
            started=started,
            max_wait_s=self._config.policy.backoff_cap_s,
        )

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()
        await self._http.aclose()


async def _close(
    responses: AsyncIterator[types.GenerateContentResponse] | None,
    opened: list[httpx.Response],
) -> None:
    """Close the SDK's stream and every HTTP response it opened."""
    if isinstance(responses, AsyncGenerator):
        await responses.aclose()
    for response in opened:
        await response.aclose()


__all__ = ["GeminiProvider"]
