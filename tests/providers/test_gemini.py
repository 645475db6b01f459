"""The Gemini provider, on the real `google-genai` SDK, against a fake Gemini API.

The fake speaks `streamGenerateContent?alt=sse` on a real loopback port; nothing
is mocked between the provider and the bytes on the wire.
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
from durachat.providers.gemini import GeminiProvider
from tests.providers import consume
from tests.providers.fake_gemini import Fail, FakeGemini, Reply, rate_limited
from tests.providers.http_server import serve_app

KEY = "test-gemini-key"
POLICY = StreamPolicy(
    connect_s=2, first_token_s=2, idle_s=2, retries=2, backoff_s=0.01, backoff_cap_s=1.0
)
HELLO = ChatRequest("gemini-fake-pro", (PromptMessage("user", "Hi"),))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeGemini, str]]:
    fake = FakeGemini(KEY)
    with serve_app(fake) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeGemini, str]) -> FakeGemini:
    served[0].reset()
    return served[0]


def make(url: str, key: str = KEY, policy: StreamPolicy = POLICY) -> GeminiProvider:
    return GeminiProvider(ProviderConfig("gemini", url, key, policy))


@pytest.fixture
async def provider(served: tuple[FakeGemini, str]) -> AsyncIterator[GeminiProvider]:
    instance = make(served[1])
    await instance.models()
    yield instance
    await instance.aclose()


async def collect(
    provider: GeminiProvider, request: ChatRequest = HELLO
) -> tuple[list[ProviderEvent], ProviderError | None]:
    return await consume.collect(provider, request)


text_of = consume.text_of


async def test_models_are_the_chat_models_of_the_list(
    fake: FakeGemini, served: tuple[FakeGemini, str]
) -> None:
    provider = make(served[1])
    models = await provider.models()
    assert [m.id for m in models] == ["gemini/gemini-fake-lite", "gemini/gemini-fake-pro"]
    pro = models[1]
    assert pro.upstream == "gemini-fake-pro" and pro.label == "Gemini Fake Pro"
    assert pro.provider == "gemini"
    assert pro.capabilities.prefill is False
    assert pro.capabilities.context_tokens == 1_048_576
    assert await provider.models() == models
    assert fake.models_requests == 1, "the list is cached"
    await provider.aclose()


async def test_full_reply_with_usage(fake: FakeGemini, provider: GeminiProvider) -> None:
    events, error = await collect(provider)
    assert error is None
    assert text_of(events) == "Hello, world!"
    assert events[-1] == Finish("stop", Usage(input_tokens=9, output_tokens=4))
    assert sum(isinstance(e, Finish) for e in events) == 1
    [recorded] = fake.requests
    assert recorded.model == "gemini-fake-pro" and recorded.query == "alt=sse"
    assert recorded.body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    assert set(fake.keys) == {KEY}


async def test_system_prompt_and_multi_turn_path(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    path = (
        PromptMessage("user", "What is 2+2?"),
        PromptMessage("assistant", "4."),
        PromptMessage("user", "And times 3?"),
    )
    request = ChatRequest("gemini-fake-lite", path, system_prompt="Answer tersely.")
    events, error = await collect(provider, request)
    assert error is None and isinstance(events[-1], Finish)
    body = fake.requests[0].body
    assert body["systemInstruction"]["parts"] == [{"text": "Answer tersely."}]
    assert [(c["role"], c["parts"][0]["text"]) for c in body["contents"]] == [
        ("user", "What is 2+2?"),
        ("model", "4."),
        ("user", "And times 3?"),
    ]
    assert "thinkingConfig" not in body.get("generationConfig", {}), "lite does not think"


async def test_thought_parts_are_reasoning(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.default = Reply(thoughts=("Let me ", "think."), usage=(9, 4, 5))
    events, error = await collect(provider)
    assert error is None
    reasoning = [e.text for e in events if isinstance(e, ReasoningDelta)]
    assert reasoning == ["Let me ", "think."]
    assert isinstance(events[0], ReasoningDelta) and isinstance(events[2], TextDelta)
    assert text_of(events) == "Hello, world!"
    assert events[-1] == Finish("stop", Usage(input_tokens=9, output_tokens=9))
    thinking = fake.requests[0].body["generationConfig"]["thinkingConfig"]
    # the SDK sends the proto field name; Google's JSON parser takes either spelling
    assert True in (thinking.get("includeThoughts"), thinking.get("include_thoughts"))


async def test_prefill_is_sent_as_a_final_model_turn(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    """No Gemini model is listed with prefill; one configured with it gets a model turn."""
    request = ChatRequest("gemini-fake-pro", (PromptMessage("user", "Hi"),), prefill="Hel")
    await collect(provider, request)
    contents = fake.requests[0].body["contents"]
    assert contents[-1] == {"role": "model", "parts": [{"text": "Hel"}]}


async def test_cancelling_closes_the_http_stream(
    fake: FakeGemini, provider: GeminiProvider
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
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    """The runner stops reading (a reply over its size limit) and closes the stream."""
    fake.default = Reply(chunks=tuple(f"w{i} " for i in range(200)), delay_s=0.05)
    stream = provider.stream(HELLO)
    assert isinstance(await anext(stream), TextDelta)
    closed_at = time.monotonic()
    await stream.aclose()
    assert await asyncio.to_thread(fake.disconnects.event.wait, 1.0), "stream left open"
    assert fake.disconnects.times[0] - closed_at < 1.0


@pytest.mark.parametrize(
    ("fail", "shown"),
    [
        (Fail(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED"), "401"),
        (Fail(403, "Method doesn't allow unregistered callers.", "PERMISSION_DENIED"), "403"),
    ],
)
async def test_rejected_credentials(
    fake: FakeGemini, provider: GeminiProvider, fail: Fail, shown: str
) -> None:
    fake.script(fail)
    events, error = await collect(provider)
    assert events == [] and error is not None
    assert error.message.startswith(f"GEMINI_API_KEY was rejected ({shown}")
    assert len(fake.requests) == 1, "not retried"


async def test_invalid_key_never_in_the_message(
    fake: FakeGemini, served: tuple[FakeGemini, str]
) -> None:
    secret = "AIza-not-the-right-key-0123456789"
    provider = make(served[1], key=secret)
    with pytest.raises(ProviderError) as listing:
        await provider.models()
    events, error = await collect(provider)
    await provider.aclose()
    for failure in (listing.value, error):
        assert failure is not None
        assert failure.message.startswith("GEMINI_API_KEY was rejected (400 API_KEY_INVALID)")
        assert secret not in failure.message and secret not in str(failure)
    assert events == []
    assert fake.keys == [secret, secret], "sent once each, no retry"


async def test_server_message_quoting_the_key_is_scrubbed(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.script(Fail(400, f"bad request from key {KEY}", "INVALID_ARGUMENT"))
    _, error = await collect(provider)
    assert error is not None and KEY not in error.message
    assert error.message == "Gemini refused the request (400): bad request from key ***"


async def test_rate_limit_waits_the_retry_delay_then_succeeds(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.script(rate_limited("0.4s"))
    started = time.monotonic()
    events, error = await collect(provider)
    assert error is None and text_of(events) == "Hello, world!"
    assert time.monotonic() - started >= 0.4
    assert len(fake.requests) == 2


async def test_rate_limit_longer_than_the_cap_is_not_waited_for(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.script(rate_limited("3600s"))
    _, error = await collect(provider)
    assert error is not None and error.message == "rate limited by Gemini (429), retry in 3600 s"
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_server_error_then_success(
    fake: FakeGemini, provider: GeminiProvider, status: int
) -> None:
    fake.script(Fail(status, "The model is overloaded.", "UNAVAILABLE"))
    events, error = await collect(provider)
    assert error is None and text_of(events) == "Hello, world!"
    assert len(fake.requests) == 2


async def test_server_errors_until_retries_run_out(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.script(*[Fail(500, "Internal error encountered.")] * 3)
    _, error = await collect(provider)
    assert error is not None
    assert error.message == "Gemini failed with a server error (500): Internal error encountered."
    assert len(fake.requests) == 3


async def test_connection_dropped_after_text_is_an_error_not_retried(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.default = Reply(drop_after=2)
    events, error = await collect(provider)
    assert text_of(events) == "Hello, "
    assert not any(isinstance(e, Finish) for e in events)
    assert error is not None and "dropped the connection mid-reply" in error.message
    assert len(fake.requests) == 1


async def test_stream_without_a_finish_reason_ends_without_finish(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.default = Reply(finish_reason=None)
    events, error = await collect(provider)
    assert error is None and text_of(events) == "Hello, world!"
    assert not any(isinstance(e, Finish) for e in events)


@pytest.mark.parametrize("after", [0, 2])
async def test_malformed_chunk(fake: FakeGemini, provider: GeminiProvider, after: int) -> None:
    fake.default = Reply(raw_after=after)
    events, error = await collect(provider)
    assert error is not None and error.message == "Gemini sent a malformed chunk"
    assert len(events) == after
    assert len(fake.requests) == 1, "a malformed stream is not retried"


async def test_first_token_later_than_the_limit(
    fake: FakeGemini, served: tuple[FakeGemini, str]
) -> None:
    policy = StreamPolicy(connect_s=2, first_token_s=0.3, idle_s=2, retries=0)
    provider = make(served[1], policy=policy)
    fake.default = Reply(first_delay_s=3)
    started = time.monotonic()
    events, error = await collect(provider)
    await provider.aclose()
    assert events == [] and error is not None
    assert error.message == "gemini/gemini-fake-pro sent no first token within 0.3 s"
    assert time.monotonic() - started < 2
    assert await asyncio.to_thread(fake.disconnects.event.wait, 1.0)


async def test_blocked_prompt(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.default = Reply(blocked="SAFETY")
    events, error = await collect(provider)
    assert events == [] and error is not None
    assert error.message == "Gemini blocked the prompt (SAFETY)"


async def test_unknown_model(fake: FakeGemini, provider: GeminiProvider) -> None:
    _, error = await collect(provider, ChatRequest("nope", (PromptMessage("user", "Hi"),)))
    assert error is not None
    assert error.message.startswith("Gemini: model 'nope' was not found (404)")


async def test_unreachable_server_is_retried_then_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = make(f"http://127.0.0.1:{port}")
    _, error = await collect(provider)
    with pytest.raises(ProviderError, match="cannot reach Gemini"):
        await provider.models()
    await provider.aclose()
    assert error is not None
    assert error.message.startswith(f"cannot reach Gemini at http://127.0.0.1:{port}")


PIXEL = ImagePart("image/png", b"\x89PNG-fake-bytes", 2, 1)
PIXEL_B64 = base64.b64encode(PIXEL.data).decode()


async def test_images_are_inline_data_parts(fake: FakeGemini, provider: GeminiProvider) -> None:
    path = (PromptMessage("user", "What is this?", (PIXEL,)),)
    _events, error = await collect(provider, ChatRequest("gemini-fake-pro", path))
    assert error is None
    [content] = fake.requests[0].body["contents"]
    text, image = content["parts"]
    assert content["role"] == "user" and text == {"text": "What is this?"}
    # the SDK names the type `mime_type` inside `inlineData`; the API reads either spelling
    inline = image["inlineData"]
    assert inline["data"] == PIXEL_B64
    assert inline.get("mimeType", inline.get("mime_type")) == "image/png"
