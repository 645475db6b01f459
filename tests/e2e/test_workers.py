"""`durachat serve --workers N`: N processes on one port, each a node, supervised.

Needs what many nodes need (private PostgreSQL and Redis here); without them it
refuses in one line. A worker that dies is replaced and its reply is marked
`interrupted` by the others; SIGTERM drains every worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.server import Server
from tests.e2e.test_failover import LEASE_MS, until_status
from tests.e2e.test_http_and_auth import cli
from tests.e2e.test_multinode import node_env
from tests.e2e.test_streaming import demo_text, start, wait_status
from tests.e2e.wsclient import WsClient, is_done
from tests.pg import PrivatePostgres
from tests.redis_server import PrivateRedis


def workers_of(server: Server) -> set[int]:
    assert server.process is not None
    found = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
    )
    return {int(pid) for pid in found.stdout.split()}


def test_more_than_one_worker_needs_redis_and_postgresql(tmp_path: Path) -> None:
    no_redis = cli(tmp_path, "serve", "--workers", "2")
    assert no_redis.returncode != 0
    assert "needs DURACHAT_REDIS_URL" in no_redis.stderr and "Traceback" not in no_redis.stderr
    zero = cli(tmp_path, "serve", "--workers", "0")
    assert zero.returncode != 0 and "at least 1" in zero.stderr


async def test_two_workers_serve_replace_a_dead_one_and_drain(
    tmp_path: Path, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> None:
    env = {
        **await node_env(private_postgres, private_redis),
        "DURACHAT_LEASE_MS": str(LEASE_MS),
        "DURACHAT_LOG_LEVEL": "info",
    }
    server = Server(tmp_path / "w", env, ("--workers", "2"))
    server.start()
    try:
        deadline = time.monotonic() + 20
        while len(workers_of(server)) < 2:
            assert time.monotonic() < deadline, server.log()
            await asyncio.sleep(0.05)
        first = workers_of(server)
        # many connections land on either worker; every one is served, replies exact
        clients = [await WsClient.connect(server.ws) for _ in range(8)]
        for client in clients:  # one at a time: one user, 4 replies at once at most
            created = await start(client, "!demo chunks=30 delay_ms=2")
            frames = await client.until(is_done)
            assert frames[-1]["status"] == "complete"
            stored = await wait_status(server, created["conversationId"], created["messageId"])
            assert stored["content"] == demo_text(30)
        # a worker dies mid-reply: another takes its place, the reply is marked
        long = await start(clients[0], "!demo chunks=5000 delay_ms=5")
        victim = next(iter(first))
        for pid in first:  # both: one of them owns the reply
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)
        deadline = time.monotonic() + 20
        while len(workers_of(server) - first) < 2:
            assert time.monotonic() < deadline, server.log()
            await asyncio.sleep(0.05)
        assert victim not in workers_of(server)
        await until_status(server, long["conversationId"], "interrupted", LEASE_MS / 1000 + 10)
        for client in clients:
            await client.close()
    finally:
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
    assert "exited" in server.log() and "starting another" in server.log()
