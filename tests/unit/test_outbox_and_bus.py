"""The memory bus and per-socket outboxes: fan-out, replay, holds and overflow."""

from __future__ import annotations

import asyncio

import orjson

from durachat import events
from durachat.bus.memory import MemoryBus
from durachat.bus.outbox import Outbox, Watermark
from durachat.domain import Status


def decoded(outbox: Outbox) -> list[dict[str, object]]:
    return [orjson.loads(d) for d in outbox._queue or ()]


async def test_the_same_encoded_string_goes_to_every_subscriber() -> None:
    bus = MemoryBus(60)
    a, b = Outbox("u", 10), Outbox("u", 10)
    for outbox in (a, b):
        bus.attach(outbox)
        bus.subscribe(outbox, "c")
    frame = events.text("c", "m", 1, "hi")
    bus.publish(frame)
    assert a._queue is not None and b._queue is not None
    assert a._queue[0] is b._queue[0] is frame.data


async def test_replay_returns_exactly_what_follows_a_seq() -> None:
    bus = MemoryBus(60)
    for seq in range(1, 6):
        bus.publish(events.text("c", "m", seq, f"t{seq}"))
    replayed = await bus.replay("m", 2)
    assert replayed is not None and [f.seq for f in replayed] == [3, 4, 5]
    assert await bus.replay("m", 5) == []
    assert await bus.replay("unknown", 0) is None


async def test_a_log_that_starts_late_cannot_replay_from_before() -> None:
    bus = MemoryBus(60)
    bus.publish(events.text("c", "m", 10, "x"))  # e.g. a continued reply
    assert await bus.replay("m", 5) is None
    assert await bus.replay("m", 9) is not None


async def test_logs_expire_after_the_ttl() -> None:
    bus = MemoryBus(0.01)
    bus.publish(events.text("c", "m", 1, "x"))
    bus.end_log("m")
    assert await bus.replay("m", 0) is not None
    await asyncio.sleep(0.05)
    assert await bus.replay("m", 0) is None


async def test_overflow_drops_the_queue_and_sends_resync_until_resubscribed() -> None:
    bus = MemoryBus(60)
    slow = Outbox("u", 3)
    bus.attach(slow)
    bus.subscribe(slow, "c")
    for seq in range(1, 5):
        bus.publish(events.text("c", "m", seq, "x"))
    assert [f["type"] for f in decoded(slow)] == ["resync"]
    bus.publish(events.text("c", "m", 5, "x"))
    assert len(slow) == 1, "frames of a resyncing conversation are dropped"
    slow.hold("c")
    slow.release("c", Watermark({"m": 5}))
    bus.publish(events.text("c", "m", 6, "x"))
    assert decoded(slow)[-1]["seq"] == 6


async def test_held_frames_are_released_minus_what_the_snapshot_covers() -> None:
    outbox = Outbox("u", 100)
    outbox.conversations.add("c")
    outbox.hold("c")
    for seq in (4, 5, 6):
        outbox.push(events.text("c", "m", seq, "x"))
    outbox.push(events.done("c", "m", 6, Status.COMPLETE, None))
    assert len(outbox) == 0
    outbox.release("c", Watermark({"m": 5}))
    assert [(f["type"], f["seq"]) for f in decoded(outbox)] == [("text", 6), ("done", 6)]


async def test_done_is_dropped_when_the_snapshot_already_shows_the_end() -> None:
    outbox = Outbox("u", 100)
    outbox.hold("c")
    outbox.push(events.done("c", "m", 6, Status.COMPLETE, None))
    outbox.release("c", Watermark({"m": 6}, {"m"}))
    assert len(outbox) == 0


async def test_user_events_reach_every_socket_of_the_user_only() -> None:
    bus = MemoryBus(60)
    mine, other = Outbox("u", 10), Outbox("v", 10)
    bus.attach(mine)
    bus.attach(other)
    bus.publish_user("u", events.conversation_deleted("c"))
    assert len(mine) == 1 and len(other) == 0
    bus.detach(mine)
    assert bus.sockets("u") == 0 and mine.closed


async def test_next_batch_waits_then_takes_everything() -> None:
    outbox = Outbox("u", 10)
    waiter = asyncio.create_task(outbox.next_batch())
    await asyncio.sleep(0)
    outbox.push_data("a")
    outbox.push_data("b")
    assert await waiter == ["a", "b"]
    outbox.close()
    assert await outbox.next_batch() == []


async def test_a_send_that_completes_at_once_needs_no_task() -> None:
    sent: list[str] = []

    async def send(data: str) -> None:
        sent.append(data)

    outbox = Outbox("u", 10, send)
    outbox.push_data("a")
    assert sent == ["a"] and outbox._flusher is None


async def test_a_send_that_waits_queues_the_next_frames_in_order() -> None:
    sent: list[str] = []
    gate = asyncio.Event()

    async def send(data: str) -> None:
        if not gate.is_set():
            await gate.wait()
        sent.append(data)

    outbox = Outbox("u", 10, send)
    for data in "abc":
        outbox.push_data(data)
    assert sent == [] and len(outbox) == 2
    await asyncio.sleep(0.01)  # the outbox's task now waits on the pending send
    gate.set()
    await outbox.drained(timeout=1)
    assert sent == ["a", "b", "c"] and outbox._flusher is None
    outbox.push_data("d")
    assert sent[-1] == "d"


async def test_a_stuck_socket_overflows_into_resync() -> None:
    async def send(data: str) -> None:
        await asyncio.Event().wait()  # the peer never reads

    outbox = Outbox("u", 3, send)
    outbox.conversations.add("c")
    for seq in range(1, 10):
        outbox.push(events.text("c", "m", seq, "x"))
    assert [f["type"] for f in decoded(outbox)] == ["resync"]
    assert "c" in outbox.resyncing


async def test_a_failed_send_closes_the_outbox() -> None:
    async def send(data: str) -> None:
        raise ConnectionResetError

    outbox = Outbox("u", 3, send)
    outbox.push_data("a")
    assert outbox.closed
