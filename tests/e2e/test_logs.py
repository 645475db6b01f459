"""Structured logs of a real server: every line is JSON, lines about a reply carry
its ids, and no line holds a prompt, a reply's text, a password or a provider key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_http_and_auth import bearer, make_user
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done
from tests.providers.fake_openai import Fail, FakeOpenAI, Reply
from tests.providers.http_server import serve_app

KEY = "sk-obs-4f9c2e7a1b8d6e3f0a5c"
PASSWORD = "pw-obs-Zanzibar-8d1e"
PROMPT_WORD = "quokkaObsidianTeapot"
REPLY_WORD = "marmaladeQuetzal"
SECRETS = (KEY, PASSWORD, PROMPT_WORD, REPLY_WORD)


@pytest.fixture
def fake_openai() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI(models=("fake-chat",), api_key=KEY)
    with serve_app(fake) as url:
        yield fake, url + "/v1"


def log_lines(server: Server) -> list[dict[str, Any]]:
    """Every line the server wrote, each parsed as JSON (failing on any other line)."""
    entries = []
    for line in server.log_path.read_text().splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line!r}")
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry)
        entries.append(entry)
    return entries


async def test_json_logs_carry_ids_and_never_secrets(
    make_server: MakeServer, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = fake_openai
    env = {
        "DURACHAT_AUTH": "on",
        "DURACHAT_LOG_FORMAT": "json",
        "DURACHAT_LOG_LEVEL": "debug",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": KEY,
        "DURACHAT_TITLE_MODEL": "demo/echo",
    }
    server = make_server(env, start=False)
    token = make_user(server.data_dir, "alice")
    server.start()
    user_id = server.request("GET", "/api/auth/me", token=token)[1]["user"]["id"]

    status, _ = server.request(
        "POST", "/api/auth/login", {"username": "alice", "password": PASSWORD}
    )
    assert status == 401

    client = await WsClient.connect(server.ws, headers=bearer(token))
    replies: dict[str, str] = {}  # messageId -> conversationId
    # the demo model echoes the prompt: its reply and title hold the word too
    created = await start(client, f"Tell me about the {PROMPT_WORD}", model="demo/echo")
    assert (await client.until(is_done))[-1]["status"] == "complete"
    replies[created["messageId"]] = created["conversationId"]

    fake.script(
        Reply(chunks=("Hello ", REPLY_WORD, " done.")),
        Fail(400, f"Invalid request, key {KEY}"),  # a server that quotes the key back
    )
    created = await start(client, f"Say {PROMPT_WORD}", model="openai/fake-chat")
    assert (await client.until(is_done))[-1]["status"] == "complete"
    replies[created["messageId"]] = created["conversationId"]
    created = await start(client, f"Again {PROMPT_WORD}", model="openai/fake-chat")
    assert (await client.until(is_done))[-1]["status"] == "error"
    replies[created["messageId"]] = created["conversationId"]
    await client.close()
    server.stop()  # every line is written

    entries = log_lines(server)
    for entry in entries:
        text = orjson.dumps(entry).decode()
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} was logged: {text}"

    ended = [e for e in entries if e.get("status") and e.get("messageId") in replies]
    assert {e["messageId"] for e in ended} == set(replies), "one end line per reply"
    for entry in ended:
        assert entry["conversationId"] == replies[entry["messageId"]]
        assert entry["userId"] == user_id
    statuses = sorted(e["status"] for e in ended)
    assert statuses == ["complete", "complete", "error"]
    failed = [e for e in entries if e.get("code") == "provider_error"]
    assert failed and failed[0]["provider"] == "openai" and failed[0]["messageId"] in replies
    assert any(e["message"].startswith("failed login") for e in entries)
