"""HTTP endpoints of conversations: list, catch-up, patch, delete, stop (PROTOCOL.md 8),
and deleting a message with its subtree."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from durachat import events
from durachat.api.deps import ServicesDep, UserDep
from durachat.api.sync import snapshot
from durachat.domain import split_model_id
from durachat.errors import BadRequest, NotFound
from durachat.store.base import ConversationPatch

router = APIRouter()


class PatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    title: str | None = Field(None, min_length=1, max_length=500)
    pinned: bool | None = None
    archived: bool | None = None
    model: str | None = Field(None, min_length=3, max_length=300)
    system_prompt: str | None = Field(None, alias="systemPrompt", max_length=100_000)
    current_leaf_id: str | None = Field(None, alias="currentLeafId", min_length=1)


@router.get("/api/conversations")
async def list_conversations(
    services: ServicesDep,
    user: UserDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
    archived: bool = False,
) -> dict[str, Any]:
    """Newest first; pass `nextCursor` back as `cursor` for the next page."""
    page = await services.store.list_conversations(
        user.id, limit=limit, cursor=cursor, archived=archived
    )
    return {
        "conversations": [c.to_wire() for c in page.conversations],
        "nextCursor": page.next_cursor,
    }


async def _catchup(services: ServicesDep, user: UserDep, conversation_id: str) -> dict[str, Any]:
    conversation, messages = await snapshot(services.store, services.bus, user.id, conversation_id)
    return events.catchup_payload(conversation, messages)


@router.get("/api/conversations/{conversation_id}")
async def get_conversation(
    services: ServicesDep, user: UserDep, conversation_id: str
) -> dict[str, Any]:
    """The conversation's catch-up snapshot."""
    return await _catchup(services, user, conversation_id)


@router.get("/api/conversations/{conversation_id}/catchup")
@router.get("/test/chat/{conversation_id}/catchup")
async def get_catchup(services: ServicesDep, user: UserDep, conversation_id: str) -> dict[str, Any]:
    """The `catchup` object without its `type`: every message of every branch."""
    return await _catchup(services, user, conversation_id)


@router.patch("/api/conversations/{conversation_id}")
async def patch_conversation(
    services: ServicesDep, user: UserDep, conversation_id: str, body: PatchBody
) -> dict[str, Any]:
    provider = None
    if body.model is not None:
        services.registry.resolve(body.model)
        provider = split_model_id(body.model)[0]
    if body.title is not None and not body.title.strip():
        raise BadRequest("title must not be blank")
    patch = ConversationPatch(
        title=body.title.strip() if body.title is not None else None,
        pinned=body.pinned,
        archived=body.archived,
        model=body.model,
        provider=provider,
        system_prompt=body.system_prompt,
        current_leaf_id=body.current_leaf_id,
    )
    conversation = await services.store.update_conversation(user.id, conversation_id, patch)
    services.bus.publish_user(user.id, events.conversation_updated(conversation))
    return {"conversation": conversation.to_wire()}


@router.delete("/api/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    services: ServicesDep, user: UserDep, conversation_id: str
) -> Response:
    await services.store.get_conversation(user.id, conversation_id)
    await services.runner.stop_anywhere(user.id, conversation_id)
    await services.store.delete_conversation(user.id, conversation_id)
    services.bus.publish_user(user.id, events.conversation_deleted(conversation_id))
    return Response(status_code=204)


@router.delete("/api/conversations/{conversation_id}/messages/{message_id}")
async def delete_message(
    services: ServicesDep, user: UserDep, conversation_id: str, message_id: str
) -> dict[str, Any]:
    """Delete the message and its subtree (409 while a reply in it streams); the
    current leaf moves to a sibling's branch or the parent. Every tab of the user
    gets the new list entry, and every subscriber of the conversation a `catchup`."""
    message = await services.store.get_message(user.id, message_id)
    if message.conversation_id != conversation_id:
        raise NotFound("message not found")
    await services.store.delete_message(user.id, message_id)
    conversation, messages = await snapshot(services.store, services.bus, user.id, conversation_id)
    services.bus.publish_user(user.id, events.conversation_updated(conversation))
    services.bus.publish(events.catchup(conversation, messages))
    return {"conversation": conversation.to_wire()}


@router.post("/api/conversations/{conversation_id}/stop")
async def stop_conversation(
    services: ServicesDep, user: UserDep, conversation_id: str
) -> dict[str, bool]:
    await services.store.get_conversation(user.id, conversation_id)
    return {"stopped": await services.runner.stop_anywhere(user.id, conversation_id)}


@router.get("/api/models")
async def list_models(services: ServicesDep, user: UserDep) -> dict[str, Any]:
    return {
        "models": [m.to_wire() for m in services.registry.models()],
        "default": services.registry.default_model,
    }
