"""Export and import over HTTP: a conversation as Markdown or JSON, a user's whole
archive, and importing DuraChat's JSON or ChatGPT's `conversations.json`.

Formats live in `archive/`; this module decides the HTTP shape and the upload
limit (`DURACHAT_IMPORT_MAX_BYTES`, refused from `Content-Length` or while reading,
never after reading the whole body). Downloads are `Content-Disposition:
attachment`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request, Response

from durachat import events
from durachat.api.deps import ServicesDep, UserDep
from durachat.archive.exporter import user_archive
from durachat.archive.markdown import conversation_markdown
from durachat.archive.ours import archive_json, conversation_json
from durachat.archive.reader import read_import
from durachat.domain import now_iso
from durachat.errors import BadRequest, TooLarge

router = APIRouter()

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _download(body: bytes, filename: str, media_type: str) -> Response:
    safe = _UNSAFE.sub("-", filename)
    headers = {"Content-Disposition": f'attachment; filename="{safe}"'}
    return Response(body, media_type=media_type, headers=headers)


@router.get("/api/conversations/{conversation_id}/export")
async def export_conversation(
    services: ServicesDep,
    user: UserDep,
    conversation_id: str,
    format: Literal["md", "json"] = "md",
) -> Response:
    """The current branch as Markdown (`md`), or the whole tree as JSON (`json`,
    DuraChat's archive format with this one conversation)."""
    store = services.store
    conversation = await store.get_conversation(user.id, conversation_id)
    messages = await store.list_messages(user.id, conversation_id)
    if format == "md":
        text = conversation_markdown(conversation, messages, now_iso())
        return _download(text.encode(), f"{conversation_id}.md", "text/markdown; charset=utf-8")
    archive = archive_json([conversation_json(conversation, messages)], now_iso())
    return _download(orjson.dumps(archive), f"{conversation_id}.json", "application/json")


@router.get("/api/export")
async def export_everything(services: ServicesDep, user: UserDep) -> Response:
    """Every conversation of the caller, every branch, as one JSON archive."""
    archive = await user_archive(services.store, user.id)
    name = f"durachat-{user.username}-{now_iso()[:10]}.json"
    return _download(orjson.dumps(archive), name, "application/json")


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the file is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the file is larger than {limit} bytes")
    return bytes(body)


@router.post("/api/import")
async def import_conversations(
    services: ServicesDep, user: UserDep, request: Request
) -> dict[str, Any]:
    """Import DuraChat's JSON or ChatGPT's `conversations.json` (the request body).
    Conversations already imported (or still present) are skipped."""
    raw = await _read_limited(request, services.settings.import_max_bytes)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the file is not JSON: {exc}") from None
    imported, skipped = [], 0
    for conversation in read_import(data, services.registry.default_model):
        stored = await services.store.import_conversation(user.id, conversation)
        if stored is None:
            skipped += 1
            continue
        imported.append(stored.id)
        services.bus.publish_user(user.id, events.conversation_updated(stored))
    return {"imported": imported, "skipped": skipped}
