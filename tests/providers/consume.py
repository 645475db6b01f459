"""Consuming a provider's stream in tests the way the runner does (closed at the end)."""

from __future__ import annotations

import contextlib

from durachat.errors import ProviderError
from durachat.providers.base import ChatRequest, Provider, ProviderEvent, TextDelta


async def collect(
    provider: Provider, request: ChatRequest
) -> tuple[list[ProviderEvent], ProviderError | None]:
    """Every event of one stream, and the error that ended it if any."""
    events: list[ProviderEvent] = []
    try:
        async with contextlib.aclosing(provider.stream(request)) as stream:
            async for event in stream:
                events.append(event)
    except ProviderError as exc:
        return events, exc
    return events, None


def text_of(events: list[ProviderEvent]) -> str:
    """The reply's text: the concatenated text deltas."""
    return "".join(e.text for e in events if isinstance(e, TextDelta))
