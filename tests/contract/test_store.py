"""The `Store` contract, run against every backend (SQLite and PostgreSQL).

Each test gets a fresh migrated store from `conftest.py`. The tests speak only the
protocol, except where the protocol has no way to set up a state (disabling a user,
forcing equal timestamps): those go through `_execute`, one direct SQL write.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, fields
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from durachat.domain import Conversation, ErrorInfo, Message, Role, Status, Usage, User, new_id
from durachat.errors import BadRequest, Conflict, NotFound
from durachat.store.base import (
    ClientCommand,
    ConversationPatch,
    FinalState,
    FlushItem,
    NewConversation,
    NewTurn,
    conversation_cursor,
)
from durachat.store.sql import SqlStore
from durachat.store.tables import conversations, users

# helpers


@dataclass
class Turn:
    conversation: Conversation
    prompt: Message | None
    reply: Message


async def _execute(store: SqlStore, statement: Executable) -> None:
    """A direct write for states the protocol cannot create."""

    async def work(conn: AsyncConnection) -> None:
        await conn.execute(statement)

    await store._write(work)


async def make_user(store: SqlStore, name: str = "alice") -> User:
    return await store.create_user(name, f"hash-of-{name}", is_admin=False)


def user_message(conversation_id: str, content: str = "hello", **kw: Any) -> Message:
    return Message(
        id=new_id(),
        conversation_id=conversation_id,
        parent_id=kw.pop("parent_id", None),
        role=Role.USER,
        content=content,
        status=Status.COMPLETE,
        seq=0,
        **kw,
    )


def reply_message(conversation_id: str, parent_id: str | None) -> Message:
    return Message(
        id=new_id(),
        conversation_id=conversation_id,
        parent_id=parent_id,
        role=Role.ASSISTANT,
        content="",
        status=Status.STREAMING,
        seq=0,
        model="echo",
        provider="demo",
    )


async def start_conversation(
    store: SqlStore, user: User, content: str = "hello", client_message_id: str | None = None
) -> Turn:
    conversation_id = new_id()
    prompt = user_message(conversation_id, content, client_message_id=client_message_id)
    reply = reply_message(conversation_id, prompt.id)
    new = NewConversation(conversation_id, user.id, "A title", "echo", "demo", "be brief")
    conversation = await store.create_turn(
        NewTurn(user.id, conversation_id, reply, user_message=prompt, conversation=new)
    )
    return Turn(conversation, prompt, reply)


async def continue_conversation(
    store: SqlStore,
    user: User,
    conversation_id: str,
    parent_id: str | None,
    content: str | None = "more",
    client_message_id: str | None = None,
) -> Turn:
    prompt = None
    if content is not None:
        prompt = user_message(
            conversation_id, content, parent_id=parent_id, client_message_id=client_message_id
        )
    reply = reply_message(conversation_id, prompt.id if prompt else parent_id)
    turn = NewTurn(user.id, conversation_id, reply, user_message=prompt)
    return Turn(await store.create_turn(turn), prompt, reply)


async def finish(store: SqlStore, message: Message, text: str = "done", base: int = 0) -> None:
    final = FinalState(Status.COMPLETE, Usage(3, 4))
    item = FlushItem(
        message.id, message.epoch, delta=text, seq=1, final=final, base=base, reasoning_base=0
    )
    assert await store.apply_flush([item]) == set()


# lifecycle


async def test_ping_dialect_and_repeated_migrate(store: SqlStore) -> None:
    await store.ping()
    assert store.dialect in ("sqlite", "postgresql")
    await store.migrate()
    await store.ping()


# users and tokens


async def test_create_get_and_find_user(store: SqlStore) -> None:
    created = await store.create_user("alice", "argon-hash", is_admin=True)
    assert await store.get_user(created.id) == created
    found = await store.find_user("alice")
    assert found == (created, "argon-hash")
    assert created.is_admin and not created.disabled
    assert await store.get_user("nobody") is None
    assert await store.find_user("bob") is None


async def test_duplicate_username_is_conflict(store: SqlStore) -> None:
    await make_user(store, "alice")
    with pytest.raises(Conflict):
        await make_user(store, "alice")
    await make_user(store, "Alice")  # usernames are compared exactly


async def test_token_lookup(store: SqlStore) -> None:
    alice = await make_user(store, "alice")
    bob = await make_user(store, "bob")
    token_id = await store.create_api_token(alice.id, "laptop", "hash-a")
    await store.create_api_token(bob.id, "phone", "hash-b")
    assert token_id
    assert await store.user_for_token("hash-a") == alice
    assert await store.user_for_token("hash-b") == bob
    assert await store.user_for_token("hash-c") is None


async def test_duplicate_token_hash_and_unknown_user(store: SqlStore) -> None:
    alice = await make_user(store)
    await store.create_api_token(alice.id, "one", "same-hash")
    with pytest.raises(Conflict):
        await store.create_api_token(alice.id, "two", "same-hash")
    with pytest.raises(NotFound):
        await store.create_api_token("nobody", "three", "other-hash")


async def test_disabled_user_is_not_returned_for_token(store: SqlStore) -> None:
    alice = await make_user(store)
    await store.create_api_token(alice.id, "laptop", "hash-a")
    await _execute(store, update(users).where(users.c.id == alice.id).values(disabled=True))
    assert await store.user_for_token("hash-a") is None
    user = await store.get_user(alice.id)
    assert user is not None and user.disabled


# starting replies


async def test_create_turn_with_new_conversation(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice, client_message_id="c-1")
    conversation = turn.conversation
    assert conversation.user_id == alice.id
    assert (conversation.title, conversation.model, conversation.provider) == (
        "A title",
        "echo",
        "demo",
    )
    assert conversation.system_prompt == "be brief"
    assert conversation.current_leaf_id == turn.reply.id
    assert conversation.active_message_id == turn.reply.id
    assert not conversation.pinned and not conversation.archived
    assert await store.get_conversation(alice.id, conversation.id) == conversation
    assert await store.list_messages(alice.id, conversation.id) == [turn.prompt, turn.reply]


async def test_create_turn_in_existing_conversation(store: SqlStore) -> None:
    alice = await make_user(store)
    first = await start_conversation(store, alice)
    await finish(store, first.reply)
    second = await continue_conversation(store, alice, first.conversation.id, first.reply.id)
    assert second.conversation.current_leaf_id == second.reply.id
    assert second.conversation.active_message_id == second.reply.id
    assert second.conversation.updated_at > first.conversation.updated_at
    listed = await store.list_messages(alice.id, first.conversation.id)
    assert [m.id for m in listed] == [
        first.prompt.id if first.prompt else "",
        first.reply.id,
        second.prompt.id if second.prompt else "",
        second.reply.id,
    ]
    assert listed[1].content == "done" and listed[1].status is Status.COMPLETE


async def test_regenerate_without_user_message(store: SqlStore) -> None:
    alice = await make_user(store)
    first = await start_conversation(store, alice)
    await finish(store, first.reply)
    prompt_id = first.prompt.id if first.prompt else None
    again = await continue_conversation(store, alice, first.conversation.id, prompt_id, None)
    assert again.prompt is None
    stored = await store.get_message(alice.id, again.reply.id)
    assert stored.parent_id == prompt_id
    assert len(await store.list_messages(alice.id, first.conversation.id)) == 3


async def test_second_reply_while_one_streams_is_conflict(store: SqlStore) -> None:
    alice = await make_user(store)
    first = await start_conversation(store, alice)
    conversation_id = first.conversation.id
    with pytest.raises(Conflict, match="already streaming"):
        await continue_conversation(store, alice, conversation_id, first.reply.id)
    assert len(await store.list_messages(alice.id, conversation_id)) == 2
    conversation = await store.get_conversation(alice.id, conversation_id)
    assert conversation.active_message_id == first.reply.id


async def test_client_message_id_is_unique_per_user(store: SqlStore) -> None:
    alice = await make_user(store, "alice")
    bob = await make_user(store, "bob")
    first = await start_conversation(store, alice, client_message_id="key-1")
    await finish(store, first.reply)
    with pytest.raises(Conflict):
        await start_conversation(store, alice, client_message_id="key-1")
    with pytest.raises(Conflict):
        await continue_conversation(
            store, alice, first.conversation.id, first.reply.id, client_message_id="key-1"
        )
    # the failed turns left nothing behind: no conversation, no active reply
    page = await store.list_conversations(alice.id, limit=10)
    assert [c.id for c in page.conversations] == [first.conversation.id]
    assert page.conversations[0].active_message_id is None
    await start_conversation(store, bob, client_message_id="key-1")
    await start_conversation(store, alice, client_message_id=None)
    await start_conversation(store, alice, client_message_id=None)


# scoping by user


async def test_another_users_data_is_not_found_everywhere(store: SqlStore) -> None:
    alice = await make_user(store, "alice")
    mallory = await make_user(store, "mallory")
    turn = await start_conversation(store, alice)
    conversation_id = turn.conversation.id
    with pytest.raises(NotFound):
        await store.get_conversation(mallory.id, conversation_id)
    with pytest.raises(NotFound):
        await store.list_messages(mallory.id, conversation_id)
    with pytest.raises(NotFound):
        await store.update_conversation(mallory.id, conversation_id, ConversationPatch(title="x"))
    with pytest.raises(NotFound):
        await store.delete_conversation(mallory.id, conversation_id)
    with pytest.raises(NotFound):
        await store.get_message(mallory.id, turn.reply.id)
    await finish(store, turn.reply)
    with pytest.raises(NotFound):
        await continue_conversation(store, mallory, conversation_id, turn.reply.id)
    assert (await store.list_conversations(mallory.id, limit=10)).conversations == []
    # nothing of Alice's changed
    assert (await store.get_conversation(alice.id, conversation_id)).title == "A title"
    assert len(await store.list_messages(alice.id, conversation_id)) == 2


async def test_unknown_ids_are_not_found(store: SqlStore) -> None:
    alice = await make_user(store)
    with pytest.raises(NotFound):
        await store.get_conversation(alice.id, "missing")
    with pytest.raises(NotFound):
        await store.list_messages(alice.id, "missing")
    with pytest.raises(NotFound):
        await store.update_conversation(alice.id, "missing", ConversationPatch(pinned=True))
    with pytest.raises(NotFound):
        await store.delete_conversation(alice.id, "missing")
    with pytest.raises(NotFound):
        await store.get_message(alice.id, "missing")


# listing


async def _five_conversations(store: SqlStore, user: User) -> list[str]:
    ids = []
    for _ in range(5):
        turn = await start_conversation(store, user)
        await finish(store, turn.reply)
        ids.append(turn.conversation.id)
    return ids


async def _all_pages(store: SqlStore, user: User, limit: int, archived: bool = False) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = await store.list_conversations(
            user.id, limit=limit, cursor=cursor, archived=archived
        )
        assert len(page.conversations) <= limit
        seen += [c.id for c in page.conversations]
        if page.next_cursor is None:
            return seen
        assert page.next_cursor == conversation_cursor(page.conversations[-1])
        cursor = page.next_cursor
    raise AssertionError("pagination did not end")


async def test_list_is_newest_first_and_paginates(store: SqlStore) -> None:
    alice = await make_user(store, "alice")
    bob = await make_user(store, "bob")
    ids = await _five_conversations(store, alice)
    await start_conversation(store, bob)
    first = await store.list_conversations(alice.id, limit=2)
    assert [c.id for c in first.conversations] == [ids[4], ids[3]]
    assert first.next_cursor is not None
    assert await _all_pages(store, alice, limit=2) == ids[::-1]
    exact = await store.list_conversations(alice.id, limit=5)
    assert exact.next_cursor is None and len(exact.conversations) == 5


async def test_list_breaks_time_ties_by_id(store: SqlStore) -> None:
    alice = await make_user(store)
    ids = await _five_conversations(store, alice)
    same = conversations.c.id.in_(ids)
    stamp = "2030-01-01T00:00:00.000000Z"
    await _execute(store, update(conversations).where(same).values(updated_at=stamp))
    assert await _all_pages(store, alice, limit=2) == sorted(ids, reverse=True)


async def test_list_archived_separately(store: SqlStore) -> None:
    alice = await make_user(store)
    ids = await _five_conversations(store, alice)
    await store.update_conversation(alice.id, ids[1], ConversationPatch(archived=True))
    assert ids[1] not in await _all_pages(store, alice, limit=10)
    assert await _all_pages(store, alice, limit=10, archived=True) == [ids[1]]


async def test_list_rejects_bad_cursor_and_limit(store: SqlStore) -> None:
    alice = await make_user(store)
    with pytest.raises(BadRequest):
        await store.list_conversations(alice.id, limit=10, cursor="no-separator")
    with pytest.raises(BadRequest):
        await store.list_conversations(alice.id, limit=0)


# updating


@pytest.mark.parametrize(
    "patch",
    [
        ConversationPatch(title="Renamed ✨"),
        ConversationPatch(pinned=True),
        ConversationPatch(archived=True),
        ConversationPatch(model="gpt-x"),
        ConversationPatch(provider="openai"),
        ConversationPatch(system_prompt="Answer in French."),
    ],
    ids=["title", "pinned", "archived", "model", "provider", "system_prompt"],
)
async def test_patch_each_field(store: SqlStore, patch: ConversationPatch) -> None:
    alice = await make_user(store)
    before = (await start_conversation(store, alice)).conversation
    after = await store.update_conversation(alice.id, before.id, patch)
    changed = {k: v for k, v in vars_of(patch).items() if v is not None}
    assert {k: vars_of(after)[k] for k in changed} == changed
    unchanged = set(vars_of(patch)) - set(changed)
    assert {k: vars_of(after)[k] for k in unchanged} == {k: vars_of(before)[k] for k in unchanged}
    assert after.updated_at == before.updated_at, "a patch does not reorder the list"
    assert await store.get_conversation(alice.id, before.id) == after


def vars_of(value: ConversationPatch | Conversation) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in fields(value)}


async def test_patch_current_leaf(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice)
    other = await start_conversation(store, alice)
    prompt_id = turn.prompt.id if turn.prompt else ""
    patched = await store.update_conversation(
        alice.id, turn.conversation.id, ConversationPatch(current_leaf_id=prompt_id)
    )
    assert patched.current_leaf_id == prompt_id
    for bad in (other.reply.id, "missing"):
        with pytest.raises(BadRequest):
            await store.update_conversation(
                alice.id, turn.conversation.id, ConversationPatch(current_leaf_id=bad)
            )
    stored = await store.get_conversation(alice.id, turn.conversation.id)
    assert stored.current_leaf_id == prompt_id


async def test_retitle_only_replaces_the_expected_title(store: SqlStore) -> None:
    alice = await make_user(store, "alice")
    bob = await make_user(store, "bob")
    turn = await start_conversation(store, alice)  # titled "A title"
    conversation_id = turn.conversation.id
    assert await store.retitle(bob.id, conversation_id, "A title", "Stolen") is None
    assert await store.retitle(alice.id, conversation_id, "Not it", "Wrong") is None
    assert await store.retitle(alice.id, "missing", "A title", "Gone") is None
    assert (await store.get_conversation(alice.id, conversation_id)).title == "A title"
    retitled = await store.retitle(alice.id, conversation_id, "A title", "Better")
    assert retitled is not None and retitled.title == "Better"
    assert retitled.updated_at == turn.conversation.updated_at  # a title is no activity
    assert await store.get_conversation(alice.id, conversation_id) == retitled


# streaming writes


async def test_flushes_append_exactly_and_move_seq(store: SqlStore) -> None:
    alice = await make_user(store)
    reply = (await start_conversation(store, alice)).reply
    pieces = ["Hel", "lo, ", "", "wörld", " 🌍"]
    for seq, piece in enumerate(pieces, start=1):
        base = len("".join(pieces[: seq - 1]))
        item = FlushItem(
            reply.id,
            0,
            delta=piece,
            seq=seq,
            reasoning_delta=f"r{seq}.",
            base=base,
            reasoning_base=3 * (seq - 1),
        )
        item.reasoning_seq = seq
        assert await store.apply_flush([item]) == set()
        stored = await store.get_message(alice.id, reply.id)
        assert stored.content == "".join(pieces[:seq])
        assert stored.seq == seq
        assert stored.status is Status.STREAMING
    assert stored.reasoning == "r1.r2.r3.r4.r5."
    assert stored.reasoning_seq == 5


# idempotent flushes: a flush that committed but whose acknowledgement was lost (the
# connection died after COMMIT) is retried; the retry must not duplicate its text.
# Each runs with the stored seq the item follows (`base_seq`: the store may append
# when it finds it) and without (the store always cuts the text at `base`).

KNOWN_SEQ = pytest.mark.parametrize("known", [True, False], ids=["base_seq", "base_only"])


async def test_a_text_only_flush_keeps_the_reasoning_seq(store: SqlStore) -> None:
    """Group commit sends reasoning_seq 0 with a flush that has no reasoning; the
    stored reasoning_seq must not move back (a client resuming from a snapshot
    would take later reasoning for a gap, or repeat it)."""
    alice = await make_user(store)
    reply = (await start_conversation(store, alice)).reply
    thought = FlushItem(reply.id, 0, "a ", 1, "hmm ", 2, base=0, reasoning_base=0)
    text_only = FlushItem(reply.id, 0, "b ", 2, "", 0, base=2, reasoning_base=4)
    assert await store.apply_flush([thought]) == set()
    assert await store.apply_flush([text_only]) == set()
    stored = await store.get_message(alice.id, reply.id)
    assert (stored.content, stored.seq, stored.reasoning, stored.reasoning_seq) == (
        "a b ",
        2,
        "hmm ",
        2,
    )


def _after(seq: int, known: bool) -> int | None:
    return seq if known else None


@KNOWN_SEQ
async def test_a_flush_written_twice_leaves_its_text_once(store: SqlStore, known: bool) -> None:
    alice = await make_user(store)
    reply = (await start_conversation(store, alice)).reply
    first = FlushItem(
        reply.id, 0, "héllo 😀 ", 1, "thinking 🤔 ", 1, base=0, reasoning_base=0,
        base_seq=_after(0, known),
    )  # fmt: skip
    # reasoning alone does not move the seq: the store cannot tell from it
    thought = FlushItem(
        reply.id, 0, "", 1, "more ", 2, base=8, reasoning_base=11, base_seq=_after(1, known)
    )
    final = FinalState(Status.COMPLETE, Usage(5, 6))
    last = FlushItem(
        reply.id, 0, "wörld 🇫🇷", 2, "done", 3, final=final, base=8, reasoning_base=16,
        base_seq=_after(1, known),
    )  # fmt: skip
    for item in (first, thought, last):
        for _ in range(2):
            assert await store.apply_flush([item]) == set()
        stored = await store.get_message(alice.id, reply.id)
        assert len(stored.content) == item.base + len(item.delta)
        assert len(stored.reasoning) == item.reasoning_base + len(item.reasoning_delta)
    assert (stored.content, stored.reasoning) == ("héllo 😀 wörld 🇫🇷", "thinking 🤔 more done")
    assert (stored.seq, stored.reasoning_seq, stored.status) == (2, 3, Status.COMPLETE)
    assert stored.usage == Usage(5, 6)


@KNOWN_SEQ
@pytest.mark.parametrize("first_landed", [True, False], ids=["landed", "lost"])
async def test_a_merged_retry_is_exact_whether_or_not_the_first_attempt_landed(
    store: SqlStore, first_landed: bool, known: bool
) -> None:
    alice = await make_user(store)
    reply = (await start_conversation(store, alice)).reply
    at_start = _after(0, known)
    first = FlushItem(reply.id, 0, "one 😀 ", 1, "r1 ", 1, base=0, reasoning_base=0)
    first.base_seq = at_start
    if first_landed:
        await store.apply_flush([first])  # landed; its caller saw an error
    # the retry: the failed batch's base, its text followed by what arrived since
    merged = FlushItem(reply.id, 0, "one 😀 two 👩🏽‍💻 ", 2, "r1 r2 ", 2, base=0, reasoning_base=0)
    merged.base_seq = at_start
    assert await store.apply_flush([merged]) == set()
    after = FlushItem(reply.id, 0, "three", 3, "", 2, base=len(merged.delta), reasoning_base=6)
    after.base_seq = _after(2, known)
    await store.apply_flush([after])
    stored = await store.get_message(alice.id, reply.id)
    assert (stored.content, stored.seq) == ("one 😀 two 👩🏽‍💻 three", 3)
    assert (stored.reasoning, stored.reasoning_seq) == ("r1 r2 ", 2)


@KNOWN_SEQ
async def test_a_nul_character_is_stored_as_one_replacement_character(
    store: SqlStore, known: bool
) -> None:
    alice = await make_user(store)
    reply = (await start_conversation(store, alice)).reply
    pieces = ["a\x00b", "c😀", "\x00"]
    base = 0
    for seq, piece in enumerate(pieces, start=1):
        item = FlushItem(reply.id, 0, piece, seq, piece, seq, base=base, reasoning_base=base)
        item.base_seq = _after(seq - 1, known)
        for _ in range(2):
            await store.apply_flush([item])
        base += len(piece)
    stored = await store.get_message(alice.id, reply.id)
    assert stored.content == stored.reasoning == "a\ufffdbc😀\ufffd"


async def test_epoch_fence_skips_and_reports_stale_writes(store: SqlStore) -> None:
    alice = await make_user(store)
    fresh = (await start_conversation(store, alice)).reply
    fenced = (await start_conversation(store, alice)).reply
    items = [
        FlushItem(fresh.id, 0, delta="kept", seq=1, base=0, reasoning_base=0),
        FlushItem(fenced.id, 1, delta="zombie", seq=9, base=0, reasoning_base=0),
        FlushItem("missing", 0, delta="nobody", seq=1, base=0, reasoning_base=0),
    ]
    assert await store.apply_flush(items) == {fenced.id, "missing"}
    assert (await store.get_message(alice.id, fresh.id)).content == "kept"
    untouched = await store.get_message(alice.id, fenced.id)
    assert (untouched.content, untouched.seq) == ("", 0)


async def test_final_write_ends_the_reply(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice)
    reply = turn.reply
    await store.apply_flush([FlushItem(reply.id, 0, "partial ", 1, base=0, reasoning_base=0)])
    final = FinalState(Status.COMPLETE, usage=Usage(input_tokens=12, output_tokens=34))
    item = FlushItem(reply.id, 0, "answer", 2, final=final, base=8, reasoning_base=0)
    assert await store.apply_flush([item]) == set()
    stored = await store.get_message(alice.id, reply.id)
    assert (stored.content, stored.seq, stored.status) == ("partial answer", 2, Status.COMPLETE)
    assert stored.usage == Usage(12, 34)
    assert stored.error is None
    conversation = await store.get_conversation(alice.id, turn.conversation.id)
    assert conversation.active_message_id is None
    assert conversation.current_leaf_id == reply.id
    assert conversation.updated_at > turn.conversation.updated_at


async def test_final_error_is_stored(store: SqlStore) -> None:
    alice = await make_user(store)
    reply = (await start_conversation(store, alice)).reply
    final = FinalState(Status.ERROR, error=ErrorInfo("provider_error", "upstream 500"))
    await store.apply_flush([FlushItem(reply.id, 0, "", 0, final=final, base=0, reasoning_base=0)])
    stored = await store.get_message(alice.id, reply.id)
    assert stored.status is Status.ERROR
    assert stored.error == ErrorInfo("provider_error", "upstream 500")
    assert stored.usage is None


async def test_stale_final_keeps_the_conversation_active(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice)
    final = FinalState(Status.COMPLETE)
    stale = FlushItem(turn.reply.id, 5, "late", 1, final=final, base=0, reasoning_base=0)
    assert await store.apply_flush([stale]) == {turn.reply.id}
    conversation = await store.get_conversation(alice.id, turn.conversation.id)
    assert conversation.active_message_id == turn.reply.id
    assert (await store.get_message(alice.id, turn.reply.id)).status is Status.STREAMING


async def test_final_of_an_older_reply_leaves_the_newer_active(store: SqlStore) -> None:
    alice = await make_user(store)
    first = await start_conversation(store, alice)
    await finish(store, first.reply)
    second = await continue_conversation(store, alice, first.conversation.id, first.reply.id)
    # a second final for the first reply (its epoch still matches) must not release the
    # conversation, which now streams the second reply
    await finish(store, first.reply, text="!", base=4)
    conversation = await store.get_conversation(alice.id, first.conversation.id)
    assert conversation.active_message_id == second.reply.id


async def test_one_flush_of_200_replies_is_one_transaction(store: SqlStore) -> None:
    alice = await make_user(store)
    replies = [(await start_conversation(store, alice)).reply for _ in range(200)]
    before = (store.stats.write_transactions, store.stats.flush_transactions)
    items_before = store.stats.flushed_items
    items = [
        FlushItem(
            r.id,
            0,
            delta=f"text {i}",
            seq=7,
            final=FinalState(Status.COMPLETE) if i % 4 == 0 else None,
            base=0,
            reasoning_base=0,
        )
        for i, r in enumerate(replies)
    ]
    assert await store.apply_flush(items) == set()
    after = (store.stats.write_transactions, store.stats.flush_transactions)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    assert store.stats.flushed_items - items_before == 200
    assert store.stats.flush_seconds_total > 0
    for i in (0, 1, 199):
        stored = await store.get_message(alice.id, replies[i].id)
        assert (stored.content, stored.seq) == (f"text {i}", 7)
        assert stored.status is (Status.COMPLETE if i % 4 == 0 else Status.STREAMING)


async def test_empty_flush_writes_nothing(store: SqlStore) -> None:
    before = store.stats.write_transactions
    assert await store.apply_flush([]) == set()
    assert store.stats.write_transactions == before


# recovery and deletion


async def test_recover_streaming_interrupts_and_fences(store: SqlStore) -> None:
    alice = await make_user(store)
    a = await start_conversation(store, alice)
    b = await start_conversation(store, alice)
    done = await start_conversation(store, alice)
    await store.apply_flush([FlushItem(a.reply.id, 0, "half an ans", 3, base=0, reasoning_base=0)])
    await finish(store, done.reply)
    recovered = await store.recover_streaming()
    assert [m.id for m in recovered] == [a.reply.id, b.reply.id]
    assert all(m.status is Status.INTERRUPTED for m in recovered)
    assert recovered[0].content == "half an ans" and recovered[0].seq == 3
    for turn in (a, b):
        conversation = await store.get_conversation(alice.id, turn.conversation.id)
        assert conversation.active_message_id is None
    assert (await store.get_message(alice.id, done.reply.id)).status is Status.COMPLETE
    # the old owner's writes are fenced out from now on
    late = FlushItem(a.reply.id, 0, "swer", 4, base=11, reasoning_base=0)
    assert await store.apply_flush([late]) == {a.reply.id}
    assert await store.recover_streaming() == []


async def test_interrupt_replies_marks_only_the_chosen_at_their_epoch(store: SqlStore) -> None:
    alice = await make_user(store)
    dead = await start_conversation(store, alice)
    live = await start_conversation(store, alice)
    moved_on = await start_conversation(store, alice)
    await store.apply_flush([FlushItem(dead.reply.id, 0, "half", 2, base=0, reasoning_base=0)])
    assert set(await store.streaming_replies()) >= {
        (dead.reply.id, 0),
        (live.reply.id, 0),
        (moved_on.reply.id, 0),
    }
    await finish(store, moved_on.reply)  # ended between the read and the sweep
    marked = await store.interrupt_replies([(dead.reply.id, 0), (moved_on.reply.id, 0)])
    assert [(m.id, m.status, m.content, m.epoch) for m, _ in marked] == [
        (dead.reply.id, Status.INTERRUPTED, "half", 1)
    ]
    assert marked[0][1].user_id == alice.id and marked[0][1].active_message_id is None
    conversation = await store.get_conversation(alice.id, dead.conversation.id)
    assert conversation.active_message_id is None
    still = await store.get_conversation(alice.id, live.conversation.id)
    assert still.active_message_id == live.reply.id  # another node's live reply
    assert (await store.get_message(alice.id, live.reply.id)).status is Status.STREAMING
    # the dead owner is fenced out; a stale epoch marks nothing
    late = FlushItem(dead.reply.id, 0, "more", 3, base=4, reasoning_base=0)
    assert await store.apply_flush([late]) == {dead.reply.id}
    assert await store.interrupt_replies([(live.reply.id, 5)]) == []
    assert (live.reply.id, 0) in await store.streaming_replies()
    assert await store.interrupt_replies([]) == []


async def test_delete_conversation_removes_its_messages(store: SqlStore) -> None:
    alice = await make_user(store)
    doomed = await start_conversation(store, alice)
    kept = await start_conversation(store, alice)
    await store.delete_conversation(alice.id, doomed.conversation.id)
    with pytest.raises(NotFound):
        await store.get_conversation(alice.id, doomed.conversation.id)
    for message in (doomed.prompt, doomed.reply):
        assert message is not None
        with pytest.raises(NotFound):
            await store.get_message(alice.id, message.id)
    assert len(await store.list_messages(alice.id, kept.conversation.id)) == 2
    # a reply still streaming into the deleted conversation is fenced out
    late = FlushItem(doomed.reply.id, 0, "x", 1, base=0, reasoning_base=0)
    assert await store.apply_flush([late]) == {doomed.reply.id}
    with pytest.raises(NotFound):
        await store.delete_conversation(alice.id, doomed.conversation.id)


# text fidelity

UNICODE_SAMPLES = [
    "emoji 😀👩🏽‍💻🇫🇷 and a family 👨‍👩‍👧‍👦",
    "CJK 漢字かなカナ 한국어",
    "RTL مرحبا שלום, combining e\u0301 and Å",
    "math \U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522, "
    "quotes \u2018\u2019\u201c\u201d, tabs\tand\nnew lines\r\n",
    "backslash \\ percent % underscore _ quote ' double \" pipe |",
]


@pytest.mark.parametrize("text", UNICODE_SAMPLES)
async def test_unicode_round_trips_exactly(store: SqlStore, text: str) -> None:
    alice = await make_user(store, "ユーザー🙂")
    turn = await start_conversation(store, alice, content=text)
    middle = len(text) // 2
    await store.apply_flush(
        [FlushItem(turn.reply.id, 0, text[:middle], 1, base=0, reasoning_base=0)]
    )
    second = FlushItem(turn.reply.id, 0, text[middle:], 2, base=middle, reasoning_base=0)
    await store.apply_flush([second])
    assert turn.prompt is not None
    assert (await store.get_message(alice.id, turn.prompt.id)).content == text
    assert (await store.get_message(alice.id, turn.reply.id)).content == text
    assert (await store.find_user("ユーザー🙂")) is not None


@KNOWN_SEQ
@pytest.mark.parametrize("text", UNICODE_SAMPLES)
async def test_retried_flushes_keep_unicode_exact(store: SqlStore, text: str, known: bool) -> None:
    """Pieces of one to three code points (splitting emoji sequences and combining
    marks), each written twice: the second lands on text the first already wrote."""
    alice = await make_user(store)
    reply = (await start_conversation(store, alice)).reply
    base, seq = 0, 0
    while base < len(text):
        seq += 1
        piece = text[base : base + 1 + seq % 3]
        item = FlushItem(reply.id, 0, piece, seq, piece, seq, base=base, reasoning_base=base)
        item.base_seq = _after(seq - 1, known)
        for _ in range(2):
            await store.apply_flush([item])
        base += len(piece)
    stored = await store.get_message(alice.id, reply.id)
    assert stored.content == stored.reasoning == text


# concurrency


async def test_concurrent_writes_and_reads_all_land(store: SqlStore) -> None:
    alice = await make_user(store)
    turns = await asyncio.gather(*(start_conversation(store, alice) for _ in range(30)))
    # two writes of each reply from its start, racing: the last to commit wins whole
    flushes = [
        store.apply_flush(
            [FlushItem(t.reply.id, 0, delta=f"{t.reply.id}-{n}", seq=n, base=0, reasoning_base=0)]
        )
        for n in (1, 2)
        for t in turns[:10]
    ]
    reads = [store.list_conversations(alice.id, limit=50) for _ in range(10)]
    results = await asyncio.gather(*flushes, *reads)
    assert all(result == set() for result in results[: len(flushes)])
    page = await store.list_conversations(alice.id, limit=50)
    assert len(page.conversations) == 30
    for t in turns[:10]:
        stored = await store.get_message(alice.id, t.reply.id)
        assert stored.seq in (1, 2) and stored.content == f"{t.reply.id}-{stored.seq}"


async def test_a_cancelled_flush_commits_whole_or_not_at_all(store: SqlStore) -> None:
    """A caller cancelled mid-write neither tears the flush nor wedges the writer."""
    alice = await make_user(store)
    turns = [await start_conversation(store, alice) for _ in range(40)]
    replies = [t.reply for t in turns]
    for n in range(1, 9):
        base = (n - 1) * 20_000  # whatever rounds before it committed, it writes there
        items = [
            FlushItem(r.id, 0, delta=str(n) * 20_000, seq=n, base=base, reasoning_base=0)
            for r in replies
        ]
        task = asyncio.create_task(store.apply_flush(items))
        await asyncio.sleep(0.001 * (n % 4))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        patch = ConversationPatch(title=f"round {n}")
        await store.update_conversation(alice.id, turns[0].conversation.id, patch)
    await store.close()  # waits for writes whose callers were cancelled
    messages = [await store.get_message(alice.id, r.id) for r in replies]
    assert len({(m.content, m.seq) for m in messages}) == 1  # all saw the same flushes


async def test_concurrent_turns_in_one_conversation_admit_exactly_one(store: SqlStore) -> None:
    alice = await make_user(store)
    first = await start_conversation(store, alice)
    await finish(store, first.reply)
    attempts = [
        continue_conversation(store, alice, first.conversation.id, first.reply.id, f"try {n}")
        for n in range(8)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, Turn)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, Turn))
    conversation = await store.get_conversation(alice.id, first.conversation.id)
    assert conversation.active_message_id == winners[0].reply.id
    assert len(await store.list_messages(alice.id, first.conversation.id)) == 4


# client commands and continue


async def test_a_turn_records_its_client_message_id(store: SqlStore) -> None:
    user = await make_user(store)
    conversation_id = new_id()
    prompt = user_message(conversation_id)
    reply = reply_message(conversation_id, prompt.id)
    new = NewConversation(conversation_id, user.id, "t", "echo", "demo")
    turn = NewTurn(user.id, conversation_id, reply, prompt, new, client_message_id="key-1")
    await store.create_turn(turn)
    command = await store.find_command(user.id, "key-1")
    assert command == ClientCommand(conversation_id, reply.id, prompt.id, True)
    assert await store.find_command(user.id, "other") is None
    other = await make_user(store, "bob")
    assert await store.find_command(other.id, "key-1") is None
    again = reply_message(conversation_id, prompt.id)
    await finish(store, reply)
    with pytest.raises(Conflict):
        await store.create_turn(NewTurn(user.id, conversation_id, again, client_message_id="key-1"))


async def test_continue_reply_takes_an_interrupted_reply_up_again(store: SqlStore) -> None:
    user = await make_user(store)
    turn = await start_conversation(store, user)
    item = FlushItem(
        turn.reply.id, turn.reply.epoch, delta="partial ", seq=3, base=0, reasoning_base=0
    )
    await store.apply_flush([item])
    [recovered] = await store.recover_streaming()
    conversation, message = await store.continue_reply(user.id, turn.reply.id, "key-c")
    assert message.status is Status.STREAMING and message.epoch == recovered.epoch + 1
    assert (message.content, message.seq) == ("partial ", 3)
    assert conversation.active_message_id == message.id == conversation.current_leaf_id
    command = await store.find_command(user.id, "key-c")
    assert turn.prompt is not None
    assert command == ClientCommand(conversation.id, message.id, turn.prompt.id, False)
    with pytest.raises(Conflict):
        await store.continue_reply(user.id, turn.reply.id, None)  # it streams now
    stale = FlushItem(
        turn.reply.id, recovered.epoch, delta="zombie", seq=4, base=8, reasoning_base=0
    )
    assert await store.apply_flush([stale]) == {turn.reply.id}


async def test_continue_reply_refuses_other_users_and_other_states(store: SqlStore) -> None:
    user = await make_user(store)
    other = await make_user(store, "bob")
    turn = await start_conversation(store, user)
    with pytest.raises(Conflict):
        await store.continue_reply(user.id, turn.reply.id, None)  # streaming, not interrupted
    await store.recover_streaming()
    with pytest.raises(NotFound):
        await store.continue_reply(other.id, turn.reply.id, None)
    with pytest.raises(Conflict):
        await store.continue_reply(user.id, turn.reply.parent_id or "", None)  # a user message


async def test_an_empty_patch_changes_nothing(store: SqlStore) -> None:
    alice = await make_user(store)
    before = (await start_conversation(store, alice)).conversation
    assert await store.update_conversation(alice.id, before.id, ConversationPatch()) == before
