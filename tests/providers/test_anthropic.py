"""The real `AnthropicProvider` (the real `anthropic` SDK) against a fake Anthropic API.

Nothing of the SDK is mocked: the provider speaks HTTP to `FakeAnthropic` on a real
loopback port, which answers in the Messages API's event-stream format and records
what it received. The pure request and event rules of `anthropic_wire` are tested
with plain values at the end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from durachat.domain import Usage
from durachat.errors import ProviderError
from durachat.providers.anthropic import AnthropicProvider
from durachat.providers.anthropic_wire import (
    PLACEHOLDER,
    MalformedEvent,
    Rejoin,
    can_prefill,
    claude_version,
    finish_reason,
    listed_model,
    prepare,
    read_event,
)
from durachat.providers.base import (
    Capabilities,
    ChatRequest,
    Finish,
    ImagePart,
    PromptMessage,
    ProviderConfig,
    ProviderEvent,
    ReasoningDelta,
    StreamPolicy,
    TextDelta,
)
from durachat.providers.resilience import Retryable
from tests.providers import consume
from tests.providers.fake_anthropic import Fail, FakeAnthropic, Reply, model_entry
from tests.providers.http_server import eventually, free_port, serve_app

KEY = "sk-ant-test-SECRET-0123456789"
FAST = StreamPolicy(
    connect_s=2, first_token_s=2, idle_s=2, retries=2, backoff_s=0.01, backoff_cap_s=3
)
HELLO = [TextDelta("Hello"), TextDelta(", "), TextDelta("world"), TextDelta("!")]
REQUEST = ChatRequest("claude-test", (PromptMessage("user", "Hi there"),))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with serve_app(fake) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    served[0].reset()
    return served[0]


@pytest.fixture
def base_url(served: tuple[FakeAnthropic, str]) -> str:
    return served[1]


@contextlib.asynccontextmanager
async def provider_at(
    base_url: str, policy: StreamPolicy = FAST, name: str = "anthropic", key: str = KEY
) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(ProviderConfig(name, base_url, key, policy))
    try:
        yield provider
    finally:
        await provider.aclose()


@pytest.fixture
async def provider(base_url: str) -> AsyncIterator[AnthropicProvider]:
    async with provider_at(base_url) as provider:
        yield provider


async def collect(
    provider: AnthropicProvider, request: ChatRequest = REQUEST
) -> tuple[list[ProviderEvent], ProviderError | None]:
    return await consume.collect(provider, request)


def texts(events: list[ProviderEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_a_full_reply_with_usage(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    events, error = await collect(provider)
    assert error is None
    assert events == [*HELLO, Finish("stop", Usage(12, 5))]
    [sent] = fake.requests
    assert sent["model"] == "claude-test" and sent["stream"] is True
    assert sent["max_tokens"] == 8192
    assert sent["messages"] == [{"role": "user", "content": "Hi there"}]
    assert "system" not in sent
    [headers] = fake.headers
    assert KEY in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
    assert headers.get("anthropic-version")
    assert await eventually(lambda: fake.completed == 1), "the fake sent the whole stream"


async def test_the_system_prompt_is_the_top_level_field(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    path = (PromptMessage("system", "Answer in French."), PromptMessage("user", "Hi"))
    await collect(provider, ChatRequest("claude-test", path, "You are terse."))
    [sent] = fake.requests
    assert sent["system"] == "You are terse.\n\nAnswer in French."
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]


async def test_the_branch_path_alternates_and_opens_with_the_user(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    path = (
        PromptMessage("assistant", "Welcome!"),
        PromptMessage("user", "first question"),
        PromptMessage("assistant", ""),  # a reply that failed before any text
        PromptMessage("user", "second question"),
        PromptMessage("assistant", "second answer"),
        PromptMessage("user", "third question"),
    )
    await collect(provider, ChatRequest("claude-test", path))
    assert fake.requests[0]["messages"] == [
        {"role": "user", "content": PLACEHOLDER},
        {"role": "assistant", "content": "Welcome!"},
        {"role": "user", "content": "first question\n\nsecond question"},
        {"role": "assistant", "content": "second answer"},
        {"role": "user", "content": "third question"},
    ]


@pytest.mark.parametrize(
    ("stored", "sent", "model_text"),
    [
        ("Hello, ", "Hello,", ("Hello", ", ", "world", "!")),  # the model writes " world!"
        ("Line one\n\n", "Line one", ("Line one", "\n\n", "Line two")),
        ("Hel", "Hel", ("Hello", " there")),  # nothing trimmed: "lo there" as it comes
    ],
)
async def test_prefill_sends_the_trimmed_partial_and_continues_it_exactly(
    fake: FakeAnthropic,
    provider: AnthropicProvider,
    stored: str,
    sent: str,
    model_text: tuple[str, ...],
) -> None:
    fake.default = Reply(text=model_text, continue_prefill=True)
    path = (PromptMessage("user", "Say hello"),)
    events, error = await collect(provider, ChatRequest("claude-test", path, prefill=stored))
    assert error is None and isinstance(events[-1], Finish)
    assert fake.requests[0]["messages"] == [
        {"role": "user", "content": "Say hello"},
        {"role": "assistant", "content": sent},
    ]
    assert stored + texts(events) == "".join(model_text)
    assert all(e.text for e in events if isinstance(e, TextDelta)), "no empty deltas"


async def test_thinking_deltas_become_reasoning(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Reply(thinking=("Let me think", " about it.")))
    events, error = await collect(provider)
    assert error is None
    assert events == [
        ReasoningDelta("Let me think"),
        ReasoningDelta(" about it."),
        *HELLO,
        Finish("stop", Usage(12, 5)),
    ]


async def test_stop_reasons_are_mapped(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(Reply(stop_reason="max_tokens"), Reply(stop_reason="refusal"))
    first, _ = await collect(provider)
    second, _ = await collect(provider)
    assert first[-1] == Finish("length", Usage(12, 5))
    assert second[-1] == Finish("refusal", Usage(12, 5))


async def test_a_stream_without_message_stop_ends_without_finish(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Reply(stop=False))
    events, error = await collect(provider)
    assert error is None and events == HELLO


async def test_cancelling_the_consumer_closes_the_http_response(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Reply(text=tuple(f"w{i} " for i in range(400)), delay_s=0.02))
    two = asyncio.Event()
    seen: list[ProviderEvent] = []

    async def consume() -> None:  # as the runner does
        async with contextlib.aclosing(provider.stream(REQUEST)) as stream:
            async for event in stream:
                seen.append(event)
                if len(seen) == 2:
                    two.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(two.wait(), 5)
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.disconnected.wait, 2.0), "the server never saw a close"
    assert fake.disconnects[0] - cancelled_at < 1.0
    assert fake.completed == 0 and len(seen) < 400


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("anthropic", "ANTHROPIC_API_KEY was rejected (401)"),
        ("claude-proxy", "claude-proxy: the API key was rejected (401)"),
    ],
)
async def test_a_rejected_key_is_named_not_shown_and_not_retried(
    fake: FakeAnthropic, base_url: str, name: str, expected: str
) -> None:
    fake.api_key = "sk-ant-the-right-one"  # the fake echoes the wrong key it got
    async with provider_at(base_url, name=name) as provider:
        events, error = await collect(provider)
    assert events == [] and error is not None
    assert error.message == expected and not isinstance(error, Retryable)
    assert KEY not in str(error) and fake.calls == 1, "a 401 is not retried"


async def test_429_with_retry_after_is_retried_after_the_wait(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Fail(429, "Rate limited", "rate_limit_error", {"retry-after": "1"}))
    started = time.monotonic()
    events, error = await collect(provider)
    assert error is None and events[-1] == Finish("stop", Usage(12, 5))
    assert time.monotonic() - started >= 0.95
    assert len(fake.requests) == 2


async def test_429_names_the_wait_when_the_retries_run_out(
    fake: FakeAnthropic, base_url: str
) -> None:
    fake.default = Fail(429, "Rate limited", "rate_limit_error", {"retry-after": "0"})
    async with provider_at(base_url) as provider:
        _, error = await collect(provider)
    assert error is not None and error.message == "rate limited by anthropic, retry in 0 s"
    assert len(fake.requests) == 3  # the first try and two retries


async def test_429_with_a_long_retry_after_fails_at_once(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Fail(429, "Rate limited", "rate_limit_error", {"retry-after": "40"}))
    _, error = await collect(provider)
    assert error is not None and error.message == "rate limited by anthropic, retry in 40 s"
    assert len(fake.requests) == 1


async def test_a_spend_limit_is_not_retried(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Fail(429, "spend", "rate_limit_error", error_code="enforced_spend_limit_reached"))
    _, error = await collect(provider)
    assert error is not None and "spend limit" in error.message
    assert len(fake.requests) == 1


async def test_500_and_529_then_success(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(Fail(500, "Internal", "api_error"), Fail(529, "Overloaded", "overloaded_error"))
    events, error = await collect(provider)
    assert error is None and events == [*HELLO, Finish("stop", Usage(12, 5))]
    assert len(fake.requests) == 3


async def test_overloaded_until_the_retries_run_out(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.default = Fail(529, "Overloaded", "overloaded_error")
    _, error = await collect(provider)
    assert error is not None and error.message == "anthropic is overloaded, try again in a moment"
    assert len(fake.requests) == 3


async def test_an_overloaded_event_before_the_first_token_is_retried(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Reply(error_after=0))
    events, error = await collect(provider)
    assert error is None and events == [*HELLO, Finish("stop", Usage(12, 5))]
    assert len(fake.requests) == 2


async def test_an_error_event_after_text_is_an_error_and_not_retried(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Reply(error_after=2))
    events, error = await collect(provider)
    assert events == HELLO[:2]
    assert error is not None and not isinstance(error, Retryable)
    assert error.message == "anthropic is overloaded, try again in a moment"
    assert len(fake.requests) == 1


async def test_a_drop_mid_stream_is_an_error_after_the_text(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Reply(drop_after=2))
    events, error = await collect(provider)
    assert events == HELLO[:2]
    assert error is not None and "dropped the connection mid-reply" in error.message
    assert len(fake.requests) == 1


async def test_a_drop_before_the_first_token_is_retried(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Reply(drop_after=0))
    events, error = await collect(provider)
    assert error is None and events == [*HELLO, Finish("stop", Usage(12, 5))]
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":5}}',
        b'{"type":"content_block_delta","index":0}',
        b"[1, 2]",
    ],
)
async def test_a_malformed_event_is_an_error(
    fake: FakeAnthropic, provider: AnthropicProvider, raw: bytes
) -> None:
    fake.script(Reply(raw_after=1, raw=raw))
    events, error = await collect(provider)
    assert events == HELLO[:1]
    assert error is not None and "malformed stream event" in error.message
    assert len(fake.requests) == 1


async def test_unknown_event_and_delta_types_are_ignored(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(
        Reply(raw_after=1, raw=b'{"type":"content_block_delta","index":0,"delta":{"type":"x"}}'),
        Reply(raw_after=1, raw=b'{"type":"some_new_event","what":1}'),
    )
    for _ in range(2):
        events, error = await collect(provider)
        assert error is None and events == [*HELLO, Finish("stop", Usage(12, 5))]


async def test_a_slow_first_token_names_the_timeout(fake: FakeAnthropic, base_url: str) -> None:
    fake.script(Reply(first_delay_s=1.0))
    policy = StreamPolicy(connect_s=2, first_token_s=0.3, idle_s=2, retries=0)
    async with provider_at(base_url, policy) as provider:
        events, error = await collect(provider)
    assert events == []
    assert error is not None
    assert error.message == "anthropic/claude-test sent no first token within 0.3 s"


async def test_a_silence_after_the_first_token_names_the_idle_limit(
    fake: FakeAnthropic, base_url: str
) -> None:
    fake.script(Reply(delay_s=1.0))
    policy = StreamPolicy(connect_s=2, first_token_s=2, idle_s=0.3, retries=0)
    async with provider_at(base_url, policy) as provider:
        events, error = await collect(provider)
    assert events == HELLO[:1]
    assert error is not None and error.message == "anthropic/claude-test went silent for 0.3 s"


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        (
            Fail(
                400, "prompt is too long: 208310 tokens > 200000 maximum", "invalid_request_error"
            ),
            "the conversation is longer than claude-test's context window (200000 tokens)",
        ),
        (
            Fail(
                400,
                "This model does not support assistant message prefill. "
                "The conversation must end with a user message.",
                "invalid_request_error",
            ),
            "anthropic: claude-test cannot continue a reply by prefill; "
            "set prefill = false for anthropic/claude-test in [[models]]",
        ),
        (
            Fail(404, "model: claude-test", "not_found_error"),
            "anthropic: model 'claude-test' was not found (404): model: claude-test",
        ),
        (
            Fail(403, "Your key cannot use this model", "permission_error"),
            "anthropic denied access (403): Your key cannot use this model",
        ),
        (
            Fail(400, f"max_tokens too large for key {KEY}", "invalid_request_error"),
            "anthropic refused the request (400): max_tokens too large for key ***",
        ),
    ],
)
async def test_refusals_are_named_and_not_retried(
    fake: FakeAnthropic, provider: AnthropicProvider, fail: Fail, expected: str
) -> None:
    fake.script(fail)
    _, error = await collect(provider)
    assert error is not None and error.message == expected
    assert KEY not in error.message and len(fake.requests) == 1


async def test_an_unreachable_server_is_retried_then_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    policy = StreamPolicy(connect_s=1, first_token_s=2, idle_s=2, retries=1, backoff_s=0.01)
    async with provider_at(url, policy) as provider:
        _, error = await collect(provider)
        with pytest.raises(ProviderError) as listing:
            await provider.models()
    assert error is not None and error.message.startswith(f"cannot reach anthropic at {url}")
    assert listing.value.message.startswith(f"cannot reach anthropic at {url}")


async def test_models_are_listed_with_their_capabilities_and_cached(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.models = [
        model_entry(
            "claude-opus-4-6", "Claude Opus 4.6", max_input_tokens=1_000_000, max_tokens=128_000
        ),
        model_entry("claude-haiku-4-5-20251001", "Claude Haiku 4.5", vision=True),
        *(model_entry(f"claude-sonnet-4-5-{i:08d}") for i in range(25)),  # a second page
        model_entry("claude-3-haiku-20240307", "Claude Haiku 3", max_tokens=4096, vision=False),
        model_entry("claude-3-opus-20240229", "Claude Opus 3", lifecycle="retired"),
    ]
    models = await provider.models()
    assert await provider.models() == models
    assert fake.models_requests == [{}, {"after_id": "claude-sonnet-4-5-00000017"}]
    by_id = {m.id: m for m in models}
    assert len(models) == 28 and "anthropic/claude-3-opus-20240229" not in by_id
    assert [m.id for m in models[:2]] == [
        "anthropic/claude-opus-4-6",
        "anthropic/claude-haiku-4-5-20251001",
    ]
    opus = by_id["anthropic/claude-opus-4-6"]
    assert opus.label == "Claude Opus 4.6" and opus.provider == "anthropic"
    assert opus.capabilities == Capabilities(vision=True, prefill=False, context_tokens=1_000_000)
    haiku = by_id["anthropic/claude-haiku-4-5-20251001"]
    assert haiku.capabilities == Capabilities(vision=True, prefill=True, context_tokens=200_000)
    old = by_id["anthropic/claude-3-haiku-20240307"]
    assert old.capabilities == Capabilities(vision=False, prefill=True, context_tokens=200_000)
    await collect(provider, ChatRequest("claude-3-haiku-20240307", REQUEST.messages))
    await collect(provider, ChatRequest("claude-opus-4-6", REQUEST.messages))
    assert [r["max_tokens"] for r in fake.requests] == [4096, 8192]


async def test_a_failed_listing_names_the_key_and_is_not_cached(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.api_key = "sk-ant-the-right-one"
    with pytest.raises(ProviderError) as failed:
        await provider.models()
    assert failed.value.message == "ANTHROPIC_API_KEY was rejected (401)"
    fake.api_key = ""
    assert [m.id for m in await provider.models()] == ["anthropic/claude-test"]


# The pure rules of `anthropic_wire`.


@pytest.mark.parametrize(
    ("model", "version", "prefill"),
    [
        ("claude-3-haiku-20240307", (3, 0), True),
        ("claude-3-5-sonnet-20241022", (3, 5), True),
        ("claude-3-7-sonnet-20250219", (3, 7), True),
        ("claude-sonnet-4-20250514", (4, 0), True),
        ("claude-opus-4-1-20250805", (4, 1), True),
        ("claude-sonnet-4-5", (4, 5), True),
        ("claude-haiku-4-5-20251001", (4, 5), True),
        ("claude-opus-4-5-20251101", (4, 5), True),
        ("claude-opus-4-6", (4, 6), False),
        ("claude-sonnet-4-6", (4, 6), False),
        ("claude-opus-4-7", (4, 7), False),
        ("claude-sonnet-5", (5, 0), False),
        ("claude-fable-5-1", (5, 1), False),
        ("claude-2.1", (2, 1), True),
        ("claude-mythos-preview", None, False),
        ("my-finetune", None, False),
    ],
)
def test_prefill_follows_the_claude_version(
    model: str, version: tuple[int, int] | None, prefill: bool
) -> None:
    assert claude_version(model) == version
    assert can_prefill(model) is prefill


def test_a_listed_model_without_details_gets_the_fallbacks() -> None:
    listed = listed_model("anthropic", {"id": "claude-sonnet-4-6", "display_name": ""})
    assert listed is not None and listed.max_tokens is None
    assert listed.info.label == "claude-sonnet-4-6"
    assert listed.info.capabilities == Capabilities(
        vision=True, prefill=False, context_tokens=1_000_000
    )
    unknown = listed_model("proxy", {"id": "my-finetune"})
    assert unknown is not None and unknown.info.id == "proxy/my-finetune"
    assert unknown.info.capabilities == Capabilities()
    assert listed_model("anthropic", {"display_name": "no id"}) is None


def test_prepare_without_a_path_or_with_a_whitespace_prefill() -> None:
    empty = prepare(ChatRequest("m", ()))
    assert empty.messages == [{"role": "user", "content": PLACEHOLDER}]
    blank = prepare(ChatRequest("m", (PromptMessage("user", "Hi"),), prefill="  \n"))
    assert blank.messages == [{"role": "user", "content": "Hi"}] and blank.trimmed == ""


@pytest.mark.parametrize(
    ("trimmed", "deltas", "expected"),
    [
        (" ", [" world"], ["world"]),
        (" ", ["", " ", "world"], ["", "", "world"]),
        ("\n\n", ["\n", "\nNext"], ["", "Next"]),
        ("\n\n", ["\nNext", "\n"], ["Next", "\n"]),
        (" ", ["\n\nNext"], ["\n\nNext"]),
        ("", [" a", " b"], [" a", " b"]),
    ],
)
def test_rejoin_drops_only_the_whitespace_the_model_repeats(
    trimmed: str, deltas: list[str], expected: list[str]
) -> None:
    rejoin = Rejoin(trimmed)
    assert [rejoin.feed(d) for d in deltas] == expected


def test_reading_events() -> None:
    start: dict[str, Any] = {
        "type": "message_start",
        "message": {"usage": {"input_tokens": 10, "cache_read_input_tokens": 90}},
    }
    assert read_event(start).input_tokens == 100
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}
    assert read_event(delta).stop_reason == "end_turn"
    assert read_event({"type": "message_stop"}).stopped
    block = {"type": "content_block_start", "content_block": {"type": "text", "text": "Hi"}}
    assert read_event(block).text == "Hi"
    assert read_event({"type": "ping"}) == read_event({"type": "tool_thing"})
    with pytest.raises(MalformedEvent):
        read_event({"type": "message_delta", "usage": {"output_tokens": "many"}})
    with pytest.raises(MalformedEvent):
        read_event({"no": "type"})
    assert finish_reason(None) == "stop" and finish_reason("pause_turn") == "pause_turn"


PIXEL = ImagePart("image/png", b"\x89PNG-fake-bytes", 2, 1)
PIXEL_B64 = base64.b64encode(PIXEL.data).decode()


async def test_images_are_base64_image_blocks_before_the_text(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    path = (PromptMessage("user", "What is this?", (PIXEL,)),)
    _events, error = await collect(provider, ChatRequest("claude-test", path))
    assert error is None
    image = {"type": "base64", "media_type": "image/png", "data": PIXEL_B64}
    assert fake.requests[0]["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": image},
                {"type": "text", "text": "What is this?"},
            ],
        }
    ]
