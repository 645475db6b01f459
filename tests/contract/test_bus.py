"""The bus contract, held by the memory bus and the Redis bus alike.

Every test in the first part runs against both (`bus` is parametrised); the rest
are about what only many nodes have: two `RedisBus` instances in one process act
as two nodes on a private Redis (tests/redis_server.py), and that Redis is
restarted mid-stream. Real components only: outboxes in queue mode stand in for
sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from durachat import events
from durachat.bus.base import Bus
from durachat.bus.memory import MemoryBus
from durachat.bus.outbox import Outbox, Watermark
from durachat.bus.redis import RedisBus
from durachat.bus.redis_streams import user_key
from durachat.domain import Status, new_id
from tests.redis_server import PrivateRedis

MakeBus = Callable[..., Awaitable[Bus]]


def _redis_bus(server: PrivateRedis, replay_ttl_s: float) -> RedisBus:
    return RedisBus(
        server.url,
        new_id(),
        replay_ttl_s=replay_ttl_s,
        live_ttl_s=60,
        stream_max=1000,
        timeout_s=1.0,
        retry_max_s=0.1,
        buffer_max=10_000,
    )


@pytest.fixture(params=["memory", "redis"])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[MakeBus]:
    """Buses of the parametrised kind, started; closed after the test."""
    made: list[Bus] = []

    async def make(replay_ttl_s: float = 60.0) -> Bus:
        bus: Bus
        if request.param == "memory":
            bus = MemoryBus(replay_ttl_s)
        else:
            bus = _redis_bus(request.getfixturevalue("private_redis"), replay_ttl_s)
        await bus.start()
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()


MakeNode = Callable[[], Awaitable[RedisBus]]


@pytest.fixture
async def make_node(private_redis: PrivateRedis) -> AsyncIterator[MakeNode]:
    """Redis buses, each one node."""
    made: list[RedisBus] = []

    async def make() -> RedisBus:
        bus = _redis_bus(private_redis, 60.0)
        await bus.start()
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()


def frames_of(outbox: Outbox) -> list[dict[str, Any]]:
    """Take what the outbox queued, decoded."""
    return [orjson.loads(d) for d in outbox.take()]


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def socket(bus: Bus, user_id: str, conversation_id: str | None = None) -> Outbox:
    outbox = Outbox(user_id, 100_000)
    bus.attach(outbox)
    if conversation_id is not None:
        bus.subscribe(outbox, conversation_id)
    return outbox


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in frames if f["type"] == "text"]


async def test_subscribers_get_frames_in_order(make_bus: MakeBus) -> None:
    bus = await make_bus()
    c, m = new_id(), new_id()
    first, second, other = socket(bus, "u", c), socket(bus, "u", c), socket(bus, "u", new_id())
    for seq in range(1, 51):
        bus.publish(events.text(c, m, seq, f"t{seq} "))
    bus.publish(events.done(c, m, 50, Status.COMPLETE, None))
    for outbox in (first, second):
        got = frames_of(outbox)
        assert seqs(got) == list(range(1, 51)) and got[-1]["type"] == "done"
    assert frames_of(other) == []


async def test_replay_from_a_seq_and_the_log_tail(make_bus: MakeBus) -> None:
    bus = await make_bus()
    c, m = new_id(), new_id()
    for seq in range(1, 6):
        bus.publish(events.text(c, m, seq, f"t{seq}"))
    replayed = await bus.replay(m, 2)
    assert replayed is not None and [(f.seq, f.content) for f in replayed] == [
        (3, "t3"),
        (4, "t4"),
        (5, "t5"),
    ]
    assert await bus.replay(m, 5) == []
    assert await bus.replay(new_id(), 0) is None
    assert [f.seq for f in await bus.log_tail(m, 3)] == [4, 5]
    bus.end_log(m)
    await asyncio.sleep(0.1)  # written to Redis: read from there now
    replayed = await bus.replay(m, 0)
    assert replayed is not None and [f.seq for f in replayed] == [1, 2, 3, 4, 5]
    assert replayed[0].data == events.text(c, m, 1, "t1").data


async def test_a_log_that_starts_late_cannot_replay_from_before(make_bus: MakeBus) -> None:
    bus = await make_bus()
    c, m = new_id(), new_id()
    bus.publish(events.text(c, m, 10, "x"))  # a continued reply
    assert await bus.replay(m, 5) is None
    assert await bus.log_tail(m, 5) == []
    assert await bus.replay(m, 9) is not None


async def test_replay_after_the_log_expired_is_none(make_bus: MakeBus) -> None:
    bus = await make_bus(replay_ttl_s=0.2)
    c, m = new_id(), new_id()
    bus.publish(events.text(c, m, 1, "x"))
    bus.publish(events.done(c, m, 1, Status.COMPLETE, None))
    bus.end_log(m)
    await asyncio.sleep(0.05)
    assert await bus.replay(m, 0) is not None
    await asyncio.sleep(0.4)
    assert await bus.replay(m, 0) is None


async def test_user_events_reach_every_socket_of_the_user_only(make_bus: MakeBus) -> None:
    bus = await make_bus()
    alice, bob = new_id(), new_id()
    tabs = [socket(bus, alice), socket(bus, alice)]
    stranger = socket(bus, bob)
    bus.publish_user(alice, events.conversation_deleted("c1"))
    for tab in tabs:
        assert frames_of(tab) == [{"type": "conversation_deleted", "conversationId": "c1"}]
    assert frames_of(stranger) == []
    assert bus.sockets(alice) == 2 and bus.total_sockets >= 3


async def test_detach_forgets_the_socket(make_bus: MakeBus) -> None:
    bus = await make_bus()
    c, m, user = new_id(), new_id(), new_id()
    outbox = socket(bus, user, c)
    bus.detach(outbox)
    bus.publish(events.text(c, m, 1, "x"))
    bus.publish_user(user, events.conversation_deleted(c))
    assert frames_of(outbox) == [] and outbox.closed and bus.sockets(user) == 0
    kept = socket(bus, user, c)
    bus.unsubscribe(kept, c)
    bus.publish(events.text(c, m, 2, "y"))
    assert frames_of(kept) == []


async def test_ping_and_settle_answer(make_bus: MakeBus) -> None:
    bus = await make_bus()
    assert await bus.ping() is True
    c = new_id()
    socket(bus, "u", c)
    await bus.settle(c)


# -- many nodes --------------------------------------------------------------------


async def test_a_reply_published_on_one_node_streams_live_on_another(
    make_node: MakeNode,
) -> None:
    a, b = await make_node(), await make_node()
    c, m, user = new_id(), new_id(), new_id()
    local, remote = socket(a, user, c), socket(b, user, c)
    remote_list = socket(b, user)
    await b.settle(c)
    # a user's stream is read from when the node's reader first sees the socket
    # (one round trip); conversation-list events before that reach it by the list
    await eventually(lambda: user_key(user) in b._reader._positions)
    for seq in range(1, 201):
        a.publish(events.text(c, m, seq, f"w{seq} "))
        if seq % 20 == 0:
            await asyncio.sleep(0)
    a.publish(events.done(c, m, 200, Status.COMPLETE, None))
    a.end_log(m)
    a.publish_user(user, events.conversation_deleted("gone"))
    await eventually(lambda: _has_done(remote) and len(remote_list) == 1)
    got = [f for f in frames_of(remote) if f.get("conversationId") == c]
    assert seqs(got) == list(range(1, 201)) and got[-1]["type"] == "done"
    assert seqs(frames_of(local)) == list(range(1, 201)), "local sockets are fed directly"
    assert frames_of(remote_list) == [{"type": "conversation_deleted", "conversationId": "gone"}]
    replayed = await b.replay(m, 150)
    assert replayed is not None and [f.seq for f in replayed] == list(range(151, 201))
    assert "".join(f.content for f in replayed) == "".join(f"w{s} " for s in range(151, 201))


def _has_done(outbox: Outbox) -> bool:
    return any('"type":"done"' in d for d in outbox._queue or ())


async def test_subscribe_then_snapshot_across_nodes_has_no_gap_and_no_duplicate(
    make_node: MakeNode,
) -> None:
    """What `api/sync.py` does on node B while node A publishes: hold, subscribe,
    settle, snapshot (here the log tail), settle, release past the snapshot."""
    a, b = await make_node(), await make_node()
    c, m = new_id(), new_id()
    total = 400

    async def generate() -> None:
        for seq in range(1, total + 1):
            a.publish(events.text(c, m, seq, f"w{seq} "))
            await asyncio.sleep(0.001 if seq % 3 else 0)
        a.publish(events.done(c, m, total, Status.COMPLETE, None))
        a.end_log(m)

    generation = asyncio.create_task(generate())
    outboxes = []
    for _ in range(5):
        await asyncio.sleep(0.03)
        outbox = Outbox("u", 100_000)
        outbox.hold(c)
        b.subscribe(outbox, c)
        await b.settle(c)
        tail = await b.log_tail(m, 0)
        await b.settle(c)
        snapshot = tail[-1].seq if tail else 0
        outbox.release(c, Watermark({m: snapshot}))
        outboxes.append((outbox, snapshot))
    await generation
    for outbox, snapshot in outboxes:
        await eventually(lambda outbox=outbox: _has_done(outbox))  # type: ignore[misc]
        assert seqs(frames_of(outbox)) == list(range(snapshot + 1, total + 1))
    assert any(snapshot > 0 for _, snapshot in outboxes), "some joined mid-reply"


async def test_a_new_generation_of_a_reply_replaces_a_crashed_runs_log(
    make_node: MakeNode,
) -> None:
    """A node died after logging seq 1..8 but storing 1..5; the reply is continued
    on another node from seq 6: the log must not mix the two runs."""
    a, b = await make_node(), await make_node()
    c, m = new_id(), new_id()
    for seq in range(1, 9):
        a.publish(events.text(c, m, seq, "old"))
    await eventually(lambda: not a._writer.pending)
    for seq in range(6, 9):
        b.publish(events.text(c, m, seq, "new"))
    b.end_log(m)
    await eventually(lambda: not b._writer.pending)
    third = await make_node()
    replayed = await third.replay(m, 5)
    assert replayed is not None and [f.content for f in replayed] == ["new"] * 3
    assert await third.replay(m, 0) is None, "the crashed run's seq 1..5 are gone with it"


async def test_a_redis_restart_mid_stream_is_survived(
    make_node: MakeNode, private_redis: PrivateRedis
) -> None:
    """Redis (no persistence) is killed and restarted while node A publishes and
    node B's socket follows. What is lost: the replay log of what was written
    before the restart, and the live flow to B's socket, which gets `resync` (and
    would catch up from the store). Nothing stops: A keeps publishing (queued
    while Redis is away), B reads again, and a socket that subscribes afresh
    streams live again."""
    a, b = await make_node(), await make_node()
    c, m = new_id(), new_id()
    follower = socket(b, "u", c)
    await b.settle(c)
    for seq in range(1, 11):
        a.publish(events.text(c, m, seq, "x"))
    await eventually(lambda: len(follower) == 10)
    private_redis.restart()
    for seq in range(11, 21):
        a.publish(events.text(c, m, seq, "y"))
        await asyncio.sleep(0.01)
    await eventually(lambda: any('"type":"resync"' in d for d in follower._queue or ()), 10)
    await eventually(lambda: b._reader.healthy and a._writer.healthy, 10)
    assert await a.ping() and await b.ping()
    rejoined = Outbox("u", 1000)
    rejoined.hold(c)
    b.subscribe(rejoined, c)
    await b.settle(c)
    await b.settle(c)
    rejoined.release(c, Watermark({m: 20}))
    for seq in range(21, 31):
        a.publish(events.text(c, m, seq, "z"))
    a.publish(events.done(c, m, 30, Status.COMPLETE, None))
    a.end_log(m)
    await eventually(lambda: _has_done(rejoined))
    assert seqs(frames_of(rejoined)) == list(range(21, 31))
    assert await b.replay(m, 0) is None, "the log from before the restart is gone"
    tail = await b.replay(m, 20)
    assert tail is not None and [f.seq for f in tail] == list(range(21, 31))
