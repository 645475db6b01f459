"""`durachat backup` on a server under load, and `durachat restore` into a new data
directory: the copy passes `PRAGMA integrity_check` and holds every conversation
that was complete before the backup, with exact text, and the uploaded files."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.e2e.browser import call
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_export_import import turn
from tests.e2e.test_uploads import download, upload
from tests.e2e.wsclient import WsClient, is_done, of_type

LONG = "!demo chunks=200 delay_ms=5\n"


def durachat(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durachat.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"DURACHAT_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin", **env},
        check=False,
    )


def snapshot(server: Server) -> dict[str, list[tuple[str, str, str]]]:
    """Every conversation's messages (id, status, content), by conversation id."""
    listed = call(server, "GET", "/api/conversations?limit=200").body["conversations"]
    found = {}
    for conversation in listed:
        messages = call(server, "GET", f"/api/conversations/{conversation['id']}").body["messages"]
        found[conversation["id"]] = [(m["id"], m["status"], m["content"]) for m in messages]
    return found


async def streaming_load(server: Server, replies: int) -> list[WsClient]:
    """`replies` long replies streaming at once, each from its own socket."""
    clients = []
    for number in range(replies):
        client = await WsClient.connect(server.ws)
        await client.send({"type": "start_chat", "prompt": f"{LONG}load {number}"})
        await client.until(of_type("conversation_created"))
        clients.append(client)
    return clients


async def test_backup_under_load_then_restore_elsewhere(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = make_server()
    client = await WsClient.connect(server.ws)
    for number in range(5):
        await turn(
            client, {"type": "start_chat", "prompt": f"!demo chunks=30 delay_ms=0\nq{number}"}
        )
    await client.close()
    attached = upload(server, "kept.txt", b"a file that must survive\n").body["upload"]
    before = snapshot(server)
    assert len(before) == 5 and all(s == "complete" for m in before.values() for _, s, _ in m)

    load = await streaming_load(server, 4)
    destination = tmp_path / "backup"
    made = await asyncio.to_thread(durachat, server.data_dir, "backup", str(destination))
    assert made.returncode == 0, made.stderr
    assert "backed up" in made.stdout and "1 files" in made.stdout
    still_streaming = snapshot(server)
    assert any(s == "streaming" for m in still_streaming.values() for _, s, _ in m), (
        "the backup ran while replies streamed"
    )
    for each in load:
        await each.until(is_done)
        await each.close()
    assert (destination / "durachat.db").is_file()
    assert (destination / "uploads" / attached["id"]).is_file()

    # a backup never overwrites
    again = durachat(server.data_dir, "backup", str(destination))
    assert again.returncode == 1 and "not empty" in again.stderr
    # a restore into the running server's data is refused
    busy = durachat(server.data_dir, "restore", str(destination))
    assert busy.returncode == 1 and "in use" in busy.stderr, busy.stderr

    restored_dir = tmp_path / "restored"
    put_back = durachat(restored_dir, "restore", str(destination))
    assert put_back.returncode == 0, put_back.stderr
    # the target now exists: a second restore needs --force
    twice = durachat(restored_dir, "restore", str(destination))
    assert twice.returncode == 1 and "--force" in twice.stderr
    checked = sqlite3.connect(restored_dir / "durachat.db")
    assert checked.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    checked.close()

    restored = make_server(start=False)
    restored.data_dir = restored_dir
    restored.log_path = restored_dir / "server.log"
    restored.start()
    after = snapshot(restored)
    for conversation_id, messages in before.items():
        assert after[conversation_id] == messages, "complete conversations, exact text"
    # replies that streamed during the backup are there, ended (interrupted) or complete
    for conversation_id in set(after) - set(before):
        assert all(s in ("complete", "interrupted") for _, s, _ in after[conversation_id])
    status, _, body = download(restored, attached["id"])
    assert status == 200 and body == b"a file that must survive\n"
    restored.stop()
    forced = durachat(restored_dir, "restore", str(destination), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "moved aside" in forced.stdout  # the data that was there is kept, not deleted


def test_postgresql_gets_pg_dump_guidance(tmp_path: Path) -> None:
    url = "postgresql://durachat:hunter2@127.0.0.1:5432/durachat"
    for command in ("backup", "restore"):
        answer = durachat(tmp_path, command, str(tmp_path / "x"), DURACHAT_DATABASE_URL=url)
        assert answer.returncode == 1
        assert ("pg_dump" if command == "backup" else "pg_restore") in answer.stderr
        assert "hunter2" not in answer.stderr


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    answer = durachat(tmp_path / "data", "restore", str(tmp_path / "junk"))
    assert answer.returncode == 1 and "not a DuraChat backup" in answer.stderr
