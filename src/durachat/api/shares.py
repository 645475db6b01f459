"""Share links over HTTP: create, list and revoke your shares; read one by its token;
copy a shared conversation into your own account.

A share is a snapshot of the conversation's current branch taken when it is
created: it never shows other branches, other messages or anything said later.
Its token has 192 random bits. Reading needs a signed-in user of this server unless
the owner made the share public; an unknown or revoked token is 404. Who owns a
share is never shown to its readers.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from durachat.api.deps import ServicesDep, UserDep, current_user
from durachat.archive.markdown import current_branch
from durachat.domain import Message, Role, Status, User, new_id, now_iso, split_model_id
from durachat.errors import Conflict, NotFound, Unauthorized
from durachat.store.base import ImportedConversation, Share

router = APIRouter()

TOKEN_BYTES = 24  # 192 bits


class NewShare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public: bool = False


def share_to_wire(share: Share) -> dict[str, Any]:
    """A share as its owner sees it listed."""
    return {
        "id": share.id,
        "conversationId": share.conversation_id,
        "token": share.token,
        "url": f"/share/{share.token}",
        "public": share.public,
        "title": share.title,
        "messageCount": len(share.messages),
        "createdAt": share.created_at,
    }


def _snapshot(messages: list[Message]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "role": m.role.value,
            "content": m.content,
            "model": m.model if m.role is Role.ASSISTANT else None,
            "createdAt": m.created_at,
        }
        for m in messages
        if m.role in (Role.USER, Role.ASSISTANT)
    )


@router.post("/api/conversations/{conversation_id}/shares", status_code=201)
async def create_share(
    services: ServicesDep, user: UserDep, conversation_id: str, body: NewShare | None = None
) -> dict[str, Any]:
    """Share the conversation's current branch as it is now."""
    conversation = await services.store.get_conversation(user.id, conversation_id)
    branch = current_branch(
        conversation, await services.store.list_messages(user.id, conversation_id)
    )
    if any(m.status is Status.STREAMING for m in branch):
        raise Conflict("a reply is still streaming; share the conversation when it ends")
    share = Share(
        id=new_id(),
        user_id=user.id,
        conversation_id=conversation_id,
        token=secrets.token_urlsafe(TOKEN_BYTES),
        public=body.public if body else False,
        title=conversation.title,
        messages=_snapshot(branch),
        created_at=now_iso(),
    )
    await services.store.create_share(share)
    return {"share": share_to_wire(share)}


@router.get("/api/shares")
async def list_shares(services: ServicesDep, user: UserDep) -> dict[str, Any]:
    return {"shares": [share_to_wire(s) for s in await services.store.list_shares(user.id)]}


@router.delete("/api/shares/{share_id}", status_code=204)
async def revoke_share(services: ServicesDep, user: UserDep, share_id: str) -> Response:
    await services.store.delete_share(user.id, share_id)
    return Response(status_code=204)


async def _readable(
    services: ServicesDep, request: Request, token: str
) -> tuple[Share, User | None]:
    share = await services.store.share_by_token(token)
    if share is None:
        raise NotFound("this share link does not exist or was revoked")
    try:
        viewer: User | None = await current_user(request)
    except Unauthorized:
        viewer = None
    if viewer is None and not share.public:
        raise Unauthorized("sign in to see this shared conversation")
    return share, viewer


@router.get("/api/share/{token}")
async def read_share(
    services: ServicesDep, request: Request, response: Response, token: str
) -> dict[str, Any]:
    """The shared snapshot: title, messages, and whether the caller may copy it."""
    share, viewer = await _readable(services, request, token)
    response.headers["Cache-Control"] = "no-store"
    return {
        "title": share.title,
        "public": share.public,
        "createdAt": share.created_at,
        "messages": list(share.messages),
        "canCopy": viewer is not None,
    }


@router.post("/api/share/{token}/copy", status_code=201)
async def copy_share(services: ServicesDep, request: Request, token: str) -> dict[str, Any]:
    """Continue as a copy: the snapshot becomes a new conversation of the caller."""
    share, viewer = await _readable(services, request, token)
    if viewer is None:
        raise Unauthorized("sign in to continue this conversation")
    conversation_id = new_id()
    model = services.registry.default_model
    messages: list[Message] = []
    for shared in share.messages:
        messages.append(
            Message(
                id=new_id(),
                conversation_id=conversation_id,
                parent_id=messages[-1].id if messages else None,
                role=Role(shared["role"]),
                content=shared["content"],
                status=Status.COMPLETE,
                seq=0,
                model=shared.get("model"),
            )
        )
    copy = ImportedConversation(
        id=conversation_id,
        source_id=f"share:{share.id}:{conversation_id}",
        title=share.title,
        model=model,
        provider=split_model_id(model)[0],
        messages=tuple(messages),
        current_leaf_id=messages[-1].id if messages else None,
        created_at=now_iso(),
        updated_at=now_iso(),
    )
    stored = await services.store.import_conversation(viewer.id, copy)
    if stored is None:  # a fresh source id: cannot happen
        raise Conflict("the copy could not be made")
    return {"conversationId": stored.id}
