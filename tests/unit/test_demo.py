"""The offline model: deterministic, chunked, prefill-aware, with test controls."""

from __future__ import annotations

import time

import pytest

from durachat.errors import BadRequest, ProviderError
from durachat.providers.base import (
    ChatRequest,
    Finish,
    PromptMessage,
    ProviderEvent,
    TextDelta,
)
from durachat.providers.demo import DemoProvider, echo_reply, parse_options


async def collect(prompt: str, prefill: str | None = None) -> tuple[str, list[ProviderEvent]]:
    request = ChatRequest("echo", (PromptMessage("user", prompt),), prefill=prefill)
    events = [e async for e in DemoProvider(0).stream(request)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return text, events


async def test_echo_is_markdown_that_reflects_the_prompt() -> None:
    text, events = await collect("Explain durable streams")
    assert text == echo_reply("Explain durable streams")
    assert text.startswith("## Echo") and "- **Words:** 3" in text and "```text" in text
    assert len(events) > 10, "streams in many chunks like a real model"
    assert isinstance(events[-1], Finish) and events[-1].usage is not None


async def test_prefill_streams_only_what_follows() -> None:
    full, _ = await collect("hello there")
    rest, _ = await collect("hello there", prefill=full[:40])
    assert full[:40] + rest == full


async def test_controls() -> None:
    text, _ = await collect("!demo chunks=3 delay_ms=0")
    assert text == "w1 w2 w3 "
    with pytest.raises(ProviderError):
        await collect("!demo chunks=5 fail_after=2")
    _, events = await collect("!demo chunks=2 no_finish=1")
    assert not isinstance(events[-1], Finish)


def test_bad_controls_are_refused_clearly() -> None:
    with pytest.raises(BadRequest, match="unknown option 'colour=red'"):
        parse_options("!demo colour=red")
    with pytest.raises(BadRequest, match="whole number"):
        parse_options("!demo chunks=many")


async def test_stamp_carries_the_monotonic_time_of_each_chunk() -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    text, _ = await collect("!demo chunks=3 delay_ms=0 stamp=1")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    words = text.split()
    assert [w.partition("@")[0] for w in words] == ["w1", "w2", "w3"]
    stamps = [int(w.partition("@")[2]) for w in words]
    assert before <= stamps[0] <= stamps[1] <= stamps[2] <= after
