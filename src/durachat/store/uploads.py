"""Uploaded files' metadata in SQL: record one, read a user's by id.

Every read is scoped by the owner: another user's upload id answers `NotFound`,
exactly like an id that does not exist. The files themselves are kept by
`uploads/files.py`; this module never touches the disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from durachat.domain import Upload
from durachat.errors import NotFound
from durachat.store.tables import uploads

_u = uploads.c


async def create(conn: AsyncConnection, upload: Upload) -> None:
    row = {
        "id": upload.id,
        "user_id": upload.user_id,
        "name": upload.name,
        "kind": upload.kind,
        "media_type": upload.media_type,
        "size": upload.size,
        "width": upload.width,
        "height": upload.height,
        "chars": upload.chars,
        "created_at": upload.created_at,
    }
    await conn.execute(insert(uploads).values(row))


async def owned(conn: AsyncConnection, user_id: str, upload_ids: Sequence[str]) -> list[Upload]:
    """The user's uploads with these ids, in the order asked; `NotFound` names one
    that is missing (or another user's)."""
    if not upload_ids:
        return []
    query = select(uploads).where(_u.user_id == user_id, _u.id.in_(set(upload_ids)))
    found = {row.id: _upload(row) for row in (await conn.execute(query)).all()}
    for upload_id in upload_ids:
        if upload_id not in found:
            raise NotFound(f"attachment {upload_id!r} not found")
    return [found[upload_id] for upload_id in upload_ids]


def _upload(row: Row[Any]) -> Upload:
    return Upload(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        kind=row.kind,
        media_type=row.media_type,
        size=row.size,
        width=row.width,
        height=row.height,
        chars=row.chars,
        created_at=row.created_at,
    )


__all__ = ["create", "owned"]
