"""`throughput` and `fanout`: DuraChat against the bare relay, alternating rounds.

- `throughput`: N sockets (default 1,000), each its own user with an API token
  (DuraChat runs with auth on), each send one `start_chat` at the same moment and
  get their own reply of C chunks from the fast demo model
  (`!demo chunks=C delay_ms=0`); the figure is provider chunks delivered per
  second (only `text` frames count, so merging deltas earns nothing). DuraChat's
  median is kept in the run's context as the saturation `latency` loads against;
- `fanout`: 200 sockets subscribe to one conversation, socket 0 starts a reply of
  C chunks in it, every socket receives it; the figure is server CPU seconds per
  1,000 delivered frames (from `/proc/<pid>/stat`).

Both servers run as subprocesses; the load generator is this process. A target
may be several DuraChat nodes (`multinode`): the clients are split between them
in equal contiguous groups and the server CPU is their sum. Each round
runs both servers, the order alternating, and the medians over rounds are
compared. Every client must get seq 1..C of its reply with no gap or duplicate, or
the round fails. It must never change the servers it measures.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field

from durachat.bench.context import Context
from durachat.bench.report import Row, ScenarioResult, fmt
from durachat.bench.servers import STEP_TIMEOUT_S, Server
from durachat.bench.wsclient import Client, close_clients, demo_prompt, open_clients

SERVERS = ("relay", "durachat")

Target = Server | tuple[Server, ...]
"""One server, or nodes that serve together (their clients split between them)."""


def members(target: Target) -> tuple[Server, ...]:
    return target if isinstance(target, tuple) else (target,)


@dataclass
class RunResult:
    """One scenario run against one server."""

    server: str
    round: int
    frames: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    other_frames: int = 0
    """Non-text frames received in the window (`conversation_updated` to every socket...)."""
    error: str | None = None

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def cpu_s_per_1k(self) -> float:
        return self.server_cpu_s / self.frames * 1000 if self.frames else 0.0


@dataclass
class Window:
    """The measured interval: wall clock, server CPU and this process's CPU."""

    server: Target
    t0: float = field(default_factory=time.perf_counter)
    server_cpu0: float = 0.0
    client_cpu0: float = field(default_factory=time.process_time)

    def __post_init__(self) -> None:
        self.server_cpu0 = self.cpu_seconds()

    def cpu_seconds(self) -> float:
        return sum(server.cpu_seconds() for server in members(self.server))

    def close(self, result: RunResult, t_end: float) -> None:
        result.server_cpu_s = self.cpu_seconds() - self.server_cpu0
        result.client_cpu_s = time.process_time() - self.client_cpu0
        result.seconds = t_end - self.t0


def check_replies(clients: list[Client], message_ids: list[str], chunks: int) -> int:
    """Text frames of the given replies received; raise on a gap, duplicate or loss."""
    total = 0
    for index, (client, message_id) in enumerate(zip(clients, message_ids, strict=True)):
        got = client.counts.get(message_id, 0)
        last = client.last_seq.get(message_id, 0)
        if client.problems:
            raise RuntimeError(f"client {index}: {client.problems[:3]}")
        if got != chunks or last != chunks:
            raise RuntimeError(f"client {index}: {got} text frames, last seq {last}, want {chunks}")
        total += got
    return total


async def run_streams(
    server: Target, clients: list[Client], chunks: int, r: RunResult, delay_ms: int = 0
) -> None:
    async def one(client: Client) -> tuple[str, float]:
        await client.send({"type": "start_chat", "prompt": demo_prompt(chunks, delay_ms)})
        created = await client.wait_for("conversation_created")
        done = await client.wait_for("done", messageId=created["messageId"])
        return created["messageId"], done["_at"]

    others = sum(c.other_frames for c in clients)
    window = Window(server)
    outcomes = await asyncio.gather(*(one(c) for c in clients))
    window.close(r, max(at for _, at in outcomes))
    r.other_frames = sum(c.other_frames for c in clients) - others
    r.frames = check_replies(clients, [m for m, _ in outcomes], chunks)


