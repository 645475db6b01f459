"""Share links in the store on every backend: owner-scoped listing and revoking, token
lookup, and shares gone with their conversation or owner."""

from __future__ import annotations

import pytest

from durachat.domain import new_id, now_iso
from durachat.errors import NotFound
from durachat.store.base import Share
from durachat.store.sql import SqlStore
from tests.contract.test_store import finish, make_user, start_conversation


def share_of(user_id: str, conversation_id: str, public: bool = False) -> Share:
    messages = ({"role": "user", "content": "hi", "model": None, "createdAt": now_iso()},)
    return Share(new_id(), user_id, conversation_id, new_id(), public, "T", messages, now_iso())


async def test_create_list_read_and_revoke(store: SqlStore) -> None:
    alice = await make_user(store)
    bob = await make_user(store, "bob")
    turn = await start_conversation(store, alice)
    await finish(store, turn.reply)
    share = share_of(alice.id, turn.conversation.id)
    with pytest.raises(NotFound):
        await store.create_share(share_of(bob.id, turn.conversation.id))
    await store.create_share(share)
    assert await store.list_shares(alice.id) == [share]
    assert await store.list_shares(bob.id) == []
    assert await store.share_by_token(share.token) == share
    with pytest.raises(NotFound):
        await store.delete_share(bob.id, share.id)
    await store.delete_share(alice.id, share.id)
    assert await store.share_by_token(share.token) is None


async def test_shares_go_with_their_conversation_and_owner(store: SqlStore) -> None:
    alice = await make_user(store)
    await make_user(store, "admin-keeper")
    first = await start_conversation(store, alice)
    second = await start_conversation(store, alice)
    one, two = share_of(alice.id, first.conversation.id), share_of(alice.id, second.conversation.id)
    await store.create_share(one)
    await store.create_share(two)
    await store.delete_conversation(alice.id, first.conversation.id)
    assert await store.share_by_token(one.token) is None
    assert await store.share_by_token(two.token) is not None
    await store.delete_user(alice.id)
    assert await store.share_by_token(two.token) is None
