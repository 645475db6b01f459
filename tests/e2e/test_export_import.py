"""Export and import against a real server: Markdown of the current branch, JSON of the
whole tree, the user's archive, re-import to the same tree, ChatGPT's export with its
branch, idempotence, bad files, the size limit and `durachat export`."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from tests.e2e.browser import Answer, call
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_http_and_auth import bearer, cli, two_users  # noqa: F401 (fixture)
from tests.e2e.wsclient import WsClient, is_done

DEMO = "!demo chunks=2 delay_ms=0\n"
CHATGPT = Path(__file__).parent.parent / "fixtures" / "chatgpt_conversations.json"


async def turn(client: WsClient, frame: dict[str, Any]) -> dict[str, Any]:
    await client.send(frame)
    frames = await client.until(is_done)
    return next(f for f in frames if f["type"] in ("conversation_created", "message_started"))


async def branched(server: Server, headers: dict[str, str] | None = None) -> str:
    """q1 -> (a | b, shown): two versions of the second prompt."""
    client = await WsClient.connect(server.ws, headers=headers)
    first = await turn(client, {"type": "start_chat", "prompt": DEMO + "q1"})
    cid = first["conversationId"]
    older = await turn(client, {"type": "start_chat", "conversationId": cid, "prompt": DEMO + "a"})
    edit = {"type": "edit", "conversationId": cid, "messageId": older["userMessageId"]}
    await turn(client, {**edit, "prompt": DEMO + "b"})
    await client.close()
    return str(cid)


def post_file(server: Server, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    request = urllib.request.Request(server.http + "/api/import", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, orjson.loads(response.read()), response.headers)
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, orjson.loads(exc.read() or b"null"), exc.headers)


def shape(catchup: dict[str, Any]) -> tuple[Any, ...]:
    """The tree as content paths (ids differ after an import), and the shown leaf's."""
    by_id = {m["id"]: m for m in catchup["messages"]}

    def path(mid: str | None) -> tuple[str, ...]:
        found: list[str] = []
        while mid:
            found.append(f"{by_id[mid]['role']}:{by_id[mid]['content']}")
            mid = by_id[mid]["parentId"]
        return tuple(reversed(found))

    leaf = catchup["conversation"]["currentLeafId"]
    return tuple(sorted(path(m["id"]) for m in catchup["messages"])), path(leaf)


async def test_markdown_is_the_current_branch_and_json_the_whole_tree(server: Server) -> None:
    cid = await branched(server)
    md = call(server, "GET", f"/api/conversations/{cid}/export?format=md")
    assert md.headers["Content-Disposition"].startswith("attachment;")
    assert md.headers["Content-Type"].startswith("text/markdown")
    text = md.body.decode()
    assert text.startswith("# ") and "## You" in text and "## Assistant (demo/echo)" in text
    assert "\nb\n" in text and "\na\n" not in text  # the shown version only
    assert "2 messages of other versions are not shown" in text
    answer = call(server, "GET", f"/api/conversations/{cid}/export?format=json")
    assert answer.status == 200 and answer.body["format"] == "durachat"
    (exported,) = answer.body["conversations"]
    assert len(exported["messages"]) == 6
    bad = call(server, "GET", f"/api/conversations/{cid}/export?format=pdf")
    assert (bad.status, bad.code) == (400, "bad_request")


