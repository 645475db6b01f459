"""Timeouts and retries around a vendor's stream, the same for every provider.

`guarded()` wraps a function that opens a vendor stream. Before the first event it
retries what `Retryable` marks as worth another try (429, 5xx, a dropped or refused
connection), with exponential backoff and jitter, honouring `Retry-After`. After the
first event nothing is retried: a failure ends the reply as `error` with its text
kept. A first event later than `first_token_s`, or a silence longer than `idle_s`,
is an error naming the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable

from durachat.errors import ProviderError
from durachat.providers.base import ProviderEvent, StreamPolicy


class Retryable(ProviderError):
    """A failure before the first token that another try may not meet."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


OpenStream = Callable[[], AsyncGenerator[ProviderEvent, None]]


async def guarded(
    open_stream: OpenStream, policy: StreamPolicy, label: str
) -> AsyncGenerator[ProviderEvent, None]:
    """The events of `open_stream()`, with retries before the first and timeouts."""
    attempt = 0
    while True:
        stream = open_stream()
        started = False
        try:
            async with contextlib.aclosing(stream):
                while True:
                    limit = policy.idle_s if started else policy.first_token_s
                    try:
                        async with asyncio.timeout(limit):
                            event = await anext(stream)
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        what = "went silent for" if started else "sent no first token within"
                        raise ProviderError(f"{label} {what} {limit:g} s") from None
                    started = True
                    yield event
        except Retryable as exc:
            if started or attempt >= policy.retries:
                raise ProviderError(exc.message) from exc
            await asyncio.sleep(policy.delay(attempt, exc.retry_after_s))
            attempt += 1
