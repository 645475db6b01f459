"""Deleting a message in the browser: asks first, then the branch goes in every tab and
the older version is shown."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.e2e.server import Server
from tests.e2e.wsclient import WsClient, is_done
from tests.ui.helpers import chat_url
from tests.ui.test_views import run_async

DEMO = "!demo chunks=2 delay_ms=0\n"


async def two_versions(server: Server) -> str:
    client = await WsClient.connect(server.ws)
    try:

        async def turn(frame: dict[str, Any]) -> dict[str, Any]:
            await client.send(frame)
            frames = await client.until(is_done)
            return next(
                f for f in frames if f["type"] in ("conversation_created", "message_started")
            )

        first = await turn({"type": "start_chat", "prompt": DEMO + "first question"})
        cid = first["conversationId"]
        second = await turn({"type": "start_chat", "conversationId": cid, "prompt": DEMO + "old"})
        edit = {"type": "edit", "conversationId": cid, "messageId": second["userMessageId"]}
        await turn({**edit, "prompt": DEMO + "new version"})
        return str(cid)
    finally:
        await client.close()


def test_delete_asks_then_removes_the_branch_in_every_tab(
    server: Server, page: Page, browser: Browser
) -> None:
    cid = run_async(two_versions(server))
    other = browser.new_page()
    try:
        for tab in (page, other):
            tab.goto(chat_url(server, cid))
            expect(tab.locator("article.message.user").last).to_contain_text("new version")
        shown = page.locator("article.message.user").last
        # dismissing the confirmation deletes nothing
        page.once("dialog", lambda dialog: dialog.dismiss())
        shown.get_by_role("button", name="Delete message").click()
        expect(shown.locator(".sibling-count")).to_have_text("2 / 2")

        page.once("dialog", lambda dialog: dialog.accept())
        shown.get_by_role("button", name="Delete message").click()
        for tab in (page, other):
            users = tab.locator("article.message.user")
            expect(users.last).to_contain_text("old")
            expect(users.filter(has_text="new version")).to_have_count(0)
            expect(tab.locator(".sibling-count")).to_have_count(0)
            expect(tab.locator("article.message")).to_have_count(4)
    finally:
        other.close()
