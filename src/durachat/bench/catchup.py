"""`catchup`: how long a long conversation takes to reach a client that subscribes.

It builds one conversation of 1,000 messages (500 turns; each prompt asks the demo
model for 10 padded chunks, about 1 KB per turn, so about 500 KB in all), then:

- full: a second socket sends `subscribe` without a position; the time from the
  send to the arrival (and orjson decoding) of the `catchup` frame, median of
  repeats, on a fresh socket each time;
- delta: `subscribe` with `afterMessageId` = the newest reply and `afterSeq` 10
  below its end; the time until its `done`, with the 10 missing `text` events.

It must never count building the conversation in the figures.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from durachat.bench.context import Context
from durachat.bench.report import Row, ScenarioResult, fmt
from durachat.bench.servers import Server
from durachat.bench.wsclient import Client, close_clients, open_client

CHUNKS_PER_REPLY = 10
PAD = 90
"""Dots per chunk: a reply of about 1 KB, so 500 turns make about 500 KB."""


async def _build(client: Client, turns: int) -> tuple[str, str, int]:
    """(conversation id, newest assistant message id, its seq) after `turns` turns."""
    prompt = f"!demo chunks={CHUNKS_PER_REPLY} pad={PAD} delay_ms=0"
    await client.send({"type": "start_chat", "prompt": prompt})
    created = await client.wait_for("conversation_created")
    conversation_id, message_id = created["conversationId"], created["messageId"]
    done = await client.wait_for("done", messageId=message_id)
    for _ in range(turns - 1):
        await client.send(
            {"type": "start_chat", "prompt": prompt, "conversationId": conversation_id}
        )
        started = await client.wait_for("message_started", conversationId=conversation_id)
        message_id = started["messageId"]
        done = await client.wait_for("done", messageId=message_id)
    return conversation_id, message_id, int(done["seq"])


async def _full(server: Server, conversation_id: str) -> tuple[float, dict[str, Any]]:
    client = await open_client(server.ws_url)
    try:
        sent = await client.send({"type": "subscribe", "conversationId": conversation_id})
        catchup = await client.wait_for("catchup")
        return catchup["_at"] - sent, catchup
    finally:
        await client.close()


async def _delta(server: Server, conversation_id: str, message_id: str, seq: int) -> float:
    client = await open_client(server.ws_url)
    try:
        frame = {
            "type": "subscribe",
            "conversationId": conversation_id,
            "afterMessageId": message_id,
            "afterSeq": seq - CHUNKS_PER_REPLY,
        }
        sent = await client.send(frame)
        done = await client.wait_for("done", messageId=message_id)
        if client.counts.get(message_id) != CHUNKS_PER_REPLY:
            raise RuntimeError(f"delta: {client.counts.get(message_id)} text events")
        if any(f["type"] == "catchup" for f in client._inbox):
            raise RuntimeError("delta: answered with a full catchup")
        return float(done["_at"] - sent)
    finally:
        await client.close()


async def catchup(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("catchup")
    turns = ctx.options.pick(500, 20)
    repeats = ctx.options.pick(20, 3)
    server = ctx.servers.durachat()
    try:
        await asyncio.to_thread(server.wait_healthy)
        ctx.step(f"catchup: building {turns * 2} messages")
        builder = await open_client(server.ws_url)
        try:
            conversation_id, message_id, seq = await asyncio.wait_for(
                _build(builder, turns), 30 + turns * 0.5
            )
        finally:
            await close_clients([builder])
        ctx.step(f"catchup: {repeats} full, {repeats} delta")
        full: list[float] = []
        delta: list[float] = []
        size = messages = 0
        for _ in range(repeats):
            seconds, frame = await asyncio.wait_for(_full(server, conversation_id), 30)
            full.append(seconds)
            messages = len(frame["messages"])
            size = sum(len(m.get("content") or "") for m in frame["messages"])
            delta.append(
                await asyncio.wait_for(_delta(server, conversation_id, message_id, seq), 30)
            )
    finally:
        ctx.servers.stop(server)
    if messages != turns * 2:
        result.errors.append(f"catchup had {messages} messages, want {turns * 2}")
    full_ms, delta_ms = statistics.median(full) * 1000, statistics.median(delta) * 1000
    result.figures |= {
        "messages": messages,
        "content_kb": size / 1000,
        "repeats": repeats,
        "full_median_ms": full_ms,
        "full_max_ms": max(full) * 1000,
        "delta_median_ms": delta_ms,
        "delta_max_ms": max(delta) * 1000,
    }
    label = f"{messages} messages, {size / 1000:,.0f} KB"
    result.rows += [
        Row(f"full catch-up ({label})", fmt(full_ms, 1, " ms"), bar="< 15 ms", met=full_ms < 15),
        Row(f"delta ({CHUNKS_PER_REPLY} events + done)", fmt(delta_ms, 2, " ms")),
    ]
    return result
