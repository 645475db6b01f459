"""Share links in SQL: create, list, revoke, and look up by token.

A share holds its own snapshot (JSON text) of the branch it shows, so it never
reads the conversation's other messages, branches or later turns. Listing and
revoking are scoped by the owner; the token lookup is not (the token is the
capability) and the API decides who may read it (public, or any signed-in user).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Row, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from durachat.errors import NotFound
from durachat.store.base import Share
from durachat.store.tables import conversations, shares

_s = shares.c


async def create(conn: AsyncConnection, share: Share) -> None:
    c = conversations.c
    owned = select(c.id).where(c.id == share.conversation_id, c.user_id == share.user_id)
    if await conn.scalar(owned) is None:
        raise NotFound("conversation not found")
    row = {
        "id": share.id,
        "user_id": share.user_id,
        "conversation_id": share.conversation_id,
        "token": share.token,
        "public": share.public,
        "title": share.title,
        "snapshot": orjson.dumps(list(share.messages)).decode(),
        "created_at": share.created_at,
    }
    await conn.execute(insert(shares).values(row))


async def list_for(conn: AsyncConnection, user_id: str) -> list[Share]:
    query = select(shares).where(_s.user_id == user_id).order_by(_s.created_at.desc(), _s.id)
    return [_share(row) for row in (await conn.execute(query)).all()]


async def revoke(conn: AsyncConnection, user_id: str, share_id: str) -> None:
    result = await conn.execute(delete(shares).where(_s.id == share_id, _s.user_id == user_id))
    if result.rowcount == 0:
        raise NotFound("share not found")


async def by_token(conn: AsyncConnection, token: str) -> Share | None:
    row = (await conn.execute(select(shares).where(_s.token == token))).first()
    return _share(row) if row is not None else None


def _share(row: Row[Any]) -> Share:
    return Share(
        id=row.id,
        user_id=row.user_id,
        conversation_id=row.conversation_id,
        token=row.token,
        public=bool(row.public),
        title=row.title,
        messages=tuple(orjson.loads(row.snapshot)),
        created_at=row.created_at,
    )


__all__ = ["by_token", "create", "list_for", "revoke"]