async def test_own_export_reimports_to_the_same_tree_once(
    two_users: tuple[Server, str, str],  # noqa: F811
) -> None:
    server, alice, bob = two_users
    cid = await branched(server, bearer(alice))
    archive = call(server, "GET", "/api/export", headers=bearer(alice))
    assert archive.status == 200
    assert archive.headers["Content-Disposition"].startswith("attachment;")
    body = orjson.dumps(archive.body)
    # Alice still has it: nothing to import
    assert post_file(server, body, bearer(alice)).body == {"imported": [], "skipped": 1}
    # Bob gets the same tree, once
    first = post_file(server, body, bearer(bob))
    assert first.status == 200 and len(first.body["imported"]) == 1
    assert post_file(server, body, bearer(bob)).body == {"imported": [], "skipped": 1}
    copy = call(
        server, "GET", f"/api/conversations/{first.body['imported'][0]}", headers=bearer(bob)
    )
    original = call(server, "GET", f"/api/conversations/{cid}", headers=bearer(alice))
    assert shape(copy.body) == shape(original.body)
    assert copy.body["conversation"]["title"] == original.body["conversation"]["title"]
    found = call(server, "GET", "/api/search?q=q1", headers=bearer(bob)).body["results"]
    assert any(r["conversationId"] == first.body["imported"][0] for r in found)
    # deleted, then imported again: back with the same tree
    assert call(server, "DELETE", f"/api/conversations/{cid}", headers=bearer(alice)).status == 204
    again = post_file(server, body, bearer(alice))
    assert len(again.body["imported"]) == 1
    restored = call(
        server, "GET", f"/api/conversations/{again.body['imported'][0]}", headers=bearer(alice)
    )
    assert shape(restored.body) == shape(original.body)


def test_a_chatgpt_export_imports_with_its_branch_once(server: Server) -> None:
    body = CHATGPT.read_bytes()
    first = post_file(server, body)
    assert first.status == 200 and len(first.body["imported"]) == 2, first.body
    assert post_file(server, body).body == {"imported": [], "skipped": 2}
    eggs = server.get(f"/api/conversations/{first.body['imported'][0]}")
    assert eggs["conversation"]["title"] == "Cooking eggs"
    tree, shown = shape(eggs)
    assert tree == (
        ("user:How do I boil an egg?",),
        ("user:How do I boil an egg?", "assistant:Simmer it for **nine minutes**."),
        ("user:How do I poach an egg?",),
        (
            "user:How do I poach an egg?",
            "assistant:Swirl simmering water and slide the egg in for three minutes.",
        ),
        (
            "user:How do I poach an egg?",
            "assistant:Swirl simmering water and slide the egg in for three minutes.",
            "user:Thanks!",
        ),
    )
    assert shown[-1] == "user:Thanks!"  # current_node
    replies = [m for m in eggs["messages"] if m["role"] == "assistant"]
    assert {m["model"] for m in replies} == {"gpt-4o"}
    assert all(m["status"] == "complete" for m in eggs["messages"])
    short = server.get(f"/api/conversations/{first.body['imported'][1]}")
    assert [m["content"] for m in short["messages"]] == [
        "Name a prime number.",
        "```\nprint(7)\n```",
    ]


def test_bad_files_are_400_and_big_ones_413(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_IMPORT_MAX_BYTES": "2000"})
    for body in (b"not json", b"{}", b"[1, 2]", b'{"format": "durachat", "version": 9}'):
        answer = post_file(server, body)
        assert (answer.status, answer.code) == (400, "bad_request"), body
        assert answer.body["error"]["message"]
    bad_tree = {"format": "durachat", "version": 1, "conversations": [{"id": "x"}]}
    answer = post_file(server, orjson.dumps(bad_tree))
    assert (answer.status, answer.code) == (400, "bad_request")
    assert "conversations.0" in answer.body["error"]["message"]
    big = post_file(server, CHATGPT.read_bytes())
    assert (big.status, big.code) == (413, "too_large")


async def test_durachat_export_writes_json_and_markdown(server: Server, tmp_path: Path) -> None:
    cid = await branched(server)
    done = cli(server.data_dir, "export", "--out", str(tmp_path / "json"))
    assert done.returncode == 0, done.stderr
    (written,) = (tmp_path / "json").glob("*.json")
    archive = json.loads(written.read_text())
    assert cid in {c["id"] for c in archive["conversations"]}
    done = cli(server.data_dir, "export", "--format", "md", "--out", str(tmp_path / "md"))
    assert done.returncode == 0, done.stderr
    assert any(cid[-8:] in p.name for p in (tmp_path / "md").glob("*.md"))
    stdout = cli(server.data_dir, "export")
    assert json.loads(stdout.stdout)["format"] == "durachat"
    unknown = cli(server.data_dir, "export", "--user", "nobody")
    assert unknown.returncode == 1 and "no user named" in unknown.stderr
