"""A real `durachat serve` on the Anthropic API (the fake one, on loopback).

The server is configured the way a user would: `ANTHROPIC_API_KEY` and
`ANTHROPIC_BASE_URL`. Its models are discovered from the Models API, a chat streams
the fake's text exactly and stores it with its usage, and `continue` after a
kill -9 completes the reply by prefill on a model that allows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done
from tests.providers.fake_anthropic import FakeAnthropic, Reply, model_entry
from tests.providers.http_server import serve_app

KEY = "sk-ant-test"
HAIKU = "claude-haiku-4-5-20251001"
OPUS = "claude-opus-4-6"
WORDS = tuple(f"t{i} " for i in range(1, 301))


@pytest.fixture
def fake_anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    models = [
        model_entry(OPUS, "Claude Opus 4.6", max_input_tokens=1_000_000, max_tokens=128_000),
        model_entry(HAIKU, "Claude Haiku 4.5", max_input_tokens=200_000, vision=True),
    ]
    fake = FakeAnthropic(models, api_key=KEY)
    with serve_app(fake) as url:
        yield fake, url


def settings(base_url: str) -> dict[str, str]:
    # Titles from the offline model, so every request the fake sees is a reply's.
    return {
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": base_url,
        "DURACHAT_TITLE_MODEL": "demo/echo",
    }


def newest(server: Server, conversation_id: str) -> dict[str, Any]:
    catchup = server.get(f"/api/conversations/{conversation_id}/catchup")
    message: dict[str, Any] = catchup["messages"][-1]
    return message


async def test_models_are_listed_and_a_chat_streams_and_is_stored(
    make_server: MakeServer, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, base_url = fake_anthropic
    server = make_server(settings(base_url))
    models = {m["id"]: m for m in server.get("/api/models")["models"]}
    opus, haiku = models[f"anthropic/{OPUS}"], models[f"anthropic/{HAIKU}"]
    assert opus["label"] == "Claude Opus 4.6" and opus["provider"] == "anthropic"
    assert opus["capabilities"]["prefill"] is False
    assert opus["capabilities"]["contextTokens"] == 1_000_000
    assert haiku["capabilities"]["prefill"] is True and haiku["capabilities"]["vision"] is True

    client = await WsClient.connect(server.ws)
    fake.script(Reply(text=("Bonjour", ", ", "le ", "monde", " !"), usage=(21, 6)))
    created = await start(client, "Say hello in French", model=f"anthropic/{OPUS}")
    frames = await client.until(is_done)
    text = "".join(f["content"] for f in frames if f["type"] == "text")
    assert text == "Bonjour, le monde !"
    assert frames[-1]["status"] == "complete"
    assert frames[-1]["usage"] == {"inputTokens": 21, "outputTokens": 6}
    stored = newest(server, created["conversationId"])
    assert stored["content"] == text and stored["model"] == f"anthropic/{OPUS}"
    assert stored["usage"] == {"inputTokens": 21, "outputTokens": 6}
    [sent] = fake.requests
    assert sent["model"] == OPUS and sent["stream"] is True
    assert sent["messages"] == [{"role": "user", "content": "Say hello in French"}]
    await client.close()


async def test_continue_after_kill_9_by_prefill(
    make_server: MakeServer, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, base_url = fake_anthropic
    server = make_server(settings(base_url))
    client = await WsClient.connect(server.ws)
    fake.script(
        Reply(text=WORDS, delay_s=0.01),
        Reply(text=WORDS, continue_prefill=True, usage=(30, 260)),
    )
    created = await start(client, "Count", model=f"anthropic/{HAIKU}")
    cid, mid = created["conversationId"], created["messageId"]
    await client.until(lambda f: f.get("type") == "text" and f["seq"] >= 40)
    server.kill()
    await client.close()
    server.start()
    interrupted = newest(server, cid)
    assert interrupted["id"] == mid and interrupted["status"] == "interrupted"
    partial, stored_seq = interrupted["content"], interrupted["seq"]
    assert partial.endswith(" ") and "".join(WORDS).startswith(partial)

    client = await WsClient.connect(server.ws)
    await client.send({"type": "continue", "conversationId": cid, "messageId": mid})
    frames = await client.until(is_done)
    texts = [f for f in frames if f["type"] == "text"]
    assert texts[0]["seq"] == stored_seq + 1
    assert partial + "".join(f["content"] for f in texts) == "".join(WORDS)
    final = newest(server, cid)
    assert final["content"] == "".join(WORDS) and final["status"] == "complete"
    assert fake.requests[-1]["messages"] == [
        {"role": "user", "content": "Count"},
        {"role": "assistant", "content": partial.rstrip()},
    ]
    await client.close()
