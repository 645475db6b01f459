"""Group commit on a real store: when flushes happen, what they write, and retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from durachat.domain import Status, Usage
from durachat.errors import StoreError
from durachat.store.base import FinalState, FlushItem
from durachat.store.groupcommit import GroupCommitter
from durachat.store.sql import SqlStore
from tests.contract.test_store import make_user, start_conversation


async def stored(store: SqlStore, user_id: str, message_id: str) -> tuple[str, int, Status]:
    message = await store.get_message(user_id, message_id)
    return message.content, message.seq, message.status


async def test_a_flush_runs_when_a_reply_reaches_flush_chunks(store: SqlStore) -> None:
    user = await make_user(store)
    turn = await start_conversation(store, user)
    committer = GroupCommitter(store, flush_chunks=3, flush_ms=60_000)
    committer.begin(turn.reply.id, 0, 0, 0)
    committer.start()
    for seq in (1, 2):
        committer.add(turn.reply.id, turn.reply.epoch, f"t{seq} ", seq)
    await asyncio.sleep(0.05)
    assert store.stats.flush_transactions == 0
    committer.add(turn.reply.id, turn.reply.epoch, "t3 ", 3)
    await asyncio.sleep(0.05)
    assert await stored(store, user.id, turn.reply.id) == ("t1 t2 t3 ", 3, Status.STREAMING)
    assert store.stats.flush_transactions == 1
    await committer.close(timeout=5)


async def test_a_flush_runs_when_the_oldest_chunk_is_flush_ms_old(store: SqlStore) -> None:
    user = await make_user(store)
    turn = await start_conversation(store, user)
    committer = GroupCommitter(store, flush_chunks=100, flush_ms=80)
    committer.begin(turn.reply.id, 0, 0, 0)
    committer.start()
    committer.add(turn.reply.id, turn.reply.epoch, "early ", 1)
    await asyncio.sleep(0.03)
    assert store.stats.flush_transactions == 0
    await asyncio.sleep(0.15)
    assert await stored(store, user.id, turn.reply.id) == ("early ", 1, Status.STREAMING)
    await committer.close(timeout=5)


async def test_one_transaction_carries_every_active_reply(store: SqlStore) -> None:
    user = await make_user(store)
    turns = [await start_conversation(store, user, f"chat {n}") for n in range(20)]
    committer = GroupCommitter(store, flush_chunks=2, flush_ms=60_000)
    committer.start()
    for turn in turns:
        committer.begin(turn.reply.id, 0, 0, 0)
        committer.add(turn.reply.id, turn.reply.epoch, "a", 1)
    committer.add(turns[0].reply.id, turns[0].reply.epoch, "b", 2)  # due: flushes all 20
    await asyncio.sleep(0.1)
    assert store.stats.flush_transactions == 1 and store.stats.flushed_items == 20
    await committer.close(timeout=5)


async def test_finish_returns_after_the_final_commit(store: SqlStore) -> None:
    user = await make_user(store)
    turn = await start_conversation(store, user)
    committer = GroupCommitter(store, flush_chunks=100, flush_ms=60_000)
    committer.begin(turn.reply.id, 0, 0, 0)
    committer.start()
    committer.add(turn.reply.id, turn.reply.epoch, "all ", 1)
    committer.add(turn.reply.id, turn.reply.epoch, "of it", 2)
    await committer.finish(
        turn.reply.id, turn.reply.epoch, 2, FinalState(Status.COMPLETE, Usage(1, 2))
    )
    assert await stored(store, user.id, turn.reply.id) == ("all of it", 2, Status.COMPLETE)
    conversation = await store.get_conversation(user.id, turn.conversation.id)
    assert conversation.active_message_id is None
    await committer.close(timeout=5)


class FailingOnce:
    """The real store, whose first flush fails like a full disk."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.failures = 1

    async def apply_flush(self, items: Sequence[FlushItem]) -> set[str]:
        if self.failures:
            self.failures -= 1
            raise StoreError("the database disk is full")
        return await self.store.apply_flush(items)


