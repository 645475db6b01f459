"""Group commit on a real store: when flushes happen, what they write, and retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

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
        committer.add(turn.reply.id, turn.reply.epoch, "a", 1)
    committer.add(turns[0].reply.id, turns[0].reply.epoch, "b", 2)  # due: flushes all 20
    await asyncio.sleep(0.1)
    assert store.stats.flush_transactions == 1 and store.stats.flushed_items == 20
    await committer.close(timeout=5)


async def test_finish_returns_after_the_final_commit(store: SqlStore) -> None:
    user = await make_user(store)
    turn = await start_conversation(store, user)
    committer = GroupCommitter(store, flush_chunks=100, flush_ms=60_000)
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
    committer.start()
    committer.add(turn.reply.id, turn.reply.epoch, "first ", 1)
    await asyncio.sleep(0.005)
    committer.add(turn.reply.id, turn.reply.epoch, "second", 2)
    await committer.finish(turn.reply.id, turn.reply.epoch, 2, FinalState(Status.COMPLETE))
    assert await stored(store, user.id, turn.reply.id) == ("first second", 2, Status.COMPLETE)
    assert committer.last_error is None
    await committer.close(timeout=5)
