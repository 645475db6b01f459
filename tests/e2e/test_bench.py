"""`durachat bench --quick` as a smoke test: it runs, and its figures are sane.

Speeds are not asserted (the machine is shared); only that every scenario ran,
counted what it should and wrote positive numbers and ratios to `--json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def bench(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
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
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    result = bench("all", "--quick", "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "durachat bench" in result.stdout  # the table
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["ok"] is True
    return data


def test_throughput_compares_with_the_relay(report: dict[str, Any]) -> None:
    scenario = report["scenarios"]["throughput"]
    assert scenario["ok"] and not scenario["errors"]
    figures = scenario["figures"]
    positive(figures, "durachat_frames_per_s", "relay_frames_per_s", "ratio_frames_per_s")
    runs = scenario["runs"]
    assert {r["server"] for r in runs} == {"relay", "durachat"}
    for run in runs:  # every client got every chunk of its reply
        assert run["error"] is None and run["frames"] == figures["sockets"] * figures["chunks"]


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
