"""What the UI tests do on a page."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Locator, Page, expect

from tests.e2e.server import Server


def chat_url(server: Server, conversation_id: str | None = None) -> str:
    return server.http + "/" + (f"?c={conversation_id}" if conversation_id else "")


def words(n: int) -> str:
    """The exact reply of `!demo chunks=n`."""
    return "".join(f"w{i} " for i in range(1, n + 1))


def send(page: Page, prompt: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(prompt)
    box.press("Enter")


def last_reply(page: Page) -> Locator:
    return page.locator("article.message.assistant").last


def reply_text(page: Page) -> str:
    return last_reply(page).locator(".markdown").inner_text()


def conversation_id(page: Page) -> str:
    expect(page).to_have_url(re.compile(r"\?c="))
    return parse_qs(urlparse(page.url).query)["c"][0]


def wait_text(page: Page, predicate: object, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        if last_reply(page).count():
            text = reply_text(page)
            if callable(predicate) and predicate(text):
                return text
        time.sleep(0.02)
    raise AssertionError(f"reply never matched; last text: {text[:300]!r}")


def wait_status(page: Page, status: str) -> None:
    expect(last_reply(page)).to_have_attribute("data-status", status)
