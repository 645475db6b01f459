"""Uploads over HTTP: `POST /api/uploads` takes a file, `GET /api/uploads/{id}` gives
it back to its owner.

The request body is the file itself (any content type; the name is the `name`
query parameter, shown only). The size limit is enforced before the body is read
whole: a `Content-Length` over it is refused at once and the bytes are counted as
they arrive. The type is detected from the content (`uploads/detect.py`), never
from the name or `Content-Type`. Files are served only to their owner (404 for
anyone else), as `attachment` with `nosniff`, so a browser never renders them
inline as a page of this origin.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from durachat.api.deps import ServicesDep, UserDep
from durachat.domain import Upload, new_id
from durachat.errors import TooLarge
from durachat.uploads.files import UploadFiles
from durachat.uploads.intake import UploadLimits, accept, display_name

router = APIRouter()


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with `TooLarge` as soon as it is known to exceed `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the file is larger than the limit of {limit:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the file is larger than the limit of {limit:,} bytes")
    return bytes(body)


def _files(services: ServicesDep) -> UploadFiles:
    return UploadFiles(services.settings.uploads_path)


@router.post("/api/uploads", status_code=201)
async def upload(
    services: ServicesDep, user: UserDep, request: Request, name: str = "file"
) -> dict[str, Any]:
    """Upload one file (the request body). Images (PNG, JPEG, WebP, GIF) are
    re-encoded without metadata, PDFs give their text, other files must be UTF-8
    text. Answers the upload, whose `id` goes in `start_chat.attachments`."""
    settings = services.settings
    limits = UploadLimits(
        settings.upload_max_bytes,
        settings.upload_max_pixels,
        settings.upload_max_text_chars,
        settings.upload_max_pdf_pages,
    )
    data = await read_limited(request, limits.max_bytes)
    accepted = await asyncio.to_thread(accept, data, limits)
    stored = Upload(
        new_id(),
        user.id,
        display_name(name),
        accepted.kind,
        accepted.media_type,
        len(accepted.data),
        accepted.width,
        accepted.height,
        accepted.chars,
    )
    files = _files(services)
    await asyncio.to_thread(files.save, stored.id, accepted.data, accepted.text)
    try:
        await services.store.create_upload(stored)
    except BaseException:
        await asyncio.to_thread(files.remove, stored.id)
        raise
    return {"upload": stored.to_wire()}


@router.get("/api/uploads/{upload_id}")
async def download(services: ServicesDep, user: UserDep, upload_id: str) -> Response:
    """The file, to its owner only, as a download."""
    [found] = await services.store.get_uploads(user.id, [upload_id])
    data = await asyncio.to_thread(_files(services).read, found.id)
    ascii_name = found.name.encode("ascii", "replace").decode().replace('"', "'")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(found.name)}"
    headers = {
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    return Response(data, media_type=found.media_type, headers=headers)