async def test_a_failed_flush_keeps_the_text_in_order_and_retries(store: SqlStore) -> None:
    user = await make_user(store)
    turn = await start_conversation(store, user)
    flaky = FailingOnce(store)
    committer = GroupCommitter(flaky, flush_chunks=1, flush_ms=30)
    committer.begin(turn.reply.id, 0, 0, 0)
    committer.start()
    committer.add(turn.reply.id, turn.reply.epoch, "first ", 1)
    await asyncio.sleep(0.005)
    committer.add(turn.reply.id, turn.reply.epoch, "second", 2)
    await committer.finish(turn.reply.id, turn.reply.epoch, 2, FinalState(Status.COMPLETE))
    assert await stored(store, user.id, turn.reply.id) == ("first second", 2, Status.COMPLETE)
    assert committer.last_error is None
    await committer.close(timeout=5)


class AppliedThenLost:
    """The real store, whose first `failures` flushes commit and then fail, as when
    the connection dies after COMMIT and before the acknowledgement: the write
    happened, the committer sees an error and retries."""

    def __init__(self, store: SqlStore, failures: int) -> None:
        self.store = store
        self.failures = failures
        self.calls = 0

    async def apply_flush(self, items: Sequence[FlushItem]) -> set[str]:
        self.calls += 1
        fenced = await self.store.apply_flush(items)
        if self.failures:
            self.failures -= 1
            raise StoreError("connection lost after COMMIT")
        return fenced


async def test_a_flush_that_committed_but_failed_is_retried_without_duplicating(
    store: SqlStore,
) -> None:
    user = await make_user(store)
    turn = await start_conversation(store, user)
    lost = AppliedThenLost(store, failures=3)
    committer = GroupCommitter(lost, flush_chunks=1, flush_ms=30)
    committer.begin(turn.reply.id, 0, 0, 0)
    committer.start()
    reply, epoch = turn.reply.id, turn.reply.epoch
    committer.add_reasoning(reply, epoch, "hmm 🤔 ", 1, 0)
    committer.add(reply, epoch, "first 😀 ", 1)  # flushed, landed, reported failed
    await asyncio.sleep(0.005)
    committer.add(reply, epoch, "sëcond 👩🏽‍💻 ", 2)  # merged behind the failed batch
    committer.add_reasoning(reply, epoch, "so", 2, 2)
    await asyncio.sleep(0.1)  # the merged retry: it lands and is reported failed too
    committer.add(reply, epoch, "third", 3)
    # the final flush lands and fails as well, and is written again
    await committer.finish(reply, epoch, 3, FinalState(Status.COMPLETE, Usage(1, 3)), 2)
    assert lost.calls >= 4 and lost.failures == 0
    message = await store.get_message(user.id, reply)
    assert (message.content, message.seq) == ("first 😀 sëcond 👩🏽‍💻 third", 3)
    assert (message.reasoning, message.reasoning_seq) == ("hmm 🤔 so", 2)
    assert (message.status, message.usage) == (Status.COMPLETE, Usage(1, 3))
    assert committer.last_error is None
    await committer.close(timeout=5)


async def test_a_continued_reply_writes_after_its_stored_text(store: SqlStore) -> None:
    user = await make_user(store)
    turn = await start_conversation(store, user)
    kept = FlushItem(turn.reply.id, 0, "kept 😀 ", 1, "why ", 1, base=0, reasoning_base=0)
    await store.apply_flush([kept])
    await store.recover_streaming()
    _, message = await store.continue_reply(user.id, turn.reply.id, None)
    lost = AppliedThenLost(store, failures=2)
    committer = GroupCommitter(lost, flush_chunks=1, flush_ms=30)
    committer.begin(message.id, len(message.content), len(message.reasoning), message.seq)
    committer.start()
    committer.add(message.id, message.epoch, "and more", 2)
    await committer.finish(message.id, message.epoch, 2, FinalState(Status.COMPLETE))
    stored = await store.get_message(user.id, message.id)
    assert (stored.content, stored.reasoning) == ("kept 😀 and more", "why ")
    await committer.close(timeout=5)


async def test_a_reply_must_be_begun_before_its_text_is_added(store: SqlStore) -> None:
    committer = GroupCommitter(store, flush_chunks=1, flush_ms=30)
    with pytest.raises(RuntimeError, match="not begun"):
        committer.add("unknown", 0, "text", 1)
