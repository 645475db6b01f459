"""A real `durachat serve` on Ollama (the fake one, on loopback).

The server is configured the way a user would: `OLLAMA_BASE_URL`. Its models are
discovered from `/api/tags`, a chat streams the fake's text exactly and stores it,
and `continue` after a kill -9 completes the reply by prefill (on for Ollama).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done, of_type
from tests.providers.fake_ollama import FakeOllama, Reply
from tests.providers.http_server import serve_app

MODEL = "ollama/llama3.2:latest"
WORDS = tuple(f"t{i} " for i in range(1, 301))


@pytest.fixture
def fake_ollama() -> Iterator[tuple[FakeOllama, str]]:
    fake = FakeOllama()
    with serve_app(fake) as url:
        yield fake, url


def settings(base_url: str) -> dict[str, str]:
    # Titles from the offline model, so every request the fake sees is a reply's.
    return {"OLLAMA_BASE_URL": base_url, "DURACHAT_TITLE_MODEL": "demo/echo"}


def newest(server: Server, conversation_id: str) -> dict[str, Any]:
    catchup = server.get(f"/api/conversations/{conversation_id}/catchup")
    message: dict[str, Any] = catchup["messages"][-1]
    return message


async def test_models_and_a_chat_stream_through_the_server(
    make_server: MakeServer, fake_ollama: tuple[FakeOllama, str]
) -> None:
    fake, base_url = fake_ollama
    server = make_server(settings(base_url))
    models = {m["id"]: m for m in server.get("/api/models")["models"]}
    assert "ollama/nomic-embed-text:latest" not in models, "not a chat model"
    assert {"ollama/llama3.2:latest", "ollama/qwen3:0.6b"} <= set(models)
    chat = models[MODEL]
    assert chat["provider"] == "ollama" and chat["label"] == "llama3.2"
    assert chat["capabilities"]["prefill"] is True

    fake.default = Reply(chunks=("Hello", " from", " Ollama", "!"), usage=(8, 4), delay_s=0.02)
    client = await WsClient.connect(server.ws)
    created = await start(client, "Say hello", model=MODEL)
    frames = await client.until(is_done)
    text = "".join(f["content"] for f in frames if f["type"] == "text")
    assert text == "Hello from Ollama!"
    assert frames[-1]["status"] == "complete"
    assert frames[-1]["usage"] == {"inputTokens": 8, "outputTokens": 4}
    stored = newest(server, created["conversationId"])
    assert stored["content"] == text and stored["status"] == "complete"
    assert stored["model"] == MODEL and stored["provider"] == "ollama"
    assert fake.requests == [
        {
            "model": "llama3.2:latest",
            "messages": [{"role": "user", "content": "Say hello"}],
            "stream": True,
        }
    ]
    await client.close()


async def test_continue_after_kill_9_by_prefill(
    make_server: MakeServer, fake_ollama: tuple[FakeOllama, str]
) -> None:
    fake, base_url = fake_ollama
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
    assert interrupted["id"] == mid and interrupted["status"] == "interrupted"
    partial, stored_seq = interrupted["content"], interrupted["seq"]
    assert partial and "".join(WORDS).startswith(partial)

    fake.default = Reply(chunks=WORDS, usage=(30, 260))
    client = await WsClient.connect(server.ws)
    await client.send({"type": "continue", "conversationId": cid, "messageId": mid})
    await client.until(of_type("message_started"))
    frames = await client.until(is_done)
    texts = [f for f in frames if f["type"] == "text"]
    assert texts[0]["seq"] == stored_seq + 1, "seq carries on from the stored value"
    assert partial + "".join(f["content"] for f in texts) == "".join(WORDS)
    assert frames[-1]["status"] == "complete"
    final = newest(server, cid)
    assert final["content"] == "".join(WORDS) and final["status"] == "complete"
    assert fake.requests[-1]["messages"] == [
        {"role": "user", "content": "Count"},
        {"role": "assistant", "content": partial},
    ]
    await client.close()
