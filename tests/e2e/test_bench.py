"""`durachat bench --quick` as a smoke test: it runs, and its figures are sane.

Speeds are not asserted (the machine is shared); only that every scenario ran,
counted what it should, wrote positive numbers and ratios to `--json` (with every
SPEC section 9 bar listed) and drew the `--chart` PNG. The whole `--quick` run
must stay within the 2 minutes issue 7 allows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.slow


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCENARIOS = {
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
}


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURACHAT_")}
    return subprocess.run(
        [sys.executable, "-m", "durachat.cli", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def positive(figures: dict[str, Any], *names: str) -> None:
    for name in names:
        value = figures[name]
        assert isinstance(value, int | float) and value > 0, (name, value)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    out, chart = tmp / "bench.json", tmp / "latency.png"
    result = bench("all", "--quick", "--json", str(out), "--chart", str(chart))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "durachat bench" in result.stdout  # the table
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["ok"] is True
    data["chart_bytes"] = chart.read_bytes()[:16]
    return data


def test_every_scenario_ran_and_every_bar_is_listed(report: dict[str, Any]) -> None:
    assert set(report["scenarios"]) == SCENARIOS
    for name, scenario in report["scenarios"].items():
        assert scenario["ok"] and not scenario["errors"], name
        assert scenario["rows"], name
    bars = {(b["scenario"], b["bar"]) for b in report["bars"]}
    for scenario in (
        "throughput",
        "throughput-2nodes",
        "fanout",
        "latency",
        "startup",
        "firsttoken",
        "catchup",
    ):
        assert any(s == scenario for s, _ in bars), scenario
    assert ("latency", "< 10 ms") in bars and ("idle", "< 32 KB") in bars
    for bar in report["bars"]:  # --quick sizes are not the bars' sizes: no verdict
        assert bar["value"] and bar["met"] is None


def test_chart_is_a_png(report: dict[str, Any]) -> None:
    assert report["chart_bytes"].startswith(PNG_SIGNATURE)


def test_latency_percentiles_for_both_servers(report: dict[str, Any]) -> None:
    scenario = report["scenarios"]["latency"]
    positive(scenario["figures"], "saturation_per_s", "durachat_p99_ms", "relay_p99_ms")
    levels = scenario["runs"]
    assert {(lv["server"], lv["fraction"]) for lv in levels} == {
        (server, fraction) for server in ("durachat", "relay") for fraction in (0.25, 0.5)
    }
    for level in levels:
        assert level["error"] is None
        positive(level, "offered_per_s", "delivered_per_s", "samples", "p50_ms")
        # a chunk cannot arrive before it was made; percentiles are ordered
        assert 0 < level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"] <= level["max_ms"]


def test_resume_storm_every_client_has_the_exact_text(report: dict[str, Any]) -> None:
    figures = report["scenarios"]["resume-storm"]["figures"]
    assert figures["exact_text_clients"] == figures["clients"] == 20
    positive(figures, "chunks_held_at_drop", "chunks_missed_replayed", "all_reconnected_ms")
    positive(figures, "caught_up_max_ms", "all_done_s")
    assert figures["caught_up_median_ms"] <= figures["caught_up_max_ms"]


def test_throughput_compares_with_the_relay(report: dict[str, Any]) -> None:
    scenario = report["scenarios"]["throughput"]
    assert scenario["ok"] and not scenario["errors"]
    figures = scenario["figures"]
    positive(figures, "durachat_frames_per_s", "relay_frames_per_s", "ratio_frames_per_s")
    assert figures["users"] == figures["sockets"]  # one user per client: no O(n^2) updates
    runs = scenario["runs"]
    assert {r["server"] for r in runs} == {"relay", "durachat"}
    for run in runs:  # every client got every chunk of its reply
        assert run["error"] is None and run["frames"] == figures["sockets"] * figures["chunks"]


def test_throughput_through_two_nodes_on_private_postgres_and_redis(
    report: dict[str, Any],
) -> None:
    scenario = report["scenarios"]["throughput-2nodes"]
    figures = scenario["figures"]
    positive(figures, "durachat_frames_per_s", "relay_frames_per_s", "ratio_frames_per_s")
    assert figures["nodes"] == 2 and figures["users"] == figures["sockets"]
    for run in scenario["runs"]:  # every client on either node got every chunk
        assert run["error"] is None and run["frames"] == figures["sockets"] * figures["chunks"]
    assert figures["cross_node_exact"] == figures["cross_node_pairs"] > 0
    assert any(row["bar"] for row in scenario["rows"])


def test_fanout_measures_cpu_per_frame(report: dict[str, Any]) -> None:
    figures = report["scenarios"]["fanout"]["figures"]
    positive(figures, "durachat_cpu_s_per_1k", "relay_cpu_s_per_1k", "ratio_cpu_per_frame")
    positive(figures, "ratio_frames_per_s")


def test_startup_and_first_token(report: dict[str, Any]) -> None:
    startup = report["scenarios"]["startup"]["figures"]
    positive(startup, "healthz_s", "idle_rss_mb", "library_first_reply_s")
    assert startup["healthz_s"] < 30 and 10 < startup["idle_rss_mb"] < 1000
    first = report["scenarios"]["firsttoken"]["figures"]
    for server in ("durachat", "relay"):
        for name in ("single_median_ms", "burst25_worst_median_ms"):
            value = first[f"{server}_{name}"]
            # the provider's own delay is subtracted: what is left is small and not negative
            assert -1 < value < 5000, (server, name, value)


def test_unknown_scenario_is_one_line() -> None:
    result = bench("nosuch", timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("durachat: unknown scenario 'nosuch'; known:")


def test_catchup_storage_and_idle(report: dict[str, Any]) -> None:
    catchup = report["scenarios"]["catchup"]["figures"]
    assert catchup["messages"] == 40  # 20 turns in --quick
    positive(catchup, "content_kb", "full_median_ms", "delta_median_ms")
    storage = report["scenarios"]["storage"]["figures"]
    positive(storage, "text_events", "flush_transactions", "transactions_per_chunk")
    assert storage["text_events"] == storage["replies"] * storage["chunks"]
    assert storage["transactions_per_chunk"] <= 1
    idle = report["scenarios"]["idle"]["figures"]
    positive(idle, "fd_limit")
    assert isinstance(idle["kb_per_socket_50"], float)  # RSS noise can swamp 50 sockets
