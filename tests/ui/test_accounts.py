"""Accounts in the browser, with `DURACHAT_AUTH=on` as `make run` starts: first-run
setup, chat, sign out, sign in (back to the URL that asked), the admin page, API
tokens, and another user who opens the first user's `?c=` URL."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import call
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.ui.helpers import chat_url, conversation_id, reply_text, send, wait_status, words

PASSWORD = "correct horse battery"
BOB_PASSWORD = "bobs own password"


def sign_in(page: Page, username: str, password: str) -> None:
    expect(page.get_by_role("heading", name="Sign in to DuraChat")).to_be_visible()
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def set_up(page: Page, server: Server) -> None:
    page.goto(chat_url(server))
    expect(page).to_have_url(re.compile(r"/setup$"))
    page.get_by_label("Username", exact=True).fill("alice")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD + "x")
    expect(page.get_by_text("The two passwords differ.")).to_be_visible()
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create the account").click()
    expect(page.get_by_label("Message", exact=True)).to_be_visible()


def test_setup_chat_sign_out_sign_in_and_another_user_sees_not_found(
    make_server: MakeServer, browser: Browser, page: Page
) -> None:
    server = make_server({"DURACHAT_AUTH": "on"})
    set_up(page, server)
    expect(page).to_have_url(server.http + "/")
    send(page, "!demo chunks=12")
    wait_status(page, "complete")
    secret_reply = reply_text(page)
    assert secret_reply == words(12).strip()
    cid = conversation_id(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(chat_url(server, cid))  # a signed-out visit to a conversation: login first
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Username", exact=True).fill("alice")
    page.get_by_label("Password", exact=True).fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong username or password")
    sign_in(page, "alice", PASSWORD)
    expect(page).to_have_url(chat_url(server, cid))  # back where the visit was going
    wait_status(page, "complete")
    assert reply_text(page) == secret_reply

    # The admin page: add Bob.
    page.get_by_role("link", name="Users").click()
    expect(page).to_have_url(re.compile(r"/admin$"))
    page.get_by_label("Username", exact=True).fill("bob")
    page.get_by_label("Password", exact=True).fill(BOB_PASSWORD)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("tr[data-username=bob]")).to_contain_text("Active")

    # Bob opens Alice's conversation URL: "not found", never her text.
    bob_context = browser.new_context()
    bob = bob_context.new_page()
    bob.goto(chat_url(server, cid))
    sign_in(bob, "bob", BOB_PASSWORD)
    expect(bob.get_by_role("heading", name="Conversation not found")).to_be_visible()
    expect(bob.locator("article.message")).to_have_count(0)
    assert "w12" not in bob.content()
    expect(bob.locator(".conversations .title")).to_have_count(0)
    expect(bob.get_by_role("link", name="Users")).to_have_count(0)  # not an admin

    # Alice disables Bob: his page is signed out at once, with the reason.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disable bob").click()
    expect(page.locator("tr[data-username=bob]")).to_contain_text("Disabled")
    expect(bob).to_have_url(re.compile(r"/login$"))
    expect(bob.get_by_text("this account is disabled")).to_be_visible()
    bob_context.close()

    # The last admin cannot be disabled: the page says why.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disable alice").click()
    expect(page.get_by_role("alert")).to_contain_text("last admin")


def test_api_tokens_are_shown_once_work_and_revoke(make_server: MakeServer, page: Page) -> None:
    server = make_server({"DURACHAT_AUTH": "on"})
    set_up(page, server)
    page.get_by_role("link", name="Account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create a token").click()
    token = page.get_by_test_id("new-token").inner_text().strip()
    bearer = {"Authorization": f"Bearer {token}"}
    me = call(server, "GET", "/api/auth/me", headers=bearer)
    assert me.status == 200 and me.body["user"]["username"] == "alice"
    listed = page.get_by_role("list", name="Your API tokens")
    expect(listed).to_contain_text("laptop")
    assert token not in listed.inner_text()  # the list never shows the secret

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke laptop").click()
    expect(listed).to_contain_text("No tokens yet.")
    assert call(server, "GET", "/api/auth/me", headers=bearer).status == 401

    # Password change: the old password stops working.
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill("a brand new password")
    page.get_by_role("button", name="Change the password").click()
    expect(page.get_by_text("Password changed.")).to_be_visible()
    old = {"username": "alice", "password": PASSWORD}
    assert call(server, "POST", "/api/auth/login", old).status == 401
    page.get_by_role("link", name="Back to chat").click()
    expect(page.get_by_label("Message", exact=True)).to_be_visible()
