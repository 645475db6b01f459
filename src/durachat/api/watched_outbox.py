"""An `Outbox` whose overflows are counted in `/metrics`.

A socket that reads too slowly has its queue dropped and gets `resync`
(`bus/outbox.py`, DESIGN.md invariant 5). This subclass only counts those
overflows, which are rare; it must never add work to the per-frame path
(`push`, `push_data`), so it overrides nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from durachat.bus.outbox import Outbox, Sender
from durachat.metrics import Metrics


class WatchedOutbox(Outbox):
    """The outbox of a WebSocket or an SSE stream, with its overflows counted."""

    __slots__ = ("_metrics",)

    def __init__(
        self,
        user_id: str,
        limit: int,
        metrics: Metrics,
        send: Sender | None = None,
        write: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(user_id, limit, send, write)
        self._metrics = metrics

    def _overflow(self) -> None:
        # the queued frames and the one that did not fit are dropped
        self._metrics.overflowed(len(self) + 1, len(self.conversations))
        super()._overflow()
