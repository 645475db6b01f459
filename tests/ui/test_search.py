"""The sidebar search box: server results with marked matches (as text, never HTML),
and opening one shows its message on its branch (`?c=...&m=...`)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.server import Server
from tests.e2e.wsclient import WsClient, is_done
from tests.ui.helpers import chat_url
from tests.ui.test_views import run_async

DEMO = "!demo chunks=2 delay_ms=0\n"


async def branched_conversation(server: Server) -> dict[str, str]:
    """A conversation whose first prompt was edited (the kiwi branch is not shown),
    followed by enough turns that the first message is scrolled out of view."""
    client = await WsClient.connect(server.ws)
    try:

        async def turn(frame: dict[str, Any]) -> dict[str, Any]:
            await client.send(frame)
            frames = await client.until(is_done)
            return next(
                f for f in frames if f["type"] in ("conversation_created", "message_started")
            )

        first = await turn(
            {"type": "start_chat", "prompt": DEMO + "<img src=x onerror=alert(1)> ripe kiwis"}
        )
        cid = first["conversationId"]
        edit = {"type": "edit", "conversationId": cid, "messageId": first["userMessageId"]}
        await turn({**edit, "prompt": DEMO + "ripe mangos"})
        for i in range(12):
            await turn({"type": "start_chat", "conversationId": cid, "prompt": DEMO + f"q{i}"})
        return {"cid": cid, "kiwi": first["userMessageId"]}
    finally:
        await client.close()


def test_search_finds_a_message_on_another_branch_and_opens_it(server: Server, page: Page) -> None:
    ids = run_async(branched_conversation(server))
    page.goto(chat_url(server, ids["cid"]))
    expect(page.locator("article.message.user").first).to_contain_text("ripe mangos")
    page.on("dialog", lambda dialog: dialog.dismiss())  # an alert would be a script run

    page.get_by_label("Search conversations").fill("kiwis")
    result = page.locator(f'.search-results li[data-message-id="{ids["kiwi"]}"]')
    expect(result).to_be_visible()
    expect(result.locator("mark")).to_have_text("kiwis")
    expect(result).to_contain_text("<img src=x onerror=alert(1)>")  # shown as text
    assert page.locator(".search-results img").count() == 0

    result.locator("a").click()
    expect(page).to_have_url(re.compile(rf"\?c={ids['cid']}&m={ids['kiwi']}$"))
    target = page.locator(f'article[data-message-id="{ids["kiwi"]}"]')
    expect(target).to_be_visible()
    expect(target).to_have_class(re.compile(r"\bfocused\b"))
    expect(target).to_be_in_viewport()
    expect(page.locator("article.message.user").filter(has_text="ripe mangos")).to_have_count(0)


def test_a_url_with_a_message_opens_its_branch(server: Server, page: Page) -> None:
    ids = run_async(branched_conversation(server))
    page.goto(chat_url(server, ids["cid"]) + f"&m={ids['kiwi']}")
    target = page.locator(f'article[data-message-id="{ids["kiwi"]}"]')
    expect(target).to_be_in_viewport()
    expect(target).to_contain_text("ripe kiwis")


def test_no_results_are_said_so(server: Server, page: Page) -> None:
    page.goto(chat_url(server))
    page.get_by_label("Search conversations").fill("nothingmatchesthisword")
    expect(page.locator(".search-results .empty")).to_have_text("No messages found")
