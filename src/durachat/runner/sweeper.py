"""The sweeper of many nodes: replies whose node died are marked `interrupted`.

Every node runs one. Each round reads the `streaming` replies from the store,
leaves out its own, asks Redis which of the rest still have a lease, and marks
the others `interrupted` at the epoch it read (moving the epoch on, so a zombie
owner can write them no more; a reply that ended or was taken up meanwhile is
left alone). Their conversations' sockets, on every node, get `resync` and so
the stored state: the dead node may have sent text past its last flush, which
is lost (at most the flush window, SPEC.md section 4). The user can `continue`.

A reply counts as orphaned only once it has been seen without a lease for a
third of `DURACHAT_LEASE_MS` (a lease's lifetime): after a Redis restart, which
loses every lease, the owners take theirs again (they renew every ninth) before
anyone marks a live reply. Rounds run at start (instead of the single node's
"every streaming reply is orphaned") and then every ninth of the lease time, so a
dead node's replies are marked within 8/9 of it: the lease expires within a
third, is seen missing within a ninth, and is marked a third and a ninth later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

from durachat import events
from durachat.bus.base import Bus
from durachat.domain import Message
from durachat.runner.leases import Leases
from durachat.store.base import Store

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        leases: Leases,
        own: Callable[[], Collection[str]],
        lease_ms: int,
    ) -> None:
        self._store = store
        self._bus = bus
        self._leases = leases
        self._own = own
        self._every_s = lease_ms / 9000
        self._grace_s = lease_ms / 3000
        self._missing: dict[str, float] = {}
        """Replies seen without a lease, and since when (monotonic seconds)."""
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> list[Message]:
        """One round; the replies it marked."""
        streaming = await self._store.streaming_replies()
        own = set(self._own())
        others = [(mid, epoch) for mid, epoch in streaming if mid not in own]
        held = await self._leases.held([mid for mid, _ in others]) if others else set()
        now = time.monotonic()
        missing = {mid: self._missing.get(mid, now) for mid, _ in others if mid not in held}
        self._missing = missing
        orphans = [(mid, e) for mid, e in others if now - missing.get(mid, now) >= self._grace_s]
        if not orphans:
            return []
        marked = await self._store.interrupt_replies(orphans)
        for message, conversation in marked:
            ids = {"conversationId": message.conversation_id, "messageId": message.id}
            log.warning("reply's node stopped renewing its lease; marked interrupted", extra=ids)
            self._bus.publish(events.resync(message.conversation_id, "owner_lost"))
            self._bus.publish_user(conversation.user_id, events.conversation_updated(conversation))
        return [message for message, _ in marked]

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="lease-sweeper")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.sweep()
            except Exception as exc:  # Redis or the database away: next round
                log.warning("lease sweep failed (%s); retrying", exc)
