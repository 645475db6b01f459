"""Share links in the browser: the Share panel makes a link, a signed-out reader is
asked to sign in (logged-in-only link) and comes back to it, continues as a copy; a
public link needs no sign-in; the Account page lists and revokes links. Shared text
goes through the chat's sanitiser."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import MakeServer
from tests.ui.helpers import send, wait_status
from tests.ui.test_accounts import PASSWORD, set_up, sign_in

PROMPT = "Tell me about <img src=x onerror=alert(1)> sharing"


def make_link(page: Page, public: bool) -> str:
    page.get_by_role("button", name="Share").click()
    page.get_by_label("Anyone with the link, without signing in").set_checked(public)
    page.get_by_role("button", name="Create a link").click()
    link = page.get_by_label("Share link")
    expect(link).to_have_value(re.compile(r"/share/[A-Za-z0-9_-]{32,}$"))
    value = link.input_value()
    page.get_by_role("button", name="Close").click()
    return value


def test_share_sign_in_copy_public_and_revoke(
    make_server: MakeServer, browser: Browser, page: Page
) -> None:
    server = make_server({"DURACHAT_AUTH": "on"})
    set_up(page, server)
    send(page, PROMPT)
    wait_status(page, "complete")
    private, public = make_link(page, public=False), make_link(page, public=True)

    reader = browser.new_context().new_page()
    reader.on("dialog", lambda dialog: dialog.dismiss())  # an alert would be a script run
    try:
        reader.goto(private)
        expect(
            reader.get_by_role("heading", name="Sign in to see this conversation")
        ).to_be_visible()
        reader.get_by_role("button", name="Sign in").click()
        sign_in(reader, "alice", PASSWORD)
        expect(reader).to_have_url(private)  # back to the link
        expect(reader.locator("article.message.user")).to_contain_text(PROMPT)
        assert reader.locator(".markdown img").count() == 0
        reader.get_by_role("button", name="Continue as a copy").click()
        expect(reader).to_have_url(re.compile(r"/\?c="))
        expect(reader.locator("article.message.user").first).to_contain_text(PROMPT)
    finally:
        reader.context.close()

    anonymous = browser.new_context().new_page()
    try:
        anonymous.goto(public)
        expect(anonymous.locator("article.message.user")).to_contain_text(PROMPT)
        expect(anonymous.get_by_role("button", name="Continue as a copy")).to_have_count(0)
    finally:
        anonymous.context.close()

    page.goto(server.http + "/account")
    links = page.get_by_role("list", name="Your shared links").locator("li")
    expect(links).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())
    links.first.get_by_role("button", name=re.compile("^Revoke the link")).click()
    expect(links).to_have_count(1)
    page.goto(public)  # the newest, listed first, was revoked
    expect(page.get_by_role("heading", name="This link does not exist")).to_be_visible()
