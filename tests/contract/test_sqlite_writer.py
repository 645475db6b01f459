"""SQLite's writer: inline on the event loop, writes batched, locks waited out with
asyncio, checkpoints on a thread (store/inline_sqlite.py, write_batches.py,
checkpoints.py)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from durachat.errors import Conflict, StoreError
from durachat.store.engine import SqliteLimits
from durachat.store.sql import SqlStore, open_store
from tests.contract.test_store import finish, make_user, start_conversation


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = await open_store(f"sqlite:///{tmp_path / 'w.db'}", SqliteLimits(busy_ms=1500))
    await store.migrate()
    yield store
    await store.close()


async def test_concurrent_writes_share_transactions(sqlite_store: SqlStore) -> None:
    alice = await make_user(sqlite_store)
    before = sqlite_store.stats.write_transactions
    turns = await asyncio.gather(*(start_conversation(sqlite_store, alice) for _ in range(200)))
    used = sqlite_store.stats.write_transactions - before
    assert used < 100, f"{used} transactions for 200 turns"
    for turn in turns:  # each caller got its own, committed result
        stored = await sqlite_store.get_conversation(alice.id, turn.conversation.id)
        assert stored == turn.conversation


async def test_a_failing_write_fails_alone(sqlite_store: SqlStore) -> None:
    alice = await make_user(sqlite_store)
    first = await start_conversation(sqlite_store, alice, client_message_id="k")
    await finish(sqlite_store, first.reply)
    outcomes = await asyncio.gather(
        start_conversation(sqlite_store, alice, client_message_id="a"),
        start_conversation(sqlite_store, alice, client_message_id="k"),  # a duplicate
        start_conversation(sqlite_store, alice, client_message_id="b"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], Conflict)
    assert "already sent" in str(outcomes[1])
    landed = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(landed) == 2
    page = await sqlite_store.list_conversations(alice.id, limit=10)
    assert len(page.conversations) == 3  # the first and the two that landed


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE IF NOT EXISTS held (x)")
    return other


async def test_a_lock_held_elsewhere_is_waited_out_without_blocking(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    alice = await make_user(sqlite_store)
    other = _hold_write_lock(tmp_path / "w.db")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        write = asyncio.create_task(start_conversation(sqlite_store, alice))
        await asyncio.sleep(0.3)
        assert not write.done()
        assert ticks >= 10, "the event loop was blocked while the write waited"
        other.rollback()
        turn = await asyncio.wait_for(write, 2)
        assert (await sqlite_store.get_conversation(alice.id, turn.conversation.id)).id
    finally:
        ticking.cancel()
        other.close()


async def test_a_lock_held_too_long_is_a_busy_error(sqlite_store: SqlStore, tmp_path: Path) -> None:
    alice = await make_user(sqlite_store)
    other = _hold_write_lock(tmp_path / "w.db")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="busy"):
            await start_conversation(sqlite_store, alice)
        assert 1.4 < time.monotonic() - started < 5
    finally:
        other.close()
    await start_conversation(sqlite_store, alice)  # and the writer works again


async def test_checkpoints_reach_the_database_file(sqlite_store: SqlStore, tmp_path: Path) -> None:
    checkpoints = sqlite_store._checkpoints
    assert checkpoints is not None
    alice = await make_user(sqlite_store)  # the first commit checkpoints at once
    turns = [await start_conversation(sqlite_store, alice) for _ in range(3)]
    await asyncio.sleep(1.05)  # then at most once a second, after a commit
    await make_user(sqlite_store, "bob")
    deadline = time.monotonic() + 5
    while checkpoints.done < 2:
        assert time.monotonic() < deadline, f"{checkpoints.done} checkpoints ran"
        await asyncio.sleep(0.02)
    # the database file alone, without its WAL, has what the checkpoint copied
    copy = tmp_path / "copy.db"
    shutil.copy(tmp_path / "w.db", copy)
    with sqlite3.connect(copy) as db:
        ids = {row[0] for row in db.execute("SELECT id FROM conversations")}
    assert turns[0].conversation.id in ids
