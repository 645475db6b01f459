"""SQL of accounts: sessions, API token listing, user administration.

Plain functions on a connection that `SqlStore` runs in its read or write
transactions. Every query on a user's tokens or sessions filters by the user id;
the last-admin rule is checked inside the transaction that would break it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from durachat.errors import Conflict, NotFound
from durachat.store.tables import (
    api_tokens,
    client_commands,
    conversations,
    messages,
    sessions,
    shares,
    uploads,
    users,
)


async def _user_row(conn: AsyncConnection, user_id: str) -> Row[Any]:
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    if row is None:
        raise NotFound("no such user")
    return row


async def _other_active_admins(conn: AsyncConnection, user_id: str) -> int:
    query = select(func.count()).where(
        users.c.is_admin.is_(True), users.c.disabled.is_(False), users.c.id != user_id
    )
    return int((await conn.execute(query)).scalar_one())


async def _keep_an_admin(conn: AsyncConnection, row: Row[Any], doing: str) -> None:
    if row.is_admin and not row.disabled and await _other_active_admins(conn, row.id) == 0:
        raise Conflict(f"cannot {doing} the last admin")


async def set_disabled(conn: AsyncConnection, user_id: str, disabled: bool) -> None:
    """Disable (ending every session) or enable a user; never the last admin."""
    row = await _user_row(conn, user_id)
    if disabled:
        await _keep_an_admin(conn, row, "disable")
        await revoke_sessions(conn, user_id)
    await conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))


async def delete_user(conn: AsyncConnection, user_id: str) -> None:
    """Delete a user and everything they own; never the last admin."""
    row = await _user_row(conn, user_id)
    await _keep_an_admin(conn, row, "remove")
    owned = (shares, client_commands, messages, conversations, uploads, api_tokens, sessions)
    for table in owned:
        await conn.execute(delete(table).where(table.c.user_id == user_id))
    await conn.execute(delete(users).where(users.c.id == user_id))


async def set_password(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    """Store a new password hash and end the user's sessions."""
    await _user_row(conn, user_id)
    query = update(users).where(users.c.id == user_id).values(password_hash=password_hash)
    await conn.execute(query)
    await revoke_sessions(conn, user_id)


async def revoke_sessions(conn: AsyncConnection, user_id: str) -> None:
    query = update(sessions).where(sessions.c.user_id == user_id).values(revoked=True)
    await conn.execute(query)


async def revoke_session(conn: AsyncConnection, id_hash: str) -> None:
    query = update(sessions).where(sessions.c.id_hash == id_hash).values(revoked=True)
    await conn.execute(query)


async def delete_old_sessions(conn: AsyncConnection, now: str) -> int:
    """Session records that can never open again: expired or revoked."""
    old = or_(sessions.c.expires_at <= now, sessions.c.revoked.is_(True))
    return int((await conn.execute(delete(sessions).where(old))).rowcount)


async def user_for_session(conn: AsyncConnection, id_hash: str, now: str) -> Row[Any] | None:
    query = (
        select(users)
        .join(sessions, sessions.c.user_id == users.c.id)
        .where(
            sessions.c.id_hash == id_hash,
            sessions.c.revoked.is_(False),
            sessions.c.expires_at > now,
        )
    )
    return (await conn.execute(query)).first()


async def list_tokens(conn: AsyncConnection, user_id: str) -> list[Any]:
    query = (
        select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.created_at)
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.created_at, api_tokens.c.id)
    )
    return list((await conn.execute(query)).all())


async def revoke_token(conn: AsyncConnection, user_id: str, token_id: str) -> str:
    """Delete the user's token; its hash, so that sockets opened with it can be closed."""
    condition = and_(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
    query = select(api_tokens.c.token_hash).where(condition)
    token_hash = (await conn.execute(query)).scalar_one_or_none()
    if token_hash is None:
        raise NotFound("no such API token")
    await conn.execute(delete(api_tokens).where(condition))
    return str(token_hash)
