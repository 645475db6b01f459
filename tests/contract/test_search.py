"""`Store.search` on every backend: what is indexed when, ranking, snippets, isolation,
and that no query text can break it."""

from __future__ import annotations

import pytest

from durachat.domain import Role, Status
from durachat.errors import BadRequest
from durachat.store.base import ConversationPatch, FinalState, FlushItem, SearchHit
from durachat.store.sql import SqlStore
from tests.contract.test_store import (
    continue_conversation,
    finish,
    make_user,
    start_conversation,
)


def marked(hit: SearchHit) -> str:
    """The snippet with its matches in [brackets]."""
    return "".join(f"[{p.text}]" if p.match else p.text for p in hit.snippet)


def message_ids(hits: list[SearchHit]) -> list[str | None]:
    return [h.message_id for h in hits if h.message_id is not None]


async def test_a_prompt_is_found_with_a_highlighted_snippet(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice, "Tell me about the <b>Okapi</b> & zebras")
    hits = await store.search(alice.id, "okapi", limit=10)
    assert message_ids(hits) == [turn.prompt.id if turn.prompt else None]
    hit = hits[0]
    assert hit.conversation_id == turn.conversation.id and hit.role is Role.USER
    assert hit.title == "A title"
    assert marked(hit) == "Tell me about the <b>[Okapi]</b> & zebras"


async def test_every_word_must_match_and_the_last_is_a_prefix(store: SqlStore) -> None:
    alice = await make_user(store)
    both = await start_conversation(store, alice, "red pandas climb trees")
    await start_conversation(store, alice, "red foxes dig")
    assert len(message_ids(await store.search(alice.id, "red", limit=10))) == 2
    found = await store.search(alice.id, "red pan", limit=10)
    assert message_ids(found) == [both.prompt.id if both.prompt else None]
    assert await store.search(alice.id, "pan red", limit=10) == []


async def test_better_matches_rank_first(store: SqlStore) -> None:
    alice = await make_user(store)
    await start_conversation(store, alice, "a long text " * 30 + "capybara once")
    dense = await start_conversation(store, alice, "capybara capybara capybara")
    hits = await store.search(alice.id, "capybara", limit=10)
    assert len(hits) == 2 and hits[0].message_id == (dense.prompt.id if dense.prompt else None)


async def test_a_reply_is_indexed_when_it_ends_not_while_it_streams(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice)
    await store.apply_flush(
        [FlushItem(turn.reply.id, 0, "the wombat ", 1, base=0, reasoning_base=0)]
    )
    assert await store.search(alice.id, "wombat", limit=10) == []
    final = FinalState(Status.COMPLETE)
    await store.apply_flush(
        [FlushItem(turn.reply.id, 0, "sleeps", 2, final=final, base=11, reasoning_base=0)]
    )
    hits = await store.search(alice.id, "wombat sleeps", limit=10)
    assert message_ids(hits) == [turn.reply.id] and hits[0].role is Role.ASSISTANT
    assert marked(hits[0]) == "the [wombat] [sleeps]"


async def test_interrupted_and_continued_replies_follow_their_status(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice)
    await store.apply_flush(
        [FlushItem(turn.reply.id, 0, "half of a narwhal", 1, base=0, reasoning_base=0)]
    )
    await store.recover_streaming()
    assert message_ids(await store.search(alice.id, "narwhal", limit=10)) == [turn.reply.id]
    _, resumed = await store.continue_reply(alice.id, turn.reply.id, None)
    assert await store.search(alice.id, "narwhal", limit=10) == []
    final = FinalState(Status.COMPLETE)
    item = FlushItem(resumed.id, resumed.epoch, " tusk", 2, final=final, base=17, reasoning_base=0)
    await store.apply_flush([item])
    hits = await store.search(alice.id, "narwhal tusk", limit=10)
    assert message_ids(hits) == [turn.reply.id]


async def test_titles_match_first_and_are_highlighted(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice, "nothing to see")
    patch = ConversationPatch(title="Planning the Lemur trip")
    await store.update_conversation(alice.id, turn.conversation.id, patch)
    await start_conversation(store, alice, "lemurs are primates")
    hits = await store.search(alice.id, "lemur", limit=10)
    assert hits[0].message_id is None and hits[0].conversation_id == turn.conversation.id
    assert marked(hits[0]) == "Planning the [Lemur] trip"
    assert len(hits) == 2 and hits[1].message_id is not None


async def test_another_users_text_is_never_found(store: SqlStore) -> None:
    alice = await make_user(store)
    bob = await make_user(store, "bob")
    turn = await start_conversation(store, alice, "secret axolotl recipe")
    await finish(store, turn.reply, "axolotl answer")
    patch = ConversationPatch(title="axolotl title")
    await store.update_conversation(alice.id, turn.conversation.id, patch)
    assert len(await store.search(alice.id, "axolotl", limit=10)) == 3
    assert await store.search(bob.id, "axolotl", limit=10) == []
    assert await store.search(bob.id, alice.id, limit=10) == []  # the owner column


async def test_deleted_conversations_leave_the_index(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice, "ephemeral quokka")
    await finish(store, turn.reply, "quokka reply")
    more = await continue_conversation(store, alice, turn.conversation.id, turn.reply.id, "quokka")
    await finish(store, more.reply)
    assert len(await store.search(alice.id, "quokka", limit=10)) == 3
    await store.delete_conversation(alice.id, turn.conversation.id)
    assert await store.search(alice.id, "quokka", limit=10) == []
    again = await start_conversation(store, alice, "a new quokka")
    found = await store.search(alice.id, "quokka", limit=10)
    assert message_ids(found) == [again.prompt.id if again.prompt else None]


async def test_the_limit_caps_results(store: SqlStore) -> None:
    alice = await make_user(store)
    for _ in range(5):
        await start_conversation(store, alice, "repeated gecko")
    assert len(await store.search(alice.id, "gecko", limit=3)) == 3
    with pytest.raises(BadRequest):
        await store.search(alice.id, "gecko", limit=0)


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "'",
        "AND OR NOT",
        "NEAR(a b)",
        "body : x",
        "owner:*",
        "a*",
        "(((",
        "\\ % _",
        "x & y | !z <-> w:*",
        "'; DROP TABLE messages; --",
        "\ue000marker\ue001",
        "",
        "   ",
        "ü" * 300,
    ],
)
async def test_no_query_text_breaks_the_search(store: SqlStore, query: str) -> None:
    alice = await make_user(store)
    await start_conversation(store, alice, "body owner and or not near drop table messages")
    hits = await store.search(alice.id, query, limit=10)
    assert all(h.conversation_id for h in hits)


async def test_unicode_words_and_diacritics(store: SqlStore) -> None:
    alice = await make_user(store)
    turn = await start_conversation(store, alice, "Große Straße in Zürich, 東京 tower")
    prompt_id = turn.prompt.id if turn.prompt else None
    assert message_ids(await store.search(alice.id, "zürich", limit=10)) == [prompt_id]
    assert message_ids(await store.search(alice.id, "Straße", limit=10)) == [prompt_id]
