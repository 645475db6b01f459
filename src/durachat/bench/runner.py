"""Run the chosen scenarios in order with a progress display, then the table.

Every server is started inside one `Servers` block, so it is stopped when the run
ends, fails or is interrupted (Ctrl-C raises `KeyboardInterrupt`, SIGTERM is
turned into `SystemExit`). A scenario that raises is recorded as failed and the
run goes on with the next one. It must never listen beyond loopback.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from durachat.bench import catchup, latency, multinode, process, resources, storm, streaming
from durachat.bench.context import Context, Options
from durachat.bench.report import ScenarioResult
from durachat.bench.servers import Servers

Scenario = Callable[[Context], Awaitable[ScenarioResult]]

SCENARIOS: dict[str, Scenario] = {
    "throughput": streaming.throughput,
    "fanout": streaming.fanout,
    "latency": latency.latency,
    "startup": process.startup,
    "firsttoken": process.firsttoken,
    "catchup": catchup.catchup,
    "storage": resources.storage,
    "idle": resources.idle,
    "resume-storm": storm.resume_storm,
    "throughput-2nodes": multinode.throughput_two_nodes,
}


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


async def _run_one(scenario: Scenario, ctx: Context, name: str) -> ScenarioResult:
    started = time.perf_counter()
    try:
        result = await scenario(ctx)
    except Exception as exc:
        result = ScenarioResult(name, errors=[f"{type(exc).__name__}: {exc}"])
    result.seconds = time.perf_counter() - started
    return result


def run(names: list[str], options: Options, console: Console) -> list[ScenarioResult]:
    """Run `names` (known scenario names) in order; the servers never outlive this."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    raise_fd_limit()
    results: list[ScenarioResult] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="durachat-bench-") as tmp,
            Servers(Path(tmp)) as servers,
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("starting", total=len(names))

            def step(text: str) -> None:
                progress.update(task, description=text)

            ctx = Context(options, servers, step)
            for name in names:
                step(name)
                result = asyncio.run(_run_one(SCENARIOS[name], ctx, name))
                if options.quick:  # the bars are for the full sizes
                    for row in result.rows:
                        row.met = None
                results.append(result)
                status = "ok" if result.ok else "FAILED"
                progress.console.print(f"{name}: {status} in {result.seconds:.1f} s")
                progress.advance(task)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return results
