"""The event bus: live events with seq, replay logs, per-socket outboxes."""
