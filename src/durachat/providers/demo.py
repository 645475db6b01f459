"""The offline model `demo/echo`: deterministic Markdown that reflects the prompt.

It needs no network and no key, so a new user can chat at once, and the tests and
benchmarks get a model whose every word is known in advance. It streams like a
real model: a word (with its trailing space) per chunk, `delay_ms` apart.

It supports prefill (`continue`): given the partial reply it streams only what
follows it. Asked for a title, it answers `Echo:` and the prompt's first words.

A prompt whose first line is `!demo key=value ...` sets the reply's shape instead
of echoing, for tests and benchmarks:

- `chunks=N`: reply with exactly N chunks `w1 `, `w2 `, ...;
- `pad=P`: with `chunks`, each chunk is `w<i>` followed by P dots and a space (big frames);
- `delay_ms=D`: per-chunk delay (default: `DURACHAT_DEMO_DELAY_MS`);
- `fail_after=K`: fail like a provider error after K chunks;
- `no_finish=1`: end the stream without a finish reason (a broken upstream);
- `show_path=1`: reply with the conversation it was sent, one `role: text` line
  per message (the branch path, as tests check it);
- `stamp=1`: each chunk carries the moment it was produced, `w<i>@<ns> ` with
  `<ns>` from `CLOCK_MONOTONIC` (shared by every process of the machine), so a
  client on the same machine can measure chunk-to-receipt latency (`durachat bench`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass

from durachat.domain import Usage
from durachat.errors import BadRequest, ProviderError
from durachat.providers.base import (
    Capabilities,
    ChatRequest,
    Finish,
    ModelInfo,
    PromptMessage,
    ProviderEvent,
    TextDelta,
)

_TOKEN = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    chunks: int | None = None
    delay_ms: int | None = None
    fail_after: int | None = None
    no_finish: bool = False
    show_path: bool = False
    pad: int = 0
    stamp: bool = False


def parse_options(prompt: str) -> DemoOptions:
    """Read a leading `!demo key=value ...` line; no such line gives the defaults."""
    first, _, _ = prompt.partition("\n")
    if not first.startswith("!demo"):
        return DemoOptions()
    values: dict[str, int] = {}
    for item in first.split()[1:]:
        key, sep, raw = item.partition("=")
        if not sep or key not in (
            "chunks",
            "delay_ms",
            "fail_after",
            "no_finish",
            "show_path",
            "pad",
            "stamp",
        ):
            raise BadRequest(f"demo/echo: unknown option {item!r}")
        try:
            values[key] = int(raw)
        except ValueError:
            raise BadRequest(f"demo/echo: option {key} needs a whole number, not {raw!r}") from None
    return DemoOptions(
        chunks=values.get("chunks"),
        delay_ms=values.get("delay_ms"),
        fail_after=values.get("fail_after"),
        no_finish=bool(values.get("no_finish", 0)),
        show_path=bool(values.get("show_path", 0)),
        pad=values.get("pad", 0),
        stamp=bool(values.get("stamp", 0)),
    )


def echo_reply(prompt: str, images: Sequence[str] = ()) -> str:
    """The Markdown reply of `demo/echo` to a prompt (and the images it was shown,
    described by their size: `image 640x480`)."""
    words = prompt.split()
    quoted = "\n".join(f"> {line}" if line else ">" for line in prompt.splitlines()[:20])
    first_word = words[0] if words else ""
    fence = "~~~~" if "```" in prompt else "```"
    return (
        "## Echo\n\n"
        f"{quoted}\n\n"
        "What I noticed:\n\n"
        f"- **Words:** {len(words)}\n"
        f"- **Characters:** {len(prompt)}\n"
        f"- **First word:** `{first_word.replace('`', '')}`\n"
        + (f"- **Images:** {', '.join(images)}\n" if images else "")
        + "\n"
        f"{fence}text\n{prompt}\n{fence}\n\n"
        "_This is `demo/echo`, the offline demo model: configure a provider for real answers._"
    )


def demo_title(request: ChatRequest) -> str:
    """A title request's answer: `Echo:` and the first words of the user's prompt."""
    text = request.messages[-1].content if request.messages else ""
    prompt = text.removeprefix("User: ").split("\n\nAssistant:")[0]
    lines = [line for line in prompt.splitlines() if line.strip() and not line.startswith("!demo")]
    words = " ".join(lines).split()[:5]
    return "Echo: " + " ".join(words) if words else "Echo"


def path_reply(request: ChatRequest) -> str:
    """One `role: text` line per message the model was sent, oldest first."""
    lines = [
        f"{m.role}: {m.content.splitlines()[-1] if m.content else ''}" for m in request.messages
    ]
    return "\n".join(lines) + "\n"


def stamped(chunk: str) -> str:
    """`chunk` with the `CLOCK_MONOTONIC` time of now: `w3 ` becomes `w3@<ns> `."""
    return f"{chunk.rstrip()}@{time.clock_gettime_ns(time.CLOCK_MONOTONIC)} "


def reply_chunks(request: ChatRequest, options: DemoOptions) -> list[str]:
    if options.chunks is not None:
        dots = "." * options.pad
        return [f"w{i}{dots} " for i in range(1, options.chunks + 1)]
    if options.show_path:
        return _TOKEN.findall(path_reply(request))
    last = request.messages[-1] if request.messages else PromptMessage("user", "")
    images = [f"image {image.width}x{image.height}" for image in last.images]
    return _TOKEN.findall(echo_reply(last.content, images))


def _remaining(chunks: list[str], prefill: str | None) -> Iterator[str]:
    """The chunks after the prefilled text (all of them if it does not match)."""
    if not prefill:
        yield from chunks
        return
    full = "".join(chunks)
    if not full.startswith(prefill):
        yield from chunks
        return
    rest = full[len(prefill) :]
    yield from _TOKEN.findall(rest)


class DemoProvider:
    """The `demo` provider with its one model, `demo/echo`."""

    name = "demo"

    def __init__(self, delay_ms: int) -> None:
        self._delay_ms = delay_ms

    async def models(self) -> list[ModelInfo]:
        capabilities = Capabilities(vision=True, prefill=True, context_tokens=1_000_000)
        return [ModelInfo("demo/echo", "Echo (offline demo)", "demo", capabilities)]

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ProviderEvent, None]:
        if request.purpose == "title":
            yield TextDelta(demo_title(request))
            yield Finish("stop")
            return
        prompt = request.messages[-1].content if request.messages else ""
        options = parse_options(prompt)
        delay = (options.delay_ms if options.delay_ms is not None else self._delay_ms) / 1000
        sent = 0
        for chunk in _remaining(reply_chunks(request, options), request.prefill):
            if options.fail_after is not None and sent >= options.fail_after:
                raise ProviderError("demo/echo failed on purpose (fail_after)")
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            sent += 1
            yield TextDelta(stamped(chunk) if options.stamp else chunk)
        if options.fail_after is not None and sent >= options.fail_after:
            raise ProviderError("demo/echo failed on purpose (fail_after)")
        if options.no_finish:
            return
        input_tokens = sum(len(m.content.split()) for m in request.messages)
        yield Finish("stop", Usage(input_tokens=input_tokens, output_tokens=sent))

    async def aclose(self) -> None:
        return None
