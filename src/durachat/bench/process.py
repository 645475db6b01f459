"""`startup` and `firsttoken`: the cost of the process and of the first token.

- `startup`: spawn `durachat serve` on a fresh data directory, time until
  `GET /healthz` answers 200, read idle `VmRSS`, then stream one reply through the
  client library (`durachat.client.DuraChatClient`) and check its text;
- `firsttoken`: the demo model waits `delay_ms` before its first chunk; the
  client-observed time from sending `start_chat` to the first `text` frame, minus
  that delay, is the server's overhead. Measured for one chat at a time and for 25
  chats started at the same moment (25 users, DuraChat with auth on), on DuraChat
  and on the relay.

It must never count the provider's own delay as overhead, nor wait unbounded.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from durachat.bench.context import Context
from durachat.bench.report import Row, ScenarioResult, fmt
from durachat.bench.servers import STEP_TIMEOUT_S, Server
from durachat.bench.wsclient import Client, close_clients, demo_prompt, open_clients
from durachat.client import DuraChatClient

MB = 1024 * 1024


async def _library_reply(server: Server, chunks: int) -> float:
    """Seconds for one reply through the client library; raises if its text is wrong."""
    started = time.perf_counter()
    async with DuraChatClient(server.base_url, open_timeout=STEP_TIMEOUT_S) as client:
        stream = client.chat(demo_prompt(chunks))
        done = await asyncio.wait_for(stream.result(), STEP_TIMEOUT_S)
    expected = "".join(f"w{i} " for i in range(1, chunks + 1))
    if done.status != "complete" or done.content != expected:
        raise RuntimeError(f"library reply: status {done.status}, {len(done.content)} chars")
    return time.perf_counter() - started


async def startup(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("startup")
    starts: list[float] = []
    idle_rss: list[int] = []
    replies: list[float] = []
    repeats = ctx.options.pick(3, 1)
    for index in range(repeats):
        ctx.step(f"startup: spawn {index + 1}/{repeats}")
        server = ctx.servers.durachat()
        try:
            starts.append(await asyncio.to_thread(server.wait_healthy))
            await asyncio.sleep(0.5)  # let start-up work settle before reading memory
            idle_rss.append(server.rss_bytes())
            replies.append(await _library_reply(server, 20))
        finally:
            ctx.servers.stop(server)
    start_s = statistics.median(starts)
    rss_mb = statistics.median(idle_rss) / MB
    result.figures |= {
        "repeats": repeats,
        "healthz_s": start_s,
        "healthz_s_all": ", ".join(f"{s:.3f}" for s in starts),
        "idle_rss_mb": rss_mb,
        "library_first_reply_s": statistics.median(replies),
    }
    result.rows += [
        Row("spawn to /healthz 200", fmt(start_s, 2, " s"), bar="< 2 s", met=start_s < 2),
        Row("idle RSS", fmt(rss_mb, 1, " MB"), bar="< 100 MB", met=rss_mb < 100),
        Row("one reply, client library", fmt(statistics.median(replies) * 1000, 1, " ms")),
    ]
    return result


async def _overheads(clients: list[Client], delay_ms: int) -> list[float]:
    """Start one reply per client at the same moment; each first-token overhead (s)."""

    async def one(client: Client) -> float:
        sent = await client.send({"type": "start_chat", "prompt": demo_prompt(3, delay_ms)})
        created = await client.wait_for("conversation_created")
        await client.wait_for("done", messageId=created["messageId"])
        return client.first_text_at[created["messageId"]] - sent - delay_ms / 1000

    return list(await asyncio.wait_for(asyncio.gather(*(one(c) for c in clients)), 60))


async def _measure(
    server: Server, delay_ms: int, singles: int, bursts: int, tokens: list[str]
) -> dict[str, float]:
    single: list[float] = []
    clients = await open_clients(server.ws_url, 1, tokens=tokens)
    try:
        for _ in range(singles):
            single += await _overheads(clients, delay_ms)
    finally:
        await close_clients(clients)
    worst: list[float] = []
    clients = await open_clients(server.ws_url, 25, tokens=tokens)
    try:
        for _ in range(bursts):
            worst.append(max(await _overheads(clients, delay_ms)))
    finally:
        await close_clients(clients)
    return {
        "single_median_ms": statistics.median(single) * 1000,
        "single_max_ms": max(single) * 1000,
        "burst25_worst_median_ms": statistics.median(worst) * 1000,
        "burst25_worst_max_ms": max(worst) * 1000,
    }


async def firsttoken(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("firsttoken")
    delay_ms = ctx.options.pick(50, 20)
    singles, bursts = ctx.options.pick(20, 3), ctx.options.pick(5, 1)
    figures: dict[str, dict[str, float]] = {}
    tokens = await ctx.servers.users.ensure(25)
    for name in ("relay", "durachat"):
        ctx.step(f"firsttoken: {name}")
        server = ctx.servers.relay() if name == "relay" else ctx.servers.durachat(auth=True)
        try:
            await asyncio.to_thread(server.wait_healthy)
            figures[name] = await _measure(server, delay_ms, singles, bursts, tokens)
        finally:
            ctx.servers.stop(server)
    result.figures |= {"delay_ms": delay_ms, "singles": singles, "bursts": bursts}
    for name, values in figures.items():
        result.figures |= {f"{name}_{key}": value for key, value in values.items()}
    dura, relay = figures["durachat"], figures["relay"]
    single, burst = dura["single_median_ms"], dura["burst25_worst_median_ms"]
    result.rows += [
        Row(
            "overhead, 1 chat (median)",
            fmt(single, 2, " ms"),
            fmt(relay["single_median_ms"], 2, " ms"),
            bar="< 5 ms",
            met=single < 5,
        ),
        Row(
            "overhead, worst of 25 at once",
            fmt(burst, 2, " ms"),
            fmt(relay["burst25_worst_median_ms"], 2, " ms"),
            bar="< 50 ms",
            met=burst < 50,
        ),
    ]
    return result
