"""`storage` and `idle`: database writes per chunk and memory per idle socket.

- `storage`: N concurrent replies of C chunks, 5 ms apart, from the demo model
  (each its own user, auth on); the
  `/metrics` counters before and after give database write transactions per
  delivered chunk (`durachat_flush_transactions_total` over
  `durachat_text_events_total`), flushed reply writes per chunk and the mean
  flush time (`durachat_flush_seconds_total` per flush transaction);
- `idle`: resident memory (`VmRSS`) of `durachat serve` before and after opening
  1,000 (and, when the open-file limit allows, 10,000) sockets that got their
  `hello` and then stay idle; the delta divided by the sockets. The server runs
  with auth on and every socket authenticates with an API token (one user's).

It must never leave sockets open after it returns.
"""

from __future__ import annotations

import asyncio
import functools
import resource

from durachat.bench.context import Context
from durachat.bench.report import Row, ScenarioResult, fmt
from durachat.bench.servers import Server
from durachat.bench.streaming import RunResult, run_one, run_streams
from durachat.bench.wsclient import Client, close_clients, open_clients

FLUSH_CHUNKS = 5
"""`DURACHAT_FLUSH_CHUNKS` for the run (the default, set explicitly)."""
DELAY_MS = 5
"""Per-chunk delay of the demo model: replies last long enough for chunk-count flushes."""


async def storage(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("storage")
    replies, chunks = ctx.options.pick(200, 20), ctx.options.pick(200, 50)
    tokens = await ctx.servers.users.ensure(replies)
    server = ctx.servers.durachat({"DURACHAT_FLUSH_CHUNKS": str(FLUSH_CHUNKS)}, auth=True)
    try:
        await asyncio.to_thread(server.wait_healthy)
        ctx.step(f"storage: {replies} replies x {chunks} chunks")
        before = server.metrics()
        runner = functools.partial(run_streams, delay_ms=DELAY_MS)
        run: RunResult = await run_one(server, runner, 0, replies, chunks, tokens)
        await asyncio.sleep(0.3)  # the final flushes are committed before `done`; settle
        after = server.metrics()
    finally:
        ctx.servers.stop(server)
    if run.error:
        result.errors.append(run.error)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    events = delta("durachat_text_events_total")
    transactions = delta("durachat_flush_transactions_total")
    items = delta("durachat_flushed_items_total")
    flush_s = delta("durachat_flush_seconds_total")
    if events <= 0:
        result.errors.append("no text events counted in /metrics")
        return result
    per_chunk = transactions / events
    writes = delta("durachat_db_write_transactions_total")
    items_per_chunk = items / events
    flush_ms = flush_s / transactions * 1000 if transactions else 0.0
    result.figures |= {
        "replies": replies,
        "chunks": chunks,
        "flush_chunks": FLUSH_CHUNKS,
        "text_events": events,
        "flush_transactions": transactions,
        "flushed_items": items,
        "write_transactions": writes,
        "write_transactions_per_chunk": writes / events,
        "transactions_per_chunk": per_chunk,
        "flushed_items_per_chunk": items_per_chunk,
        "mean_flush_ms": flush_ms,
        "frames_per_s": run.frames_per_s,
    }
    bound = 1 / FLUSH_CHUNKS
    result.rows += [
        Row(
            f"flush transactions per chunk ({replies} x {chunks})",
            fmt(per_chunk, 4),
            bar=f"< {bound:g} (group commit)",
            met=per_chunk < bound,
        ),
        Row("reply writes per chunk", fmt(items_per_chunk, 3), bar=f"~ {bound:g}"),
        Row("all write transactions per chunk", fmt(writes / events, 4)),
        Row("mean flush transaction", fmt(flush_ms, 2, " ms")),
    ]
    return result


async def _idle_cost(server: Server, sockets: int, token: str) -> tuple[float, int]:
    """(bytes of RSS per idle socket, sockets opened)."""
    await asyncio.sleep(0.5)
    rss0 = server.rss_bytes()
    clients: list[Client] = []
    try:
        opening = open_clients(server.ws_url, sockets, batch=100, tokens=[token])
        clients = await asyncio.wait_for(opening, 120)
        await asyncio.sleep(1.0)  # let the server settle after the handshakes
        rss1 = server.rss_bytes()
    finally:
        await close_clients(clients)
    return (rss1 - rss0) / sockets, sockets


async def idle(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("idle")
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    counts = [ctx.options.pick(1000, 50)]
    if not ctx.options.quick:
        if fd_limit >= 10_000 + 500:
            counts.append(10_000)
        else:
            result.figures["skipped_10000"] = f"open-file limit {fd_limit}"
    result.figures["fd_limit"] = fd_limit
    (token,) = await ctx.servers.users.ensure(1)
    for sockets in counts:
        server = ctx.servers.durachat(auth=True)
        try:
            await asyncio.to_thread(server.wait_healthy)
            ctx.step(f"idle: {sockets} sockets")
            per_socket, _ = await _idle_cost(server, sockets, token)
        finally:
            ctx.servers.stop(server)
        kb = per_socket / 1024
        result.figures[f"kb_per_socket_{sockets}"] = kb
        result.rows.append(
            Row(f"RSS per idle socket ({sockets:,})", fmt(kb, 1, " KB"), bar="< 32 KB", met=kb < 32)
        )
    return result
