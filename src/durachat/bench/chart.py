"""`durachat bench --chart PATH`: a PNG of latency against load, DuraChat and relay.

It reads the `latency` scenario's levels (one per server and load) and draws p50
and p99 in milliseconds against the offered chunks per second, with the SPEC
section 9 bar (p99 < 10 ms at half the saturation) as a line. matplotlib is the
optional `chart` extra: it is imported only here, and its absence is a one-line
error, found before anything is measured. It must never need a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

INSTALL_HINT = "--chart needs matplotlib: pip install 'durachat[chart]'"


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write(path: Path, levels: list[dict[str, Any]], bar_ms: float, saturation: float) -> None:
    """Draw the `latency` levels (its `runs`) into a PNG at `path`."""
    from matplotlib.figure import Figure  # a Figure needs no pyplot and no display

    figure = Figure(figsize=(8, 5), dpi=120)
    axes = figure.subplots()
    styles = {"durachat": "tab:blue", "relay": "tab:gray"}
    for server, colour in styles.items():
        points = sorted(
            (lv["offered_per_s"], lv["p50_ms"], lv["p99_ms"])
            for lv in levels
            if lv["server"] == server and not lv["error"]
        )
        if not points:
            continue
        loads = [p[0] for p in points]
        label = "DuraChat" if server == "durachat" else "bare relay"
        axes.plot(loads, [p[2] for p in points], "o-", color=colour, label=f"{label} p99")
        axes.plot(loads, [p[1] for p in points], "s--", color=colour, label=f"{label} p50")
    axes.axhline(bar_ms, color="tab:red", linestyle=":", label=f"bar: p99 < {bar_ms:g} ms")
    axes.axvline(saturation / 2, color="tab:green", linestyle=":", label="half saturation")
    axes.set_yscale("log")
    axes.set_xlabel("offered load (provider chunks/s, all clients)")
    axes.set_ylabel("provider chunk to client (ms)")
    axes.set_title("durachat bench latency: DuraChat against the bare relay")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png")
