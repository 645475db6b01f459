"""What a scenario returns and how the results are shown: a rich table and JSON.

A scenario produces a `ScenarioResult`: `figures` (every number, for `--json`),
`rows` (what the table shows, one measure each, with the relay's figure and the
SPEC section 9 bar when there is one) and `errors`. Nothing here measures.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

Figure = float | int | str | bool | None


@dataclass
class Row:
    """One line of the results table."""

    measure: str
    value: str
    relay: str = ""
    ratio: str = ""
    bar: str = ""
    met: bool | None = None


@dataclass
class ScenarioResult:
    name: str
    figures: dict[str, Figure] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def bars(results: list[ScenarioResult]) -> list[dict[str, Any]]:
    """Every SPEC section 9 bar measured: value, relay figure, ratio, bar and met."""
    return [{"scenario": r.name} | asdict(row) for r in results for row in r.rows if row.bar]


def to_json(results: list[ScenarioResult], options: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": machine(),
        "options": options,
        "ok": all(r.ok for r in results),
        "bars": bars(results),
        "scenarios": {r.name: asdict(r) | {"ok": r.ok} for r in results},
    }


def print_table(console: Console, results: list[ScenarioResult]) -> None:
    table = Table(title="durachat bench", show_lines=False)
    for column in ("scenario", "measure"):
        table.add_column(column)
    for column in ("durachat", "relay", "ratio"):
        table.add_column(column, justify="right")
    for column in ("bar (SPEC 9)", "met"):
        table.add_column(column)
    for result in results:
        for index, row in enumerate(result.rows):
            met = "" if row.met is None else ("yes" if row.met else "NO")
            name = result.name if index == 0 else ""
            table.add_row(name, row.measure, row.value, row.relay, row.ratio, row.bar, met)
        for error in result.errors:
            table.add_row(result.name, "[red]FAILED[/red]", error[:200], "", "", "", "")
        table.add_section()
    console.print(table)


def fmt(value: float, digits: int = 0, unit: str = "") -> str:
    return f"{value:,.{digits}f}{unit}"
