"""`Store.delete_message` on every backend: the subtree goes, the current leaf moves to
a sensible place, streaming branches are refused, other users get `NotFound`."""

from __future__ import annotations

import pytest

from durachat.errors import Conflict, NotFound
from durachat.store.sql import SqlStore
from tests.contract.test_store import (
    Turn,
    continue_conversation,
    finish,
    make_user,
    start_conversation,
)


async def finished_turn(store: SqlStore, turn: Turn) -> Turn:
    await finish(store, turn.reply)
    return turn


async def ids_of(store: SqlStore, user_id: str, conversation_id: str) -> set[str]:
    return {m.id for m in await store.list_messages(user_id, conversation_id)}


async def test_deleting_a_branch_moves_the_leaf_to_its_older_sibling(store: SqlStore) -> None:
    alice = await make_user(store)
    first = await finished_turn(store, await start_conversation(store, alice, "q1"))
    cid = first.conversation.id
    # two answers to q1's reply: branch a (older) and branch b (newer, shown)
    a = await finished_turn(store, await continue_conversation(store, alice, cid, first.reply.id))
    a2 = await finished_turn(store, await continue_conversation(store, alice, cid, a.reply.id))
    b = await finished_turn(store, await continue_conversation(store, alice, cid, first.reply.id))
    assert b.prompt is not None and a.prompt is not None
    conversation = await store.delete_message(alice.id, b.prompt.id)
    assert conversation.current_leaf_id == a2.reply.id  # the deepest leaf of branch a
    left = await ids_of(store, alice.id, cid)
    assert b.prompt.id not in left and b.reply.id not in left and a2.reply.id in left
    assert len(left) == 6


async def test_deleting_an_only_child_moves_the_leaf_to_the_parent(store: SqlStore) -> None:
    alice = await make_user(store)
    first = await finished_turn(store, await start_conversation(store, alice))
    cid = first.conversation.id
    second = await finished_turn(
        store, await continue_conversation(store, alice, cid, first.reply.id, "doomed words")
    )
    assert second.prompt is not None
    conversation = await store.delete_message(alice.id, second.prompt.id)
    assert conversation.current_leaf_id == first.reply.id
    assert await store.search(alice.id, "doomed", limit=5) == []  # the index follows


async def test_deleting_the_root_empties_the_conversation(store: SqlStore) -> None:
    alice = await make_user(store)
    first = await finished_turn(store, await start_conversation(store, alice))
    assert first.prompt is not None
    conversation = await store.delete_message(alice.id, first.prompt.id)
    assert conversation.current_leaf_id is None
    assert await store.list_messages(alice.id, first.conversation.id) == []


async def test_a_branch_off_the_shown_path_keeps_the_leaf(store: SqlStore) -> None:
    alice = await make_user(store)
    first = await finished_turn(store, await start_conversation(store, alice))
    cid = first.conversation.id
    other = await finished_turn(
        store, await continue_conversation(store, alice, cid, first.reply.id)
    )
    shown = await finished_turn(
        store, await continue_conversation(store, alice, cid, first.reply.id)
    )
    assert other.prompt is not None
    conversation = await store.delete_message(alice.id, other.prompt.id)
    assert conversation.current_leaf_id == shown.reply.id


async def test_a_streaming_subtree_is_a_conflict(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice)  # its reply streams
    assert turn.prompt is not None
    with pytest.raises(Conflict):
        await store.delete_message(alice.id, turn.prompt.id)
    with pytest.raises(Conflict):
        await store.delete_message(alice.id, turn.reply.id)
    assert len(await ids_of(store, alice.id, turn.conversation.id)) == 2


async def test_another_users_message_is_not_found(store: SqlStore) -> None:
    alice = await make_user(store)
    bob = await make_user(store, "bob")
    turn = await finished_turn(store, await start_conversation(store, alice))
    assert turn.prompt is not None
    with pytest.raises(NotFound):
        await store.delete_message(bob.id, turn.prompt.id)
    with pytest.raises(NotFound):
        await store.delete_message(alice.id, "no-such-message")
    assert len(await ids_of(store, alice.id, turn.conversation.id)) == 2
