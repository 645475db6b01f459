"""The deployment files in `deploy/` work: nginx accepts `deploy/nginx.conf`
(`nginx -t`), and a real nginx started with it in front of a real server carries
the WebSocket (upgrade, Origin check) and streams an event stream chunk by chunk
(the config turns proxy buffering off; the server also sends `X-Accel-Buffering:
no`, so either alone keeps this test green).

Needs Debian's nginx (`make test` installs it); skipped without it, except under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, free_port
from tests.e2e.test_streaming import start
from tests.e2e.wsclient import WsClient, is_done, of_type

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

if NGINX is None and not os.environ.get("CI"):
    pytest.skip("needs nginx (make test installs it)", allow_module_level=True)


def render(site: str, upstream_port: int, listen_port: int) -> str:
    """The example config pointed at the test's server (both upstream entries) and
    listening on a free loopback port."""
    assert "server 127.0.0.1:5787" in site and "server 127.0.0.1:5788" in site
    assert "listen 80;" in site
    return (
        site.replace("127.0.0.1:5787", f"127.0.0.1:{upstream_port}")
        .replace("127.0.0.1:5788", f"127.0.0.1:{upstream_port}")
        .replace("listen 80;", f"listen 127.0.0.1:{listen_port};")
    )


def main_config(root: Path, site: Path) -> str:
    temp = {name: root / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(mode=0o777, exist_ok=True)
        path.chmod(0o777)  # the worker may run as nobody
    return f"""
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {site};
}}
"""


@pytest.fixture
def proxied(server: Server, tmp_path: Path) -> Iterator[str]:
    assert NGINX is not None, "nginx is not installed (make test installs it)"
    port = free_port()
    site = tmp_path / "durachat.conf"
    site.write_text(render((DEPLOY / "nginx.conf").read_text(), server.port, port))
    config = tmp_path / "nginx.conf"
    config.write_text(main_config(tmp_path, site))
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "error.log").read_text()
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def test_a_websocket_chat_through_nginx(proxied: str) -> None:
    client = await WsClient.connect(f"ws://{proxied}/ws", headers={"Origin": f"http://{proxied}"})
    await start(client, "!demo chunks=20 delay_ms=2")
    frames = await client.until(is_done)
    texts = [f for f in frames if f["type"] == "text"]
    assert "".join(f["content"] for f in texts) == "".join(f"w{i} " for i in range(1, 21))
    assert [f["seq"] for f in texts] == list(range(1, len(texts) + 1))
    await client.send({"type": "ping"})
    await client.until(of_type("pong"))
    await client.close()


def test_an_event_stream_arrives_chunk_by_chunk_through_nginx(proxied: str) -> None:
    url = f"http://{proxied}/test/chat"
    params = {"prompt": "!demo chunks=20 delay_ms=100"}
    started = time.monotonic()
    first_text: float | None = None
    with httpx.stream("GET", url, params=params, timeout=30) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("event: text") and first_text is None:
                first_text = time.monotonic() - started
    total = time.monotonic() - started
    assert first_text is not None
    assert total > 1.5  # 20 chunks, 100 ms apart
    assert first_text < total / 2, (first_text, total)  # not buffered until the end
