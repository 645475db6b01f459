"""The real `OpenAIProvider` (the real `openai` SDK) against a fake OpenAI-compatible server.

Nothing of the SDK is mocked: the provider speaks HTTP to `FakeOpenAI` on a real
loopback port, which answers in the chat-completions wire format and records what
it received.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

from durachat.domain import Usage
from durachat.errors import ProviderError
from durachat.providers import openai as openai_provider
from durachat.providers.base import (
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
from durachat.providers.openai import OpenAIProvider
from durachat.providers.openai_wire import (
    ChunkParts,
    extra_body,
    is_chat_model,
    is_openai_api,
    model_info,
    read_chunk,
)
from durachat.providers.resilience import Retryable
from tests.providers import consume
from tests.providers.fake_openai import Fail, FakeOpenAI, Reply
from tests.providers.http_server import eventually, free_port, serve_app

KEY = "sk-test-SECRET-0123456789"
FAST = StreamPolicy(
    connect_s=2, first_token_s=2, idle_s=2, retries=2, backoff_s=0.01, backoff_cap_s=3
)
HELLO = [TextDelta("Hello"), TextDelta(", "), TextDelta("world"), TextDelta("!")]
REQUEST = ChatRequest("fake-chat", (PromptMessage("user", "Hi there"),))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_app(fake) as url:
        yield fake, url + "/v1"


@pytest.fixture
def fake(served: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    served[0].reset()
    return served[0]


@pytest.fixture
def base_url(served: tuple[FakeOpenAI, str]) -> str:
    return served[1]


@contextlib.asynccontextmanager
async def provider_at(
    base_url: str, policy: StreamPolicy = FAST, name: str = "local", key: str = KEY
) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(ProviderConfig(name, base_url, key, policy))
    try:
        yield provider
    finally:
        await provider.aclose()


@pytest.fixture
async def provider(base_url: str) -> AsyncIterator[OpenAIProvider]:
    async with provider_at(base_url) as provider:
        yield provider


async def collect(
    provider: OpenAIProvider, request: ChatRequest = REQUEST
) -> tuple[list[ProviderEvent], ProviderError | None]:
    return await consume.collect(provider, request)


async def test_a_full_reply_with_usage(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    events, error = await collect(provider)
    assert error is None
    assert events == [*HELLO, Finish("stop", Usage(11, 4))]
    [sent] = fake.requests
    assert sent["model"] == "fake-chat" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [{"role": "user", "content": "Hi there"}]
    assert "continue_final_message" not in sent
    assert fake.authorizations == [f"Bearer {KEY}"]
    assert await eventually(lambda: fake.completed == 1), "the fake sent the whole stream"


async def test_system_prompt_and_the_branch_path_are_sent(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    path = (
        PromptMessage("user", "first question"),
        PromptMessage("assistant", "first answer"),
        PromptMessage("user", "second question"),
    )
    await collect(provider, ChatRequest("fake-chat", path, "You are terse."))
    assert fake.requests[0]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]


async def test_prefill_sends_the_partial_reply_and_vllm_switches(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Reply(chunks=("Once ", "upon ", "a ", "time."), continue_prefill=True))
    request = ChatRequest("fake-chat", REQUEST.messages, "sys", prefill="Once upon ")
    events, error = await collect(provider, request)
    assert error is None
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("a "), TextDelta("time.")]
    [sent] = fake.requests
    assert sent["messages"][-1] == {"role": "assistant", "content": "Once upon "}
    assert sent["messages"][:-1] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Hi there"},
    ]
    assert sent["continue_final_message"] is True
    assert sent["add_generation_prompt"] is False


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_deltas(fake: FakeOpenAI, provider: OpenAIProvider, field: str) -> None:
    fake.script(Reply(reasoning=("Let me ", "think."), reasoning_field=field, chunks=("42",)))
    events, error = await collect(provider)
    assert error is None
    assert events == [
        ReasoningDelta("Let me "),
        ReasoningDelta("think."),
        TextDelta("42"),
        Finish("stop", Usage(11, 4)),
    ]


async def test_finish_without_a_usage_chunk(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.script(Reply(usage=None, finish_reason="length"))
    events, error = await collect(provider)
    assert error is None and events == [*HELLO, Finish("length", None)]


async def test_finish_does_not_wait_long_for_a_usage_chunk_that_never_comes(
    fake: FakeOpenAI, provider: OpenAIProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openai_provider, "FINISH_GRACE_S", 0.2)
    fake.script(Reply(usage=None, done=False, hold_s=5))
    began = time.monotonic()
    events, error = await collect(provider)
    assert error is None and events == [*HELLO, Finish("stop", None)]
    assert time.monotonic() - began < 2


async def test_a_stream_without_finish_reason_ends_without_finish(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Reply(finish_reason=None, usage=None, done=False))
    events, error = await collect(provider)
    assert error is None and events == HELLO, "the runner turns a missing Finish into an error"


async def test_cancelling_the_consumer_closes_the_http_response(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Reply(chunks=tuple(f"w{i} " for i in range(400)), delay_s=0.02))
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
        ("openai", "OPENAI_API_KEY was rejected (401)"),
        ("local", "local: the API key was rejected (401)"),
    ],
)
async def test_a_rejected_key_is_named_and_not_retried(
    fake: FakeOpenAI, base_url: str, name: str, expected: str
) -> None:
    fake.api_key = "sk-the-right-one"
    async with provider_at(base_url, name=name) as provider:
        events, error = await collect(provider)
    assert events == [] and error is not None
    assert error.message == expected and not isinstance(error, Retryable)
    assert len(fake.authorizations) == 1, "a 401 is not retried"


async def test_no_key_for_a_server_that_wants_one(fake: FakeOpenAI, base_url: str) -> None:
    fake.api_key = "sk-the-right-one"
    async with provider_at(base_url, name="openai", key="") as provider:
        _, error = await collect(provider)
    assert error is not None
    assert error.message == "openai needs an API key (401): set OPENAI_API_KEY"
    assert fake.authorizations == ["Bearer not-needed"]


async def test_429_with_retry_after_is_retried_after_the_wait(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Fail(429, "slow down", headers={"Retry-After": "1"}), Reply())
    began = time.monotonic()
    events, error = await collect(provider)
    assert error is None and events[-1] == Finish("stop", Usage(11, 4))
    assert time.monotonic() - began >= 0.95, "Retry-After was not honoured"
    assert len(fake.requests) == 2


async def test_429_with_a_long_retry_after_fails_at_once(fake: FakeOpenAI, base_url: str) -> None:
    fake.script(Fail(429, headers={"Retry-After": "7"}))  # longer than backoff_cap_s
    async with provider_at(base_url) as provider:
        began = time.monotonic()
        _, error = await collect(provider)
    assert error is not None and error.message == "rate limited by local, retry in 7 s"
    assert time.monotonic() - began < 1 and len(fake.requests) == 1


async def test_429_until_the_retries_run_out(fake: FakeOpenAI, base_url: str) -> None:
    fake.script(*[Fail(429, headers={"retry-after-ms": "50"})] * 3)
    async with provider_at(base_url) as provider:
        _, error = await collect(provider)
    assert error is not None and error.message == "rate limited by local, retry in 1 s"
    assert len(fake.requests) == 3  # the first try and FAST.retries more


async def test_quota_exhausted_is_not_retried(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.script(Fail(429, "You exceeded your current quota", "insufficient_quota"))
    _, error = await collect(provider)
    assert error is not None and "no quota left" in error.message
    assert len(fake.requests) == 1


async def test_500_then_success(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.script(Fail(500, "The server had an error", type="server_error"), Reply())
    events, error = await collect(provider)
    assert error is None and events == [*HELLO, Finish("stop", Usage(11, 4))]
    assert len(fake.requests) == 2


async def test_5xx_until_the_retries_run_out(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.script(Fail(500), Fail(502), Fail(503, "overloaded"))
    _, error = await collect(provider)
    assert error is not None
    assert error.message == "local failed with a server error (503): overloaded"


async def test_a_drop_mid_stream_is_an_error_after_the_text(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Reply(drop_after=2), Reply())
    events, error = await collect(provider)
    assert events == HELLO[:2]
    assert error is not None and "dropped the connection mid-reply" in error.message
    assert len(fake.requests) == 1, "nothing is retried after the first token"


async def test_a_drop_before_the_first_token_is_retried(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Reply(drop_after=0), Reply())
    events, error = await collect(provider)
    assert error is None and events == [*HELLO, Finish("stop", Usage(11, 4))]
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"{not json", "not JSON"),
        (b'{"choices": "zz"}', "no list of choices"),
        (b'{"choices": [{"index": 0, "delta": {"content": 5}}]}', "content is not a string"),
        (b"[1, 2]", "not a JSON object"),
    ],
)
async def test_a_malformed_chunk_is_an_error(
    fake: FakeOpenAI, provider: OpenAIProvider, raw: bytes, why: str
) -> None:
    fake.script(Reply(raw_after=1, raw=raw))
    events, error = await collect(provider)
    assert events == HELLO[:1]
    assert error is not None and error.message == f"local sent a malformed chunk ({why})"


async def test_an_error_event_mid_stream(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.script(Reply(raw_after=1, raw=b'{"error": {"message": "model crashed"}}'))
    events, error = await collect(provider)
    assert events == HELLO[:1]
    assert error is not None and error.message == "local reported an error: model crashed"


async def test_a_slow_first_token_names_the_timeout(fake: FakeOpenAI, base_url: str) -> None:
    policy = StreamPolicy(connect_s=2, first_token_s=0.3, idle_s=2, retries=0)
    fake.script(Reply(first_delay_s=3))
    async with provider_at(base_url, policy) as provider:
        began = time.monotonic()
        events, error = await collect(provider)
    assert events == [] and error is not None
    assert error.message == "local/fake-chat sent no first token within 0.3 s"
    assert time.monotonic() - began < 1.5
    assert await asyncio.to_thread(fake.disconnected.wait, 2.0), "the timed-out stream is closed"


async def test_a_silence_after_the_first_token_names_the_idle_limit(
    fake: FakeOpenAI, base_url: str
) -> None:
    policy = StreamPolicy(connect_s=2, first_token_s=2, idle_s=0.3, retries=0)
    fake.script(Reply(delay_s=3))
    async with provider_at(base_url, policy) as provider:
        events, error = await collect(provider)
    assert events == HELLO[:1]
    assert error is not None and error.message == "local/fake-chat went silent for 0.3 s"


OPENAI_CONTEXT = (
    "This model's maximum context length is 4096 tokens. However, you requested "
    "5000 tokens (4900 in the messages, 100 in the completion)."
)
LLAMA_CPP_CONTEXT = "the request exceeds the available context size, try increasing it"


@pytest.mark.parametrize(
    "fail",
    [
        Fail(400, OPENAI_CONTEXT, "context_length_exceeded"),
        Fail(400, OPENAI_CONTEXT.replace("4096 tokens. However", "4096 tokens and however")),
        Fail(400, LLAMA_CPP_CONTEXT, type="exceed_context_size_error", extra={"n_ctx": 4096}),
    ],
    ids=["openai", "vllm", "llama.cpp"],
)
async def test_context_length_exceeded_names_the_window(
    fake: FakeOpenAI, provider: OpenAIProvider, fail: Fail
) -> None:
    fake.script(fail)
    _, error = await collect(provider)
    assert error is not None
    window = "the conversation is longer than fake-chat's context window (4096 tokens)"
    assert error.message == window
    assert len(fake.requests) == 1


async def test_forbidden_not_found_and_other_refusals(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(
        Fail(403, "Project does not have access to model fake-chat"),
        Fail(404, "The model `fake-chat` does not exist", "model_not_found"),
        Fail(400, "temperature is out of range"),
    )
    messages = [(await collect(provider))[1] for _ in range(3)]
    assert [m.message if m else None for m in messages] == [
        "local denied access (403): Project does not have access to model fake-chat",
        "local: model 'fake-chat' was not found (404): The model `fake-chat` does not exist",
        "local refused the request (400): temperature is out of range",
    ]


async def test_an_unreachable_server_is_retried_then_named() -> None:
    port = free_port()
    async with provider_at(f"http://user:pw@127.0.0.1:{port}/v1") as provider:
        events, error = await collect(provider)
    assert events == [] and error is not None
    assert error.message.startswith(f"cannot reach local at http://127.0.0.1:{port}/v1 (")
    assert "pw" not in error.message


async def test_the_key_never_appears_in_an_error(fake: FakeOpenAI, base_url: str) -> None:
    echo = f"bad key {KEY} in this request"
    failures = [Fail(status, echo) for status in (400, 403, 404, 422, 500)]
    failures.append(Fail(429, echo, "insufficient_quota"))
    failures.append(Fail(400, f"maximum context length is 10 tokens, {KEY}"))
    fake.script(*failures)
    errors: list[ProviderError | None] = []
    async with provider_at(base_url, StreamPolicy(retries=0)) as provider:
        for _ in failures:
            errors.append((await collect(provider))[1])
    fake.script(Reply(raw_after=0, raw=b'{"error": {"message": "' + KEY.encode() + b'"}}'))
    async with provider_at(base_url) as provider:
        errors.append((await collect(provider))[1])
        fake.api_key = "sk-another"  # the fake echoes the wrong key in its 401
        errors.append((await collect(provider))[1])
        with pytest.raises(ProviderError) as listing:
            await provider.models()
        errors.append(listing.value)
    assert len(errors) == len(failures) + 3
    for error in errors:
        assert error is not None
        assert KEY not in error.message and KEY not in str(error) and KEY not in repr(error)


async def test_models_are_listed_named_filtered_and_cached(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.models = [
        "fake-chat",
        "meta-llama/Llama-3-8B",
        "text-embedding-3-small",
        "nomic-embed-text",
        "whisper-1",
        "tts-1",
        "dall-e-3",
        "omni-moderation-latest",
        "bge-reranker-v2",
        "or/some-model",
    ]
    fake.model_fields["meta-llama/Llama-3-8B"] = {"max_model_len": 8192}  # vLLM
    fake.model_fields["or/some-model"] = {"context_length": 131072}  # OpenRouter
    try:
        models = await provider.models()
        assert await provider.models() == models
    finally:
        fake.models = ["fake-chat"]
    assert [m.id for m in models] == [
        "local/fake-chat",
        "local/meta-llama/Llama-3-8B",
        "local/or/some-model",
    ]
    assert fake.models_requests == 1, "the list is cached"
    llama = models[1]
    assert llama.upstream == "meta-llama/Llama-3-8B" and llama.provider == "local"
    assert llama.capabilities.prefill is True, "a custom base URL can prefill"
    assert llama.capabilities.vision is False
    assert [m.capabilities.context_tokens for m in models] == [None, 8192, 131072]


async def test_a_failed_listing_is_not_cached(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.api_key = "sk-another"
    with pytest.raises(ProviderError, match=r"local: the API key was rejected \(401\)"):
        await provider.models()
    fake.api_key = ""
    assert [m.id for m in await provider.models()] == ["local/fake-chat"]


def test_openai_own_api_capabilities_and_filter() -> None:
    listed = [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-5",
        "o3-mini",
        "o1",
        "gpt-3.5-turbo",
        "gpt-3.5-turbo-instruct",
        "davinci-002",
        "text-embedding-3-large",
        "gpt-image-1",
        "gpt-4o-realtime-preview",
        "o1-pro",
    ]
    chat = [m for m in listed if is_chat_model(m, openai_api=True)]
    assert chat == ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-5", "o3-mini", "o1", "gpt-3.5-turbo"]
    vision = {m: model_info("openai", m, openai_api=True).capabilities.vision for m in chat}
    seeing = [m for m, seen in vision.items() if seen]
    assert seeing == ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-5", "o1"]
    assert not any(model_info("openai", m, openai_api=True).capabilities.prefill for m in chat)
    assert is_openai_api("") and is_openai_api("https://api.openai.com/v1")
    assert not is_openai_api("http://127.0.0.1:8000/v1")
    prefilled = ChatRequest("gpt-4o", REQUEST.messages, prefill="partial")
    assert extra_body(prefilled, openai_api=True) is None, "OpenAI refuses unknown fields"
    assert extra_body(prefilled, openai_api=False) == {
        "continue_final_message": True,
        "add_generation_prompt": False,
    }


def chunk(choices: list[dict[str, Any]], **fields: Any) -> ChatCompletionChunk:
    envelope = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    return ChatCompletionChunk.model_validate(envelope | {"choices": choices} | fields)


def test_reading_chunks() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    with_usage = chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}], usage=usage)
    assert read_chunk(with_usage) == ChunkParts(finish_reason="stop", usage=Usage(3, 5))
    both = chunk([{"index": 0, "delta": {"reasoning_content": "a", "reasoning": "a"}}])
    assert read_chunk(both) == ChunkParts(reasoning="a"), "one reasoning field, not both"
    refusal = chunk([{"index": 0, "delta": {"refusal": "I can't help with that."}}])
    assert read_chunk(refusal).text == "I can't help with that."
    others = chunk([{"index": 1, "delta": {"content": "other"}}, {"index": 0, "delta": {}}])
    assert read_chunk(others) == ChunkParts()
    assert read_chunk(chunk([])) == ChunkParts()


PIXEL = ImagePart("image/png", b"\x89PNG-fake-bytes", 2, 1)
PIXEL_B64 = base64.b64encode(PIXEL.data).decode()


async def test_images_are_image_url_parts_with_data_urls(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    path = (PromptMessage("user", "What is this?", (PIXEL,)),)
    _events, error = await collect(provider, ChatRequest("fake-chat", path))
    assert error is None
    assert fake.requests[0]["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_B64}"}},
            ],
        }
    ]
