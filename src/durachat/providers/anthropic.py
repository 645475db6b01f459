"""Anthropic's Claude models through the official `anthropic` SDK.

Models come from the Models API (`GET /v1/models`, every page), named
`<provider>/<id>`, listed once and then cached; what they can do is
`anthropic_wire`'s rule. A reply is one streamed Messages API request (raw events
of `messages.create(stream=True)`): text deltas become `TextDelta`, thinking deltas
`ReasoningDelta`, and `message_stop` a `Finish` with the stop reason and the usage
of `message_start` and `message_delta`. A stream that ends without `message_stop`
ends without `Finish`, and the runner reports it; an `error` event is an error
(worth another try before the first token when it says overloaded). Retries and
timeouts are `guarded()`'s, so the SDK's own retries are off. Cancelling the stream
closes the HTTP response at once. This module never logs or reports the API key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import httpx2
from anthropic import AnthropicError, AsyncAnthropic, AsyncStream, Timeout, omit
from anthropic.types import RawMessageStreamEvent

from durachat.errors import ProviderError
from durachat.providers.anthropic_errors import ErrorContext, describe, display_url, dropped
from durachat.providers.anthropic_wire import (
    ANTHROPIC_API_URL,
    DEFAULT_MAX_TOKENS,
    MalformedEvent,
    Prepared,
    Rejoin,
    Tally,
    fallback_max_tokens,
    finish_reason,
    listed_model,
    prepare,
    read_event,
)
from durachat.providers.base import (
    ChatRequest,
    Finish,
    ModelInfo,
    ProviderConfig,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
)
from durachat.providers.resilience import guarded

LIST_TIMEOUT_S = 15.0
"""Read timeout of `GET /v1/models`: the listing runs at start-up and must not hang it."""

Events = AsyncStream[RawMessageStreamEvent]


class AnthropicProvider:
    """Anthropic's API, or a server that speaks it at `ANTHROPIC_BASE_URL`."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        base_url = config.base_url or ANTHROPIC_API_URL
        self._errors = ErrorContext(config.name, display_url(base_url), config.api_key)
        self._client = AsyncAnthropic(
            api_key=config.api_key,
            base_url=base_url,
            timeout=Timeout(None, connect=config.policy.connect_s, pool=config.policy.connect_s),
            max_retries=0,
        )
        self._models: list[ModelInfo] | None = None
        self._max_tokens: dict[str, int] = {}
        self._listing = asyncio.Lock()

    @property
    def name(self) -> str:
        return self._config.name

    async def models(self) -> list[ModelInfo]:
        """The models of the Models API, listed once and then cached."""
        async with self._listing:
            if self._models is None:
                self._models = await self._list()
        return list(self._models)

    async def _list(self) -> list[ModelInfo]:
        timeout = Timeout(LIST_TIMEOUT_S, connect=self._config.policy.connect_s)
        found: dict[str, ModelInfo] = {}  # in the API's order: newest first
        try:
            async for model in self._client.models.list(timeout=timeout):
                listed = listed_model(self.name, model)
                if listed is None or listed.info.id in found:
                    continue
                found[listed.info.id] = listed.info
                if listed.max_tokens is not None:
                    self._max_tokens[listed.info.upstream] = listed.max_tokens
        except AnthropicError as exc:
            raise describe(exc, self._errors) from None
        except (httpx2.RequestError, ValueError) as exc:  # dropped, or not JSON
            reason = self._errors.scrub(str(exc))
            raise ProviderError(f"{self.name} sent no usable models list ({reason})") from None
        return list(found.values())

    def max_tokens(self, model: str) -> int:
        """A reply's `max_tokens`: the default, or less if the model allows less."""
        known = self._max_tokens.get(model)
        if known is None:
            return fallback_max_tokens(model)
        return max(1, min(DEFAULT_MAX_TOKENS, known))

    def stream(self, request: ChatRequest) -> AsyncGenerator[ProviderEvent, None]:
        """The reply's events, with retries before the first one and timeouts."""
        prepared = prepare(request)
        label = f"{self.name}/{request.model}"
        return guarded(lambda: self._attempt(request, prepared), self._config.policy, label)

    async def _open(self, request: ChatRequest, prepared: Prepared) -> Events:
        try:
            return await self._client.messages.create(
                model=request.model,
                max_tokens=self.max_tokens(request.model),
                system=prepared.system or omit,
                messages=prepared.messages,
                stream=True,
            )
        except AnthropicError as exc:
            raise self._failure(exc, request, started=False) from None
        except httpx2.RequestError as exc:
            raise dropped(self._errors, str(exc), started=False) from None

    async def _attempt(
        self, request: ChatRequest, prepared: Prepared
    ) -> AsyncGenerator[ProviderEvent, None]:
        """One try: open the stream, translate its events, close it whatever happens."""
        events = await self._open(request, prepared)
        rejoin = Rejoin(prepared.trimmed)
        tally = Tally()
        started = False
        try:
            while True:
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return  # no message_stop: no Finish, and the runner reports it
                except AnthropicError as exc:  # an `error` event, among others
                    raise self._failure(exc, request, started=started) from None
                except httpx2.RequestError as exc:
                    raise dropped(self._errors, str(exc), started) from None
                except ValueError:  # the SDK's JSON decoding of a data line
                    raise self._malformed("data that is not JSON") from None
                try:
                    parts = read_event(event)
                except MalformedEvent as exc:
                    raise self._malformed(str(exc)) from None
                tally.add(parts)
                if parts.reasoning:
                    started = True
                    yield ReasoningDelta(parts.reasoning)
                text = rejoin.feed(parts.text) if parts.text else ""
                if text:
                    started = True
                    yield TextDelta(text)
                if parts.stopped:
                    break
        finally:
            await events.close()
        yield Finish(finish_reason(tally.stop_reason), tally.usage())

    def _failure(
        self, exc: AnthropicError, request: ChatRequest, *, started: bool
    ) -> ProviderError:
        return describe(
            exc,
            self._errors,
            request.model,
            started=started,
            max_wait_s=self._config.policy.backoff_cap_s,
        )

    def _malformed(self, what: str) -> ProviderError:
        return ProviderError(f"{self.name} sent a malformed stream event ({what})")

    async def aclose(self) -> None:
        await self._client.close()


__all__ = ["AnthropicProvider"]
