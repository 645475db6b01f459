"""Export and import in the browser: the Account page imports ChatGPT's export (once)
and downloads everything; a conversation downloads as Markdown and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.server import Server
from tests.ui.helpers import chat_url, conversation_id, send, wait_status

CHATGPT = Path(__file__).parent.parent / "fixtures" / "chatgpt_conversations.json"


def test_import_a_chatgpt_export_once_and_open_its_branch(server: Server, page: Page) -> None:
    page.goto(server.http + "/account")
    chooser = page.get_by_label("Import conversations")
    chooser.set_input_files(str(CHATGPT))
    expect(page.get_by_role("status").filter(has_text="Imported")).to_have_text(
        "Imported 2 conversations."
    )
    chooser.set_input_files(str(CHATGPT))
    expect(page.get_by_role("status").filter(has_text="Imported")).to_have_text(
        "Imported 0 conversations; 2 already here, skipped."
    )
    page.goto(chat_url(server))
    eggs = page.locator("ul.conversations li", has_text="Cooking eggs")
    expect(eggs).to_have_count(1)
    eggs.locator("a.title").click()
    expect(page.locator("article.message.user").last).to_contain_text("Thanks!")
    poach = page.locator("article.message.user", has_text="poach")
    expect(poach.locator(".sibling-count")).to_have_text("2 / 2")

    with page.expect_download() as everything:
        page.goto(server.http + "/account")
        page.get_by_role("link", name="Export everything (JSON)").click()
    archive = json.loads(Path(everything.value.path()).read_text())
    assert "Cooking eggs" in {c["title"] for c in archive["conversations"]}


def test_a_conversation_downloads_as_markdown_and_json(server: Server, page: Page) -> None:
    page.goto(chat_url(server))
    send(page, "!demo chunks=3 delay_ms=0\nexport me")
    wait_status(page, "complete")
    cid = conversation_id(page)
    page.get_by_label("Export this conversation").click()
    with page.expect_download() as md:
        page.get_by_role("link", name="Markdown (this branch)").click()
    assert md.value.suggested_filename == f"{cid}.md"
    text = Path(md.value.path()).read_text()
    assert "## You" in text and "export me" in text and "w1 w2 w3" in text
    with page.expect_download() as tree:
        page.get_by_role("link", name="JSON (every branch)").click()
    exported = json.loads(Path(tree.value.path()).read_text())
    assert [c["id"] for c in exported["conversations"]] == [cid]
