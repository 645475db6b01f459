"""`durachat bench`: measure DuraChat against a bare relay on this machine.

The benchmark code (`durachat.bench`) is imported inside the command, so that
`durachat --help` stays fast. Exit code 0 when every scenario ran, 1 when one
failed, 130 when interrupted; servers are stopped in every case. `--chart` is
checked (latency chosen, matplotlib importable) before anything runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from durachat.cli.common import fail

if TYPE_CHECKING:
    from rich.console import Console

    from durachat.bench.report import ScenarioResult

SCENARIO_NAMES = (
    "throughput",
    "fanout",
    "latency",
    "startup",
    "firsttoken",
    "catchup",
    "storage",
    "idle",
    "resume-storm",
    "throughput-2nodes",
)


def bench(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(help=f"Scenarios to run: {', '.join(SCENARIO_NAMES)} or all (default)."),
    ] = None,
    clients: Annotated[
        int | None, typer.Option(help="Concurrent clients for throughput (default 1,000).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every number to this JSON file.")
    ] = None,
    rounds: Annotated[
        int | None, typer.Option(help="Rounds per relay comparison (default 3).")
    ] = None,
    quick: Annotated[bool, typer.Option(help="Tiny sizes: a smoke test in seconds.")] = False,
    chart: Annotated[
        Path | None,
        typer.Option(help="Write a PNG of latency against load (needs the latency scenario)."),
    ] = None,
) -> None:
    """Benchmark `durachat serve` against a bare relay (SPEC section 9)."""
    names = list(scenarios or ["all"])
    if "all" in names:
        names = list(SCENARIO_NAMES)
    unknown = [n for n in names if n not in SCENARIO_NAMES]
    if unknown:
        fail(f"unknown scenario {unknown[0]!r}; known: {', '.join(SCENARIO_NAMES)}, all")
    if clients is not None and clients < 1:
        fail("--clients must be at least 1")
    if rounds is not None and rounds < 1:
        fail("--rounds must be at least 1")
    if chart is not None:
        from durachat.bench import chart as charts

        if "latency" not in names:
            fail("--chart draws the latency scenario: add latency (or all) to the scenarios")
        if not charts.available():
            fail(charts.INSTALL_HINT)

    from rich.console import Console

    from durachat.bench import report, runner
    from durachat.bench.context import Options

    console = Console(stderr=True)
    options = Options(clients=clients, rounds=rounds, quick=quick)
    console.print(
        f"durachat bench {' '.join(names)}{' --quick' if quick else ''}: "
        f"{report.machine()['cpus']} CPUs, Python {report.machine()['python']}, "
        "servers and load generator share the CPUs"
    )
    try:
        results = runner.run(names, options, console)
    except KeyboardInterrupt:
        console.print("interrupted; servers stopped")
        raise SystemExit(130) from None
    report.print_table(Console(width=None if console.is_terminal else 120), results)
    if json_out is not None:
        data = report.to_json(results, {"scenarios": names, "clients": clients, "quick": quick})
        json_out.write_text(json.dumps(data, indent=2) + "\n")
    if chart is not None:
        _write_chart(chart, results, console)
    if not all(r.ok for r in results):
        raise SystemExit(1)


def _write_chart(path: Path, results: list[ScenarioResult], console: Console) -> None:
    from durachat.bench import chart, latency

    found = [r for r in results if r.name == "latency" and r.runs]
    if not found:
        console.print("no latency figures: no chart written")
        return
    saturation = float(found[0].figures.get("saturation_per_s") or 0)
    chart.write(path, found[0].runs, latency.BAR_P99_MS, saturation)
    console.print(f"chart written to {path}")
