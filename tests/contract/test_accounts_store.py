"""The store's accounts part on SQLite and PostgreSQL: sessions, token listing and
revocation scoped by user, administration and the last-admin rule."""

from __future__ import annotations

import pytest

from durachat.auth.sessions import expiry_iso
from durachat.errors import Conflict, NotFound
from durachat.store.sql import SqlStore
from tests.contract.test_store import finish, make_user, start_conversation


async def test_sessions_expire_and_are_revoked(store: SqlStore) -> None:
    alice = await make_user(store)
    await store.create_session(alice.id, "live", expiry_iso(60))
    await store.create_session(alice.id, "old", expiry_iso(-1))
    await store.create_session(alice.id, "other", expiry_iso(60))
    assert await store.user_for_session("live") == alice
    assert await store.user_for_session("old") is None
    assert await store.user_for_session("nope") is None
    await store.revoke_session("live")
    assert await store.user_for_session("live") is None
    assert await store.user_for_session("other") == alice
    await store.set_password(alice.id, "new-hash")  # ends every session
    assert await store.user_for_session("other") is None
    assert await store.find_user("alice") == (alice, "new-hash")
    await store.create_session(alice.id, "fresh", expiry_iso(60))
    assert await store.delete_old_sessions() == 3  # live, old, other: revoked or expired
    assert await store.user_for_session("fresh") == alice


async def test_tokens_are_listed_and_revoked_by_their_owner_only(store: SqlStore) -> None:
    alice, bob = await make_user(store, "alice"), await make_user(store, "bob")
    token_id = await store.create_api_token(alice.id, "laptop", "hash-a")
    listed = await store.list_api_tokens(alice.id)
    assert [(t.id, t.name) for t in listed] == [(token_id, "laptop")]
    assert await store.list_api_tokens(bob.id) == []
    with pytest.raises(NotFound):
        await store.revoke_api_token(bob.id, token_id)
    assert await store.user_for_token("hash-a") == alice
    await store.revoke_api_token(alice.id, token_id)
    assert await store.user_for_token("hash-a") is None


async def test_disable_ends_sessions_and_keeps_the_last_admin(store: SqlStore) -> None:
    root = await store.create_user("root", "h", is_admin=True)
    alice = await make_user(store)
    await store.create_session(alice.id, "s", expiry_iso(60))
    await store.set_disabled(alice.id, True)
    assert await store.user_for_session("s") is None
    assert [u.disabled for u in await store.list_users()] == [True, False]  # alice, root
    with pytest.raises(Conflict, match="last admin"):
        await store.set_disabled(root.id, True)
    with pytest.raises(Conflict, match="last admin"):
        await store.delete_user(root.id)
    second = await store.create_user("second", "h", is_admin=True)
    await store.set_disabled(root.id, True)
    with pytest.raises(Conflict):
        await store.delete_user(second.id)
    await store.set_disabled(root.id, False)
    await store.delete_user(second.id)
    with pytest.raises(NotFound):
        await store.set_disabled("nobody", True)


async def test_deleting_a_user_removes_what_they_own(store: SqlStore) -> None:
    alice, bob = await make_user(store, "alice"), await make_user(store, "bob")
    await store.create_api_token(alice.id, "laptop", "hash-a")
    await store.create_session(alice.id, "s", expiry_iso(60))
    await finish(store, (await start_conversation(store, alice)).reply)
    bobs = (await start_conversation(store, bob)).reply
    await store.delete_user(alice.id)
    assert await store.get_user(alice.id) is None
    assert await store.user_for_token("hash-a") is None
    assert (await store.list_conversations(alice.id, limit=10)).conversations == []
    assert len((await store.list_conversations(bob.id, limit=10)).conversations) == 1
    assert (await store.get_message(bob.id, bobs.id)).id == bobs.id
