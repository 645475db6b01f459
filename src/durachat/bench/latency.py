"""`latency`: time from a provider chunk to its receipt by the client, under load.

The load is a fraction of DuraChat's saturation: `throughput`'s median when it ran
earlier in the same run with the same client count, else a short saturation run
here (one round of `throughput`'s streams). N clients (each its own user, as in
`throughput`) stream replies paced by the demo model's `delay_ms` so that together
they offer that many chunks per second; their starts are spread over a ramp so the
load is even. Each chunk carries its production time (`!demo stamp=1`: the
`CLOCK_MONOTONIC` ns at which the provider yielded it, a clock every process of
the machine shares); the client notes the `CLOCK_MONOTONIC` time `recv` returned
it. Only chunks produced inside a window after the ramp count (the burst of
conversation creations is not the steady state).

Every load runs on DuraChat and on the relay with the same offered chunks/s, the
order alternating. The SPEC section 9 bar is the p99 at half the saturation. The
load generator's garbage collector is off during each paced run. The demo model
paces itself (it sleeps between chunks), so a server that cannot keep up delivers
fewer chunks than offered rather than queueing them: compare `delivered_per_s`
with `offered_per_s`. It must never count a chunk produced outside the window,
nor wait unbounded.
"""

from __future__ import annotations

import asyncio
import gc
import math
import re
from dataclasses import asdict, dataclass

from durachat.bench.context import Context
from durachat.bench.report import Row, ScenarioResult, fmt
from durachat.bench.servers import Server
from durachat.bench.streaming import RunResult, check_replies, run_one, run_streams
from durachat.bench.wsclient import Client, close_clients, demo_prompt, monotonic_ns, open_clients

BAR_FRACTION = 0.5
BAR_P99_MS = 10.0
_STAMP = re.compile(r"w(\d+)@(\d+) ")


@dataclass
class Level:
    """One load on one server: what was offered and the latency percentiles."""

    server: str
    fraction: float
    offered_per_s: float
    delay_ms: int
    chunks: int
    delivered_per_s: float = 0.0
    samples: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    error: str | None = None


