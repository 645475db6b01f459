"""`resume-storm`: every client drops its socket mid-reply and resumes at once.

N clients (default 1,000; each its own user, auth on) each start a reply of C
stamped chunks (`!demo stamp=1`, paced by `delay_ms`). When every client holds at
least K chunks, all close their sockets at the same moment; after an offline gap
(so that every reply moves on without its client) all reconnect at the same
moment with `conversationId`, `afterMessageId` and `afterSeq` = the last seq they
applied (PROTOCOL.md section 5), and follow the reply to its `done`.

- caught up: a client is caught up when it holds every chunk the provider produced
  before the reconnect moment (the chunks carry their `CLOCK_MONOTONIC` production
  time); the figure is the time from that moment to the last such chunk's receipt
  (or to `hello`, when none was missing), the median and the slowest client;
- exact text: what each client applied before the drop, followed by what it got
  after it, must be seq 1..C with no gap or duplicate and equal the message's
  stored content (`GET /api/conversations/{id}/catchup`), or the run fails.

A full `catchup` answer instead of a delta is allowed by the protocol (the client
then starts from the snapshot) and counted. It must never wait unbounded.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import orjson

from durachat.bench.context import Context
from durachat.bench.latency import stamps
from durachat.bench.report import Row, ScenarioResult, fmt
from durachat.bench.servers import STEP_TIMEOUT_S, Server, http_get
from durachat.bench.wsclient import (
    Client,
    Resume,
    close_clients,
    demo_prompt,
    monotonic_ns,
    open_client,
    open_clients,
)


@dataclass
class Storm:
    """The sizes of one storm."""

    clients: int
    chunks: int
    delay_ms: int
    drop_after: int
    """Every client holds at least this many chunks when all drop."""
    offline_s: float


@dataclass
class Reply:
    """One client's reply across the drop: the old socket, then the resumed one."""

    token: str
    conversation_id: str
    message_id: str
    before: Client
    after: Client | None = None
    hello_ns: int = 0

    def text(self) -> str:
        """The text this client applied, in order, across both sockets."""
        after = self.after.recordings.get(self.message_id) if self.after else None
        if after is not None and after.snapshot is not None:
            return after.snapshot[1] + "".join(c for _, c in after.texts)
        parts = self.before.recordings.get(self.message_id)
        head = "".join(c for _, c in parts.texts) if parts else ""
        return head + ("".join(c for _, c in after.texts) if after else "")

    def caught_up_ns(self, reconnect_ns: int) -> int:
        """From the reconnect moment until every chunk produced before it was here."""
        latest = self.hello_ns
        after = self.after.recordings.get(self.message_id) if self.after else None
        for at, content in after.texts if after else []:
            if any(ns < reconnect_ns for _, ns in stamps(content)):
                latest = max(latest, at)
        return latest - reconnect_ns


async def _start(clients: list[Client], tokens: list[str], storm: Storm) -> list[Reply]:
    prompt = demo_prompt(storm.chunks, storm.delay_ms, stamp=True)

    async def one(client: Client, token: str) -> Reply:
        await client.send({"type": "start_chat", "prompt": prompt})
        created = await client.wait_for("conversation_created")
        return Reply(token, created["conversationId"], created["messageId"], client)

    return list(await asyncio.gather(*(one(c, t) for c, t in zip(clients, tokens, strict=True))))


async def _until_all_hold(replies: list[Reply], chunks: int) -> None:
    """Poll (every 10 ms: the readers must stay as lean as in `throughput`)."""
    while True:
        if all(r.before.counts.get(r.message_id, 0) >= chunks for r in replies):
            return
        await asyncio.sleep(0.01)


async def _resume(server: Server, reply: Reply) -> None:
    applied = reply.before.last_seq.get(reply.message_id, 0)
    resume = Resume(reply.conversation_id, reply.message_id, applied)
    reply.after = await open_client(server.ws_url, reply.token, record=True, resume=resume)
    reply.hello_ns = monotonic_ns()
    await reply.after.wait_for("done", messageId=reply.message_id)


def _stored_text(server: Server, reply: Reply) -> str:
    url = f"{server.base_url}/api/conversations/{reply.conversation_id}/catchup"
    _, body = http_get(url, headers={"Authorization": f"Bearer {reply.token}"})
    for message in orjson.loads(body)["messages"]:
        if message["id"] == reply.message_id:
            return str(message["content"])
    raise RuntimeError(f"{reply.message_id} is not in its conversation's catch-up")


