"""Attachments in the browser: a file by the button, an image dropped on the message
box and one pasted into it; each shows as a chip, is sent, and the reply shows the
model received it (the text inlined under its name, the images by their size)."""

from __future__ import annotations

import base64

from playwright.sync_api import FilePayload, JSHandle, Page, expect

from tests.e2e.server import Server
from tests.e2e.test_uploads import png
from tests.ui.helpers import chat_url, last_reply, send, wait_status

_DATA_TRANSFER = """([name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  return data;
}"""


def _transfer(page: Page, name: str, data: bytes, media_type: str) -> JSHandle:
    return page.evaluate_handle(_DATA_TRANSFER, [name, media_type, base64.b64encode(data).decode()])


def _ready_chips(page: Page, count: int) -> None:
    chips = page.get_by_label("Attachments to send").locator("li")
    expect(chips).to_have_count(count)
    for index in range(count):
        expect(chips.nth(index)).to_have_attribute("data-status", "ready")


def test_attach_by_button_drop_and_paste(server: Server, page: Page) -> None:
    page.goto(chat_url(server))
    # by the button (the hidden file input it opens)
    page.locator("input.file-input").set_input_files(
        files=[FilePayload(name="notes.md", mimeType="text/markdown", buffer=b"kumquat ledger\n")]
    )
    _ready_chips(page, 1)
    # a chip can be removed before sending
    page.locator("input.file-input").set_input_files(
        files=[FilePayload(name="oops.txt", mimeType="text/plain", buffer=b"not this one")]
    )
    _ready_chips(page, 2)
    page.get_by_role("button", name="Remove oops.txt").click()
    _ready_chips(page, 1)
    send(page, "What is in the file?")
    wait_status(page, "complete")
    reply = last_reply(page)
    expect(reply).to_contain_text("File notes.md:")
    expect(reply).to_contain_text("kumquat ledger")
    expect(reply).not_to_contain_text("not this one")
    user = page.locator("article.message.user").last
    expect(user.get_by_role("link", name="notes.md")).to_be_visible()
    expect(user.locator(".user-text")).to_have_text("What is in the file?")
    expect(page.get_by_label("Attachments to send")).to_have_count(0)

    # an image dropped on the message box
    dropped = _transfer(page, "dropped.png", png(30, 20), "image/png")
    page.dispatch_event("form.composer", "drop", {"dataTransfer": dropped})
    _ready_chips(page, 1)
    # and one pasted into it
    pasted = _transfer(page, "", png(12, 8), "image/png")
    page.get_by_label("Message", exact=True).evaluate(
        "(box, data) => box.dispatchEvent(new ClipboardEvent('paste', "
        "{clipboardData: data, bubbles: true, cancelable: true}))",
        pasted,
    )
    _ready_chips(page, 2)
    send(page, "Describe both")
    wait_status(page, "complete")
    expect(last_reply(page)).to_contain_text("image 30x20, image 12x8")
    user = page.locator("article.message.user").last
    expect(user.locator(".attachment-chips li")).to_have_count(2)
    expect(user.locator(".attachment-chips")).to_contain_text("image 30x20")
