"""Bringing a client up to date on a conversation: a delta, or a full catch-up.

Shared by the WebSocket and SSE transports. The order is DESIGN.md invariant 3:
subscribe first (live frames are held aside), then read the snapshot (the stored
state plus the replay log's tail past the stored seq), send it, then release the
held frames the snapshot does not already cover. No event can fall between.

The delta rules are PROTOCOL.md section 5, rule 3.
"""

from __future__ import annotations

from dataclasses import replace

from durachat import events
from durachat.bus.base import Bus
from durachat.bus.outbox import Outbox, Watermark
from durachat.domain import Conversation, Message, Role, Status
from durachat.events import Frame
from durachat.metrics import Metrics
from durachat.store.base import Store


async def stitch(bus: Bus, messages: list[Message]) -> list[Message]:
    """Messages with the replay log's text past each streaming message's stored seq."""
    result = []
    for message in messages:
        if message.status is Status.STREAMING:
            tail = await bus.log_tail(message.id, message.seq)
            if tail:
                content = message.content + "".join(f.content for f in tail)
                message = replace(message, content=content, seq=tail[-1].seq)
        result.append(message)
    return result


async def snapshot(
    store: Store, bus: Bus, user_id: str, conversation_id: str
) -> tuple[Conversation, list[Message]]:
    """The conversation and every message, including text not yet flushed."""
    conversation = await store.get_conversation(user_id, conversation_id)
    messages = await store.list_messages(user_id, conversation_id)
    return conversation, await stitch(bus, messages)


async def _delta(
    bus: Bus, messages: list[Message], after_message_id: str, after_seq: int
) -> tuple[list[Frame], Watermark] | None:
    newest = next((m for m in reversed(messages) if m.role is Role.ASSISTANT), None)
    if newest is None or newest.id != after_message_id or after_seq > newest.seq:
        return None
    if after_seq == newest.seq:
        frames: list[Frame] = []
    else:
        replayed = await bus.replay(newest.id, after_seq)
        if replayed is None:
            return None
        frames = [f for f in replayed if f.seq <= newest.seq]
        if not frames or frames[-1].seq != newest.seq:
            return None
    if newest.status.final:
        frames.append(events.done_for(newest))
    return frames, _covered(messages)


def _covered(messages: list[Message]) -> Watermark:
    """What a client has once it holds these messages."""
    return Watermark(
        {m.id: m.seq for m in messages},
        {m.id for m in messages if m.status.final},
        {m.id for m in messages},
    )


async def bring_up_to_date(
    store: Store,
    bus: Bus,
    outbox: Outbox,
    conversation_id: str,
    after_message_id: str | None = None,
    after_seq: int | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Subscribe the outbox to a conversation and send it a delta or a catch-up.

    Raises `NotFound` (before subscribing) if the conversation is not the user's.
    `metrics` counts the resume by kind (`RESUME_KINDS`).
    """
    user_id = outbox.user_id
    await store.get_conversation(user_id, conversation_id)
    outbox.hold(conversation_id)
    bus.subscribe(outbox, conversation_id)
    try:
        await bus.settle(conversation_id)  # live frames from here on reach the outbox
        conversation, messages = await snapshot(store, bus, user_id, conversation_id)
        plan = None
        if after_message_id is not None:
            plan = await _delta(bus, messages, after_message_id, after_seq or 0)
        await bus.settle(conversation_id)  # those from before are held: filtered below
    except BaseException:
        bus.unsubscribe(outbox, conversation_id)
        raise
    frames, watermark = plan or ([events.catchup(conversation, messages)], _covered(messages))
    if metrics is not None:
        kind = "snapshot" if after_message_id is None else "delta" if plan else "full"
        metrics.resumed(kind)
    for frame in frames:
        outbox.push_data(frame.data)
    outbox.release(conversation_id, watermark)
