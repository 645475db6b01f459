"""A real `durachat serve` on an OpenAI-compatible server (the fake one, on loopback).

The server is configured the way a user would: `OPENAI_BASE_URL` and
`OPENAI_API_KEY`. Its models are discovered, a chat streams the fake's text and
stores it, and `continue` after a kill -9 completes the reply by prefill.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done, of_type
from tests.providers.fake_openai import FakeOpenAI, Reply
from tests.providers.http_server import serve_app

KEY = "sk-test"
WORDS = tuple(f"t{i} " for i in range(1, 301))


@pytest.fixture
def fake_openai() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI(models=("fake-chat", "text-embedding-3-small"), api_key=KEY)
    with serve_app(fake) as url:
        yield fake, url + "/v1"


def settings(base_url: str) -> dict[str, str]:
    # Titles from the offline model, so every request the fake sees is a reply's.
    return {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": KEY, "DURACHAT_TITLE_MODEL": "demo/echo"}


def newest(server: Server, conversation_id: str) -> dict[str, Any]:
    catchup = server.get(f"/api/conversations/{conversation_id}/catchup")
    message: dict[str, Any] = catchup["messages"][-1]
    return message


def test_models_are_discovered_by_the_server_and_the_cli(
    make_server: MakeServer, fake_openai: tuple[FakeOpenAI, str], tmp_path: Path
) -> None:
    fake, base_url = fake_openai
    server = make_server(settings(base_url))
    models = {m["id"]: m for m in server.get("/api/models")["models"]}
    assert "openai/text-embedding-3-small" not in models, "not a chat model"
    chat = models["openai/fake-chat"]
    assert chat["provider"] == "openai" and chat["label"] == "fake-chat"
    assert chat["capabilities"]["prefill"] is True and chat["capabilities"]["vision"] is False
    assert fake.authorizations[0] == f"Bearer {KEY}"

    env = {"PATH": "/usr/bin:/bin", "DURACHAT_DATA_DIR": str(tmp_path / "cli")}
    result = subprocess.run(
        [sys.executable, "-m", "durachat.cli", "models"],
        env=env | settings(base_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["demo/echo", "openai/fake-chat"]


async def test_chat_and_continue_after_kill_9_by_prefill(
    make_server: MakeServer, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = fake_openai
    server = make_server(settings(base_url))
    client = await WsClient.connect(server.ws)

    fake.script(Reply(chunks=("Hello ", "from ", "the ", "fake."), usage=(7, 4)))
    created = await start(client, "Say hello", model="openai/fake-chat")
    frames = await client.until(is_done)
    text = "".join(f["content"] for f in frames if f["type"] == "text")
    assert text == "Hello from the fake."
    assert frames[-1]["status"] == "complete"
    assert frames[-1]["usage"] == {"inputTokens": 7, "outputTokens": 4}
    stored = newest(server, created["conversationId"])
    assert stored["content"] == text and stored["model"] == "openai/fake-chat"
    assert fake.requests[-1]["messages"] == [{"role": "user", "content": "Say hello"}]

    fake.script(
        Reply(chunks=WORDS, delay_s=0.01),
        Reply(chunks=WORDS, continue_prefill=True, usage=(30, 260)),
    )
    cid = created["conversationId"]
    await client.send({"type": "start_chat", "conversationId": cid, "prompt": "Count"})
    mid = (await client.until(of_type("message_started")))[-1]["messageId"]
    await client.until(lambda f: f.get("type") == "text" and f["seq"] >= 40)
    server.kill()
    await client.close()
    server.start()
    interrupted = newest(server, cid)
    assert interrupted["id"] == mid and interrupted["status"] == "interrupted"
    partial, stored_seq = interrupted["content"], interrupted["seq"]
    assert partial and "".join(WORDS).startswith(partial)

    client = await WsClient.connect(server.ws)
    await client.send({"type": "continue", "conversationId": cid, "messageId": mid})
    frames = await client.until(is_done)
    texts = [f for f in frames if f["type"] == "text"]
    assert texts[0]["seq"] == stored_seq + 1, "seq carries on from the stored value"
    assert partial + "".join(f["content"] for f in texts) == "".join(WORDS)
    assert frames[-1]["status"] == "complete" and frames[-1]["seq"] == texts[-1]["seq"]
    final = newest(server, cid)
    assert final["content"] == "".join(WORDS) and final["status"] == "complete"

    sent = fake.requests[-1]
    assert sent["messages"] == [
        {"role": "user", "content": "Say hello"},
        {"role": "assistant", "content": "Hello from the fake."},
        {"role": "user", "content": "Count"},
        {"role": "assistant", "content": partial},
    ]
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False
    await client.close()
