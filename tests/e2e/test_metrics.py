"""`/metrics` of a real server: the counters move when replies stream, end, fail,
resume and overflow a slow socket.

The exposition is parsed with prometheus-client's own parser, so a malformed
line fails the test too.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_slow_consumer import open_stalled_socket
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done, of_type

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: Server, accept: str | None = None) -> tuple[Samples, str]:
    """Every sample of `/metrics` by (name, sorted labels), and the content type."""
    request = urllib.request.Request(server.http + "/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
        content_type = response.headers["Content-Type"]
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"sample {key} appears twice"
            samples[key] = sample.value
    return samples, content_type


def samples_of(server: Server) -> Samples:
    return scrape(server)[0]


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def eventually(server: Server, name: str, at_least: float, **labels: str) -> Samples:
    """Scrape until a sample reaches a value (what is recorded just after a frame
    is sent may lag it by a moment)."""
    deadline = time.monotonic() + 10
    while True:
        samples = samples_of(server)
        if value(samples, name, **labels) >= at_least or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.05)


def test_every_metric_is_exposed_from_the_start(server: Server) -> None:
    samples, content_type = scrape(server)
    assert content_type.startswith("text/plain")
    names = {name for name, _ in samples}
    for kept in (  # the benchmarks and older tests read these names
        "durachat_connected_sockets",
        "durachat_active_generations",
        "durachat_text_events_total",
        "durachat_db_write_transactions_total",
        "durachat_flush_transactions_total",
        "durachat_flushed_items_total",
        "durachat_flush_seconds_total",
    ):
        assert kept in names, kept
    for status in ("complete", "cancelled", "interrupted", "error"):
        assert ("durachat_replies_total", (("status", status),)) in samples
    for kind in ("delta", "full", "snapshot"):
        assert ("durachat_resumes_total", (("kind", kind),)) in samples
    for name in (
        "durachat_flush_duration_seconds_count",
        "durachat_resyncs_total",
        "durachat_dropped_frames_total",
    ):
        assert name in names, name
    assert server.metric("durachat_text_events_total") >= 0  # the simple reader still works


def test_openmetrics_when_the_scraper_asks(server: Server) -> None:
    _, content_type = scrape(server, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")


async def test_a_streamed_reply_moves_the_counters(server: Server) -> None:
    before = samples_of(server)
    client = await WsClient.connect(server.ws)
    assert moved(before, samples_of(server), "durachat_connected_sockets") >= 1
    created = await start(client, "!demo chunks=20")
    await client.until(of_type("text"))
    assert value(samples_of(server), "durachat_active_generations") >= 1
    frames = await client.until(is_done)
    assert frames[-1]["status"] == "complete"
    after = await eventually(
        server,
        "durachat_replies_total",
        value(before, "durachat_replies_total", status="complete") + 1,
        status="complete",
    )
    assert moved(before, after, "durachat_text_events_total") == 20
    assert moved(before, after, "durachat_replies_total", status="complete") == 1
    assert moved(before, after, "durachat_replies_total", status="error") == 0
    first_token = "durachat_provider_first_token_seconds_count"
    assert moved(before, after, first_token, provider="demo") == 1
    assert moved(before, after, "durachat_provider_first_token_seconds_sum", provider="demo") > 0
    assert moved(before, after, "durachat_flush_duration_seconds_count") >= 1
    assert moved(before, after, "durachat_flush_transactions_total") >= 1
    await client.close()

    conversation_id, message_id = created["conversationId"], created["messageId"]
    # a resume from seq 10 of the reply gets the delta; one without a position a
    # snapshot; one from a message the server does not know the full catch-up
    resumed = await WsClient.connect(
        server.ws,
        {"conversationId": conversation_id, "afterMessageId": message_id, "afterSeq": 10},
    )
    texts = [f for f in await resumed.until(is_done) if f["type"] == "text"]
    assert [f["seq"] for f in texts] == list(range(11, 21))
    await resumed.send({"type": "subscribe", "conversationId": conversation_id})
    await resumed.until(of_type("catchup"))
    await resumed.send(
        {
            "type": "subscribe",
            "conversationId": conversation_id,
            "afterMessageId": "not-a-message",
            "afterSeq": 3,
        }
    )
    await resumed.until(of_type("catchup"))
    resumes = samples_of(server)
    for kind in ("delta", "full", "snapshot"):
        assert moved(after, resumes, "durachat_resumes_total", kind=kind) == 1, kind
    await resumed.close()


async def test_connected_sockets_follow_sockets(server: Server) -> None:
    base = value(samples_of(server), "durachat_connected_sockets")
    clients = [await WsClient.connect(server.ws) for _ in range(3)]
    assert value(samples_of(server), "durachat_connected_sockets") == base + 3
    for client in clients:
        await client.close()
    deadline = time.monotonic() + 10
    while value(samples_of(server), "durachat_connected_sockets") != base:
        assert time.monotonic() < deadline, "closed sockets are still counted"
        await asyncio.sleep(0.05)


async def test_provider_errors_and_stops_are_counted(server: Server) -> None:
    before = samples_of(server)
    client = await WsClient.connect(server.ws)
    await start(client, "!demo chunks=20 fail_after=3")
    frames = await client.until(is_done)
    assert frames[-1]["status"] == "error"
    after = await eventually(
        server,
        "durachat_replies_total",
        value(before, "durachat_replies_total", status="error") + 1,
        status="error",
    )
    errors = "durachat_provider_errors_total"
    assert moved(before, after, errors, provider="demo", code="provider_error") == 1
    assert moved(before, after, "durachat_replies_total", status="error") == 1
    assert moved(before, after, "durachat_text_events_total") == 3

    created = await start(client, "!demo chunks=500 delay_ms=20")
    await client.until(of_type("text"))
    await client.send(
        {
            "type": "stop",
            "conversationId": created["conversationId"],
            "messageId": created["messageId"],
        }
    )
    assert (await client.until(is_done))[-1]["status"] == "cancelled"
    stopped = await eventually(
        server,
        "durachat_replies_total",
        value(after, "durachat_replies_total", status="cancelled") + 1,
        status="cancelled",
    )
    assert moved(after, stopped, "durachat_replies_total", status="cancelled") == 1
    assert moved(after, stopped, errors, provider="demo", code="provider_error") == 0
    await client.close()


async def test_a_slow_socket_overflow_is_counted(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_OUTBOX_FRAMES": "16", "DURACHAT_MAX_REPLY_CHARS": "10000000"})
    before = samples_of(server)
    producer = await WsClient.connect(server.ws)
    heavy = await start(producer, "!demo chunks=3000 delay_ms=1 pad=1000")
    stalled = await open_stalled_socket(server, heavy["conversationId"])
    after = await eventually(server, "durachat_resyncs_total", 1)
    assert moved(before, after, "durachat_resyncs_total") == 1, "one conversation: one resync"
    assert moved(before, after, "durachat_dropped_frames_total") >= 17  # a full outbox + 1
    await producer.send({"type": "stop", "conversationId": heavy["conversationId"]})
    await producer.until(is_done, timeout=30)
    stalled.transport.abort()
    await producer.close()
