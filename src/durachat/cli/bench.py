"""`durachat bench`: measure DuraChat against a bare relay on this machine.

The benchmark code (`durachat.bench`) is imported inside the command, so that
`durachat --help` stays fast. Exit code 0 when every scenario ran, 1 when one
failed, 130 when interrupted; servers are stopped in every case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from durachat.cli.common import fail

SCENARIO_NAMES = ("throughput", "fanout", "startup", "firsttoken", "catchup", "storage", "idle")


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
    if not all(r.ok for r in results):
        raise SystemExit(1)