async def run_fanout(server: Target, clients: list[Client], chunks: int, r: RunResult) -> None:
    first, rest = clients[0], clients[1:]
    await first.send({"type": "start_chat", "prompt": demo_prompt(1)})
    created = await asyncio.wait_for(first.wait_for("conversation_created"), STEP_TIMEOUT_S)
    conversation_id = created["conversationId"]
    await asyncio.wait_for(first.wait_for("done", messageId=created["messageId"]), STEP_TIMEOUT_S)

    async def subscribe(client: Client) -> None:
        await client.send({"type": "subscribe", "conversationId": conversation_id})
        await client.wait_for("catchup")

    await asyncio.wait_for(asyncio.gather(*(subscribe(c) for c in rest)), STEP_TIMEOUT_S)
    await asyncio.sleep(0.2)  # let the set-up frames to the other sockets drain

    async def receive(client: Client) -> tuple[str, float]:
        started = await client.wait_for("message_started", conversationId=conversation_id)
        done = await client.wait_for("done", messageId=started["messageId"])
        return started["messageId"], done["_at"]

    others = sum(c.other_frames for c in clients)
    window = Window(server)
    receivers = [asyncio.create_task(receive(c)) for c in clients]
    prompt = demo_prompt(chunks)
    await first.send({"type": "start_chat", "prompt": prompt, "conversationId": conversation_id})
    outcomes = await asyncio.gather(*receivers)
    window.close(r, max(at for _, at in outcomes))
    r.other_frames = sum(c.other_frames for c in clients) - others
    r.frames = check_replies(clients, [m for m, _ in outcomes], chunks)


Runner = Callable[[Target, list[Client], int, RunResult], Awaitable[None]]


