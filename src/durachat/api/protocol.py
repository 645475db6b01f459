"""The frames of PROTOCOL.md as pydantic models, and the parser of client frames.

Client frames are validated here and nowhere else: `parse_client_frame` turns raw
text into one model or raises `BadRequest` saying exactly what is wrong. Unknown
fields are ignored (the protocol allows clients to add fields). `SERVER_TYPES`
lists every server message type; `web/src/lib/protocol.ts` mirrors both lists.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from durachat.errors import BadRequest
from durachat.runner.commands import Command, Continue, Edit, Regenerate, StartChat

_ID = Field(min_length=1, max_length=200)


class ClientFrame(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True, strict=True)


class StartChatFrame(ClientFrame):
    type: Literal["start_chat"]
    prompt: str
    conversation_id: str | None = Field(None, alias="conversationId", min_length=1, max_length=200)
    model: str | None = Field(None, min_length=1, max_length=300)
    client_message_id: str | None = Field(
        None, alias="clientMessageId", min_length=1, max_length=200
    )
    parent_id: str | None = Field(None, alias="parentId", min_length=1, max_length=200)
    attachments: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=20
    )


class SubscribeFrame(ClientFrame):
    type: Literal["subscribe"]
    conversation_id: str = Field(alias="conversationId", min_length=1, max_length=200)
    after_message_id: str | None = Field(None, alias="afterMessageId", max_length=200)
    after_seq: int | None = Field(None, alias="afterSeq", ge=0)


class UnsubscribeFrame(ClientFrame):
    type: Literal["unsubscribe"]
    conversation_id: str = Field(alias="conversationId", min_length=1, max_length=200)


class StopFrame(ClientFrame):
    type: Literal["stop"]
    conversation_id: str = Field(alias="conversationId", min_length=1, max_length=200)
    message_id: str | None = Field(None, alias="messageId", max_length=200)


class RegenerateFrame(ClientFrame):
    type: Literal["regenerate"]
    conversation_id: str = Field(alias="conversationId", min_length=1, max_length=200)
    message_id: str = Field(alias="messageId", min_length=1, max_length=200)
    model: str | None = None
    client_message_id: str | None = Field(None, alias="clientMessageId", max_length=200)


class EditFrame(ClientFrame):
    type: Literal["edit"]
    conversation_id: str = Field(alias="conversationId", min_length=1, max_length=200)
    message_id: str = Field(alias="messageId", min_length=1, max_length=200)
    prompt: str
    client_message_id: str | None = Field(None, alias="clientMessageId", max_length=200)


class ContinueFrame(ClientFrame):
    type: Literal["continue"]
    conversation_id: str = Field(alias="conversationId", min_length=1, max_length=200)
    message_id: str = Field(alias="messageId", min_length=1, max_length=200)
    client_message_id: str | None = Field(None, alias="clientMessageId", max_length=200)


class PingFrame(ClientFrame):
    type: Literal["ping"]


AnyClientFrame = (
    StartChatFrame
    | SubscribeFrame
    | UnsubscribeFrame
    | StopFrame
    | RegenerateFrame
    | EditFrame
    | ContinueFrame
    | PingFrame
)

_BY_TYPE: dict[str, type[ClientFrame]] = {
    "start_chat": StartChatFrame,
    "subscribe": SubscribeFrame,
    "unsubscribe": UnsubscribeFrame,
    "stop": StopFrame,
    "regenerate": RegenerateFrame,
    "edit": EditFrame,
    "continue": ContinueFrame,
    "ping": PingFrame,
}

CLIENT_TYPES = tuple(_BY_TYPE)

SERVER_TYPES = (
    "hello",
    "conversation_created",
    "message_started",
    "reasoning",
    "text",
    "done",
    "error",
    "catchup",
    "conversation_updated",
    "conversation_deleted",
    "resync",
    "pong",
)


def describe(error: ValidationError) -> str:
    """One line naming each wrong field (by its wire name) and what is wrong."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "frame"
        if item["type"] == "missing":
            parts.append(f"{where} is required")
        else:
            parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_client_frame(text: str) -> AnyClientFrame:
    """Parse one client frame; `BadRequest` says precisely what is wrong."""
    try:
        raw: Any = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the frame is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadRequest(f"a frame must be a JSON object, not {type(raw).__name__}")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise BadRequest("the frame has no 'type' string")
    model = _BY_TYPE.get(kind)
    if model is None:
        raise BadRequest(f"unknown message type {kind!r}; known: {', '.join(CLIENT_TYPES)}")
    try:
        return model.model_validate(raw)  # type: ignore[return-value]
    except ValidationError as exc:
        raise BadRequest(f"{kind}: {describe(exc)}") from None


def to_command(
    frame: StartChatFrame | EditFrame | RegenerateFrame | ContinueFrame,
) -> Command:
    """The runner's command for a generating frame."""
    match frame:
        case StartChatFrame():
            return StartChat(
                frame.prompt,
                frame.conversation_id,
                frame.model,
                frame.client_message_id,
                frame.parent_id,
                tuple(frame.attachments),
            )
        case EditFrame():
            return Edit(
                frame.conversation_id, frame.message_id, frame.prompt, frame.client_message_id
            )
        case RegenerateFrame():
            return Regenerate(
                frame.conversation_id, frame.message_id, frame.model, frame.client_message_id
            )
        case ContinueFrame():
            return Continue(frame.conversation_id, frame.message_id, frame.client_message_id)
