"""Building the bus that the settings name: in process, or Redis for many nodes.

The Redis client is imported only when `DURACHAT_REDIS_URL` is set, so a single
node never loads it.
"""

from __future__ import annotations

from durachat.bus.base import Bus
from durachat.bus.memory import MemoryBus
from durachat.settings import Settings


def configured_bus(settings: Settings, node_id: str) -> Bus:
    """The `MemoryBus`, or with `DURACHAT_REDIS_URL` a `RedisBus` for the node
    `node_id`; not yet started (`await bus.start()`)."""
    if not settings.redis_url:
        return MemoryBus(settings.replay_ttl_s)
    from durachat.bus.redis import RedisBus

    return RedisBus(
        settings.redis_url,
        node_id,
        replay_ttl_s=settings.replay_ttl_s,
        live_ttl_s=settings.max_reply_seconds + settings.replay_ttl_s,
        stream_max=settings.redis_stream_max,
        timeout_s=settings.redis_timeout_ms / 1000,
        retry_max_s=settings.redis_retry_max_ms / 1000,
        buffer_max=settings.redis_buffer_events,
    )
