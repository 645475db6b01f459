"""Gathering a user's data from the store for an export (every conversation, archived
ones included, with every message). It holds one user's data in memory at once."""

from __future__ import annotations

from typing import Any

from durachat.archive.ours import archive_json, conversation_json
from durachat.domain import Conversation, Message, now_iso
from durachat.store.base import Store

_PAGE = 200


async def user_conversations(store: Store, user_id: str) -> list[Conversation]:
    """Every conversation of the user, newest first, the archived ones after."""
    found: list[Conversation] = []
    for archived in (False, True):
        cursor: str | None = None
        while True:
            page = await store.list_conversations(
                user_id, limit=_PAGE, cursor=cursor, archived=archived
            )
            found += page.conversations
            cursor = page.next_cursor
            if cursor is None:
                break
    return found


async def with_messages(
    store: Store, user_id: str, conversations: list[Conversation]
) -> list[tuple[Conversation, list[Message]]]:
    return [(c, await store.list_messages(user_id, c.id)) for c in conversations]


async def user_archive(store: Store, user_id: str) -> dict[str, Any]:
    """The user's whole JSON archive (`ours.py`)."""
    conversations = await user_conversations(store, user_id)
    items = await with_messages(store, user_id, conversations)
    return archive_json([conversation_json(c, m) for c, m in items], now_iso())


__all__ = ["user_archive", "user_conversations", "with_messages"]
