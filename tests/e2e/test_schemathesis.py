"""Schemathesis against `/openapi.json` of a live server, as a signed-in admin: every
operation of the HTTP API is called with generated valid and invalid input (and
stateful sequences: create a token, then revoke it), and none may answer 5xx.

The seed is fixed so that a run is reproducible; `DURACHAT_FUZZ_SEED` picks
another one. The conversation event stream never ends, so it is left to the
SSE tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import MakeServer
from tests.e2e.test_http_and_auth import cli, make_user

SCHEMATHESIS = Path(sys.executable).parent / "st"


def test_no_operation_answers_5xx_to_generated_requests(make_server: MakeServer) -> None:
    server = make_server(
        {"DURACHAT_AUTH": "on", "DURACHAT_DEMO_DELAY_MS": "1", "DURACHAT_LOG_LEVEL": "error"},
        start=False,
    )
    make_user(server.data_dir, "alice")  # someone whose objects the admin routes can find
    admin = cli(
        server.data_dir, "user", "create", "root", "--admin", "--password-stdin", stdin="x" * 12
    )
    assert admin.returncode == 0, admin.stderr
    created = cli(server.data_dir, "token", "create", "root")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    server.start()
    seed = os.environ.get("DURACHAT_FUZZ_SEED", "20261124")
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{server.http}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "30",
            "--seed",
            seed,
            "--request-timeout",
            "15",
            "--exclude-path-regex",
            "/events$",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=server.data_dir,  # where it keeps its own files
    )
    report = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert " passed" in run.stdout and "Tested: " in run.stdout, report
    assert server.process is not None and server.process.poll() is None, server.log()
    assert "Traceback" not in server.log(), server.log()[-4000:]