def percentile(ordered: list[int], q: float) -> int:
    """The nearest-rank `q` percentile (0-100) of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def stamps(content: str) -> list[tuple[int, int]]:
    """(chunk index, production ns) of each stamped chunk in a `text` content."""
    return [(int(i), int(ns)) for i, ns in _STAMP.findall(content)]


def latencies(clients: list[Client], start_ns: int, end_ns: int) -> list[int]:
    """Receipt minus production (ns) of every chunk produced in [start, end)."""
    found: list[int] = []
    for client in clients:
        for recording in client.recordings.values():
            for at, content in recording.texts:
                for _, ns in stamps(content):
                    if start_ns <= ns < end_ns:
                        found.append(at - ns)
    return found


def check_text(clients: list[Client], chunks: int) -> None:
    """Every reply is `w1@.. w2@.. ... wC@..` in order; raise otherwise."""
    for index, client in enumerate(clients):
        for message_id, recording in client.recordings.items():
            text = "".join(content for _, content in recording.texts)
            numbers = [i for i, _ in stamps(text)]
            if numbers != list(range(1, chunks + 1)):
                raise RuntimeError(f"client {index} {message_id}: chunks {numbers[:5]}...")


async def _stream_paced(
    clients: list[Client], level: Level, phases: tuple[float, float, float]
) -> tuple[list[int], list[str]]:
    """Start the replies spread over the ramp; (latencies in the window, message ids)."""
    ramp_s, settle_s, window_s = phases
    prompt = demo_prompt(level.chunks, level.delay_ms, stamp=True)
    count = len(clients)

    async def one(index: int, client: Client) -> str:
        await asyncio.sleep(index * ramp_s / count)
        await client.send({"type": "start_chat", "prompt": prompt})
        created = await client.wait_for("conversation_created")
        await client.wait_for("done", messageId=created["messageId"])
        return str(created["messageId"])

    t0 = monotonic_ns()
    message_ids = await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))
    start = t0 + int((ramp_s + settle_s) * 1e9)
    return latencies(clients, start, start + int(window_s * 1e9)), list(message_ids)


async def measure_level(
    server: Server, level: Level, count: int, tokens: list[str], phases: tuple[float, float, float]
) -> None:
    """Fill in `level` from one paced run on fresh sockets; errors go to `level.error`.

    `phases`: (ramp over which the streams start, settle, measured window) in seconds.
    """
    ramp_s, _, window_s = phases
    clients: list[Client] = []
    timeout = 30 + ramp_s + level.chunks * level.delay_ms / 1000 * 3
    try:
        clients = await open_clients(server.ws_url, count, tokens=tokens, record=True)
        gc.collect()
        gc.disable()  # a collection in the load generator would show as latency
        try:
            paced = _stream_paced(clients, level, phases)
            found, message_ids = await asyncio.wait_for(paced, timeout)
        finally:
            gc.enable()
        check_replies(clients, message_ids, level.chunks)
        check_text(clients, level.chunks)
        if not found:
            raise RuntimeError("no chunk was produced inside the window")
        found.sort()
        level.samples = len(found)
        level.delivered_per_s = len(found) / window_s
        for q, attr in ((50, "p50_ms"), (95, "p95_ms"), (99, "p99_ms"), (100, "max_ms")):
            setattr(level, attr, percentile(found, q) / 1e6)
    except TimeoutError:
        level.error = f"timeout after {timeout:.0f}s"
    except Exception as exc:
        level.error = f"{type(exc).__name__}: {exc}"
    finally:
        await close_clients(clients)


async def _saturation(ctx: Context, server: Server, count: int, tokens: list[str]) -> float:
    key = f"durachat_saturation_{count}"
    if key in ctx.measured:
        return ctx.measured[key]
    ctx.step(f"latency: saturation with {count} clients")
    chunks = ctx.options.pick(50, 20)
    run: RunResult = await run_one(server, run_streams, 0, count, chunks, tokens)
    if run.error:
        raise RuntimeError(f"saturation run: {run.error}")
    ctx.measured[key] = run.frames_per_s
    return run.frames_per_s


def plan(fraction: float, saturation: float, count: int, stream_s: float) -> tuple[int, int]:
    """(delay_ms, chunks) so `count` streams offer about `fraction * saturation`/s."""
    per_client = fraction * saturation / count
    delay_ms = max(1, round(1000 / per_client))
    return delay_ms, max(2, math.ceil(stream_s * 1000 / delay_ms))


async def latency(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("latency")
    count = ctx.options.client_count
    fractions = (0.25, 0.5) if ctx.options.quick else (0.1, 0.25, 0.5, 0.75)
    quick = ctx.options.quick
    ramp_s, settle_s, window_s = (0.3, 0.2, 0.7) if quick else (1.0, 0.5, 3.0)
    tokens = await ctx.servers.users.ensure(count)
    servers = {"relay": ctx.servers.relay(), "durachat": ctx.servers.durachat(auth=True)}
    levels: list[Level] = []
    try:
        for server in servers.values():
            await asyncio.to_thread(server.wait_healthy)
        saturation = await _saturation(ctx, servers["durachat"], count, tokens)
        for index, fraction in enumerate(fractions):
            order = ("relay", "durachat") if index % 2 == 0 else ("durachat", "relay")
            for name in order:
                ctx.step(f"latency: {fraction:.0%} load, {name}")
                stream_s = ramp_s + settle_s + window_s
                delay_ms, chunks = plan(fraction, saturation, count, stream_s)
                offered = count * 1000 / delay_ms
                level = Level(name, fraction, offered, delay_ms, chunks)
                await measure_level(
                    servers[name], level, count, tokens, (ramp_s, settle_s, window_s)
                )
                levels.append(level)
                if level.error:
                    result.errors.append(f"{name} at {fraction:.0%}: {level.error}")
    finally:
        for server in servers.values():
            ctx.servers.stop(server)
    result.runs = [asdict(level) for level in levels]
    result.figures |= {
        "clients": count,
        "saturation_per_s": saturation,
        "ramp_s": ramp_s,
        "settle_s": settle_s,
        "window_s": window_s,
    }
    _rows(result, levels)
    return result


def _at(levels: list[Level], server: str, fraction: float) -> Level | None:
    for level in levels:
        if level.server == server and level.fraction == fraction and not level.error:
            return level
    return None


def _rows(result: ScenarioResult, levels: list[Level]) -> None:
    dura, relay = _at(levels, "durachat", BAR_FRACTION), _at(levels, "relay", BAR_FRACTION)
    if dura is None:
        return
    offered = f"{dura.offered_per_s:,.0f}/s"
    for attr in ("p50_ms", "p95_ms", "p99_ms"):
        value: float = getattr(dura, attr)
        result.figures[f"durachat_{attr}"] = value
        relay_value: float | None = getattr(relay, attr) if relay is not None else None
        result.figures[f"relay_{attr}"] = relay_value
        is_bar = attr == "p99_ms"
        result.rows.append(
            Row(
                f"{attr[:3]} chunk to client at 50% load ({offered})",
                fmt(value, 2, " ms"),
                fmt(relay_value, 2, " ms") if relay_value is not None else "n/a",
                bar=f"< {BAR_P99_MS:g} ms" if is_bar else "",
                met=value < BAR_P99_MS if is_bar else None,
            )
        )
    others = sorted({lv.fraction for lv in levels if lv.fraction != BAR_FRACTION})
    for fraction in others:
        d, r = _at(levels, "durachat", fraction), _at(levels, "relay", fraction)
        if d is not None:
            result.rows.append(
                Row(
                    f"p99 at {fraction:.0%} load ({d.offered_per_s:,.0f}/s)",
                    fmt(d.p99_ms, 2, " ms"),
                    fmt(r.p99_ms, 2, " ms") if r is not None else "n/a",
                )
            )
