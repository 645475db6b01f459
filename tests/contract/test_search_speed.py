"""Search answers in under 100 ms over 100,000 messages, on SQLite and PostgreSQL.

The messages are generated (a Zipf-like vocabulary of made-up words, 10 to 60 words
a message, 1,000 conversations) and bulk-inserted through SQLAlchemy Core; the
index triggers fill the full-text index as they would for any insert. Another user
owns a further 10,000 messages with the same words, so the owner filter is part of
what is measured. Each query is timed a few times; the median over the queries must
be under the bar; the timings are printed (`pytest -s`). Time grows with the number
of matching messages (every match is ranked): a word in half of all messages takes
about 60 ms on SQLite here, a short prefix that matches nearly every message several
hundred ms (README, Search, limits).
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from durachat.domain import new_id, now_iso
from durachat.store.sql import SqlStore
from durachat.store.tables import conversations, messages
from tests.contract.test_store import make_user

pytestmark = pytest.mark.slow

MESSAGES = 100_000
OTHER_USERS_MESSAGES = 10_000
CONVERSATIONS = 1_000
BAR_S = 0.100
BATCH = 5_000


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "zu", "an", "or"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def rows_for(
    user_id: str, count: int, conversation_count: int, words: list[str], rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = now_iso()
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf: a few words are common
    convs = [
        {
            "id": new_id(),
            "user_id": user_id,
            "title": " ".join(rng.choices(words, weights, k=4)),
            "model": "demo/echo",
            "provider": "demo",
            "system_prompt": "",
            "pinned": False,
            "archived": False,
            "created_at": now,
            "updated_at": now,
        }
        for _ in range(conversation_count)
    ]
    msgs = []
    for i in range(count):
        text = " ".join(rng.choices(words, weights, k=rng.randint(10, 60)))
        msgs.append(
            {
                "id": new_id(),
                "conversation_id": convs[i % conversation_count]["id"],
                "user_id": user_id,
                "parent_id": None,
                "role": "user" if i % 2 == 0 else "assistant",
                "content": text,
                "status": "complete",
                "created_at": now,
                "updated_at": now,
            }
        )
    return convs, msgs


async def bulk_insert(store: SqlStore, convs: list[Any], msgs: list[Any]) -> None:
    async def conversations_work(conn: AsyncConnection) -> None:
        await conn.execute(insert(conversations), convs)

    await store._write(conversations_work)
    for start in range(0, len(msgs), BATCH):
        batch = msgs[start : start + BATCH]

        async def work(conn: AsyncConnection, batch: list[Any] = batch) -> None:
            await conn.execute(insert(messages), batch)

        await store._write(work)


async def test_search_over_100k_messages_is_under_100ms(store: SqlStore) -> None:
    rng = random.Random(9)
    words = vocabulary(rng)
    alice = await make_user(store)
    bob = await make_user(store, "bob")
    started = time.perf_counter()
    await bulk_insert(store, *rows_for(alice.id, MESSAGES, CONVERSATIONS, words, rng))
    await bulk_insert(store, *rows_for(bob.id, OTHER_USERS_MESSAGES, 100, words, rng))
    loaded = time.perf_counter() - started
    queries = {
        "common word": words[3],
        "mid word": words[300],
        "rare word": words[5_000],
        "two words": f"{words[20]} {words[40]}",
        "prefix": words[2_000][:-1],  # type-ahead: the word being typed
    }
    medians: dict[str, float] = {}
    for name, query in queries.items():
        await store.search(alice.id, query, limit=20)  # warm
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            hits = await store.search(alice.id, query, limit=20)
            times.append(time.perf_counter() - t0)
        assert hits, name
        medians[name] = statistics.median(times)
    report = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in medians.items())
    print(
        f"\n{store.dialect}: loaded {MESSAGES + OTHER_USERS_MESSAGES} in {loaded:.1f} s; {report}"
    )
    assert statistics.median(medians.values()) < BAR_S, report
