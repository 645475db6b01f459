"""The SSE stream without a server: event format, positions, keep-alive, endings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from durachat import events
from durachat.api.sse import EventStream, format_event, parse_position
from durachat.bus.memory import MemoryBus
from durachat.bus.outbox import Outbox
from durachat.domain import Status
from durachat.errors import BadRequest


def stream(limit: int = 100, keepalive_s: float = 10.0) -> EventStream:
    bus = MemoryBus(60)
    outbox = Outbox("u", limit)
    bus.attach(outbox)
    bus.subscribe(outbox, "c")
    return EventStream(bus, outbox, "c", keepalive_s)


async def chunks(body: AsyncIterator[bytes], count: int) -> list[bytes]:
    async with asyncio.timeout(2):
        return [await anext(body) for _ in range(count)]


def test_only_text_and_done_carry_a_position() -> None:
    text = events.text("c", "m", 7, "hi\nthere")
    assert format_event(orjson.loads(text.data), text.data) == (
        f"event: text\nid: m:7\ndata: {text.data}\n\n"
    )
    done = events.done("c", "m", 7, Status.COMPLETE, None)
    assert format_event(orjson.loads(done.data), done.data).startswith("event: done\nid: m:7\n")
    resync = events.resync("c")
    assert format_event(orjson.loads(resync.data), resync.data) == (
        f"event: resync\ndata: {resync.data}\n\n"
    )


def test_positions() -> None:
    assert parse_position(None) == (None, None)
    assert parse_position("") == (None, None)
    assert parse_position("01abc:41") == ("01abc", 41)
    for bad in ["41", "m:", ":4", "m:-4", "m:x", "m:\u0661", "m:" + "9" * 19, "m" * 201 + ":1"]:
        with pytest.raises(BadRequest):
            parse_position(bad)


async def test_idle_streams_send_keep_alive_comments_and_then_events() -> None:
    sse = stream(keepalive_s=0.02)
    body = sse.events()
    assert await chunks(body, 2) == [b": keep-alive\n\n"] * 2
    sse.bus.publish(events.text("c", "m", 1, "x"))
    (chunk,) = await chunks(body, 1)
    assert chunk.startswith(b"event: text\nid: m:1\n")


async def test_a_chat_stream_ends_after_its_reply_and_skips_other_conversations() -> None:
    sse = stream()
    sse.reply_id = "m"
    sse.bus.publish_user("u", events.conversation_deleted("other"))
    sse.bus.publish(events.text("c", "m", 1, "x"))
    sse.bus.publish(events.done("c", "m", 1, Status.COMPLETE, None))
    sse.bus.publish(events.text("c", "later", 1, "never sent"))
    sent = b"".join([chunk async for chunk in sse.events()])
    assert sent.count(b"event: ") == 2 and sent.endswith(b'"usage":null}\n\n')


async def test_resync_is_sent_and_ends_the_stream() -> None:
    sse = stream(limit=3)
    for seq in range(1, 6):  # nobody reads: the outbox overflows, later frames are dropped
        sse.bus.publish(events.text("c", "m", seq, "x"))
    sse.bus.publish_user("u", events.conversation_deleted("c"))
    sent = [chunk async for chunk in sse.events()]
    assert sent == [format_event({"type": "resync"}, events.resync("c").data).encode()]


async def test_shutdown_ends_a_stream_after_what_is_queued() -> None:
    sse = stream()

    async def respond() -> list[bytes]:  # what the response does with the stream
        try:
            return [chunk async for chunk in sse.events()]
        finally:
            sse.close()

    response = asyncio.create_task(respond())
    await asyncio.sleep(0)
    sse.bus.publish(events.text("c", "m", 1, "x"))
    async with asyncio.timeout(1):
        await sse.going_away()
    sent = await response
    assert len(sent) == 1 and sent[0].startswith(b"event: text\nid: m:1\n")
    assert sse.bus.total_sockets == 0