def _check(server: Server, replies: list[Reply], chunks: int) -> None:
    """Each client's text is chunks 1..C in order and equals the stored content."""
    for index, reply in enumerate(replies):
        assert reply.after is not None
        problems = reply.before.problems + reply.after.problems
        if problems:
            raise RuntimeError(f"client {index}: {problems[:3]}")
        text = reply.text()
        numbers = [i for i, _ in stamps(text)]
        if numbers != list(range(1, chunks + 1)):
            raise RuntimeError(f"client {index}: chunks {numbers[:8]}... of {len(numbers)}")
        if text != _stored_text(server, reply):
            raise RuntimeError(f"client {index}: text differs from the stored content")


async def _storm(server: Server, tokens: list[str], storm: Storm) -> dict[str, float]:
    clients = await open_clients(server.ws_url, storm.clients, tokens=tokens, record=True)
    replies: list[Reply] = []
    try:
        replies = await asyncio.wait_for(_start(clients, tokens, storm), STEP_TIMEOUT_S)
        await asyncio.wait_for(_until_all_hold(replies, storm.drop_after), STEP_TIMEOUT_S * 2)
        await close_clients(clients)
        held = sum(r.before.last_seq.get(r.message_id, 0) for r in replies)
        await asyncio.sleep(storm.offline_s)
        reconnect_ns = monotonic_ns()
        started = time.perf_counter()
        bound = STEP_TIMEOUT_S + storm.chunks * storm.delay_ms / 1000 * 3
        await asyncio.wait_for(asyncio.gather(*(_resume(server, r) for r in replies)), bound)
        all_done_s = time.perf_counter() - started
        await asyncio.to_thread(_check, server, replies, storm.chunks)
    finally:
        await close_clients([r.after for r in replies if r.after is not None] + clients)
    caught = sorted(r.caught_up_ns(reconnect_ns) / 1e6 for r in replies)
    hello = max(r.hello_ns for r in replies) - reconnect_ns
    full = sum(1 for r in replies if r.after and r.after.recordings[r.message_id].snapshot)
    replayed = sum(
        1
        for r in replies
        for _, content in (r.after.recordings[r.message_id].texts if r.after else [])
        for _, ns in stamps(content)
        if ns < reconnect_ns
    )
    return {
        "chunks_held_at_drop": held,
        "chunks_missed_replayed": replayed,
        "full_catchups": full,
        "all_reconnected_ms": hello / 1e6,
        "caught_up_median_ms": statistics.median(caught),
        "caught_up_max_ms": caught[-1],
        "all_done_s": all_done_s,
        "exact_text_clients": len(replies),
    }


async def resume_storm(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("resume-storm")
    quick = ctx.options.quick
    count = ctx.options.client_count
    if quick:
        storm = Storm(count, chunks=40, delay_ms=20, drop_after=8, offline_s=0.2)
    else:
        storm = Storm(count, chunks=120, delay_ms=50, drop_after=20, offline_s=0.5)
    tokens = await ctx.servers.users.ensure(count)
    server = ctx.servers.durachat(auth=True)
    try:
        await asyncio.to_thread(server.wait_healthy)
        ctx.step(f"resume-storm: {count} clients drop and resume")
        f = await _storm(server, tokens, storm)
    finally:
        ctx.servers.stop(server)
    result.figures |= f | {
        "clients": storm.clients,
        "chunks": storm.chunks,
        "delay_ms": storm.delay_ms,
        "drop_after": storm.drop_after,
        "offline_s": storm.offline_s,
    }
    result.rows += [
        Row(f"all {count} reconnected (hello)", fmt(f["all_reconnected_ms"], 0, " ms")),
        Row("all caught up (slowest client)", fmt(f["caught_up_max_ms"], 0, " ms")),
        Row("caught up (median client)", fmt(f["caught_up_median_ms"], 0, " ms")),
        Row("missed chunks replayed", fmt(f["chunks_missed_replayed"])),
        Row("full catch-ups instead of a delta", fmt(f["full_catchups"])),
        Row("exact text (no gap, no duplicate)", f"{f['exact_text_clients']:.0f}/{count}"),
    ]
    return result
