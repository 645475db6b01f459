"""Dropping the text a model repeats when asked to go on with a partial reply.

A model that cannot prefill is asked to continue; it may start over from the
beginning, or repeat the last sentence before going on. `RepeatFilter` holds the
first stretch of the new text back until it can tell, then drops whatever repeats
the partial reply. Plain code, no I/O.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from durachat.providers.base import Finish, ProviderEvent, TextDelta

MIN_OVERLAP = 20
"""A shorter overlap with the partial reply's end is taken as a coincidence."""
LOOKAHEAD = 200
"""How much new text is held back at most before deciding."""


class RepeatFilter:
    def __init__(self, partial: str) -> None:
        self._partial = partial
        self._held = ""
        self._passing = not partial

    def feed(self, text: str) -> str:
        """The part of `text` to keep (maybe with text held back before)."""
        if self._passing:
            return text
        self._held += text
        if self._undecided():
            return ""
        return self._decide()

    def end(self) -> str:
        """The stream ended: whatever is held back and is not a repeat."""
        if self._passing:
            return ""
        return self._decide()

    def _undecided(self) -> bool:
        """The held text may still turn out to be a repeat."""
        held, partial = self._held, self._partial
        if partial.startswith(held):
            return True  # repeating from the start, however long that goes on
        return len(held) <= LOOKAHEAD and held in partial

    def _decide(self) -> str:
        held, partial = self._held, self._partial
        self._passing = True
        self._held = ""
        if partial.startswith(held):
            return ""
        if held.startswith(partial):
            return held[len(partial) :]
        for k in range(min(len(held), len(partial)), MIN_OVERLAP - 1, -1):
            if partial.endswith(held[:k]):
                return held[k:]
        return held


async def drop_repeats(
    stream: AsyncGenerator[ProviderEvent, None], partial: str
) -> AsyncGenerator[ProviderEvent, None]:
    """The provider's events with the text that repeats `partial` left out."""
    repeats = RepeatFilter(partial)
    async with contextlib.aclosing(stream):
        async for event in stream:
            if isinstance(event, TextDelta):
                kept = repeats.feed(event.text)
                if kept:
                    yield TextDelta(kept)
                continue
            if isinstance(event, Finish) and (rest := repeats.end()):
                yield TextDelta(rest)
            yield event
    if rest := repeats.end():
        yield TextDelta(rest)
