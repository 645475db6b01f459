"""`Store.import_conversation` on every backend: whole trees in, once per source, and
searchable; the readers of `archive/` feed it."""

from __future__ import annotations

from pathlib import Path

import orjson

from durachat.archive.ours import archive_json, conversation_json
from durachat.archive.reader import read_import
from durachat.store.sql import SqlStore
from tests.contract.test_store import finish, make_user, start_conversation

CHATGPT = Path(__file__).parent.parent / "fixtures" / "chatgpt_conversations.json"


async def test_chatgpt_conversations_import_once_and_are_searchable(store: SqlStore) -> None:
    alice = await make_user(store)
    data = orjson.loads(CHATGPT.read_bytes())
    first = [await store.import_conversation(alice.id, c) for c in read_import(data, "demo/echo")]
    assert all(c is not None for c in first)
    again = [await store.import_conversation(alice.id, c) for c in read_import(data, "demo/echo")]
    assert again == [None, None]
    eggs = first[0]
    assert eggs is not None and eggs.model == "demo/echo"
    assert len(await store.list_messages(alice.id, eggs.id)) == 5
    hits = await store.search(alice.id, "poach", limit=5)
    assert [h.conversation_id for h in hits if h.message_id] == [eggs.id]
    bob = await make_user(store, "bob")
    assert await store.search(bob.id, "poach", limit=5) == []
    for conversation in read_import(data, "demo/echo"):
        assert await store.import_conversation(bob.id, conversation) is not None


async def test_our_export_reimports_for_another_user(store: SqlStore) -> None:
    alice = await make_user(store)
    bob = await make_user(store, "bob")
    turn = await start_conversation(store, alice, "exported words")
    await finish(store, turn.reply, "an answer")
    conversation = await store.get_conversation(alice.id, turn.conversation.id)
    messages = await store.list_messages(alice.id, conversation.id)
    data = archive_json([conversation_json(conversation, messages)], "now")
    (mine,) = read_import(data, "demo/echo")
    assert await store.import_conversation(alice.id, mine) is None  # she has it
    (theirs,) = read_import(data, "demo/echo")
    copy = await store.import_conversation(bob.id, theirs)
    assert copy is not None and copy.id != conversation.id
    copied = await store.list_messages(bob.id, copy.id)
    assert [(m.role, m.content) for m in copied] == [(m.role, m.content) for m in messages]
    assert copy.current_leaf_id == copied[-1].id
