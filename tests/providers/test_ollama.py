"""The Ollama provider against a fake Ollama speaking `/api/tags` and NDJSON `/api/chat`.

The fake runs on a real loopback port; nothing is mocked between the provider and
the bytes on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from durachat.domain import Usage
from durachat.errors import ProviderError
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
from durachat.providers.ollama import OllamaProvider
from tests.providers import consume
from tests.providers.fake_ollama import Fail, FakeOllama, Reply
from tests.providers.http_server import eventually, serve_app

POLICY = StreamPolicy(
    connect_s=2, first_token_s=2, idle_s=2, retries=2, backoff_s=0.01, backoff_cap_s=1.0
)
HELLO = ChatRequest("llama3.2:latest", (PromptMessage("user", "Hi"),))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOllama, str]]:
    fake = FakeOllama()
    with serve_app(fake) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeOllama, str]) -> FakeOllama:
    served[0].reset()
    return served[0]


def make(url: str, key: str = "", policy: StreamPolicy = POLICY) -> OllamaProvider:
    return OllamaProvider(ProviderConfig("ollama", url, key, policy))


@pytest.fixture
async def provider(served: tuple[FakeOllama, str]) -> AsyncIterator[OllamaProvider]:
    instance = make(served[1])
    yield instance
    await instance.aclose()


async def collect(
    provider: OllamaProvider, request: ChatRequest = HELLO
) -> tuple[list[ProviderEvent], ProviderError | None]:
    return await consume.collect(provider, request)


text_of = consume.text_of


async def test_models_are_the_local_chat_models(fake: FakeOllama, provider: OllamaProvider) -> None:
    models = await provider.models()
    assert [m.id for m in models] == ["ollama/llama3.2:latest", "ollama/qwen3:0.6b"]
    assert [m.label for m in models] == ["llama3.2", "qwen3:0.6b"]
    assert models[0].upstream == "llama3.2:latest" and models[0].provider == "ollama"
    assert all(m.capabilities.prefill for m in models)
    assert await provider.models() == models
    assert fake.tags_requests == 1, "the list is cached"


async def test_full_reply_with_usage(fake: FakeOllama, provider: OllamaProvider) -> None:
    events, error = await collect(provider)
    assert error is None
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", ", ", "world", "!"]
    assert events[-1] == Finish("stop", Usage(input_tokens=12, output_tokens=4))
    assert fake.requests == [
        {
            "model": "llama3.2:latest",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
        }
    ]
    assert await eventually(lambda: fake.completed == 1), "the fake sent the whole stream"


async def test_system_prompt_and_multi_turn_path(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    path = (
        PromptMessage("user", "What is 2+2?"),
        PromptMessage("assistant", "4."),
        PromptMessage("user", "And times 3?"),
    )
    request = ChatRequest("qwen3:0.6b", path, system_prompt="Answer tersely.")
    events, error = await collect(provider, request)
    assert error is None and isinstance(events[-1], Finish)
    assert fake.requests[0]["messages"] == [
        {"role": "system", "content": "Answer tersely."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And times 3?"},
    ]


async def test_thinking_is_reasoning(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.default = Reply(thinking=("Two plus ", "two."))
    events, error = await collect(provider)
    assert error is None
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["Two plus ", "two."]
    assert isinstance(events[0], ReasoningDelta) and isinstance(events[2], TextDelta)
    assert text_of(events) == "Hello, world!"


async def test_prefill_sends_the_partial_reply_last_and_streams_the_rest(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    request = ChatRequest(
        "llama3.2:latest", (PromptMessage("user", "Hi"),), "Be kind.", prefill="Hello, "
    )
    events, error = await collect(provider, request)
    assert error is None and text_of(events) == "world!"
    assert fake.requests[0]["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, "},
    ]


async def test_cancelling_closes_the_http_stream(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    fake.default = Reply(chunks=tuple(f"w{i} " for i in range(200)), delay_s=0.05)
    first = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(HELLO):
            if isinstance(event, TextDelta):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.disconnects.event.wait, 1.0), "stream left open"
    assert fake.disconnects.times[0] - cancelled_at < 1.0
    assert fake.completed == 0


async def test_closing_the_stream_early_closes_the_http_stream(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    fake.default = Reply(chunks=tuple(f"w{i} " for i in range(200)), delay_s=0.05)
    stream = provider.stream(HELLO)
    assert isinstance(await anext(stream), TextDelta)
    closed_at = time.monotonic()
    await stream.aclose()
    assert await asyncio.to_thread(fake.disconnects.event.wait, 1.0), "stream left open"
    assert fake.disconnects.times[0] - closed_at < 1.0


async def test_rejected_key_is_never_in_the_message(
    fake: FakeOllama, served: tuple[FakeOllama, str]
) -> None:
    secret = "sk-proxy-secret-0123456789"
    provider = make(served[1], key=secret)
    fake.script(Fail(401, f"invalid token {secret}"))
    events, error = await collect(provider)
    await provider.aclose()
    assert events == [] and error is not None
    assert error.message == "Ollama refused access (401): invalid token ***"
    assert secret not in str(error)
    assert fake.authorizations == [f"Bearer {secret}"], "sent, and not retried"


async def test_busy_with_retry_after_then_success(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    fake.script(Fail(429, "too many requests", {"Retry-After": "0.4"}))
    started = time.monotonic()
    events, error = await collect(provider)
    assert error is None and text_of(events) == "Hello, world!"
    assert time.monotonic() - started >= 0.4
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "fail",
    [
        Fail(500, "llama runner process has terminated"),
        Fail(503, "server busy, please try again.  maximum pending requests exceeded"),
    ],
)
async def test_server_error_then_success(
    fake: FakeOllama, provider: OllamaProvider, fail: Fail
) -> None:
    fake.script(fail)
    events, error = await collect(provider)
    assert error is None and text_of(events) == "Hello, world!"
    assert len(fake.requests) == 2


async def test_connection_dropped_after_text_is_an_error_not_retried(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    fake.default = Reply(drop_after=2)
    events, error = await collect(provider)
    assert text_of(events) == "Hello, "
    assert not any(isinstance(e, Finish) for e in events)
    assert error is not None and "Ollama dropped the connection mid-reply" in error.message
    assert len(fake.requests) == 1


async def test_stream_without_its_done_line_ends_without_finish(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    fake.default = Reply(done=False)
    events, error = await collect(provider)
    assert error is None and text_of(events) == "Hello, world!"
    assert not any(isinstance(e, Finish) for e in events)


@pytest.mark.parametrize("after", [0, 2])
async def test_malformed_line(fake: FakeOllama, provider: OllamaProvider, after: int) -> None:
    fake.default = Reply(raw_after=after)
    events, error = await collect(provider)
    assert error is not None
    assert error.message == "Ollama sent a malformed chunk (a line that is not JSON)"
    assert len(events) == after
    assert len(fake.requests) == 1, "a malformed stream is not retried"


async def test_error_line_mid_stream(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.default = Reply(error_after=1, error="model runner has unexpectedly stopped")
    events, error = await collect(provider)
    assert text_of(events) == "Hello"
    assert error is not None
    assert error.message == "Ollama reported an error: model runner has unexpectedly stopped"


async def test_first_token_later_than_the_limit(
    fake: FakeOllama, served: tuple[FakeOllama, str]
) -> None:
    policy = StreamPolicy(connect_s=2, first_token_s=0.3, idle_s=2, retries=0)
    provider = make(served[1], policy=policy)
    fake.default = Reply(first_delay_s=3)
    started = time.monotonic()
    events, error = await collect(provider)
    await provider.aclose()
    assert events == [] and error is not None
    assert error.message == "ollama/llama3.2:latest sent no first token within 0.3 s"
    assert time.monotonic() - started < 2
    assert await asyncio.to_thread(fake.disconnects.event.wait, 1.0)


async def test_model_not_pulled(fake: FakeOllama, provider: OllamaProvider) -> None:
    _, error = await collect(provider, ChatRequest("mistral", (PromptMessage("user", "Hi"),)))
    assert error is not None
    assert error.message == "model not found in Ollama: mistral (ollama pull mistral)"
    assert len(fake.requests) == 1


async def test_unreachable_ollama_is_retried_then_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = make(f"http://127.0.0.1:{port}")
    _, error = await collect(provider)
    with pytest.raises(ProviderError, match=f"cannot reach Ollama at http://127.0.0.1:{port}"):
        await provider.models()
    await provider.aclose()
    assert error is not None
    assert error.message.startswith(f"cannot reach Ollama at http://127.0.0.1:{port}")


PIXEL = ImagePart("image/png", b"\x89PNG-fake-bytes", 2, 1)
PIXEL_B64 = base64.b64encode(PIXEL.data).decode()


async def test_images_are_the_messages_images_array(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    path = (PromptMessage("user", "What is this?", (PIXEL,)),)
    _events, error = await collect(provider, ChatRequest("qwen3:0.6b", path))
    assert error is None
    assert fake.requests[0]["messages"] == [
        {"role": "user", "content": "What is this?", "images": [PIXEL_B64]}
    ]
