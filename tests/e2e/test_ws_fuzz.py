"""Hypothesis-generated WebSocket frames against a live server with accounts on.

Random JSON, known message types with wrong or missing fields, huge and odd
unicode strings, unknown types and plain garbage: the server never crashes and
never answers `internal`; every `error` frame carries a known code; the fuzzing
socket stays open (or is closed for an oversized frame with 1009); and another
user's reply, streaming meanwhile, arrives whole.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durachat.api.protocol import CLIENT_TYPES
from durachat.errors import ERROR_CODES
from tests.e2e.server import Server
from tests.e2e.test_http_and_auth import bearer, make_user
from tests.e2e.test_streaming import demo_text, start
from tests.e2e.wsclient import WsClient, is_done, of_type

MAX_FRAME_BYTES = 1_048_576  # the server's default DURACHAT_MAX_FRAME_BYTES
FIELDS = ["conversationId", "messageId", "afterMessageId", "afterSeq", "prompt", "model",
          "clientMessageId", "systemPrompt", "type"]  # fmt: skip
odd_text = (
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50)
    | st.sampled_from(["", "\u0000", "\ud7ff\ufeff\u202e", "../../etc/passwd", "' OR 1=1 --"])
    | st.builds(lambda n, c: c * n, st.integers(1_000, 150_000), st.sampled_from(["a", "🙂"]))
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | odd_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)
typed_frames = st.builds(
    lambda kind, fields: orjson.dumps({**fields, "type": kind}).decode(),
    st.sampled_from([*CLIENT_TYPES, "teleport", "", "PING"]),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5),
)
frames = st.lists(
    typed_frames | json_values.map(lambda v: orjson.dumps(v).decode()) | odd_text,
    min_size=1,
    max_size=6,
)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    server = Server(tmp_path_factory.mktemp("fuzz"), {"DURACHAT_AUTH": "on"})
    fuzzer, bystander = make_user(server.data_dir, "fuzzer"), make_user(server.data_dir, "by")
    server.start()
    yield server, fuzzer, bystander
    server.stop()


async def send_all(server: Server, token: str, texts: list[str]) -> None:
    client = await WsClient.connect(server.ws, headers=bearer(token), max_size=None)
    try:
        for text in texts:
            await client.connection.send(text)
        await client.send({"type": "ping"})
        answers = await client.until(of_type("pong"), timeout=30)
    except websockets.ConnectionClosed as closed:
        # only an oversized frame may end the socket: 1009, or a reset when the
        # server's close crossed frames still being sent
        assert max(len(t.encode()) for t in texts) > MAX_FRAME_BYTES, closed
        assert closed.rcvd is None or closed.rcvd.code == 1009, closed
        return
    finally:
        await client.close()
    for frame in answers:
        if frame["type"] == "error":
            assert frame["code"] in ERROR_CODES and frame["code"] != "internal", frame


def watch_bystander(server: Server, token: str, chunks: int, result: dict[str, Any]) -> None:
    async def follow() -> None:
        client = await WsClient.connect(server.ws, headers=bearer(token))
        await start(client, f"!demo chunks={chunks} delay_ms=20")
        result["frames"] = await client.until(is_done, timeout=120)
        await client.close()

    asyncio.run(follow())


def test_fuzzed_frames_get_coded_errors_and_spare_a_bystander(
    fuzz_server: tuple[Server, str, str],
) -> None:
    server, fuzzer, bystander_token = fuzz_server
    chunks, result = 150, dict[str, Any]()
    watcher = threading.Thread(
        target=watch_bystander, args=(server, bystander_token, chunks, result)
    )
    watcher.start()

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
    )
    @given(texts=frames)
    def one(texts: list[str]) -> None:
        asyncio.run(send_all(server, fuzzer, texts))

    one()
    watcher.join(120)
    texts = [f for f in result["frames"] if f["type"] == "text"]
    assert "".join(f["content"] for f in texts) == demo_text(chunks)
    assert result["frames"][-1]["status"] == "complete"
    assert server.process is not None and server.process.poll() is None
    assert "Traceback" not in server.log()
