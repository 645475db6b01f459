"""Database transactions per streamed chunk: at most 1/FLUSH_CHUNKS, fewer under load."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done

FLUSH_CHUNKS = 5


def counters(server: Server) -> tuple[float, float]:
    return (
        server.metric("durachat_flush_transactions_total"),
        server.metric("durachat_text_events_total"),
    )


async def stream_replies(server: Server, replies: int, chunks: int) -> float:
    """Stream `replies` replies at once; return flush transactions per text event."""
    transactions_before, texts_before = counters(server)
    clients = [await WsClient.connect(server.ws) for _ in range(replies)]
    for client in clients:
        await start(client, f"!demo chunks={chunks} delay_ms=3")
    await asyncio.gather(*(client.until(is_done, timeout=60) for client in clients))
    for client in clients:
        await client.close()
    transactions_after, texts_after = counters(server)
    assert texts_after - texts_before == replies * chunks
    return (transactions_after - transactions_before) / (texts_after - texts_before)


async def test_transactions_per_chunk_stay_within_the_flush_policy(
    make_server: MakeServer,
) -> None:
    server = make_server(
        {
            "DURACHAT_FLUSH_CHUNKS": str(FLUSH_CHUNKS),
            "DURACHAT_FLUSH_MS": "60000",
            "DURACHAT_USER_CONCURRENT_REPLIES": "100",
        }
    )
    single = await stream_replies(server, replies=1, chunks=200)
    # 200 chunks: 40 count-triggered flushes; the final write rides the last of them.
    assert single <= 1 / FLUSH_CHUNKS + 1 / 200
    many = await stream_replies(server, replies=40, chunks=200)
    assert many < single / 3, f"group commit should share transactions: {many} vs {single}"
