"""Frames/s and server CPU per frame: `durachat serve` against a bare relay.

SPEC.md section 9 states DuraChat's performance bars as ratios to a bare uvicorn +
Starlette relay (`bench/relay.py`) measured on the same machine in the same run.
This script starts both servers as subprocesses on free loopback ports, drives them
from asyncio `websockets` clients in its own process (compression off) and prints,
per scenario and server, the median over rounds of text frames delivered per second
and of server CPU seconds per 1,000 delivered frames, with the durachat/relay ratios.

Scenarios (each round runs both servers, the order alternating between rounds):

- `streams`: every socket sends one `start_chat` at the same moment and gets its
  own reply of N chunks (`!demo chunks=N delay_ms=0`);
- `fanout`: all sockets subscribe to one conversation, then socket 0 starts a reply
  of N chunks in it, which every socket receives.

Only `text` frames are counted; each client must get seq 1..N of its reply with no
gap or duplicate, or the run is reported as failed. Server CPU comes from
`/proc/<pid>/stat` (utime + stime, all threads). No CPU is pinned: on a 2-core
machine the server and this load generator share the cores, so the client's CPU
use is printed too (near 100% means the client, not the server, set the pace).

It must never change the servers it measures or need anything beyond the project's
own dependencies. Usage:

    .venv/bin/python bench/fanout_vs_relay.py [--sockets 200] [--chunks 2000]
        [--rounds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVERS = ("relay", "durachat")
SCENARIOS = ("streams", "fanout")
STEP_TIMEOUT_S = 30.0
"""Bound on every wait that does not depend on the amount of streamed data."""


# --- servers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A server subprocess on a loopback port, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (all its threads) so far."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_healthy(self, timeout: float) -> None:
        """Wait for `GET /healthz` to answer 200, or fail with the server's log."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"http://127.0.0.1:{self.port}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                opener.open(url, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(name: str, workdir: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURACHAT_")}
    if name == "durachat":
        data_dir = workdir / "durachat-data"
        env |= {
            "DURACHAT_AUTH": "off",
            "DURACHAT_DATA_DIR": str(data_dir),
            "DURACHAT_USER_CONCURRENT_REPLIES": "1000",
            "DURACHAT_LOG_LEVEL": "warning",
            "DURACHAT_SHUTDOWN_GRACE_S": "5",
        }
        command = [str(VENV_BIN / "durachat"), "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
    else:
        command = [sys.executable, str(BENCH_DIR / "relay.py"), "--port", str(port)]
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Server(name, process, port, log_path)


# --- clients -----------------------------------------------------------------------


class Client:
    """One WebSocket client: counts `text` frames per message, keeps the others."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.counts: dict[str, int] = {}
        self.last_seq: dict[str, int] = {}
        self.other_frames = 0
        self.problems: list[str] = []
        self._inbox: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._closed = False
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        recv = self.ws.recv
        loads = orjson.loads
        counts = self.counts
        last_seq = self.last_seq
        try:
            while True:
                raw = await recv(decode=False)
                frame = loads(raw)
                if frame["type"] == "text":
                    message_id = frame["messageId"]
                    seq = frame["seq"]
                    previous = last_seq.get(message_id, 0)
                    if seq != previous + 1:
                        self.problems.append(f"{message_id}: seq {seq} after {previous}")
                    last_seq[message_id] = seq
                    counts[message_id] = counts.get(message_id, 0) + 1
                    continue
                frame["_at"] = time.perf_counter()
                self.other_frames += 1
                if frame["type"] in ("error", "resync"):
                    self.problems.append(f"unexpected frame {frame}")
                self._inbox.append(frame)
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            self._arrived.set()

    async def wait_for(self, kind: str, **match: Any) -> dict[str, Any]:
        """The first unclaimed non-text frame of `kind` whose fields equal `match`."""
        while True:
            for index, frame in enumerate(self._inbox):
                if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                    del self._inbox[index]
                    return frame
            if self._closed:
                raise ConnectionError(f"socket closed while waiting for {kind} {match}")
            self._arrived.clear()
            await self._arrived.wait()

    async def send(self, payload: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(payload).decode())

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def open_client(url: str) -> Client:
    ws = await connect(
        url,
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=STEP_TIMEOUT_S,
        close_timeout=2,
        max_queue=1024,
    )
    client = Client(ws)
    await client.wait_for("hello")
    return client


async def open_clients(url: str, count: int) -> list[Client]:
    clients: list[Client] = []
    try:
        for start in range(0, count, 50):
            batch = [open_client(url) for _ in range(start, min(start + 50, count))]
            clients += await asyncio.wait_for(asyncio.gather(*batch), STEP_TIMEOUT_S)
    except BaseException:
        await close_clients(clients)
        raise
    return clients


async def close_clients(clients: list[Client]) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.close() for c in clients)), STEP_TIMEOUT_S)


# --- scenarios ---------------------------------------------------------------------


@dataclass
class RunResult:
    """One scenario run against one server."""

    scenario: str
    server: str
    round: int
    frames: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    other_frames: int = 0
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

    server: Server
    t0: float = field(default_factory=time.perf_counter)
    server_cpu0: float = 0.0
    client_cpu0: float = field(default_factory=time.process_time)

    def __post_init__(self) -> None:
        self.server_cpu0 = self.server.cpu_seconds()

    def close(self, result: RunResult, t_end: float) -> None:
        result.server_cpu_s = self.server.cpu_seconds() - self.server_cpu0
        result.client_cpu_s = time.process_time() - self.client_cpu0
        result.seconds = t_end - self.t0


def demo_prompt(chunks: int) -> str:
    return f"!demo chunks={chunks} delay_ms=0"


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
    server: Server, clients: list[Client], chunks: int, result: RunResult
) -> None:
    async def one(client: Client) -> tuple[str, float]:
        await client.send({"type": "start_chat", "prompt": demo_prompt(chunks)})
        created = await client.wait_for("conversation_created")
        done = await client.wait_for("done", messageId=created["messageId"])
        return created["messageId"], done["_at"]

    others = sum(c.other_frames for c in clients)
    window = Window(server)
    outcomes = await asyncio.gather(*(one(c) for c in clients))
    window.close(result, max(at for _, at in outcomes))
    result.other_frames = sum(c.other_frames for c in clients) - others
    result.frames = check_replies(clients, [m for m, _ in outcomes], chunks)


async def run_fanout(server: Server, clients: list[Client], chunks: int, result: RunResult) -> None:
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
    window.close(result, max(at for _, at in outcomes))
    result.other_frames = sum(c.other_frames for c in clients) - others
    result.frames = check_replies(clients, [m for m, _ in outcomes], chunks)


Scenario = Callable[[Server, list[Client], int, RunResult], Awaitable[None]]
RUNNERS: dict[str, Scenario] = {"streams": run_streams, "fanout": run_fanout}


async def run_one(
    server: Server, scenario: str, round_no: int, sockets: int, chunks: int, timeout: float
) -> RunResult:
    result = RunResult(scenario, server.name, round_no)
    try:
        clients = await open_clients(server.ws_url, sockets)
    except Exception as exc:
        result.error = f"connect: {type(exc).__name__}: {exc}"
        return result
    try:
        await asyncio.wait_for(RUNNERS[scenario](server, clients, chunks, result), timeout)
    except TimeoutError:
        received = sum(sum(c.counts.values()) for c in clients)
        result.error = f"timeout after {timeout:.0f}s ({received} text frames received)"
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        await close_clients(clients)
    if server.process.poll() is not None:
        result.error = f"{server.name} exited: {server.log_tail()}"
    return result


# --- report ------------------------------------------------------------------------


@dataclass
class Summary:
    """Medians over the successful rounds of one scenario on one server."""

    scenario: str
    server: str
    rounds_ok: int
    frames_per_s: float
    cpu_s_per_1k: float
    server_cpu_pct: float
    client_cpu_pct: float
    other_frames: int


def summarize(results: list[RunResult], scenario: str, server: str) -> Summary:
    ok = [r for r in results if r.scenario == scenario and r.server == server and not r.error]
    if not ok:
        return Summary(scenario, server, 0, 0.0, 0.0, 0.0, 0.0, 0)
    return Summary(
        scenario,
        server,
        len(ok),
        statistics.median(r.frames_per_s for r in ok),
        statistics.median(r.cpu_s_per_1k for r in ok),
        statistics.median(100 * r.server_cpu_s / r.seconds for r in ok),
        statistics.median(100 * r.client_cpu_s / r.seconds for r in ok),
        int(statistics.median(r.other_frames for r in ok)),
    )


def ratios(summaries: list[Summary], scenario: str) -> dict[str, float | None]:
    by_server = {s.server: s for s in summaries if s.scenario == scenario}
    relay, dura = by_server["relay"], by_server["durachat"]
    if not relay.rounds_ok or not dura.rounds_ok:
        return {"frames_per_s": None, "cpu_per_frame": None}
    return {
        "frames_per_s": dura.frames_per_s / relay.frames_per_s,
        "cpu_per_frame": dura.cpu_s_per_1k / relay.cpu_s_per_1k,
    }


def print_table(summaries: list[Summary], results: list[RunResult]) -> None:
    header = (
        f"{'scenario':<9} {'server':<9} {'ok':>3} {'frames/s':>10} {'cpu s/1k':>9} "
        f"{'srv cpu':>8} {'cli cpu':>8} {'other':>7} {'ratio fps':>10} {'ratio cpu':>10}"
    )
    print(header)
    print("-" * len(header))
    for s in summaries:
        ratio_fps = ratio_cpu = ""
        if s.server == "durachat":
            ratio = ratios(summaries, s.scenario)
            fps, cpu = ratio["frames_per_s"], ratio["cpu_per_frame"]
            ratio_fps = f"{fps:.2f}x" if fps is not None else "n/a"
            ratio_cpu = f"{cpu:.2f}x" if cpu is not None else "n/a"
        print(
            f"{s.scenario:<9} {s.server:<9} {s.rounds_ok:>3} {s.frames_per_s:>10,.0f} "
            f"{s.cpu_s_per_1k:>9.4f} {s.server_cpu_pct:>7.0f}% {s.client_cpu_pct:>7.0f}% "
            f"{s.other_frames:>7} {ratio_fps:>10} {ratio_cpu:>10}"
        )
    print(
        "frames/s and cpu s/1k: medians over rounds of text frames delivered per second and "
        "server CPU seconds per 1,000 of them; other: non-text frames received in the window; "
        "ratio = durachat/relay (bars: streams fps >= 0.7x at 1,000 streams, fanout cpu <= 1.11x)"
    )
    for r in results:
        if r.error:
            print(f"FAILED {r.scenario}/{r.server} round {r.round}: {r.error}")


# --- main --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=200, help="WebSocket clients")
    parser.add_argument("--chunks", type=int, default=2000, help="text frames per reply")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scenario and server")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma separated")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per run")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    return parser.parse_args(argv)


def order(round_no: int) -> Iterator[str]:
    """Relay first in even rounds, DuraChat first in odd ones."""
    return iter(SERVERS if round_no % 2 == 0 else SERVERS[::-1])


async def run_all(args: argparse.Namespace, servers: dict[str, Server]) -> list[RunResult]:
    scenarios = [s for s in args.scenarios.split(",") if s]
    timeout = args.timeout or 30 + args.sockets * args.chunks / 10_000
    results: list[RunResult] = []
    for round_no in range(args.rounds):
        for scenario in scenarios:
            for name in order(round_no):
                result = await run_one(
                    servers[name], scenario, round_no, args.sockets, args.chunks, timeout
                )
                results.append(result)
                status = result.error or (
                    f"{result.frames_per_s:,.0f} frames/s, {result.cpu_s_per_1k:.4f} cpu s/1k, "
                    f"{result.seconds:.2f}s"
                )
                print(f"round {round_no} {scenario:<8} {name:<9} {status}", flush=True)
    return results


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for scenario in args.scenarios.split(","):
        if scenario not in RUNNERS:
            raise SystemExit(f"unknown scenario {scenario!r}; known: {', '.join(RUNNERS)}")
    signal.signal(signal.SIGTERM, _terminate)
    print(
        f"{args.sockets} sockets, {args.chunks} chunks per reply, {args.rounds} rounds; "
        f"{os.cpu_count()} CPUs, nothing pinned (servers and clients share them); "
        f"Python {platform.python_version()}",
        flush=True,
    )
    servers: dict[str, Server] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="durachat-bench-") as tmp:
        try:
            for name in SERVERS:
                servers[name] = start_server(name, Path(tmp))
            for server in servers.values():
                server.wait_healthy(STEP_TIMEOUT_S)
            results = asyncio.run(run_all(args, servers))
        finally:
            for server in servers.values():
                server.stop()
    scenarios = [s for s in SCENARIOS if s in args.scenarios.split(",")]
    summaries = [summarize(results, sc, sv) for sc in scenarios for sv in SERVERS]
    print()
    print_table(summaries, results)
    print(f"total {time.monotonic() - started:.0f}s")
    if args.json:
        report = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "summary": [asdict(s) for s in summaries],
            "ratios": {sc: ratios(summaries, sc) for sc in scenarios},
            "runs": [
                asdict(r) | {"frames_per_s": r.frames_per_s, "cpu_s_per_1k": r.cpu_s_per_1k}
                for r in results
            ],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
