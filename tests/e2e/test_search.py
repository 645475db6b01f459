"""`GET /api/search` against a real server: prompts and finished replies are found,
streaming ones only once they end; bad queries get a clear 400, never a 500; another
user's text is never returned."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from tests.e2e.browser import call
from tests.e2e.server import Server
from tests.e2e.test_http_and_auth import bearer, two_users  # noqa: F401 (fixture)
from tests.e2e.test_streaming import start, wait_status
from tests.e2e.wsclient import WsClient, is_done


def search(server: Server, query: str, headers: dict[str, str] | None = None) -> Any:
    return call(server, "GET", "/api/search?q=" + urllib.parse.quote(query), headers=headers)


def found(server: Server, query: str) -> list[dict[str, Any]]:
    """The message hits (titles, which start as the first prompt, left out)."""
    answer = search(server, query)
    assert answer.status == 200, answer.body
    return [h for h in answer.body["results"] if h["messageId"] is not None]


async def test_prompts_and_finished_replies_are_found_with_snippets(server: Server) -> None:
    client = await WsClient.connect(server.ws)
    created = await start(client, "!demo chunks=40 delay_ms=25\nwhere do pangolins sleep")
    cid, reply_id = created["conversationId"], created["messageId"]
    prompt_hits = found(server, "pangolins")
    assert [h["messageId"] for h in prompt_hits] == [created["userMessageId"]]
    hit = prompt_hits[0]
    assert hit["conversationId"] == cid and hit["role"] == "user"
    assert {"text": "pangolins", "match": True} in hit["snippet"]
    # the reply streams: not indexed until it ends (flushes never touch the index)
    assert reply_id not in [h["messageId"] for h in found(server, "w33")]
    await client.until(is_done)
    await client.close()
    await wait_status(server, cid, reply_id)
    reply_hits = found(server, "w33")
    assert reply_id in [h["messageId"] for h in reply_hits]


@pytest.mark.parametrize(
    "query", ['"', "AND", "NEAR(", "a:*", "'", "body:x", "(((", "%_\\", "*", "\ue000"]
)
def test_query_syntax_is_never_an_error(server: Server, query: str) -> None:
    answer = search(server, query)
    assert answer.status == 200, (query, answer.body)
    assert isinstance(answer.body["results"], list)


def test_empty_overlong_and_bad_limits_are_400(server: Server) -> None:
    for path in (
        "/api/search",
        "/api/search?q=",
        "/api/search?q=%20%20",
        "/api/search?q=" + "x" * 501,
        "/api/search?q=a&limit=0",
        "/api/search?q=a&limit=51",
        "/api/search?q=a&limit=many",
    ):
        answer = call(server, "GET", path)
        assert (answer.status, answer.code) == (400, "bad_request"), (path, answer.body)
        assert answer.body["error"]["message"]


async def test_search_never_returns_another_users_text(
    two_users: tuple[Server, str, str],  # noqa: F811
) -> None:
    server, alice, bob = two_users
    client = await WsClient.connect(server.ws, headers=bearer(alice))
    created = await start(client, "!demo chunks=2 delay_ms=1\nalice keeps a xylophone")
    await client.until(is_done)
    await client.close()
    mine = search(server, "xylophone", bearer(alice)).body["results"]
    assert created["userMessageId"] in [h["messageId"] for h in mine]
    assert search(server, "xylophone", bearer(bob)).body["results"] == []
    assert search(server, "xylophone").status == 401