async def open_split(
    target: Target, sockets: int, tokens: Sequence[str] | None = None
) -> list[Client]:
    """`sockets` clients (client i with `tokens[i]`), in equal groups over the members."""
    nodes = members(target)
    bounds = [sockets * k // len(nodes) for k in range(len(nodes) + 1)]
    clients: list[Client] = []
    try:
        for node, lo, hi in zip(nodes, bounds, bounds[1:], strict=False):
            group = list(tokens[lo:hi]) if tokens else None
            clients += await open_clients(node.ws_url, hi - lo, tokens=group)
    except BaseException:
        await close_clients(clients)
        raise
    return clients


async def run_one(
    server: Target,
    runner: Runner,
    round_no: int,
    sockets: int,
    chunks: int,
    tokens: list[str] | None = None,
) -> RunResult:
    """One run on fresh sockets (client i with `tokens[i]` when given); never raises."""
    result = RunResult(members(server)[0].name, round_no)
    timeout = 30 + sockets * chunks / 5_000
    try:
        clients = await open_split(server, sockets, tokens)
    except Exception as exc:
        result.error = f"connect: {type(exc).__name__}: {exc}"
        return result
    try:
        await asyncio.wait_for(runner(server, clients, chunks, result), timeout)
    except TimeoutError:
        received = sum(sum(c.counts.values()) for c in clients)
        result.error = f"timeout after {timeout:.0f}s ({received} text frames received)"
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        await close_clients(clients)
    for node in members(server):
        if node.process.poll() is not None:
            result.error = f"{node.name} on port {node.port} exited: {node.log_tail()}"
    return result


def _median(runs: list[RunResult], server: str, attr: str) -> float | None:
    values = [getattr(r, attr) for r in runs if r.server == server and not r.error]
    return statistics.median(values) if values else None


async def compare(
    ctx: Context,
    name: str,
    runner: Runner,
    sockets: int,
    chunks: int,
    per_user: bool = False,
    nodes: tuple[Server, ...] = (),
    tokens: list[str] | None = None,
) -> tuple[ScenarioResult, dict[str, float | None]]:
    """Run `runner` on both servers for the configured rounds; medians per server.

    With `per_user`, DuraChat runs with auth on and each socket is its own user.
    With `nodes` (started, users and `tokens` in their database), they are
    DuraChat; the caller stops them.
    """
    result = ScenarioResult(name)
    if per_user and tokens is None:
        tokens = await ctx.servers.users.ensure(sockets)
    relay = ctx.servers.relay()
    dura: Target = nodes or ctx.servers.durachat(auth=per_user)
    servers: dict[str, Target] = {"relay": relay, "durachat": dura}
    for target in servers.values():
        for server in members(target):
            server.wait_healthy()
    runs: list[RunResult] = []
    rounds = ctx.options.round_count
    for round_no in range(rounds):
        order = SERVERS if round_no % 2 == 0 else SERVERS[::-1]
        for server_name in order:
            ctx.step(f"{name}: round {round_no + 1}/{rounds}, {server_name}")
            run = await run_one(servers[server_name], runner, round_no, sockets, chunks, tokens)
            runs.append(run)
            if run.error:
                result.errors.append(f"{server_name} round {round_no}: {run.error}")
    ctx.servers.stop(relay)
    if not nodes:
        ctx.servers.stop(members(dura)[0])
    result.runs = [
        asdict(r) | {"frames_per_s": r.frames_per_s, "cpu_s_per_1k": r.cpu_s_per_1k} for r in runs
    ]
    medians: dict[str, float | None] = {}
    for server_name in SERVERS:
        for attr in (
            "frames_per_s",
            "cpu_s_per_1k",
            "server_cpu_s",
            "client_cpu_s",
            "seconds",
            "other_frames",
        ):
            medians[f"{server_name}_{attr}"] = _median(runs, server_name, attr)
    result.figures |= {
        "sockets": sockets,
        "chunks": chunks,
        "rounds": rounds,
        "users": sockets if per_user else 1,
    }
    result.figures |= medians
    return result, medians


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


async def throughput(ctx: Context) -> ScenarioResult:
    clients = ctx.options.client_count
    chunks = ctx.options.pick(100, 20)
    result, m = await compare(ctx, "throughput", run_streams, clients, chunks, per_user=True)
    for server_name in SERVERS:
        saturation = m[f"{server_name}_frames_per_s"]
        if saturation is not None:
            ctx.measured[f"{server_name}_saturation_{clients}"] = saturation
    add_throughput_rows(result, m, clients, chunks)
    return result


def add_throughput_rows(
    result: ScenarioResult, m: dict[str, float | None], clients: int, chunks: int
) -> None:
    """The chunks/s row (with its bar) and the non-text frames row of a throughput run."""
    ratio = _ratio(m["durachat_frames_per_s"], m["relay_frames_per_s"])
    result.figures["ratio_frames_per_s"] = ratio
    dura, relay = m["durachat_frames_per_s"], m["relay_frames_per_s"]
    other = m["durachat_other_frames"]
    result.rows.append(
        Row(
            f"chunks/s ({clients} x {chunks})",
            fmt(dura) if dura is not None else "n/a",
            fmt(relay) if relay is not None else "n/a",
            f"{ratio:.2f}x" if ratio is not None else "n/a",
            ">= 0.7x at 1,000",
            None if ratio is None else ratio >= 0.7,
        )
    )
    if other is not None:
        relay_other = m["relay_other_frames"]
        result.rows.append(
            Row(
                "non-text frames received",
                fmt(other),
                fmt(relay_other) if relay_other is not None else "n/a",
            )
        )


async def fanout(ctx: Context) -> ScenarioResult:
    sockets = ctx.options.pick(200, 50)
    chunks = ctx.options.pick(500, 200)  # enough frames for CPU ticks (10 ms) to count
    result, m = await compare(ctx, "fanout", run_fanout, sockets, chunks)
    ratio = _ratio(m["durachat_cpu_s_per_1k"], m["relay_cpu_s_per_1k"])
    result.figures["ratio_cpu_per_frame"] = ratio
    dura, relay = m["durachat_cpu_s_per_1k"], m["relay_cpu_s_per_1k"]
    result.rows.append(
        Row(
            f"CPU ms/1k frames ({sockets} x {chunks})",
            fmt(dura * 1000, 1) if dura is not None else "n/a",
            fmt(relay * 1000, 1) if relay is not None else "n/a",
            f"{ratio:.2f}x" if ratio is not None else "n/a",
            "<= 1.11x",
            None if ratio is None else ratio <= 1 / 0.9,
        )
    )
    fps_d, fps_r = m["durachat_frames_per_s"], m["relay_frames_per_s"]
    fps_ratio = _ratio(fps_d, fps_r)
    result.figures["ratio_frames_per_s"] = fps_ratio
    result.rows.append(
        Row(
            "frames/s delivered",
            fmt(fps_d) if fps_d is not None else "n/a",
            fmt(fps_r) if fps_r is not None else "n/a",
            f"{fps_ratio:.2f}x" if fps_ratio is not None else "n/a",
        )
    )
    return result
