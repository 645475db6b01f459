"""A real `durachat serve` on the Gemini API (the fake one, on loopback).

The server is configured the way a user would: `GEMINI_API_KEY` and
`GEMINI_BASE_URL`. Its models are discovered, a chat streams the fake's thoughts
and text and stores them, and `continue` after a kill -9, without prefill (no
Gemini model has it), asks the model to go on and drops what it repeats.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from durachat.runner.runner import GO_ON
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done, of_type
from tests.providers.fake_gemini import FakeGemini, Reply
from tests.providers.http_server import serve_app

KEY = "test-gemini-key"
MODEL = "gemini/gemini-fake-pro"
WORDS = tuple(f"t{i} " for i in range(1, 301))


@pytest.fixture
def fake_gemini() -> Iterator[tuple[FakeGemini, str]]:
    fake = FakeGemini(KEY)
    with serve_app(fake) as url:
        yield fake, url


def settings(base_url: str) -> dict[str, str]:
    # Titles from the offline model, so every request the fake sees is a reply's.
    return {
        "GEMINI_API_KEY": KEY,
        "GEMINI_BASE_URL": base_url,
        "DURACHAT_TITLE_MODEL": "demo/echo",
    }


def newest(server: Server, conversation_id: str) -> dict[str, Any]:
    catchup = server.get(f"/api/conversations/{conversation_id}/catchup")
    message: dict[str, Any] = catchup["messages"][-1]
    return message


async def test_models_and_a_chat_with_thoughts_through_the_server(
    make_server: MakeServer, fake_gemini: tuple[FakeGemini, str]
) -> None:
    fake, base_url = fake_gemini
    server = make_server(settings(base_url))
    models = {m["id"]: m for m in server.get("/api/models")["models"]}
    assert {"gemini/gemini-fake-pro", "gemini/gemini-fake-lite"} <= set(models)
    assert "gemini/gemini-embedding-fake" not in models, "not a chat model"
    assert models[MODEL]["capabilities"]["prefill"] is False

    fake.default = Reply(
        chunks=("Hello", " from", " Gemini", "!"), thoughts=("Greet.",), usage=(6, 4, 3)
    )
    client = await WsClient.connect(server.ws)
    created = await start(client, "Say hello", model=MODEL)
    frames = await client.until(is_done)
    assert [f["content"] for f in frames if f["type"] == "reasoning"] == ["Greet."]
    text = "".join(f["content"] for f in frames if f["type"] == "text")
    assert text == "Hello from Gemini!"
    assert frames[-1]["status"] == "complete"
    assert frames[-1]["usage"] == {"inputTokens": 6, "outputTokens": 7}
    stored = newest(server, created["conversationId"])
    assert stored["content"] == text and stored["model"] == MODEL
    assert stored["reasoning"] == "Greet."
    assert set(fake.keys) == {KEY}
    await client.close()


async def test_continue_after_kill_9_asks_to_go_on_and_drops_the_repeat(
    make_server: MakeServer, fake_gemini: tuple[FakeGemini, str]
) -> None:
    fake, base_url = fake_gemini
    server = make_server(settings(base_url))
    client = await WsClient.connect(server.ws)
    fake.default = Reply(chunks=WORDS, delay_s=0.01)
    created = await start(client, "Count", model=MODEL)
    cid, mid = created["conversationId"], created["messageId"]
    await client.until(lambda f: f.get("type") == "text" and f["seq"] >= 40)
    server.kill()
    await client.close()
    server.start()
    interrupted = newest(server, cid)
    assert interrupted["status"] == "interrupted"
    partial = interrupted["content"]
    assert partial and "".join(WORDS).startswith(partial)

    fake.default = Reply(chunks=WORDS)  # the model starts over from the beginning
    client = await WsClient.connect(server.ws)
    await client.send({"type": "continue", "conversationId": cid, "messageId": mid})
    await client.until(of_type("message_started"))
    frames = await client.until(is_done)
    assert frames[-1]["status"] == "complete"
    final = newest(server, cid)
    assert final["content"] == "".join(WORDS), "the repeated start was dropped"
    contents = fake.requests[-1].body["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("user", "Count"),
        ("model", partial),
        ("user", GO_ON),
    ]
    await client.close()
