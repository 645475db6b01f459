"""`GET /api/search`: full-text search over the caller's messages and titles.

The query's limits are decided here (length, result count); the store does the
search (`Store.search`). A result's snippet is a list of `{text, match}` parts,
never HTML, so a client renders it as text and marks the matches itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from durachat.api.deps import ServicesDep, UserDep
from durachat.errors import BadRequest
from durachat.store.base import SearchHit

router = APIRouter()

MAX_QUERY_CHARS = 500
MAX_RESULTS = 50


def hit_to_wire(hit: SearchHit) -> dict[str, Any]:
    return {
        "conversationId": hit.conversation_id,
        "title": hit.title,
        "messageId": hit.message_id,
        "role": hit.role.value if hit.role else None,
        "snippet": [{"text": part.text, "match": part.match} for part in hit.snippet],
        "createdAt": hit.created_at,
    }


@router.get("/api/search")
async def search(
    services: ServicesDep,
    user: UserDep,
    q: str = "",
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 20,
) -> dict[str, Any]:
    """Messages and conversation titles containing every word of `q` (the last word
    also as a prefix), best first: matching titles, then messages by rank."""
    if not q.strip():
        raise BadRequest("the search query is empty")
    if len(q) > MAX_QUERY_CHARS:
        raise BadRequest(f"the search query is longer than {MAX_QUERY_CHARS} characters")
    hits = await services.store.search(user.id, q, limit=limit)
    return {"results": [hit_to_wire(hit) for hit in hits]}
